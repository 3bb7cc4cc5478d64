//! fanbench's own io_uring runtime: a single-threaded executor whose submission policy is the
//! experiment.
//!
//! The bet fanbench tests: with many subscribers per publisher, a completion-based runtime
//! can put hundreds of sends into one `io_uring_enter`, and so beat readiness-based runtimes
//! on CPU per delivered message and on tail latency. This crate is that runtime, as the
//! `uring` row of [`fanbench_rt::Runtime`].
//!
//! # Design
//!
//! - **Executor** (`executor`): tasks boxed once in a slab, polled by taking the box out of
//!   the slot (no re-boxing); real `Waker`s that are `Send + Sync`: a wake on the runtime's
//!   thread queues the task locally, a wake from another thread goes through a mutex-protected
//!   queue and, only if the runtime is parked, an eventfd the ring always has a read pending
//!   on. Each tick polls at most `tick_budget` tasks, then visits the ring.
//! - **Driver** (`driver`): one ring, an op registry (a slab; `user_data` = slot index, one
//!   reserved value for ops that own nothing), the op lifecycle state machine
//!   (`driver/lifecycle.rs`), and the submission policy ([`SubmitPolicy`]).
//! - **Ops** (`driver/op/*.rs`, one file per opcode): multishot accept, recv, send, sendmsg
//!   (vectored), connect, close, timeout, cancel, and the eventfd read. Shutdown is a plain
//!   `shutdown(2)`: the kernel always punts IORING_OP_SHUTDOWN to an io-wq thread
//!   (`driver/op/shutdown.rs`).
//! - **Timers** (`time`): an ordered map of deadlines; one kernel timeout for the earliest,
//!   armed only when the runtime parks.
//!
//! # State
//!
//! A `UringRuntime` owns an `Rc<Context>` (executor, timers, driver). While `block_on` runs,
//! a thread-local points at it; `spawn`, `sleep` and the I/O ops find their runtime there. Every
//! in-flight op holds an `Rc<Context>` too, so the driver outlives any future that lent the
//! kernel a buffer.
//!
//! # Safety
//!
//! The kernel may write into an op's buffer until that op's completion arrives, whatever
//! happens to the future that started it. So:
//!
//! 1. Each in-flight op owns its buffers, iovecs, addresses and a clone of its descriptor
//!    (`driver/op.rs`).
//! 2. Dropping the future before the completion moves all of that into the op's registry slot
//!    (`Ignored`) and submits a cancel; the slot and its resources are freed when the op's last
//!    completion arrives. Descriptors produced by a cancelled accept are closed then; a
//!    cancelled connect's socket is closed then (`driver/lifecycle.rs`).
//! 3. Dropping the runtime drops every task (orphaning their ops as in 2), then cancels
//!    everything still in the registry and waits, bounded, for the completions; whatever did
//!    not complete in time is leaked, never freed, before the ring is closed (`driver/mod.rs`,
//!    `impl Drop for Driver`).
//!
//! # Reads: plain recv, not a provided-buffer ring
//!
//! The trait hands a read its own buffer, and the broker keeps one per connection, so a
//! provided-buffer ring would save no memory and cost a copy into the caller's buffer on every
//! read. Reads are plain `IORING_OP_RECV` into the caller's spare capacity
//! (`driver/op/recv.rs`). Buffer rings are not implemented.
//!
//! # Choosing the default policy
//!
//! `eager`, by measurement: see [`DEFAULT_POLICY`] for the figures and the reasoning.
//!
//! Batching sends (holding a busy connection's next send so it carries more messages) is not
//! the runtime's business: it is the broker's policy, the same on every row
//! (`fanbench_broker::coalesce`).

mod config;
mod context;
mod driver;
mod executor;
mod net;
mod stats;
mod time;

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd};
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

pub use config::{SubmitPolicy, UnknownPolicy, UringConfig, DEFAULT_POLICY};
pub use net::{UringListener, UringReadHalf, UringStream, UringWriteHalf};
pub use stats::{Bucket, RingFlags, SqesPerEnter, UringStats, SQES_PER_ENTER_BOUNDS};
pub use time::{interval, sleep, sleep_until, Interval, Sleep};

use context::Context;
use driver::Driver;
use executor::{Executor, Shared, TaskId, TaskWaker};

/// The largest ring the kernel allows.
pub const MAX_RING_ENTRIES: u32 = driver::MAX_RING_ENTRIES;

/// A single-threaded io_uring runtime. Not `Send`: it runs on the thread that created it
/// (which also satisfies `IORING_SETUP_SINGLE_ISSUER`).
pub struct UringRuntime {
    ctx: Rc<Context>,
    config: UringConfig,
}

impl UringRuntime {
    /// Create a runtime. Fails with a clear message if io_uring is unavailable
    /// (`io_uring_setup` returns ENOSYS or EPERM, or the kernel lacks an opcode we use) or
    /// the configuration is invalid.
    pub fn new(config: UringConfig) -> io::Result<UringRuntime> {
        let shared = Arc::new(Shared::new(new_eventfd()?));
        let driver = Driver::new(&config, shared.clone())?;
        let ctx = Rc::new(Context {
            executor: Executor::new(shared),
            timers: RefCell::new(Default::default()),
            driver: RefCell::new(driver),
        });
        Ok(UringRuntime { ctx, config })
    }

