//! Server-side measurements sampled at the load generator's window boundaries: CPU time and
//! peak RSS from /proc, syscalls / SQEs / task-clock from perf counters on every server thread.
//!
//! [`ServerSampler`] is the load generator's [`WindowHooks`]: it reads everything at the instant
//! the measured window begins and ends, and [`ServerSampler::finish`] turns the two readings
//! into the results' server metrics (null with a reason for anything it could not measure).
//!
//! # Counted and uncounted seconds
//!
//! The syscall tracepoints make every syscall of the counted process dearer, and more so on
//! rows that make more syscalls: CPU measured while they are attached would charge epoll rows
//! for the instrument. So by default ([`Counting::Split`]) the window is cut at a second
//! boundary: the first seconds are *uncounted* (task-clock only: `server_cpu_us_per_msg`
//! comes from them), then the tracepoints are attached and the last seconds are *counted*
//! (syscalls, SQEs and their breakdown per message). Each part divides by the messages
//! received in its own seconds. The tracepoints are attached at the cut and not detached at
//! one because opening them takes milliseconds, while closing one waits for an RCU grace
//! period under a global mutex (about a second for all of them): they are closed after the
//! window. A window of one second cannot be cut; its CPU is then measured with the
//! tracepoints attached, and the result says so.

pub mod perf;
pub mod procfs;

use std::time::{Duration, Instant};

use crate::loadgen::{LoadReport, WindowHooks};
use crate::results::schema::{Measured, ServerCounting, ServerMetrics, Syscalls};
use perf::{CounterSample, ProcessCounters};
use procfs::ProcCpu;

/// How the server's kernel counters are attached during the measured window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Counting {
    /// CPU measured in the first seconds without tracepoints; syscalls and SQEs counted in the
    /// rest, with them.
    #[default]
    Split,
    /// Tracepoints attached for the whole window; CPU is measured with them attached.
    Always,
    /// No perf event at all: CPU from /proc only, syscalls and SQEs not counted.
    Off,
}

impl Counting {
    pub fn name(self) -> &'static str {
        match self {
            Counting::Split => "split",
            Counting::Always => "always",
            Counting::Off => "off",
        }
    }

    /// Counted seconds (the last ones) of a window of `seconds` (its last may be partial): a
    /// third, at least one, and every second when the window cannot be cut.
    pub fn counted_seconds(self, seconds: u32) -> u32 {
        match self {
            Counting::Split if seconds >= 2 => (seconds / 3).max(1),
            Counting::Split | Counting::Always => seconds,
            Counting::Off => 0,
        }
    }
}

/// Why syscalls and SQEs are null with `--server-counters off`.
const NOT_COUNTED_OFF: &str = "not counted (--server-counters off: no perf event attached)";

/// The null reason of every per-message metric (and of latency) when nothing was delivered.
pub const NOTHING_DELIVERED: &str = "no messages were delivered in the window";

/// The per-message server numbers of a repetition's headline.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerHeadline {
    pub syscalls_per_msg: Measured<f64>,
    pub sqes_per_msg: Measured<f64>,
    pub server_cpu_us_per_msg: Measured<f64>,
    pub server_peak_rss_bytes: Measured<u64>,
}

/// Fewest /proc clock ticks (user + sys) for a CPU-time figure based on them alone: below
/// this the tick granularity is more than a tenth of the value.
const MIN_PROC_TICKS: f64 = 10.0;

struct Snapshot {
    counters: Option<CounterSample>,
    cpu: Result<ProcCpu, String>,
}

