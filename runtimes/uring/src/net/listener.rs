//! A listening socket whose connections arrive through one multishot accept.

use std::future::poll_fn;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::FromRawFd;

use crate::driver::op::accept::AcceptMulti;
use crate::driver::op::MultishotOp;
use crate::net::{SharedFd, UringStream};

/// A TCP listener on the ring.
///
/// The first `accept()` arms a multishot accept that stays armed across calls (and across
/// dropped `accept()` futures): each connection costs one CQE, no SQE. Dropping the
/// listener cancels it and closes connections accepted but not yet handed out.
pub struct UringListener {
    // Field order matters only for clarity: the op holds its own clone of the fd.
    accept: Option<MultishotOp<AcceptMulti>>,
    fd: SharedFd,
    local_addr: SocketAddr,
}

impl UringListener {
    /// Adopt a bound, listening std listener (e.g. from `fanbench_rt::bind_reuseport`).
    pub fn from_std(listener: TcpListener) -> io::Result<UringListener> {
        let local_addr = listener.local_addr()?;
        // io_uring retries would-block operations itself (by polling); a blocking-mode
        // socket makes sure no kernel version hands us EAGAIN instead.
        listener.set_nonblocking(false)?;
        Ok(UringListener {
            accept: None,
            fd: SharedFd::new(listener.into()),
            local_addr,
        })
    }

    /// Bind `addr` with the options every runtime row uses.
    pub fn bind(addr: SocketAddr) -> io::Result<UringListener> {
        Self::from_std(fanbench_rt::bind_reuseport(addr, Default::default())?)
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local_addr)
    }

    /// Wait for the next connection. Cancellation safe: a connection accepted while no
    /// `accept()` future waits is kept for the next call.
    pub async fn accept(&mut self) -> io::Result<(UringStream, SocketAddr)> {
        loop {
            let op = match &mut self.accept {
                Some(op) => op,
                slot @ None => slot.insert(MultishotOp::submit(AcceptMulti::new(self.fd.clone()))?),
            };
            let Some(completion) = poll_fn(|cx| op.poll_next(cx)).await else {
                // The multishot op ended (an error, or the kernel stopped it): re-arm.
                self.accept = None;
                continue;
            };
            let fd = completion.into_result()?;
            // SAFETY: a successful accept result is a new descriptor that we now own.
            let stream = unsafe { TcpStream::from_raw_fd(fd as i32) };
            match stream.peer_addr() {
                Ok(peer) => return Ok((UringStream::from_std(stream)?, peer)),
                // The peer is already gone (reset before we looked): drop it, keep going.
                Err(_) => continue,
            }
        }
    }
}

impl fanbench_rt::Listener for UringListener {
    type Stream = UringStream;

    fn accept(
        &mut self,
    ) -> impl std::future::Future<Output = io::Result<(UringStream, SocketAddr)>> {
        UringListener::accept(self)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local_addr)
    }
}
