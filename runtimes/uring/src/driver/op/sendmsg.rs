//! IORING_OP_SENDMSG: a vectored send of many owned buffers in one SQE.
//!
//! The `iovec` array and the `msghdr` are heap allocations owned by the op, next to the
//! buffers they point into, so all of it stays alive until the completion even if the future
//! is dropped. At most `IOV_MAX` buffers go out per call; the caller sees a short write.

use fanbench_rt::{BufResult, IoBuf};
use io_uring::{opcode, squeue::Entry, types};

use crate::driver::lifecycle::Orphan;
use crate::driver::op::{Op, OpAble};
use crate::net::SharedFd;

/// The kernel's limit on iovecs per call.
const IOV_MAX: usize = 1024;

pub(crate) struct SendMsg<B> {
    fd: SharedFd,
    bufs: Vec<B>,
    iovecs: Vec<libc::iovec>,
    msghdr: Box<libc::msghdr>,
}

impl<B: IoBuf> SendMsg<B> {
    fn new(fd: SharedFd, bufs: Vec<B>) -> SendMsg<B> {
        let iovecs: Vec<libc::iovec> = bufs
            .iter()
            .filter(|b| b.bytes_init() > 0)
            .take(IOV_MAX)
            .map(|b| libc::iovec {
                iov_base: b.stable_ptr() as *mut libc::c_void,
                iov_len: b.bytes_init(),
            })
            .collect();
        // SAFETY: an all-zero msghdr is a valid "no address, no control data" header.
        let mut msghdr: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
        msghdr.msg_iov = iovecs.as_ptr() as *mut libc::iovec;
        msghdr.msg_iovlen = iovecs.len() as _;
        SendMsg {
            fd,
            bufs,
            iovecs,
            msghdr,
        }
    }
}

impl<B: IoBuf> Orphan for SendMsg<B> {}

impl<B: IoBuf> OpAble for SendMsg<B> {
    fn sqe(&mut self) -> Entry {
        debug_assert_eq!(
            self.msghdr.msg_iov as *const libc::iovec,
            self.iovecs.as_ptr()
        );
        opcode::SendMsg::new(
            types::Fd(self.fd.raw()),
            &*self.msghdr as *const libc::msghdr,
        )
        .flags(libc::MSG_NOSIGNAL as u32)
        .build()
    }
}

/// Send `bufs` in order with one vectored call; returns the bytes sent.
pub(crate) async fn sendmsg<B: IoBuf>(fd: SharedFd, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
    let op_data = SendMsg::new(fd, bufs);
    if op_data.iovecs.is_empty() {
        return (Ok(0), op_data.bufs);
    }
    let op = match Op::submit(op_data) {
        Ok(op) => op,
        Err((e, data)) => return (Err(e), data.bufs),
    };
    let (completion, data) = op.await;
    (completion.into_result().map(|n| n as usize), data.bufs)
}
