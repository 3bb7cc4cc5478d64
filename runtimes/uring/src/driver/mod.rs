//! The driver: one io_uring, the registry of in-flight ops, and the submission policy.
//!
//! # State
//!
//! Every op that owns memory or a descriptor has a slot in `ops` (a slab); its `user_data` is
//! the slot index. The slot's [`Lifecycle`] says who owns the op's resources: the future (while
//! it is alive) or the registry (once the future is dropped). Ops that own nothing (cancels,
//! timeout removals, closes) carry the reserved `user_data` [`UNTRACKED`] and are only counted,
//! so that the drain on drop can wait for them too.
//!
//! Completions never run user code inside the driver: wakers are collected in `to_wake` and
//! dead resources in `graveyard`; the executor wakes and drops them after releasing its borrow
//! of the driver ([`Driver::take_deferred`]). A resource's destructor may therefore use the
//! driver again (closing an fd queues a CLOSE).
//!
//! # Submission policy
//!
//! [`Driver::turn`] runs once per scheduler tick and decides, per [`SubmitPolicy`], whether to
//! enter the kernel, with what, and whether to block. See `SubmitPolicy` for the policies.
//! An enter carries `GETEVENTS` whenever it waits, or the kernel flagged pending completion
//! work (`IORING_SQ_TASKRUN`, needed with `DEFER_TASKRUN`/`COOP_TASKRUN`) or CQ overflow.
//!
//! # Safety
//!
//! The invariant the whole crate rests on: **the registry holds every resource the kernel may
//! still use, and a slot is freed only after the kernel's last completion for it.** The
//! `Drop` impl keeps it at shutdown: it cancels everything in flight, waits (bounded) for the
//! completions, and *leaks* the resources of any op that did not complete, before the ring is
//! closed. Memory the kernel might still write is thus never freed.

mod lifecycle;
pub(crate) mod op;
mod setup;

use std::io;
use std::mem;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

use io_uring::{opcode, squeue::Entry, types, IoUring};
use slab::Slab;

use crate::config::{SubmitPolicy, UringConfig};
use crate::driver::op::OpAble;
use crate::executor::Shared;
use crate::stats::{RingFlags, UringStats};

use lifecycle::{Completed, Orphaned};
pub(crate) use lifecycle::{Completion, Lifecycle, Orphan};
pub(crate) use setup::MAX_RING_ENTRIES;

/// `user_data` of ops that own nothing (cancel, timeout removal, close). The only reserved
/// value: slab indices never reach it (checked in [`user_data_of`]).
pub(crate) const UNTRACKED: u64 = u64::MAX;

/// Adaptive policy: SQEs are never held back for more than this many ticks.
const MAX_DEFER_TICKS: u32 = 4;

/// How long dropping the runtime waits for cancelled ops to complete before leaking them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// How many CQEs are copied out of the ring at a time.
const REAP_BATCH: usize = 64;

const ENTER_GETEVENTS: u32 = io_uring::EnterFlags::GETEVENTS.bits();
const ENTER_SQ_WAKEUP: u32 = io_uring::EnterFlags::SQ_WAKEUP.bits();
const ENTER_SQ_WAIT: u32 = io_uring::EnterFlags::SQ_WAIT.bits();

/// The `user_data` for a registry slot.
fn user_data_of(key: usize) -> u64 {
    let user_data = key as u64;
    assert!(
        user_data != UNTRACKED,
        "fanbench-uring: op registry index collides with a reserved user_data"
    );
    user_data
}

/// The kernel timeout currently armed for the earliest timer.
struct ArmedTimer {
    deadline: Instant,
    key: usize,
}

/// The ring, the op registry and the submission policy. See the module docs.
///
/// Invariant: no slot of `ops` is freed before its last completion; `Drop` empties the
/// registry (or leaks what the kernel did not release) before the ring is closed.
pub(crate) struct Driver {
    ring: IoUring,
    ops: Slab<Lifecycle>,
    untracked_in_flight: usize,
    policy: SubmitPolicy,
    flags: RingFlags,
    batch_threshold: usize,
    busy_poll: Duration,
    shared: Arc<Shared>,
    /// Registry slot of the pending eventfd read, if armed.
    wake_key: Option<usize>,
    timer: Option<ArmedTimer>,
    last_completion: Instant,
    /// Adaptive policy: ticks for which queued SQEs / pending completion work were held back.
    held_ticks: u32,
    to_wake: Vec<Waker>,
    graveyard: Vec<Box<dyn Orphan>>,
    pub(crate) stats: UringStats,
}

