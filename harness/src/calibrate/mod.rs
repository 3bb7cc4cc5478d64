//! `fanbench calibrate`: the load generator's own ceiling, measured against the [`blaster`].
//!
//! The blaster runs where a server would (pinned to the server CPUs) and the load generator
//! where it always runs, with the same code path as a real measurement: its publisher paces
//! `PUB`s, the blaster turns each into `MSG`s to N subscribers, and the receivers time and
//! sequence-check every one. The offered deliveries/s rise in steps (x `--step-factor`) until
//! a step fails; then up to `--refine` steps between the highest passing and the lowest failing
//! load (geometric middles) narrow the ceiling. A step fails on the load generator's side when it lost a message, fell
//! behind its schedule, saturated its CPU, or received less than [`MIN_RECEIVED_SHARE`] of
//! what was offered; and on the blaster's side when the blaster's CPU reached
//! [`BLASTER_SATURATED`] of its cores. The read delay is recorded per step but does not end
//! the climb (results/README.md, "read delay"). The ceiling is the highest offered load of a
//! step that passed, and `ended_by` says which side stopped the climb: `blaster-saturated`
//! means the ceiling is a lower bound (the load generator out-ran
//! the cheapest possible server).

pub mod blaster;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::climb::Climb;
use crate::loadgen::{self, LoadSpec, WindowHooks};
use crate::measure::{Placement, PlacementArgs};
use crate::metrics::procfs;
use crate::server_proc::{free_local_addr, ServerCommand, ServerProcess, STOP_TIMEOUT};

/// Each step offers this many times the previous one's deliveries/s.
pub const STEP_FACTOR: f64 = 1.5;
/// Read delay p99 above which a result is flagged (the load generator read late).
pub const READ_DELAY_P99_LIMIT_NS: u64 = 200_000;
/// A step must receive at least this share of the deliveries it offered.
pub const MIN_RECEIVED_SHARE: f64 = 0.95;
/// Share of its cores at which the blaster counts as saturated.
pub const BLASTER_SATURATED: f64 = 0.95;
/// First step's deliveries/s.
const FIRST_STEP: f64 = 50_000.0;
/// Steps between the last passing and the first failing load: two narrow a factor of 1.5 to
/// about 1.11.
pub const REFINE_STEPS: u32 = 2;
/// Highest deliveries/s ever offered.
const MAX_DELIVERIES: f64 = 8_000_000.0;

#[derive(clap::Args, Debug)]
pub struct CalibrateArgs {
    /// Subscriber connections the blaster fans out to.
    #[arg(long, default_value_t = 100)]
    pub subscribers: u32,
    /// Payload sizes in bytes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "128,1024")]
    pub payloads: Vec<usize>,
    /// MSG frames per send of the blaster, comma-separated (1: one message per segment).
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    pub frames_per_send: Vec<usize>,
    /// Measured seconds per step (after a 0.5 s warm-up).
    #[arg(long, default_value_t = 1.0)]
    pub step_s: f64,
    /// Each step offers this many times the previous step's deliveries/s.
    #[arg(long, default_value_t = STEP_FACTOR)]
    pub step_factor: f64,
    /// Deliveries/s offered by the first step.
    #[arg(long, default_value_t = FIRST_STEP)]
    pub first_step: f64,
    /// Steps added after the climb fails, each between the highest passing and the lowest
    /// failing load (geometric middle), so the ceiling is known to better than one step factor.
    #[arg(long, default_value_t = REFINE_STEPS)]
    pub refine: u32,
    /// Write the calibration as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub placement: PlacementArgs,
}

/// What to calibrate.
#[derive(Debug, Clone)]
pub struct Settings {
    pub subscribers: u32,
    pub payloads: Vec<usize>,
    pub frames_per_send: Vec<usize>,
    pub step_s: f64,
    pub step_factor: f64,
    pub first_step: f64,
    pub refine: u32,
}

