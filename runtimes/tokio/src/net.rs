//! Owned-buffer I/O over Tokio's readiness-based TCP types.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::pin::Pin;

use fanbench_rt::{AsyncReadRent, AsyncWriteRent, BufResult, IoBuf, IoBufMut, Listener, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// A Tokio listener.
pub struct TokioListener(TcpListener);

impl TokioListener {
    pub(crate) fn from_std(listener: std::net::TcpListener) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        TcpListener::from_std(listener).map(TokioListener)
    }
}

impl Listener for TokioListener {
    type Stream = TokioStream;

    async fn accept(&mut self) -> io::Result<(TokioStream, SocketAddr)> {
        let (s, addr) = self.0.accept().await?;
        Ok((TokioStream(s), addr))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A Tokio TCP stream.
pub struct TokioStream(TcpStream);

impl TokioStream {
    pub(crate) async fn connect(addr: SocketAddr) -> io::Result<Self> {
        TcpStream::connect(addr).await.map(TokioStream)
    }
}

impl Stream for TokioStream {
    type ReadHalf = TokioReadHalf;
    type WriteHalf = TokioWriteHalf;

    fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.0.set_nodelay(nodelay)
    }

    fn into_split(self) -> (TokioReadHalf, TokioWriteHalf) {
        let (r, w) = self.0.into_split();
        (TokioReadHalf(r), TokioWriteHalf(w))
    }
}

/// The read half of a [`TokioStream`].
pub struct TokioReadHalf(OwnedReadHalf);

/// The write half of a [`TokioStream`].
pub struct TokioWriteHalf(OwnedWriteHalf);

impl AsyncReadRent for TokioReadHalf {
    async fn read<B: IoBufMut>(&mut self, mut buf: B) -> BufResult<usize, B> {
        let init = buf.bytes_init();
        let spare = {
            let (ptr, len) = buf.spare_parts();
            // SAFETY: `ptr..ptr+len` is the spare capacity of `buf`, which this function owns
            // until it returns; the heap memory does not move when `buf` is moved (IoBufMut's
            // contract), and nothing else touches it meanwhile. Tokio's ReadBuf only writes.
            unsafe { std::slice::from_raw_parts_mut(ptr.cast::<MaybeUninit<u8>>(), len) }
        };
        if spare.is_empty() {
            return (Ok(0), buf);
        }
        let mut read_buf = ReadBuf::uninit(spare);
        let res = poll_fn(|cx| Pin::new(&mut self.0).poll_read(cx, &mut read_buf)).await;
        let n = read_buf.filled().len();
        // SAFETY: Tokio initialised exactly the first `n` bytes of the spare capacity.
        unsafe { buf.set_init(init + n) };
        (res.map(|()| n), buf)
    }
}

impl AsyncWriteRent for TokioWriteHalf {
    async fn write<B: IoBuf>(&mut self, buf: B) -> BufResult<usize, B> {
        let res = poll_fn(|cx| Pin::new(&mut self.0).poll_write(cx, buf.as_init_slice())).await;
        (res, buf)
    }

    async fn writev<B: IoBuf>(&mut self, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
        let slices: Vec<IoSlice<'_>> = bufs
            .iter()
            .map(|b| IoSlice::new(b.as_init_slice()))
            .collect();
        let res = poll_fn(|cx| Pin::new(&mut self.0).poll_write_vectored(cx, &slices)).await;
        drop(slices);
        (res, bufs)
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        let stream: &TcpStream = self.0.as_ref();
        socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Both)
    }
}
