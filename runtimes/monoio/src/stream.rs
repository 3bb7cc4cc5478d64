//! Streams: monoio's `TcpStream` and its owned halves, behind fanbench's traits.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use fanbench_rt::{BufResult, IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;

use crate::buf::{IoVecs, SpareTail, Whole};

/// A connected monoio TCP stream.
pub struct MonoioStream {
    inner: TcpStream,
}

impl MonoioStream {
    pub(crate) fn new(inner: TcpStream) -> Self {
        MonoioStream { inner }
    }
}

impl fanbench_rt::Stream for MonoioStream {
    type ReadHalf = MonoioReadHalf;
    type WriteHalf = MonoioWriteHalf;

    fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.set_nodelay(nodelay)
    }

    fn into_split(self) -> (Self::ReadHalf, Self::WriteHalf) {
        let fd = self.inner.as_raw_fd();
        let (read, write) = self.inner.into_split();
        (
            MonoioReadHalf { inner: read },
            MonoioWriteHalf { inner: write, fd },
        )
    }
}

/// The reading half of a [`MonoioStream`].
pub struct MonoioReadHalf {
    inner: OwnedReadHalf<TcpStream>,
}

/// The writing half of a [`MonoioStream`]. Dropping it shuts down the write direction
/// (monoio's own behaviour).
pub struct MonoioWriteHalf {
    inner: OwnedWriteHalf<TcpStream>,
    /// The socket; open for as long as either half is.
    fd: RawFd,
}

impl fanbench_rt::AsyncReadRent for MonoioReadHalf {
    async fn read<B: IoBufMut>(&mut self, buf: B) -> BufResult<usize, B> {
        let (res, SpareTail(buf)) = self.inner.read(SpareTail(buf)).await;
        (res, buf)
    }
}

impl fanbench_rt::AsyncWriteRent for MonoioWriteHalf {
    async fn write<B: IoBuf>(&mut self, buf: B) -> BufResult<usize, B> {
        let (res, Whole(buf)) = self.inner.write(Whole(buf)).await;
        (res, buf)
    }

    async fn writev<B: IoBuf>(&mut self, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
        let (res, iovecs) = self.inner.writev(IoVecs::new(bufs)).await;
        (res, iovecs.into_inner())
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        // SAFETY: `fd` is the stream's socket, kept open by the monoio stream both halves
        // share; shutdown(2) does not close it.
        if unsafe { libc::shutdown(self.fd, libc::SHUT_RDWR) } < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}
