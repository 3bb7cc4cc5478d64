//! `fanbench run`: measure one workload on one server (a runtime row we start, `nats-server`,
//! or an external `--target`) and write a results file.
//!
//! Also the measuring core shared with `bench-all`: [`Row`] (what to start and how),
//! [`Placement`] (CPU sets), and [`measure`] (start, repetitions, stop, collect).

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context};

use crate::cpus::parse_cpu_list;
use crate::loadgen::{self, LoadReport, LoadSpec};
use crate::metrics::{ServerHeadline, ServerSampler, NOTHING_DELIVERED};
use crate::results::schema::{
    Headline, Histograms, LoadGenerator, Percentiles, Repetition, ResultsFile, RuntimeConfig,
    RuntimeInfo, RuntimeKind, Scenario, ScenarioResult, SlowSubscribers, WindowStats,
    SCHEMA_VERSION,
};
use crate::results::write::{
    percentiles_us_from_ns, serialize_histogram, summarize, write_results,
};
use crate::runtimes::{self, RuntimeRow};
use crate::server_proc::{free_local_addr, ServerCommand, ServerProcess, STOP_TIMEOUT};
use crate::sysinfo;
use crate::workload::{self, WorkloadOverrides};

/// Name of the built-in reference-server row.
pub const NATS_SERVER: &str = "nats-server";

/// Options of `fanbench run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
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

/// Where the server and the load generator run.
#[derive(Debug, Clone, clap::Args)]
pub struct PlacementArgs {
    /// CPUs of the server under test (the whole process is confined to them), e.g. `0`, `0-1`.
    #[arg(long, default_value = "0")]
    pub server_cpus: String,
    /// CPUs of the load generator's threads (default: every CPU the server does not use).
    #[arg(long)]
    pub client_cpus: Option<String>,
    /// Server threads for our rows, GOMAXPROCS for nats-server (default: one per server CPU).
    #[arg(long)]
    pub server_threads: Option<usize>,
    /// The nats-server executable used for the nats-server row.
    #[arg(long, default_value = NATS_SERVER)]
    pub nats_server_bin: PathBuf,
}

/// Resolved CPU sets.
#[derive(Debug, Clone)]
pub struct Placement {
    pub server_cpus: Vec<usize>,
    pub client_cpus: Vec<usize>,
    pub server_threads: usize,
    pub nats_server_bin: PathBuf,
}

impl PlacementArgs {
    pub fn resolve(&self) -> anyhow::Result<Placement> {
        let server_cpus = parse_cpu_list(&self.server_cpus).context("--server-cpus")?;
        let client_cpus = match &self.client_cpus {
            Some(list) => parse_cpu_list(list).context("--client-cpus")?,
            None => {
                let rest: Vec<usize> = (0..sysinfo::online_cpus())
                    .filter(|c| !server_cpus.contains(c))
                    .collect();
                if rest.is_empty() {
                    bail!(
                        "no CPU is left for the load generator after --server-cpus {}; give \
                         --client-cpus explicitly (sharing CPUs with the server skews results)",
                        self.server_cpus
                    );
                }
                rest
            }
        };
        if let Some(shared) = client_cpus.iter().find(|c| server_cpus.contains(c)) {
            eprintln!(
                "fanbench: warning: CPU {shared} is used by both the server and the load \
                 generator; results will include their interference"
            );
        }
        let server_threads = self.server_threads.unwrap_or(server_cpus.len());
        if server_threads == 0 {
            bail!("--server-threads must be at least 1");
        }
        Ok(Placement {
            server_cpus,
            client_cpus,
            server_threads,
            nats_server_bin: self.nats_server_bin.clone(),
        })
    }
}

/// A server we know how to start.
#[derive(Debug, Clone, Copy)]
pub enum Row {
    /// Our broker on a runtime (`fanbench serve --runtime NAME`).
    Fanbench(&'static RuntimeRow),
    /// The reference nats-server.
    NatsServer,
}

impl Row {
    pub fn named(name: &str) -> anyhow::Result<Row> {
        if name == NATS_SERVER {
            return Ok(Row::NatsServer);
        }
        runtimes::find(name).map(Row::Fanbench).ok_or_else(|| {
            anyhow!(
                "unknown runtime {name:?}; known: {}, {NATS_SERVER}",
                runtimes::names().join(", ")
            )
        })
    }

