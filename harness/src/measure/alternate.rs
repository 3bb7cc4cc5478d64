//! A server measured one repetition at a time, so two servers can be measured in alternation
//! (`compare-revs`: A B, B A, ... against the same workload), each repetition by the same
//! load generator and rules as [`super::measure`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use super::pair::{assemble_result, run_repetitions, runtime_config, server_stats};
use super::placement::Placement;
use super::row::Row;
use crate::results::measured::Measured;
use crate::results::schema::{Repetition, RuntimeConfig, Scenario, ScenarioResult};
use crate::server_proc::{free_local_addr, ServerProcess, STOP_TIMEOUT};

/// A started server of one row, measured one repetition at a time.
pub struct LiveServer {
    row: Row,
    server: ServerProcess,
    stats_path: PathBuf,
    runtime_config: RuntimeConfig,
    placement: Placement,
}

impl LiveServer {
    /// Starts `row` pinned per `placement`. For our rows, `program` is the fanbench binary
    /// whose `serve` runs the server (None: this binary), given `--coalesce-us` when
    /// `coalesce_us` is set; nats-server always runs `placement.nats_server_bin`. `tag` keeps
    /// the log and stats files of two servers of the same row apart.
    pub fn start(
        row: Row,
        program: Option<&Path>,
        coalesce_us: Option<u64>,
        scenario: &Scenario,
        placement: &Placement,
        log_dir: &Path,
        tag: &str,
    ) -> anyhow::Result<LiveServer> {
        std::fs::create_dir_all(log_dir)
            .with_context(|| format!("creating {}", log_dir.display()))?;
        let stem = format!("{}.{}.{tag}", scenario.name, row.name());
        let stats_path = log_dir.join(format!("{stem}.stats.json"));
        let _ = std::fs::remove_file(&stats_path);
        let addr = free_local_addr()?;
        let mut cmd = row.command(placement, addr, &stats_path, coalesce_us)?;
        if let (Row::Fanbench(_), Some(program)) = (row, program) {
            cmd.program = program.to_path_buf();
            cmd.shown_as = None;
        }
        let server = ServerProcess::start(&cmd, &log_dir.join(format!("{stem}.log")))?;
        let runtime_config = runtime_config(row, placement, &cmd, addr, server.pid());
        Ok(LiveServer {
            row,
            server,
            stats_path,
            runtime_config,
            placement: placement.clone(),
        })
    }

    /// One repetition of `scenario` (its `repetitions` is ignored), recorded as `index`.
    pub fn repetition(&mut self, scenario: &Scenario, index: u32) -> anyhow::Result<Repetition> {
        let once = Scenario {
            repetitions: 1,
            ..scenario.clone()
        };
        let addr = self.server.addr();
        let pid = self.server.pid();
        let (mut reps, outcome) = run_repetitions(
            &once,
            addr,
            Some(pid),
            &self.placement.client_cpus,
            Some(self.placement.cpus_used(self.row).len()),
            Some(&mut self.server),
            self.placement.server_counters,
            &mut |_| {},
        );
        outcome
            .with_context(|| format!("server output (tail):\n{}", self.server.log_tail(2048)))?;
        let mut rep = reps
            .pop()
            .context("the load generator returned no repetition")?;
        rep.index = index;
        Ok(rep)
    }

    /// Stops the server: how it was started, and the counters it wrote at exit.
    pub fn stop(self) -> (RuntimeConfig, Measured<serde_json::Value>) {
        let stopped = self.server.stop(STOP_TIMEOUT);
        let stats = server_stats(self.row, stopped, &self.stats_path);
        (self.runtime_config, stats)
    }

    /// Stops the server, keeping nothing (after a failed repetition).
    pub fn abandon(self) {
        let _ = self.server.stop(Duration::from_secs(1));
    }
}

/// The result of a row whose repetitions were measured by servers of their own (one per
/// [`LiveServer`]): the summary over `repetitions`, `runtime_config` of the first server,
/// `server_stats` as given.
pub fn assemble(
    scenario: &Scenario,
    runtime_config: RuntimeConfig,
    repetitions: Vec<Repetition>,
    server_stats: Measured<serde_json::Value>,
) -> anyhow::Result<ScenarioResult> {
    let scenario = Scenario {
        repetitions: u32::try_from(repetitions.len()).unwrap_or(u32::MAX),
        ..scenario.clone()
    };
    assemble_result(&scenario, runtime_config, repetitions, server_stats)
}
