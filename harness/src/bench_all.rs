//! `fanbench bench-all`: every available runtime row x every default workload, one results
//! file (`<out>/<run-id>/results.json`), a progress bar with the time left, then the charts.
//!
//! # Time budget (2-core machine)
//!
//! Sized for 10 rows (9 runtimes + nats-server) x 6 workloads = 60 pairs, plus the
//! latency-vs-load sweep of `fanout-100` on every row (`sweep.rs`). Each pair starts a fresh
//! server and stops it (~0.9 s), each repetition connects up to 1000 subscribers and drains
//! in-flight messages after its window (~0.4 s; the drain ends as soon as every message
//! arrived). The calibration of these overheads and the measured suite times are in
//! `harness/PERF.md`.
//!
//! - default: 3 reps x (1 s + 3 s + 0.4 s) + 0.9 s = 14.1 s per pair, x 60 = 846 s; sweep at
//!   most 9 climbing steps (25,000 to 6,400,000 deliveries/s: far enough that the fastest
//!   row's own core saturates) and one refinement step between the last sustained and the
//!   first unsustained load, 10 x (0.9 s + 0.5 s + 2 s + 0.4 s) = 38 s per row, x 10 = 380 s; total
//!   1226 s = 20.4 min, plus ~3.8 s for each sweep step measured twice after a pacer hiccup
//!   (`sweep::only_the_pacer_fell_behind`).
//! - `--quick`: 1 rep x (0.25 s + 1 s + 0.4 s) + 0.9 s = 2.55 s per pair, x 60 = 153 s; sweep at
//!   most 3 steps x (0.9 s + 0.25 s + 1 s + 0.4 s) = 7.65 s per row, x 10 = 76.5 s; total
//!   230 s = 3.8 min (< 4 min). The sweep usually stops early (p99 over its SLO).
//! - before either, the load generator's calibration (`calibrate::Settings::bench_all`,
//!   estimated by `Settings::estimate_seconds`): 4 climbs of at most 9 steps x (1 s + 0.9 s)
//!   = 68 s (`--quick`: at most 5 steps x (0.5 s + 0.9 s), 28 s); `--skip-calibration` drops
//!   it, and the results then carry no headroom.
//! - last, the micro-cost suite (`crate::micro`, `fanbench_micro::Settings::bench_all`): 58 s
//!   estimated for eight rows; not run with `--quick`; `--skip-micro` drops it.
//!
//! The durations live in the workload files (default), in [`QUICK`] (quick) and in
//! `sweep::Settings` (`step_timing`, `bench_all`); the estimate printed before the run uses the
//! same arithmetic ([`estimate_seconds`], [`sweep_estimate_seconds`]), and the unit tests below
//! fail when a change breaks the budget.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};

use crate::batching;
use crate::calibrate;
use crate::interrupt::{self, Interrupted};
use crate::measure::{instrument, measure, MeasureError, Placement, PlacementArgs, Row, QUICK};
use crate::policies;
use crate::results::provenance::new_results_file;
use crate::results::schema::{Failed, ResultsFile, Scenario, ScenarioResult, Skipped};
use crate::results::terminal::print_result;
use crate::results::write::write_results;
use crate::resume;
use crate::server_proc::ServerDied;
use crate::sweep::Settings as SweepSettings;
use crate::sysinfo;
use crate::workload::{self, WorkloadOverrides};

/// The workloads bench-all runs by default, in order.
pub const DEFAULT_WORKLOADS: &[&str] = &[
    "seed-5x5",
    "seed-5x25",
    "fanout-100",
    "fanout-1000",
    "video-1mb",
    "slow-subscriber",
];

/// Estimated fixed cost of one repetition beyond warm-up + window (connect, drain).
const REP_OVERHEAD_S: f64 = 0.4;
/// Estimated cost of starting and stopping one server.
const SERVER_OVERHEAD_S: f64 = 0.9;

