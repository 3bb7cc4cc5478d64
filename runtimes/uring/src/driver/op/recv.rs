//! IORING_OP_RECV into the caller's buffer.
//!
//! Plain recv into the spare capacity of the caller's owned buffer, not a provided-buffer
//! ring: the trait hands us a buffer per read, and the broker keeps one per connection
//! anyway, so a buffer ring would save no memory and add a copy out of the ring buffer into
//! the caller's buffer on every read. (A buffer ring pays when idle connections would
//! otherwise each pin a buffer the application does not already have; not the case here.)

use fanbench_rt::{BufResult, IoBufMut};
use io_uring::{opcode, squeue::Entry, types};

use crate::driver::lifecycle::Orphan;
use crate::driver::op::{Op, OpAble};
use crate::net::SharedFd;

/// Largest single I/O the kernel takes in one SQE (`len` is a u32; Linux caps I/O there).
pub(crate) const MAX_IO: usize = 0x7fff_f000;

pub(crate) struct Recv<B> {
    fd: SharedFd,
    buf: B,
}

impl<B: IoBufMut> Orphan for Recv<B> {}

impl<B: IoBufMut> OpAble for Recv<B> {
    fn sqe(&mut self) -> Entry {
        let (ptr, len) = self.buf.spare_parts();
        opcode::Recv::new(types::Fd(self.fd.raw()), ptr, len.min(MAX_IO) as u32).build()
    }
}

/// Receive into the uninitialised tail of `buf`.
pub(crate) async fn recv<B: IoBufMut>(fd: SharedFd, buf: B) -> BufResult<usize, B> {
    if buf.bytes_init() >= buf.bytes_total() {
        return (Ok(0), buf);
    }
    let op = match Op::submit(Recv { fd, buf }) {
        Ok(op) => op,
        Err((e, data)) => return (Err(e), data.buf),
    };
    let (completion, Recv { mut buf, .. }) = op.await;
    match completion.into_result() {
        Ok(n) => {
            let n = n as usize;
            let init = buf.bytes_init() + n;
            // SAFETY: the kernel wrote `n` bytes right after the initialised prefix.
            unsafe { buf.set_init(init) };
            (Ok(n), buf)
        }
        Err(e) => (Err(e), buf),
    }
}
