//! Per-CPU time from `/proc/stat`: how busy each client CPU was, and how much time the host
//! stole from every CPU (a VM's vCPU not running because the host ran something else).
//!
//! Busy = user + nice + system + irq + softirq (guest time is inside user); steal is its own
//! column. Shares are of the CPU's total ticks in the interval (all columns but guest), so a
//! CPU that the host stole half of and that was busy the other half reads busy 0.5, steal 0.5.

use anyhow::{bail, Context, Result};
use serde::Serialize;

/// One CPU's cumulative ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTicks {
    pub busy: u64,
    pub idle: u64,
    pub steal: u64,
}

impl CpuTicks {
    fn total(&self) -> u64 {
        self.busy + self.idle + self.steal
    }
}

/// Every CPU's ticks at one instant, indexed by CPU number.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub cpus: Vec<Option<CpuTicks>>,
}

/// How one CPU spent an interval.
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, PartialEq)]
pub struct CpuShare {
    pub cpu: usize,
    pub busy: f64,
    pub steal: f64,
}

pub fn parse(text: &str) -> Result<Snapshot> {
    let mut cpus: Vec<Option<CpuTicks>> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("cpu") else {
            continue;
        };
        // `cpuN ...` is CPU N; `cpu  ...` (no number) is the aggregate of all CPUs, whose first
        // field (user ticks) must not be read as a CPU number: indexing by it sized the
        // snapshot by the host's uptime, tens of MB per snapshot, one per second of a window.
        let Some((number, rest)) = rest.split_once(char::is_whitespace) else {
            continue;
        };
        let Ok(cpu) = number.parse::<usize>() else {
            continue;
        };
        let fields = rest.split_whitespace();
        let values: Vec<u64> = fields
            .map(str::parse)
            .collect::<Result<_, _>>()
            .with_context(|| format!("/proc/stat line for cpu{cpu} is not numeric"))?;
        if values.len() < 8 {
            bail!(
                "/proc/stat line for cpu{cpu} has {} fields, expected at least 8",
                values.len()
            );
        }
        // user nice system idle iowait irq softirq steal [guest guest_nice]
        let ticks = CpuTicks {
            busy: values[0] + values[1] + values[2] + values[5] + values[6],
            idle: values[3] + values[4],
            steal: values[7],
        };
        if cpus.len() <= cpu {
            cpus.resize(cpu + 1, None);
        }
        cpus[cpu] = Some(ticks);
    }
    Ok(Snapshot { cpus })
}

pub fn snapshot() -> Result<Snapshot> {
    let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse(&text)
}

/// Shares of `cpus` (every CPU both snapshots know when empty) between two snapshots.
pub fn shares(from: &Snapshot, to: &Snapshot, cpus: &[usize]) -> Vec<CpuShare> {
    let all: Vec<usize> = (0..to.cpus.len()).collect();
    let wanted = if cpus.is_empty() { &all[..] } else { cpus };
    wanted
        .iter()
        .filter_map(|&cpu| {
            let a = (*from.cpus.get(cpu)?)?;
            let b = (*to.cpus.get(cpu)?)?;
            let total = b.total().saturating_sub(a.total());
            (total > 0).then(|| CpuShare {
                cpu,
                busy: b.busy.saturating_sub(a.busy) as f64 / total as f64,
                steal: b.steal.saturating_sub(a.steal) as f64 / total as f64,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 5 0 5 50 0 0 0 0 0 0\ncpu1 5 0 5 50 0 0 0 0 0 0\nintr 1\n";
    const B: &str =
        "cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 55 0 5 90 0 0 0 10 0 0\ncpu1 5 0 5 150 0 0 0 0 0 0\n";

    #[test]
    fn busy_and_steal_are_shares_of_each_cpus_ticks() {
        let s = shares(&parse(A).expect("a"), &parse(B).expect("b"), &[0, 1]);
        assert_eq!(s.len(), 2);
        assert!((s[0].busy - 0.5).abs() < 1e-9, "{s:?}");
        assert!((s[0].steal - 0.1).abs() < 1e-9, "{s:?}");
        assert_eq!(s[1].busy, 0.0);
        assert_eq!(s[1].steal, 0.0);
    }

    #[test]
    fn unknown_cpus_are_skipped_and_empty_means_every_cpu() {
        let (a, b) = (parse(A).expect("a"), parse(B).expect("b"));
        assert!(shares(&a, &b, &[7]).is_empty());
        assert_eq!(shares(&a, &b, &[]).len(), 2);
    }

    #[test]
    fn the_aggregate_line_is_not_a_cpu() {
        let s = parse("cpu  2600000 0 5 7 0 0 0 1 0 0\ncpu0 1 2 3 4 5 6 7 8\n").expect("parse");
        assert_eq!(s.cpus.len(), 1);
        assert_eq!(s.cpus[0].map(|t| t.steal), Some(8));
    }

    #[test]
    fn short_or_garbled_lines_are_errors() {
        assert!(parse("cpu0 1 2 3\n").is_err());
        assert!(parse("cpu0 1 2 x 4 5 6 7 8\n").is_err());
    }

    #[test]
    fn this_machines_proc_stat_parses() {
        let s = snapshot().expect("/proc/stat");
        assert!(s.cpus.iter().flatten().count() >= 1);
    }
}