/// Options of `fanbench bench-all`.
#[derive(Debug, clap::Args)]
pub struct BenchAllArgs {
    /// Smoke test: 0.25 s warm-up, 1 s window, 1 repetition per workload (< 4 min on 2 cores).
    #[arg(long)]
    pub quick: bool,
    /// Only these runtime rows, comma-separated (default: every row of `fanbench runtimes`,
    /// then nats-server).
    #[arg(long, value_delimiter = ',')]
    pub runtimes: Option<Vec<String>>,
    /// Only these workloads (names or TOML files), comma-separated (default: the six shipped).
    #[arg(long, value_delimiter = ',')]
    pub workloads: Option<Vec<String>>,
    /// Results directory: the run writes DIR/<run-id>/results.json (and logs/, charts).
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    /// Do not measure the load generator's ceiling first (results then carry no headroom).
    #[arg(long)]
    pub skip_calibration: bool,
    /// Do not run the batching comparison (fanout-100 on every row at each batching window).
    #[arg(long)]
    pub skip_batching: bool,
    /// Do not run the uring submission-policy comparison (eager, adaptive, SQPOLL).
    #[arg(long)]
    pub skip_policies: bool,
    /// Do not run the micro-cost suite (`fanbench micro`, about 1 min; never run with --quick).
    #[arg(long)]
    pub skip_micro: bool,
    #[command(flatten)]
    pub overrides: WorkloadOverrides,
    #[command(flatten)]
    pub placement: PlacementArgs,
    /// Continue the interrupted run in DIR (a results/<run-id> directory): every other option
    /// is taken from that run's command line, and the (workload, row) pairs it measured are
    /// not measured again.
    #[arg(long, value_name = "DIR", exclusive = true)]
    pub resume: Option<PathBuf>,
}

/// Seconds one (scenario, row) pair is expected to take.
pub fn pair_estimate_seconds(s: &Scenario) -> f64 {
    SERVER_OVERHEAD_S + f64::from(s.repetitions) * rep_estimate_seconds(s)
}

/// Seconds one repetition of `s` is expected to take.
pub fn rep_estimate_seconds(s: &Scenario) -> f64 {
    s.warmup_s + s.duration_s + REP_OVERHEAD_S
}

/// Seconds the (scenario, row) pairs are expected to take.
pub fn estimate_seconds(rows: usize, scenarios: &[Scenario]) -> f64 {
    rows as f64 * scenarios.iter().map(pair_estimate_seconds).sum::<f64>()
}

/// Seconds bench-all's sweep can take at most: every step of every row, one server each.
pub fn sweep_estimate_seconds(rows: usize, swept: Option<&Scenario>, quick: bool) -> f64 {
    let Some(scenario) = swept else {
        return 0.0;
    };
    let mut step = scenario.clone();
    SweepSettings::step_timing(&mut step, quick);
    let most_steps = SweepSettings::bench_all(scenario, quick).most_steps();
    rows as f64 * f64::from(most_steps) * pair_estimate_seconds(&step)
}

/// Seconds the batching comparison is expected to take (the suite's own window is reused).
/// The loads of the submission-policy comparison: `fanout-100` (when in the suite) and the
/// heavy workload, when the uring row is among the rows and `--skip-policies` is not given.
fn policy_loads(
    args: &BenchAllArgs,
    fanout: Option<&Scenario>,
    available: &[Row],
) -> anyhow::Result<Option<Vec<Scenario>>> {
    let Some(fanout) = fanout else {
        return Ok(None);
    };
    if args.skip_policies || !available.iter().any(Row::is_uring) {
        return Ok(None);
    }
    let dir = workload::workloads_dir(args.overrides.workloads_dir.as_deref());
    let heavy = workload::load(policies::HEAVY_WORKLOAD, &dir)
        .and_then(|s| args.overrides.apply(s))
        .with_context(|| {
            format!(
                "the policy comparison's workload {}",
                policies::HEAVY_WORKLOAD
            )
        })?;
    Ok(Some(policies::loads(fanout, Some(&heavy), args.quick)))
}

/// Seconds the batching comparison can take (at most: a point the suite already measured is
/// reused instead).
pub fn batching_estimate_seconds(rows: &[Row], fanout: Option<&Scenario>, quick: bool) -> f64 {
    let Some(fanout) = fanout else {
        return 0.0;
    };
    batching::plan(rows, fanout, quick, &[])
        .iter()
        // In --quick the suite measured its own window with the same timing: reused.
        .filter(|(_, w)| !(quick && fanout.coalesce_us == Some(*w)))
        .map(|(_, w)| pair_estimate_seconds(&batching::at_window(fanout, *w, quick)))
        .sum()
}

