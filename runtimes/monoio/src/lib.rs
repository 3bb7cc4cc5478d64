//! The `monoio` and `monoio-epoll` rows of fanbench's runtime trait: monoio's io_uring driver
//! and its legacy (mio/epoll) driver, as two runtime types over one adapter.
//!
//! # Design
//!
//! [`MonoioRuntime<D>`] is a monoio `Runtime` with the timer enabled, built on the calling
//! thread; `D` picks the driver ([`Uring`] for the `monoio` row, [`Epoll`] for
//! `monoio-epoll`), so each row is its own monomorphised type and no I/O path branches on the
//! driver at run time. Monoio has its own owned-buffer traits, so the adapter only wraps
//! fanbench's buffers in monoio's buffer traits (see [`buf`]):
//!
//! - `read` is monoio's `recv` into the buffer's spare capacity (an io_uring `RECV` on the
//!   `monoio` row, readiness then `recv(2)` on `monoio-epoll`): no copy.
//! - `writev` is monoio's `writev`: one io_uring `WRITEV` or one `writev(2)`.
//! - `shutdown` is `shutdown(SHUT_RDWR)` on the socket (monoio's own `shutdown` is `SHUT_WR`
//!   only, which would not complete a read pending on the other half). Dropping the write half
//!   is monoio's own behaviour: `shutdown(SHUT_WR)`.
//! - `accept` on the `monoio-epoll` row is monoio's own. On the `monoio` row it waits for the
//!   listener to become readable with monoio's `readable` (an io_uring `POLL_ADD`) and then
//!   calls `accept4(2)` itself: monoio's io_uring accept, if its future is dropped after the
//!   kernel accepted but before the completion was reaped, drops the new descriptor without
//!   closing it (monoio 0.2.4 `driver/uring/lifecycle.rs`: an ignored op's result is
//!   discarded). A poll carries no resource, so dropping this `accept` at any point loses
//!   nothing. The accepted socket is left blocking, exactly as monoio's io_uring accept leaves
//!   it. Accepting is not on the measured path.
//!
//! Wakers: monoio's waker panics when woken from another thread unless the `sync` feature is
//! on ("waker can only be sent across threads when `sync` feature enabled", monoio
//! `task/harness.rs`). This crate enables it: a foreign wake is sent over a channel to the
//! owning thread and unparks it through its eventfd. The test suite checks it from a plain
//! thread and from another monoio runtime's thread.
//!
//! # Settings (fairness)
//!
//! Every monoio setting is its documented default unless [`MonoioConfig::entries`] is set:
//! 1024 io_uring entries (`monoio` row) or a 1024-event epoll batch (`monoio-epoll`), monoio's
//! default `io_uring::Builder` (no SQPOLL, no `COOP_TASKRUN`/`DEFER_TASKRUN`), and no CPU
//! binding of its own (the harness pins the thread). Features: `iouring`, `legacy`, `sync`,
//! `async-cancel` (monoio's default; a dropped in-flight op is cancelled with `ASYNC_CANCEL`).

pub mod buf;
mod listener;
mod stream;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use monoio::time::TimeDriver;
use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};

pub use listener::MonoioListener;
pub use stream::{MonoioReadHalf, MonoioStream, MonoioWriteHalf};

/// The monoio crate version these rows run (reported by `fanbench runtimes`).
pub const MONOIO_VERSION: &str = "0.2.4";

/// How to build a [`MonoioRuntime`].
#[derive(Debug, Clone, Copy, Default)]
pub struct MonoioConfig {
    /// io_uring queue entries (`monoio`) or epoll events per wait (`monoio-epoll`); `None`
    /// keeps monoio's default, 1024. Monoio raises values below 256 to 256.
    pub entries: Option<u32>,
}