    /// Every row: ours (from the runtime registry), then nats-server.
    pub fn all() -> Vec<Row> {
        runtimes::ROWS
            .iter()
            .map(Row::Fanbench)
            .chain(std::iter::once(Row::NatsServer))
            .collect()
    }

    pub fn name(&self) -> &'static str {
        match self {
            Row::Fanbench(row) => row.name,
            Row::NatsServer => NATS_SERVER,
        }
    }

    pub fn kind(&self) -> RuntimeKind {
        match self {
            Row::Fanbench(_) => RuntimeKind::Fanbench,
            Row::NatsServer => RuntimeKind::Reference,
        }
    }

    /// Provenance for the results, or why the row cannot run here.
    pub fn info(&self, placement: &Placement) -> RuntimeInfo {
        let (versions, unavailable) = match self {
            Row::Fanbench(row) => (
                BTreeMap::from([
                    (row.crate_name.to_string(), row.crate_version.to_string()),
                    (
                        "fanbench".to_string(),
                        env!("CARGO_PKG_VERSION").to_string(),
                    ),
                ]),
                None,
            ),
            Row::NatsServer => match nats_server_version(&placement.nats_server_bin) {
                Ok(version) => (BTreeMap::from([(NATS_SERVER.to_string(), version)]), None),
                Err(reason) => (BTreeMap::new(), Some(reason)),
            },
        };
        RuntimeInfo {
            name: self.name().to_string(),
            kind: self.kind(),
            versions,
            available: unavailable.is_none(),
            unavailable_reason: unavailable,
        }
    }

    fn command(
        &self,
        placement: &Placement,
        addr: SocketAddr,
        stats_out: &Path,
    ) -> anyhow::Result<ServerCommand> {
        let cpu_list = placement
            .server_cpus
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",");
        Ok(match self {
            Row::Fanbench(row) => ServerCommand {
                // The running binary itself, even if a rebuild has replaced the file since
                // it started (a long bench-all would otherwise start a different build, or
                // fail on a deleted path): after fork, the child's /proc/self/exe is this
                // process's executable.
                program: PathBuf::from("/proc/self/exe"),
                shown_as: Some(
                    std::env::current_exe()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|_| "fanbench".into()),
                ),
                args: vec![
                    "serve".into(),
                    "--runtime".into(),
                    row.name.into(),
                    "--addr".into(),
                    addr.to_string(),
                    "--threads".into(),
                    placement.server_threads.to_string(),
                    "--cpus".into(),
                    cpu_list,
                    "--stats-out".into(),
                    stats_out.display().to_string(),
                ],
                env: BTreeMap::new(),
                cpus: placement.server_cpus.clone(),
                addr,
            },
            Row::NatsServer => ServerCommand {
                program: placement.nats_server_bin.clone(),
                shown_as: None,
                args: vec![
                    "-a".into(),
                    addr.ip().to_string(),
                    "-p".into(),
                    addr.port().to_string(),
                ],
                env: BTreeMap::from([(
                    "GOMAXPROCS".to_string(),
                    placement.server_threads.to_string(),
                )]),
                cpus: placement.server_cpus.clone(),
                addr,
            },
        })
    }
}

