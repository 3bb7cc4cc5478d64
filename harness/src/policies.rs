//! bench-all's submission-policy comparison: the `uring` row under each of its submission
//! policies (eager, adaptive, SQPOLL sharing the server's CPU, SQPOLL on a CPU of its own) on
//! `fanout-100` and on `fanout-100-5k` at two rates, so the experiment the row exists for is in
//! the results and the report, not only in its PERF.md.
//!
//! Every point is one repetition with the sweep's step timing (`--quick`: the quick timing,
//! `fanout-100-5k` at its own rate only), measured the same way as every other result. An
//! SQPOLL thread bound to a CPU outside the server's set is counted as a server CPU
//! (`runtime_config.cpus_used`, utilisation over both), and its CPU time is the server
//! process's (the kernel thread `iou-sqp-<pid>` is a thread of the server process), so CPU per
//! message includes it. Where the machine has no CPU left over for it (a 2-core machine: one
//! for the server, one for the load generator) the own-CPU variant is skipped with that reason.
//! Results go to the `policies` array of results.json.

use std::path::Path;

use fanbench_uring::SubmitPolicy;

use crate::measure::{measure, MeasureError, Placement, Row};
use crate::results::schema::{Scenario, ScenarioResult, Skipped};
use crate::runtimes::RuntimeRow;
use crate::sweep::Settings as SweepSettings;
use crate::sysinfo;

/// The workload of the heavy points (1 x 100, 128 B).
pub const HEAVY_WORKLOAD: &str = "fanout-100-5k";
/// Rates per publisher of the heavy workload compared (default run).
pub const HEAVY_RATES: &[f64] = &[1000.0, 5000.0];

/// One policy variant of the uring row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Eager,
    Adaptive,
    /// SQPOLL, its kernel thread bound to the server's first CPU (sharing it).
    SqpollShared,
    /// SQPOLL, its kernel thread on a CPU used by neither the server nor the load generator.
    SqpollOwnCpu,
}

impl Variant {
    pub const ALL: [Variant; 4] = [
        Variant::Eager,
        Variant::Adaptive,
        Variant::SqpollShared,
        Variant::SqpollOwnCpu,
    ];

    /// The label in results and charts.
    pub fn label(self) -> &'static str {
        match self {
            Variant::Eager => "eager",
            Variant::Adaptive => "adaptive",
            Variant::SqpollShared => "sqpoll (shared CPU)",
            Variant::SqpollOwnCpu => "sqpoll (own CPU)",
        }
    }

    /// The placement this variant runs with, or why it cannot run here.
    pub fn placement(self, base: &Placement) -> Result<Placement, String> {
        let mut p = base.clone();
        p.sqpoll_cpu = None;
        match self {
            Variant::Eager => p.uring_policy = Some(SubmitPolicy::Eager),
            Variant::Adaptive => p.uring_policy = Some(SubmitPolicy::Adaptive),
            Variant::SqpollShared => {
                p.uring_policy = Some(SubmitPolicy::Sqpoll);
                p.sqpoll_cpu = base.server_cpus.first().copied();
            }
            Variant::SqpollOwnCpu => {
                p.uring_policy = Some(SubmitPolicy::Sqpoll);
                let spare = spare_cpu(base, sysinfo::online_cpus()).ok_or_else(|| {
                    format!(
                        "no CPU of its own for the SQPOLL thread: this machine has {} CPUs, \
                         server CPUs {:?}, load generator CPUs {:?}",
                        sysinfo::online_cpus(),
                        base.server_cpus,
                        base.client_cpus
                    )
                })?;
                p.sqpoll_cpu = Some(spare);
            }
        }
        Ok(p)
    }
}

/// A CPU used by neither the server nor the load generator.
fn spare_cpu(p: &Placement, online: usize) -> Option<usize> {
    (0..online).find(|c| !p.server_cpus.contains(c) && !p.client_cpus.contains(c))
}

/// The loads compared: `fanout` as it is, and the heavy workload at each rate.
pub fn loads(fanout: &Scenario, heavy: Option<&Scenario>, quick: bool) -> Vec<Scenario> {
    let mut out = vec![fanout.clone()];
    if let Some(heavy) = heavy {
        let rates: &[f64] = if quick {
            &[heavy.rate_per_publisher]
        } else {
            HEAVY_RATES
        };
        for &rate in rates {
            out.push(Scenario {
                rate_per_publisher: rate,
                ..heavy.clone()
            });
        }
    }
    for s in &mut out {
        SweepSettings::step_timing(s, quick);
    }
    out
}