/// Samples one server process at the window boundaries.
pub struct ServerSampler {
    pid: Option<u32>,
    /// Why there are no server metrics at all (no pid).
    no_pid_reason: String,
    counting: Counting,
    /// Seconds of the window, and how many of them (from the first) are counted.
    seconds: u32,
    counted_seconds: u32,
    counters: Result<ProcessCounters, String>,
    /// Which counters were opened (kept when the tracepoints are closed at the cut).
    opened: Opened,
    start: Option<Snapshot>,
    /// When the window is split: at the end of the uncounted seconds, and once the
    /// tracepoints are attached (with how long that took).
    cut: Option<Snapshot>,
    attached: Option<(Snapshot, Duration)>,
    attach_error: Option<String>,
    /// When the counted part began (CLOCK_MONOTONIC ns): the load generator counts the
    /// messages received from then on.
    mark_ns: Option<u64>,
    end: Option<Snapshot>,
    hwm_reset: Result<(), String>,
    peak_rss: Result<u64, String>,
    threads_at_end: Option<u32>,
}

/// Whether each counter could be opened, and why not.
struct Opened {
    syscalls: Result<(), String>,
    sqes: Result<(), String>,
    task_clock: Result<(), String>,
    breakdown_missing: Vec<(String, String)>,
}

impl Opened {
    fn of(counters: &Result<ProcessCounters, String>) -> Opened {
        let status = |event: &Result<perf::ProcessEvent, String>| {
            event.as_ref().map(|_| ()).map_err(Clone::clone)
        };
        match counters {
            Ok(c) => Opened {
                syscalls: status(&c.syscalls),
                sqes: status(&c.sqes),
                task_clock: status(&c.task_clock),
                breakdown_missing: c.breakdown_missing.clone(),
            },
            Err(reason) => Opened {
                syscalls: Err(reason.clone()),
                sqes: Err(reason.clone()),
                task_clock: Err(reason.clone()),
                breakdown_missing: Vec::new(),
            },
        }
    }
}

/// The first and last snapshot of a part of the window, and the messages received in it.
#[derive(Clone, Copy)]
struct Part<'a> {
    from: &'a Snapshot,
    to: &'a Snapshot,
    received: u64,
}

impl ServerSampler {
    /// Opens the perf counters on every thread of `pid` now (none with [`Counting::Off`],
    /// task-clock only when the window is split); call it before the load starts. `window` is
    /// the measured window's length.
    pub fn new(pid: u32, counting: Counting, window: Duration) -> ServerSampler {
        let seconds = u32::try_from(window.as_nanos().div_ceil(1_000_000_000))
            .unwrap_or(u32::MAX)
            .max(1);
        let split = counting.counted_seconds(seconds) < seconds;
        let counters = match counting {
            Counting::Off => Err(NOT_COUNTED_OFF.to_string()),
            Counting::Split | Counting::Always => {
                ProcessCounters::open(pid, !split).map_err(|e| format!("{e:#}"))
            }
        };
        ServerSampler {
            pid: Some(pid),
            no_pid_reason: String::new(),
            opened: Opened::of(&counters),
            counting,
            seconds,
            counted_seconds: counting.counted_seconds(seconds),
            counters,
            start: None,
            cut: None,
            attached: None,
            attach_error: None,
            mark_ns: None,
            end: None,
            hwm_reset: Err("the measured window never started".into()),
            peak_rss: Err("the measured window never ended".into()),
            threads_at_end: None,
        }
    }

    /// A sampler for a server whose pid is unknown: every server metric will be null with
    /// `reason`.
    pub fn without_pid(reason: impl Into<String>) -> ServerSampler {
        let reason = reason.into();
        let counters = Err(reason.clone());
        ServerSampler {
            pid: None,
            no_pid_reason: reason.clone(),
            opened: Opened::of(&counters),
            counting: Counting::Off,
            seconds: 1,
            counted_seconds: 0,
            counters,
            start: None,
            cut: None,
            attached: None,
            attach_error: None,
            mark_ns: None,
            end: None,
            hwm_reset: Err(reason.clone()),
            peak_rss: Err(reason),
            threads_at_end: None,
        }
    }

    /// Whether the window is cut into uncounted and counted seconds.
    fn is_split(&self) -> bool {
        self.counting == Counting::Split && self.counted_seconds < self.seconds
    }

