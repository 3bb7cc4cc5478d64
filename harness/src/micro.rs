//! `fanbench micro`: what the runtime itself costs. Runs the criterion suite of
//! `fanbench-micro` (criterion as a library, so the release binary needs no `cargo`) on every
//! runtime row and writes `micro.json` into a run directory, beside its results.json.
//!
//! The benchmark thread is pinned to `--cpu` (the server's CPU in bench-all), the second
//! runtime of `wake_remote` to `--peer-cpu`; tokio's reference code gets every CPU, as in
//! tokio's own benches. Criterion's raw files go to `<run dir>/criterion/` while the suite
//! runs and are removed once micro.json holds their estimates (`--keep-criterion` keeps them).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{bail, Context};
use criterion::Criterion;
use fanbench_micro::lateness::LatenessSummary;
use fanbench_micro::suite::LatenessEntry;
use fanbench_micro::{MicroEntry, MicroRow, Op, Settings};
use serde::Serialize;

use crate::cpus::{online_cpus, parse_cpu_list, pin_current_thread};
use crate::results::schema::{GitInfo, HostInfo, Toolchain};
use crate::runtimes::{self, RuntimeRow};
use crate::sysinfo;

/// The file name micro results get in a run directory.
pub const MICRO_FILE: &str = "micro.json";
/// micro.json's schema version (results/README.md documents it).
pub const MICRO_SCHEMA_VERSION: u32 = 1;

/// Options of `fanbench micro`.
#[derive(Debug, clap::Args)]
pub struct MicroArgs {
    /// Only these runtime rows, comma-separated (default: every row of `fanbench runtimes`).
    #[arg(long, value_delimiter = ',')]
    pub runtimes: Option<Vec<String>>,
    /// Short run (criterion's minimum of 10 samples, 0.1 s per benchmark): a smoke test whose
    /// intervals are wide. Without it: 0.6 s per benchmark, about 2 minutes for every row.
    #[arg(long)]
    pub quick: bool,
    /// Results directory: writes DIR/<run-id>/micro.json (ignored with --run-dir).
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    /// Write micro.json into this run directory (e.g. beside a bench-all results.json).
    #[arg(long, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    /// CPU the benchmark thread (every row's runtime) is pinned to.
    #[arg(long, default_value_t = 0)]
    pub cpu: usize,
    /// CPU the second runtime of wake_remote is pinned to (default: the next CPU after --cpu,
    /// or --cpu on a one-CPU machine).
    #[arg(long)]
    pub peer_cpu: Option<usize>,
    /// Do not run tokio's own bench code beside the tokio row.
    #[arg(long)]
    pub no_tokio_reference: bool,
    /// Keep criterion's raw files (estimates, samples) in <run dir>/criterion/.
    #[arg(long)]
    pub keep_criterion: bool,
}

/// micro.json.
#[derive(Debug, Serialize)]
pub struct MicroFile {
    pub schema_version: u32,
    pub kind: &'static str,
    pub run_id: String,
    pub started_at: String,
    pub finished_at: String,
    pub command: Vec<String>,
    pub git: GitInfo,
    pub host: HostInfo,
    pub toolchain: Toolchain,
    pub settings: SettingsRecord,
    pub operations: Vec<OperationRecord>,
    pub runtimes: Vec<String>,
    pub entries: Vec<MicroEntry>,
    pub timer_lateness: Vec<LatenessEntry>,
}

/// How the suite was run.
#[derive(Debug, Serialize)]
pub struct SettingsRecord {
    /// `standard` (`fanbench micro`), `bench-all` (bench-all's default run) or `quick`.
    pub budget: &'static str,
    pub warm_up_s: f64,
    pub measurement_s: f64,
    pub sample_size: usize,
    pub nresamples: usize,
    pub lateness_sleeps: usize,
    pub cpu: usize,
    pub peer_cpu: usize,
    pub criterion_version: &'static str,
}

/// What one operation is.
#[derive(Debug, Serialize)]
pub struct OperationRecord {
    pub name: &'static str,
    pub description: &'static str,
    pub element: &'static str,
    pub elements_per_iteration: u64,
    pub tokio_reference: bool,
}

/// Why the floor row has no micro costs.
const FLOOR_REASON: &str =
    "floor is a raw io_uring fan-out server with no runtime trait: there is no runtime to measure";