/// `nats-server --version`, or why it cannot be run.
fn nats_server_version(bin: &Path) -> Result<String, String> {
    let out = std::process::Command::new(bin)
        .arg("--version")
        .output()
        .map_err(|e| {
            format!(
                "{} is not installed or not runnable ({e}); install it with `apt-get install \
                 nats-server` or pass --nats-server-bin",
                bin.display()
            )
        })?;
    if !out.status.success() {
        return Err(format!(
            "`{} --version` exited with {}",
            bin.display(),
            out.status
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // "nats-server: v2.9.10"
    Ok(text
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or(text.trim())
        .to_string())
}

/// Why a measurement failed: the server never came up (the row is unavailable), or something
/// broke while measuring.
#[derive(Debug)]
pub enum MeasureError {
    Start(anyhow::Error),
    Run(anyhow::Error),
}

impl std::fmt::Display for MeasureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MeasureError::Start(e) => write!(f, "server did not start: {e:#}"),
            MeasureError::Run(e) => write!(f, "{e:#}"),
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
        .command(placement, addr, &stats_path)
        .map_err(MeasureError::Start)?;
    let mut server = ServerProcess::start(&cmd, &log_dir.join(format!("{stem}.log")))
        .map_err(MeasureError::Start)?;
    let pid = server.pid();
    let runtime_config = RuntimeConfig {
        name: row.name().to_string(),
        kind: row.kind(),
        command: cmd.argv(),
        env: cmd.env.clone(),
        target: addr.to_string(),
        server_cpus: Some(placement.server_cpus.clone()),
        client_cpus: placement.client_cpus.clone(),
        server_pid: Some(pid),
    };
    let reps = run_repetitions(
        scenario,
        addr,
        Some(pid),
        &placement.client_cpus,
        Some(&mut server),
        on_repetition,
    );
    let log_tail = server.log_tail(2048);
    let stopped = server.stop(STOP_TIMEOUT);
    let reps = reps
        .map_err(|e| MeasureError::Run(e.context(format!("server output (tail):\n{log_tail}"))))?;
    let (server_stats, server_stats_null_reason) = match (row, stopped) {
        (Row::NatsServer, _) => (
            None,
            Some("nats-server has no --stats-out counters".to_string()),
        ),
        (Row::Fanbench(_), Err(e)) => (None, Some(format!("stopping the server: {e:#}"))),
        (Row::Fanbench(_), Ok(stopped)) if stopped.killed => (
            None,
            Some(format!(
                "server did not exit within {STOP_TIMEOUT:?} of SIGTERM and was killed"
            )),
        ),
        (Row::Fanbench(_), Ok(stopped)) if !stopped.status.success() => (
            None,
            Some(format!(
                "server exited with {} after SIGTERM",
                stopped.status
            )),
        ),
        (Row::Fanbench(_), Ok(_)) => match read_stats(&stats_path) {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(format!("{e:#}"))),
        },
    };
    assemble_result(
        scenario,
        runtime_config,
        reps,
        server_stats,
        server_stats_null_reason,
    )
    .map_err(MeasureError::Run)
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
    };
    let reps = run_repetitions(scenario, target, pid, client_cpus, None, &mut |_| {})?;
    assemble_result(
        scenario,
        runtime_config,
        reps,
        None,
        Some("external server: its own counters are not collected".into()),
    )
}

fn assemble_result(
    scenario: &Scenario,
    runtime_config: RuntimeConfig,
    repetitions: Vec<Repetition>,
    server_stats: Option<serde_json::Value>,
    server_stats_null_reason: Option<String>,
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
        server_stats_null_reason,
    })
}

fn run_repetitions(
    scenario: &Scenario,
    target: SocketAddr,
    pid: Option<u32>,
    client_cpus: &[usize],
    mut server: Option<&mut ServerProcess>,
    on_repetition: &mut dyn FnMut(u32),
) -> anyhow::Result<Vec<Repetition>> {
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
    let mut reps = Vec::new();
    for index in 0..scenario.repetitions {
        let started_at = sysinfo::rfc3339(SystemTime::now());
        let mut sampler = match pid {
            Some(pid) => ServerSampler::new(pid),
            None => ServerSampler::without_pid(
                "server pid unknown (external --target without --server-pid)",
            ),
        };
        let report = loadgen::run(&spec, &mut sampler)
            .with_context(|| format!("repetition {index} of {}", scenario.name))?;
        let (server_metrics, server_headline) = sampler.finish(report.delivered);
        if let Some(server) = server.as_deref_mut() {
            if let Some(status) = server.exit_status()? {
                bail!("the server exited during repetition {index} ({status})");
            }
        }
        reps.push(repetition(
            index,
            started_at,
            &report,
            server_metrics,
            server_headline,
            client_cpus,
        )?);
        on_repetition(index);
    }
    Ok(reps)
}

