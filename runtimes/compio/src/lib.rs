//! The `compio` row of fanbench's runtime trait.
//!
//! [compio](https://docs.rs/compio) is a completion-based, thread-per-core runtime with
//! owned-buffer I/O of its own (`BufResult`), so this adapter is thin: fanbench's buffers are
//! wrapped in views (the private `buf` module) and handed to compio's TCP types ([`net`]).
//!
//! # Driver
//!
//! compio is built with only its `io-uring` driver (no `polling` fallback), so a machine
//! without io_uring gets a constructor error with the reason instead of silently measuring
//! epoll under the compio name. Reads are `RECV`, writes `SEND`, vectored writes one
//! `SENDMSG`, accepts `ACCEPT`, shutdown `SHUTDOWN`; all through compio's proactor.
//!
//! # Settings (fairness)
//!
//! * `ring_entries`: io_uring submission queue entries. Default 1024, compio's own default.
//! * `remote_wake_queue`: capacity of the bounded queue through which other threads wake
//!   this runtime's tasks. compio's default is 64, and a thread that finds it full spins
//!   until the runtime drains it. Two runtimes whose tasks wake more than 64 of each other's
//!   tasks at once (any fan-out above 64 with publishers on both threads) would then each
//!   spin waiting for the other: a deadlock (see the test
//!   `remote_wakes_beyond_compio_default_queue_do_not_deadlock`). The default here is
//!   65 536 entries (8 bytes each), larger than any connection count fanbench runs.
//!   A task already queued is not queued again, so the queue never needs more entries than
//!   the runtime has tasks.
//! * Everything else (event interval 61, no SQPOLL, no `SINGLE_ISSUER`/`DEFER_TASKRUN`) is
//!   compio's default.
//!
//! # Threads and wakers
//!
//! `CompioRuntime::block_on` runs compio's runtime on the calling thread (the harness pins
//! that thread; compio's own affinity setting is not used). Wakers of spawned tasks push the
//! task into the remote-wake queue above and then signal the ring's eventfd, so a wake from
//! any thread is correct and prompt; the `block_on` future's waker signals the eventfd.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

mod buf;
pub mod net;

pub use net::{CompioListener, CompioReadHalf, CompioStream, CompioWriteHalf};

/// The compio crate version this row is built against (for `fanbench runtimes`); a test
/// checks it against Cargo.lock.
pub const COMPIO_VERSION: &str = "0.19.2";

/// Settings for [`CompioRuntime::new`]; see the crate docs for why each default is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompioConfig {
    /// io_uring submission queue entries.
    pub ring_entries: u32,
    /// Capacity of the queue that carries wakes from other threads.
    pub remote_wake_queue: usize,
}

impl Default for CompioConfig {
    fn default() -> Self {
        CompioConfig {
            ring_entries: 1024,
            remote_wake_queue: 1 << 16,
        }
    }
}

/// A compio runtime (io_uring driver) that drives the current thread.
pub struct CompioRuntime {
    rt: compio::runtime::Runtime,
}

impl CompioRuntime {
    /// Build the runtime. Fails, with the reason, where io_uring cannot be set up (kernel
    /// without io_uring, `kernel.io_uring_disabled`, seccomp, memlock limits, bad settings).
    pub fn new(cfg: CompioConfig) -> io::Result<Self> {
        let mut proactor = compio::driver::ProactorBuilder::new();
        proactor.capacity(cfg.ring_entries);
        let rt = compio::runtime::RuntimeBuilder::new()
            .with_proactor(proactor)
            .sync_queue_size(cfg.remote_wake_queue.max(1))
            .build()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "compio: cannot set up its io_uring driver ({} entries): {e}{}",
                        cfg.ring_entries,
                        io_uring_disabled_hint()
                    ),
                )
            })?;
        Ok(CompioRuntime { rt })
    }
}

/// Explain a failure by `kernel.io_uring_disabled`, when that sysctl is set.
fn io_uring_disabled_hint() -> String {
    match std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
        Ok(v) if v.trim() != "0" => {
            format!(" (sysctl kernel.io_uring_disabled = {})", v.trim())
        }
        _ => String::new(),
    }
}

impl fanbench_rt::Runtime for CompioRuntime {
    type Listener = CompioListener;
    type Stream = CompioStream;

    fn block_on<F: Future>(&mut self, fut: F) -> F::Output {
        self.rt.block_on(fut)
    }

    fn spawn_local<F: Future<Output = ()> + 'static>(fut: F) {
        compio::runtime::spawn(fut).detach();
    }

    fn sleep(duration: Duration) -> impl Future<Output = ()> {
        compio::time::sleep(duration)
    }

    fn listener_from_std(listener: std::net::TcpListener) -> io::Result<CompioListener> {
        compio::net::TcpListener::from_std(listener).map(CompioListener)
    }

    async fn connect(addr: SocketAddr) -> io::Result<CompioStream> {
        compio::net::TcpStream::connect(addr)
            .await
            .map(CompioStream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compio_version_matches_the_lockfile() {
        let lock = include_str!("../../../Cargo.lock");
        let entry = format!("name = \"compio\"\nversion = \"{COMPIO_VERSION}\"");
        assert!(lock.contains(&entry), "Cargo.lock has no {entry:?}");
    }
}
