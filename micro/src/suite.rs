//! Running the suite through criterion, and reading back what criterion measured.
//!
//! One criterion group per [`Op`], one benchmark per row (its `--runtime` name), plus
//! `tokio-reference` (tokio's own bench code, [`crate::tokio_reference`]) in the four groups
//! tokio defines. Groups run one after another and, inside a group, rows one after another,
//! so the rows of one operation are measured minutes apart at most.
//!
//! Criterion keeps its estimates in its output directory
//! (`<dir>/<group>/<id>/new/estimates.json`); [`collect`] reads them into [`MicroEntry`]s.

use std::cell::RefCell;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use criterion::{BenchmarkGroup, Criterion, Throughput};
use fanbench_rt::Runtime;
use serde::{Deserialize, Serialize};

use crate::lateness::{self, LatenessSummary};
use crate::ops::{self, Op, PinPeer};
use crate::rows::{MakeRuntime, MicroRow, RowVisitor};
use crate::tokio_reference;

/// How long criterion measures each benchmark, and what else runs.
#[derive(Clone)]
pub struct Settings {
    /// Which budget these are: `standard`, `bench-all`, `quick` or `cargo-bench`.
    pub name: &'static str,
    pub warm_up: Duration,
    pub measurement: Duration,
    pub sample_size: usize,
    pub nresamples: usize,
    /// 1 ms sleeps per row for the lateness distribution (0: skip it).
    pub lateness_sleeps: usize,
    /// Run tokio's own bench code beside the trait version.
    pub tokio_reference: bool,
    /// Pins the thread that runs the second runtime of `wake_remote`.
    pub pin_peer: Option<PinPeer>,
    /// Runs on each worker thread of the tokio reference's runtime as it starts.
    pub pin_reference_workers: Option<PinPeer>,
    /// Seconds each benchmark takes beyond warm-up and measurement (building the runtime, the
    /// untimed setup of each sample, iterations longer than the target time, criterion's
    /// analysis), for the estimate; measured on the 2-core machine (harness/PERF.md, "micro").
    pub overhead_s: f64,
}

impl Settings {
    /// `fanbench micro` and bench-all's default run.
    pub fn standard() -> Self {
        Settings {
            name: "standard",
            warm_up: Duration::from_millis(200),
            measurement: Duration::from_millis(600),
            sample_size: 20,
            nresamples: 20_000,
            lateness_sleeps: 300,
            tokio_reference: true,
            pin_peer: None,
            pin_reference_workers: None,
            overhead_s: 0.28,
        }
    }

    /// bench-all's default run: about a minute for every row, half the standard measurement
    /// (the rest of bench-all takes ~22 of its 25 minutes).
    pub fn bench_all() -> Self {
        Settings {
            name: "bench-all",
            warm_up: Duration::from_millis(100),
            measurement: Duration::from_millis(300),
            sample_size: 10,
            nresamples: 10_000,
            lateness_sleeps: 150,
            tokio_reference: true,
            pin_peer: None,
            pin_reference_workers: None,
            overhead_s: 0.17,
        }
    }

    /// `--quick`: criterion's minimum sample count in a tenth of the time.
    pub fn quick() -> Self {
        Settings {
            name: "quick",
            warm_up: Duration::from_millis(50),
            measurement: Duration::from_millis(100),
            sample_size: 10,
            nresamples: 5_000,
            lateness_sleeps: 50,
            tokio_reference: true,
            pin_peer: None,
            pin_reference_workers: None,
            overhead_s: 0.12,
        }
    }

    /// `cargo bench`: criterion's own defaults, for whoever wants the long run.
    pub fn cargo_bench() -> Self {
        Settings {
            name: "cargo-bench",
            warm_up: Duration::from_secs(3),
            measurement: Duration::from_secs(5),
            sample_size: 100,
            nresamples: 100_000,
            lateness_sleeps: 2_000,
            tokio_reference: true,
            pin_peer: None,
            pin_reference_workers: None,
            overhead_s: 0.5,
        }
    }

    /// Apply the timing to a criterion instance.
    pub fn configure(&self, c: Criterion) -> Criterion {
        c.warm_up_time(self.warm_up)
            .measurement_time(self.measurement)
            .sample_size(self.sample_size)
            .nresamples(self.nresamples)
    }