/// The micro row of a runtime row, or why it has none (exhaustive: a new row does not compile
/// until it says how the suite builds it).
fn micro_row(row: RuntimeRow) -> Result<MicroRow, &'static str> {
    Ok(match row {
        RuntimeRow::Uring => MicroRow::Uring,
        RuntimeRow::Tokio => MicroRow::Tokio,
        RuntimeRow::TokioMt => MicroRow::TokioMt,
        RuntimeRow::Compio => MicroRow::Compio,
        RuntimeRow::Glommio => MicroRow::Glommio,
        RuntimeRow::Monoio => MicroRow::Monoio,
        RuntimeRow::MonoioEpoll => MicroRow::MonoioEpoll,
        RuntimeRow::Threads => MicroRow::Threads,
        RuntimeRow::Floor => return Err(FLOOR_REASON),
    })
}

/// The rows `names` selects (every row with a runtime when `None`). nats-server and floor
/// are servers, not runtimes.
pub fn rows(names: Option<&[String]>) -> anyhow::Result<Vec<MicroRow>> {
    let Some(names) = names else {
        return Ok(RuntimeRow::ALL
            .iter()
            .filter_map(|&r| micro_row(r).ok())
            .collect());
    };
    if names.is_empty() {
        bail!("--runtimes is empty");
    }
    names
        .iter()
        .map(|name| {
            let name = name.trim();
            match RuntimeRow::named(name) {
                Some(row) => micro_row(row).map_err(|reason| anyhow::anyhow!("{reason}")),
                None if name == "nats-server" => bail!(
                    "nats-server is a reference server, not a runtime: micro measures runtimes"
                ),
                None => bail!(
                    "unknown runtime {name:?}; built-in runtimes: {}",
                    runtimes::names().join(", ")
                ),
            }
        })
        .collect()
}

/// The suite's settings for a run (`quick` or the standard budget).
pub fn settings(quick: bool, tokio_reference: bool) -> Settings {
    let mut s = if quick {
        Settings::quick()
    } else {
        Settings::standard()
    };
    s.tokio_reference = tokio_reference;
    s
}

/// `fanbench micro`.
pub fn run(args: MicroArgs) -> anyhow::Result<()> {
    let rows = rows(args.runtimes.as_deref())?;
    let started = SystemTime::now();
    let git = sysinfo::git(sysinfo::source_root());
    let run_dir = match &args.run_dir {
        Some(dir) => dir.clone(),
        None => args.out.join(sysinfo::run_id(started, &git)),
    };
    let peer_cpu = args.peer_cpu.unwrap_or_else(|| next_cpu(args.cpu));
    let path = measure(
        &rows,
        &settings(args.quick, !args.no_tokio_reference),
        Placement {
            cpu: args.cpu,
            peer_cpu,
        },
        &run_dir,
        args.keep_criterion,
    )?;
    eprintln!("fanbench micro: wrote {}", path.display());
    Ok(())
}

/// Where the suite's threads run.
#[derive(Debug, Clone, Copy)]
pub struct Placement {
    pub cpu: usize,
    pub peer_cpu: usize,
}

/// bench-all's part: the suite on the runtime rows among `rows` (nats-server is a server,
/// not a runtime), placed like the fan-out runs (benchmark thread on the first server CPU,
/// the peer on the first load generator CPU), into the run directory beside results.json.
/// With [`Settings::bench_all`]: about a minute, what the default run's 25 minutes leave.
pub struct BenchAllMicro {
    pub rows: Vec<MicroRow>,
    pub settings: Settings,
}

impl BenchAllMicro {
    /// The suite for bench-all's default run; `None` with `--quick`, whose 5 minutes the
    /// rest of the suite already fills (`fanbench micro --quick` is the short run).
    pub fn new(rows: &[crate::measure::Row], quick: bool) -> Option<Self> {
        if quick {
            return None;
        }
        let mut seen = Vec::new();
        for row in rows {
            if let crate::measure::Row::Fanbench(r) = row {
                match micro_row(*r) {
                    Ok(row) if !seen.contains(&row) => seen.push(row),
                    Ok(_) => {}
                    Err(reason) => eprintln!("fanbench: no micro costs for {}: {reason}", r.name()),
                }
            }
        }
        Some(BenchAllMicro {
            rows: seen,
            settings: Settings::bench_all(),
        })
    }

    /// Seconds the suite is expected to take.
    pub fn estimate_seconds(&self) -> f64 {
        self.settings.estimate_seconds(&self.rows)
    }