/// One point of the comparison, as it comes.
pub enum Point {
    Measured(Box<ScenarioResult>),
    Failed(Skipped),
}

/// Runs every (load, variant) on the uring row, handing each point to `on_point` as soon as it
/// is known.
pub fn run(loads: &[Scenario], base: &Placement, log_dir: &Path, on_point: &mut dyn FnMut(Point)) {
    let row = Row::Fanbench(RuntimeRow::Uring);
    for load in loads {
        for variant in Variant::ALL {
            let skipped = |reason: String| {
                Point::Failed(Skipped {
                    scenario: Some(format!(
                        "{} @ {} msg/s (policy {})",
                        load.name,
                        load.rate_per_publisher,
                        variant.label()
                    )),
                    runtime: row.name().to_string(),
                    reason,
                })
            };
            let placement = match variant.placement(base) {
                Ok(p) => p,
                Err(reason) => {
                    on_point(skipped(reason));
                    continue;
                }
            };
            if crate::interrupt::received().is_some() {
                return;
            }
            let point = match measure(row, load, &placement, log_dir, &mut |_| {}) {
                Ok(result) => Point::Measured(Box::new(result)),
                Err(MeasureError::Start(e)) => skipped(format!("server did not start: {e:#}")),
                Err(MeasureError::Run(e)) => skipped(format!("{e:#}")),
                // Not recorded: `bench-all --resume` measures the comparison again.
                Err(MeasureError::Interrupted { .. }) => return,
            };
            on_point(point);
        }
    }
}

/// Pairs the comparison will try to measure (for the time estimate): variants that cannot run
/// here are skipped at once and cost nothing.
pub fn planned_pairs(loads: &[Scenario], base: &Placement) -> usize {
    let runnable = Variant::ALL
        .iter()
        .filter(|v| v.placement(base).is_ok())
        .count();
    loads.len() * runnable
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placement(server: &[usize], client: &[usize]) -> Placement {
        Placement {
            server_cpus: server.to_vec(),
            client_cpus: client.to_vec(),
            server_threads: 1,
            nats_server_bin: "nats-server".into(),
            uring_policy: None,
            sqpoll_cpu: None,
            server_counters: crate::metrics::Counting::Split,
        }
    }

    #[test]
    fn a_spare_cpu_is_one_neither_side_uses() {
        assert_eq!(spare_cpu(&placement(&[0], &[1]), 2), None);
        assert_eq!(spare_cpu(&placement(&[0], &[1, 2]), 4), Some(3));
    }

    #[test]
    fn shared_sqpoll_binds_the_thread_to_the_server_cpu_and_uses_no_other() {
        let base = placement(&[0], &[1]);
        let p = Variant::SqpollShared.placement(&base).expect("runs");
        assert_eq!(p.uring_policy, Some(SubmitPolicy::Sqpoll));
        assert_eq!(p.sqpoll_cpu, Some(0));
        assert_eq!(p.cpus_used(Row::Fanbench(RuntimeRow::Uring)), vec![0]);
    }

    #[test]
    fn an_sqpoll_thread_on_another_cpu_counts_as_a_server_cpu() {
        let mut p = placement(&[0], &[1]);
        p.uring_policy = Some(SubmitPolicy::Sqpoll);
        p.sqpoll_cpu = Some(2);
        assert_eq!(p.cpus_used(Row::Fanbench(RuntimeRow::Uring)), vec![0, 2]);
        assert_eq!(p.cpus_used(Row::Fanbench(RuntimeRow::Tokio)), vec![0]);
    }

    #[test]
    fn quick_compares_the_heavy_workload_at_its_own_rate_only() {
        let s = Scenario {
            name: "fanout-100-5k".into(),
            description: String::new(),
            publishers: 1,
            subscribers_per_publisher: 100,
            rate_per_publisher: 5000.0,
            payload_bytes: 128,
            duration_s: 3.0,
            warmup_s: 1.0,
            repetitions: 3,
            slow_subscribers: 0,
            slow_read_bytes_per_s: 0,
            coalesce_us: Some(1000),
        };
        assert_eq!(loads(&s, Some(&s), true).len(), 2);
        let full = loads(&s, Some(&s), false);
        assert_eq!(full.len(), 1 + HEAVY_RATES.len());
        assert!(full
            .iter()
            .all(|l| l.repetitions == 1 && l.duration_s == 2.0));
    }
}
