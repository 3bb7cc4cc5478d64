//! The validity rules: when a repetition is kept but flagged invalid and excluded from
//! verdicts (DESIGN.md, "The load generator and measurement").

use super::instrument::{read_delay_limit_ns, HEADROOM_LIMIT};
use crate::loadgen::LoadReport;

/// Why a repetition is invalid (empty: valid). `headroom`: the calibrated ceiling over this
/// repetition's throughput, when known.
pub fn invalid_reasons(report: &LoadReport, headroom: Option<f64>) -> Vec<String> {
    let mut reasons = instrument_limits(report, headroom);
    if report.behind_schedule {
        reasons.push(format!(
            "load generator behind schedule (pacing lag p99 {:.0} us, max {:.0} us)",
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
    if report.expected == 0 {
        reasons.push("no message was due in the measured window".into());
    }
    reasons
}

/// The instrument-limited reasons: too little headroom, or a read delay past its bound.
pub fn instrument_limits(report: &LoadReport, headroom: Option<f64>) -> Vec<String> {
    let mut reasons = Vec::new();
    if let Some(h) = headroom.filter(|&h| h < HEADROOM_LIMIT) {
        reasons.push(format!(
            "instrument-limited: headroom {h:.2} < {HEADROOM_LIMIT} (load generator ceiling / throughput)"
        ));
    }
    if !report.read_delay.is_empty() {
        let p99 = report.read_delay.value_at_quantile(0.99);
        if p99 > read_delay_limit_ns() {
            reasons.push(format!(
                "instrument-limited: read delay p99 {:.0} us > {:.0} us (the load generator was behind reading)",
                p99 as f64 / 1e3,
                read_delay_limit_ns() as f64 / 1e3
            ));
        }
    }
    reasons
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

        let reasons = invalid_reasons(&clean_report(), Some(1.2));
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].contains("headroom 1.20"), "{reasons:?}");
        assert!(invalid_reasons(&clean_report(), Some(1.6)).is_empty());

        let mut lagging = clean_report();
        lagging.read_delay.record(450_000).expect("record");
        for _ in 0..10 {
            lagging.read_delay.record(450_000).expect("record");
        }
        let reasons = invalid_reasons(&lagging, None);
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].contains("read delay p99 450 us"), "{reasons:?}");
    }
}