    fn snapshot(&self) -> Snapshot {
        let counters = self.counters.as_ref().ok().map(ProcessCounters::sample);
        let cpu = match self.pid {
            Some(pid) => procfs::read_cpu(pid).map_err(|e| format!("{e:#}")),
            None => Err(self.no_pid_reason.clone()),
        };
        Snapshot { counters, cpu }
    }

    /// The server metrics of the window, and the per-message headline numbers: the messages
    /// received per second of the window and since the mark come from `report`.
    pub fn finish(self, report: &LoadReport) -> (ServerMetrics, ServerHeadline) {
        let received_per_second: Vec<u64> = report.windows.iter().map(|w| w.received).collect();
        let received = |seconds: std::ops::Range<usize>| -> u64 {
            received_per_second
                .iter()
                .skip(seconds.start)
                .take(seconds.len())
                .sum()
        };
        let all = self.seconds as usize;
        let uncounted = (self.seconds - self.counted_seconds) as usize;
        let no_window = || "the load generator did not report both window boundaries".to_string();
        let whole = match (&self.start, &self.end) {
            (Some(from), Some(to)) => Ok(Part {
                from,
                to,
                received: received(0..all),
            }),
            _ => Err(no_window()),
        };
        // Counters: the counted seconds (from the moment the tracepoints were attached); CPU:
        // the uncounted ones; both the whole window when it was not cut.
        let (counted_part, cpu_part) = match (&self.start, &self.cut, &self.attached, &self.end) {
            (Some(start), Some(cut), Some((attached, took)), Some(end)) => (
                match report.received_since_mark {
                    Some(0) => Err(format!(
                        "nothing was received after the tracepoints were attached (attaching \
                         took {:.0} ms of the {} counted seconds)",
                        took.as_secs_f64() * 1e3,
                        self.counted_seconds
                    )),
                    Some(received) => Ok(Part {
                        from: attached,
                        to: end,
                        received,
                    }),
                    None => Err("the load generator did not count the messages received \
                                 since the tracepoints were attached"
                        .to_string()),
                },
                Ok(Part {
                    from: start,
                    to: cut,
                    received: received(0..uncounted),
                }),
            ),
            // Attaching failed: nothing was counted, but the CPU part stands.
            (Some(start), Some(cut), None, Some(_)) => (
                Err(self
                    .attach_error
                    .clone()
                    .unwrap_or_else(|| "the tracepoints were not attached".into())),
                Ok(Part {
                    from: start,
                    to: cut,
                    received: received(0..uncounted),
                }),
            ),
            (Some(_), None, _, Some(_)) if self.is_split() => {
                let why = "the window was not cut where the counting starts".to_string();
                (Err(why.clone()), Err(why))
            }
            _ => (whole.clone(), whole.clone()),
        };
        let attach_ms = self
            .attached
            .as_ref()
            .map(|(_, took)| took.as_secs_f64() * 1e3);

        let counter_delta = |part: &Result<Part, String>,
                             pick: &dyn Fn(&CounterSample) -> Option<u64>,
                             open: &Result<(), String>|
         -> Result<u64, String> {
            // An event that could not be opened at all says so first; one that was waiting to
            // be attached at the cut gives way to why the counted part is missing (a failed or
            // abandoned attach).
            if let Err(why) = open {
                if why != perf::NOT_ATTACHED {
                    return Err(why.clone());
                }
            }
            let part = part.as_ref().map_err(Clone::clone)?;
            open.clone()?;
            let (Some(s), Some(e)) = (&part.from.counters, &part.to.counters) else {
                return Err("perf counters unavailable".into());
            };
            match (pick(s), pick(e)) {
                (Some(a), Some(b)) => Ok(b.saturating_sub(a)),
                _ => Err("reading the perf counter failed".into()),
            }
        };
        let syscalls_total = counter_delta(&counted_part, &|s| s.syscalls, &self.opened.syscalls);
        let sqes = counter_delta(&counted_part, &|s| s.sqes, &self.opened.sqes);
        let task_clock = |part: &Result<Part, String>| {
            counter_delta(part, &|s| s.task_clock_ns, &self.opened.task_clock)
        };
        let (breakdown, breakdown_null_reason) = self.breakdown(&counted_part, &syscalls_total);

        let ticks = procfs::clock_ticks_per_second() as f64;
        let proc_cpu = |part: &Result<Part, String>| -> Result<(f64, f64), String> {
            let part = part.as_ref().map_err(Clone::clone)?;
            let (a, b) = (part.from.cpu.clone()?, part.to.cpu.clone()?);
            Ok((
                b.utime_ticks.saturating_sub(a.utime_ticks) as f64 / ticks,
                b.stime_ticks.saturating_sub(a.stime_ticks) as f64 / ticks,
            ))
        };
        // CPU seconds of a part: task-clock when it was counted, else /proc user + sys when
        // enough ticks passed.
        let cpu_seconds = |part: &Result<Part, String>| -> Result<f64, String> {
            match (task_clock(part), proc_cpu(part)) {
                (Ok(ns), _) => Ok(ns as f64 / 1e9),
                (Err(a), Ok((user, sys))) if (user + sys) * ticks < MIN_PROC_TICKS => Err(format!(
                    "task-clock: {a}; /proc stat counted {:.0} clock ticks of {:.0} ms, too \
                         few to measure (at least {MIN_PROC_TICKS} needed)",
                    (user + sys) * ticks,
                    1000.0 / ticks
                )),
                (Err(_), Ok((user, sys))) => Ok(user + sys),
                (Err(a), Err(b)) => Err(format!("task-clock: {a}; /proc stat: {b}")),
            }
        };
        let per_msg = |value: Result<f64, String>, part: &Result<Part, String>| -> Measured<f64> {
            match (value, part) {
                (Err(reason), _) => Measured::Null(reason),
                (_, Err(reason)) => Measured::Null(reason.clone()),
                (Ok(_), Ok(p)) if p.received == 0 => Measured::null(NOTHING_DELIVERED),
                (Ok(v), Ok(p)) => Measured::Value(v / p.received as f64),
            }
        };
        let syscalls_per_msg = per_msg(syscalls_total.clone().map(|v| v as f64), &counted_part);
        let sqes_per_msg = per_msg(sqes.clone().map(|v| v as f64), &counted_part);
        let server_cpu_us_per_msg = per_msg(cpu_seconds(&cpu_part).map(|s| s * 1e6), &cpu_part);
        let cut = self.cut.is_some();
        let counted_cpu_us_per_msg = if cut {
            per_msg(cpu_seconds(&counted_part).map(|s| s * 1e6), &counted_part)
        } else {
            Measured::null("the window was not cut into counted and uncounted seconds")
        };
        let seconds = |range: std::ops::Range<u32>| range.collect::<Vec<u32>>();
        // Opened at the start (not cut) or attached at the cut.
        let tracepoints_attached = (self.opened.syscalls.is_ok() || self.opened.sqes.is_ok())
            && (!cut || self.attached.is_some());
        let counting = ServerCounting {
            mode: self.counting.name().to_string(),
            counted_seconds: if tracepoints_attached {
                seconds(self.seconds - self.counted_seconds..self.seconds)
            } else {
                Vec::new()
            },
            cpu_seconds: if cut {
                seconds(0..self.seconds - self.counted_seconds)
            } else {
                seconds(0..self.seconds)
            },
            cpu_with_tracepoints: !cut && tracepoints_attached,
            counted_cpu_us_per_msg,
            attach_ms,
        };

        // Whole-window CPU, for the server's utilisation.
        let whole_proc = proc_cpu(&whole);
        let whole_task_clock = task_clock(&whole);
        let peak_rss_scope = match (&self.peak_rss, &self.hwm_reset) {
            (Err(_), _) => None,
            (Ok(_), Ok(())) => Some("window".to_string()),
            (Ok(_), Err(_)) => Some("process lifetime".to_string()),
        };
        let method = self.method();

        let metrics = ServerMetrics {
            pid: self.pid,
            cpu_user_s: whole_proc.as_ref().ok().map(|c| c.0),
            cpu_sys_s: whole_proc.as_ref().ok().map(|c| c.1),
            cpu_null_reason: whole_proc.as_ref().err().cloned(),
            cpu_task_clock_s: whole_task_clock.map(|ns| ns as f64 / 1e9).into(),
            peak_rss_scope,
            syscalls: Syscalls {
                total: syscalls_total.into(),
                breakdown,
                breakdown_null_reason,
                threads_at_start: self.counters.as_ref().ok().map(|c| c.threads_at_open),
                threads_at_end: self.threads_at_end,
                method,
            },
            sqes: sqes.into(),
            utilisation: Measured::null("the server CPUs are not known here"),
            counting: Some(counting),
        };
        let headline = ServerHeadline {
            syscalls_per_msg,
            sqes_per_msg,
            server_cpu_us_per_msg,
            server_peak_rss_bytes: self.peak_rss.clone().into(),
        };
        if let Ok(counters) = self.counters {
            counters.close_in_background();
        }
        (metrics, headline)
    }

