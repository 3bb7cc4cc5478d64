//! `fanbench sweep`: offered load rising step by step until p99 passes an SLO, messages are
//! lost, or the run becomes invalid; the largest offered load that met every condition is the
//! runtime's max sustainable throughput. Writes `sweep.json` (results/README.md, "Sweeps")
//! and draws latency vs offered load, one line per runtime: the headline chart.
//!
//! Each step is one [`measure`] call (a fresh server per step, pinned like every run), so a
//! step is exactly as trustworthy as a `fanbench run`. A step whose only fault is the load
//! generator's pacer falling behind is measured once more before it can end the sweep
//! ([`only_the_pacer_fell_behind`]).
//!
//! The load climbs by `--step-factor` until a step is not sustained; then up to `--refine`
//! steps at the geometric middle of the highest sustained and the lowest unsustained load
//! narrow the limit (with the factor 2, one refinement pins it to within 1.41x instead of 2x:
//! rows whose limits differ by less than a step no longer tie). The steps are kept in order of
//! load, refinements marked.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use serde::Serialize;

use crate::climb::Climb;
use crate::measure::{measure, MeasureError, Placement, PlacementArgs, Row, QUICK};
use crate::results::provenance::new_results_file;
use crate::results::schema::{
    GitInfo, HostInfo, Measured, ResultsFile, Scenario, ScenarioResult, Toolchain, SCHEMA_VERSION,
};
use crate::sysinfo;
use crate::workload::{self, parse_duration, WorkloadOverrides};

/// The workload bench-all sweeps.
pub const BENCH_ALL_WORKLOAD: &str = "fanout-100";

/// The JSON field pair of [`Sweep::max_sustainable`].
mod fields {
    crate::measured_fields! {
        max_sustainable => "max_sustainable_msgs_per_s", "max_sustainable_null_reason",
    }
}

/// Options of `fanbench sweep`.
#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    /// The load generator's calibration to read results against (the file `fanbench
    /// calibrate --out` writes, or a bench-all results.json); without it results carry no
    /// headroom.
    #[arg(long, value_name = "FILE")]
    pub calibration: Option<std::path::PathBuf>,
    /// Runtime rows to sweep (`fanbench runtimes`, or nats-server); repeat the flag or separate
    /// names with commas.
    #[arg(long = "runtime", value_delimiter = ',', required = true)]
    pub runtimes: Vec<String>,
    /// Workload whose rate is swept (name or TOML file).
    #[arg(long, default_value = BENCH_ALL_WORKLOAD)]
    pub workload: String,
    /// p99 latency objective: a step whose p99 exceeds it ends the sweep ("10ms", "500us").
    #[arg(long, default_value = "10ms", value_parser = parse_duration)]
    pub slo: Duration,
    /// First step's rate as a fraction of the workload's rate (--rate overrides the workload's).
    #[arg(long, default_value_t = 0.25)]
    pub start_fraction: f64,
    /// Each step multiplies the rate by this.
    #[arg(long, default_value_t = 2.0)]
    pub step_factor: f64,
    /// Most steps per runtime while the load climbs (refinements not counted).
    #[arg(long, default_value_t = 8)]
    pub max_steps: u32,
    /// Steps between the highest sustained and the lowest unsustained load once a step is not
    /// sustained (each at their geometric middle; 0: none).
    #[arg(long, default_value_t = 1)]
    pub refine: u32,
    /// Short steps: 0.25 s warm-up, 1 s window, at most 4 steps (bench-all --quick: 3).
    #[arg(long)]
    pub quick: bool,
    /// Results directory: the sweep writes DIR/<run-id>/sweep.json and its charts.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    #[command(flatten)]
    pub overrides: WorkloadOverrides,
    #[command(flatten)]
    pub placement: PlacementArgs,
}

/// How the load rises and when a step counts.
#[derive(Debug, Clone)]
pub struct Settings {
    pub slo_p99_us: f64,
    pub start_rate_per_publisher: f64,
    pub step_factor: f64,
    pub max_steps: u32,
    /// Refinement steps after the first unsustained one.
    pub refine: u32,
}

