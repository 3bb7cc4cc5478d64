//! IORING_OP_SENDMSG: a vectored send of many owned buffers in one SQE.
//!
//! The `iovec` array and the `msghdr` live in one boxed [`MsgVec`] owned by the op, next to
//! the buffers they point into, so all of it stays alive until the completion even if the
//! future is dropped. At most `IOV_MAX` buffers go out per call; the caller sees a short write.
//!
//! A `MsgVec` is recycled through a small per-thread pool when its op is dropped (which is
//! only ever after the kernel's completion): a busy writer sends once per wake-up, and
//! allocating and freeing an iovec array and a header for every send showed up in profiles.

use std::cell::RefCell;

use fanbench_rt::{BufResult, IoBuf};
use io_uring::{opcode, squeue::Entry, types};

use crate::driver::lifecycle::Orphan;
use crate::driver::op::{Op, OpAble};
use crate::net::SharedFd;

/// The kernel's limit on iovecs per call.
const IOV_MAX: usize = 1024;

/// Idle `MsgVec`s kept per thread for reuse.
const POOL_MAX: usize = 1024;

/// A send's header and iovec array. Boxed, so the `msghdr` the SQE points to never moves;
/// `msghdr.msg_iov` points into `iovecs`' heap buffer, which is not resized while in flight.
struct MsgVec {
    msghdr: libc::msghdr,
    iovecs: Vec<libc::iovec>,
}

thread_local! {
    // Boxed on purpose: the SQE points at the `msghdr` inside, which must not move when the
    // pool (or the op holding it) moves.
    #[allow(clippy::vec_box)]
    static POOL: RefCell<Vec<Box<MsgVec>>> = const { RefCell::new(Vec::new()) };
}

fn take_msgvec() -> Box<MsgVec> {
    POOL.try_with(|p| p.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_else(|| {
            Box::new(MsgVec {
                // SAFETY: an all-zero msghdr is a valid "no address, no control data" header.
                msghdr: unsafe { std::mem::zeroed() },
                iovecs: Vec::new(),
            })
        })
}

fn recycle_msgvec(mut m: Box<MsgVec>) {
    m.iovecs.clear();
    m.msghdr.msg_iov = std::ptr::null_mut();
    m.msghdr.msg_iovlen = 0;
    // During thread teardown the pool may be gone; then the box is simply freed.
    let _ = POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOL_MAX {
            p.push(m);
        }
    });
}

pub(crate) struct SendMsg<B> {
    fd: SharedFd,
    bufs: Vec<B>,
    /// `None` only after drop handed it back to the pool.
    msg: Option<Box<MsgVec>>,
}

impl<B: IoBuf> SendMsg<B> {
    fn new(fd: SharedFd, bufs: Vec<B>) -> SendMsg<B> {
        let mut msg = take_msgvec();
        msg.iovecs.extend(
            bufs.iter()
                .filter(|b| b.bytes_init() > 0)
                .take(IOV_MAX)
                .map(|b| libc::iovec {
                    iov_base: b.stable_ptr() as *mut libc::c_void,
                    iov_len: b.bytes_init(),
                }),
        );
        msg.msghdr.msg_iov = msg.iovecs.as_mut_ptr();
        msg.msghdr.msg_iovlen = msg.iovecs.len() as _;
        SendMsg {
            fd,
            bufs,
            msg: Some(msg),
        }
    }

    fn iov_count(&self) -> usize {
        self.msg.as_ref().map_or(0, |m| m.iovecs.len())
    }
}

impl<B> Drop for SendMsg<B> {
    fn drop(&mut self) {
        // Dropped only once the kernel is done with the op (the registry guarantees it), so
        // the header and iovecs may be reused.
        if let Some(m) = self.msg.take() {
            recycle_msgvec(m);
        }
    }
}

impl<B: IoBuf> Orphan for SendMsg<B> {}

impl<B: IoBuf> OpAble for SendMsg<B> {
    fn sqe(&mut self) -> Entry {
        let msg = self
            .msg
            .as_ref()
            .expect("fanbench-uring: sendmsg op built after drop");
        debug_assert_eq!(
            msg.msghdr.msg_iov as *const libc::iovec,
            msg.iovecs.as_ptr()
        );
        opcode::SendMsg::new(types::Fd(self.fd.raw()), &msg.msghdr as *const libc::msghdr)
            .flags(libc::MSG_NOSIGNAL as u32)
            .build()
    }
}

/// Send `bufs` in order with one vectored call; returns the bytes sent.
pub(crate) async fn sendmsg<B: IoBuf>(fd: SharedFd, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
    let op_data = SendMsg::new(fd, bufs);
    if op_data.iov_count() == 0 {
        return (Ok(0), take_bufs(op_data));
    }
    let op = match Op::submit(op_data) {
        Ok(op) => op,
        Err((e, data)) => return (Err(e), take_bufs(data)),
    };
    let (completion, data) = op.await;
    (
        completion.into_result().map(|n| n as usize),
        take_bufs(data),
    )
}

fn take_bufs<B>(mut data: SendMsg<B>) -> Vec<B> {
    std::mem::take(&mut data.bufs)
}
