//! The open-loop load generator: publishers on a fixed schedule, subscribers that time and
//! sequence-check every message, all measured over one window.
//!
//! # Timeline of a run
//!
//! 1. Every subscriber connects, sends `CONNECT`, `SUB fanbench.<run>.<k> 1` and `PING`, and
//!    waits for the `PONG`: the server has then registered the subscription, so no message is
//!    lost to a subscription that is not there yet. Publishers connect and handshake the same way.
//! 2. Publishing starts at `start` (50 ms after everyone is ready). Publisher k's message n is
//!    due at `start + k/(rate*publishers) + n/rate` (phases staggered over one period) and is
//!    sent then whatever happened before: open loop, see [`publisher`].
//! 3. The measured window is `[start + warmup, start + warmup + duration)`. The hooks'
//!    `measure_start`/`measure_end` run at its two edges. Only messages **due** inside the
//!    window count (latency, loss, windows, pacing); publishers stop after the last one.
//! 4. Grace period: the run waits for in-flight messages until every healthy subscriber has every
//!    in-window message, or for `max(1 s, 2 x the highest latency seen so far)` (at most 10 s)
//!    after the window ends, whichever comes first. What has not arrived then is lost.
//!
//! # Threads
//!
//! One receiver thread per client CPU for the healthy subscribers (dealt round-robin), each on
//! its own io_uring ([`ring`]); when this kernel cannot run that path (probed once per run) the
//! same threads run the Tokio readiness path instead ([`subscriber`]), and the report says
//! which ran. Slow subscribers, trickle readers that need no speed, share one Tokio thread on
//! the first client CPU. One pacer thread sends for all publishers, pinned to the first client
//! CPU (to a CPU of its own with three or more client CPUs), with 1 ns timer slack and
//! SCHED_FIFO priority 1 where permitted (the report says which it got); it busy-waits before
//! a deadline only within [`PACER_SPIN_SHARE`] of its CPU when receivers share it. The
//! calling thread is confined to the client CPUs for the run; it sleeps until each second of
//! the window (sampling `/proc/stat` for host steal), runs the hooks and samples CPU.
//!
//! On a kernel with `PREEMPT_NONE` (this project's VM) even a SCHED_FIFO thread can wake
//! several milliseconds late while another process on its CPU is inside a long system call;
//! such a run is flagged behind schedule by the bounds below rather than trusted.
//!
//! # Definitions
//!
//! All histograms hold **nanoseconds** (latency: 1 us .. 60 s, 3 significant digits; pacing
//! lag: 1 ns .. 60 s, 3 significant digits; larger values are clamped to 60 s).
//!
//! - latency = receive time - intended send time; service latency = receive time - actual send
//!   time; pacing lag = actual - intended send time. CLOCK_MONOTONIC everywhere (one host);
//!   the receive time is the kernel's receive stamp on the io_uring path ([`ring`]), the read
//!   time on the fallback. Read delay = read time - kernel receive time.
//! - received in the window = healthy subscribers' messages (any due time) whose receive time
//!   falls in the window: the throughput numerator, and the divisor of every per-message
//!   figure.
//! - delivered = `MSG`s received by healthy subscribers for messages due in the window
//!   (duplicates included); expected = messages due in the window x the healthy subscribers of
//!   their publisher; lost = expected - distinct messages received; see [`seq::SeqTracker`] for
//!   duplicates and reordering.
//! - `slow_subscribers` of publisher 0's `subscribers_per_publisher` subscribers read at a
//!   trickle ([`SlowSubscriberReport`]); they are excluded from every figure above.
//! - behind schedule: pacing lag p99 > [`PACING_P99_LIMIT_NS`] or max >
//!   [`PACING_MAX_LIMIT_NS`], or a publisher could not send everything.
//! - saturated: the load generator's CPU time in the window exceeds [`SATURATION_UTILISATION`]
//!   of its client cores, or one of its threads exceeds that share of one core.

mod cpustat;
mod delivery;
mod os;
mod payload;
mod publisher;
mod ring;
mod schedule;
mod seq;
mod stats;
mod subscriber;
mod wire;

#[cfg(test)]
mod live_tests;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

pub use os::now_ns;
pub use ring::RxCounters;
use schedule::Schedule;
use subscriber::{Phase, SubPlan};

/// Pacing lag p99 above which a run is flagged behind schedule.
pub const PACING_P99_LIMIT_NS: u64 = 1_000_000;
/// Largest single pacing lag tolerated before a run is flagged behind schedule.
pub const PACING_MAX_LIMIT_NS: u64 = 10_000_000;
/// Share of the client cores (or of one core, for a single thread) above which the load
/// generator counts as saturated.
pub const SATURATION_UTILISATION: f64 = 0.9;
/// Share of its CPU the pacer may busy-wait away when it shares that CPU with receivers.
pub const PACER_SPIN_SHARE: f64 = 0.05;
/// Shortest and longest grace period after the window for in-flight messages.
pub const GRACE_MIN: Duration = Duration::from_secs(1);
pub const GRACE_MAX: Duration = Duration::from_secs(10);
/// Time allowed for all subscribers to connect and subscribe.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Most (message, subscriber) pairs a run sequence-checks: one bit each, 512 MiB.
pub const MAX_TRACKED_MESSAGES: f64 = 4.0 * 1024.0 * 1024.0 * 1024.0;
/// Delay between "everyone is ready" and the first message.
const START_LEAD_NS: u64 = 50_000_000;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub target: SocketAddr,
    pub publishers: u32,
    /// Subscribers of each publisher's subject `fanbench.<run>.<k>`.
    pub subscribers_per_publisher: u32,
    /// Messages per second per publisher.
    pub rate_per_publisher: f64,
    /// Whole payload size, prefix included (at least [`MIN_PAYLOAD_BYTES`]).
    pub payload_bytes: usize,
    pub warmup: Duration,
    /// The measured window, after the warm-up.
    pub duration: Duration,
    /// How many of publisher 0's subscribers read at a trickle (at most
    /// `subscribers_per_publisher`).
    pub slow_subscribers: u32,
    /// Read rate of each slow subscriber (0: never reads after subscribing).
    pub slow_read_bytes_per_s: u64,
    /// CPUs the load generator's threads are pinned to: one receiver thread per CPU, the pacer
    /// on the first (on its own with three or more). Empty: one receiver thread, nothing
    /// pinned.
    pub client_cpus: Vec<usize>,
}