    /// Seconds the suite is expected to take on `rows` (an upper bound for the budget).
    pub fn estimate_seconds(&self, rows: &[MicroRow]) -> f64 {
        let per_bench =
            self.warm_up.as_secs_f64() + self.measurement.as_secs_f64() + self.overhead_s;
        let benches = plan(rows, self.tokio_reference)
            .iter()
            .filter(|(_, id)| matches!(id, Id::Reference) || id.absent_reason().is_none())
            .count();
        let lateness = rows.len() as f64
            * self.lateness_sleeps as f64
            * (lateness::REQUESTED.as_secs_f64() + 0.0002);
        benches as f64 * per_bench + lateness
    }
}

/// A benchmark in a group: a row, or tokio's reference code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Id {
    Row(Op, MicroRow),
    Reference,
}

impl Id {
    fn name(self) -> &'static str {
        match self {
            Id::Row(_, row) => row.name(),
            Id::Reference => tokio_reference::ID,
        }
    }

    fn absent_reason(self) -> Option<&'static str> {
        match self {
            Id::Row(op, row) => op.absent_on(row),
            Id::Reference => None,
        }
    }
}

/// Every (operation, benchmark) pair, in run order.
fn plan(rows: &[MicroRow], tokio_reference: bool) -> Vec<(Op, Id)> {
    let mut out = Vec::new();
    for &op in Op::ALL {
        for &row in rows {
            out.push((op, Id::Row(op, row)));
        }
        if tokio_reference && op.has_tokio_reference() {
            out.push((op, Id::Reference));
        }
    }
    out
}

/// What happened to one benchmark: measured (criterion has its estimates), or not, and why.
#[derive(Debug, Clone)]
pub struct Ran {
    pub op: Op,
    pub id: &'static str,
    pub reference: bool,
    pub absent_reason: Option<String>,
}

/// One timer-lateness distribution, or why there is none.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LatenessEntry {
    pub runtime: String,
    pub lateness: Option<LatenessSummary>,
    pub absent_reason: Option<String>,
}

/// What [`run`] did.
#[derive(Debug, Clone, Default)]
pub struct SuiteRun {
    pub ran: Vec<Ran>,
    pub lateness: Vec<LatenessEntry>,
}

/// Run every operation on every row in `rows` through `c` (already configured with
/// [`Settings::configure`]), then the lateness distributions. Never panics on a row that
/// cannot run an operation: that benchmark is recorded as absent, with the reason.
pub fn run(c: &mut Criterion, rows: &[MicroRow], settings: &Settings) -> SuiteRun {
    let mut out = SuiteRun::default();
    let plan = plan(rows, settings.tokio_reference);
    for &op in Op::ALL {
        let ids: Vec<Id> = plan
            .iter()
            .filter(|(o, _)| *o == op)
            .map(|(_, id)| *id)
            .collect();
        if ids.is_empty() {
            continue;
        }
        let mut group = c.benchmark_group(op.name());
        group.throughput(Throughput::Elements(op.elements()));
        for id in ids {
            let absent_reason = match id {
                Id::Row(_, row) => match id.absent_reason() {
                    Some(reason) => Some(reason.to_string()),
                    None => row.visit(&mut BenchRow {
                        op,
                        group: &mut group,
                        pin_peer: settings.pin_peer.as_ref(),
                    }),
                },
                Id::Reference => {
                    bench_reference(op, &mut group, settings.pin_reference_workers.as_ref())
                }
            };
            if let Some(reason) = &absent_reason {
                eprintln!(
                    "fanbench micro: {}/{}: no result: {reason}",
                    op.name(),
                    id.name()
                );
            }
            out.ran.push(Ran {
                op,
                id: id.name(),
                reference: id == Id::Reference,
                absent_reason,
            });
        }
        group.finish();
    }
    if settings.lateness_sleeps > 0 {
        for &row in rows {
            out.lateness
                .push(row.visit(&mut MeasureLateness(settings.lateness_sleeps)));
        }
    }
    out
}

/// Benchmarks one operation on one row; returns why there is no result, if there is none.
struct BenchRow<'a, 'g> {
    op: Op,
    group: &'a mut BenchmarkGroup<'g, criterion::measurement::WallTime>,
    pin_peer: Option<&'a PinPeer>,
}

