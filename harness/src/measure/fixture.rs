//! A load generator report for the tests of the measurement modules.

use hdrhistogram::Histogram;

use crate::loadgen::report::{ReceivePath, Window};
use crate::loadgen::{CpuUsage, LoadReport, SlowSubscriberReport};

fn histogram(values_ns: &[u64]) -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
    for &v in values_ns {
        h.record(v).expect("record");
    }
    h
}

/// A clean report: on schedule, unsaturated, nothing lost.
pub fn clean_report() -> LoadReport {
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
        host_noise: Vec::new(),
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
            client_cpus: Vec::new(),
            client_cpus_null_reason: None,
        },
        received_in_window: 2000,
        received_since_mark: None,
        scheduled_window_ns: 1_000_000_000,
        boundary_late_ns: 50_000,
        read_delay: histogram(&[1_000]),
        receive_path: ReceivePath {
            name: "test".into(),
            ring_flags: None,
            fallback_reason: None,
        },
        rx: Default::default(),
        window_ns: 1_000_000_000,
        grace_ns: 10_000_000,
        errors: Vec::new(),
    }
}

/// Second `index` of a window in which `messages` were sent, due, delivered and received, at
/// `latency_ns` each (no latency figures when None).
pub fn window(index: u32, messages: u64, latency_ns: Option<u64>) -> Window {
    Window {
        index,
        start_offset_ns: u64::from(index) * 1_000_000_000,
        length_ns: 1_000_000_000,
        sent: messages,
        expected: messages,
        delivered: messages,
        received: messages,
        latency_p50_ns: latency_ns,
        latency_p99_ns: latency_ns,
        latency_max_ns: latency_ns,
        max_pacing_lag_ns: 0,
        steal_max_share: Some(0.0),
    }
}
