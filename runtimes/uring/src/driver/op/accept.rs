//! Multishot IORING_OP_ACCEPT: one SQE, one CQE per accepted connection.
//!
//! The op is owned by the listener, not by an `accept()` future: dropping an accept future
//! loses nothing (descriptors that arrive meanwhile wait in the registry slot). When the
//! listener is dropped the op is cancelled, and every descriptor still queued or arriving
//! before the final completion is closed (`on_orphan_completion`): no fd leaks.

use io_uring::{opcode, squeue::Entry, types};

use crate::driver::lifecycle::{Completion, Orphan};
use crate::driver::op::OpAble;
use crate::net::SharedFd;

pub(crate) struct AcceptMulti {
    listener: SharedFd,
}

impl AcceptMulti {
    pub(crate) fn new(listener: SharedFd) -> AcceptMulti {
        AcceptMulti { listener }
    }
}

impl Orphan for AcceptMulti {
    fn on_orphan_completion(&mut self, completion: Completion) {
        if completion.result >= 0 {
            // SAFETY: a non-negative accept result is a new descriptor that nobody else
            // received; we own it and close it exactly once.
            unsafe { libc::close(completion.result) };
        }
    }
}

impl OpAble for AcceptMulti {
    fn sqe(&mut self) -> Entry {
        opcode::AcceptMulti::new(types::Fd(self.listener.raw()))
            .flags(libc::SOCK_CLOEXEC)
            .build()
    }
}