    fn breakdown(
        &self,
        part: &Result<Part, String>,
        total: &Result<u64, String>,
    ) -> (std::collections::BTreeMap<String, u64>, Option<String>) {
        let mut out = std::collections::BTreeMap::new();
        if let Err(reason) = &self.opened.syscalls {
            return (out, Some(reason.clone()));
        }
        let part = match part {
            Ok(part) => part,
            Err(reason) => return (out, Some(reason.clone())),
        };
        let (Some(s), Some(e)) = (&part.from.counters, &part.to.counters) else {
            return (out, Some("perf counters unavailable".into()));
        };
        for (name, after) in &e.breakdown {
            if let Some(before) = s.breakdown.get(name) {
                out.insert(name.clone(), after.saturating_sub(*before));
            }
        }
        if out.is_empty() {
            let reasons: Vec<String> = self
                .opened
                .breakdown_missing
                .iter()
                .map(|(name, reason)| format!("{name}: {reason}"))
                .collect();
            return (
                out,
                Some(format!(
                    "no per-syscall tracepoint could be counted ({})",
                    reasons.join("; ")
                )),
            );
        }
        if let Ok(total) = total {
            let listed: u64 = out.values().sum();
            out.insert("other".into(), total.saturating_sub(listed));
        }
        (out, None)
    }