impl Settings {
    /// Step timing for bench-all and `--quick`: short windows, one repetition per step.
    pub fn step_timing(scenario: &mut Scenario, quick: bool) {
        if quick {
            QUICK.apply(scenario);
        } else {
            scenario.warmup_s = scenario.warmup_s.min(0.5);
            scenario.duration_s = scenario.duration_s.min(2.0);
            scenario.repetitions = 1;
        }
    }

    /// bench-all's sweep of `scenario` (the workload's own settings, before step timing).
    /// `--quick` has room for 3 steps: they start at the workload's own rate so they reach the
    /// interesting range (x1, x2, x4); the default suite starts at half of it (25 k
    /// deliveries/s for fanout-100) and climbs 9 steps to 64x the workload's rate, past the
    /// fastest row's limit, then refines once between the last sustained and the first
    /// unsustained load.
    pub fn bench_all(scenario: &Scenario, quick: bool) -> Settings {
        Settings {
            slo_p99_us: 10_000.0,
            start_rate_per_publisher: scenario.rate_per_publisher * if quick { 1.0 } else { 0.5 },
            step_factor: 2.0,
            max_steps: if quick { 3 } else { 9 },
            refine: if quick { 0 } else { 1 },
        }
    }

    /// Most steps one row's sweep measures (retries after a pacer hiccup not counted).
    pub fn most_steps(&self) -> u32 {
        self.max_steps + self.refine
    }

    fn climb(&self) -> Climb {
        Climb::new(
            self.start_rate_per_publisher,
            self.step_factor,
            Some(self.max_steps),
            self.refine,
        )
    }
}

/// `sweep.json`.
#[derive(Debug, Serialize)]
pub struct SweepFile {
    pub schema_version: u32,
    /// Always `"sweep"` (tells it apart from a results.json).
    pub kind: &'static str,
    pub run_id: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub command: Vec<String>,
    pub git: GitInfo,
    pub host: HostInfo,
    pub toolchain: Toolchain,
    pub slo_p99_us: f64,
    pub step_factor: f64,
    /// A signal stopped the sweep: `sweeps` holds what was measured before it.
    pub partial: bool,
    pub interrupted_by: Option<String>,
    pub sweeps: Vec<Sweep>,
}

/// One runtime's sweep of one workload.
#[derive(Debug, Serialize)]
pub struct Sweep {
    pub scenario: String,
    pub runtime: String,
    pub steps: Vec<Step>,
    /// Largest offered load (deliveries/s) of a sustained step; null when none was.
    #[serde(flatten, with = "fields::max_sustainable")]
    pub max_sustainable: Measured<f64>,
    /// Why the sweep ended.
    pub stop_reason: String,
    /// What ended it, in one word: the last step's `ended_by`, or `max-steps` (every step
    /// sustained) or `error` (a step could not be measured).
    pub ended_by: String,
    /// Steps measured again because the first attempt was spoiled by host noise.
    pub host_noise_retries: u32,
}

/// What stopped a step from being sustained, most fundamental first: `server-saturated` (its
/// CPU at 95% of its cores or more: the server's own limit, whatever else went wrong),
/// `instrument-limited` (headroom under 1.5 or read delay over its bound), `host-noise`
/// (a pacing hiccup or latency spike while the host stole CPU), `load-generator` (the pacer
/// fell behind, the load generator saturated, or it sampled the window's boundaries late),
/// `loss`, `slo`.
pub fn ended_by(result: &ScenarioResult, slo_p99_us: f64) -> Option<&'static str> {
    if unsustained_reasons(result, slo_p99_us).is_empty() {
        return None;
    }
    let reps = &result.repetitions;
    let server_saturated = reps.iter().any(|r| {
        r.server
            .utilisation
            .value()
            .is_some_and(|&u| u >= SERVER_SATURATED)
    });
    let lg = |f: &dyn Fn(&crate::results::schema::LoadGenerator) -> bool| {
        reps.iter().any(|r| f(&r.load_generator))
    };
    Some(if server_saturated {
        "server-saturated"
    } else if lg(&|l| l.instrument_limited) {
        "instrument-limited"
    } else if lg(&|l| !l.host_noise_windows.is_empty()) && result.summary.headline.lost == 0 {
        "host-noise"
    } else if lg(&|l| {
        l.behind_schedule
            || l.saturated
            || l.boundary_late_us.is_some_and(|us| {
                us * 1e3 > crate::measure::validity::BOUNDARY_LATE_LIMIT_NS as f64
            })
    }) {
        "load-generator"
    } else if result.summary.headline.lost > 0 {
        "loss"
    } else {
        "slo"
    })
}

