//! The eventfd read that ends a park when another thread wakes a task.
//!
//! The driver keeps one READ of the runtime's eventfd in flight (re-armed on every tick after
//! it completes). A remote waker writes the eventfd only when the runtime is parked (see
//! `executor::waker`), so the read completes, `io_uring_enter` returns, and the runtime drains
//! its remote run queue.

use std::os::fd::AsRawFd;
use std::sync::Arc;

use io_uring::{opcode, squeue::Entry, types};

use crate::driver::lifecycle::Orphan;
use crate::driver::op::OpAble;
use crate::executor::Shared;

/// A pending read of the eventfd. Owns the 8-byte target and a reference that keeps the
/// eventfd open until the read completes.
pub(crate) struct WakeRead {
    buf: Box<u64>,
    shared: Arc<Shared>,
}

impl WakeRead {
    pub(crate) fn new(shared: Arc<Shared>) -> WakeRead {
        WakeRead {
            buf: Box::new(0),
            shared,
        }
    }
}

impl Orphan for WakeRead {}

impl OpAble for WakeRead {
    fn sqe(&mut self) -> Entry {
        let fd = self.shared.eventfd().as_raw_fd();
        let ptr: *mut u64 = &mut *self.buf;
        opcode::Read::new(types::Fd(fd), ptr.cast(), std::mem::size_of::<u64>() as u32).build()
    }
}