/// The workloads to run: loaded, `--quick` applied, then the command-line overrides.
pub fn scenarios(args: &BenchAllArgs) -> anyhow::Result<Vec<Scenario>> {
    let dir = workload::workloads_dir(args.overrides.workloads_dir.as_deref());
    let names: Vec<String> = match &args.workloads {
        Some(names) => names.clone(),
        None => DEFAULT_WORKLOADS.iter().map(|s| s.to_string()).collect(),
    };
    if names.is_empty() {
        bail!("--workloads is empty");
    }
    names
        .iter()
        .map(|name| {
            let mut s = workload::load(name, &dir)?;
            if args.quick {
                QUICK.apply(&mut s);
            }
            args.overrides.apply(s)
        })
        .collect()
}

fn rows(args: &BenchAllArgs) -> anyhow::Result<Vec<Row>> {
    match &args.runtimes {
        Some(names) if names.is_empty() => bail!("--runtimes is empty"),
        Some(names) => names.iter().map(|n| Row::named(n.trim())).collect(),
        None => Ok(Row::all()),
    }
}

/// `fanbench bench-all`. Interrupted (SIGINT, SIGTERM, SIGHUP), it writes what it measured,
/// flagged partial, renders the report and returns [`Interrupted`].
pub fn run(args: BenchAllArgs) -> anyhow::Result<()> {
    interrupt::install()?;
    let (args, previous) = match &args.resume {
        Some(dir) => {
            let (args, file) = resume::load(dir)?;
            (args, Some((dir.clone(), file)))
        }
        None => (args, None),
    };
    let scenarios = scenarios(&args)?;
    let rows = rows(&args)?;
    let placement = args.placement.resolve()?;
    let started = SystemTime::now();

    let infos: Vec<_> = rows.iter().map(|r| r.info(&placement)).collect();
    let (file, run_dir) = match previous {
        Some((dir, file)) => (resume::reopen(file, infos), dir),
        None => {
            let file = new_results_file(started, infos);
            let dir = args.out.join(&file.run_id);
            (file, dir)
        }
    };
    let mut suite = Suite::new(file, run_dir, &scenarios, &placement);
    let available = suite.skip_unavailable_rows(&rows);
    let swept = scenarios
        .iter()
        .find(|s| s.name == crate::sweep::BENCH_ALL_WORKLOAD);
    let sweep_s = sweep_estimate_seconds(available.len(), swept, args.quick);
    let batched = swept.filter(|_| !args.skip_batching);
    let batching_s = batching_estimate_seconds(&available, batched, args.quick);
    let policy_loads = policy_loads(&args, swept, &available)?;
    let policies_s = policy_loads.as_ref().map_or(0.0, |loads| {
        policies::planned_pairs(loads, &placement) as f64
            * loads.iter().map(pair_estimate_seconds).sum::<f64>()
            / loads.len().max(1) as f64
    });
    let calibrated = suite.file.calibration.clone();
    if let Some(done) = calibrated {
        instrument::set_calibration(done);
    }
    let calibration = (!args.skip_calibration && suite.file.calibration.is_none())
        .then(|| calibrate::Settings::bench_all(args.quick));
    let calibration_s = calibration.as_ref().map_or(0.0, |c| c.estimate_seconds());
    // A resumed run has pairs measured already.
    let measured = suite.file.results.len() as f64;
    let pairs_s = estimate_seconds(available.len(), &scenarios)
        - measured * scenarios.iter().map(pair_estimate_seconds).sum::<f64>()
            / scenarios.len() as f64;
    let micro = (!args.skip_micro)
        .then(|| crate::micro::BenchAllMicro::new(&available, args.quick))
        .flatten();
    let micro_s = micro.as_ref().map_or(0.0, |m| m.estimate_seconds());
    let total_s = pairs_s.max(0.0) + sweep_s + batching_s + policies_s + calibration_s + micro_s;
    eprintln!(
        "fanbench: {} rows x {} workloads, estimated {:.0} s; server CPUs {:?}, load generator \
         CPUs {:?}; writing {}",
        available.len(),
        scenarios.len(),
        total_s,
        placement.server_cpus,
        placement.client_cpus,
        suite.results_path.display()
    );
    let bar = progress_bar(total_s)?;
    if let Some(settings) = &calibration {
        suite.calibrate(settings, &bar);
        bar.inc((calibration_s * 1000.0) as u64);
    }
    // Workload by workload, every row on one before the next: the rows a result is compared
    // with are measured minutes apart at most, so a slow spell of a shared host falls on
    // every row of a workload instead of on one row's whole suite.
    let mut measuring = available.clone();
    for scenario_index in 0..scenarios.len() {
        if interrupt::received().is_some() {
            break;
        }
        suite.measure_workload(scenario_index, &mut measuring, &bar)?;
    }
    let sweep_path = suite.run_dir.join(fanbench_plots::SWEEP_FILE);
    let sweep_done = resume::sweep_is_complete(&sweep_path, available.len());
    if let (Some(fanout), None, false) = (swept, interrupt::received(), sweep_done) {
        bar.set_message(format!("sweep of {}", fanout.name));
        suite.sweep(&available, fanout, args.quick);
    }
    bar.inc((sweep_s * 1000.0) as u64);
    if let (Some(fanout), None) = (batched, interrupt::received()) {
        bar.set_message(format!("batching comparison on {}", fanout.name));
        suite.batching(&available, fanout, args.quick, &bar)?;
    }
    if let (Some(loads), None) = (&policy_loads, interrupt::received()) {
        bar.set_message("uring submission policies");
        suite.policies(loads, &bar)?;
    }
    bar.finish_and_clear();
    if let Some(by) = interrupt::received() {
        return suite.finish_interrupted(by, &available, started, total_s);
    }
    if let Some(micro) = &micro {
        micro.run(suite.placement, &suite.run_dir);
    }
    suite.file.finished_at = Some(sysinfo::rfc3339(SystemTime::now()));
    suite.file.partial = false;
    write_results(&suite.results_path, &suite.file)?;
    suite.print_totals(started, total_s);
    render_report(&suite.results_path)?;
    if suite.file.results.is_empty() {
        bail!("no (workload, runtime) pair could be measured");
    }
    Ok(())
}