impl Settings {
    /// The calibration bench-all runs first: the default workloads' small payloads at both
    /// ends of how servers pack segments; one refinement step (the ceiling to within a factor
    /// of 1.22); quick mode takes shorter, coarser steps and no refinement.
    pub fn bench_all(quick: bool) -> Settings {
        Settings {
            subscribers: 100,
            payloads: vec![128, 1024],
            frames_per_send: vec![1, 64],
            step_s: if quick { 0.5 } else { 1.0 },
            step_factor: if quick { 2.0 } else { STEP_FACTOR },
            first_step: FIRST_STEP,
            refine: if quick { 0 } else { 1 },
        }
    }

    /// Upper estimate of the seconds a calibration takes (for progress and budgets).
    pub fn estimate_seconds(&self) -> f64 {
        let steps = (MAX_DELIVERIES / self.first_step).ln() / self.step_factor.ln();
        // A climb ends at the load generator's or the blaster's limit, about 2/3 of the way up.
        let per_config =
            ((steps * 2.0 / 3.0).ceil() + f64::from(self.refine)) * (self.step_s + STEP_OVERHEAD_S);
        per_config * (self.payloads.len() * self.frames_per_send.len()) as f64
    }
}

/// Warm-up, connecting 100 subscribers and the drain after the window, per step.
const STEP_OVERHEAD_S: f64 = 0.9;

/// One step of one configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub offered_deliveries_per_s: f64,
    /// Deliveries received in the window by kernel receive time, per second.
    pub received_per_s: f64,
    pub lost: u64,
    pub behind_schedule: bool,
    pub pacing_lag_p99_us: f64,
    pub max_pacing_lag_us: f64,
    pub loadgen_utilisation: f64,
    pub loadgen_busiest_thread_utilisation: Option<f64>,
    pub loadgen_saturated: bool,
    pub read_delay_p99_us: Option<f64>,
    pub blaster_utilisation: Option<f64>,
    /// Why the step failed on the load generator's side; empty when it passed.
    pub loadgen_faults: Vec<String>,
    pub blaster_saturated: bool,
}

/// One (payload, frames per send) configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ceiling {
    pub payload_bytes: usize,
    pub frames_per_send: usize,
    pub subscribers: u32,
    /// Highest offered deliveries/s of a passing step; `None` when the first step failed.
    pub ceiling_deliveries_per_s: Option<f64>,
    /// `blaster-saturated` (the ceiling is a lower bound), `load-generator` (the climb failed
    /// on the load generator's side; after the first failure up to `--refine` steps between
    /// the highest passing and the lowest failing load narrow the ceiling, and `steps` holds
    /// them in the order run), or `max-rate`.
    pub ended_by: String,
    /// Steps measured again because the only fault was the pacer falling behind (every
    /// attempt is in `steps`).
    #[serde(default)]
    pub pacer_retries: u32,
    pub steps: Vec<Step>,
}

/// What `calibrate` measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub receive_path: String,
    pub server_cpus: Vec<usize>,
    pub client_cpus: Vec<usize>,
    pub step_s: f64,
    pub ceilings: Vec<Ceiling>,
}

/// What `fanbench calibrate --out` writes: the calibration, and whether a signal cut it short.
#[derive(Serialize)]
struct CalibrationFile<'a> {
    #[serde(flatten)]
    calibration: &'a Calibration,
    /// A signal stopped the calibration: `ceilings` holds the configurations finished before it.
    partial: bool,
    interrupted_by: Option<String>,
}

