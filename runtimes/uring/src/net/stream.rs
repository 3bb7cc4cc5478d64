//! A connected TCP stream and its read and write halves.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpStream};

use fanbench_rt::{AsyncReadRent, AsyncWriteRent, BufResult, IoBuf, IoBufMut};
use socket2::SockRef;

use crate::driver::op::{connect, recv, send, sendmsg, shutdown};
use crate::net::SharedFd;

/// A TCP stream on the ring. Reads are IORING_OP_RECV, writes IORING_OP_SEND / SENDMSG.
pub struct UringStream {
    fd: SharedFd,
}

/// The read half of a [`UringStream`].
pub struct UringReadHalf {
    fd: SharedFd,
}

/// The write half of a [`UringStream`].
pub struct UringWriteHalf {
    fd: SharedFd,
}

impl UringStream {
    /// Adopt a connected std stream.
    pub fn from_std(stream: TcpStream) -> io::Result<UringStream> {
        stream.set_nonblocking(false)?;
        Ok(UringStream {
            fd: SharedFd::new(stream.into()),
        })
    }

    /// Open a connection to `addr`.
    pub async fn connect(addr: SocketAddr) -> io::Result<UringStream> {
        let socket = connect::connect(addr).await?;
        Ok(UringStream {
            fd: SharedFd::new(socket),
        })
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        SockRef::from(&self.fd)
            .peer_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("peer address is not an IP address"))
    }
}

impl fanbench_rt::Stream for UringStream {
    type ReadHalf = UringReadHalf;
    type WriteHalf = UringWriteHalf;

    fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        SockRef::from(&self.fd).set_tcp_nodelay(nodelay)
    }

    fn into_split(self) -> (UringReadHalf, UringWriteHalf) {
        (
            UringReadHalf {
                fd: self.fd.clone(),
            },
            UringWriteHalf { fd: self.fd },
        )
    }
}

macro_rules! impl_read {
    ($t:ty) => {
        impl AsyncReadRent for $t {
            fn read<B: IoBufMut>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
                recv::recv(self.fd.clone(), buf)
            }
        }
    };
}

macro_rules! impl_write {
    ($t:ty) => {
        impl AsyncWriteRent for $t {
            fn write<B: IoBuf>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
                send::send(self.fd.clone(), buf)
            }

            fn writev<B: IoBuf>(
                &mut self,
                bufs: Vec<B>,
            ) -> impl Future<Output = BufResult<usize, Vec<B>>> {
                sendmsg::sendmsg(self.fd.clone(), bufs)
            }

            fn shutdown(&mut self) -> impl Future<Output = io::Result<()>> {
                shutdown::shutdown(self.fd.clone())
            }
        }
    };
}

impl_read!(UringStream);
impl_read!(UringReadHalf);
impl_write!(UringStream);
impl_write!(UringWriteHalf);