/// Why a repetition is invalid (empty: valid).
pub fn invalid_reasons(report: &LoadReport) -> Vec<String> {
    let mut reasons = Vec::new();
    if report.behind_schedule {
        reasons.push(format!(
            "load generator behind schedule (pacing lag p99 {:.0} us, max {:.0} us)",
            report.pacing_lag.value_at_quantile(0.99) as f64 / 1000.0,
            report.max_pacing_lag_ns as f64 / 1000.0
        ));
    }
    let cpu = &report.loadgen_cpu;
    if cpu.saturated {
        let busiest = match (&cpu.busiest_thread, cpu.busiest_thread_utilisation) {
            (Some(name), Some(u)) => format!(", busiest thread {name} at {:.0}%", u * 100.0),
            _ => String::new(),
        };
        reasons.push(format!(
            "load generator CPU saturated ({:.0}% of {} cores{busiest})",
            cpu.utilisation * 100.0,
            cpu.cores
        ));
    }
    if report.lost > 0 {
        reasons.push(format!(
            "healthy subscribers lost {} of {} messages ({} subscribers affected)",
            report.lost, report.expected, report.subscribers_with_loss
        ));
    }
    if report.expected == 0 {
        reasons.push("no message was due in the measured window".into());
    }
    reasons
}

fn repetition(
    index: u32,
    started_at: String,
    report: &LoadReport,
    server: crate::results::schema::ServerMetrics,
    s: ServerHeadline,
    client_cpus: &[usize],
) -> anyhow::Result<Repetition> {
    let window_s = report.window_ns as f64 / 1e9;
    let us = |ns: u64| ns as f64 / 1000.0;
    let invalid = invalid_reasons(report);
    let cpu = &report.loadgen_cpu;
    Ok(Repetition {
        index,
        started_at,
        valid: invalid.is_empty(),
        invalid_reasons: invalid,
        window_s,
        headline: Headline {
            throughput_msgs_per_s: if window_s > 0.0 {
                report.delivered as f64 / window_s
            } else {
                0.0
            },
            latency_us: percentiles_us_from_ns(&report.latency),
            latency_us_null_reason: report
                .latency
                .is_empty()
                .then(|| NOTHING_DELIVERED.to_string()),
            service_latency_us: percentiles_us_from_ns(&report.service_latency),
            service_latency_us_null_reason: report
                .service_latency
                .is_empty()
                .then(|| NOTHING_DELIVERED.to_string()),
            pacing_lag_us: percentiles_us_from_ns(&report.pacing_lag),
            pacing_lag_us_null_reason: report
                .pacing_lag
                .is_empty()
                .then(|| "no message was sent in the window".to_string()),
            delivered: report.delivered,
            expected: report.expected,
            lost: report.lost,
            syscalls_per_msg: s.syscalls_per_msg,
            syscalls_per_msg_null_reason: s.syscalls_per_msg_null_reason,
            sqes_per_msg: s.sqes_per_msg,
            sqes_per_msg_null_reason: s.sqes_per_msg_null_reason,
            server_cpu_us_per_msg: s.server_cpu_us_per_msg,
            server_cpu_us_per_msg_null_reason: s.server_cpu_us_per_msg_null_reason,
            server_peak_rss_bytes: s.server_peak_rss_bytes,
            server_peak_rss_bytes_null_reason: s.server_peak_rss_bytes_null_reason,
        },
        sent: report.sent,
        duplicates: report.duplicates,
        reordered: report.reordered,
        histograms: Histograms {
            unit: "ns".into(),
            latency: serialize_histogram(&report.latency)?,
            service_latency: serialize_histogram(&report.service_latency)?,
            pacing_lag: serialize_histogram(&report.pacing_lag)?,
        },
        windows: report
            .windows
            .iter()
            .map(|w| WindowStats {
                second: w.index,
                length_s: w.length_ns as f64 / 1e9,
                sent: w.sent,
                expected: w.expected,
                delivered: w.delivered,
                latency_p50_us: w.latency_p50_ns.map(us),
                latency_p99_us: w.latency_p99_ns.map(us),
                latency_max_us: w.latency_max_ns.map(us),
            })
            .collect(),
        slow_subscribers: SlowSubscribers {
            count: report.slow.subscribers,
            read_bytes_per_s: report.slow.read_bytes_per_s,
            bytes_read: report.slow.bytes_read,
            bytes_drained_at_end: report.slow.bytes_drained_at_end,
            messages: report.slow.messages,
            messages_in_window: report.slow.messages_in_window,
            cut_as_slow_consumer: report.slow.cut_as_slow_consumer,
            closed_by_server: report.slow.closed_by_server,
            max_latency_us: report.slow.max_latency_ns.map(us),
        },
        load_generator: LoadGenerator {
            cpus: client_cpus.to_vec(),
            behind_schedule: report.behind_schedule,
            max_pacing_lag_us: us(report.max_pacing_lag_ns),
            pacer_priority: report.pacer_priority.clone(),
            cpu_user_s: cpu.user_s,
            cpu_sys_s: cpu.sys_s,
            utilisation: cpu.utilisation,
            busiest_thread_utilisation: cpu.busiest_thread_utilisation,
            busiest_thread: cpu.busiest_thread.clone(),
            busiest_thread_null_reason: cpu.thread_cpu_null_reason.clone(),
            saturated: cpu.saturated,
            subscribers_with_loss: report.subscribers_with_loss,
            grace_s: report.grace_ns as f64 / 1e9,
        },
        server,
        errors: report.errors.clone(),
    })
}

