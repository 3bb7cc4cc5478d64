//! Blocking std::net sockets behind fanbench's owned-buffer traits.
//!
//! Every read and write is one blocking syscall made inside `poll`, so these futures are
//! always `Ready` on their first poll: the thread blocks in the kernel, as a
//! thread-per-connection server does. Only `accept` is different (see [`ThreadsListener`]).

use std::future::poll_fn;
use std::io::{self, IoSlice, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use fanbench_rt::{AsyncReadRent, AsyncWriteRent, BufResult, IoBuf, IoBufMut};

/// How long one poll of `accept` waits for a connection before yielding (see
/// [`ThreadsListener`]).
pub const ACCEPT_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// How long one blocking send may wait for room in the socket buffer before the write yields
/// (`SO_SNDTIMEO`, see [`ThreadsWriteHalf`]).
pub const WRITE_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A listening socket whose `accept` waits in `poll(2)` for at most
/// [`ACCEPT_POLL_INTERVAL`], then wakes its own task and returns `Pending`.
///
/// Why not a blocking `accept(2)`: the broker's accept loop selects between `accept()` and
/// its shutdown signal in one task, and a thread blocked in `accept(2)` would never get to
/// look at the signal. Waiting in slices lets the select check it at least every 50 ms.
/// This only bounds shutdown latency; it is not on the measured path (connections are set
/// up before a measurement starts). The listener stays non-blocking, as
/// [`fanbench_rt::bind_reuseport`] made it; accepted streams are made blocking.
///
/// Dropping an `accept` future never leaks: a descriptor is only ever accepted inside the
/// poll that returns it.
pub struct ThreadsListener(pub(crate) TcpListener);

impl ThreadsListener {
    fn poll_accept(&self) -> Poll<io::Result<(ThreadsStream, SocketAddr)>> {
        loop {
            match self.0.accept() {
                Ok((stream, peer)) => {
                    return Poll::Ready(
                        stream
                            .set_nonblocking(false)
                            .map(|()| (ThreadsStream::new(stream), peer)),
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    match wait_readable(&self.0, ACCEPT_POLL_INTERVAL) {
                        Ok(true) => continue,
                        Ok(false) => return Poll::Pending,
                        Err(e) => return Poll::Ready(Err(e)),
                    }
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// Wait up to `timeout` for `fd` to become readable; `Ok(false)` on timeout or signal.
fn wait_readable(fd: &impl AsRawFd, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `pfd` is a valid pollfd for the duration of the call and nfds is 1.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(n > 0)
}

impl fanbench_rt::Listener for ThreadsListener {
    type Stream = ThreadsStream;

    fn accept(
        &mut self,
    ) -> impl std::future::Future<Output = io::Result<(ThreadsStream, SocketAddr)>> {
        poll_fn(|cx| {
            let res = self.poll_accept();
            if res.is_pending() {
                // Nothing will wake us for a connection: ask to be polled again, after the
                // executor has polled whatever else this task is selecting on.
                cx.waker().wake_by_ref();
            }
            res
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A blocking TCP stream. Its halves share one descriptor (an `Arc`, not a `dup`), which is
/// closed when both are dropped.
pub struct ThreadsStream(Arc<TcpStream>);

impl ThreadsStream {
    pub(crate) fn new(stream: TcpStream) -> Self {
        ThreadsStream(Arc::new(stream))
    }
}

impl fanbench_rt::Stream for ThreadsStream {
    type ReadHalf = ThreadsReadHalf;
    type WriteHalf = ThreadsWriteHalf;

    fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.0.set_nodelay(nodelay)
    }

    fn into_split(self) -> (ThreadsReadHalf, ThreadsWriteHalf) {
        // Sends block in slices of WRITE_POLL_INTERVAL (see ThreadsWriteHalf). If the option
        // cannot be set, writes simply block without slices, as before.
        let _ = self.0.set_write_timeout(Some(WRITE_POLL_INTERVAL));
        (ThreadsReadHalf(self.0.clone()), ThreadsWriteHalf(self.0))
    }
}

/// The reading half of a [`ThreadsStream`]; `Send`, so it can move to its own thread.
pub struct ThreadsReadHalf(Arc<TcpStream>);

impl AsyncReadRent for ThreadsReadHalf {
    /// One blocking `recv(2)` into the buffer's spare tail.
    async fn read<B: IoBufMut>(&mut self, mut buf: B) -> BufResult<usize, B> {
        let init = buf.bytes_init();
        let (ptr, len) = buf.spare_parts();
        if len == 0 {
            return (Ok(0), buf);
        }
        loop {
            // SAFETY: `ptr..ptr + len` is writable memory owned by `buf` (the `IoBufMut`
            // contract), which is not otherwise touched during the call.
            let n = unsafe { libc::recv(self.0.as_raw_fd(), ptr.cast(), len, 0) };
            if let Ok(n) = usize::try_from(n) {
                // SAFETY: the kernel initialised `n` bytes after the first `init`.
                unsafe { buf.set_init(init + n) };
                return (Ok(n), buf);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return (Err(e), buf);
            }
        }
    }
}

/// The writing half of a [`ThreadsStream`]; `Send`, so it can move to its own thread.
pub struct ThreadsWriteHalf(Arc<TcpStream>);

impl AsyncWriteRent for ThreadsWriteHalf {
    /// One blocking `send(2)`.
    async fn write<B: IoBuf>(&mut self, buf: B) -> BufResult<usize, B> {
        let res = retry_interrupted(|| (&*self.0).write(buf.as_init_slice()));
        (res, buf)
    }

    /// One blocking `writev(2)` (std's `write_vectored`; at most `IOV_MAX` buffers go out
    /// per call, the rest is a short write). A send that finds no room blocks for at most
    /// [`WRITE_POLL_INTERVAL`] (`SO_SNDTIMEO`); then the write wakes its own task and returns
    /// `Pending`, so a task selecting between the write and a timer (the broker's write
    /// deadline) gets to look at the timer. A send that makes progress returns at once.
    async fn writev<B: IoBuf>(&mut self, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
        let res = {
            let slices: Vec<IoSlice<'_>> = bufs
                .iter()
                .map(|b| IoSlice::new(b.as_init_slice()))
                .collect();
            poll_fn(
                |cx| match retry_interrupted(|| (&*self.0).write_vectored(&slices)) {
                    Err(e)
                        if e.kind() == io::ErrorKind::WouldBlock
                            || e.kind() == io::ErrorKind::TimedOut =>
                    {
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                    res => Poll::Ready(res),
                },
            )
            .await
        };
        (res, bufs)
    }

    /// `shutdown(SHUT_RDWR)`: a `recv` blocked on the read half (another thread) returns 0.
    async fn shutdown(&mut self) -> io::Result<()> {
        match self.0.shutdown(Shutdown::Both) {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            res => res,
        }
    }
}

fn retry_interrupted<T>(mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            res => return res,
        }
    }
}