/// `fanbench calibrate`. A signal (SIGINT, SIGTERM, SIGHUP) stops the blaster, prints and
/// writes (flagged partial) the configurations finished before it, and the error returned
/// then carries the signal (exit status 128 + it).
pub fn run(args: CalibrateArgs) -> Result<()> {
    crate::interrupt::install()?;
    let settings = Settings {
        subscribers: args.subscribers,
        payloads: args.payloads.clone(),
        frames_per_send: args.frames_per_send.clone(),
        step_s: args.step_s,
        step_factor: args.step_factor,
        first_step: args.first_step,
        refine: args.refine,
    };
    let placement = args.placement.resolve()?;
    let mut calibration = Calibration {
        receive_path: String::new(),
        server_cpus: placement.server_cpus.clone(),
        client_cpus: placement.client_cpus.clone(),
        step_s: settings.step_s,
        ceilings: Vec::new(),
    };
    let interrupted = match calibrate_into(
        &settings,
        &placement,
        &mut |line| eprintln!("{line}"),
        &mut calibration,
    ) {
        Ok(()) => None,
        Err(err) => match crate::interrupt::in_chain(&err).or_else(crate::interrupt::received) {
            Some(by) => {
                eprintln!("fanbench: calibration {by}: keeping the configurations finished");
                Some(by)
            }
            None => return Err(err),
        },
    };
    for c in &calibration.ceilings {
        println!(
            "{:>5} B, {:>2} frames/send: ceiling {} ({})",
            c.payload_bytes,
            c.frames_per_send,
            c.ceiling_deliveries_per_s
                .map_or("none".to_string(), |v| format!("{:.0} deliveries/s", v)),
            c.ended_by
        );
    }
    if let Some(out) = &args.out {
        let file = CalibrationFile {
            calibration: &calibration,
            partial: interrupted.is_some(),
            interrupted_by: interrupted.map(|by| by.signal_name()),
        };
        let json = serde_json::to_string_pretty(&file)?;
        std::fs::write(out, json).with_context(|| format!("writing {}", out.display()))?;
        println!(
            "calibration written to {}{}",
            out.display(),
            if interrupted.is_some() {
                " (partial)"
            } else {
                ""
            }
        );
    }
    match interrupted {
        Some(by) => Err(by.into()),
        None => Ok(()),
    }
}

/// Runs every configuration; `progress` gets one line per step.
pub fn calibrate(
    args: &Settings,
    placement: &Placement,
    progress: &mut dyn FnMut(String),
) -> Result<Calibration> {
    let mut calibration = Calibration {
        receive_path: String::new(),
        server_cpus: placement.server_cpus.clone(),
        client_cpus: placement.client_cpus.clone(),
        step_s: args.step_s,
        ceilings: Vec::new(),
    };
    calibrate_into(args, placement, progress, &mut calibration)?;
    Ok(calibration)
}

/// Runs every configuration, adding each finished one to `calibration.ceilings`, so that
/// what was finished survives an error (an interruption) in a later one.
fn calibrate_into(
    args: &Settings,
    placement: &Placement,
    progress: &mut dyn FnMut(String),
    calibration: &mut Calibration,
) -> Result<()> {
    if args.subscribers == 0 {
        bail!("--subscribers must be at least 1");
    }
    if !(args.step_s > 0.0 && args.step_s.is_finite()) {
        bail!("--step-s must be a positive number of seconds");
    }
    for &p in &args.payloads {
        if p < loadgen::MIN_PAYLOAD_BYTES {
            bail!(
                "payload {p} B is below the load generator's {} B minimum",
                loadgen::MIN_PAYLOAD_BYTES
            );
        }
    }
    if args.frames_per_send.contains(&0) {
        bail!("--frames-per-send values must be at least 1");
    }
    if !(args.first_step > 0.0 && args.first_step <= MAX_DELIVERIES) {
        bail!("--first-step must be between 0 and {MAX_DELIVERIES} deliveries/s");
    }
    if !(args.step_factor > 1.0 && args.step_factor.is_finite()) {
        bail!("--step-factor must be a number above 1");
    }
    let exe = std::env::current_exe().context("finding the fanbench executable")?;
    for &payload in &args.payloads {
        for &k in &args.frames_per_send {
            let addr = free_local_addr()?;
            let cmd = ServerCommand {
                program: exe.clone(),
                shown_as: Some("fanbench".into()),
                args: vec![
                    "blaster".into(),
                    "--listen".into(),
                    addr.to_string(),
                    "--frames-per-send".into(),
                    k.to_string(),
                ],
                env: Default::default(),
                cpus: placement.server_cpus.clone(),
                addr,
            };
            let log = std::env::temp_dir().join(format!("fanbench-blaster-{}.log", addr.port()));
            let blaster = ServerProcess::start(&cmd, &log).context("starting the blaster")?;
            let climbed = climb(
                args,
                payload,
                k,
                &blaster,
                &placement.client_cpus,
                placement.server_cpus.len(),
                progress,
                &mut calibration.receive_path,
            );
            let _ = blaster.stop(STOP_TIMEOUT);
            let _ = std::fs::remove_file(&log);
            calibration.ceilings.push(climbed?);
        }
    }
    Ok(())
}

