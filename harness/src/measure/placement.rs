//! Where the server and the load generator run: the CPU sets, resolved from the command line.

use std::path::PathBuf;

use anyhow::{bail, Context};

use super::row::NATS_SERVER;
use crate::cpus::parse_cpu_list;
use crate::metrics::Counting;
use crate::sysinfo;

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
    /// uring row: submission policy (eager: submit every tick; adaptive: busy-poll small
    /// batches while completions arrive; sqpoll: a kernel submission thread). Default: the
    /// runtime's (eager).
    #[arg(long, value_name = "POLICY")]
    pub uring_policy: Option<fanbench_uring::SubmitPolicy>,
    /// uring row with --uring-policy sqpoll: bind the kernel submission thread to this CPU
    /// (a server CPU to share it, or a CPU of its own, counted as a server CPU); default: it
    /// inherits the server's CPUs.
    #[arg(long, value_name = "CPU")]
    pub sqpoll_cpu: Option<usize>,
    /// How the server's kernel counters are attached: split (syscall tracepoints in the first
    /// third of the window, server CPU measured without them in the rest), always (attached for
    /// the whole window, CPU included), off (no perf event: CPU from /proc, no syscalls).
    #[arg(long, value_enum, default_value_t = Counting::Split, value_name = "MODE")]
    pub server_counters: Counting,
}

/// Resolved CPU sets.
#[derive(Debug, Clone)]
pub struct Placement {
    pub server_cpus: Vec<usize>,
    pub client_cpus: Vec<usize>,
    pub server_threads: usize,
    pub nats_server_bin: PathBuf,
    /// The uring row's submission policy (`None`: the runtime's default).
    pub uring_policy: Option<fanbench_uring::SubmitPolicy>,
    /// The CPU the uring row's SQPOLL thread is bound to.
    pub sqpoll_cpu: Option<usize>,
    /// How the server's kernel counters are attached.
    pub server_counters: Counting,
}

impl Placement {
    /// Every CPU a `row` server uses: its own set, plus an SQPOLL thread's CPU outside it.
    /// Utilisation and "one-core" comparisons count these.
    pub fn cpus_used(&self, row: super::Row) -> Vec<usize> {
        let mut cpus = self.server_cpus.clone();
        if let (Some(cpu), true) = (self.sqpoll_cpu, row.is_uring()) {
            if !cpus.contains(&cpu) {
                cpus.push(cpu);
            }
        }
        cpus
    }
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
        if let Some(cpu) = self.sqpoll_cpu {
            if self.uring_policy != Some(fanbench_uring::SubmitPolicy::Sqpoll) {
                bail!("--sqpoll-cpu needs --uring-policy sqpoll");
            }
            if client_cpus.contains(&cpu) {
                bail!(
                    "--sqpoll-cpu {cpu} is a load generator CPU: the submission thread would \
                     compete with the instrument (give it a server CPU or a spare one)"
                );
            }
            if cpu >= sysinfo::online_cpus() {
                bail!(
                    "--sqpoll-cpu {cpu}: this machine has CPUs 0-{}",
                    sysinfo::online_cpus() - 1
                );
            }
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
            uring_policy: self.uring_policy,
            sqpoll_cpu: self.sqpoll_cpu,
            server_counters: self.server_counters,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            uring_policy: None,
            sqpoll_cpu: None,
            server_counters: Counting::Split,
        }
        .resolve()
        .expect("placement");
        assert_eq!(placement.server_cpus, vec![0]);
        assert!(!placement.client_cpus.contains(&0));
        assert!(placement.client_cpus.contains(&1));
        assert_eq!(placement.server_threads, 1);
    }
}
