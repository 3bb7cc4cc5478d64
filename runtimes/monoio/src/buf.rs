//! fanbench's owned buffers seen through monoio's owned-buffer traits.
//!
//! Both sides have the same contract (the memory stays put while the buffer value moves), so
//! these wrappers only translate names. One difference matters: monoio reads into a buffer
//! from its start (`write_ptr`, `bytes_total`), fanbench reads append after the initialised
//! bytes, so [`SpareTail`] shows monoio only the spare capacity.

use fanbench_rt::{IoBuf, IoBufMut};

/// At most this many buffers go into one vectored write (Linux's `UIO_MAXIOV`); the rest are
/// left for the caller's next call, as after any short write.
pub const MAX_IOVECS: usize = 1024;

/// A fanbench buffer lent to monoio for writing out.
pub struct Whole<B>(pub B);

// SAFETY: forwards to fanbench's `IoBuf`, whose contract is the same: `stable_ptr()` points
// to `bytes_init()` initialised bytes that do not move while the buffer value moves.
unsafe impl<B: IoBuf> monoio::buf::IoBuf for Whole<B> {
    fn read_ptr(&self) -> *const u8 {
        self.0.stable_ptr()
    }

    fn bytes_init(&self) -> usize {
        self.0.bytes_init()
    }
}

/// The spare capacity of a fanbench buffer, lent to monoio for a read.
pub struct SpareTail<B>(pub B);

// SAFETY: `spare_parts` names the writable, unmoving memory after the initialised prefix
// (fanbench's `IoBufMut` contract); `set_init(n)` marks the `n` bytes monoio says the kernel
// wrote there, counted from that same start.
unsafe impl<B: IoBufMut> monoio::buf::IoBufMut for SpareTail<B> {
    fn write_ptr(&mut self) -> *mut u8 {
        self.0.spare_parts().0
    }

    fn bytes_total(&mut self) -> usize {
        self.0.spare_parts().1
    }

    unsafe fn set_init(&mut self, pos: usize) {
        let init = self.0.bytes_init() + pos;
        // SAFETY: monoio calls this with the number of bytes the kernel wrote at
        // `write_ptr()`, which is right after the initialised prefix.
        unsafe { self.0.set_init(init) };
    }
}

/// A list of fanbench buffers with the `iovec` array monoio's vectored write hands the kernel.
pub struct IoVecs<B> {
    bufs: Vec<B>,
    iovecs: Vec<libc::iovec>,
}

impl<B: IoBuf> IoVecs<B> {
    /// Describe (up to [`MAX_IOVECS`] of) `bufs`.
    pub fn new(bufs: Vec<B>) -> Self {
        let iovecs = bufs
            .iter()
            .take(MAX_IOVECS)
            .map(|b| libc::iovec {
                iov_base: b.stable_ptr().cast_mut().cast(),
                iov_len: b.bytes_init(),
            })
            .collect();
        IoVecs { bufs, iovecs }
    }

    /// The buffers, handed back.
    pub fn into_inner(self) -> Vec<B> {
        self.bufs
    }
}

// SAFETY: the iovec array lives on the heap (a `Vec` that is never resized after `new`), so
// its address is stable while the value moves, and each entry points to the initialised bytes
// of a buffer in `bufs`, which owns them and keeps them in place (the `IoBuf` contract).
unsafe impl<B: IoBuf> monoio::buf::IoVecBuf for IoVecs<B> {
    fn read_iovec_ptr(&self) -> *const libc::iovec {
        self.iovecs.as_ptr()
    }

    fn read_iovec_len(&self) -> usize {
        self.iovecs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monoio::buf::{IoBufMut as _, IoVecBuf as _};

    #[test]
    fn spare_tail_starts_after_initialised_bytes() {
        let mut v = Vec::with_capacity(32);
        v.extend_from_slice(b"abc");
        let base = v.as_ptr() as usize;
        let mut tail = SpareTail(v);
        assert_eq!(tail.write_ptr() as usize, base + 3);
        assert_eq!(tail.bytes_total(), 32 - 3);
        // SAFETY: write two bytes into the spare capacity, then mark them.
        unsafe {
            tail.write_ptr().write(b'd');
            tail.write_ptr().add(1).write(b'e');
            tail.set_init(2);
        }
        assert_eq!(&tail.0[..], b"abcde");
    }

    #[test]
    fn iovecs_stop_at_the_iov_limit_and_keep_every_buffer() {
        let bufs: Vec<Vec<u8>> = (0..MAX_IOVECS + 10).map(|i| vec![i as u8; 3]).collect();
        let v = IoVecs::new(bufs);
        assert_eq!(v.read_iovec_len(), MAX_IOVECS);
        assert_eq!(v.into_inner().len(), MAX_IOVECS + 10);
    }
}
