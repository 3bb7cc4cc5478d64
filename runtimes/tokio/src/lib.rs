//! The Tokio rows of fanbench's runtime trait.
//!
//! - `tokio`: [`TokioRuntime`], a current-thread runtime with a `LocalSet`; thread-per-core
//!   scaling is one of these per thread, each with its own `SO_REUSEPORT` listener.
//! - `tokio-mt`: [`TokioMtRuntime`], the multi-thread work-stealing runtime most Tokio users
//!   run. The broker's tasks go through [`WorkStealing`], which `tokio::spawn`s them so any
//!   worker may run them.
//!
//! Both share the stream type: Tokio is readiness-based, so owned-buffer I/O is a thin layer
//! over `poll_read`/`poll_write_vectored` with no extra copy.

mod net;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use fanbench_broker::{ReaderTask, Spawner, WriterTask};
use fanbench_rt::Runtime;
use tokio::task::LocalSet;

pub use net::{TokioListener, TokioReadHalf, TokioStream, TokioWriteHalf};

/// A current-thread Tokio runtime (the `tokio` row).
pub struct TokioRuntime {
    rt: tokio::runtime::Runtime,
    local: LocalSet,
}

impl TokioRuntime {
    /// Build a current-thread runtime with I/O and timers enabled.
    pub fn new() -> io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(TokioRuntime {
            rt,
            local: LocalSet::new(),
        })
    }
}

/// The multi-thread, work-stealing Tokio runtime (the `tokio-mt` row).
pub struct TokioMtRuntime {
    rt: tokio::runtime::Runtime,
    local: LocalSet,
}

impl TokioMtRuntime {
    /// Build a multi-thread runtime with `worker_threads` workers, each pinned by `on_start`
    /// (called on every worker thread as it starts, with the worker's index).
    pub fn new(
        worker_threads: usize,
        on_start: impl Fn(usize) + Send + Sync + 'static,
    ) -> io::Result<Self> {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads.max(1))
            .on_thread_start(move || {
                on_start(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
            })
            .enable_all()
            .build()?;
        Ok(TokioMtRuntime {
            rt,
            local: LocalSet::new(),
        })
    }
}

macro_rules! tokio_runtime_impl {
    ($ty:ty) => {
        impl Runtime for $ty {
            type Listener = TokioListener;
            type Stream = TokioStream;

            fn block_on<F: Future>(&mut self, fut: F) -> F::Output {
                self.local.block_on(&self.rt, fut)
            }

            fn spawn_local<F: Future<Output = ()> + 'static>(fut: F) {
                tokio::task::spawn_local(fut);
            }

            fn sleep(duration: Duration) -> impl Future<Output = ()> {
                tokio::time::sleep(duration)
            }

            fn listener_from_std(listener: std::net::TcpListener) -> io::Result<TokioListener> {
                TokioListener::from_std(listener)
            }

            fn connect(addr: SocketAddr) -> impl Future<Output = io::Result<TokioStream>> {
                TokioStream::connect(addr)
            }
        }
    };
}

tokio_runtime_impl!(TokioRuntime);
tokio_runtime_impl!(TokioMtRuntime);

/// Spawns the broker's tasks onto the work-stealing pool (`tokio::spawn`).
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkStealing;

impl Spawner<TokioMtRuntime> for WorkStealing {
    fn spawn_reader(&self, task: ReaderTask<TokioMtRuntime>) {
        tokio::spawn(task.run());
    }

    fn spawn_writer(&self, task: WriterTask<TokioMtRuntime>) {
        tokio::spawn(task.run());
    }
}
