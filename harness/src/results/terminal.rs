//! The one-line view of a result for the terminal.

use super::schema::{Percentiles, ScenarioResult};

/// One line per result for the terminal.
pub fn print_result(result: &ScenarioResult) {
    let h = &result.summary.headline;
    let opt = |v: Option<f64>, digits: usize| {
        v.map(|v| format!("{v:.digits$}"))
            .unwrap_or_else(|| "null".into())
    };
    let lat = |pick: fn(&Percentiles) -> f64| opt(h.latency_us.value().map(pick), 1);
    println!(
        "{:<16} {:<12} {:>10.0} msg/s  latency p50 {:>8} us  p99 {:>9} us  max {:>9} us  \
         syscalls/msg {:>6}  sqes/msg {:>6}  cpu/msg {:>6} us  lost {}  {}",
        result.scenario,
        result.runtime,
        h.throughput_msgs_per_s,
        lat(|p| p.p50),
        lat(|p| p.p99),
        lat(|p| p.max),
        opt(h.syscalls_per_msg.value().copied(), 3),
        opt(h.sqes_per_msg.value().copied(), 3),
        opt(h.server_cpu_us_per_msg.value().copied(), 2),
        h.lost,
        if result.valid {
            "valid".to_string()
        } else {
            format!("INVALID: {}", result.invalid_reasons.join("; "))
        }
    );
}
