//! An in-flight op as a future, and the trait every opcode implements.
//!
//! # Safety
//!
//! An op's SQE carries raw pointers into the op's data (buffers, iovecs, `msghdr`, socket
//! addresses) and a descriptor number. That data lives in the [`Op`] while its future is alive
//! and moves into the registry (`Lifecycle::Ignored`) when the future is dropped before the
//! completion, so it is never freed while the kernel may still use it. Every buffer is
//! heap-allocated (the `IoBuf` contracts), so moving the op data does not move the memory
//! the SQE points to. Descriptors are held as `SharedFd` clones by the op data, so the
//! number cannot be closed and reused by another file while the op is in flight.
//!
//! The `Op` holds an `Rc<Context>`: the driver cannot be dropped while an op future exists.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll};

use io_uring::squeue::Entry;

use crate::context::Context;
use crate::driver::lifecycle::{Completion, Orphan};

pub(crate) mod accept;
pub(crate) mod close;
pub(crate) mod connect;
pub(crate) mod recv;
pub(crate) mod send;
pub(crate) mod sendmsg;
pub(crate) mod shutdown;
pub(crate) mod timeout;
pub(crate) mod wake;

/// An opcode: owns everything its SQE points to.
pub(crate) trait OpAble: Orphan + Unpin + Sized {
    /// Build the SQE (without `user_data`, which the driver sets). Every pointer it takes
    /// points into the heap, so the op data may move after this call.
    fn sqe(&mut self) -> Entry;
}

/// A single-shot op in flight. Resolves to its completion and its data back.
pub(crate) struct Op<T: OpAble> {
    ctx: Rc<Context>,
    key: usize,
    /// `None` once the completion was collected.
    data: Option<T>,
}

impl<T: OpAble> Op<T> {
    /// Queue `data`'s SQE on the current runtime. Fails (handing the data back) outside a
    /// runtime.
    pub(crate) fn submit(mut data: T) -> Result<Op<T>, (io::Error, T)> {
        let ctx = match Context::current() {
            Ok(ctx) => ctx,
            Err(e) => return Err((e, data)),
        };
        let sqe = data.sqe();
        let key = ctx.driver.borrow_mut().submit(sqe);
        Ok(Op {
            ctx,
            key,
            data: Some(data),
        })
    }
}

impl<T: OpAble> Future for Op<T> {
    type Output = (Completion, T);

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut driver = this.ctx.driver.borrow_mut();
        let completion = match driver.poll_op(this.key, cx) {
            Poll::Ready(c) => c,
            Poll::Pending => return Poll::Pending,
        };
        let data = this
            .data
            .take()
            .expect("fanbench-uring: op polled after it completed");
        Poll::Ready((completion, data))
    }
}

impl<T: OpAble> Drop for Op<T> {
    fn drop(&mut self) {
        let Some(data) = self.data.take() else {
            return;
        };
        // The kernel may still write into `data`: hand it to the registry, which keeps it
        // until the completion (or frees it now if the completion already arrived).
        let leftover = match self.ctx.driver.try_borrow_mut() {
            Ok(mut driver) => driver.orphan(self.key, Box::new(data)),
            Err(_) => {
                // Only reachable if an op is dropped from inside the driver, which the
                // driver never does; leaking is the sound fallback.
                std::mem::forget(data);
                None
            }
        };
        drop(leftover);
    }
}

/// A multishot op (accept) owned by a long-lived handle.
pub(crate) struct MultishotOp<T: OpAble> {
    ctx: Rc<Context>,
    key: usize,
    data: Option<T>,
}

impl<T: OpAble> MultishotOp<T> {
    pub(crate) fn submit(mut data: T) -> io::Result<MultishotOp<T>> {
        let ctx = Context::current()?;
        let sqe = data.sqe();
        let key = ctx.driver.borrow_mut().submit_multishot(sqe);
        Ok(MultishotOp {
            ctx,
            key,
            data: Some(data),
        })
    }

    /// The next completion; `None` once the op has finished and every completion was taken
    /// (the handle must then be dropped and the op submitted again).
    pub(crate) fn poll_next(&mut self, cx: &mut TaskContext<'_>) -> Poll<Option<Completion>> {
        if self.data.is_none() {
            return Poll::Ready(None);
        }
        let polled = self.ctx.driver.borrow_mut().poll_multishot(self.key, cx);
        if let Poll::Ready(None) = polled {
            // The slot was freed by `poll_multishot`.
            self.data = None;
        }
        polled
    }
}

impl<T: OpAble> Drop for MultishotOp<T> {
    fn drop(&mut self) {
        let Some(data) = self.data.take() else {
            return;
        };
        let leftover = match self.ctx.driver.try_borrow_mut() {
            Ok(mut driver) => driver.orphan_multishot(self.key, Box::new(data)),
            Err(_) => {
                std::mem::forget(data);
                None
            }
        };
        drop(leftover);
    }
}