/// Server CPU share of its cores at which a step counts as server-saturated.
pub const SERVER_SATURATED: f64 = 0.95;

/// One offered load.
#[derive(Debug, Serialize)]
pub struct Step {
    pub rate_per_publisher: f64,
    /// publishers x rate x subscribers per publisher: deliveries per second offered.
    pub offered_msgs_per_s: f64,
    /// p99 within the SLO, nothing lost, run valid.
    pub sustained: bool,
    /// Why not, when not.
    pub unsustained_reasons: Vec<String>,
    /// Set when this load was measured twice because the first attempt's only fault was the
    /// load generator's pacer falling behind ([`only_the_pacer_fell_behind`]): that
    /// attempt's reasons. `result` is the second attempt.
    pub first_attempt_reasons: Option<Vec<String>>,
    /// What kept this step from being sustained (see [`ended_by`]); null when it was.
    pub ended_by: Option<String>,
    /// Measured between the highest sustained and the lowest unsustained load after the
    /// climb stopped (`--refine`), not on the way up.
    pub refinement: bool,
    pub result: ScenarioResult,
}

fn offered(s: &Scenario) -> f64 {
    f64::from(s.publishers) * s.rate_per_publisher * f64::from(s.subscribers_per_publisher)
}

/// Why a step does not count (empty: it does).
pub fn unsustained_reasons(result: &ScenarioResult, slo_p99_us: f64) -> Vec<String> {
    let mut reasons = Vec::new();
    let h = &result.summary.headline;
    match h.latency_us.value() {
        Some(l) if l.p99 > slo_p99_us => {
            reasons.push(format!("p99 {:.0} us > SLO {:.0} us", l.p99, slo_p99_us));
        }
        Some(_) => {}
        None => reasons.push(format!(
            "no latency measured ({})",
            h.latency_us.null_reason().unwrap_or("no reason")
        )),
    }
    if h.lost > 0 {
        reasons.push(format!("{} messages lost", h.lost));
    }
    if !result.valid {
        reasons.push(format!("invalid: {}", result.invalid_reasons.join("; ")));
    }
    reasons
}

/// Whether a step's only fault is that the load generator's pacer fell behind its schedule:
/// no loss, no load-generator CPU saturation, every invalid repetition behind schedule. On a
/// shared VM that is usually a scheduling hiccup on the load generator's CPU, not the server;
/// one more attempt at the same load tells the two apart (a load the pacer cannot keep up
/// with fails again). The p99 is not looked at: latency counts from the intended send time,
/// so a late pacer inflates it too.
pub fn only_the_pacer_fell_behind(result: &ScenarioResult) -> bool {
    !result.valid
        && result.summary.headline.lost == 0
        && result.repetitions.iter().all(|r| {
            let lg = &r.load_generator;
            !lg.saturated && lg.subscribers_with_loss == 0 && (r.valid || lg.behind_schedule)
        })
}