    fn method(&self) -> String {
        if self.counting == Counting::Off {
            return NOT_COUNTED_OFF.to_string();
        }
        let mut method = String::from(
            "perf_event_open counting tracepoints (raw_syscalls:sys_enter, syscalls:sys_enter_<name>, \
             io_uring:io_uring_submit_req) and task-clock, one event per thread of /proc/<pid>/task \
             with inherit=1 (later threads counted on their creator's event), read at the window \
             boundaries",
        );
        if self.is_split() {
            method.push_str(&format!(
                "; tracepoints attached for the last {} s of the {} s window only \
                 (server_cpu_us_per_msg is measured in the first {} s, without them)",
                self.counted_seconds,
                self.seconds,
                self.seconds - self.counted_seconds
            ));
        }
        if !self.opened.breakdown_missing.is_empty() {
            let names: Vec<&str> = self
                .opened
                .breakdown_missing
                .iter()
                .map(|(name, _)| name.as_str())
                .collect();
            method.push_str(&format!(
                "; not available on this kernel: {}",
                names.join(", ")
            ));
        }
        method
    }
}

impl WindowHooks for ServerSampler {
    fn measure_start(&mut self) {
        self.start = Some(self.snapshot());
        if let Some(pid) = self.pid {
            self.hwm_reset = procfs::reset_peak_rss(pid).map_err(|e| format!("{e:#}"));
        }
    }

