//! Histograms and per-second window accumulators, kept per thread and merged at the end.

use hdrhistogram::Histogram;

/// Highest value any histogram tracks: 60 s in ns (larger values are clamped to it).
pub const HIGHEST_NS: u64 = 60_000_000_000;

/// A latency histogram: values in nanoseconds, 1 us resolution at the low end, 3 significant
/// digits, up to 60 s.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, HIGHEST_NS, 3).expect("constant histogram bounds are valid")
}

/// A pacing-lag histogram: values in nanoseconds, 1 ns resolution at the low end (lags are
/// usually a few microseconds), 3 significant digits, up to 60 s.
pub fn pacing_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_NS, 3).expect("constant histogram bounds are valid")
}

/// Adds `from` into `into`; both come from the constructors above, so their ranges agree.
pub fn merge(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    into.add(from)
        .expect("histograms built with the same bounds merge");
}

/// A per-second window's latency histogram: like [`latency_histogram`] but 2 significant
/// digits (1% precision is plenty for a per-second p50/p99, and it keeps an hour-long run's
/// 3600 windows per thread to about 80 MB instead of 800 MB).
pub fn window_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, HIGHEST_NS, 2).expect("constant histogram bounds are valid")
}

/// What the subscribers of one thread saw for messages due in one second of the window.
#[derive(Debug, Clone)]
pub struct WindowAcc {
    pub delivered: u64,
    /// Messages whose receive time fell in this second (any due time).
    pub received: u64,
    pub latency: Histogram<u64>,
}

impl WindowAcc {
    pub fn new() -> Self {
        Self {
            delivered: 0,
            received: 0,
            latency: window_histogram(),
        }
    }

    pub fn merge(&mut self, other: &WindowAcc) {
        self.delivered += other.delivered;
        self.received += other.received;
        merge(&mut self.latency, &other.latency);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_histogram_holds_both_threads_values() {
        let mut a = latency_histogram();
        let mut b = latency_histogram();
        a.saturating_record(10_000);
        b.saturating_record(5_000_000);
        merge(&mut a, &b);
        assert_eq!(a.len(), 2);
        assert!(a.max() >= 5_000_000 && a.max() < 5_010_000);
    }

    #[test]
    fn values_beyond_sixty_seconds_are_clamped_not_dropped() {
        let mut h = latency_histogram();
        h.saturating_record(u64::MAX);
        assert_eq!(h.len(), 1);
        assert!(h.max() >= HIGHEST_NS - HIGHEST_NS / 1000);
    }

    #[test]
    fn pacing_histogram_resolves_sub_microsecond_lags() {
        let mut h = pacing_histogram();
        h.saturating_record(300);
        assert_eq!(h.max(), 300);
    }
}