/// Sweeps one row: steps until a step is not sustained or `max_steps` ran, then up to
/// `refine` steps between the highest sustained and the lowest unsustained load ([`Climb`]).
/// A step that is not sustained only because the pacer fell behind is measured once more (see
/// [`only_the_pacer_fell_behind`]); the step records both. The steps come back in order of
/// load; what ended the sweep is what kept the lowest unsustained load from being sustained.
pub fn sweep_row(
    row: Row,
    base: &Scenario,
    settings: &Settings,
    placement: &Placement,
    log_dir: &Path,
    on_step: &mut dyn FnMut(&Step),
) -> Sweep {
    let mut steps: Vec<Step> = Vec::new();
    // Set when a step could not be measured at all (the sweep ends there).
    let mut failure: Option<(String, &str)> = None;
    let mut host_noise_retries = 0;
    let mut climb = settings.climb();
    for index in 0.. {
        let refinement = climb.refining();
        let rate = climb.rate();
        let mut scenario = base.clone();
        scenario.rate_per_publisher = rate;
        let load = offered(&scenario);
        let step_log = log_dir.join(format!("sweep-step{index}"));
        let mut first_attempt_reasons = None;
        let mut measured = measure(row, &scenario, placement, &step_log, &mut |_| {});
        let mut interrupted_retry = None;
        if let Ok(first) = &measured {
            let noise = ended_by(first, settings.slo_p99_us) == Some("host-noise");
            if noise {
                host_noise_retries += 1;
            }
            if noise || only_the_pacer_fell_behind(first) {
                let retry_log = log_dir.join(format!("sweep-step{index}-retry"));
                match measure(row, &scenario, placement, &retry_log, &mut |_| {}) {
                    // A signal during the second attempt: the first one is what was measured,
                    // and it is kept as the step.
                    Err(MeasureError::Interrupted { by, .. }) => interrupted_retry = Some(by),
                    retry => {
                        first_attempt_reasons =
                            Some(unsustained_reasons(first, settings.slo_p99_us));
                        measured = retry;
                    }
                }
            }
        }
        let result = match measured {
            Ok(result) => result,
            Err(MeasureError::Start(err)) => {
                failure = Some((format!("server did not start: {err:#}"), "error"));
                break;
            }
            Err(MeasureError::Run(err)) => {
                failure = Some((
                    format!("step {index} at {load:.0} deliveries/s failed: {err:#}"),
                    "error",
                ));
                break;
            }
            Err(MeasureError::Interrupted { by, .. }) => {
                failure = Some((
                    format!("step {index} at {load:.0} deliveries/s: {by}"),
                    "interrupted",
                ));
                break;
            }
        };
        let reasons = unsustained_reasons(&result, settings.slo_p99_us);
        let step = Step {
            rate_per_publisher: rate,
            offered_msgs_per_s: load,
            sustained: reasons.is_empty(),
            ended_by: ended_by(&result, settings.slo_p99_us).map(str::to_string),
            unsustained_reasons: reasons,
            first_attempt_reasons,
            refinement,
            result,
        };
        on_step(&step);
        let sustained = step.sustained;
        steps.push(step);
        if let Some(by) = interrupted_retry {
            failure = Some((
                format!("step {index} at {load:.0} deliveries/s, measuring it again: {by}"),
                "interrupted",
            ));
            break;
        }
        if climb.next(sustained).is_none() {
            break;
        }
    }
    steps.sort_by(|a, b| a.offered_msgs_per_s.total_cmp(&b.offered_msgs_per_s));
    let lowest_unsustained = steps.iter().find(|s| !s.sustained);
    let (stop_reason, stopped_by) = match (failure, lowest_unsustained) {
        (Some((reason, what)), _) => (reason, what.to_string()),
        (None, Some(step)) => (
            format!(
                "{:.0} deliveries/s{}: {}",
                step.offered_msgs_per_s,
                if step.refinement { " (refinement)" } else { "" },
                step.unsustained_reasons.join("; ")
            ),
            step.ended_by.clone().unwrap_or_else(|| "slo".into()),
        ),
        (None, None) => (
            format!("reached {} steps, every one sustained", settings.max_steps),
            "max-steps".to_string(),
        ),
    };
    let max = steps
        .iter()
        .take_while(|s| s.sustained)
        .map(|s| s.offered_msgs_per_s)
        .fold(None, |acc: Option<f64>, v| {
            Some(acc.map_or(v, |a| a.max(v)))
        });
    Sweep {
        scenario: base.name.clone(),
        runtime: row.name().to_string(),
        max_sustainable: Measured::from_option(max, || {
            format!("no step was sustained ({stop_reason})")
        }),
        steps,
        stop_reason,
        ended_by: stopped_by,
        host_noise_retries,
    }
}