/// Which part of a [`LoadSpec`] this process runs, for load split over several processes
/// (`fanbench agent`). [`Share::whole`] is the ordinary single-process run.
#[derive(Debug, Clone)]
pub struct Share {
    /// Subject token shared by every process of the run (None: one of this process's own).
    pub run_token: Option<String>,
    /// Whether this process runs the publishers (all of them, or none).
    pub publishers: bool,
    /// Subscriber ids run here (publisher k's subscribers are k*S .. (k+1)*S).
    pub subscribers: std::ops::Range<u32>,
    /// Added to the send stamps in every payload to bring them onto this process's
    /// CLOCK_MONOTONIC (the publishers' host may have another clock); 0 on one host.
    pub publisher_clock_offset_ns: i64,
}

impl Share {
    /// Every publisher and subscriber of `spec`, on this process's clock.
    pub fn whole(spec: &LoadSpec) -> Self {
        Self {
            run_token: None,
            publishers: true,
            subscribers: 0..spec
                .publishers
                .saturating_mul(spec.subscribers_per_publisher),
            publisher_clock_offset_ns: 0,
        }
    }
}

/// Smallest payload: the publisher id / sequence / timestamps prefix.
pub const MIN_PAYLOAD_BYTES: usize = payload::HEADER_LEN;

/// One second of the measured window, by intended send time: the messages due in it and what
/// became of them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Window {
    pub index: u32,
    /// Offset of the window's start from the measured window's start.
    pub start_offset_ns: u64,
    /// 1 s, except a shorter last window when the duration is not whole seconds.
    pub length_ns: u64,
    /// Messages due in this second that were sent.
    pub sent: u64,
    /// Deliveries those messages should produce (healthy subscribers).
    pub expected: u64,
    /// Deliveries they produced.
    pub delivered: u64,
    /// Deliveries (any due time) whose receive time fell in this second: what the server
    /// actually delivered in it.
    pub received: u64,
    /// Latency percentiles (ns) of those deliveries; `None` when there were none.
    pub latency_p50_ns: Option<u64>,
    pub latency_p99_ns: Option<u64>,
    pub latency_max_ns: Option<u64>,
    /// Largest pacing lag of a message due in this second (ns).
    pub max_pacing_lag_ns: u64,
    /// Highest share of any CPU's time the host stole in this second; `None` when
    /// `/proc/stat` could not be read.
    pub steal_max_share: Option<f64>,
}

/// Which receive path the healthy subscribers ran on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReceivePath {
    /// What ran: the io_uring path or the readiness (Tokio, epoll) fallback.
    pub name: String,
    /// The io_uring setup flags the kernel accepted; `None` on the fallback.
    pub ring_flags: Option<String>,
    /// Why the io_uring path did not run, when it did not.
    pub fallback_reason: Option<String>,
}

impl ReceivePath {
    /// The io_uring path when this kernel runs it (probed once per run), else the fallback.
    /// The probe runs on a thread of its own: tearing its ring down can signal task work to
    /// the thread that made it, which would interrupt the coordinator's blocking reads.
    fn choose() -> Self {
        let probed = std::thread::Builder::new()
            .name("loadgen-probe".into())
            .spawn(ring::probe)
            .map_err(anyhow::Error::from)
            .and_then(|t| {
                t.join()
                    .map_err(|_| anyhow::anyhow!("the io_uring probe panicked"))?
            });
        match probed {
            Ok(flags) => Self {
                name: ring::PATH_NAME.to_string(),
                ring_flags: Some(flags),
                fallback_reason: None,
            },
            Err(e) => Self {
                name: READINESS_PATH_NAME.to_string(),
                ring_flags: None,
                fallback_reason: Some(format!("{e:#}")),
            },
        }
    }
}

/// The fallback receive path (no kernel receive timestamps: messages are timed at read).
pub const READINESS_PATH_NAME: &str = "tokio current-thread (epoll), timed at read";

/// What the slow subscribers saw (they never count toward the healthy figures).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlowSubscriberReport {
    pub subscribers: u32,
    pub read_bytes_per_s: u64,
    /// Bytes read at the trickle rate during the run.
    pub bytes_read: u64,
    /// Bytes read at full speed after the run (at most 500 ms), only to see whether the server
    /// had cut the connection behind the data still queued.
    pub bytes_drained_at_end: u64,
    /// `MSG`s read (trickle and final drain), and those of them due in the window.
    pub messages: u64,
    pub messages_in_window: u64,
    /// Slow subscribers that got `-ERR 'Slow Consumer'`.
    pub cut_as_slow_consumer: u32,
    /// Slow subscribers whose connection the server closed.
    pub closed_by_server: u32,
    /// Highest latency (ns) of an in-window message a slow subscriber read.
    pub max_latency_ns: Option<u64>,
}

/// The load generator's own CPU use in the measured window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CpuUsage {
    /// User and system CPU seconds of the whole process (getrusage RUSAGE_SELF).
    pub user_s: f64,
    pub sys_s: f64,
    /// Length of the measured window (s) and client cores it ran on (distinct client CPUs, or
    /// every CPU the process may use when none were given).
    pub window_s: f64,
    pub cores: usize,
    /// (user + sys) / (window x cores).
    pub utilisation: f64,
    /// Highest share of one core used by one load-generator thread, and which.
    pub busiest_thread_utilisation: Option<f64>,
    pub busiest_thread: Option<String>,
    pub thread_cpu_null_reason: Option<String>,
    pub saturated: bool,
    /// Busy and steal share of each client CPU over the window (`/proc/stat`, whatever ran on
    /// it: the load generator's threads and the kernel's work on their behalf).
    pub client_cpus: Vec<cpustat::CpuShare>,
    pub client_cpus_null_reason: Option<String>,
}

