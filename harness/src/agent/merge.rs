//! Merging the agents' reports of one repetition into one [`LoadReport`], the form every
//! results path already records.
//!
//! Counts (sent, expected, delivered, lost, duplicates, reordered, received, receive-path
//! counters, slow subscribers) are sums; the read-delay histogram is the sum of the agents'
//! (each measured on its own clock). Latency, service latency, pacing lag and the per-second
//! latency percentiles are the publishing agent's only: end-to-end latency on one clock. The
//! other agents' latency is recorded per agent in the `agents` section with its clock bound.
//! CPU: the sums of the agents' CPU seconds and cores; the busiest thread of any agent.

use crate::loadgen::{CpuUsage, LoadReport, SlowSubscriberReport};

/// `reports` holds (agent index, report) of every agent that reported; `publishing` is the
/// index of the agent that ran the publishers.
pub fn merge(reports: Vec<(usize, LoadReport)>, publishing: usize) -> Option<LoadReport> {
    let position = reports
        .iter()
        .position(|(i, _)| *i == publishing)
        .unwrap_or(0);
    let mut rest = reports;
    if rest.is_empty() {
        return None;
    }
    let (_, mut base) = rest.swap_remove(position);
    let own_windows = base.windows.clone();
    let mut cpu = base.loadgen_cpu.clone();
    for (agent, r) in rest {
        base.expected += r.expected;
        base.delivered += r.delivered;
        base.lost += r.lost;
        base.duplicates += r.duplicates;
        base.reordered += r.reordered;
        base.subscribers_with_loss += r.subscribers_with_loss;
        base.sent += r.sent;
        base.received_in_window += r.received_in_window;
        base.rx.add(&r.rx);
        base.behind_schedule |= r.behind_schedule;
        base.max_pacing_lag_ns = base.max_pacing_lag_ns.max(r.max_pacing_lag_ns);
        base.grace_ns = base.grace_ns.max(r.grace_ns);
        crate_merge(&mut base.read_delay, &r.read_delay);
        add_slow(&mut base.slow, &r.slow);
        for n in r.host_noise {
            if !base.host_noise.contains(&n) {
                base.host_noise.push(n);
            }
        }
        for (into, from) in base.windows.iter_mut().zip(&r.windows) {
            into.sent += from.sent;
            into.expected += from.expected;
            into.delivered += from.delivered;
            into.received += from.received;
            into.steal_max_share = match (into.steal_max_share, from.steal_max_share) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
        add_cpu(&mut cpu, &r.loadgen_cpu, agent);
        base.errors
            .extend(r.errors.into_iter().map(|e| format!("agent {agent}: {e}")));
    }
    base.host_noise.sort_unstable();
    // The per-second latency percentiles stay the publishing agent's (one clock).
    for (into, own) in base.windows.iter_mut().zip(own_windows) {
        into.latency_p50_ns = own.latency_p50_ns;
        into.latency_p99_ns = own.latency_p99_ns;
        into.latency_max_ns = own.latency_max_ns;
    }
    base.loadgen_cpu = cpu;
    Some(base)
}

fn crate_merge(into: &mut hdrhistogram::Histogram<u64>, from: &hdrhistogram::Histogram<u64>) {
    // Same bounds on every agent (one binary), so adding cannot fail; clamp if it ever did.
    if into.add(from).is_err() {
        for v in from.iter_recorded() {
            into.saturating_record_n(v.value_iterated_to(), v.count_at_value());
        }
    }
}

fn add_slow(into: &mut SlowSubscriberReport, from: &SlowSubscriberReport) {
    into.bytes_read += from.bytes_read;
    into.bytes_drained_at_end += from.bytes_drained_at_end;
    into.messages += from.messages;
    into.messages_in_window += from.messages_in_window;
    into.cut_as_slow_consumer += from.cut_as_slow_consumer;
    into.closed_by_server += from.closed_by_server;
    into.max_latency_ns = into.max_latency_ns.max(from.max_latency_ns);
}

fn add_cpu(into: &mut CpuUsage, from: &CpuUsage, agent: usize) {
    into.user_s += from.user_s;
    into.sys_s += from.sys_s;
    into.cores += from.cores;
    into.utilisation = (into.user_s + into.sys_s) / (into.window_s * into.cores as f64);
    if from.busiest_thread_utilisation > into.busiest_thread_utilisation {
        into.busiest_thread_utilisation = from.busiest_thread_utilisation;
        into.busiest_thread = from
            .busiest_thread
            .as_ref()
            .map(|t| format!("agent {agent}: {t}"));
    }
    if into.thread_cpu_null_reason.is_none() {
        into.thread_cpu_null_reason = from.thread_cpu_null_reason.clone();
    }
    into.saturated |= from.saturated;
    into.client_cpus.extend(from.client_cpus.iter().copied());
    if into.client_cpus_null_reason.is_none() {
        into.client_cpus_null_reason = from.client_cpus_null_reason.clone();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::measure::fixture::{clean_report, window};

    pub(crate) fn report(latency_ns: u64, delivered: u64, sent: u64) -> LoadReport {
        let mut latency =
            hdrhistogram::Histogram::new_with_bounds(1_000, 60_000_000_000, 3).expect("histogram");
        for _ in 0..delivered {
            latency.saturating_record(latency_ns);
        }
        let pacing_lag =
            hdrhistogram::Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
        let mut r = clean_report();
        r.service_latency = latency.clone();
        r.latency = latency;
        r.read_delay = pacing_lag.clone();
        r.pacing_lag = pacing_lag;
        r.max_pacing_lag_ns = 0;
        let mut w = window(0, delivered, Some(latency_ns));
        w.sent = sent;
        r.windows = vec![w];
        r.sent = sent;
        r.expected = delivered;
        r.delivered = delivered;
        r.received_in_window = delivered;
        r.loadgen_cpu.user_s = 0.5;
        r.loadgen_cpu.sys_s = 0.5;
        r.loadgen_cpu.utilisation = 1.0;
        r.loadgen_cpu.busiest_thread_utilisation = Some(0.5);
        r.grace_ns = 0;
        r
    }

    #[test]
    fn counts_are_summed_and_latency_is_the_publishing_agents() {
        let merged = merge(
            vec![(1, report(900_000, 30, 0)), (0, report(50_000, 20, 10))],
            0,
        )
        .expect("merged");
        assert_eq!(merged.delivered, 50);
        assert_eq!(merged.expected, 50);
        assert_eq!(merged.received_in_window, 50);
        assert_eq!(merged.sent, 10);
        assert_eq!(merged.windows[0].delivered, 50);
        assert_eq!(merged.windows[0].sent, 10);
        // Latency stays on one clock: agent 0's 20 samples only.
        assert_eq!(merged.latency.len(), 20);
        assert!(merged.latency.max() < 100_000);
        assert_eq!(merged.windows[0].latency_max_ns, Some(50_000));
        assert_eq!(merged.loadgen_cpu.cores, 2);
        assert!((merged.loadgen_cpu.utilisation - 1.0).abs() < 1e-9);
    }

    #[test]
    fn nothing_to_merge_is_none() {
        assert!(merge(Vec::new(), 0).is_none());
    }
}