    /// The configuration this runtime was built with.
    pub fn config(&self) -> &UringConfig {
        &self.config
    }

    /// A snapshot of the runtime's counters (usable after `block_on` returned).
    pub fn stats(&self) -> UringStats {
        stats_of(&self.ctx)
    }

    /// Tasks currently alive (spawned and not finished).
    pub fn task_count(&self) -> usize {
        self.ctx.executor.task_count()
    }

    /// Sleeps currently registered (a dropped sleep is removed at once).
    pub fn timer_count(&self) -> usize {
        self.ctx.timers.borrow().len()
    }

    /// Ops in the registry: in flight, or completed but not yet collected.
    pub fn ops_in_flight(&self) -> usize {
        self.ctx.driver.borrow().ops_in_registry()
    }

    /// Run `fut` to completion on this thread, running spawned tasks meanwhile.
    ///
    /// # Panics
    ///
    /// If another `UringRuntime` is already running on this thread.
    pub fn block_on<F: Future>(&mut self, fut: F) -> F::Output {
        let ctx = self.ctx.clone();
        let _entered = Context::enter(&ctx);
        let executor = &ctx.executor;
        let main = Arc::new(TaskWaker::new(TaskId::MAIN, executor.shared.clone()));
        let main_waker = Waker::from(main.clone());
        let mut fut = pin!(fut);
        executor.wake_main();
        let budget = self.config.tick_budget;
        let mut wakers: Vec<Waker> = Vec::new();
        let mut dead = Vec::new();
        loop {
            executor.ticks.set(executor.ticks.get() + 1);
            if executor.take_main_woken() {
                main.scheduled.store(false, Ordering::Release);
                executor.task_polls.set(executor.task_polls.get() + 1);
                if let Poll::Ready(out) =
                    fut.as_mut().poll(&mut TaskContext::from_waker(&main_waker))
                {
                    return out;
                }
            }
            executor.run_ready(budget);
            executor.drain_remote();
            {
                let mut timers = ctx.timers.borrow_mut();
                if timers.len() > 0 {
                    timers.expire(Instant::now(), &mut wakers);
                }
            }
            wakers.drain(..).for_each(Waker::wake);
            let next_timer = ctx.timers.borrow().next_deadline();
            {
                let mut driver = ctx.driver.borrow_mut();
                driver.turn(executor.has_runnable(), next_timer);
                driver.take_deferred(&mut wakers, &mut dead);
            }
            wakers.drain(..).for_each(Waker::wake);
            dead.clear();
            executor.drain_remote();
        }
    }
}

/// Drop order: every task first (their ops become orphans in the registry, their fds are
/// queued for closing), then the timers, then the context. The driver's own `Drop` then waits
/// for the orphans' completions (or leaks them) before closing the ring. See the crate docs'
/// # Safety.
impl Drop for UringRuntime {
    fn drop(&mut self) {
        let entered = Context::enter_if_vacant(&self.ctx);
        self.ctx.executor.drop_all_tasks();
        let wakers = self.ctx.timers.borrow_mut().clear();
        drop(wakers);
        drop(entered);
    }
}

fn stats_of(ctx: &Context) -> UringStats {
    let mut stats = ctx.driver.borrow().stats.clone();
    let executor = &ctx.executor;
    stats.ticks = executor.ticks.get();
    stats.task_polls = executor.task_polls.get();
    stats.tasks_spawned = executor.tasks_spawned.get();
    stats.remote_wakes = executor.shared.remote_wakes.load(Ordering::Relaxed);
    stats.eventfd_wakes = executor.shared.eventfd_wakes.load(Ordering::Relaxed);
    stats
}

fn new_eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with constant flags; the result is checked before use.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("eventfd: {e}")));
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Spawn a task on the runtime running this thread.
///
/// # Panics
///
/// Outside `UringRuntime::block_on`.
pub fn spawn<F: Future<Output = ()> + 'static>(fut: F) {
    let ctx = Context::current().expect("fanbench-uring: spawn called outside a UringRuntime");
    ctx.executor.spawn(Box::pin(fut));
}

/// The counters of the runtime running this thread, if any.
pub fn current_stats() -> Option<UringStats> {
    Context::with_current(stats_of)
}

impl fanbench_rt::Runtime for UringRuntime {
    type Listener = UringListener;
    type Stream = UringStream;

    fn block_on<F: Future>(&mut self, fut: F) -> F::Output {
        UringRuntime::block_on(self, fut)
    }

    fn spawn_local<F: Future<Output = ()> + 'static>(fut: F) {
        spawn(fut)
    }

    fn sleep(duration: Duration) -> impl Future<Output = ()> {
        time::sleep(duration)
    }

    fn listener_from_std(listener: std::net::TcpListener) -> io::Result<UringListener> {
        UringListener::from_std(listener)
    }

    fn connect(addr: SocketAddr) -> impl Future<Output = io::Result<UringStream>> {
        UringStream::connect(addr)
    }
}
