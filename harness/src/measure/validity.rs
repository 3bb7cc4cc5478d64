//! The validity rules: when a repetition is kept but flagged invalid and excluded from
//! verdicts (DESIGN.md, "The load generator and measurement").

use super::instrument::{read_delay_limit_ns, HEADROOM_LIMIT};
use crate::loadgen::LoadReport;

/// Latest a boundary of the window may be sampled: a reading this late stretches a one-second
/// part by 1 %, and the server's CPU per message with it.
pub const BOUNDARY_LATE_LIMIT_NS: u64 = 10_000_000;

/// Why a repetition is invalid (empty: valid). `headroom`: the calibrated ceiling over this
/// repetition's throughput, when known.
pub fn invalid_reasons(report: &LoadReport, headroom: Option<f64>) -> Vec<String> {
    let mut reasons = instrument_limits(headroom);
    if report.behind_schedule {
        let noise = if report.host_noise.is_empty() {
            String::new()
        } else {
            format!(
                "; the host stole CPU in second(s) {:?} of the window: host noise",
                report.host_noise
            )
        };
        reasons.push(format!(
            "load generator behind schedule (pacing lag p99 {:.0} us, max {:.0} us{noise})",
            report.pacing_lag.value_at_quantile(0.99) as f64 / 1000.0,
            report.max_pacing_lag_ns as f64 / 1000.0
        ));
    }
    let cpu = &report.loadgen_cpu;
    if cpu.saturated {
        let busiest = match (&cpu.busiest_thread, cpu.busiest_thread_utilisation) {
            (Some(name), Some(u)) => format!(", busiest thread {name} at {:.0}%", u * 100.0),
            _ => String::new(),
        };
        reasons.push(format!(
            "load generator CPU saturated ({:.0}% of {} cores{busiest})",
            cpu.utilisation * 100.0,
            cpu.cores
        ));
    }
    if report.lost > 0 {
        reasons.push(format!(
            "healthy subscribers lost {} of {} messages ({} subscribers affected)",
            report.lost, report.expected, report.subscribers_with_loss
        ));
    }
    if report.boundary_late_ns > BOUNDARY_LATE_LIMIT_NS {
        reasons.push(format!(
            "the window's boundaries were sampled up to {:.1} ms late (the coordinating thread \
             was held off its CPU): the server's counters cover more than the window",
            report.boundary_late_ns as f64 / 1e6
        ));
    }
    if report.expected == 0 {
        reasons.push("no message was due in the measured window".into());
    }
    reasons
}

/// The instrument-limited reason: too little headroom (calibrated ceiling / throughput).
pub fn instrument_limits(headroom: Option<f64>) -> Vec<String> {
    headroom
        .filter(|&h| h < HEADROOM_LIMIT)
        .map(|h| {
            format!(
                "instrument-limited: headroom {h:.2} < {HEADROOM_LIMIT} (load generator ceiling / throughput)"
            )
        })
        .into_iter()
        .collect()
}

/// Whether the read delay p99 is over its bound: the load generator read late. Flagged, not
/// invalidating: latency is taken from the kernel's receive stamps, so a late read does not
/// enter it (see results/README.md, "read delay").
pub fn read_delay_over_bound(report: &LoadReport) -> bool {
    !report.read_delay.is_empty()
        && report.read_delay.value_at_quantile(0.99) > read_delay_limit_ns()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::fixture::clean_report;

    #[test]
    fn clean_report_is_valid() {
        assert!(invalid_reasons(&clean_report(), None).is_empty());
    }

    #[test]
    fn each_invalidity_rule_gives_its_own_reason() {
        let mut behind = clean_report();
        behind.behind_schedule = true;
        behind.max_pacing_lag_ns = 25_000_000;
        let reasons = invalid_reasons(&behind, None);
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].contains("behind schedule") && reasons[0].contains("25000 us"));

        let mut saturated = clean_report();
        saturated.loadgen_cpu.saturated = true;
        saturated.loadgen_cpu.utilisation = 0.97;
        let reasons = invalid_reasons(&saturated, None);
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].contains("saturated (97%"), "{reasons:?}");

        let mut lossy = clean_report();
        lossy.lost = 3;
        lossy.subscribers_with_loss = 1;
        let reasons = invalid_reasons(&lossy, None);
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].contains("lost 3 of 2000"), "{reasons:?}");

        let mut late = clean_report();
        late.boundary_late_ns = BOUNDARY_LATE_LIMIT_NS + 1;
        let reasons = invalid_reasons(&late, None);
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].contains("10.0 ms late"), "{reasons:?}");

        let reasons = invalid_reasons(&clean_report(), Some(1.2));
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].contains("headroom 1.20"), "{reasons:?}");
        assert!(invalid_reasons(&clean_report(), Some(1.6)).is_empty());

        let mut lagging = clean_report();
        lagging.read_delay.record(450_000).expect("record");
        for _ in 0..10 {
            lagging.read_delay.record(450_000).expect("record");
        }
        assert!(invalid_reasons(&lagging, None).is_empty());
        assert!(read_delay_over_bound(&lagging));
        assert!(!read_delay_over_bound(&clean_report()));
    }
}