    /// Run it and write `<run_dir>/micro.json`. A failure is reported, not fatal: the
    /// fan-out results stand without it.
    pub fn run(&self, placement: &crate::measure::Placement, run_dir: &Path) {
        if self.rows.is_empty() {
            return;
        }
        let cpu = placement.server_cpus.first().copied().unwrap_or(0);
        let peer_cpu = placement
            .client_cpus
            .first()
            .copied()
            .unwrap_or_else(|| next_cpu(cpu));
        match measure(
            &self.rows,
            &self.settings,
            Placement { cpu, peer_cpu },
            run_dir,
            false,
        ) {
            Ok(path) => eprintln!("fanbench: micro costs written to {}", path.display()),
            Err(err) => eprintln!("fanbench: micro costs failed: {err:#}"),
        }
    }
}

/// The CPU after `cpu` (wrapping), for the peer thread.
pub fn next_cpu(cpu: usize) -> usize {
    let n = online_cpus();
    if n <= 1 {
        cpu
    } else {
        (cpu + 1) % n
    }
}

/// Run the suite on `rows` and write `<run_dir>/micro.json`; returns its path. The suite runs
/// on a thread pinned to `placement.cpu`.
pub fn measure(
    rows: &[MicroRow],
    settings: &Settings,
    placement: Placement,
    run_dir: &Path,
    keep_criterion: bool,
) -> anyhow::Result<PathBuf> {
    let started = SystemTime::now();
    let criterion_dir = run_dir.join("criterion");
    std::fs::create_dir_all(&criterion_dir)
        .with_context(|| format!("creating {}", criterion_dir.display()))?;
    let all_cpus: Vec<usize> = (0..online_cpus()).collect();
    parse_cpu_list(&placement.cpu.to_string()).context("--cpu")?;
    parse_cpu_list(&placement.peer_cpu.to_string()).context("--peer-cpu")?;
    let mut settings = settings.clone();
    let peer_cpu = placement.peer_cpu;
    settings.pin_peer = Some(Arc::new(move || {
        if let Err(e) = pin_current_thread(&[peer_cpu]) {
            eprintln!("fanbench micro: {e:#}");
        }
    }));
    let every_cpu = all_cpus.clone();
    settings.pin_reference_workers = Some(Arc::new(move || {
        if let Err(e) = pin_current_thread(&every_cpu) {
            eprintln!("fanbench micro: {e:#}");
        }
    }));
    eprintln!(
        "fanbench micro: {} rows, estimated {:.0} s; benchmark thread on CPU {}, peer on CPU {}",
        rows.len(),
        settings.estimate_seconds(rows),
        placement.cpu,
        placement.peer_cpu
    );
    // The suite runs on a thread of its own, pinned, so the caller's affinity is untouched.
    let suite = std::thread::scope(|scope| {
        scope
            .spawn(|| -> anyhow::Result<fanbench_micro::SuiteRun> {
                pin_current_thread(&[placement.cpu])?;
                let mut criterion = settings
                    .configure(Criterion::default())
                    .without_plots()
                    .with_output_color(false)
                    // Criterion's own setter for where its files go; the default is ./target.
                    .output_directory(&criterion_dir);
                Ok(fanbench_micro::run(&mut criterion, rows, &settings))
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the micro suite's thread panicked"))?
    })?;
    let entries = fanbench_micro::collect(&criterion_dir, &suite);
    let git = sysinfo::git(sysinfo::source_root());
    let file = MicroFile {
        schema_version: MICRO_SCHEMA_VERSION,
        kind: "micro",
        run_id: run_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| sysinfo::run_id(started, &git)),
        started_at: sysinfo::rfc3339(started),
        finished_at: sysinfo::rfc3339(SystemTime::now()),
        command: std::env::args().collect(),
        git,
        host: sysinfo::host(),
        toolchain: sysinfo::toolchain(),
        settings: SettingsRecord {
            budget: settings.name,
            warm_up_s: settings.warm_up.as_secs_f64(),
            measurement_s: settings.measurement.as_secs_f64(),
            sample_size: settings.sample_size,
            nresamples: settings.nresamples,
            lateness_sleeps: settings.lateness_sleeps,
            cpu: placement.cpu,
            peer_cpu: placement.peer_cpu,
            criterion_version: env!("FANBENCH_CRATE_VERSION_CRITERION"),
        },
        operations: Op::ALL
            .iter()
            .map(|&op| OperationRecord {
                name: op.name(),
                description: op.description(),
                element: op.element(),
                elements_per_iteration: op.elements(),
                tokio_reference: op.has_tokio_reference() && settings.tokio_reference,
            })
            .collect(),
        runtimes: rows.iter().map(|r| r.name().to_string()).collect(),
        entries,
        timer_lateness: suite.lateness,
    };
    let path = run_dir.join(MICRO_FILE);
    let json = serde_json::to_vec_pretty(&file).context("serializing micro.json")?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, json).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    if !keep_criterion {
        std::fs::remove_dir_all(&criterion_dir)
            .with_context(|| format!("removing {}", criterion_dir.display()))?;
    }
    print_table(&file);
    Ok(path)
}