    fn second_done(&mut self, index: u32) {
        let uncounted = self.seconds - self.counted_seconds;
        if !self.is_split() || index + 1 != uncounted || self.cut.is_some() || self.start.is_none()
        {
            return;
        }
        let Some(pid) = self.pid else {
            return;
        };
        self.cut = Some(self.snapshot());
        let Ok(counters) = &mut self.counters else {
            return;
        };
        let began = Instant::now();
        // Attaching takes tens of microseconds per thread and tracepoint (about 2 s for a
        // server with a thousand threads): give it half the counted seconds, so the window's
        // end is not sampled late and at least half of the counted part is counted.
        let allowed = Duration::from_millis(500 * u64::from(self.counted_seconds));
        match counters.attach_tracepoints(pid, Some(began + allowed)) {
            Ok(()) => {
                let took = began.elapsed();
                self.opened = Opened::of(&self.counters);
                // The counters are read one after another from here on, as they are at the
                // window's end: both readings of each counter are about as far apart as the
                // mark is from the window's end.
                self.mark_ns = Some(crate::loadgen::now_ns());
                self.attached = Some((self.snapshot(), took));
            }
            Err(err) => self.attach_error = Some(format!("attaching the tracepoints: {err:#}")),
        }
    }

    fn mark(&mut self) -> Option<u64> {
        self.mark_ns
    }