/// Provenance shared by `run` and `bench-all`.
pub fn new_results_file(started: SystemTime, runtimes: Vec<RuntimeInfo>) -> ResultsFile {
    let git = sysinfo::git(sysinfo::source_root());
    ResultsFile {
        schema_version: SCHEMA_VERSION,
        run_id: sysinfo::run_id(started, &git),
        started_at: sysinfo::rfc3339(started),
        finished_at: None,
        command: std::env::args().collect(),
        git,
        host: sysinfo::host(),
        toolchain: sysinfo::toolchain(),
        runtimes,
        results: Vec::new(),
        skipped: Vec::new(),
    }
}

/// One line per result for the terminal.
pub fn print_result(result: &ScenarioResult) {
    let h = &result.summary.headline;
    let opt = |v: Option<f64>, digits: usize| {
        v.map(|v| format!("{v:.digits$}"))
            .unwrap_or_else(|| "null".into())
    };
    let lat = |pick: fn(&Percentiles) -> f64| opt(h.latency_us.as_ref().map(pick), 1);
    println!(
        "{:<16} {:<12} {:>10.0} msg/s  latency p50 {:>8} us  p99 {:>9} us  max {:>9} us  \
         syscalls/msg {:>6}  sqes/msg {:>6}  cpu/msg {:>6} us  lost {}  {}",
        result.scenario,
        result.runtime,
        h.throughput_msgs_per_s,
        lat(|p| p.p50),
        lat(|p| p.p99),
        lat(|p| p.max),
        opt(h.syscalls_per_msg, 3),
        opt(h.sqes_per_msg, 3),
        opt(h.server_cpu_us_per_msg, 2),
        h.lost,
        if result.valid {
            "valid".to_string()
        } else {
            format!("INVALID: {}", result.invalid_reasons.join("; "))
        }
    );
}

