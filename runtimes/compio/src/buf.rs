//! Views that lend fanbench's owned buffers to compio's owned-buffer operations.
//!
//! compio has its own buffer traits ([`compio::buf::IoBuf`], [`compio::buf::IoBufMut`],
//! [`compio::buf::IoVectoredBuf`]); these thin wrappers let a `fanbench_rt` buffer be moved
//! into a compio op and handed back unchanged apart from the bytes a read initialised.

use std::mem::MaybeUninit;

use compio::buf::{IoBuf as CompioIoBuf, IoBufMut as CompioIoBufMut, IoVectoredBuf, SetLen};
use fanbench_rt::{IoBuf, IoBufMut};

/// A buffer lent whole to a write: its initialised bytes are what goes out.
pub(crate) struct WriteBuf<B>(pub(crate) B);

impl<B: IoBuf> CompioIoBuf for WriteBuf<B> {
    fn as_init(&self) -> &[u8] {
        self.0.as_init_slice()
    }
}

/// Several buffers lent to one vectored write (`sendmsg`), in order.
pub(crate) struct WriteBufs<B>(pub(crate) Vec<B>);

impl<B: IoBuf> IoVectoredBuf for WriteBufs<B> {
    fn iter_slice(&self) -> impl Iterator<Item = &[u8]> {
        self.0.iter().map(IoBuf::as_init_slice)
    }
}

/// The uninitialised tail of a buffer, lent to a read.
///
/// compio reads into the whole of `as_uninit()` and then advances the length to the number
/// of bytes read; fanbench's contract is that a read appends after `bytes_init()`. This view
/// starts at the first uninitialised byte, so compio's "whole buffer" is exactly the spare
/// tail, and its length bookkeeping is forwarded as `base + len`.
pub(crate) struct SpareTail<B> {
    buf: B,
    /// `buf.bytes_init()` when the view was made: where the tail starts.
    base: usize,
    /// Start of the tail (`stable_mut_ptr() + base`).
    ptr: *mut u8,
    /// Bytes in the tail.
    cap: usize,
    /// Bytes of the tail initialised by the read so far.
    len: usize,
}

impl<B: IoBufMut> SpareTail<B> {
    pub(crate) fn new(mut buf: B) -> Self {
        let base = buf.bytes_init();
        let (ptr, cap) = buf.spare_parts();
        SpareTail {
            buf,
            base,
            ptr,
            cap,
            len: 0,
        }
    }

    /// Hand the buffer back, with the bytes read marked initialised.
    pub(crate) fn into_inner(self) -> B {
        self.buf
    }
}

impl<B: IoBufMut> CompioIoBuf for SpareTail<B> {
    fn as_init(&self) -> &[u8] {
        // SAFETY: `ptr` points at `cap >= len` bytes inside the buffer's stable allocation
        // (the `IoBufMut` contract), and the first `len` of them were initialised by a read.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl<B: IoBufMut> SetLen for SpareTail<B> {
    unsafe fn set_len(&mut self, len: usize) {
        debug_assert!(len <= self.cap);
        self.len = len;
        // SAFETY: the caller guarantees the first `len` bytes of the tail are initialised, so
        // the first `base + len` bytes of the buffer are.
        unsafe { self.buf.set_init(self.base + len) };
    }
}

impl<B: IoBufMut> CompioIoBufMut for SpareTail<B> {
    fn as_uninit(&mut self) -> &mut [MaybeUninit<u8>] {
        // SAFETY: `ptr..ptr + cap` is writable memory owned by `buf` that stays put while
        // `buf` is alive (the `IoBufMut` contract); `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.cast::<MaybeUninit<u8>>(), self.cap) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spare_tail_covers_only_the_uninitialised_part() {
        let mut v = Vec::with_capacity(32);
        v.extend_from_slice(b"head");
        let mut tail = SpareTail::new(v);
        assert_eq!(tail.as_uninit().len(), 28);
        assert!(tail.as_init().is_empty());
    }

    #[test]
    fn spare_tail_set_len_appends_after_the_existing_bytes() {
        let mut v = Vec::with_capacity(32);
        v.extend_from_slice(b"head");
        let mut tail = SpareTail::new(v);
        for (slot, byte) in tail.as_uninit().iter_mut().zip(b"tail") {
            slot.write(*byte);
        }
        // SAFETY: the first 4 bytes of the tail were just written.
        unsafe { tail.set_len(4) };
        assert_eq!(tail.as_init(), b"tail");
        assert_eq!(tail.into_inner(), b"headtail");
    }

    #[test]
    fn write_bufs_yield_every_buffer_in_order() {
        let bufs = WriteBufs(vec![b"a".to_vec(), Vec::new(), b"bc".to_vec()]);
        let slices: Vec<&[u8]> = bufs.iter_slice().collect();
        assert_eq!(slices, vec![&b"a"[..], &b""[..], &b"bc"[..]]);
    }
}