/// One line per (operation, runtime): the cost per element with its interval.
fn print_table(file: &MicroFile) {
    let width = file
        .entries
        .iter()
        .map(|e| e.runtime.len())
        .max()
        .unwrap_or(0);
    for op in &file.operations {
        eprintln!("{} (per {}):", op.name, op.element);
        for e in file.entries.iter().filter(|e| e.operation == op.name) {
            match (&e.estimate, &e.absent_reason) {
                (Some(est), _) => eprintln!(
                    "  {:<width$}  {:>10}  [{} .. {}]",
                    e.runtime,
                    fmt_ns(est.per_element_ns),
                    fmt_ns(est.per_element_ci_ns[0]),
                    fmt_ns(est.per_element_ci_ns[1]),
                ),
                (None, reason) => eprintln!(
                    "  {:<width$}  no result: {}",
                    e.runtime,
                    reason.as_deref().unwrap_or("unknown")
                ),
            }
        }
    }
    eprintln!("sleep(1 ms) lateness:");
    for l in &file.timer_lateness {
        match (&l.lateness, &l.absent_reason) {
            (Some(s), _) => eprintln!("  {:<width$}  {}", l.runtime, fmt_lateness(s)),
            (None, reason) => eprintln!(
                "  {:<width$}  no result: {}",
                l.runtime,
                reason.as_deref().unwrap_or("unknown")
            ),
        }
    }
}

fn fmt_lateness(s: &LatenessSummary) -> String {
    format!(
        "p50 {:.0} us, p90 {:.0} us, p99 {:.0} us, max {:.0} us ({} sleeps{})",
        s.p50_us,
        s.p90_us,
        s.p99_us,
        s.max_us,
        s.sleeps,
        if s.early > 0 {
            format!(", {} early", s.early)
        } else {
            String::new()
        }
    )
}

/// A duration in nanoseconds with a unit that keeps 3 significant digits readable.
fn fmt_ns(ns: f64) -> String {
    if !ns.is_finite() {
        "n/a".to_string()
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} us", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_runtime_row_but_floor_is_a_micro_row_of_the_same_name() {
        for &row in RuntimeRow::ALL {
            match micro_row(row) {
                Ok(micro) => assert_eq!(micro.name(), row.name()),
                Err(reason) => {
                    assert_eq!(row, RuntimeRow::Floor);
                    assert!(reason.contains("no runtime"));
                }
            }
        }
        assert_eq!(rows(None).unwrap().len(), MicroRow::ALL.len());
        let err = rows(Some(&["floor".to_string()])).unwrap_err();
        assert!(err.to_string().contains("no runtime trait"), "{err}");
    }

    #[test]
    fn nats_server_and_unknown_names_are_refused_with_a_reason() {
        let err = rows(Some(&["nats-server".to_string()])).unwrap_err();
        assert!(err.to_string().contains("not a runtime"), "{err}");
        let err = rows(Some(&["nope".to_string()])).unwrap_err();
        assert!(err.to_string().contains("unknown runtime"), "{err}");
        assert!(rows(Some(&[])).is_err());
        assert_eq!(
            rows(Some(&[" tokio".to_string()])).unwrap(),
            vec![MicroRow::Tokio]
        );
    }

    #[test]
    fn durations_keep_their_unit() {
        assert_eq!(fmt_ns(12.34), "12.3 ns");
        assert_eq!(fmt_ns(4_560.0), "4.56 us");
        assert_eq!(fmt_ns(1_234_567.0), "1.23 ms");
        assert_eq!(fmt_ns(f64::NAN), "n/a");
    }
}