struct BlasterCpu {
    pid: u32,
    start: Option<procfs::ProcCpu>,
    end: Option<procfs::ProcCpu>,
}

impl WindowHooks for BlasterCpu {
    fn measure_start(&mut self) {
        self.start = procfs::read_cpu(self.pid).ok();
    }
    fn measure_end(&mut self) {
        self.end = procfs::read_cpu(self.pid).ok();
    }
}

#[allow(clippy::too_many_arguments)]
fn climb(
    args: &Settings,
    payload: usize,
    k: usize,
    blaster: &ServerProcess,
    client_cpus: &[usize],
    blaster_cores: usize,
    progress: &mut dyn FnMut(String),
    receive_path: &mut String,
) -> Result<Ceiling> {
    let mut steps = Vec::new();
    let mut ceiling = None;
    // Up by the factor until a step fails on the load generator's side, then `--refine` steps
    // between the highest passing and the lowest failing load.
    let mut climb = Climb::new(args.first_step, args.step_factor, None, args.refine);
    let mut retried = false;
    let mut pacer_retries = 0;
    let ended_by = loop {
        let offered = climb.rate();
        if offered > MAX_DELIVERIES {
            break "max-rate";
        }
        let spec = LoadSpec {
            target: blaster.addr(),
            publishers: 1,
            subscribers_per_publisher: args.subscribers,
            rate_per_publisher: offered / f64::from(args.subscribers),
            payload_bytes: payload,
            warmup: Duration::from_millis(500),
            duration: Duration::from_secs_f64(args.step_s),
            slow_subscribers: 0,
            slow_read_bytes_per_s: 0,
            client_cpus: client_cpus.to_vec(),
        };
        let mut hooks = BlasterCpu {
            pid: blaster.pid(),
            start: None,
            end: None,
        };
        let report = loadgen::run(&spec, &mut hooks)
            .with_context(|| format!("calibration step at {offered:.0} deliveries/s"))?;
        receive_path.clone_from(&report.receive_path.name);
        let window_s = report.window_ns as f64 / 1e9;
        let blaster_utilisation = match (hooks.start, hooks.end) {
            (Some(a), Some(b)) => {
                let ticks =
                    (b.utime_ticks + b.stime_ticks).saturating_sub(a.utime_ticks + a.stime_ticks);
                Some(
                    ticks as f64
                        / procfs::clock_ticks_per_second() as f64
                        / window_s
                        / blaster_cores as f64,
                )
            }
            _ => None,
        };
        let received_per_s = report.received_in_window as f64 / window_s;
        let read_delay_p99 =
            (!report.read_delay.is_empty()).then(|| report.read_delay.value_at_quantile(0.99));
        let mut faults = Vec::new();
        if report.lost > 0 {
            faults.push(format!("{} messages lost", report.lost));
        }
        if report.behind_schedule {
            faults.push("behind schedule".into());
        }
        if report.loadgen_cpu.saturated {
            faults.push("load generator CPU saturated".into());
        }
        if received_per_s < MIN_RECEIVED_SHARE * offered {
            faults.push(format!(
                "received {received_per_s:.0}/s of {offered:.0}/s offered"
            ));
        }
        let blaster_saturated = blaster_utilisation.is_some_and(|u| u >= BLASTER_SATURATED);
        let pacing_p99_us = report.pacing_lag.value_at_quantile(0.99) as f64 / 1e3;
        let pacing_max_us = report.max_pacing_lag_ns as f64 / 1e3;
        progress(format!(
            "calibrate {payload} B x{k}: {offered:>9.0} deliveries/s offered, {received_per_s:>9.0} received, load generator {:.0}% CPU, pacing lag p99/max {pacing_p99_us:.0}/{pacing_max_us:.0} us, read delay p99 {}, blaster {}{}",
            report.loadgen_cpu.utilisation * 100.0,
            read_delay_p99.map_or("n/a".into(), |d| format!("{:.0} us", d as f64 / 1e3)),
            blaster_utilisation.map_or("n/a".into(), |u| format!("{:.0}% CPU", u * 100.0)),
            if faults.is_empty() { String::new() } else { format!(" -> {}", faults.join(", ")) },
        ));
        steps.push(Step {
            offered_deliveries_per_s: offered,
            received_per_s,
            lost: report.lost,
            behind_schedule: report.behind_schedule,
            pacing_lag_p99_us: pacing_p99_us,
            max_pacing_lag_us: pacing_max_us,
            loadgen_utilisation: report.loadgen_cpu.utilisation,
            loadgen_busiest_thread_utilisation: report.loadgen_cpu.busiest_thread_utilisation,
            loadgen_saturated: report.loadgen_cpu.saturated,
            read_delay_p99_us: read_delay_p99.map(|d| d as f64 / 1e3),
            blaster_utilisation,
            loadgen_faults: faults.clone(),
            blaster_saturated,
        });
        if blaster_saturated {
            // Whatever else went wrong, the server side was the limit first.
            if faults.is_empty() {
                ceiling = Some(offered);
            }
            break "blaster-saturated";
        }
        // A pacing hiccup alone (on a shared VM usually the host, not the load generator) gets
        // one more attempt at the same load, as a sweep step does.
        if faults.len() == 1 && report.behind_schedule && !retried {
            retried = true;
            pacer_retries += 1;
            continue;
        }
        retried = false;
        if faults.is_empty() {
            ceiling = Some(offered);
        }
        if climb.next(faults.is_empty()).is_none() {
            break "load-generator";
        }
    };
    Ok(Ceiling {
        payload_bytes: payload,
        frames_per_send: k,
        subscribers: args.subscribers,
        ceiling_deliveries_per_s: ceiling,
        ended_by: ended_by.to_string(),
        pacer_retries,
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays a climb against a load generator that passes every step below `limit`.
    fn climb_to(limit: f64, refine: u32) -> (Vec<f64>, Option<f64>) {
        let mut climb = Climb::new(100.0, 2.0, None, refine);
        let (mut tried, mut ceiling) = (Vec::new(), None);
        loop {
            let offered = climb.rate();
            tried.push(offered);
            if offered < limit {
                ceiling = Some(offered);
            }
            if climb.next(offered < limit).is_none() {
                return (tried, ceiling);
            }
        }
    }

    #[test]
    fn refinement_narrows_the_ceiling_between_the_last_pass_and_the_first_failure() {
        let (tried, ceiling) = climb_to(700.0, 0);
        assert_eq!(tried, vec![100.0, 200.0, 400.0, 800.0]);
        assert_eq!(ceiling, Some(400.0));
        // 400 passed, 800 failed: 566 passes, then 673 passes (its gap to 800 is ~1.19x).
        let (tried, ceiling) = climb_to(700.0, 2);
        assert_eq!(tried.len(), 6);
        let c = ceiling.expect("a ceiling");
        assert!((c - 672.7).abs() < 0.1, "{c}");
        // A failing refinement lowers the upper bound instead.
        let (tried, ceiling) = climb_to(500.0, 2);
        assert_eq!(tried.len(), 6);
        // 566 fails, then 476 passes.
        let c = ceiling.expect("a ceiling");
        assert!((c - 475.7).abs() < 0.1, "{c}");
    }

    #[test]
    fn a_first_step_that_fails_ends_the_climb_without_refinement() {
        let (tried, ceiling) = climb_to(50.0, 2);
        assert_eq!(tried, vec![100.0]);
        assert_eq!(ceiling, None);
    }
}
