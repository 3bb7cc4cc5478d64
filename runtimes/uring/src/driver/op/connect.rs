//! IORING_OP_CONNECT on a fresh socket.
//!
//! The op owns the socket and its address (boxed: the kernel reads it when it consumes the
//! SQE). If the future is dropped before the completion, the socket is closed when the
//! completion (or the cancel's) arrives: a cancelled connect leaks no descriptor.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};

use io_uring::{opcode, squeue::Entry, types};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::driver::lifecycle::Orphan;
use crate::driver::op::{Op, OpAble};

pub(crate) struct Connect {
    socket: OwnedFd,
    addr: Box<SockAddr>,
}

impl Orphan for Connect {}

impl OpAble for Connect {
    fn sqe(&mut self) -> Entry {
        opcode::Connect::new(
            types::Fd(self.socket.as_raw_fd()),
            self.addr.as_ptr() as *const libc::sockaddr,
            self.addr.len(),
        )
        .build()
    }
}

/// Open a TCP connection to `addr`; returns the connected (blocking-mode) socket.
pub(crate) async fn connect(addr: SocketAddr) -> io::Result<OwnedFd> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    let op = Op::submit(Connect {
        socket: socket.into(),
        addr: Box::new(SockAddr::from(addr)),
    })
    .map_err(|(e, _)| e)?;
    let (completion, data) = op.await;
    completion
        .into_result()
        .map_err(|e| io::Error::new(e.kind(), format!("connect to {addr}: {e}")))?;
    Ok(data.socket)
}
