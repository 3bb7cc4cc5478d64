//! Measuring one (scenario, row) pair: start the server pinned, run every repetition
//! against it, stop it, and assemble the result with its summary.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::Context;

use super::placement::Placement;
use super::record;
use super::row::Row;
use crate::interrupt::{self, Interrupted};
use crate::loadgen::{self, LoadSpec};
use crate::metrics::{Counting, ServerSampler};
use crate::results::schema::{
    Measured, Repetition, RuntimeConfig, RuntimeKind, Scenario, ScenarioResult,
};
use crate::results::summary::summarize;
use crate::server_proc::{free_local_addr, ServerDied, ServerProcess, STOP_TIMEOUT};
use crate::sysinfo;

/// Why a measurement failed: the server never came up (the row is unavailable), something
/// broke while measuring (a server that died has a [`ServerDied`] in the chain), or the
/// harness was told to stop.
#[derive(Debug)]
pub enum MeasureError {
    Start(anyhow::Error),
    Run(anyhow::Error),
    /// Told to stop (SIGINT/SIGTERM): the repetitions completed before it, if any, as a
    /// result with fewer repetitions than the scenario asked for.
    Interrupted {
        by: Interrupted,
        completed: Option<Box<ScenarioResult>>,
    },
}

impl std::fmt::Display for MeasureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MeasureError::Start(e) => write!(f, "server did not start: {e:#}"),
            MeasureError::Run(e) => write!(f, "{e:#}"),
            MeasureError::Interrupted { by, .. } => write!(f, "{by}"),
        }
    }
}

impl std::error::Error for MeasureError {}

/// Starts `row` pinned per `placement`, runs every repetition of `scenario` against it, stops
/// it, and returns the result. `log_dir` receives the server's output and `--stats-out` file.
/// `on_repetition` is called after each repetition (progress).
pub fn measure(
    row: Row,
    scenario: &Scenario,
    placement: &Placement,
    log_dir: &Path,
    on_repetition: &mut dyn FnMut(u32),
) -> Result<ScenarioResult, MeasureError> {
    std::fs::create_dir_all(log_dir)
        .with_context(|| format!("creating {}", log_dir.display()))
        .map_err(MeasureError::Start)?;
    let stem = format!("{}.{}", scenario.name, row.name());
    let stats_path = log_dir.join(format!("{stem}.stats.json"));
    let _ = std::fs::remove_file(&stats_path);
    let addr = free_local_addr().map_err(MeasureError::Start)?;
    let cmd = row
        .command(placement, addr, &stats_path, scenario.coalesce_us)
        .map_err(MeasureError::Start)?;
    let mut server = ServerProcess::start(&cmd, &log_dir.join(format!("{stem}.log")))
        .map_err(MeasureError::Start)?;
    let pid = server.pid();
    let runtime_config = runtime_config(row, placement, &cmd, addr, pid);
    let (reps, outcome) = run_repetitions(
        scenario,
        addr,
        Some(pid),
        &placement.client_cpus,
        Some(placement.cpus_used(row).len()),
        Some(&mut server),
        placement.server_counters,
        on_repetition,
    );
    let log_tail = server.log_tail(2048);
    let stopped = server.stop(STOP_TIMEOUT);
    let server_stats = server_stats(row, stopped, &stats_path);
    if let Err(err) = outcome {
        // The interrupt handler stops the servers, so whatever broke after a signal broke
        // because of it.
        if let Some(by) = interrupt::in_chain(&err).or_else(interrupt::received) {
            let completed = (!reps.is_empty())
                .then(|| assemble_result(scenario, runtime_config, reps, server_stats).ok())
                .flatten()
                .map(Box::new);
            return Err(MeasureError::Interrupted { by, completed });
        }
        if err.chain().any(|e| e.is::<ServerDied>()) {
            return Err(MeasureError::Run(err));
        }
        return Err(MeasureError::Run(
            err.context(format!("server output (tail):\n{log_tail}")),
        ));
    }
    assemble_result(scenario, runtime_config, reps, server_stats).map_err(MeasureError::Run)
}

/// What the results record of a server this harness started: `row` run as `cmd` at `addr`,
/// placed per `placement`.
pub(super) fn runtime_config(
    row: Row,
    placement: &Placement,
    cmd: &crate::server_proc::ServerCommand,
    addr: SocketAddr,
    pid: u32,
) -> RuntimeConfig {
    RuntimeConfig {
        name: row.name().to_string(),
        kind: row.kind(),
        command: cmd.argv(),
        env: cmd.env.clone(),
        target: addr.to_string(),
        server_cpus: Some(placement.server_cpus.clone()),
        client_cpus: placement.client_cpus.clone(),
        server_pid: Some(pid),
        uring_policy: row.is_uring().then(|| {
            placement
                .uring_policy
                .unwrap_or(fanbench_uring::DEFAULT_POLICY)
                .to_string()
        }),
        cpus_used: Some(placement.cpus_used(row)),
    }
}

/// The row's own counters (`--stats-out`), or why there are none.
pub(super) fn server_stats(
    row: Row,
    stopped: anyhow::Result<crate::server_proc::Stopped>,
    stats_path: &Path,
) -> Measured<serde_json::Value> {
    match (row, stopped) {
        (Row::NatsServer, _) => Measured::null("nats-server has no --stats-out counters"),
        (Row::Fanbench(_), Err(e)) => Measured::null(format!("stopping the server: {e:#}")),
        (Row::Fanbench(_), Ok(stopped)) if stopped.killed => Measured::null(format!(
            "server did not exit within {STOP_TIMEOUT:?} of SIGTERM and was killed"
        )),
        (Row::Fanbench(_), Ok(stopped)) if !stopped.status.success() => Measured::null(format!(
            "server exited with {} after SIGTERM",
            stopped.status
        )),
        (Row::Fanbench(_), Ok(_)) => read_stats(stats_path).map_err(|e| format!("{e:#}")).into(),
    }
}

