//! A repetition as the results file records it: the load generator's report and the server's
//! metrics, copied field by field into the results schema (units converted, validity attached).

use super::instrument;
use super::validity::{instrument_limits, invalid_reasons, read_delay_over_bound};
use crate::loadgen::LoadReport;
use crate::metrics::{ServerHeadline, NOTHING_DELIVERED};
use crate::results::schema::{
    CpuShare, Headline, Histograms, LoadGenerator, Measured, Repetition, RxCounters, ServerMetrics,
    SlowSubscribers, WindowStats,
};
use crate::results::write::{percentiles_us_from_ns, serialize_histogram};

/// Where a repetition ran and what it carried, for the fields that depend on it.
#[derive(Debug, Clone, Copy)]
pub struct RepetitionPlacement<'a> {
    pub client_cpus: &'a [usize],
    /// Server CPUs (None: an external server whose CPUs are not ours to know).
    pub server_cores: Option<usize>,
    pub payload_bytes: usize,
}

/// The results' [`Repetition`] of one load-generator run.
pub fn repetition(
    index: u32,
    started_at: String,
    report: &LoadReport,
    mut server: ServerMetrics,
    s: ServerHeadline,
    placement: RepetitionPlacement<'_>,
) -> anyhow::Result<Repetition> {
    let RepetitionPlacement {
        client_cpus,
        server_cores,
        payload_bytes,
    } = placement;
    let window_s = report.window_ns as f64 / 1e9;
    let us = |ns: u64| ns as f64 / 1000.0;
    // Received messages are counted by kernel receive time inside the window as scheduled,
    // so that is the divisor, not the time the coordinating thread took to get through it.
    let scheduled_s = match report.scheduled_window_ns {
        0 => window_s,
        ns => ns as f64 / 1e9,
    };
    let throughput = if scheduled_s > 0.0 {
        report.received_in_window as f64 / scheduled_s
    } else {
        0.0
    };
    let messages_per_receive = (report.rx.completions > 0)
        .then(|| report.rx.messages as f64 / report.rx.completions as f64);
    let ceiling = match instrument::calibration() {
        None => Err("not calibrated in this invocation (bench-all calibrates first; see fanbench calibrate)".to_string()),
        Some(cal) => instrument::ceiling(cal, payload_bytes, messages_per_receive),
    };
    let headroom = match &ceiling {
        Ok((c, _)) if throughput > 0.0 => Measured::Value(c / throughput),
        Ok(_) => Measured::null(NOTHING_DELIVERED),
        Err(why) => Measured::null(why.clone()),
    };
    // A headroom from a lower-bound ceiling (the blaster saturated before the load generator)
    // is itself a lower bound: it cannot show that the instrument limited the result.
    let decisive_headroom = match &ceiling {
        Ok((_, false)) => headroom.value().copied(),
        _ => None,
    };
    let invalid = invalid_reasons(report, decisive_headroom);
    let instrument_limited = !instrument_limits(decisive_headroom).is_empty();
    server.utilisation = match (server_cores, server_cpu_s(&server)) {
        (Some(cores), Some(cpu_s)) if cores > 0 && window_s > 0.0 => {
            Measured::Value(cpu_s / window_s / cores as f64)
        }
        (None, _) | (Some(0), _) => {
            Measured::null("the server's CPUs are not known (external server)")
        }
        _ => Measured::null(
            server
                .cpu_null_reason
                .clone()
                .unwrap_or_else(|| "server CPU time was not measured".into()),
        ),
    };
    let cpu = &report.loadgen_cpu;
    Ok(Repetition {
        index,
        started_at,
        valid: invalid.is_empty(),
        invalid_reasons: invalid,
        window_s,
        headline: Headline {
            throughput_msgs_per_s: throughput,
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
                received: w.received,
                max_pacing_lag_us: us(w.max_pacing_lag_ns),
                steal_max_share: w.steal_max_share,
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
            receive_path: report.receive_path.name.clone(),
            receive_ring_flags: report.receive_path.ring_flags.clone(),
            receive_fallback_reason: report.receive_path.fallback_reason.clone(),
            read_delay_us: Measured::from_option(
                percentiles_us_from_ns(&report.read_delay),
                || match &report.receive_path.ring_flags {
                    Some(_) => NOTHING_DELIVERED.to_string(),
                    None => "the readiness fallback has no kernel receive timestamps".to_string(),
                },
            ),
            received_in_window: report.received_in_window,
            boundary_late_us: Some(us(report.boundary_late_ns)),
            cpu_us_per_msg: if !(cpu.user_s + cpu.sys_s).is_finite() {
                Measured::null("the load generator's CPU time could not be read")
            } else if report.received_in_window == 0 {
                Measured::null(NOTHING_DELIVERED)
            } else {
                Measured::Value((cpu.user_s + cpu.sys_s) * 1e6 / report.received_in_window as f64)
            },
            client_cpu_shares: cpu
                .client_cpus
                .iter()
                .map(|c| CpuShare {
                    cpu: c.cpu,
                    busy: c.busy,
                    steal: c.steal,
                })
                .collect(),
            messages_per_receive,
            ceiling_deliveries_per_s: ceiling.as_ref().ok().map(|c| c.0),
            ceiling_is_lower_bound: ceiling.as_ref().is_ok_and(|c| c.1),
            headroom,
            instrument_limited,
            read_delay_over_bound: read_delay_over_bound(report),
            host_noise_windows: report.host_noise.clone(),
            rx: RxCounters {
                enters: report.rx.enters,
                completions: report.rx.completions,
                unstamped_completions: report.rx.unstamped_completions,
                buffer_starvations: report.rx.buffer_starvations,
                bytes: report.rx.bytes,
                messages: report.rx.messages,
            },
        },
        server,
        errors: report.errors.clone(),
    })
}

/// Server CPU seconds in the window: task-clock when measured, else /proc user + sys.
fn server_cpu_s(server: &ServerMetrics) -> Option<f64> {
    server
        .cpu_task_clock_s
        .value()
        .copied()
        .or_else(|| Some(server.cpu_user_s? + server.cpu_sys_s?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::fixture::clean_report;
    use crate::metrics::ServerSampler;

    /// `report` as repetition 0 of a server without a pid, on one core.
    fn record(report: &LoadReport) -> Repetition {
        let (server, headline) = ServerSampler::without_pid("no pid in this test").finish(report);
        repetition(
            0,
            "2026-01-01T00:00:00Z".into(),
            report,
            server,
            headline,
            RepetitionPlacement {
                client_cpus: &[1],
                server_cores: Some(1),
                payload_bytes: 128,
            },
        )
        .expect("repetition")
    }

    #[test]
    fn repetition_converts_units_and_carries_validity() {
        let mut report = clean_report();
        report.lost = 1;
        let rep = record(&report);
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

    #[test]
    fn throughput_divides_by_the_window_as_scheduled_not_as_lived() {
        let mut report = clean_report();
        // The coordinating thread got through the 1 s window in 1.5 s.
        report.window_ns = 1_500_000_000;
        let rep = record(&report);
        assert_eq!(rep.headline.throughput_msgs_per_s, 2000.0);
        assert_eq!(rep.load_generator.boundary_late_us, Some(50.0));
    }
}
