//! IORING_OP_CLOSE: how a descriptor the runtime owns is closed.
//!
//! Closing rides in the next batch of SQEs instead of costing its own system call. Outside a
//! runtime (or if the driver is busy, i.e. the close comes from a destructor the driver runs),
//! it falls back to a plain `close(2)`. Either way the number is given up exactly once.

use std::os::fd::RawFd;

use crate::context::Context;

/// Close `fd`, which the caller owns and gives up.
pub(crate) fn close(fd: RawFd) {
    let queued = Context::with_current(|ctx| match ctx.driver.try_borrow_mut() {
        Ok(mut driver) => {
            driver.close_fd(fd);
            true
        }
        Err(_) => false,
    })
    .unwrap_or(false);
    if !queued {
        // SAFETY: the caller owns `fd` and never uses it again.
        unsafe { libc::close(fd) };
    }
}