/// Everything one run measured. Histograms are in nanoseconds.
#[derive(Debug)]
pub struct LoadReport {
    pub latency: Histogram<u64>,
    pub service_latency: Histogram<u64>,
    pub pacing_lag: Histogram<u64>,
    pub windows: Vec<Window>,
    /// Messages due in the window that the publishers sent.
    pub sent: u64,
    pub expected: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
    /// Healthy subscribers that lost at least one message.
    pub subscribers_with_loss: u32,
    pub slow: SlowSubscriberReport,
    pub behind_schedule: bool,
    /// Seconds of the window in which a pacing hiccup (lag over [`PACING_P99_LIMIT_NS`]) or a
    /// latency spike coincided with the host stealing more than [`HOST_NOISE_STEAL_SHARE`] of
    /// a CPU: noise from outside the machine, not the instrument's or the server's doing.
    pub host_noise: Vec<u32>,
    pub max_pacing_lag_ns: u64,
    /// How the pacer thread was scheduled ("SCHED_FIFO 1", or SCHED_OTHER and why).
    pub pacer_priority: String,
    pub loadgen_cpu: CpuUsage,
    /// Healthy subscribers' messages (any due time) received inside the measured window, by
    /// kernel receive time: what the server actually delivered in the window.
    pub received_in_window: u64,
    /// Of those, the ones received at or after the hooks' [`WindowHooks::mark`]; `None` when
    /// the hooks set no mark.
    pub received_since_mark: Option<u64>,
    /// Read time - kernel receive time per message (ns): the instrument's own lag. Empty on
    /// the readiness path.
    pub read_delay: Histogram<u64>,
    pub receive_path: ReceivePath,
    /// Receive-path counters summed over the receiver threads.
    pub rx: ring::RxCounters,
    /// Measured window as it happened (hook to hook), and the grace period waited after it.
    pub window_ns: u64,
    pub grace_ns: u64,
    /// `-ERR` lines, connection errors, and anything else that went wrong.
    pub errors: Vec<String>,
}

/// Called at the instants the measured window begins and ends, so that server-side counters
/// are sampled on the same boundaries as the load generator's.
pub trait WindowHooks {
    fn measure_start(&mut self);
    fn measure_end(&mut self);
    /// Called once every subscriber is subscribed and the publishers are connected; returns
    /// the instant (CLOCK_MONOTONIC ns) publishing starts at, or None for
    /// [`START_LEAD_NS`] from now. A process that shares a run with others waits here for the
    /// common start.
    fn ready(&mut self) -> Result<Option<u64>> {
        Ok(None)
    }
    /// Called after each second of the measured window (`index` counts from 0; the last may
    /// be partial).
    fn second_done(&mut self, _index: u32) {}
    /// Polled after each `second_done`: an instant (CLOCK_MONOTONIC ns) from which the
    /// messages received in the window are also counted apart, in
    /// [`LoadReport::received_since_mark`]. The first one returned is kept.
    fn mark(&mut self) -> Option<u64> {
        None
    }
}

/// When a run's publishers send, shared by every thread.
#[derive(Debug, Clone)]
pub struct Timeline {
    pub window_start_ns: u64,
    pub window_end_ns: u64,
    pub schedules: Arc<Vec<Schedule>>,
    /// [`Share::publisher_clock_offset_ns`]: added to received send stamps.
    pub publisher_clock_offset_ns: i64,
}

impl Timeline {
    /// A send stamp from a payload on this process's clock.
    pub fn local_ns(&self, stamp_ns: u64) -> u64 {
        stamp_ns.saturating_add_signed(self.publisher_clock_offset_ns)
    }

    /// Number of per-second windows (the last one may be partial).
    pub fn windows(&self) -> usize {
        (self.window_end_ns - self.window_start_ns).div_ceil(1_000_000_000) as usize
    }

    /// The per-second window a message due at `intended_ns` belongs to, if it is in the
    /// measured window.
    pub fn window_index(&self, intended_ns: u64) -> Option<usize> {
        if (self.window_start_ns..self.window_end_ns).contains(&intended_ns) {
            Some(((intended_ns - self.window_start_ns) / 1_000_000_000) as usize)
        } else {
            None
        }
    }
}

fn validate(spec: &LoadSpec) -> Result<()> {
    ensure!(spec.publishers >= 1, "at least one publisher is needed");
    ensure!(
        spec.subscribers_per_publisher >= 1,
        "at least one subscriber per publisher is needed"
    );
    ensure!(
        spec.payload_bytes >= MIN_PAYLOAD_BYTES,
        "payload must be at least {MIN_PAYLOAD_BYTES} bytes (publisher id, sequence, timestamps), got {}",
        spec.payload_bytes
    );
    Schedule::new(0, spec.rate_per_publisher)?;
    let subscribers = u64::from(spec.publishers) * u64::from(spec.subscribers_per_publisher);
    let tracked_bits = spec.rate_per_publisher * spec.duration.as_secs_f64() * subscribers as f64;
    ensure!(
        tracked_bits <= MAX_TRACKED_MESSAGES,
        "rate x duration x subscribers = {tracked_bits:.0} messages to sequence-check; at most \
         {MAX_TRACKED_MESSAGES:.0} are supported (one bit each)"
    );
    ensure!(
        !spec.duration.is_zero(),
        "the measured duration must be longer than zero"
    );
    ensure!(
        spec.slow_subscribers <= spec.subscribers_per_publisher,
        "{} slow subscribers asked for, but publisher 0 has only {} subscribers",
        spec.slow_subscribers,
        spec.subscribers_per_publisher
    );
    Ok(())
}