/// Sweeps every row and returns the file (provenance copied from `provenance`).
pub fn sweep_rows(
    rows: &[Row],
    base: &Scenario,
    settings: &Settings,
    placement: &Placement,
    log_dir: &Path,
    provenance: &ResultsFile,
) -> SweepFile {
    let mut sweeps = Vec::new();
    for row in rows {
        if crate::interrupt::received().is_some() {
            break;
        }
        eprintln!(
            "fanbench: sweep {} on {}: from {:.0} deliveries/s, x{} per step, {} refinement \
             step(s), SLO p99 {:.0} us",
            base.name,
            row.name(),
            offered(&Scenario {
                rate_per_publisher: settings.start_rate_per_publisher,
                ..base.clone()
            }),
            settings.step_factor,
            settings.refine,
            settings.slo_p99_us
        );
        let sweep = sweep_row(*row, base, settings, placement, log_dir, &mut |step| {
            if let Some(first) = &step.first_attempt_reasons {
                eprintln!(
                    "fanbench:   {:>10.0} deliveries/s offered: first attempt not counted, only \
                     the load generator's pacer fell behind ({}); measured again",
                    step.offered_msgs_per_s,
                    first.join("; ")
                );
            }
            eprintln!(
                "fanbench:   {:>10.0} deliveries/s offered{}: p99 {:>9} us, lost {}, {}",
                step.offered_msgs_per_s,
                if step.refinement { " (refining)" } else { "" },
                step.result
                    .summary
                    .headline
                    .latency_us
                    .value()
                    .map_or_else(|| "null".to_string(), |l| format!("{:.0}", l.p99)),
                step.result.summary.headline.lost,
                if step.sustained {
                    "sustained".to_string()
                } else {
                    format!("not sustained ({})", step.unsustained_reasons.join("; "))
                }
            )
        });
        eprintln!(
            "fanbench:   {}: max sustainable {}; ended by {}: {}",
            row.name(),
            sweep
                .max_sustainable
                .value()
                .map_or("none".to_string(), |m| format!("{m:.0} deliveries/s")),
            sweep.ended_by,
            sweep.stop_reason
        );
        sweeps.push(sweep);
    }
    let interrupted = crate::interrupt::received();
    SweepFile {
        schema_version: SCHEMA_VERSION,
        kind: "sweep",
        run_id: provenance.run_id.clone(),
        started_at: provenance.started_at.clone(),
        finished_at: Some(sysinfo::rfc3339(SystemTime::now())),
        command: std::env::args().collect(),
        git: provenance.git.clone(),
        host: provenance.host.clone(),
        toolchain: provenance.toolchain.clone(),
        slo_p99_us: settings.slo_p99_us,
        step_factor: settings.step_factor,
        partial: interrupted.is_some(),
        interrupted_by: interrupted.map(|i| i.signal_name()),
        sweeps,
    }
}

/// Writes `sweep.json` into `dir` (atomically: temp file, then rename).
pub fn write_sweep(dir: &Path, file: &SweepFile) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(fanbench_plots::SWEEP_FILE);
    let tmp = dir.join(format!(".{}.tmp", fanbench_plots::SWEEP_FILE));
    let json = serde_json::to_vec_pretty(file).context("serializing the sweep")?;
    std::fs::write(&tmp, json).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(path)
}

/// bench-all's sweep: `fanout-100` on every available row, into the run directory, with
/// short steps. Returns the path written; failures are the caller's to report.
pub fn bench_all_sweep(
    rows: &[Row],
    scenario: &Scenario,
    quick: bool,
    placement: &Placement,
    run_dir: &Path,
    provenance: &ResultsFile,
) -> anyhow::Result<PathBuf> {
    let mut base = scenario.clone();
    Settings::step_timing(&mut base, quick);
    let settings = Settings::bench_all(scenario, quick);
    let file = sweep_rows(
        rows,
        &base,
        &settings,
        placement,
        &run_dir.join("logs"),
        provenance,
    );
    write_sweep(run_dir, &file)
}

