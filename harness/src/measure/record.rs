//! A repetition as the results file records it: the load generator's report and the server's
//! metrics, copied field by field into the results schema (units converted, validity attached).

use super::validity::invalid_reasons;
use crate::loadgen::LoadReport;
use crate::metrics::{ServerHeadline, NOTHING_DELIVERED};
use crate::results::schema::{
    Headline, Histograms, LoadGenerator, Measured, Repetition, ServerMetrics, SlowSubscribers,
    WindowStats,
};
use crate::results::write::{percentiles_us_from_ns, serialize_histogram};

/// The results' [`Repetition`] of one load-generator run.
pub fn repetition(
    index: u32,
    started_at: String,
    report: &LoadReport,
    server: ServerMetrics,
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
            latency_us: Measured::from_option(percentiles_us_from_ns(&report.latency), || {
                NOTHING_DELIVERED.to_string()
            }),
            service_latency_us: Measured::from_option(
                percentiles_us_from_ns(&report.service_latency),
                || NOTHING_DELIVERED.to_string(),
            ),
            pacing_lag_us: Measured::from_option(
                percentiles_us_from_ns(&report.pacing_lag),
                || "no message was sent in the window".to_string(),
            ),
            delivered: report.delivered,
            expected: report.expected,
            lost: report.lost,
            syscalls_per_msg: s.syscalls_per_msg,
            sqes_per_msg: s.sqes_per_msg,
            server_cpu_us_per_msg: s.server_cpu_us_per_msg,
            server_peak_rss_bytes: s.server_peak_rss_bytes,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::fixture::clean_report;
    use crate::metrics::ServerSampler;

    #[test]
    fn repetition_converts_units_and_carries_validity() {
        let mut report = clean_report();
        report.lost = 1;
        let (server, headline) =
            ServerSampler::without_pid("no pid in this test").finish(report.delivered);
        let rep = repetition(
            0,
            "2026-01-01T00:00:00Z".into(),
            &report,
            server,
            headline,
            &[1],
        )
        .expect("repetition");
        assert!(!rep.valid);
        assert_eq!(rep.window_s, 1.0);
        assert_eq!(rep.headline.throughput_msgs_per_s, 2000.0);
        // 200 000 ns recorded: the max is 200 us (within the histogram's 3 digits).
        assert!(
            (rep.headline.latency_us.value().expect("latency").max - 200.0).abs() < 0.2,
            "{:?}",
            rep.headline
        );
        assert_eq!(rep.server.syscalls.total.value(), None);
        assert_eq!(
            rep.server.syscalls.total.null_reason(),
            Some("no pid in this test")
        );
    }
}
