//! The runtime trait fanbench's broker is written against.
//!
//! # Design
//!
//! Completion-based runtimes (io_uring) cannot lend a borrowed buffer to the kernel: the
//! kernel may still write into it after the future that borrowed it was dropped. So all I/O
//! here takes **owned buffers**: a buffer is moved into the operation and handed back with the
//! result, as a [`BufResult`]. Readiness-based runtimes (Tokio) implement this trivially.
//!
//! The trait is deliberately small: run a runtime on the current thread ([`Runtime::block_on`]),
//! spawn a local task, sleep, turn a bound std listener into a runtime listener, accept,
//! connect, read, write, writev, split a stream into halves, shut down. Everything else (the
//! `write_all` family) is built on top in [`ext`].
//!
//! # Threads
//!
//! A [`Runtime`] value drives one thread. Thread-per-core scaling is N runtimes on N threads,
//! each with its own `SO_REUSEPORT` listener made by [`bind_reuseport`], so every runtime row
//! gets exactly the same socket options. Tasks spawned with [`Runtime::spawn_local`] stay on
//! the thread that spawned them and need not be `Send`. Wakers handed out by a runtime must be
//! correct when woken from any thread: the broker's outbound queues are filled by publishers
//! that may run on other threads.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

pub mod buf;
pub mod ext;

pub use buf::{IoBuf, IoBufMut};

/// The result of an owned-buffer operation: the outcome and the buffer, handed back.
pub type BufResult<T, B> = (io::Result<T>, B);

/// A single-threaded async runtime the broker can run on.
///
/// The associated functions other than [`block_on`](Runtime::block_on) act on the runtime
/// driving the current thread and must only be called from inside `block_on`.
pub trait Runtime: Sized + 'static {
    /// A listening socket owned by this runtime.
    type Listener: Listener<Stream = Self::Stream>;
    /// A connected TCP stream owned by this runtime.
    type Stream: Stream;

    /// Drive `fut` to completion on the current thread, running every task spawned meanwhile.
    fn block_on<F: Future>(&mut self, fut: F) -> F::Output;

    /// Spawn a task on the current thread's runtime. It runs until it completes or the
    /// runtime is dropped; it is never moved to another thread.
    fn spawn_local<F: Future<Output = ()> + 'static>(fut: F);

    /// Complete no earlier than `duration` from now.
    fn sleep(duration: Duration) -> impl Future<Output = ()>;

    /// Adopt a bound, listening, non-blocking std listener (see [`bind_reuseport`]).
    fn listener_from_std(listener: std::net::TcpListener) -> io::Result<Self::Listener>;

    /// Open a TCP connection to `addr`.
    fn connect(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>>;
}

/// A listening socket.
pub trait Listener: 'static {
    /// The stream type accepted connections arrive as.
    type Stream: Stream;

    /// Wait for the next connection. Dropping the future must not lose an accepted
    /// connection's descriptor (it is closed, never leaked).
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>>;

    /// The address the listener is bound to.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// A connected TCP stream that can be split into independently used halves.
pub trait Stream: 'static {
    /// The half that reads.
    type ReadHalf: AsyncReadRent;
    /// The half that writes.
    type WriteHalf: AsyncWriteRent;

    /// Set `TCP_NODELAY`.
    fn set_nodelay(&self, nodelay: bool) -> io::Result<()>;

    /// Split into a read half and a write half that may be used concurrently (from tasks
    /// on the same thread). The descriptor is closed when both halves are dropped.
    fn into_split(self) -> (Self::ReadHalf, Self::WriteHalf);
}

/// Owned-buffer reads.
pub trait AsyncReadRent {
    /// Read into the uninitialised tail of `buf` (from `bytes_init()` to `bytes_total()`) and
    /// mark the bytes read as initialised. `Ok(0)` means end of stream (or a full buffer).
    fn read<B: IoBufMut>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>>;
}

/// Owned-buffer writes.
pub trait AsyncWriteRent {
    /// Write from the initialised part of `buf`; returns how many bytes were written.
    fn write<B: IoBuf>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>>;

    /// Write the buffers in order with one vectored call (`writev`/`sendmsg`); returns how
    /// many bytes were written in total, which may be fewer than were offered.
    fn writev<B: IoBuf>(&mut self, bufs: Vec<B>) -> impl Future<Output = BufResult<usize, Vec<B>>>;

    /// Shut the connection down in both directions (`shutdown(SHUT_RDWR)`): the peer sees end
    /// of stream, and a read pending on the other half completes with `Ok(0)`.
    fn shutdown(&mut self) -> impl Future<Output = io::Result<()>>;
}

/// Options for [`bind_reuseport`].
#[derive(Debug, Clone, Copy)]
pub struct ListenOptions {
    /// Set `SO_REUSEPORT` so that several runtimes (one per thread) can each own a listener
    /// on the same address and let the kernel spread connections between them.
    pub reuse_port: bool,
    /// The `listen(2)` backlog.
    pub backlog: i32,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            reuse_port: true,
            backlog: 1024,
        }
    }
}

/// Bind a non-blocking TCP listener with `SO_REUSEADDR` (and `SO_REUSEPORT` when asked).
///
/// Every runtime row binds through this function, so socket options are identical across
/// rows; a runtime adopts the socket with [`Runtime::listener_from_std`].
pub fn bind_reuseport(addr: SocketAddr, opts: ListenOptions) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if opts.reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(opts.backlog)?;
    Ok(socket.into())
}
