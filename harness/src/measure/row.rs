//! The servers `run`, `sweep` and `bench-all` start and measure: our broker on one of the
//! runtime rows, or the reference nats-server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::anyhow;

use super::placement::Placement;
use crate::results::schema::{RuntimeInfo, RuntimeKind};
use crate::runtimes::{self, RuntimeRow};
use crate::server_proc::ServerCommand;

/// The uring row's policy arguments (none for other rows, or when left to the default).
fn uring_args(row: RuntimeRow, placement: &Placement) -> Vec<String> {
    if row != RuntimeRow::Uring {
        return Vec::new();
    }
    let mut args = Vec::new();
    if let Some(policy) = placement.uring_policy {
        args.extend(["--uring-policy".to_string(), policy.to_string()]);
    }
    if let Some(cpu) = placement.sqpoll_cpu {
        args.extend(["--uring-sqpoll-cpu".to_string(), cpu.to_string()]);
    }
    args
}

/// Name of the built-in reference-server row.
pub const NATS_SERVER: &str = "nats-server";

/// A server we know how to start.
#[derive(Debug, Clone, Copy)]
pub enum Row {
    /// Our broker on a runtime (`fanbench serve --runtime NAME`).
    Fanbench(RuntimeRow),
    /// The reference nats-server.
    NatsServer,
}

impl Row {
    pub fn named(name: &str) -> anyhow::Result<Row> {
        if name == NATS_SERVER {
            return Ok(Row::NatsServer);
        }
        RuntimeRow::named(name).map(Row::Fanbench).ok_or_else(|| {
            anyhow!(
                "unknown runtime {name:?}; known: {}, {NATS_SERVER}",
                runtimes::names().join(", ")
            )
        })
    }

    /// Every row: ours (from the runtime registry), then nats-server.
    pub fn all() -> Vec<Row> {
        RuntimeRow::ALL
            .iter()
            .copied()
            .map(Row::Fanbench)
            .chain(std::iter::once(Row::NatsServer))
            .collect()
    }

    pub fn name(&self) -> &'static str {
        match self {
            Row::Fanbench(row) => row.name(),
            Row::NatsServer => NATS_SERVER,
        }
    }

    /// Whether this is the uring row (the one `--uring-policy` applies to).
    pub fn is_uring(&self) -> bool {
        matches!(self, Row::Fanbench(RuntimeRow::Uring))
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
                    (
                        row.crate_name().to_string(),
                        row.crate_version().to_string(),
                    ),
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

    pub(crate) fn command(
        &self,
        placement: &Placement,
        addr: SocketAddr,
        stats_out: &Path,
        coalesce_us: Option<u64>,
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
                    row.name().into(),
                    "--addr".into(),
                    addr.to_string(),
                    "--threads".into(),
                    placement.server_threads.to_string(),
                    "--cpus".into(),
                    cpu_list,
                    "--stats-out".into(),
                    stats_out.display().to_string(),
                ]
                .into_iter()
                .chain(
                    coalesce_us
                        .into_iter()
                        .flat_map(|us| ["--coalesce-us".to_string(), us.to_string()]),
                )
                .chain(uring_args(*row, placement))
                .collect(),
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