/// Progress counted in estimated milliseconds of work, so the ETA scales the remaining
/// estimate by how fast the work actually went.
fn progress_bar(total_s: f64) -> anyhow::Result<ProgressBar> {
    let bar = ProgressBar::new((total_s * 1000.0) as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% ETA {eta_precise} {msg}",
        )
        .context("progress bar template")?,
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    Ok(bar)
}

/// One bench-all run in progress: the results file it fills and where it goes.
/// The comparisons bench-all runs beside the suite.
#[derive(Clone, Copy)]
enum Comparison {
    Batching,
    Policies,
}

impl Comparison {
    fn name(self) -> &'static str {
        match self {
            Comparison::Batching => "batching",
            Comparison::Policies => "policies",
        }
    }
}

struct Suite<'a> {
    file: ResultsFile,
    run_dir: PathBuf,
    results_path: PathBuf,
    log_dir: PathBuf,
    scenarios: &'a [Scenario],
    placement: &'a Placement,
}

impl<'a> Suite<'a> {
    fn new(
        file: ResultsFile,
        run_dir: PathBuf,
        scenarios: &'a [Scenario],
        placement: &'a Placement,
    ) -> Suite<'a> {
        Suite {
            results_path: run_dir.join("results.json"),
            log_dir: run_dir.join("logs"),
            run_dir,
            file,
            scenarios,
            placement,
        }
    }

    /// Measures the load generator's ceiling before any row, so every result carries its
    /// headroom. A calibration that fails is reported and the suite goes on without it.
    fn calibrate(&mut self, settings: &calibrate::Settings, bar: &ProgressBar) {
        bar.set_message("calibrating the load generator");
        // A hidden bar (no terminal) drops println: the lines then go to stderr directly.
        let say = |line: String| {
            if bar.is_hidden() {
                eprintln!("{line}");
            } else {
                bar.println(line);
            }
        };
        match calibrate::calibrate(settings, self.placement, &mut |line| say(line)) {
            Ok(calibration) => {
                for c in &calibration.ceilings {
                    say(format!(
                        "fanbench: load generator ceiling at {} B, {} frames/send: {} ({})",
                        c.payload_bytes,
                        c.frames_per_send,
                        c.ceiling_deliveries_per_s
                            .map_or("none".to_string(), |v| format!("{v:.0} deliveries/s")),
                        c.ended_by
                    ));
                }
                instrument::set_calibration(calibration.clone());
                self.file.calibration = Some(calibration);
            }
            Err(e) => say(format!(
                "fanbench: calibration failed, results will carry no headroom: {e:#}"
            )),
        }
    }

    /// The rows that can run here; the others are recorded as skipped, with the reason.
    fn skip_unavailable_rows(&mut self, rows: &[Row]) -> Vec<Row> {
        let mut available = Vec::new();
        for (row, info) in rows.iter().zip(&self.file.runtimes) {
            match &info.unavailable_reason {
                Some(reason) => {
                    eprintln!("fanbench: skipping row {}: {reason}", info.name);
                    self.file.skipped.push(Skipped {
                        scenario: None,
                        runtime: info.name.clone(),
                        reason: reason.clone(),
                    });
                }
                None => available.push(*row),
            }
        }
        available
    }

    /// One workload on every row of `rows`, writing the results after each pair so an
    /// interrupted suite keeps what it measured. A row whose server does not start is marked
    /// unavailable, its remaining workloads skipped, and it leaves `rows`.
    fn measure_workload(
        &mut self,
        scenario_index: usize,
        rows: &mut Vec<Row>,
        bar: &ProgressBar,
    ) -> anyhow::Result<()> {
        let scenarios = self.scenarios;
        let scenario = &scenarios[scenario_index];
        for row in rows.clone() {
            if self.is_measured(scenario, row) {
                bar.inc((pair_estimate_seconds(scenario) * 1000.0) as u64);
                continue;
            }
            if interrupt::received().is_some() {
                break;
            }
            bar.set_message(format!("{} on {}", scenario.name, row.name()));
            let rep_ms = (rep_estimate_seconds(scenario) * 1000.0) as u64;
            let mut reps_done = 0u64;
            let outcome = measure(row, scenario, self.placement, &self.log_dir, &mut |_| {
                reps_done += 1;
                bar.inc(rep_ms)
            });
            // Whatever did not run of this pair counts as done for the progress estimate.
            let reps_left = u64::from(scenario.repetitions).saturating_sub(reps_done);
            bar.inc((SERVER_OVERHEAD_S * 1000.0) as u64 + reps_left * rep_ms);
            let stop = match outcome {
                Ok(result) => {
                    bar.suspend(|| print_result(&result));
                    self.file.results.push(result);
                    false
                }
                Err(MeasureError::Start(err)) => {
                    self.mark_unavailable(row, scenario_index, &err, bar);
                    rows.retain(|r| r.name() != row.name());
                    false
                }
                Err(MeasureError::Run(err)) => {
                    let failed = failure(scenario, row, &err, reps_done);
                    say(
                        bar,
                        format!(
                            "fanbench: {} on {} failed: {}",
                            scenario.name,
                            row.name(),
                            failed.reason
                        ),
                    );
                    self.file.failed.push(failed);
                    false
                }
                // Not recorded: the pair is measured whole on `--resume`.
                Err(MeasureError::Interrupted { .. }) => true,
            };
            write_results(&self.results_path, &self.file)?;
            if stop {
                break;
            }
        }
        Ok(())
    }

    /// Whether this run already has a result for the pair (a resumed run).
    fn is_measured(&self, scenario: &Scenario, row: Row) -> bool {
        self.file
            .results
            .iter()
            .any(|r| r.scenario == scenario.name && r.runtime == row.name())
    }

    /// Told to stop: every pair not measured is listed as skipped with the signal, the file
    /// is written flagged partial, with the report, and the error says how it was stopped.
    fn finish_interrupted(
        &mut self,
        by: Interrupted,
        available: &[Row],
        started: SystemTime,
        total_s: f64,
    ) -> anyhow::Result<()> {
        let reason = format!(
            "not measured: the run was {by}; `fanbench bench-all --resume DIR` measures it"
        );
        let pairs = available.iter().flat_map(|row| {
            self.scenarios
                .iter()
                .map(move |scenario| (scenario.name.as_str(), row.name()))
        });
        self.file.mark_interrupted(pairs, &reason, by.signal_name());
        self.file.finished_at = Some(sysinfo::rfc3339(SystemTime::now()));
        write_results(&self.results_path, &self.file)?;
        self.print_totals(started, total_s);
        if self.file.results.is_empty() {
            eprintln!(
                "fanbench: nothing was measured before the {}, so there is no report",
                by.signal_name()
            );
        } else if let Err(e) = render_report(&self.results_path) {
            eprintln!("fanbench: {e:#}");
        }
        eprintln!(
            "fanbench: {by}: partial results in {}; continue with `fanbench bench-all --resume {}`",
            self.results_path.display(),
            self.run_dir.display()
        );
        Err(by.into())
    }

    /// The row cannot run here: record it as unavailable and skip its workloads from
    /// `scenario_index` on.
    fn mark_unavailable(
        &mut self,
        row: Row,
        scenario_index: usize,
        err: &anyhow::Error,
        bar: &ProgressBar,
    ) {
        let reason = format!("server did not start: {err:#}");
        say(
            bar,
            format!("fanbench: row {} unavailable: {reason}", row.name()),
        );
        if let Some(info) = self.file.runtimes.iter_mut().find(|i| i.name == row.name()) {
            info.available = false;
            info.unavailable_reason = Some(reason.clone());
        }
        for skipped in &self.scenarios[scenario_index..] {
            self.file.skipped.push(Skipped {
                scenario: Some(skipped.name.clone()),
                runtime: row.name().to_string(),
                reason: reason.clone(),
            });
        }
        let rest: f64 = self.scenarios[scenario_index + 1..]
            .iter()
            .map(pair_estimate_seconds)
            .sum();
        bar.inc((rest * 1000.0) as u64);
    }

    /// What was measured, what was skipped and why, and how long it took.
    fn print_totals(&self, started: SystemTime, total_s: f64) {
        let elapsed = SystemTime::now()
            .duration_since(started)
            .unwrap_or_default()
            .as_secs_f64();
        eprintln!(
            "fanbench: {} results ({} invalid), {} failed, {} skipped, in {elapsed:.0} s (estimated {total_s:.0} s): {}",
            self.file.results.len(),
            self.file.results.iter().filter(|r| !r.valid).count(),
            self.file.failed.len(),
            self.file.skipped.len(),
            self.results_path.display()
        );
        for failed in &self.file.failed {
            eprintln!(
                "fanbench:   failed {} / {}: {}",
                failed.scenario,
                failed.runtime,
                failed.server_exit.as_deref().unwrap_or(&failed.reason)
            );
        }
        for skipped in &self.file.skipped {
            eprintln!(
                "fanbench:   skipped {} / {}: {}",
                skipped.scenario.as_deref().unwrap_or("(all workloads)"),
                skipped.runtime,
                skipped.reason
            );
        }
    }

    /// The batching comparison of `fanout` on every fanbench row still available, into the
    /// results file's `batching` array, written after each point.
    fn batching(
        &mut self,
        available: &[Row],
        fanout: &Scenario,
        quick: bool,
        bar: &ProgressBar,
    ) -> anyhow::Result<()> {
        let rows: Vec<Row> = available
            .iter()
            .filter(|r| {
                self.file
                    .runtimes
                    .iter()
                    .any(|i| i.name == r.name() && i.available)
            })
            .copied()
            .collect();
        // A resumed run reuses the points it measured before (they come back as `Reused`).
        let previous = std::mem::take(&mut self.file.batching);
        let measured: Vec<_> = self.file.results.iter().cloned().chain(previous).collect();
        let pair_ms = |w: u64| {
            (pair_estimate_seconds(&batching::at_window(fanout, w, quick)) * 1000.0) as u64
        };
        let mut written = Ok(());
        let (placement, log_dir) = (self.placement, self.log_dir.clone());
        batching::run(
            &rows,
            fanout,
            placement,
            &log_dir,
            quick,
            &measured,
            &mut |point| {
                let point = match point {
                    batching::Point::Reused(r) => {
                        self.file.batching.push(r);
                        None
                    }
                    batching::Point::Measured(r) => {
                        let ms = pair_ms(r.scenario_config.coalesce_us.unwrap_or(0));
                        Some((Ok(r), ms))
                    }
                    batching::Point::Failed(skipped) => Some((Err(skipped), pair_ms(0))),
                };
                if let Some((point, ms)) = point {
                    self.file_point(Comparison::Batching, point, ms, bar);
                }
                if written.is_ok() {
                    written = write_results(&self.results_path, &self.file);
                }
            },
        );
        written
    }

    /// The uring submission-policy comparison, into the results file's `policies` array,
    /// written after each point.
    fn policies(&mut self, loads: &[Scenario], bar: &ProgressBar) -> anyhow::Result<()> {
        let pair_ms = (loads.iter().map(pair_estimate_seconds).sum::<f64>()
            / loads.len().max(1) as f64
            * 1000.0) as u64;
        let mut written = Ok(());
        let (placement, log_dir) = (self.placement, self.log_dir.clone());
        policies::run(loads, placement, &log_dir, &mut |point| {
            let point = match point {
                policies::Point::Measured(r) => Ok(*r),
                policies::Point::Failed(skipped) => Err(skipped),
            };
            self.file_point(Comparison::Policies, point, pair_ms, bar);
            if written.is_ok() {
                written = write_results(&self.results_path, &self.file);
            }
        });
        written
    }

    /// A comparison's point: a measured result goes into its array of the results file and is
    /// printed; a pair that could not be measured is reported and kept in `skipped`. Either
    /// way the progress bar advances by the pair's estimate.
    fn file_point(
        &mut self,
        comparison: Comparison,
        point: Result<ScenarioResult, Skipped>,
        estimate_ms: u64,
        bar: &ProgressBar,
    ) {
        bar.inc(estimate_ms);
        match point {
            Ok(r) => {
                bar.suspend(|| print_result(&r));
                match comparison {
                    Comparison::Batching => self.file.batching.push(r),
                    Comparison::Policies => self.file.policies.push(r),
                }
            }
            Err(skipped) => {
                bar.println(format!(
                    "fanbench: {}: {} on {} not measured: {}",
                    comparison.name(),
                    skipped.scenario.as_deref().unwrap_or(""),
                    skipped.runtime,
                    skipped.reason
                ));
                self.file.skipped.push(skipped);
            }
        }
    }

    /// The latency-vs-load sweep of `fanout` on every row still available, into the run
    /// directory. A failed sweep is reported, not fatal: the suite's results stand.
    fn sweep(&self, available: &[Row], fanout: &Scenario, quick: bool) {
        let sweep_rows: Vec<Row> = available
            .iter()
            .filter(|r| {
                self.file
                    .runtimes
                    .iter()
                    .any(|i| i.name == r.name() && i.available)
            })
            .copied()
            .collect();
        match crate::sweep::bench_all_sweep(
            &sweep_rows,
            fanout,
            quick,
            self.placement,
            &self.run_dir,
            &self.file,
        ) {
            Ok(path) => eprintln!("fanbench: sweep written to {}", path.display()),
            Err(err) => eprintln!("fanbench: sweep of {} failed: {err:#}", fanout.name),
        }
    }
}

