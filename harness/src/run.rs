//! `fanbench run`: measure one workload on one server (a runtime row we start, `nats-server`,
//! or an external `--target`) and write a results file. The measuring itself is
//! [`crate::measure`], shared with `sweep` and `bench-all`.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{anyhow, bail, Context};

use crate::measure::{measure, measure_external, MeasureError, PlacementArgs, Row};
use crate::results::provenance::new_results_file;
use crate::results::schema::{RuntimeInfo, RuntimeKind};
use crate::results::terminal::print_result;
use crate::results::write::write_results;
use crate::sysinfo;
use crate::workload::{self, WorkloadOverrides};

/// Options of `fanbench run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The load generator's calibration to read results against (the file `fanbench
    /// calibrate --out` writes, or a bench-all results.json); without it results carry no
    /// headroom.
    #[arg(long, value_name = "FILE")]
    pub calibration: Option<std::path::PathBuf>,
    /// Runtime row to start and measure (`fanbench runtimes`), or `nats-server`.
    #[arg(long, required_unless_present = "target", conflicts_with = "target")]
    pub runtime: Option<String>,
    /// Measure an already running server at HOST:PORT instead of starting one.
    #[arg(long, requires = "label")]
    pub target: Option<String>,
    /// Name of the external server in the results (required with --target).
    #[arg(long)]
    pub label: Option<String>,
    /// Pid of the external server, so its CPU, RSS and syscalls can be measured (with --target).
    #[arg(long, requires = "target")]
    pub server_pid: Option<u32>,
    /// Generate the load with an agent started by this shell command (`sh -c`), e.g.
    /// `'ssh -T load1 fanbench agent --stdio'`; repeat for several agents. Publishers run on
    /// the first, subscribers are split over all (with --target).
    #[arg(long, value_name = "CMD", requires = "target")]
    pub agent: Vec<String>,
    /// Workload: a name from the workloads directory, or a TOML file.
    #[arg(long, default_value = "seed-5x5")]
    pub workload: String,
    #[command(flatten)]
    pub overrides: WorkloadOverrides,
    #[command(flatten)]
    pub placement: PlacementArgs,
    /// Results file to write (default: results/<run-id>/results.json).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `fanbench run`. Interrupted (SIGINT, SIGTERM, SIGHUP), it stops the server, writes the
/// repetitions completed so far (flagged partial) and returns the interruption.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.calibration {
        crate::measure::instrument::load_calibration(path)?;
    }
    crate::interrupt::install()?;
    let dir = workload::workloads_dir(args.overrides.workloads_dir.as_deref());
    let scenario = args
        .overrides
        .apply(workload::load(&args.workload, &dir)?)?;
    let placement = args.placement.resolve()?;
    let started = SystemTime::now();

    let (result, runtime_info, out) = match (&args.runtime, &args.target) {
        (Some(name), None) => {
            let row = Row::named(name)?;
            let info = row.info(&placement);
            if let Some(reason) = &info.unavailable_reason {
                bail!("runtime {name} is unavailable: {reason}");
            }
            let mut file = new_results_file(started, vec![info.clone()]);
            let out = output_path(args.out.as_deref(), &file.run_id);
            let log_dir = out
                .parent()
                .map(|d| d.join("logs"))
                .unwrap_or_else(|| PathBuf::from("logs"));
            let measured = measure(row, &scenario, &placement, &log_dir, &mut |i| {
                eprintln!("fanbench: {} on {name}: repetition {i} done", scenario.name)
            });
            let result = match measured {
                Ok(result) => result,
                Err(MeasureError::Interrupted { by, completed }) => {
                    file.results.extend(completed.map(|r| *r));
                    file.interrupted_by = Some(by.signal_name());
                    file.finished_at = Some(sysinfo::rfc3339(SystemTime::now()));
                    write_results(&out, &file)?;
                    eprintln!(
                        "fanbench: {by}: {} repetition(s) completed, written (partial) to {}",
                        file.results.first().map_or(0, |r| r.repetitions.len()),
                        out.display()
                    );
                    return Err(by.into());
                }
                Err(err) => return Err(err.into()),
            };
            file.results.push(result.clone());
            file.finished_at = Some(sysinfo::rfc3339(SystemTime::now()));
            file.partial = false;
            write_results(&out, &file)?;
            (result, info, out)
        }
        (None, Some(target)) => {
            let label = args
                .label
                .as_deref()
                .ok_or_else(|| anyhow!("--target needs --label NAME"))?;
            let addr = resolve_target(target)?;
            if !args.agent.is_empty() {
                return run_with_agents(label, addr, &scenario, &args, started);
            }
            let info = RuntimeInfo {
                name: label.to_string(),
                kind: RuntimeKind::External,
                versions: BTreeMap::new(),
                available: true,
                unavailable_reason: None,
            };
            let mut file = new_results_file(started, vec![info.clone()]);
            let out = output_path(args.out.as_deref(), &file.run_id);
            let result = measure_external(
                label,
                addr,
                args.server_pid,
                &scenario,
                &placement.client_cpus,
                placement.server_counters,
            )?;
            file.results.push(result.clone());
            file.finished_at = Some(sysinfo::rfc3339(SystemTime::now()));
            file.partial = false;
            write_results(&out, &file)?;
            (result, info, out)
        }
        _ => bail!("give exactly one of --runtime NAME or --target HOST:PORT"),
    };
    print_result(&result);
    eprintln!(
        "fanbench: {} results written to {}",
        runtime_info.name,
        out.display()
    );
    Ok(())
}

/// `fanbench run --target ... --agent CMD ...`: the load from agents; what was measured is
/// written even when an agent fails (flagged partial), and the failure is the command's error.
fn run_with_agents(
    label: &str,
    addr: SocketAddr,
    scenario: &crate::results::schema::Scenario,
    args: &RunArgs,
    started: SystemTime,
) -> anyhow::Result<()> {
    let info = RuntimeInfo {
        name: label.to_string(),
        kind: RuntimeKind::External,
        versions: BTreeMap::new(),
        available: true,
        unavailable_reason: None,
    };
    let mut file = new_results_file(started, vec![info]);
    let out = output_path(args.out.as_deref(), &file.run_id);
    let run = crate::agent::controller::measure_with_agents(label, addr, scenario, &args.agent);
    let measured = run.result.is_some() || run.section.agents.iter().any(|a| a.fanbench.is_some());
    if let Some(result) = &run.result {
        print_result(result);
        file.results.push(result.clone());
    }
    file.agents = Some(run.section);
    file.finished_at = Some(sysinfo::rfc3339(SystemTime::now()));
    if measured {
        write_results(&out, &file)?;
        let partial = if run.failure.is_some() {
            " (partial)"
        } else {
            ""
        };
        eprintln!(
            "fanbench: {label} results{partial} written to {}",
            out.display()
        );
    }
    match run.failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn resolve_target(target: &str) -> anyhow::Result<SocketAddr> {
    target
        .to_socket_addrs()
        .with_context(|| format!("--target {target:?} is not HOST:PORT"))?
        .next()
        .ok_or_else(|| anyhow!("--target {target:?} resolves to no address"))
}

/// `--out FILE`, else `results/<run-id>/results.json`.
pub fn output_path(out: Option<&Path>, run_id: &str) -> PathBuf {
    match out {
        Some(path) => path.to_path_buf(),
        None => Path::new("results").join(run_id).join("results.json"),
    }
}