/// Which monoio driver a [`MonoioRuntime`] runs on.
pub trait DriverKind: private::Sealed + 'static {
    /// The row's `--runtime` name.
    const NAME: &'static str;
    /// The monoio driver, with its timer.
    type Driver: monoio::Driver;

    /// Build a monoio runtime with this driver on the calling thread.
    fn build(cfg: MonoioConfig) -> io::Result<monoio::Runtime<Self::Driver>>;

    /// Accept a connection the way this row does it (see the crate docs).
    fn accept(
        listener: &monoio::net::TcpListener,
    ) -> impl Future<Output = io::Result<(monoio::net::TcpStream, SocketAddr)>>;
}

/// monoio's io_uring driver: the `monoio` row.
pub enum Uring {}

/// monoio's legacy driver (mio, epoll): the `monoio-epoll` row.
pub enum Epoll {}

mod private {
    pub trait Sealed {}
    impl Sealed for super::Uring {}
    impl Sealed for super::Epoll {}
}

fn with_entries<D>(builder: RuntimeBuilder<D>, cfg: MonoioConfig) -> RuntimeBuilder<D> {
    match cfg.entries {
        Some(entries) => builder.with_entries(entries),
        None => builder,
    }
}

impl DriverKind for Uring {
    const NAME: &'static str = "monoio";
    type Driver = TimeDriver<IoUringDriver>;

    fn build(cfg: MonoioConfig) -> io::Result<monoio::Runtime<Self::Driver>> {
        with_entries(RuntimeBuilder::<IoUringDriver>::new(), cfg)
            .enable_timer()
            .build()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("monoio io_uring driver could not start (io_uring_setup): {e}"),
                )
            })
    }

    fn accept(
        listener: &monoio::net::TcpListener,
    ) -> impl Future<Output = io::Result<(monoio::net::TcpStream, SocketAddr)>> {
        listener::accept_after_poll(listener)
    }
}

impl DriverKind for Epoll {
    const NAME: &'static str = "monoio-epoll";
    type Driver = TimeDriver<LegacyDriver>;

    fn build(cfg: MonoioConfig) -> io::Result<monoio::Runtime<Self::Driver>> {
        with_entries(RuntimeBuilder::<LegacyDriver>::new(), cfg)
            .enable_timer()
            .build()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("monoio legacy (epoll) driver could not start: {e}"),
                )
            })
    }

    fn accept(
        listener: &monoio::net::TcpListener,
    ) -> impl Future<Output = io::Result<(monoio::net::TcpStream, SocketAddr)>> {
        listener.accept()
    }
}

/// A monoio runtime driving the current thread, on driver `D`.
pub struct MonoioRuntime<D: DriverKind> {
    runtime: monoio::Runtime<D::Driver>,
}

/// The `monoio` row: io_uring driver.
pub type MonoioUringRuntime = MonoioRuntime<Uring>;
/// The `monoio-epoll` row: legacy epoll driver.
pub type MonoioEpollRuntime = MonoioRuntime<Epoll>;

impl<D: DriverKind> MonoioRuntime<D> {
    /// Build the runtime on the calling thread. Fails with the reason when the driver cannot
    /// start here (for the io_uring driver: io_uring disabled or unsupported, too many open
    /// files, an invalid entry count).
    pub fn new(cfg: MonoioConfig) -> io::Result<Self> {
        Ok(MonoioRuntime {
            runtime: D::build(cfg)?,
        })
    }
}

impl<D: DriverKind> fanbench_rt::Runtime for MonoioRuntime<D> {
    type Listener = MonoioListener<D>;
    type Stream = MonoioStream;

    fn block_on<F: Future>(&mut self, fut: F) -> F::Output {
        self.runtime.block_on(fut)
    }

    fn spawn_local<F: Future<Output = ()> + 'static>(fut: F) {
        // Dropping monoio's join handle detaches the task.
        drop(monoio::spawn(fut));
    }

    fn sleep(duration: Duration) -> impl Future<Output = ()> {
        monoio::time::sleep(duration)
    }

    fn listener_from_std(listener: std::net::TcpListener) -> io::Result<Self::Listener> {
        MonoioListener::adopt(listener)
    }

    async fn connect(addr: SocketAddr) -> io::Result<Self::Stream> {
        let stream = monoio::net::TcpStream::connect_addr(addr).await?;
        Ok(MonoioStream::new(stream))
    }
}
