//! Shutdown (`SHUT_RDWR`) as a plain `shutdown(2)`, not IORING_OP_SHUTDOWN.
//!
//! The kernel always punts IORING_OP_SHUTDOWN to an io-wq worker thread (it never tries it
//! inline): on this project's 6.18 VM, `io_uring:io_uring_queue_async_work` fired once per
//! closed connection, and the first punt creates an `iou-wrk` thread in the server. A TCP
//! shutdown never blocks, so the synchronous call costs one short system call on a path
//! taken once per connection, and no thread. The peer sees end of stream and a recv pending
//! on the same socket completes with 0, as before.

use std::io;

use crate::net::SharedFd;

pub(crate) async fn shutdown(fd: SharedFd) -> io::Result<()> {
    // SAFETY: `fd` is open while the `SharedFd` clone is alive; shutdown takes no pointers.
    let rc = unsafe { libc::shutdown(fd.raw(), libc::SHUT_RDWR) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
