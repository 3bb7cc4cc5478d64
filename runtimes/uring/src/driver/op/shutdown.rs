//! IORING_OP_SHUTDOWN with `SHUT_RDWR`: the peer sees end of stream and a recv pending on
//! the same socket completes with 0.

use std::io;

use io_uring::{opcode, squeue::Entry, types};

use crate::driver::lifecycle::Orphan;
use crate::driver::op::{Op, OpAble};
use crate::net::SharedFd;

pub(crate) struct Shutdown {
    fd: SharedFd,
}

impl Orphan for Shutdown {}

impl OpAble for Shutdown {
    fn sqe(&mut self) -> Entry {
        opcode::Shutdown::new(types::Fd(self.fd.raw()), libc::SHUT_RDWR).build()
    }
}

pub(crate) async fn shutdown(fd: SharedFd) -> io::Result<()> {
    let op = Op::submit(Shutdown { fd }).map_err(|(e, _)| e)?;
    let (completion, _) = op.await;
    completion.into_result().map(drop)
}
