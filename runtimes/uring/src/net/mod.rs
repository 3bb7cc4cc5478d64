//! TCP on the ring: a listener with multishot accept, streams, and their split halves.

mod listener;
mod stream;

use std::os::fd::{AsFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::rc::Rc;

pub use listener::UringListener;
pub use stream::{UringReadHalf, UringStream, UringWriteHalf};

/// A descriptor shared by a stream's halves and by every op in flight on it.
///
/// The number is closed (see `driver::op::close`) when the last clone is dropped, which is
/// never before the last op using it has completed: an in-flight op holds a clone, so the
/// number cannot be reused by another file while the kernel may still act on it.
#[derive(Clone)]
pub(crate) struct SharedFd(Rc<FdInner>);

struct FdInner {
    fd: RawFd,
}

impl SharedFd {
    pub(crate) fn new(fd: OwnedFd) -> SharedFd {
        SharedFd(Rc::new(FdInner {
            fd: fd.into_raw_fd(),
        }))
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.0.fd
    }
}

impl AsFd for SharedFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the descriptor stays open while `self` (a clone of the owner) is alive.
        unsafe { BorrowedFd::borrow_raw(self.0.fd) }
    }
}

impl Drop for FdInner {
    fn drop(&mut self) {
        crate::driver::op::close::close(self.fd);
    }
}