fn read_stats(path: &Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("server wrote no --stats-out file at {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Measures an external server: no start/stop, server metrics only with its pid.
pub fn measure_external(
    label: &str,
    target: SocketAddr,
    pid: Option<u32>,
    scenario: &Scenario,
    client_cpus: &[usize],
    counting: Counting,
) -> anyhow::Result<ScenarioResult> {
    crate::server_proc::probe_info(target)
        .with_context(|| format!("external server {label} at {target}"))?;
    let runtime_config = RuntimeConfig {
        name: label.to_string(),
        kind: RuntimeKind::External,
        command: Vec::new(),
        env: BTreeMap::new(),
        target: target.to_string(),
        server_cpus: None,
        client_cpus: client_cpus.to_vec(),
        server_pid: pid,
        uring_policy: None,
        cpus_used: None,
    };
    let (reps, outcome) = run_repetitions(
        scenario,
        target,
        pid,
        client_cpus,
        None,
        None,
        counting,
        &mut |_| {},
    );
    outcome?;
    assemble_result(
        scenario,
        runtime_config,
        reps,
        Measured::null("external server: its own counters are not collected"),
    )
}

pub(super) fn assemble_result(
    scenario: &Scenario,
    runtime_config: RuntimeConfig,
    repetitions: Vec<Repetition>,
    server_stats: Measured<serde_json::Value>,
) -> anyhow::Result<ScenarioResult> {
    let summary = summarize(&repetitions)?;
    let invalid_reasons: Vec<String> = repetitions
        .iter()
        .flat_map(|r| {
            r.invalid_reasons
                .iter()
                .map(move |why| format!("rep {}: {why}", r.index))
        })
        .collect();
    Ok(ScenarioResult {
        scenario: scenario.name.clone(),
        runtime: runtime_config.name.clone(),
        scenario_config: scenario.clone(),
        runtime_config,
        valid: repetitions.iter().all(|r| r.valid),
        invalid_reasons,
        repetitions,
        summary,
        server_stats,
    })
}

#[allow(clippy::too_many_arguments)]
pub(super) fn run_repetitions(
    scenario: &Scenario,
    target: SocketAddr,
    pid: Option<u32>,
    client_cpus: &[usize],
    server_cores: Option<usize>,
    server: Option<&mut ServerProcess>,
    counting: Counting,
    on_repetition: &mut dyn FnMut(u32),
) -> (Vec<Repetition>, anyhow::Result<()>) {
    let mut reps = Vec::new();
    let outcome = repeat(
        scenario,
        target,
        pid,
        client_cpus,
        server_cores,
        server,
        counting,
        on_repetition,
        &mut reps,
    );
    (reps, outcome)
}

/// Every repetition into `reps`, stopping at the first error: the repetitions completed
/// before it stay in `reps`.
#[allow(clippy::too_many_arguments)]
fn repeat(
    scenario: &Scenario,
    target: SocketAddr,
    pid: Option<u32>,
    client_cpus: &[usize],
    server_cores: Option<usize>,
    mut server: Option<&mut ServerProcess>,
    counting: Counting,
    on_repetition: &mut dyn FnMut(u32),
    reps: &mut Vec<Repetition>,
) -> anyhow::Result<()> {
    let spec = LoadSpec {
        target,
        publishers: scenario.publishers,
        subscribers_per_publisher: scenario.subscribers_per_publisher,
        rate_per_publisher: scenario.rate_per_publisher,
        payload_bytes: scenario.payload_bytes,
        warmup: Duration::try_from_secs_f64(scenario.warmup_s).context("warm-up")?,
        duration: Duration::try_from_secs_f64(scenario.duration_s).context("duration")?,
        slow_subscribers: scenario.slow_subscribers,
        slow_read_bytes_per_s: scenario.slow_read_bytes_per_s,
        client_cpus: client_cpus.to_vec(),
    };
    for index in 0..scenario.repetitions {
        interrupt::check()?;
        let started_at = sysinfo::rfc3339(SystemTime::now());
        let mut sampler = match pid {
            Some(pid) => ServerSampler::new(pid, counting, spec.duration),
            None => ServerSampler::without_pid(
                "server pid unknown (external --target without --server-pid)",
            ),
        };
        let report = loadgen::run(&spec, &mut sampler);
        // A server that died explains whatever the load generator saw, so it comes first.
        if let Some(death) = server.as_deref_mut().and_then(|s| s.death()) {
            return Err(anyhow::Error::new(death))
                .with_context(|| format!("repetition {index} of {}", scenario.name));
        }
        let report = report.with_context(|| format!("repetition {index} of {}", scenario.name))?;
        // A repetition a signal reached is not kept: its servers were being stopped and its
        // drain was cut short.
        interrupt::check()?;
        let (server_metrics, server_headline) = sampler.finish(&report);
        reps.push(record::repetition(
            index,
            started_at,
            &report,
            server_metrics,
            server_headline,
            record::RepetitionPlacement {
                client_cpus,
                server_cores,
                payload_bytes: scenario.payload_bytes,
            },
        )?);
        on_repetition(index);
    }
    Ok(())
}