/// `fanbench run`.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
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
            let result = measure(row, &scenario, &placement, &log_dir, &mut |i| {
                eprintln!("fanbench: {} on {name}: repetition {i} done", scenario.name)
            })?;
            file.results.push(result.clone());
            file.finished_at = Some(sysinfo::rfc3339(SystemTime::now()));
            write_results(&out, &file)?;
            (result, info, out)
        }
        (None, Some(target)) => {
            let label = args
                .label
                .as_deref()
                .ok_or_else(|| anyhow!("--target needs --label NAME"))?;
            let addr = resolve_target(target)?;
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
            )?;
            file.results.push(result.clone());
            file.finished_at = Some(sysinfo::rfc3339(SystemTime::now()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::{CpuUsage, SlowSubscriberReport};
    use hdrhistogram::Histogram;

    fn histogram(values_ns: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
        for &v in values_ns {
            h.record(v).expect("record");
        }
        h
    }

    /// A clean report: on schedule, unsaturated, nothing lost.
    fn clean_report() -> LoadReport {
        LoadReport {
            latency: histogram(&[100_000, 200_000]),
            service_latency: histogram(&[90_000, 150_000]),
            pacing_lag: histogram(&[2_000, 5_000]),
            windows: Vec::new(),
            sent: 200,
            expected: 2000,
            delivered: 2000,
            lost: 0,
            duplicates: 0,
            reordered: 0,
            subscribers_with_loss: 0,
            slow: SlowSubscriberReport {
                subscribers: 0,
                read_bytes_per_s: 0,
                bytes_read: 0,
                bytes_drained_at_end: 0,
                messages: 0,
                messages_in_window: 0,
                cut_as_slow_consumer: 0,
                closed_by_server: 0,
                max_latency_ns: None,
            },
            behind_schedule: false,
            max_pacing_lag_ns: 5_000,
            pacer_priority: "SCHED_FIFO 1".into(),
            loadgen_cpu: CpuUsage {
                user_s: 0.1,
                sys_s: 0.1,
                window_s: 1.0,
                cores: 1,
                utilisation: 0.2,
                busiest_thread_utilisation: Some(0.15),
                busiest_thread: Some("pacer".into()),
                thread_cpu_null_reason: None,
                saturated: false,
            },
            window_ns: 1_000_000_000,
            grace_ns: 10_000_000,
            errors: Vec::new(),
        }
    }

    #[test]
    fn clean_report_is_valid() {
        assert!(invalid_reasons(&clean_report()).is_empty());
    }

    #[test]
    fn each_invalidity_rule_gives_its_own_reason() {
        let mut behind = clean_report();
        behind.behind_schedule = true;
        behind.max_pacing_lag_ns = 25_000_000;
        let reasons = invalid_reasons(&behind);
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].contains("behind schedule") && reasons[0].contains("25000 us"));

        let mut saturated = clean_report();
        saturated.loadgen_cpu.saturated = true;
        saturated.loadgen_cpu.utilisation = 0.97;
        let reasons = invalid_reasons(&saturated);
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].contains("saturated (97%"), "{reasons:?}");

        let mut lossy = clean_report();
        lossy.lost = 3;
        lossy.subscribers_with_loss = 1;
        let reasons = invalid_reasons(&lossy);
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].contains("lost 3 of 2000"), "{reasons:?}");
    }

    #[test]
    fn repetition_converts_units_and_carries_validity() {
        let mut report = clean_report();
        report.lost = 1;
        let rep = repetition(
            0,
            "2026-01-01T00:00:00Z".into(),
            &report,
            ServerSampler::without_pid("no pid in this test")
                .finish(report.delivered)
                .0,
            ServerHeadline::default(),
            &[1],
        )
        .expect("repetition");
        assert!(!rep.valid);
        assert_eq!(rep.window_s, 1.0);
        assert_eq!(rep.headline.throughput_msgs_per_s, 2000.0);
        // 200 000 ns recorded: the max is 200 us (within the histogram's 3 digits).
        assert!(
            (rep.headline.latency_us.expect("latency").max - 200.0).abs() < 0.2,
            "{:?}",
            rep.headline
        );
        assert_eq!(rep.server.syscalls.total, None);
        assert_eq!(
            rep.server.syscalls.null_reason.as_deref(),
            Some("no pid in this test")
        );
    }

    #[test]
    fn default_client_cpus_are_the_ones_the_server_does_not_use() {
        if sysinfo::online_cpus() < 2 {
            return;
        }
        let placement = PlacementArgs {
            server_cpus: "0".into(),
            client_cpus: None,
            server_threads: None,
            nats_server_bin: NATS_SERVER.into(),
        }
        .resolve()
        .expect("placement");
        assert_eq!(placement.server_cpus, vec![0]);
        assert!(!placement.client_cpus.contains(&0));
        assert!(placement.client_cpus.contains(&1));
        assert_eq!(placement.server_threads, 1);
    }
}
