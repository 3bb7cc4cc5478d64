//! Runtime configuration: the submission policy under test and the ring's size.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

/// When the runtime hands queued submissions to the kernel.
///
/// This is the experiment fanbench exists for: how many sends one `io_uring_enter` carries,
/// and what that costs in CPU and latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubmitPolicy {
    /// Submit at the end of every tick that queued anything; block in `submit_and_wait` when
    /// no task is runnable. One enter per busy tick, whatever the batch size.
    Eager,
    /// Keep queueing while tasks are runnable and flush only once `batch_threshold` SQEs are
    /// queued (or the run queue drains, or the SQEs have waited `MAX_DEFER_TICKS` ticks);
    /// when idle, busy-poll the ring with non-blocking enters for `busy_poll` after the last
    /// completion, then park in `submit_and_wait`.
    Adaptive,
    /// A kernel thread (`IORING_SETUP_SQPOLL`) consumes the submission queue; the runtime
    /// only enters the kernel to wake that thread or to wait for completions when idle.
    Sqpoll,
}

impl SubmitPolicy {
    /// Every policy, in the order the CLI lists them.
    pub const ALL: [SubmitPolicy; 3] = [
        SubmitPolicy::Eager,
        SubmitPolicy::Adaptive,
        SubmitPolicy::Sqpoll,
    ];

    /// The name used on the command line and in results.
    pub fn as_str(self) -> &'static str {
        match self {
            SubmitPolicy::Eager => "eager",
            SubmitPolicy::Adaptive => "adaptive",
            SubmitPolicy::Sqpoll => "sqpoll",
        }
    }
}

impl fmt::Display for SubmitPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A submission policy name that is not one of `eager`, `adaptive`, `sqpoll`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPolicy(pub String);

impl fmt::Display for UnknownPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown io_uring submission policy {:?} (expected eager, adaptive or sqpoll)",
            self.0
        )
    }
}

impl std::error::Error for UnknownPolicy {}

impl FromStr for SubmitPolicy {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SubmitPolicy::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownPolicy(s.to_owned()))
    }
}

/// Configuration of one [`UringRuntime`](crate::UringRuntime).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UringConfig {
    /// When queued SQEs are handed to the kernel.
    pub policy: SubmitPolicy,
    /// Submission queue size (rounded up to a power of two by the kernel).
    pub ring_entries: u32,
    /// Completion queue size; `0` lets the kernel pick (twice `ring_entries`).
    pub cq_entries: u32,
    /// Adaptive policy: flush once this many SQEs are queued even if tasks are still runnable.
    pub batch_threshold: u32,
    /// Adaptive policy: how long to keep busy-polling the ring after the last completion
    /// before parking in `submit_and_wait`.
    pub busy_poll: Duration,
    /// Task polls per tick before the runtime goes back to the ring, so completions are
    /// never starved by a busy run queue.
    pub tick_budget: u32,
    /// SQPOLL policy: idle time in milliseconds before the kernel submission thread sleeps.
    pub sqpoll_idle_ms: u32,
    /// SQPOLL policy: the CPU the kernel submission thread is bound to (`sq_thread_cpu`).
    /// `None`: the kernel's choice (the thread inherits the creating thread's CPU mask).
    pub sqpoll_cpu: Option<u32>,
    /// Ask for `SINGLE_ISSUER`, `DEFER_TASKRUN` and `COOP_TASKRUN` (each dropped again if the
    /// kernel refuses it). Off only to measure what the flags are worth.
    pub setup_flags: bool,
}

impl Default for UringConfig {
    fn default() -> Self {
        UringConfig {
            policy: DEFAULT_POLICY,
            ring_entries: 1024,
            cq_entries: 0,
            batch_threshold: 32,
            busy_poll: Duration::from_micros(50),
            tick_budget: 256,
            sqpoll_idle_ms: 100,
            sqpoll_cpu: None,
            setup_flags: true,
        }
    }
}

/// The default submission policy: `eager`, chosen by measurement. With fan-out, one publish
/// already queues one send per subscriber before the run queue drains, so eager's
/// one-enter-per-tick batches as well as adaptive's threshold, and adaptive spends CPU
/// busy-polling between publishes for no fewer enters; SQPOLL pays for its kernel thread on a
/// small machine. Figures: `runtimes/uring/PERF.md`, "The default submission policy".
pub const DEFAULT_POLICY: SubmitPolicy = SubmitPolicy::Eager;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_round_trip_through_from_str_and_display() {
        for p in SubmitPolicy::ALL {
            assert_eq!(p.to_string().parse::<SubmitPolicy>(), Ok(p));
        }
        assert_eq!(
            "ADAPTIVE".parse::<SubmitPolicy>(),
            Ok(SubmitPolicy::Adaptive)
        );
    }

    #[test]
    fn unknown_policy_is_a_clear_error() {
        let err = "eagre".parse::<SubmitPolicy>().unwrap_err();
        assert!(err.to_string().contains("eagre"));
        assert!(err.to_string().contains("adaptive"));
    }
}