/// A line above the progress bar, or on stderr when the bar is hidden (no terminal), which
/// would drop it.
fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

/// The failure record of a pair whose measurement broke (`reps_done` repetitions completed).
fn failure(scenario: &Scenario, row: Row, err: &anyhow::Error, reps_done: u64) -> Failed {
    let died = err.chain().find_map(|e| e.downcast_ref::<ServerDied>());
    Failed {
        scenario: scenario.name.clone(),
        runtime: row.name().to_string(),
        reason: format!("{err:#}"),
        server_exit: died.map(|d| d.status.to_string()),
        server_exit_code: died.and_then(ServerDied::code),
        server_signal: died.and_then(ServerDied::signal),
        server_log_tail: died.map(|d| d.log_tail.clone()),
        repetitions_completed: u32::try_from(reps_done).unwrap_or(u32::MAX),
    }
}

/// The charts and index.html beside the results (and the sweep, when there is one).
fn render_report(results_path: &Path) -> anyhow::Result<()> {
    let report = crate::report::render(results_path, None).context("generating the report")?;
    eprintln!(
        "fanbench: {} charts and {}",
        report.charts.len(),
        report.index.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(quick: bool, overrides: WorkloadOverrides) -> BenchAllArgs {
        BenchAllArgs {
            quick,
            runtimes: None,
            workloads: None,
            out: PathBuf::from("results"),
            skip_calibration: false,
            skip_batching: false,
            skip_policies: false,
            resume: None,
            skip_micro: false,
            overrides: WorkloadOverrides {
                workloads_dir: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../workloads")),
                ..overrides
            },
            placement: PlacementArgs {
                server_cpus: "0".into(),
                client_cpus: None,
                server_threads: None,
                nats_server_bin: "nats-server".into(),
                uring_policy: None,
                sqpoll_cpu: None,
                server_counters: crate::metrics::Counting::Split,
            },
        }
    }

    /// Ten rows: every fanbench row and nats-server, padded with copies of the last fanbench
    /// row so the budget holds for a row or two more than today's.
    fn ten_rows() -> Vec<Row> {
        let mut rows = Row::all();
        let last = Row::Fanbench(*crate::runtimes::RuntimeRow::ALL.last().expect("rows"));
        while rows.len() < 10 {
            rows.push(last);
        }
        rows
    }

    /// The whole estimate: pairs, sweep, batching comparison and calibration.
    fn suite_estimate(quick: bool) -> f64 {
        let scenarios = scenarios(&args(quick, WorkloadOverrides::default())).expect("load");
        assert_eq!(scenarios.len(), DEFAULT_WORKLOADS.len());
        let swept = scenarios
            .iter()
            .find(|s| s.name == crate::sweep::BENCH_ALL_WORKLOAD);
        let rows = ten_rows();
        let a = args(quick, WorkloadOverrides::default());
        let loads = policy_loads(&a, swept, &rows)
            .expect("policy loads")
            .expect("the uring row is in the suite");
        let placement = Placement {
            server_cpus: vec![0],
            client_cpus: vec![1],
            server_threads: 1,
            nats_server_bin: "nats-server".into(),
            uring_policy: None,
            sqpoll_cpu: None,
            server_counters: crate::metrics::Counting::Split,
        };
        let policies_s = policies::planned_pairs(&loads, &placement) as f64
            * loads.iter().map(pair_estimate_seconds).sum::<f64>()
            / loads.len() as f64;
        estimate_seconds(rows.len(), &scenarios)
            + sweep_estimate_seconds(rows.len(), swept, quick)
            + batching_estimate_seconds(&rows, swept, quick)
            + policies_s
            + calibrate::Settings::bench_all(quick).estimate_seconds()
            + crate::micro::BenchAllMicro::new(&rows, quick).map_or(0.0, |m| m.estimate_seconds())
    }

    #[test]
    fn default_suite_fits_twenty_five_minutes_for_ten_rows() {
        // The estimate is an upper bound (every sweep runs all its steps, every climb two
        // thirds of the way up): measured default runs take about 0.85 of it (harness/PERF.md),
        // which leaves the rest of the 25 minutes for what it does not see (build, report,
        // re-measured sweep steps).
        let estimate = suite_estimate(false);
        assert!(
            estimate < 25.0 * 60.0,
            "default suite estimate {estimate} s"
        );
    }

    #[test]
    fn quick_suite_fits_five_minutes_for_ten_rows() {
        let scenarios = scenarios(&args(true, WorkloadOverrides::default())).expect("load");
        assert!(scenarios
            .iter()
            .all(|s| s.repetitions == 1 && s.duration_s == QUICK.duration_s));
        let estimate = suite_estimate(true);
        assert!(estimate < 5.0 * 60.0, "quick suite estimate {estimate} s");
    }

    #[test]
    fn command_line_overrides_win_over_quick() {
        let overrides = WorkloadOverrides {
            reps: Some(2),
            ..Default::default()
        };
        let scenarios = scenarios(&args(true, overrides)).expect("load");
        assert!(scenarios
            .iter()
            .all(|s| s.repetitions == 2 && s.duration_s == QUICK.duration_s));
    }
}
