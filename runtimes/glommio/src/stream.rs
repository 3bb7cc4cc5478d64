//! Streams: glommio's `TcpStream` behind owned-buffer reads and vectored writes.
//!
//! The two halves share the glommio stream through `Rc<RefCell<_>>`. Both run on the
//! executor's thread and borrow it only inside a synchronous `poll_*` call, never across an
//! await, so the borrows cannot overlap. Glommio keeps separate read and write readiness
//! sources per stream, so a pending read and a pending write do not displace each other's
//! wakers.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

use fanbench_rt::{BufResult, IoBuf, IoBufMut};
use futures_io::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;

/// At most this many buffers go into one `sendmsg(2)` (Linux's `UIO_MAXIOV`); the rest are
/// left for the caller's next call, as after any short write.
const MAX_IOVECS: usize = 1024;

/// A connected glommio TCP stream.
pub struct GlommioStream {
    inner: TcpStream,
}

impl GlommioStream {
    pub(crate) fn new(inner: TcpStream) -> Self {
        GlommioStream { inner }
    }
}

impl fanbench_rt::Stream for GlommioStream {
    type ReadHalf = GlommioReadHalf;
    type WriteHalf = GlommioWriteHalf;

    fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.set_nodelay(nodelay).map_err(io::Error::from)
    }

    fn into_split(self) -> (Self::ReadHalf, Self::WriteHalf) {
        let fd = self.inner.as_raw_fd();
        let shared = Rc::new(RefCell::new(self.inner));
        (
            GlommioReadHalf {
                stream: Rc::clone(&shared),
            },
            GlommioWriteHalf { stream: shared, fd },
        )
    }
}

/// The reading half of a [`GlommioStream`].
pub struct GlommioReadHalf {
    stream: Rc<RefCell<TcpStream>>,
}

/// The writing half of a [`GlommioStream`]. Dropping it shuts down the write direction.
pub struct GlommioWriteHalf {
    stream: Rc<RefCell<TcpStream>>,
    /// The socket; open for as long as `stream` is.
    fd: RawFd,
}

impl fanbench_rt::AsyncReadRent for GlommioReadHalf {
    async fn read<B: IoBufMut>(&mut self, mut buf: B) -> BufResult<usize, B> {
        let (ptr, len) = buf.spare_parts();
        if len == 0 {
            return (Ok(0), buf);
        }
        // SAFETY: `spare_parts` names `len` writable bytes of the buffer's heap memory,
        // which stays put while `buf` is alive (the `IoBufMut` contract); `buf` outlives
        // this future's use of the region and is not touched until the read is over.
        // Zeroing first makes the region initialised, so lending it as `&mut [u8]` to
        // glommio's safe `AsyncRead` is sound.
        let spare = unsafe {
            ptr.write_bytes(0, len);
            std::slice::from_raw_parts_mut(ptr, len)
        };
        let stream = &self.stream;
        let res = poll_fn(|cx| Pin::new(&mut *stream.borrow_mut()).poll_read(cx, spare)).await;
        if let Ok(n) = res {
            let init = buf.bytes_init() + n;
            // SAFETY: recv(2) wrote `n` bytes right after the initialised prefix.
            unsafe { buf.set_init(init) };
        }
        (res, buf)
    }
}

impl fanbench_rt::AsyncWriteRent for GlommioWriteHalf {
    async fn write<B: IoBuf>(&mut self, buf: B) -> BufResult<usize, B> {
        let stream = &self.stream;
        let bytes = buf.as_init_slice();
        let res = poll_fn(|cx| Pin::new(&mut *stream.borrow_mut()).poll_write(cx, bytes)).await;
        (res, buf)
    }

    async fn writev<B: IoBuf>(&mut self, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
        let iovecs: Vec<libc::iovec> = bufs
            .iter()
            .take(MAX_IOVECS)
            .map(|b| libc::iovec {
                iov_base: b.stable_ptr().cast_mut().cast(),
                iov_len: b.bytes_init(),
            })
            .collect();
        let stream = &self.stream;
        let fd = self.fd;
        let res = poll_fn(|cx| loop {
            match send_vectored(fd, &iovecs) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Wait for room the way glommio does it: its `poll_write` retries
                    // send(2) with the first non-empty buffer and, if the socket is still
                    // full, arms its POLLOUT poll and registers our waker.
                    let Some(first) = bufs.iter().find(|b| b.bytes_init() > 0) else {
                        return Poll::Ready(Ok(0));
                    };
                    return Pin::new(&mut *stream.borrow_mut())
                        .poll_write(cx, first.as_init_slice());
                }
                other => return Poll::Ready(other),
            }
        })
        .await;
        (res, bufs)
    }

    fn shutdown(&mut self) -> impl Future<Output = io::Result<()>> {
        std::future::ready(shutdown_socket(self.fd, libc::SHUT_RDWR))
    }
}

impl Drop for GlommioWriteHalf {
    fn drop(&mut self) {
        // Like Tokio's and monoio's owned write halves: the peer sees end of stream. The
        // socket may already be shut down or reset; nothing useful can be done about that.
        let _ = shutdown_socket(self.fd, libc::SHUT_WR);
    }
}

/// One non-blocking `sendmsg(2)` of `iovecs`.
fn send_vectored(fd: RawFd, iovecs: &[libc::iovec]) -> io::Result<usize> {
    // SAFETY: an all-zero msghdr is valid (no address, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iovecs.as_ptr().cast_mut();
    msg.msg_iovlen = iovecs.len();
    // SAFETY: every iovec points to the initialised bytes of a buffer owned by the caller for
    // the duration of this call (the `IoBuf` contract), and the kernel only reads them.
    let sent = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

fn shutdown_socket(fd: RawFd, how: libc::c_int) -> io::Result<()> {
    // SAFETY: `fd` is the stream's socket, kept open by the glommio stream both halves share.
    if unsafe { libc::shutdown(fd, how) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