/// `fanbench sweep`. A signal (SIGINT, SIGTERM, SIGHUP) stops the server of the step in
/// flight, and the sweep is written with what was measured, flagged partial, and its report;
/// the error returned then carries the signal (exit status 128 + it).
pub fn run(args: SweepArgs) -> anyhow::Result<()> {
    crate::interrupt::install()?;
    if let Some(path) = &args.calibration {
        crate::measure::instrument::load_calibration(path)?;
    }
    if !(args.step_factor > 1.0 && args.step_factor.is_finite()) {
        bail!("--step-factor must be greater than 1");
    }
    if !(args.start_fraction > 0.0 && args.start_fraction.is_finite()) {
        bail!("--start-fraction must be positive");
    }
    if args.max_steps == 0 {
        bail!("--max-steps must be at least 1");
    }
    let rows: Vec<Row> = args
        .runtimes
        .iter()
        .map(|name| Row::named(name.trim()))
        .collect::<anyhow::Result<_>>()?;
    let dir = workload::workloads_dir(args.overrides.workloads_dir.as_deref());
    let mut base = workload::load(&args.workload, &dir)?;
    if args.quick {
        Settings::step_timing(&mut base, true);
    } else {
        base.repetitions = 1;
    }
    let base = args.overrides.apply(base)?;
    let placement = args.placement.resolve()?;
    for row in &rows {
        if let Some(reason) = row.info(&placement).unavailable_reason {
            bail!("runtime {} is unavailable: {reason}", row.name());
        }
    }
    let settings = Settings {
        slo_p99_us: args.slo.as_secs_f64() * 1e6,
        start_rate_per_publisher: base.rate_per_publisher * args.start_fraction,
        step_factor: args.step_factor,
        max_steps: if args.quick {
            args.max_steps.min(4)
        } else {
            args.max_steps
        },
        refine: args.refine,
    };
    let provenance = new_results_file(
        SystemTime::now(),
        rows.iter().map(|r| r.info(&placement)).collect(),
    );
    let run_dir = args.out.join(&provenance.run_id);
    let file = sweep_rows(
        &rows,
        &base,
        &settings,
        &placement,
        &run_dir.join("logs"),
        &provenance,
    );
    let path = write_sweep(&run_dir, &file)?;
    eprintln!("fanbench: sweep written to {}", path.display());
    let report = crate::report::render(&path, None)?;
    eprintln!("fanbench: chart and report in {}", report.index.display());
    match crate::interrupt::received() {
        Some(by) => Err(by.into()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::schema::Percentiles;

    fn percentiles(p99: f64) -> Percentiles {
        Percentiles {
            p50: p99 / 2.0,
            p90: p99 / 1.5,
            p99,
            p999: p99,
            max: p99,
            mean: p99 / 2.0,
            count: 10,
        }
    }

    fn result(p99: f64, lost: u64, valid: bool) -> ScenarioResult {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../plots/tests/fixtures/results.json"),
        )
        .expect("fixture");
        let file: ResultsFile = serde_json::from_str(&text).expect("fixture parses");
        let mut r = file.results[0].clone();
        r.summary.headline.latency_us = Measured::Value(percentiles(p99));
        r.summary.headline.lost = lost;
        r.valid = valid;
        if !valid {
            r.invalid_reasons = vec!["rep 0: load generator behind schedule".into()];
        }
        r
    }

    /// A result whose repetitions are flagged as the load generator reports them.
    fn flagged(behind: bool, saturated: bool, lost: u64) -> ScenarioResult {
        let mut r = result(20_000.0, lost, !(behind || saturated || lost > 0));
        for rep in &mut r.repetitions {
            rep.valid = r.valid;
            rep.load_generator.behind_schedule = behind;
            rep.load_generator.saturated = saturated;
            rep.load_generator.subscribers_with_loss = u32::from(lost > 0);
        }
        r
    }

    #[test]
    fn only_a_late_pacer_earns_a_second_attempt() {
        assert!(only_the_pacer_fell_behind(&flagged(true, false, 0)));
        // Valid, saturated, or lossy steps are final.
        assert!(!only_the_pacer_fell_behind(&flagged(false, false, 0)));
        assert!(!only_the_pacer_fell_behind(&flagged(true, true, 0)));
        assert!(!only_the_pacer_fell_behind(&flagged(false, true, 0)));
        assert!(!only_the_pacer_fell_behind(&flagged(true, false, 5)));
    }

    #[test]
    fn a_step_counts_only_within_slo_without_loss_and_valid() {
        assert!(unsustained_reasons(&result(9_000.0, 0, true), 10_000.0).is_empty());
        let over = unsustained_reasons(&result(12_000.0, 0, true), 10_000.0);
        assert_eq!(over.len(), 1);
        assert!(over[0].contains("SLO"), "{over:?}");
        assert!(
            unsustained_reasons(&result(100.0, 3, true), 10_000.0)[0].contains("3 messages lost")
        );
        assert!(unsustained_reasons(&result(100.0, 0, false), 10_000.0)[0].contains("invalid"));
    }

    #[test]
    fn quick_step_timing_is_short_and_single_repetition() {
        let mut s = result(1.0, 0, true).scenario_config;
        Settings::step_timing(&mut s, true);
        assert_eq!((s.warmup_s, s.duration_s, s.repetitions), (0.25, 1.0, 1));
    }

    #[test]
    fn sweep_file_serializes_as_a_sweep_the_report_reads() {
        let r = result(500.0, 0, true);
        let file = SweepFile {
            schema_version: SCHEMA_VERSION,
            kind: "sweep",
            run_id: "x".into(),
            started_at: "2025-01-01T00:00:00Z".into(),
            finished_at: None,
            command: vec![],
            git: GitInfo {
                commit: None,
                dirty: None,
                null_reason: Some("test".into()),
            },
            host: HostInfo {
                hostname: None,
                kernel: "k".into(),
                kernel_version: None,
                cpu: "c".into(),
                cores: 2,
                memory_bytes: 1,
            },
            toolchain: Toolchain {
                rustc: None,
                fanbench: "0".into(),
            },
            slo_p99_us: 10_000.0,
            step_factor: 2.0,
            partial: false,
            interrupted_by: None,
            sweeps: vec![Sweep {
                scenario: r.scenario.clone(),
                runtime: r.runtime.clone(),
                steps: vec![Step {
                    rate_per_publisher: 10.0,
                    offered_msgs_per_s: 250.0,
                    sustained: true,
                    unsustained_reasons: vec![],
                    first_attempt_reasons: None,
                    ended_by: None,
                    refinement: false,
                    result: r,
                }],
                max_sustainable: Measured::Value(250.0),
                stop_reason: "reached 1 steps, every one sustained".into(),
                ended_by: "max-steps".into(),
                host_noise_retries: 0,
            }],
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_sweep(dir.path(), &file).expect("written");
        let read = fanbench_plots::SweepDoc::load(&path).expect("the report's reader loads it");
        assert_eq!(read.sweeps[0].max_sustainable_msgs_per_s, Some(250.0));
        assert_eq!(read.sweeps[0].steps.len(), 1);
    }

    #[test]
    fn bench_alls_worst_case_is_its_estimates() {
        let s = Settings::bench_all(&result(1.0, 0, true).scenario_config, false);
        // Every climbing step sustained up to the last, which fails: then one refinement.
        let limit = s.start_rate_per_publisher * 2.0_f64.powi(7) * 1.1;
        let seen = crate::climb::tests::loads(s.climb(), limit);
        assert_eq!(seen.len() as u32, s.most_steps(), "{seen:?}");
    }
}