    fn measure_end(&mut self) {
        self.end = Some(self.snapshot());
        if let Some(pid) = self.pid {
            self.peak_rss = procfs::read_peak_rss(pid).map_err(|e| format!("{e:#}"));
            self.threads_at_end = procfs::read_cpu(pid)
                .ok()
                .and_then(|c| u32::try_from(c.num_threads).ok());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::fixture::{clean_report, window};

    fn snapshot(task_clock_ns: u64, syscalls: Option<u64>, sqes: Option<u64>) -> Snapshot {
        Snapshot {
            counters: Some(CounterSample {
                syscalls,
                breakdown: Default::default(),
                sqes,
                task_clock_ns: Some(task_clock_ns),
            }),
            cpu: Err("no /proc in this test".into()),
        }
    }

    fn report(received: &[u64], since_mark: Option<u64>) -> LoadReport {
        let mut report = clean_report();
        report.windows = (0..)
            .zip(received)
            .map(|(i, &received)| window(i, received, None))
            .collect();
        report.received_in_window = received.iter().sum();
        report.received_since_mark = since_mark;
        report
    }

    /// A sampler of a 3 s window whose counters opened.
    fn sampler(counting: Counting) -> ServerSampler {
        let mut s = ServerSampler::without_pid("test");
        s.counting = counting;
        s.seconds = 3;
        s.counted_seconds = counting.counted_seconds(3);
        s.opened = Opened {
            syscalls: Ok(()),
            sqes: Ok(()),
            task_clock: Ok(()),
            breakdown_missing: Vec::new(),
        };
        s
    }

    #[test]
    fn a_split_window_takes_cpu_from_the_uncounted_seconds_and_syscalls_from_the_mark_on() {
        let mut s = sampler(Counting::Split);
        s.start = Some(snapshot(0, None, None));
        s.cut = Some(snapshot(2_000_000_000, None, None));
        s.attached = Some((
            snapshot(2_100_000_000, Some(1000), Some(10)),
            Duration::from_millis(5),
        ));
        s.end = Some(snapshot(3_200_000_000, Some(1500), Some(30)));
        let (metrics, headline) = s.finish(&report(&[1000, 1000, 1000], Some(800)));
        // 2 s of CPU over the 2000 messages of seconds 0 and 1.
        assert_eq!(headline.server_cpu_us_per_msg, Measured::Value(1000.0));
        // 500 syscalls and 20 SQEs over the 800 messages received since the mark.
        assert_eq!(headline.syscalls_per_msg, Measured::Value(0.625));
        assert_eq!(headline.sqes_per_msg, Measured::Value(0.025));
        assert_eq!(metrics.syscalls.total, Measured::Value(500));
        let counting = metrics.counting.expect("counting");
        assert_eq!(counting.mode, "split");
        assert_eq!(counting.cpu_seconds, vec![0, 1]);
        assert_eq!(counting.counted_seconds, vec![2]);
        assert!(!counting.cpu_with_tracepoints);
        assert_eq!(counting.counted_cpu_us_per_msg, Measured::Value(1375.0));
        assert_eq!(counting.attach_ms, Some(5.0));
        // Utilisation and the CPU totals stay whole-window figures.
        assert_eq!(metrics.cpu_task_clock_s, Measured::Value(3.2));
    }

    #[test]
    fn a_failed_attach_nulls_the_counted_part_with_its_reason_and_keeps_the_cpu() {
        let mut s = sampler(Counting::Split);
        s.start = Some(snapshot(0, None, None));
        s.cut = Some(snapshot(2_000_000_000, None, None));
        s.attach_error = Some("attaching the tracepoints: EMFILE".into());
        // As after a real failed attach: the tracepoint events were never opened.
        s.opened.syscalls = Err(perf::NOT_ATTACHED.into());
        s.opened.sqes = Err(perf::NOT_ATTACHED.into());
        s.end = Some(snapshot(3_000_000_000, None, None));
        let (metrics, headline) = s.finish(&report(&[1000, 1000, 1000], None));
        let reason = headline.syscalls_per_msg.null_reason().expect("null");
        assert!(reason.contains("EMFILE"), "{reason}");
        // The uncounted seconds were measured before the attempt: their CPU stands.
        assert_eq!(headline.server_cpu_us_per_msg, Measured::Value(1000.0));
        let counting = metrics.counting.expect("counting");
        assert_eq!(counting.cpu_seconds, vec![0, 1]);
        assert!(counting.counted_seconds.is_empty());
    }

    #[test]
    fn always_measures_everything_over_the_whole_window_and_says_cpu_had_tracepoints() {
        let mut s = sampler(Counting::Always);
        s.start = Some(snapshot(0, Some(0), Some(0)));
        s.end = Some(snapshot(3_000_000_000, Some(3000), Some(0)));
        let (metrics, headline) = s.finish(&report(&[1000, 1000, 1000], None));
        assert_eq!(headline.server_cpu_us_per_msg, Measured::Value(1000.0));
        assert_eq!(headline.syscalls_per_msg, Measured::Value(1.0));
        let counting = metrics.counting.expect("counting");
        assert!(counting.cpu_with_tracepoints);
        assert_eq!(counting.cpu_seconds, vec![0, 1, 2]);
        assert_eq!(counting.counted_seconds, vec![0, 1, 2]);
        assert!(counting.counted_cpu_us_per_msg.value().is_none());
    }

    #[test]
    fn a_missing_mark_count_nulls_the_counted_figures() {
        let mut s = sampler(Counting::Split);
        s.start = Some(snapshot(0, None, None));
        s.cut = Some(snapshot(2_000_000_000, None, None));
        s.attached = Some((snapshot(2_000_000_000, Some(0), Some(0)), Duration::ZERO));
        s.end = Some(snapshot(3_000_000_000, Some(10), Some(0)));
        let (_, headline) = s.finish(&report(&[1000, 1000, 1000], None));
        assert!(headline.syscalls_per_msg.value().is_none());
        assert_eq!(headline.server_cpu_us_per_msg, Measured::Value(1000.0));
    }

    #[test]
    fn counted_seconds_are_the_last_third_and_a_one_second_window_is_not_cut() {
        assert_eq!(Counting::Split.counted_seconds(1), 1);
        assert_eq!(Counting::Split.counted_seconds(2), 1);
        assert_eq!(Counting::Split.counted_seconds(3), 1);
        assert_eq!(Counting::Split.counted_seconds(9), 3);
        assert_eq!(Counting::Always.counted_seconds(3), 3);
        assert_eq!(Counting::Off.counted_seconds(3), 0);
    }
}
