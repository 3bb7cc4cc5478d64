//! IORING_OP_SEND from the caller's buffer (`MSG_NOSIGNAL`: a closed peer is an EPIPE error,
//! never a SIGPIPE).

use fanbench_rt::{BufResult, IoBuf};
use io_uring::{opcode, squeue::Entry, types};

use crate::driver::lifecycle::Orphan;
use crate::driver::op::recv::MAX_IO;
use crate::driver::op::{Op, OpAble};
use crate::net::SharedFd;

pub(crate) struct Send<B> {
    fd: SharedFd,
    buf: B,
}

impl<B: IoBuf> Orphan for Send<B> {}

impl<B: IoBuf> OpAble for Send<B> {
    fn sqe(&mut self) -> Entry {
        let len = self.buf.bytes_init().min(MAX_IO) as u32;
        opcode::Send::new(types::Fd(self.fd.raw()), self.buf.stable_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
    }
}

/// Send the initialised bytes of `buf`; returns how many were sent.
pub(crate) async fn send<B: IoBuf>(fd: SharedFd, buf: B) -> BufResult<usize, B> {
    if buf.bytes_init() == 0 {
        return (Ok(0), buf);
    }
    let op = match Op::submit(Send { fd, buf }) {
        Ok(op) => op,
        Err((e, data)) => return (Err(e), data.buf),
    };
    let (completion, Send { buf, .. }) = op.await;
    (completion.into_result().map(|n| n as usize), buf)
}
