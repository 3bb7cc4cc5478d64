//! The listener: glommio's accept, kept alive across dropped `accept` futures.
//!
//! # State
//!
//! Glommio's `TcpListener::shared_accept` first tries `accept(2)` directly and, when no
//! connection is queued, submits an io_uring accept. If that future is dropped while the
//! accept is in flight, glommio cancels it, but a completion that already carries a new
//! descriptor is discarded without closing it (glommio 0.9 `sys/uring.rs`, and its
//! `AcceptedTcpStream` has no `Drop`). So the in-flight accept lives in the listener
//! (`pending`), not in the caller's future: dropping an `accept` future leaves it running,
//! and the next `accept` call picks up its result. The descriptor is wrapped in a glommio
//! `TcpStream` (which closes on drop) in the same poll that completes the accept.
//!
//! Residual window: dropping the *listener* with an accept in flight drops glommio's accept
//! and has glommio cancel it. A connection the kernel accepted in the instant before that,
//! whose completion glommio had not yet reaped, keeps its descriptor open until the process
//! exits; glommio offers no way to cancel an accept and reclaim its result.

use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Poll};

use glommio::net::{AcceptedTcpStream, TcpListener, TcpStream};

use crate::GlommioStream;

/// An accept in flight, owned by the listener.
type PendingAccept = Pin<Box<dyn Future<Output = glommio::Result<TcpStream, ()>>>>;

/// A glommio listener adopted from a std listener made by `fanbench_rt::bind_reuseport`.
pub struct GlommioListener {
    inner: Rc<TcpListener>,
    local_addr: SocketAddr,
    pending: Option<PendingAccept>,
}

impl GlommioListener {
    /// Hand a bound, listening socket to glommio. Must run inside the executor.
    pub(crate) fn adopt(fd: OwnedFd, local_addr: SocketAddr) -> Self {
        // SAFETY: `fd` is an open, bound, listening TCP socket that we own; its ownership
        // moves into glommio's listener, which closes it when dropped.
        let inner = unsafe { TcpListener::from_raw_fd(fd.into_raw_fd()) };
        GlommioListener {
            inner: Rc::new(inner),
            local_addr,
            pending: None,
        }
    }
}

impl fanbench_rt::Listener for GlommioListener {
    type Stream = GlommioStream;

    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> {
        poll_fn(move |cx| {
            let pending = self.pending.get_or_insert_with(|| {
                let listener = Rc::clone(&self.inner);
                Box::pin(async move {
                    let accepted = listener.shared_accept().await?;
                    Ok(AcceptedTcpStream::bind_to_executor(accepted))
                })
            });
            let accepted = ready!(pending.as_mut().poll(cx));
            self.pending = None;
            Poll::Ready(accepted.map_err(io::Error::from).and_then(|stream| {
                let peer = stream.peer_addr().map_err(io::Error::from)?;
                Ok((GlommioStream::new(stream), peer))
            }))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local_addr)
    }
}
