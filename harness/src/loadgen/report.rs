//! What a load test reports, and how the threads' figures are put together into it.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::run::Driven;
use super::subscriber::{self, SubPlan};
use super::{cpustat, publisher, ring, stats, LoadSpec, PACING_MAX_LIMIT_NS, PACING_P99_LIMIT_NS};

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
    pub(super) fn choose() -> Self {
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

/// Serde for a histogram as base64 of its V2 serialization.
mod histogram_text {
    use hdrhistogram::Histogram;
    use serde::de::Error as _;
    use serde::ser::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::results::write::{deserialize_histogram, serialize_histogram};

    pub fn serialize<S: Serializer>(h: &Histogram<u64>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&serialize_histogram(h).map_err(|e| S::Error::custom(format!("{e:#}")))?)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Histogram<u64>, D::Error> {
        let text = String::deserialize(d)?;
        deserialize_histogram(&text).map_err(|e| D::Error::custom(format!("{e:#}")))
    }
}

/// Everything one run measured. Histograms are in nanoseconds; serialized (an agent's report
/// to its controller) as base64 of their V2 serialization.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadReport {
    #[serde(with = "histogram_text")]
    pub latency: Histogram<u64>,
    #[serde(with = "histogram_text")]
    pub service_latency: Histogram<u64>,
    #[serde(with = "histogram_text")]
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
    /// Of those, the ones received at or after the hooks' [`super::WindowHooks::mark`]; `None` when
    /// the hooks set no mark.
    #[serde(default)]
    pub received_since_mark: Option<u64>,
    /// The measured window as scheduled (its end minus its start): the span
    /// `received_in_window` counts over, so the throughput's divisor.
    #[serde(default)]
    pub scheduled_window_ns: u64,
    /// The latest the coordinating thread ran the hooks after a boundary of the window (its
    /// start, each second, its end). The server's counters are read then: a late reading
    /// covers more than the part of the window it closes.
    #[serde(default)]
    pub boundary_late_ns: u64,
    /// Read time - kernel receive time per message (ns): the instrument's own lag. Empty on
    /// the readiness path.
    #[serde(with = "histogram_text")]
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

pub(super) fn assemble(
    spec: &LoadSpec,
    plans: &[SubPlan],
    driven: Driven,
    mut reports: Vec<subscriber::ThreadReport>,
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
        boundary_late_ns,
    } = driven;
    let mut latency = stats::latency_histogram();
    let mut service_latency = stats::latency_histogram();
    let mut windows: Vec<stats::WindowAcc> = (0..timeline.windows())
        .map(|_| stats::WindowAcc::new())
        .collect();
    let pacer = pacer
        .or_else(|| reports.iter_mut().find_map(|r| r.pacer.take()))
        .unwrap_or_else(|| publisher::PacerReport::absent(timeline.windows()));
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
        scheduled_window_ns: timeline.window_end_ns - timeline.window_start_ns,
        boundary_late_ns,
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
}
