//! The kernel timeout behind every timer: one IORING_OP_TIMEOUT for the earliest deadline.
//!
//! The timeout is relative (CLOCK_MONOTONIC, like `Instant`), computed when it is armed, so
//! it fires no earlier than the deadline; a sleep checks the clock itself before completing,
//! so a timer never fires early whatever the kernel does. The timespec lives in a `Box` the
//! op owns: with SQPOLL the kernel reads it when its thread consumes the SQE, not at enter.

use std::time::Duration;

use io_uring::{opcode, squeue::Entry, types::Timespec};

use crate::driver::lifecycle::Orphan;
use crate::driver::op::OpAble;

pub(crate) struct KernelTimeout {
    timespec: Box<Timespec>,
}

impl KernelTimeout {
    pub(crate) fn new(after: Duration) -> KernelTimeout {
        KernelTimeout {
            timespec: Box::new(Timespec::from(after)),
        }
    }
}

impl Orphan for KernelTimeout {}

impl OpAble for KernelTimeout {
    fn sqe(&mut self) -> Entry {
        opcode::Timeout::new(&*self.timespec as *const Timespec).build()
    }
}