/// Builds the subscriber plans: publisher k's subscribers are ids k*S .. (k+1)*S; the last
/// `slow_subscribers` of publisher 0 are slow.
fn plan_subscribers(spec: &LoadSpec, subject: impl Fn(u32) -> String) -> Vec<SubPlan> {
    let per = spec.subscribers_per_publisher;
    (0..spec.publishers)
        .flat_map(|k| {
            let subject = subject(k);
            (0..per).map(move |j| SubPlan {
                id: k * per + j,
                publisher: k,
                subject: subject.clone(),
                slow: k == 0 && j >= per - spec.slow_subscribers,
            })
        })
        .collect()
}

/// Runs one load test against `spec.target` and reports what it measured.
pub fn run(spec: &LoadSpec, hooks: &mut dyn WindowHooks) -> Result<LoadReport> {
    run_share(spec, &Share::whole(spec), hooks)
}

/// Runs `share` of the load test `spec` (see [`Share`]); the report covers that share only.
pub fn run_share(
    spec: &LoadSpec,
    share: &Share,
    hooks: &mut dyn WindowHooks,
) -> Result<LoadReport> {
    validate(spec)?;
    let all = spec.publishers * spec.subscribers_per_publisher;
    ensure!(
        share.subscribers.start < share.subscribers.end && share.subscribers.end <= all,
        "subscriber share {:?} is empty or outside the run's 0..{all}",
        share.subscribers
    );
    let connections = u64::from(spec.publishers) * (u64::from(spec.subscribers_per_publisher) + 1);
    os::ensure_fd_limit(connections + 64)
        .context("raising the open-file limit for the connections")?;
    let run_token = share
        .run_token
        .clone()
        .unwrap_or_else(|| format!("{:x}{:x}", std::process::id(), os::now_ns() & 0xff_ffff));
    let subject = |k: u32| format!("fanbench.{run_token}.{k}");
    let mut plans = plan_subscribers(spec, subject);
    plans.retain(|p| share.subscribers.contains(&p.id));
    let receiver_cpus = receiver_cpus(&spec.client_cpus);
    let thread_count = receiver_cpus.len().max(1);
    let (ready_tx, ready_rx) = mpsc::channel();
    let shared = Arc::new(subscriber::Shared {
        target: spec.target,
        payload_bytes: spec.payload_bytes,
        slow_read_bytes_per_s: spec.slow_read_bytes_per_s,
        ready: Mutex::new(ready_tx),
        unique_in_window: AtomicU64::new(0),
        max_latency_ns: AtomicU64::new(0),
        threads: Mutex::new(Vec::new()),
        mark_ns: AtomicU64::new(u64::MAX),
    });
    let (phase_tx, phase_rx) = watch::channel(Phase::Connecting);
    let receive_path = ReceivePath::choose();
    let mut threads = Vec::new();
    let mut spawn_error = None;
    // Healthy subscribers are dealt round-robin over one receiver thread per client CPU; slow
    // ones (a trickle reader needs no speed) share one readiness thread on the first CPU.
    let healthy: Vec<&SubPlan> = plans.iter().filter(|p| !p.slow).collect();
    let slow: Vec<SubPlan> = plans.iter().filter(|p| p.slow).cloned().collect();
    for t in 0..thread_count {
        let mine: Vec<SubPlan> = healthy
            .iter()
            .enumerate()
            .filter(|(i, _)| i % thread_count == t)
            .map(|(_, p)| (*p).clone())
            .collect();
        if mine.is_empty() {
            continue;
        }
        let cpu = receiver_cpus.get(t).copied();
        let spawned = if receive_path.ring_flags.is_some() {
            ring::spawn_thread(t, cpu, mine, Arc::clone(&shared), phase_rx.clone())
        } else {
            subscriber::spawn_thread(t, cpu, mine, Arc::clone(&shared), phase_rx.clone())
        };
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(e) => {
                spawn_error = Some(e);
                break;
            }
        }
    }
    if !slow.is_empty() && spawn_error.is_none() {
        match subscriber::spawn_thread(
            thread_count,
            spec.client_cpus.first().copied(),
            slow,
            Arc::clone(&shared),
            phase_rx.clone(),
        ) {
            Ok(handle) => threads.push(handle),
            Err(e) => spawn_error = Some(e),
        }
    }
    // The coordinator (window edges, hooks, CPU sampling) runs on the client CPUs too, so
    // nothing of the instrument's lands on the server's.
    let pinned = if spec.client_cpus.is_empty() {
        None
    } else {
        Some(os::AffinityGuard::pin(&spec.client_cpus).context("pinning the coordinator")?)
    };
    let driven = match spawn_error {
        Some(e) => Err(e),
        None => drive(
            spec, share, &plans, &shared, &ready_rx, &phase_tx, &subject, hooks,
        ),
    };
    phase_tx.send_replace(Phase::Stop);
    let mut reports = Vec::new();
    let mut thread_errors = Vec::new();
    for handle in threads {
        match handle.join() {
            Ok(Ok(report)) => reports.push(report),
            Ok(Err(e)) => thread_errors.push(format!("{e:#}")),
            Err(_) => thread_errors.push("a subscriber thread panicked".to_string()),
        }
    }
    drop(pinned);
    let driven = driven?;
    if !thread_errors.is_empty() {
        bail!("subscriber threads failed: {}", thread_errors.join("; "));
    }
    Ok(assemble(spec, &plans, driven, reports, receive_path))
}

/// What the coordinator measured itself.
struct Driven {
    timeline: Timeline,
    pacer: publisher::PacerReport,
    cpu: CpuUsage,
    window_ns: u64,
    grace_ns: u64,
    /// Highest steal share of any CPU, per second of the window (None: /proc/stat unreadable).
    steal_per_window: Vec<Option<f64>>,
    /// Whether the hooks set a mark.
    marked: bool,
}

