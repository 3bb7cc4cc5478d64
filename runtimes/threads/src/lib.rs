//! The `threads` row: blocking std::net, a thread per task. The pre-async baseline.
//!
//! This is how servers were written before async I/O: every connection gets a thread that
//! blocks in `recv(2)` reading commands, and a thread that blocks waiting for its outbound
//! queue and then in `writev(2)` writing it. The broker is the same code as on every other
//! row: it is driven by a minimal executor ([`ThreadsRuntime`]) whose I/O futures block.
//!
//! # Pieces
//!
//! * [`ThreadsRuntime`]'s `block_on`: a park/unpark executor on the current thread (see
//!   [`executor`]). Wakers unpark the thread and are correct from any thread; `sleep`
//!   deadlines are honoured with `park_timeout`, so a task waiting for "queue non-empty or
//!   ping timer" never blocks on the timer.
//! * I/O ([`net`]): reads and writes are single blocking syscalls made inside `poll`
//!   (always `Ready`); `writev` is one `writev(2)`; `shutdown` is `shutdown(SHUT_RDWR)`,
//!   which makes a `recv` blocked on the other half (another thread) return 0. `accept`
//!   waits in `poll(2)` slices of 50 ms so a select with a shutdown signal still works.
//! * [`ThreadSpawner`]: the broker's `Spawner`: a new OS thread per reader and per writer
//!   task, each running its own `ThreadsRuntime`.
//!
//! # Settings (fairness)
//!
//! `--threads N` is ignored: the number of threads follows the number of connections
//! (two per connection, plus the accept thread). Threads get std's default stack size
//! (2 MiB, reserved not committed) and inherit the accept thread's CPU affinity, so the
//! harness's `--cpus` confines them as it confines every row; buffer sizes and queue bounds
//! are the broker's, the same as every row.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

pub mod executor;
pub mod net;
mod spawner;

pub use net::{ThreadsListener, ThreadsReadHalf, ThreadsStream, ThreadsWriteHalf};
pub use spawner::ThreadSpawner;

/// The park/unpark executor of one thread (see the crate docs).
///
/// Not `Send`: it runs on the thread that created it.
pub struct ThreadsRuntime {
    core: Rc<executor::Core>,
}

impl ThreadsRuntime {
    /// A runtime for the current thread. Cannot fail: it needs nothing from the kernel.
    pub fn new() -> Self {
        ThreadsRuntime {
            core: executor::Core::new(),
        }
    }
}

impl Default for ThreadsRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl fanbench_rt::Runtime for ThreadsRuntime {
    type Listener = ThreadsListener;
    type Stream = ThreadsStream;

    fn block_on<F: Future>(&mut self, fut: F) -> F::Output {
        self.core.block_on(fut)
    }

    fn spawn_local<F: Future<Output = ()> + 'static>(fut: F) {
        executor::spawn_local(fut);
    }

    fn sleep(duration: Duration) -> impl Future<Output = ()> {
        executor::Sleep::new(duration)
    }

    fn listener_from_std(listener: std::net::TcpListener) -> io::Result<ThreadsListener> {
        listener.set_nonblocking(true)?;
        Ok(ThreadsListener(listener))
    }

    /// A blocking `connect(2)`.
    async fn connect(addr: SocketAddr) -> io::Result<ThreadsStream> {
        std::net::TcpStream::connect(addr).map(ThreadsStream::new)
    }
}
