//! The `glommio` row of fanbench's runtime trait: one glommio `LocalExecutor` per thread,
//! pinned to the CPU the harness hands it.
//!
//! # Design
//!
//! [`GlommioRuntime::new`] builds a `LocalExecutor` **on the calling thread** with
//! `LocalExecutorBuilder::make` (never `spawn`, which would make a thread of its own), so the
//! harness's thread-per-runtime model holds: the harness makes the thread, and
//! [`block_on`](fanbench_rt::Runtime::block_on) runs the executor on it. The executor is pinned
//! with glommio's own placement API, `Placement::Fixed(cpu)`, when [`GlommioConfig::cpu`] is
//! set (the harness also pins the thread; both name the same CPU), `Placement::Unbound`
//! otherwise.
//!
//! Glommio's network types are readiness-based despite its io_uring core: a read or write
//! first tries the syscall with `MSG_DONTWAIT` and only on `EAGAIN` arms an io_uring poll.
//! It has no owned-buffer API, so this adapter lends the caller's buffers to it:
//!
//! - `read` hands glommio's non-buffered `AsyncRead` the buffer's spare capacity, so `recv(2)`
//!   writes straight into the caller's buffer (no copy). Glommio only accepts an initialised
//!   `&mut [u8]`, so the spare capacity is **zeroed first** (one `memset` per read call): the
//!   one extra pass over memory this row pays that owned-buffer rows do not.
//! - `writev` is one `sendmsg(2)` with `MSG_DONTWAIT | MSG_NOSIGNAL` on the socket (glommio's
//!   `AsyncWrite` has no vectored write; its default would send only the first buffer). When
//!   the socket is full, the wait for writability goes through glommio's own `poll_write` of
//!   the first buffer, which retries `send(2)` once and then arms glommio's POLLOUT poll; if
//!   that retry sends bytes, they are returned as a short write.
//! - `shutdown` is `shutdown(SHUT_RDWR)` on the descriptor (glommio's own `shutdown` is the
//!   same synchronous syscall). Dropping the write half shuts down the write direction, as
//!   Tokio's and monoio's owned write halves do, so every row closes connections alike.
//! - `accept` keeps glommio's in-flight accept inside the listener when the caller drops its
//!   future, and the next `accept` resumes it (see [`GlommioListener`]).
//!
//! Wakers: a glommio waker woken from another thread pushes the task onto its executor's
//! foreign-wake channel and writes the executor's eventfd when it is parked (glommio
//! `task/raw.rs` `do_wake`, `sys/mod.rs` `SleepNotifier`), so publishers on other threads
//! wake subscriber writers promptly. The test suite checks it from a plain thread and from
//! another executor's thread.
//!
//! # Settings (fairness)
//!
//! Every glommio setting is its documented default: ring depth 128, 10 MiB `io_memory`,
//! 100 ms preempt timer, no spin before park, one blocking-pool thread placed like the
//! executor. Glommio refuses to start when `RLIMIT_MEMLOCK` is below 512 KiB (it reports
//! this as an error, which [`GlommioRuntime::new`] passes on); this VM's default is 8 MiB,
//! so no limit is raised. The 10 MiB `io_memory` is registered with io_uring as fixed buffers
//! for storage DMA only; network I/O never uses it. As root (`CAP_IPC_LOCK`) the registration
//! is not charged to the memlock limit; without that capability 10 MiB exceeds an 8 MiB
//! limit and glommio logs a warning and carries on without registered buffers, which changes
//! nothing for sockets.

mod listener;
mod stream;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::time::Duration;

use glommio::{LocalExecutor, LocalExecutorBuilder, Placement};

pub use listener::GlommioListener;
pub use stream::{GlommioReadHalf, GlommioStream, GlommioWriteHalf};

/// The glommio crate version this row runs (reported by `fanbench runtimes`).
pub const GLOMMIO_VERSION: &str = "0.9.0";

/// How to build a [`GlommioRuntime`].
#[derive(Debug, Clone, Default)]
pub struct GlommioConfig {
    /// Pin the executor to this CPU (`Placement::Fixed`); `None` leaves it unbound.
    pub cpu: Option<usize>,
}

/// A glommio `LocalExecutor` driving the current thread.
pub struct GlommioRuntime {
    executor: LocalExecutor,
}

impl GlommioRuntime {
    /// Build a `LocalExecutor` on the calling thread, pinned to `cfg.cpu` if set.
    ///
    /// Fails with the reason when glommio cannot start here: the CPU does not exist,
    /// `RLIMIT_MEMLOCK` is below glommio's 512 KiB minimum, or io_uring is unavailable.
    pub fn new(cfg: GlommioConfig) -> io::Result<Self> {
        let placement = match cfg.cpu {
            Some(cpu) => Placement::Fixed(cpu),
            None => Placement::Unbound,
        };
        let executor = LocalExecutorBuilder::new(placement.clone())
            .name("fanbench-glommio")
            .make()
            .map_err(|e| {
                // glommio's own message names the cause; add the remedy for the common one.
                let mut reason = e.to_string();
                if reason.contains("MemLockLimit") {
                    reason.push_str(
                        " (the memlock limit is below glommio's 512 KiB minimum: \
                         raise RLIMIT_MEMLOCK, e.g. `ulimit -l 512`)",
                    );
                }
                io::Error::new(
                    io::Error::from(e).kind(),
                    format!("glommio LocalExecutor could not start ({placement:?}): {reason}"),
                )
            })?;
        Ok(GlommioRuntime { executor })
    }
}

impl fanbench_rt::Runtime for GlommioRuntime {
    type Listener = GlommioListener;
    type Stream = GlommioStream;

    fn block_on<F: Future>(&mut self, fut: F) -> F::Output {
        self.executor.run(fut)
    }

    fn spawn_local<F: Future<Output = ()> + 'static>(fut: F) {
        glommio::spawn_local(fut).detach();
    }

    fn sleep(duration: Duration) -> impl Future<Output = ()> {
        glommio::timer::sleep(duration)
    }

    fn listener_from_std(listener: std::net::TcpListener) -> io::Result<Self::Listener> {
        let local_addr = listener.local_addr()?;
        Ok(GlommioListener::adopt(OwnedFd::from(listener), local_addr))
    }

    async fn connect(addr: SocketAddr) -> io::Result<Self::Stream> {
        let stream = glommio::net::TcpStream::connect(addr)
            .await
            .map_err(io::Error::from)?;
        Ok(GlommioStream::new(stream))
    }
}