#[allow(clippy::too_many_arguments)]
fn drive(
    spec: &LoadSpec,
    share: &Share,
    plans: &[SubPlan],
    shared: &Arc<subscriber::Shared>,
    ready_rx: &mpsc::Receiver<Result<(), String>>,
    phase_tx: &watch::Sender<Phase>,
    subject: &dyn Fn(u32) -> String,
    hooks: &mut dyn WindowHooks,
) -> Result<Driven> {
    wait_until_subscribed(plans.len(), ready_rx)?;
    let senders = if share.publishers { spec.publishers } else { 0 };
    let pubs = (0..senders)
        .map(|k| publisher::PublisherConn::connect(spec.target, k, &subject(k), spec.payload_bytes))
        .collect::<Result<Vec<_>>>()?;

    let start_ns = match hooks.ready()? {
        Some(at) => {
            let now = os::now_ns();
            ensure!(
                at > now,
                "the common start instant passed {} us before this process was ready",
                (now - at) / 1000
            );
            at
        }
        None => os::now_ns() + START_LEAD_NS,
    };
    let window_start_ns = start_ns + spec.warmup.as_nanos() as u64;
    let window_end_ns = window_start_ns + spec.duration.as_nanos() as u64;
    let timeline = Timeline {
        window_start_ns,
        window_end_ns,
        schedules: Arc::new(Schedule::staggered(
            start_ns,
            spec.rate_per_publisher,
            spec.publishers,
        )?),
        publisher_clock_offset_ns: share.publisher_clock_offset_ns,
    };
    phase_tx.send_replace(Phase::Running(timeline.clone()));
    let drain_deadline_ns = window_end_ns + GRACE_MAX.as_nanos() as u64;
    let pacer_cpu = spec.client_cpus.first().copied();
    let pacer_timeline = timeline.clone();
    let pacer_shared = Arc::clone(shared);
    let payload_bytes = spec.payload_bytes;
    let pacer_spin_share = if spec.client_cpus.len() >= 3 {
        1.0
    } else {
        PACER_SPIN_SHARE
    };
    // The pacer stays alive until the window's end has been sampled, so that its CPU time can
    // still be read from /proc (a thread that exited has no entry there).
    let (release_pacer, pacer_released) = mpsc::channel::<()>();
    let pacer = std::thread::Builder::new()
        .name("loadgen-pacer".into())
        .spawn(move || {
            let pinned = pacer_cpu.map(os::pin_current_thread).transpose();
            if let Ok(mut threads) = pacer_shared.threads.lock() {
                threads.push(("pacer".to_string(), os::gettid()));
            }
            let mut report = publisher::run_pacer(
                pubs,
                &pacer_timeline,
                payload_bytes,
                drain_deadline_ns,
                pacer_spin_share,
            );
            if let Err(e) = pinned {
                report.errors.push(format!("pacer: {e:#}"));
            }
            // Returns when released or when the coordinator is gone.
            let _ = pacer_released.recv();
            report
        })
        .context("spawning the pacer thread")?;

    sleep_until_or_interrupted(window_start_ns)?;
    hooks.measure_start();
    let cpu_start = CpuSample::take(shared);
    let started = Instant::now();
    // /proc/stat at every second of the window: host steal per window, client CPUs' busy share.
    let mut stat_marks = vec![cpustat::snapshot().ok()];
    for w in 1..timeline.windows() as u64 {
        sleep_until_or_interrupted(window_start_ns + w * 1_000_000_000)?;
        stat_marks.push(cpustat::snapshot().ok());
        hooks.second_done(w as u32 - 1);
        if let Some(mark) = hooks.mark() {
            let _ = shared.mark_ns.compare_exchange(
                u64::MAX,
                mark,
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
    }
    sleep_until_or_interrupted(window_end_ns)?;
    hooks.measure_end();
    let cpu_end = CpuSample::take(shared);
    stat_marks.push(cpustat::snapshot().ok());
    hooks.second_done(timeline.windows() as u32 - 1);
    let window_ns = started.elapsed().as_nanos() as u64;
    drop(release_pacer);
    let steal_per_window: Vec<Option<f64>> = stat_marks
        .windows(2)
        .map(|pair| match (&pair[0], &pair[1]) {
            (Some(a), Some(b)) => cpustat::shares(a, b, &[])
                .iter()
                .map(|s| s.steal)
                .reduce(f64::max),
            _ => None,
        })
        .collect();
    let client_cpu_shares = match (stat_marks.first(), stat_marks.last()) {
        (Some(Some(a)), Some(Some(b))) => Some(cpustat::shares(a, b, &spec.client_cpus)),
        _ => None,
    };

    let healthy_expected: u64 = plans
        .iter()
        .filter(|p| !p.slow)
        .map(|p| {
            let due = timeline.schedules[p.publisher as usize]
                .seqs_due_in(window_start_ns, window_end_ns);
            due.end - due.start
        })
        .sum();
    let grace_ns = wait_for_in_flight(shared, healthy_expected, window_end_ns);
    let pacer = pacer
        .join()
        .map_err(|_| anyhow::anyhow!("the pacer thread panicked"))?;
    let mut cpu = cpu_usage(
        &cpu_start,
        &cpu_end,
        window_ns,
        client_cores(&spec.client_cpus),
    );
    match client_cpu_shares {
        Some(shares) => cpu.client_cpus = shares,
        None => cpu.client_cpus_null_reason = Some("/proc/stat could not be read".into()),
    }
    Ok(Driven {
        timeline,
        pacer,
        cpu,
        window_ns,
        grace_ns,
        steal_per_window,
        marked: shared.mark_ns.load(std::sync::atomic::Ordering::Relaxed) != u64::MAX,
    })
}

/// With three or more client CPUs the pacer gets the first to itself (and may spin before a
/// deadline); otherwise the receivers use every client CPU and the pacer shares the first.
fn receiver_cpus(client_cpus: &[usize]) -> Vec<usize> {
    if client_cpus.len() >= 3 {
        client_cpus[1..].to_vec()
    } else {
        client_cpus.to_vec()
    }
}

/// Cores the load generator runs on: the distinct client CPUs, or every CPU this process may
/// use when none were given.
fn client_cores(client_cpus: &[usize]) -> usize {
    if client_cpus.is_empty() {
        return std::thread::available_parallelism().map_or(1, |n| n.get());
    }
    let mut distinct = client_cpus.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    distinct.len()
}

fn wait_until_subscribed(
    total: usize,
    ready_rx: &mpsc::Receiver<Result<(), String>>,
) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut ready = 0;
    while ready < total {
        crate::interrupt::check()?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("only {ready} of {total} subscribers were subscribed after {READY_TIMEOUT:?}")
        }
        match ready_rx.recv_timeout(left.min(crate::interrupt::POLL)) {
            Ok(Ok(())) => ready += 1,
            Ok(Err(e)) => bail!("a subscriber could not subscribe: {e}"),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                bail!("only {ready} of {total} subscribers were subscribed; the rest are gone")
            }
        }
    }
    Ok(())
}