impl Driver {
    pub(crate) fn new(config: &UringConfig, shared: Arc<Shared>) -> io::Result<Driver> {
        setup::validate(config)?;
        let (ring, flags) = setup::build_ring(config)?;
        setup::check_opcodes(&ring)?;
        let mut stats = UringStats::new(
            config.policy,
            ring.params().sq_entries(),
            ring.params().cq_entries(),
            flags,
        );
        stats.sqpoll_cpu = config.sqpoll_cpu.filter(|_| flags.sqpoll);
        Ok(Driver {
            ring,
            ops: Slab::with_capacity(256),
            untracked_in_flight: 0,
            policy: config.policy,
            flags,
            batch_threshold: config.batch_threshold as usize,
            busy_poll: config.busy_poll,
            shared,
            wake_key: None,
            timer: None,
            last_completion: Instant::now(),
            held_ticks: 0,
            to_wake: Vec::new(),
            graveyard: Vec::new(),
            stats,
        })
    }

    /// Ops of futures and handles in the registry (in flight, orphaned, or completed and
    /// not yet collected), not counting the driver's own eventfd read and kernel timeout.
    pub(crate) fn ops_in_registry(&self) -> usize {
        let internal = usize::from(self.wake_key.is_some()) + usize::from(self.timer.is_some());
        self.ops.len() - internal
    }

    // ---- registering ops ------------------------------------------------------------

    /// Queue a single-shot op; returns its registry slot.
    pub(crate) fn submit(&mut self, sqe: Entry) -> usize {
        self.submit_in_state(sqe, Lifecycle::submitted())
    }

    /// Queue a multishot op; returns its registry slot.
    pub(crate) fn submit_multishot(&mut self, sqe: Entry) -> usize {
        self.submit_in_state(sqe, Lifecycle::multishot())
    }

    /// Queue an op nobody waits for; the registry owns its resources until it completes.
    pub(crate) fn submit_detached(&mut self, sqe: Entry, resources: Box<dyn Orphan>) -> usize {
        self.submit_in_state(sqe, Lifecycle::Ignored(resources))
    }

    fn submit_in_state(&mut self, sqe: Entry, state: Lifecycle) -> usize {
        let key = self.ops.insert(state);
        self.push(sqe.user_data(user_data_of(key)));
        key
    }

    /// Queue an op that owns nothing.
    fn push_untracked(&mut self, sqe: Entry) {
        self.untracked_in_flight += 1;
        self.push(sqe.user_data(UNTRACKED));
    }

    /// Close `fd` asynchronously (the caller gives up the descriptor).
    pub(crate) fn close_fd(&mut self, fd: RawFd) {
        self.push_untracked(opcode::Close::new(types::Fd(fd)).build());
    }

    fn cancel(&mut self, key: usize) {
        self.push_untracked(opcode::AsyncCancel::new(user_data_of(key)).build());
    }

    /// Put an SQE in the submission queue, submitting (and reaping) to make room if full.
    fn push(&mut self, sqe: Entry) {
        loop {
            // SAFETY: the entry's pointers refer to op data owned by the registry slot named
            // by its user_data (or by the op future that owns that slot), which lives until
            // the op's last completion (module docs, # Safety). Untracked entries carry no
            // pointers.
            let pushed = unsafe { self.ring.submission().push(&sqe) }.is_ok();
            if pushed {
                if self.flags.sqpoll {
                    self.stats.sqes_submitted += 1;
                }
                return;
            }
            self.stats.sq_full += 1;
            if self.flags.sqpoll {
                // The kernel thread drains the queue: wake it if asleep, wait for room.
                let wakeup = if self.ring.submission().need_wakeup() {
                    ENTER_SQ_WAKEUP
                } else {
                    0
                };
                self.enter_raw(0, 0, wakeup | ENTER_SQ_WAIT);
            } else {
                self.enter(0);
            }
            self.reap();
        }
    }

