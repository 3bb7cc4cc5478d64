//! The listener, and the `monoio` row's drop-safe accept.

use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::{DriverKind, MonoioStream};

/// A monoio listener adopted from a std listener made by `fanbench_rt::bind_reuseport`.
pub struct MonoioListener<D> {
    inner: monoio::net::TcpListener,
    local_addr: SocketAddr,
    _driver: PhantomData<D>,
}

impl<D: DriverKind> MonoioListener<D> {
    /// Hand a bound, listening, non-blocking socket to monoio. Must run inside the runtime.
    pub(crate) fn adopt(listener: std::net::TcpListener) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        Ok(MonoioListener {
            inner: monoio::net::TcpListener::from_std(listener)?,
            local_addr,
            _driver: PhantomData,
        })
    }
}

impl<D: DriverKind> fanbench_rt::Listener for MonoioListener<D> {
    type Stream = MonoioStream;

    async fn accept(&mut self) -> io::Result<(Self::Stream, SocketAddr)> {
        let (stream, peer) = D::accept(&self.inner).await?;
        Ok((MonoioStream::new(stream), peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local_addr)
    }
}

/// Wait until the listener is readable (an io_uring `POLL_ADD`), then `accept4(2)` here, so
/// the new descriptor is owned the moment it exists and a dropped future cannot lose it.
pub(crate) async fn accept_after_poll(
    listener: &monoio::net::TcpListener,
) -> io::Result<(monoio::net::TcpStream, SocketAddr)> {
    loop {
        listener.readable(false).await?;
        // SAFETY: the listener's descriptor is open for as long as `listener` is borrowed.
        let fd = unsafe { BorrowedFd::borrow_raw(listener.as_raw_fd()) };
        // accept4(SOCK_CLOEXEC): blocking, like the sockets monoio's io_uring accept makes.
        match socket2::SockRef::from(&fd).accept() {
            Ok((socket, peer)) => {
                let peer = peer.as_socket().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, "accepted a non-IP peer")
                })?;
                let stream = monoio::net::TcpStream::from_std(socket.into())?;
                return Ok((stream, peer));
            }
            // Readable but already drained (or interrupted): wait again.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
}