/// Sleeps until `deadline_ns` (CLOCK_MONOTONIC), in slices short enough that a harness told
/// to stop abandons the repetition within [`crate::interrupt::POLL`].
fn sleep_until_or_interrupted(deadline_ns: u64) -> Result<()> {
    let poll_ns = crate::interrupt::POLL.as_nanos() as u64;
    loop {
        crate::interrupt::check()?;
        let now = os::now_ns();
        if now >= deadline_ns {
            return Ok(());
        }
        os::sleep_until_ns(deadline_ns.min(now + poll_ns));
    }
}

/// Waits after the window until the healthy subscribers have `expected` distinct in-window
/// messages, or for the grace period; returns how long it waited.
fn wait_for_in_flight(shared: &subscriber::Shared, expected: u64, window_end_ns: u64) -> u64 {
    loop {
        let now = os::now_ns();
        let waited = now.saturating_sub(window_end_ns);
        if shared.unique_in_window.load(Ordering::Relaxed) >= expected
            || crate::interrupt::received().is_some()
        {
            return waited;
        }
        let grace = (2 * shared.max_latency_ns.load(Ordering::Relaxed))
            .clamp(GRACE_MIN.as_nanos() as u64, GRACE_MAX.as_nanos() as u64);
        if waited >= grace {
            return waited;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

struct CpuSample {
    process_us: Result<(u64, u64), String>,
    threads: Vec<(String, Result<u64, String>)>,
}

impl CpuSample {
    fn take(shared: &subscriber::Shared) -> Self {
        let threads = shared
            .threads
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|(name, tid)| (name, os::thread_cpu_ns(tid).map_err(|e| format!("{e:#}"))))
            .collect();
        Self {
            process_us: os::process_cpu_us().map_err(|e| format!("{e:#}")),
            threads,
        }
    }
}

fn cpu_usage(start: &CpuSample, end: &CpuSample, window_ns: u64, cores: usize) -> CpuUsage {
    let window_s = window_ns as f64 / 1e9;
    let (user_s, sys_s) = match (&start.process_us, &end.process_us) {
        (Ok((u0, s0)), Ok((u1, s1))) => (
            u1.saturating_sub(*u0) as f64 / 1e6,
            s1.saturating_sub(*s0) as f64 / 1e6,
        ),
        _ => (f64::NAN, f64::NAN),
    };
    let utilisation = (user_s + sys_s) / (window_s * cores as f64);
    let mut busiest: Option<(f64, String)> = None;
    let mut thread_error = None;
    for (name, cpu_end) in &end.threads {
        let cpu_start = start
            .threads
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c);
        match (cpu_start, cpu_end) {
            (Some(Ok(a)), Ok(b)) => {
                let share = b.saturating_sub(*a) as f64 / window_ns as f64;
                if busiest.as_ref().is_none_or(|(s, _)| share > *s) {
                    busiest = Some((share, name.clone()));
                }
            }
            (Some(Err(e)), _) | (_, Err(e)) => thread_error = Some(e.clone()),
            (None, Ok(_)) => thread_error = Some(format!("{name} started after the window began")),
        }
    }
    let thread_cpu_null_reason = match (&busiest, thread_error) {
        (_, Some(e)) => Some(e),
        (None, None) => Some("no load-generator thread was registered".to_string()),
        (Some(_), None) => None,
    };
    let busiest = if thread_cpu_null_reason.is_some() {
        None
    } else {
        busiest
    };
    let saturated = utilisation > SATURATION_UTILISATION
        || busiest
            .as_ref()
            .is_some_and(|(s, _)| *s > SATURATION_UTILISATION);
    CpuUsage {
        user_s,
        sys_s,
        window_s,
        cores,
        utilisation,
        busiest_thread_utilisation: busiest.as_ref().map(|(s, _)| *s),
        busiest_thread: busiest.map(|(_, n)| n),
        thread_cpu_null_reason,
        saturated,
        client_cpus: Vec::new(),
        client_cpus_null_reason: None,
    }
}

/// Steal share of a CPU in one second above which a hiccup in that second counts as host noise.
pub const HOST_NOISE_STEAL_SHARE: f64 = 0.005;

/// The windows whose pacing hiccup or latency spike (max over 4x the run's median window p99)
/// came with host steal.
fn host_noise_windows(windows: &[Window]) -> Vec<u32> {
    let mut p99s: Vec<u64> = windows.iter().filter_map(|w| w.latency_p99_ns).collect();
    p99s.sort_unstable();
    let median_p99 = p99s.get(p99s.len() / 2).copied();
    windows
        .iter()
        .filter(|w| {
            w.steal_max_share
                .is_some_and(|s| s > HOST_NOISE_STEAL_SHARE)
        })
        .filter(|w| {
            w.max_pacing_lag_ns > PACING_P99_LIMIT_NS
                || matches!((w.latency_max_ns, median_p99), (Some(max), Some(p99)) if max > 4 * p99)
        })
        .map(|w| w.index)
        .collect()
}

/// Whether the pacer missed its schedule by more than the documented bounds.
fn is_behind_schedule(pacing_lag: &Histogram<u64>, unsent_bytes: usize) -> bool {
    pacing_lag.value_at_quantile(0.99) > PACING_P99_LIMIT_NS
        || pacing_lag.max() > PACING_MAX_LIMIT_NS
        || unsent_bytes > 0
}

fn assemble(
    spec: &LoadSpec,
    plans: &[SubPlan],
    driven: Driven,
    reports: Vec<subscriber::ThreadReport>,
    receive_path: ReceivePath,
) -> LoadReport {
    let Driven {
        timeline,
        pacer,
        cpu,
        window_ns,
        grace_ns,
        steal_per_window,
        marked,
    } = driven;
    let mut latency = stats::latency_histogram();
    let mut service_latency = stats::latency_histogram();
    let mut windows: Vec<stats::WindowAcc> = (0..timeline.windows())
        .map(|_| stats::WindowAcc::new())
        .collect();
    let mut errors = pacer.errors.clone();
    let (mut delivered, mut expected, mut lost, mut duplicates, mut reordered) = (0, 0, 0, 0, 0);
    let mut subscribers_with_loss = 0;
    let mut slow = subscriber::SlowAcc::default();
    let mut suppressed = 0;
    let mut read_delay = stats::pacing_histogram();
    let mut received_in_window = 0;
    let mut received_since_mark = 0;
    let mut rx = ring::RxCounters::default();
    for r in &reports {
        stats::merge(&mut read_delay, &r.read_delay);
        received_in_window += r.received_in_window;
        received_since_mark += r.received_since_mark;
        rx.add(&r.rx);
        stats::merge(&mut latency, &r.latency);
        stats::merge(&mut service_latency, &r.service_latency);
        for (into, from) in windows.iter_mut().zip(&r.windows) {
            into.merge(from);
        }
        delivered += r.delivered;
        expected += r.expected;
        lost += r.lost;
        duplicates += r.duplicates;
        reordered += r.reordered;
        subscribers_with_loss += r.subscribers_with_loss;
        slow.bytes_read += r.slow.bytes_read;
        slow.bytes_drained_at_end += r.slow.bytes_drained_at_end;
        slow.messages += r.slow.messages;
        slow.messages_in_window += r.slow.messages_in_window;
        slow.cut_as_slow_consumer += r.slow.cut_as_slow_consumer;
        slow.closed_by_server += r.slow.closed_by_server;
        slow.max_latency_ns = slow.max_latency_ns.max(r.slow.max_latency_ns);
        errors.extend(r.errors.iter().cloned());
        suppressed += r.errors_suppressed;
    }
    if suppressed > 0 {
        errors.push(format!("{suppressed} more errors were not kept"));
    }
    let windows = windows
        .iter()
        .enumerate()
        .map(|(i, acc)| {
            let from = timeline.window_start_ns + i as u64 * 1_000_000_000;
            let to = (from + 1_000_000_000).min(timeline.window_end_ns);
            let window_expected = plans
                .iter()
                .filter(|p| !p.slow)
                .map(|p| {
                    let due = timeline.schedules[p.publisher as usize].seqs_due_in(from, to);
                    due.end - due.start
                })
                .sum();
            let has = !acc.latency.is_empty();
            Window {
                index: i as u32,
                start_offset_ns: from - timeline.window_start_ns,
                length_ns: to - from,
                sent: pacer.sent_per_window.get(i).copied().unwrap_or(0),
                expected: window_expected,
                delivered: acc.delivered,
                received: acc.received,
                latency_p50_ns: has.then(|| acc.latency.value_at_quantile(0.5)),
                latency_p99_ns: has.then(|| acc.latency.value_at_quantile(0.99)),
                latency_max_ns: has.then(|| acc.latency.max()),
                max_pacing_lag_ns: pacer.max_lag_per_window.get(i).copied().unwrap_or(0),
                steal_max_share: steal_per_window.get(i).copied().flatten(),
            }
        })
        .collect::<Vec<Window>>();
    let max_pacing_lag_ns = pacer.pacing_lag.max();
    let behind_schedule = is_behind_schedule(&pacer.pacing_lag, pacer.unsent_bytes);
    let host_noise = host_noise_windows(&windows);
    LoadReport {
        latency,
        service_latency,
        pacing_lag: pacer.pacing_lag,
        windows,
        sent: pacer.sent_in_window,
        expected,
        delivered,
        lost,
        duplicates,
        reordered,
        subscribers_with_loss,
        slow: SlowSubscriberReport {
            subscribers: spec.slow_subscribers,
            read_bytes_per_s: spec.slow_read_bytes_per_s,
            bytes_read: slow.bytes_read,
            bytes_drained_at_end: slow.bytes_drained_at_end,
            messages: slow.messages,
            messages_in_window: slow.messages_in_window,
            cut_as_slow_consumer: slow.cut_as_slow_consumer,
            closed_by_server: slow.closed_by_server,
            max_latency_ns: slow.max_latency_ns,
        },
        behind_schedule,
        host_noise,
        max_pacing_lag_ns,
        pacer_priority: pacer.priority,
        loadgen_cpu: cpu,
        received_in_window,
        received_since_mark: marked.then_some(received_since_mark),
        read_delay,
        receive_path,
        rx,
        window_ns,
        grace_ns,
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(process_us: (u64, u64), threads: &[(&str, u64)]) -> CpuSample {
        CpuSample {
            process_us: Ok(process_us),
            threads: threads
                .iter()
                .map(|(n, ns)| (n.to_string(), Ok(*ns)))
                .collect(),
        }
    }

    #[test]
    fn cpu_utilisation_is_relative_to_client_cores_and_flags_saturation() {
        let start = sample((0, 0), &[("pacer", 0), ("subscriber thread 0", 0)]);
        // 1.5 s user + 0.3 s sys over a 1 s window on 2 cores: 90% is not above the bound.
        let end = sample(
            (1_500_000, 300_000),
            &[("pacer", 100_000_000), ("subscriber thread 0", 800_000_000)],
        );
        let cpu = cpu_usage(&start, &end, 1_000_000_000, 2);
        assert!((cpu.utilisation - 0.9).abs() < 1e-9);
        assert!(!cpu.saturated);
        assert_eq!(cpu.busiest_thread.as_deref(), Some("subscriber thread 0"));
        let end = sample(
            (1_600_000, 300_000),
            &[("pacer", 0), ("subscriber thread 0", 0)],
        );
        assert!(cpu_usage(&start, &end, 1_000_000_000, 2).saturated);
    }

    #[test]
    fn one_saturated_thread_flags_saturation_even_with_idle_cores() {
        let start = sample((0, 0), &[("pacer", 0), ("subscriber thread 0", 0)]);
        let end = sample(
            (950_000, 0),
            &[("pacer", 0), ("subscriber thread 0", 950_000_000)],
        );
        let cpu = cpu_usage(&start, &end, 1_000_000_000, 4);
        assert!(cpu.utilisation < 0.3);
        assert!(cpu.saturated);
    }

    #[test]
    fn unreadable_thread_cpu_is_null_with_a_reason() {
        let start = sample((0, 0), &[("pacer", 0)]);
        let mut end = sample((1000, 0), &[]);
        end.threads.push(("pacer".into(), Err("gone".into())));
        let cpu = cpu_usage(&start, &end, 1_000_000_000, 1);
        assert_eq!(cpu.busiest_thread_utilisation, None);
        assert_eq!(cpu.thread_cpu_null_reason.as_deref(), Some("gone"));
    }

    #[test]
    fn behind_schedule_when_p99_or_max_lag_exceeds_its_bound_or_bytes_stay_unsent() {
        let mut lag = stats::pacing_histogram();
        for _ in 0..1000 {
            lag.saturating_record(20_000);
        }
        assert!(!is_behind_schedule(&lag, 0));
        assert!(is_behind_schedule(&lag, 1));
        let mut one_late = lag.clone();
        one_late.saturating_record(PACING_MAX_LIMIT_NS * 2);
        assert!(is_behind_schedule(&one_late, 0), "one message far too late");
        let mut often_late = lag.clone();
        for _ in 0..20 {
            often_late.saturating_record(PACING_P99_LIMIT_NS * 2);
        }
        assert!(
            is_behind_schedule(&often_late, 0),
            "2% of messages over 1 ms"
        );
    }

    #[test]
    fn duplicate_client_cpus_count_once() {
        assert_eq!(client_cores(&[1, 1]), 1);
        assert_eq!(client_cores(&[3, 1, 2]), 3);
    }

    #[test]
    fn slow_subscribers_are_the_last_of_publisher_zero() {
        let spec = LoadSpec {
            target: "127.0.0.1:1".parse().expect("addr"),
            publishers: 2,
            subscribers_per_publisher: 3,
            rate_per_publisher: 1.0,
            payload_bytes: 64,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(1),
            slow_subscribers: 2,
            slow_read_bytes_per_s: 10,
            client_cpus: Vec::new(),
        };
        let plans = plan_subscribers(&spec, |k| format!("s.{k}"));
        let slow: Vec<u32> = plans.iter().filter(|p| p.slow).map(|p| p.id).collect();
        assert_eq!(slow, vec![1, 2]);
        assert_eq!(plans.len(), 6);
        assert!(plans
            .iter()
            .all(|p| p.subject == format!("s.{}", p.publisher)));
    }

    #[test]
    fn send_stamps_are_moved_onto_this_clock_by_the_offset() {
        let mut t = Timeline {
            window_start_ns: 0,
            window_end_ns: 1,
            schedules: Arc::new(Vec::new()),
            publisher_clock_offset_ns: -250,
        };
        assert_eq!(t.local_ns(1_000), 750);
        assert_eq!(t.local_ns(100), 0, "clamped, never wraps");
        t.publisher_clock_offset_ns = 250;
        assert_eq!(t.local_ns(1_000), 1_250);
    }

    #[test]
    fn a_share_of_the_subscribers_outside_the_run_is_an_error() {
        let spec = LoadSpec {
            target: "127.0.0.1:1".parse().expect("addr"),
            publishers: 1,
            subscribers_per_publisher: 3,
            rate_per_publisher: 1.0,
            payload_bytes: 64,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(1),
            slow_subscribers: 0,
            slow_read_bytes_per_s: 0,
            client_cpus: Vec::new(),
        };
        assert_eq!(Share::whole(&spec).subscribers, 0..3);
        let share = Share {
            subscribers: 2..4,
            ..Share::whole(&spec)
        };
        let err = run_share(&spec, &share, &mut NoHooks).expect_err("outside");
        assert!(err.to_string().contains("outside"), "{err}");
    }

    struct NoHooks;
    impl WindowHooks for NoHooks {
        fn measure_start(&mut self) {}
        fn measure_end(&mut self) {}
    }

    #[test]
    fn timeline_maps_due_times_to_one_second_windows() {
        let t = Timeline {
            window_start_ns: 10_000_000_000,
            window_end_ns: 12_500_000_000,
            schedules: Arc::new(Vec::new()),
            publisher_clock_offset_ns: 0,
        };
        assert_eq!(t.windows(), 3);
        assert_eq!(t.window_index(9_999_999_999), None);
        assert_eq!(t.window_index(10_000_000_000), Some(0));
        assert_eq!(t.window_index(12_499_999_999), Some(2));
        assert_eq!(t.window_index(12_500_000_000), None);
    }
}