impl RowVisitor for BenchRow<'_, '_> {
    type Output = Option<String>;

    fn visit<R: Runtime>(&mut self, row: MicroRow, make: MakeRuntime<R>) -> Option<String> {
        let mut rt = match make() {
            Ok(rt) => rt,
            Err(e) => return Some(format!("the runtime did not start: {e}")),
        };
        // One untimed iteration first: an operation that fails here is absent, with the
        // error, rather than measured.
        if let Err(e) = ops::run(self.op, &mut rt, make, self.pin_peer, 1) {
            return Some(format!("{e:#}"));
        }
        let failure = RefCell::new(None::<String>);
        let (op, pin_peer) = (self.op, self.pin_peer);
        self.group.bench_function(row.name(), |b| {
            b.iter_custom(|iters| match ops::run(op, &mut rt, make, pin_peer, iters) {
                Ok(elapsed) => elapsed,
                Err(e) => {
                    failure.borrow_mut().get_or_insert(format!("{e:#}"));
                    // Criterion needs a duration; the result is discarded below.
                    Duration::from_nanos(iters.max(1))
                }
            })
        });
        failure
            .into_inner()
            .map(|e| format!("failed while measured (estimate discarded): {e}"))
    }
}

fn bench_reference(
    op: Op,
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    pin_workers: Option<&PinPeer>,
) -> Option<String> {
    let mut failure = None;
    group.bench_function(tokio_reference::ID, |b| {
        if let Err(e) = tokio_reference::bench(op, b, pin_workers) {
            failure = Some(format!("{e:#}"));
        }
    });
    failure
}

struct MeasureLateness(usize);

impl RowVisitor for MeasureLateness {
    type Output = LatenessEntry;

    fn visit<R: Runtime>(&mut self, row: MicroRow, make: MakeRuntime<R>) -> LatenessEntry {
        let entry = |lateness, absent_reason| LatenessEntry {
            runtime: row.name().to_string(),
            lateness,
            absent_reason,
        };
        match make() {
            Ok(mut rt) => entry(Some(lateness::measure(&mut rt, self.0)), None),
            Err(e) => entry(None, Some(format!("the runtime did not start: {e}"))),
        }
    }
}

/// One benchmark's figures, per iteration and per element, from criterion's estimates.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Estimate {
    /// Criterion's statistic: `slope` (linear sampling; what criterion prints) or `mean`.
    pub statistic: String,
    pub per_iteration_ns: f64,
    pub per_iteration_ci_ns: [f64; 2],
    pub confidence_level: f64,
    pub elements_per_iteration: u64,
    pub per_element_ns: f64,
    pub per_element_ci_ns: [f64; 2],
    /// Elements per second at the point estimate (criterion's throughput).
    pub elements_per_s: f64,
    /// Samples criterion took.
    pub samples: usize,
}

/// One (operation, runtime) cell of micro.json: an estimate, or null with the reason.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MicroEntry {
    pub operation: String,
    pub runtime: String,
    /// True for `tokio-reference` (tokio's own bench code on plain Tokio), not a row.
    pub reference: bool,
    pub estimate: Option<Estimate>,
    pub absent_reason: Option<String>,
}

/// Criterion's `estimates.json`, the parts read here.
#[derive(Deserialize)]
struct CriterionEstimates {
    mean: CriterionEstimate,
    slope: Option<CriterionEstimate>,
}

#[derive(Deserialize)]
struct CriterionEstimate {
    confidence_interval: CriterionInterval,
    point_estimate: f64,
}

#[derive(Deserialize)]
struct CriterionInterval {
    confidence_level: f64,
    lower_bound: f64,
    upper_bound: f64,
}

/// Criterion's `sample.json`: iteration counts and times per sample.
#[derive(Deserialize)]
struct CriterionSample {
    iters: Vec<f64>,
}

