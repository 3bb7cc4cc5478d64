//! Repetitions for the tests of the results modules.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::schema::*;
use super::write::serialize_histogram;

pub fn pct(v: f64) -> Percentiles {
    Percentiles {
        p50: v,
        p90: v * 2.0,
        p99: v * 3.0,
        p999: v * 4.0,
        max: v * 5.0,
        mean: v,
        count: 100,
    }
}

pub fn rep(index: u32, throughput: f64, latency: f64, syscalls: Option<f64>) -> Repetition {
    let mut hist = Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3).expect("bounds");
    hist.record(12_345).expect("record");
    let encoded = serialize_histogram(&hist).expect("serialize");
    Repetition {
        index,
        started_at: "2026-01-01T00:00:00.000Z".into(),
        valid: index != 1,
        invalid_reasons: if index == 1 {
            vec!["healthy subscribers lost 3 messages".into()]
        } else {
            vec![]
        },
        window_s: 5.0,
        headline: Headline {
            throughput_msgs_per_s: throughput,
            latency_us: Measured::Value(pct(latency)),
            service_latency_us: Measured::Value(pct(latency / 2.0)),
            pacing_lag_us: Measured::Value(pct(1.0)),
            delivered: 1000,
            expected: 1000 + u64::from(index == 1) * 3,
            lost: u64::from(index == 1) * 3,
            syscalls_per_msg: syscalls.map_or_else(
                || Measured::null("perf_event_open: EACCES"),
                Measured::Value,
            ),
            sqes_per_msg: Measured::Value(0.0),
            server_cpu_us_per_msg: Measured::Value(latency / 10.0),
            server_peak_rss_bytes: Measured::Value(1_000_000 + u64::from(index)),
        },
        sent: 200,
        duplicates: 0,
        reordered: 0,
        histograms: Histograms {
            unit: "ns".into(),
            latency: encoded.clone(),
            service_latency: encoded.clone(),
            pacing_lag: encoded,
        },
        windows: vec![WindowStats {
            second: 0,
            length_s: 1.0,
            sent: 40,
            expected: 200,
            delivered: 200,
            latency_p50_us: Some(12.0),
            latency_p99_us: Some(30.0),
            latency_max_us: None,
            received: 200,
            max_pacing_lag_us: 20.0,
            steal_max_share: Some(0.0),
        }],
        slow_subscribers: SlowSubscribers {
            count: 0,
            read_bytes_per_s: 0,
            bytes_read: 0,
            bytes_drained_at_end: 0,
            messages: 0,
            messages_in_window: 0,
            cut_as_slow_consumer: 0,
            closed_by_server: 0,
            max_latency_us: None,
        },
        load_generator: LoadGenerator {
            cpus: vec![1],
            behind_schedule: false,
            max_pacing_lag_us: 20.0,
            pacer_priority: "SCHED_FIFO 1".into(),
            cpu_user_s: 0.1,
            cpu_sys_s: 0.2,
            utilisation: 0.06,
            busiest_thread_utilisation: Some(0.04),
            busiest_thread: Some("fanbench-sub-0".into()),
            busiest_thread_null_reason: None,
            saturated: false,
            subscribers_with_loss: 0,
            grace_s: 0.01,
            receive_path: "io_uring".into(),
            receive_ring_flags: Some("SINGLE_ISSUER|DEFER_TASKRUN".into()),
            receive_fallback_reason: None,
            read_delay_us: Measured::null("test"),
            received_in_window: 200,
            boundary_late_us: Some(40.0),
            cpu_us_per_msg: Measured::Value(1.5),
            client_cpu_shares: vec![CpuShare {
                cpu: 1,
                busy: 0.1,
                steal: 0.0,
            }],
            messages_per_receive: Some(1.0),
            ceiling_deliveries_per_s: Some(1e6),
            ceiling_is_lower_bound: false,
            headroom: Measured::Value(5000.0),
            instrument_limited: false,
            read_delay_over_bound: false,
            host_noise_windows: Vec::new(),
            rx: RxCounters::default(),
        },
        server: ServerMetrics {
            pid: Some(42),
            cpu_user_s: Some(0.01),
            cpu_sys_s: Some(0.02),
            cpu_null_reason: None,
            cpu_task_clock_s: Measured::null("no perf"),
            utilisation: Measured::Value(0.03),
            counting: None,
            peak_rss_scope: Some("window".into()),
            syscalls: Syscalls {
                total: Measured::Value(1234),
                breakdown: BTreeMap::from([
                    ("writev".to_string(), 1000),
                    ("other".to_string(), 234),
                ]),
                breakdown_null_reason: None,
                threads_at_start: Some(3),
                threads_at_end: Some(3),
                method: "test".into(),
            },
            sqes: Measured::Value(0),
        },
        errors: vec![],
    }
}