    // ---- polling ops ----------------------------------------------------------------

    /// Poll a single-shot op: its completion, freeing the slot, or `Pending`.
    pub(crate) fn poll_op(&mut self, key: usize, cx: &mut TaskContext<'_>) -> Poll<Completion> {
        let state = self
            .ops
            .get_mut(key)
            .expect("fanbench-uring: polled op has no registry slot");
        let polled = state.poll(cx.waker());
        if polled.is_ready() {
            self.ops.remove(key);
        }
        polled
    }

    /// Poll a multishot op for its next completion; `None` (slot freed) once it finished and
    /// every completion was taken.
    pub(crate) fn poll_multishot(
        &mut self,
        key: usize,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Completion>> {
        let state = self
            .ops
            .get_mut(key)
            .expect("fanbench-uring: polled multishot op has no registry slot");
        let polled = state.poll_multishot(cx.waker());
        if let Poll::Ready(None) = polled {
            self.ops.remove(key);
        }
        polled
    }

    /// A single-shot op's future was dropped. Returns the resources if the kernel is already
    /// done with them (the caller drops them outside the driver borrow); otherwise keeps them
    /// in the slot and cancels the op.
    pub(crate) fn orphan(
        &mut self,
        key: usize,
        resources: Box<dyn Orphan>,
    ) -> Option<Box<dyn Orphan>> {
        match self.ops.get_mut(key) {
            Some(state) => {
                let orphaned = state.orphan(resources);
                self.after_orphan(key, orphaned)
            }
            None => self.after_orphan(key, Orphaned::Foreign(resources)),
        }
    }

    /// A multishot op's handle was dropped: queued completions go to the resources'
    /// `on_orphan_completion` (closing accepted fds); the op is cancelled unless finished.
    pub(crate) fn orphan_multishot(
        &mut self,
        key: usize,
        resources: Box<dyn Orphan>,
    ) -> Option<Box<dyn Orphan>> {
        match self.ops.get_mut(key) {
            Some(state) => {
                let orphaned = state.orphan_multishot(resources);
                self.after_orphan(key, orphaned)
            }
            None => self.after_orphan(key, Orphaned::Foreign(resources)),
        }
    }

    /// Carry out what orphaning slot `key` asked for.
    fn after_orphan(&mut self, key: usize, orphaned: Orphaned) -> Option<Box<dyn Orphan>> {
        match orphaned {
            Orphaned::Done(resources) => {
                self.ops.remove(key);
                Some(resources)
            }
            Orphaned::Cancel => {
                self.stats.ops_cancelled += 1;
                self.cancel(key);
                None
            }
            Orphaned::Foreign(resources) => {
                debug_assert!(false, "fanbench-uring: orphaned op in a foreign state");
                // Not knowing whether the kernel is done, leaking is the only sound choice.
                mem::forget(resources);
                None
            }
        }
    }

    // ---- completions ----------------------------------------------------------------

    /// Copy every available CQE out of the ring and apply it. Returns how many were reaped.
    fn reap(&mut self) -> usize {
        let mut total = 0;
        loop {
            let mut batch = [(0u64, 0i32, 0u32); REAP_BATCH];
            let mut n = 0;
            {
                let cq = self.ring.completion();
                for cqe in cq.take(REAP_BATCH) {
                    batch[n] = (cqe.user_data(), cqe.result(), cqe.flags());
                    n += 1;
                }
            }
            for &(user_data, result, flags) in &batch[..n] {
                self.complete(user_data, Completion { result, flags });
            }
            total += n;
            if n < REAP_BATCH {
                break;
            }
        }
        if total > 0 {
            self.stats.cqes_reaped += total as u64;
            if self.policy == SubmitPolicy::Adaptive {
                self.last_completion = Instant::now();
            }
        }
        total
    }

    /// Route one CQE to its slot.
    fn complete(&mut self, user_data: u64, completion: Completion) {
        if user_data == UNTRACKED {
            self.untracked_in_flight = self.untracked_in_flight.saturating_sub(1);
            return;
        }
        let key = user_data as usize;
        let Some(state) = self.ops.get_mut(key) else {
            debug_assert!(false, "fanbench-uring: completion for an empty slot {key}");
            return;
        };
        match state.complete(completion) {
            Completed::Stored => {}
            Completed::Wake(waker) => self.to_wake.push(waker),
            Completed::Finished => {
                if let Lifecycle::Ignored(resources) = self.ops.remove(key) {
                    self.graveyard.push(resources);
                }
                if self.wake_key == Some(key) {
                    self.wake_key = None;
                }
                if self.timer.as_ref().is_some_and(|t| t.key == key) {
                    self.timer = None;
                }
            }
            Completed::Unexpected => {
                debug_assert!(
                    false,
                    "fanbench-uring: second completion for single-shot op"
                );
            }
        }
    }

    /// Hand over the wakers to wake and the resources to drop, so the caller can do both
    /// after releasing its borrow of the driver.
    pub(crate) fn take_deferred(
        &mut self,
        wakers: &mut Vec<Waker>,
        dead: &mut Vec<Box<dyn Orphan>>,
    ) {
        mem::swap(&mut self.to_wake, wakers);
        mem::swap(&mut self.graveyard, dead);
    }

    // ---- entering the kernel --------------------------------------------------------

    /// The completion work the kernel flagged that we only get by entering with GETEVENTS:
    /// (CQ overflow, task work pending via `IORING_SQ_TASKRUN`).
    fn completion_work(&mut self) -> (bool, bool) {
        let sq = self.ring.submission();
        (sq.cq_overflow(), self.flags.taskrun_flag && sq.taskrun())
    }

    /// Whether an enter with GETEVENTS is needed for completions, counting a CQ overflow in the
    /// stats. Called once per flush, so an overflowed tick is counted once (`enter` asks
    /// [`Self::completion_work`] again without counting).
    fn completions_need_enter(&mut self) -> bool {
        let (overflow, taskrun) = self.completion_work();
        if overflow {
            self.stats.cq_overflows += 1;
        }
        overflow || taskrun
    }

    /// Enter the kernel: submit what is queued, collect completion work, and wait for
    /// `min_complete` completions.
    fn enter(&mut self, min_complete: u32) {
        let (overflow, taskrun) = self.completion_work();
        let need_events = overflow || taskrun;
        let (to_submit, need_wakeup) = {
            let sq = self.ring.submission();
            (sq.len() as u32, self.flags.sqpoll && sq.need_wakeup())
        };
        let mut flags = 0;
        if min_complete > 0 || need_events {
            flags |= ENTER_GETEVENTS;
        }
        if self.flags.sqpoll {
            if need_wakeup {
                flags |= ENTER_SQ_WAKEUP;
            } else if flags == 0 {
                // The kernel thread is awake and will find the SQEs by itself.
                return;
            }
        }
        self.enter_raw(to_submit, min_complete, flags);
    }

    fn enter_raw(&mut self, to_submit: u32, min_complete: u32, flags: u32) {
        self.stats.io_uring_enter_calls += 1;
        // SAFETY: no extended argument is passed (`None`), and every queued SQE points at
        // memory kept alive by the registry (module docs, # Safety).
        let res = unsafe {
            self.ring
                .submitter()
                .enter::<libc::sigset_t>(to_submit, min_complete, flags, None)
        };
        match res {
            Ok(consumed) => {
                if self.flags.sqpoll {
                    self.stats.sqes_per_enter.record(0);
                } else {
                    self.stats.sqes_submitted += consumed as u64;
                    self.stats.sqes_per_enter.record(consumed as u64);
                }
            }
            Err(e) => {
                self.stats.sqes_per_enter.record(0);
                match e.raw_os_error() {
                    // Interrupted, or the CQ is full / the kernel is short of memory: reaping
                    // and trying again on the next turn is the documented remedy.
                    Some(libc::EINTR | libc::EBUSY | libc::EAGAIN | libc::ETIME) => {}
                    _ => panic!("fanbench-uring: io_uring_enter failed: {e}"),
                }
            }
        }
    }

    /// One visit to the ring per scheduler tick. `runnable`: tasks are waiting to run.
    /// `next_timer`: the earliest sleep deadline.
    pub(crate) fn turn(&mut self, runnable: bool, next_timer: Option<Instant>) {
        self.arm_wake();
        let runnable = runnable || !self.to_wake.is_empty();
        let reaped = self.reap();
        if runnable || reaped > 0 {
            self.flush(false);
            self.reap();
            return;
        }
        if self.policy == SubmitPolicy::Adaptive && self.last_completion.elapsed() < self.busy_poll
        {
            self.stats.busy_polls += 1;
            self.flush(true);
            self.reap();
            return;
        }
        self.park(next_timer);
    }

    /// Hand queued SQEs to the kernel as the policy says, without waiting. `spinning`: the
    /// adaptive policy is busy-polling (always submit and collect).
    fn flush(&mut self, spinning: bool) {
        let sq_len = self.ring.submission().len();
        let need_events = self.completions_need_enter();
        if sq_len == 0 && !need_events {
            self.held_ticks = 0;
            return;
        }
        let go = match self.policy {
            SubmitPolicy::Eager | SubmitPolicy::Sqpoll => true,
            SubmitPolicy::Adaptive => {
                spinning || sq_len >= self.batch_threshold || self.held_ticks >= MAX_DEFER_TICKS
            }
        };
        if go {
            self.held_ticks = 0;
            self.enter(0);
        } else {
            self.held_ticks += 1;
        }
    }

    /// Block in the kernel until a completion arrives (an I/O, the timer, or a remote wake).
    fn park(&mut self, next_timer: Option<Instant>) {
        if let Some(deadline) = next_timer {
            if deadline <= Instant::now() {
                self.flush(true);
                return;
            }
            self.arm_timer(deadline);
        }
        if !self.shared.begin_park() {
            self.flush(true);
            return;
        }
        self.stats.parks += 1;
        self.enter(1);
        self.shared.end_park();
        self.reap();
    }

    /// Keep a read pending on the eventfd so a remote wake ends a park.
    fn arm_wake(&mut self) {
        if self.wake_key.is_some() {
            return;
        }
        let mut read = op::wake::WakeRead::new(self.shared.clone());
        let sqe = read.sqe();
        self.wake_key = Some(self.submit_detached(sqe, Box::new(read)));
    }

    /// Make sure a kernel timeout fires no later than `deadline` (one timeout for the
    /// earliest deadline; a later one is replaced, an earlier one kept).
    fn arm_timer(&mut self, deadline: Instant) {
        if let Some(armed) = &self.timer {
            if armed.deadline <= deadline {
                return;
            }
            let old = armed.key;
            self.push_untracked(opcode::TimeoutRemove::new(user_data_of(old)).build());
        }
        let mut timeout =
            op::timeout::KernelTimeout::new(deadline.saturating_duration_since(Instant::now()));
        let sqe = timeout.sqe();
        let key = self.submit_detached(sqe, Box::new(timeout));
        self.timer = Some(ArmedTimer { deadline, key });
    }
}

/// Drop order: (1) stop remote wakes from touching us; (2) cancel every op still in the
/// registry (by now all are orphans: op futures hold the context alive, so none is left);
/// (3) wait, bounded by `DRAIN_TIMEOUT`, for their completions, releasing resources as they
/// arrive; (4) leak the resources of whatever did not complete; (5) only then let the fields
/// drop, which closes the ring (the kernel cancels anything left) and unmaps it. Freeing op
/// memory before the ring is closed and the op completed would let the kernel write into
/// freed memory; leaking it cannot.
impl Drop for Driver {
    fn drop(&mut self) {
        self.shared.close();
        self.timer = None;
        let in_flight: Vec<usize> = self.ops.iter().map(|(key, _)| key).collect();
        for key in in_flight {
            self.cancel(key);
        }
        let give_up = Instant::now() + DRAIN_TIMEOUT;
        let mut wakers = Vec::new();
        let mut dead = Vec::new();
        while !self.ops.is_empty() || self.untracked_in_flight > 0 {
            if Instant::now() >= give_up {
                break;
            }
            if self.reap() == 0 {
                // Bound the wait: a short kernel timeout ends it if nothing else does.
                self.arm_timer(Instant::now() + Duration::from_millis(10));
                self.enter(1);
                self.reap();
            }
            self.take_deferred(&mut wakers, &mut dead);
            wakers.clear();
            dead.clear();
        }
        for state in self.ops.drain() {
            self.stats.leaked_on_drop += 1;
            mem::forget(state);
        }
    }
}
