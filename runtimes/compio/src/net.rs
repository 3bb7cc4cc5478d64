//! Listener and stream: compio's own TCP types behind fanbench's traits.

use std::io;
use std::net::{Shutdown, SocketAddr};

use compio::driver::op::ShutdownSocket;
use compio::driver::ToSharedFd;
use compio::io::{AsyncRead, AsyncWrite};
use fanbench_rt::{AsyncReadRent, AsyncWriteRent, BufResult, IoBuf, IoBufMut};

use crate::buf::{SpareTail, WriteBuf, WriteBufs};

/// A listening socket driven by compio (an io_uring `ACCEPT` per call).
///
/// Dropping an in-flight [`accept`](fanbench_rt::Listener::accept) future cancels the op;
/// compio keeps the op until its completion arrives and closes a descriptor accepted in the
/// meantime, so nothing leaks.
pub struct CompioListener(pub(crate) compio::net::TcpListener);

impl fanbench_rt::Listener for CompioListener {
    type Stream = CompioStream;

    async fn accept(&mut self) -> io::Result<(CompioStream, SocketAddr)> {
        let (stream, peer) = self.0.accept().await?;
        Ok((CompioStream(stream), peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A connected TCP stream driven by compio.
pub struct CompioStream(pub(crate) compio::net::TcpStream);

impl fanbench_rt::Stream for CompioStream {
    type ReadHalf = CompioReadHalf;
    type WriteHalf = CompioWriteHalf;

    fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.0.set_nodelay(nodelay)
    }

    /// compio's own `into_split`: two handles on one shared descriptor, closed when both
    /// are dropped.
    fn into_split(self) -> (CompioReadHalf, CompioWriteHalf) {
        let (read, write) = self.0.into_split();
        (CompioReadHalf(read), CompioWriteHalf(write))
    }
}

/// The reading half of a [`CompioStream`].
pub struct CompioReadHalf(compio::net::TcpStream);

impl AsyncReadRent for CompioReadHalf {
    /// One io_uring `RECV` into the buffer's spare tail. A full buffer returns `Ok(0)` at
    /// once (a zero-length `RECV` would wait for data instead).
    async fn read<B: IoBufMut>(&mut self, buf: B) -> BufResult<usize, B> {
        if buf.bytes_init() >= buf.bytes_total() {
            return (Ok(0), buf);
        }
        let compio::BufResult(res, tail) = self.0.read(SpareTail::new(buf)).await;
        (res, tail.into_inner())
    }
}

/// The writing half of a [`CompioStream`].
pub struct CompioWriteHalf(compio::net::TcpStream);

impl AsyncWriteRent for CompioWriteHalf {
    /// One io_uring `SEND`.
    async fn write<B: IoBuf>(&mut self, buf: B) -> BufResult<usize, B> {
        let compio::BufResult(res, buf) = self.0.write(WriteBuf(buf)).await;
        (res, buf.0)
    }

    /// One io_uring `SENDMSG` carrying every buffer as an iovec.
    async fn writev<B: IoBuf>(&mut self, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
        let compio::BufResult(res, bufs) = self.0.write_vectored(WriteBufs(bufs)).await;
        (res, bufs.0)
    }

    /// An io_uring `SHUTDOWN` with `SHUT_RDWR`. (compio's `AsyncWrite::shutdown` only shuts
    /// the write direction; the trait asks for both, so a read pending on the other half
    /// completes.)
    async fn shutdown(&mut self) -> io::Result<()> {
        let op = ShutdownSocket::new(self.0.to_shared_fd(), Shutdown::Both);
        match compio::runtime::submit(op).await.0 {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            Err(e) => Err(e),
        }
    }
}