/// Read criterion's estimates under `criterion_dir` for every benchmark of `run`.
pub fn collect(criterion_dir: &Path, run: &SuiteRun) -> Vec<MicroEntry> {
    run.ran
        .iter()
        .map(|ran| {
            let mut entry = MicroEntry {
                operation: ran.op.name().to_string(),
                runtime: ran.id.to_string(),
                reference: ran.reference,
                estimate: None,
                absent_reason: ran.absent_reason.clone(),
            };
            if entry.absent_reason.is_none() {
                let dir = criterion_dir.join(ran.op.name()).join(ran.id).join("new");
                match read_estimate(&dir, ran.op.elements()) {
                    Ok(e) => entry.estimate = Some(e),
                    Err(e) => entry.absent_reason = Some(format!("{e:#}")),
                }
            }
            entry
        })
        .collect()
}

fn read_estimate(dir: &Path, elements: u64) -> anyhow::Result<Estimate> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path)
            .with_context(|| format!("criterion wrote no {}", path.display()))
    };
    let estimates: CriterionEstimates = serde_json::from_str(&read("estimates.json")?)
        .context("criterion's estimates.json is not in the expected format")?;
    let sample: CriterionSample = serde_json::from_str(&read("sample.json")?)
        .context("criterion's sample.json is not in the expected format")?;
    let (statistic, e) = match &estimates.slope {
        Some(slope) => ("slope", slope),
        None => ("mean", &estimates.mean),
    };
    let n = elements.max(1) as f64;
    let ci = &e.confidence_interval;
    Ok(Estimate {
        statistic: statistic.to_string(),
        per_iteration_ns: e.point_estimate,
        per_iteration_ci_ns: [ci.lower_bound, ci.upper_bound],
        confidence_level: ci.confidence_level,
        elements_per_iteration: elements,
        per_element_ns: e.point_estimate / n,
        per_element_ci_ns: [ci.lower_bound / n, ci.upper_bound / n],
        elements_per_s: if e.point_estimate > 0.0 {
            n * 1e9 / e.point_estimate
        } else {
            f64::NAN
        },
        samples: sample.iters.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_has_one_group_per_operation_and_the_reference_only_where_tokio_defines_it() {
        let p = plan(MicroRow::ALL, true);
        let refs: Vec<Op> = p
            .iter()
            .filter(|(_, id)| *id == Id::Reference)
            .map(|(op, _)| *op)
            .collect();
        assert_eq!(
            refs,
            vec![Op::SpawnMany, Op::ChainedSpawn, Op::YieldMany, Op::PingPong]
        );
        assert_eq!(p.len(), Op::ALL.len() * MicroRow::ALL.len() + 4);
    }

    /// The budgets: every row in about 2 minutes (`fanbench micro`), 1 minute (bench-all) and
    /// half a minute (`--quick`).
    #[test]
    fn the_suite_on_every_row_fits_its_budgets() {
        let standard = Settings::standard().estimate_seconds(MicroRow::ALL);
        let bench_all = Settings::bench_all().estimate_seconds(MicroRow::ALL);
        let quick = Settings::quick().estimate_seconds(MicroRow::ALL);
        assert!(standard <= 120.0, "standard estimate {standard} s");
        assert!(bench_all <= 60.0, "bench-all estimate {bench_all} s");
        assert!(quick <= 30.0, "quick estimate {quick} s");
    }

    #[test]
    fn estimates_are_read_per_iteration_and_per_element() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("estimates.json"),
            r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":900.0,"upper_bound":1100.0},"point_estimate":1000.0,"standard_error":1.0},
               "slope":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1800.0,"upper_bound":2200.0},"point_estimate":2000.0,"standard_error":1.0}}"#,
        )
        .expect("write");
        std::fs::write(
            dir.path().join("sample.json"),
            r#"{"sampling_mode":"Linear","iters":[1.0,2.0,3.0],"times":[2000.0,4000.0,6000.0]}"#,
        )
        .expect("write");
        let e = read_estimate(dir.path(), 1000).expect("read");
        assert_eq!(e.statistic, "slope");
        assert_eq!(e.per_iteration_ns, 2000.0);
        assert_eq!(e.per_element_ns, 2.0);
        assert_eq!(e.per_element_ci_ns, [1.8, 2.2]);
        assert_eq!(e.elements_per_s, 5e8);
        assert_eq!(e.samples, 3);
    }

    #[test]
    fn a_missing_estimate_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = read_estimate(dir.path(), 1).unwrap_err();
        assert!(format!("{err:#}").contains("estimates.json"), "{err:#}");
    }
}
