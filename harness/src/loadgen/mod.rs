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
//! # Files
//!
//! This module holds the spec, the hooks and the timeline; [`run`] (run.rs) connects everyone
//! and drives the window; report.rs defines the report and puts the threads' figures together;
//! [`ring`] and [`subscriber`] are the two receive paths, [`publisher`] the pacer.
//!
//! # Threads
//!
//! One receiver thread per client CPU for the healthy subscribers (dealt round-robin), each on
//! its own io_uring ([`ring`]); when this kernel cannot run that path (probed once per run) the
//! same threads run the Tokio readiness path instead ([`subscriber`]), and the report says
//! which ran. Slow subscribers, trickle readers that need no speed, share one Tokio thread on
//! the first client CPU. One pacer sends for all publishers ([`publisher::Pacer`]). With three or
//! more client CPUs it is a thread on the first CPU of its own, with 1 ns timer slack and
//! SCHED_FIFO priority 1 where permitted, and busy-waits before each deadline. With fewer it
//! shares the first client CPU with receiver thread 0: on the io_uring path it runs inside that
//! thread's ring loop (it sends between two completions once a message falls due, and bounds
//! the ring's wait by its next deadline), which saves a thread's wake-up and two context
//! switches per message, and that thread runs SCHED_FIFO where permitted; on the readiness
//! path it is a SCHED_FIFO thread on that CPU. Either
//! way it busy-waits before a deadline only within [`PACER_SPIN_SHARE`] of its CPU, and the
//! report says where it ran (`pacer_priority`). The calling thread is confined to the client
//! CPUs for the run; it sleeps until each second of the window (sampling `/proc/stat` for host
//! steal), runs the hooks and samples CPU.
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
pub(crate) mod report;
mod ring;
mod run;
mod schedule;
mod seq;
mod stats;
mod subscriber;
mod wire;

#[cfg(test)]
mod live_tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Result};

pub use os::now_ns;
pub use report::{CpuUsage, LoadReport, SlowSubscriberReport};
pub use run::{run, run_share};
use schedule::Schedule;
use subscriber::SubPlan;

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

#[cfg(test)]
mod tests {
    use super::*;

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
