//! Server-side measurements sampled at the load generator's window boundaries: CPU time and
//! peak RSS from /proc, syscalls / SQEs / task-clock from perf counters on every server thread.
//!
//! [`ServerSampler`] is the load generator's [`WindowHooks`]: it reads everything at the instant
//! the measured window begins and ends, and [`ServerSampler::finish`] turns the two readings
//! into the results' server metrics (null with a reason for anything it could not measure).

pub mod perf;
pub mod procfs;

use crate::loadgen::WindowHooks;
use crate::results::schema::{Measured, ServerMetrics, Syscalls};
use perf::{CounterSample, ProcessCounters};
use procfs::ProcCpu;

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
    counters: Result<ProcessCounters, String>,
    start: Option<Snapshot>,
    end: Option<Snapshot>,
    hwm_reset: Result<(), String>,
    peak_rss: Result<u64, String>,
    threads_at_end: Option<u32>,
}

impl ServerSampler {
    /// Opens the perf counters on every thread of `pid` now; call it before the load starts.
    pub fn new(pid: u32) -> ServerSampler {
        let counters = ProcessCounters::open(pid).map_err(|e| format!("{e:#}"));
        ServerSampler {
            pid: Some(pid),
            no_pid_reason: String::new(),
            counters,
            start: None,
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
        ServerSampler {
            pid: None,
            no_pid_reason: reason.clone(),
            counters: Err(reason.clone()),
            start: None,
            end: None,
            hwm_reset: Err(reason.clone()),
            peak_rss: Err(reason),
            threads_at_end: None,
        }
    }

    fn snapshot(&self) -> Snapshot {
        let counters = self.counters.as_ref().ok().map(ProcessCounters::sample);
        let cpu = match self.pid {
            Some(pid) => procfs::read_cpu(pid).map_err(|e| format!("{e:#}")),
            None => Err(self.no_pid_reason.clone()),
        };
        Snapshot { counters, cpu }
    }

    /// The server metrics of the window, and the per-message headline numbers.
    pub fn finish(self, delivered: u64) -> (ServerMetrics, ServerHeadline) {
        let window = match (&self.start, &self.end) {
            (Some(start), Some(end)) => Some((start, end)),
            _ => None,
        };
        let no_window = || "the load generator did not report both window boundaries".to_string();

        // Counter deltas.
        let counter_delta = |pick: &dyn Fn(&CounterSample) -> Option<u64>,
                             open: Result<(), String>|
         -> Result<u64, String> {
            open?;
            let (start, end) = window.ok_or_else(no_window)?;
            let (Some(s), Some(e)) = (&start.counters, &end.counters) else {
                return Err("perf counters unavailable".into());
            };
            match (pick(s), pick(e)) {
                (Some(a), Some(b)) => Ok(b.saturating_sub(a)),
                _ => Err("reading the perf counter failed".into()),
            }
        };
        let open_status = |event: fn(&ProcessCounters) -> Result<(), String>| {
            self.counters.as_ref().map_err(Clone::clone).and_then(event)
        };
        let syscalls_total = counter_delta(
            &|s| s.syscalls,
            open_status(|c| c.syscalls.as_ref().map(|_| ()).map_err(Clone::clone)),
        );
        let sqes = counter_delta(
            &|s| s.sqes,
            open_status(|c| c.sqes.as_ref().map(|_| ()).map_err(Clone::clone)),
        );
        let task_clock_ns = counter_delta(
            &|s| s.task_clock_ns,
            open_status(|c| c.task_clock.as_ref().map(|_| ()).map_err(Clone::clone)),
        );

        let (breakdown, breakdown_null_reason) = self.breakdown(window, &syscalls_total);

        // /proc CPU.
        let ticks = procfs::clock_ticks_per_second() as f64;
        let proc_cpu: Result<(f64, f64), String> =
            window.ok_or_else(no_window).and_then(|(s, e)| {
                let (a, b) = (s.cpu.clone()?, e.cpu.clone()?);
                Ok((
                    b.utime_ticks.saturating_sub(a.utime_ticks) as f64 / ticks,
                    b.stime_ticks.saturating_sub(a.stime_ticks) as f64 / ticks,
                ))
            });

        let per_msg = |value: Result<f64, String>| -> Measured<f64> {
            match value {
                Ok(_) if delivered == 0 => Measured::null(NOTHING_DELIVERED),
                Ok(v) => Measured::Value(v / delivered as f64),
                Err(reason) => Measured::Null(reason),
            }
        };
        let syscalls_per_msg = per_msg(syscalls_total.clone().map(|v| v as f64));
        let sqes_per_msg = per_msg(sqes.clone().map(|v| v as f64));
        let cpu_seconds = match (&task_clock_ns, &proc_cpu) {
            (Ok(ns), _) => Ok(*ns as f64 / 1e9),
            (Err(a), Ok((user, sys))) if (user + sys) * ticks < MIN_PROC_TICKS => Err(format!(
                "task-clock: {a}; /proc stat counted {:.0} clock ticks of {:.0} ms, too few to \
                 measure (at least {MIN_PROC_TICKS} needed)",
                (user + sys) * ticks,
                1000.0 / ticks
            )),
            (Err(_), Ok((user, sys))) => Ok(user + sys),
            (Err(a), Err(b)) => Err(format!("task-clock: {a}; /proc stat: {b}")),
        };
        let server_cpu_us_per_msg = per_msg(cpu_seconds.map(|s| s * 1e6));

        let peak_rss_scope = match (&self.peak_rss, &self.hwm_reset) {
            (Err(_), _) => None,
            (Ok(_), Ok(())) => Some("window".to_string()),
            (Ok(_), Err(_)) => Some("process lifetime".to_string()),
        };
        let method = self.method();

        let metrics = ServerMetrics {
            pid: self.pid,
            cpu_user_s: proc_cpu.as_ref().ok().map(|c| c.0),
            cpu_sys_s: proc_cpu.as_ref().ok().map(|c| c.1),
            cpu_null_reason: proc_cpu.as_ref().err().cloned(),
            cpu_task_clock_s: task_clock_ns.map(|ns| ns as f64 / 1e9).into(),
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
        };
        let headline = ServerHeadline {
            syscalls_per_msg,
            sqes_per_msg,
            server_cpu_us_per_msg,
            server_peak_rss_bytes: self.peak_rss.clone().into(),
        };
        (metrics, headline)
    }

    fn breakdown(
        &self,
        window: Option<(&Snapshot, &Snapshot)>,
        total: &Result<u64, String>,
    ) -> (std::collections::BTreeMap<String, u64>, Option<String>) {
        let mut out = std::collections::BTreeMap::new();
        let counters = match &self.counters {
            Ok(c) => c,
            Err(reason) => return (out, Some(reason.clone())),
        };
        let Some((start, end)) = window else {
            return (out, Some("no measured window".into()));
        };
        let (Some(s), Some(e)) = (&start.counters, &end.counters) else {
            return (out, Some("perf counters unavailable".into()));
        };
        for (name, after) in &e.breakdown {
            if let Some(before) = s.breakdown.get(name) {
                out.insert(name.clone(), after.saturating_sub(*before));
            }
        }
        if out.is_empty() {
            let reasons: Vec<String> = counters
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
        let mut method = String::from(
            "perf_event_open counting tracepoints (raw_syscalls:sys_enter, syscalls:sys_enter_<name>, \
             io_uring:io_uring_submit_req) and task-clock, one event per thread of /proc/<pid>/task \
             with inherit=1 (later threads counted on their creator's event), read at the window \
             boundaries",
        );
        if let Ok(counters) = &self.counters {
            if !counters.breakdown_missing.is_empty() {
                let names: Vec<&str> = counters
                    .breakdown_missing
                    .iter()
                    .map(|(name, _)| name.as_str())
                    .collect();
                method.push_str(&format!(
                    "; not available on this kernel: {}",
                    names.join(", ")
                ));
            }
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
