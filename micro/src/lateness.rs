//! How late a 1 ms sleep wakes: a distribution per row, not a mean (criterion reports means
//! and intervals of means, which hide the tail a timer's slack shows up in).

use std::time::{Duration, Instant};

use fanbench_rt::Runtime;
use serde::{Deserialize, Serialize};

/// The sleep whose lateness is measured.
pub const REQUESTED: Duration = Duration::from_millis(1);

/// The lateness distribution of `sleeps` sleeps of [`REQUESTED`] on one row, in microseconds
/// (wake time minus requested deadline; negative would mean it woke early).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LatenessSummary {
    pub sleeps: usize,
    pub requested_us: f64,
    pub min_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
    /// Sleeps that returned before the requested duration (a bug in the row's timer).
    pub early: usize,
}

/// Sleep `count` times in a row on `rt` and summarise how late each woke.
pub fn measure<R: Runtime>(rt: &mut R, count: usize) -> LatenessSummary {
    let late_us = rt.block_on(async {
        let mut late = Vec::with_capacity(count);
        for _ in 0..count {
            let start = Instant::now();
            R::sleep(REQUESTED).await;
            let slept = start.elapsed().as_secs_f64() * 1e6;
            late.push(slept - REQUESTED.as_secs_f64() * 1e6);
        }
        late
    });
    summarise(late_us)
}

/// Summarise lateness samples (microseconds).
pub fn summarise(mut late_us: Vec<f64>) -> LatenessSummary {
    late_us.sort_by(f64::total_cmp);
    let n = late_us.len();
    let at = |q: f64| -> f64 {
        if n == 0 {
            return f64::NAN;
        }
        // Nearest rank: the smallest sample with at least q of the samples at or below it.
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        late_us[rank - 1]
    };
    LatenessSummary {
        sleeps: n,
        requested_us: REQUESTED.as_secs_f64() * 1e6,
        min_us: at(0.0),
        p50_us: at(0.50),
        p90_us: at(0.90),
        p99_us: at(0.99),
        max_us: at(1.0),
        mean_us: if n == 0 {
            f64::NAN
        } else {
            late_us.iter().sum::<f64>() / n as f64
        },
        early: late_us.iter().filter(|&&l| l < 0.0).count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_and_early_wakes_are_counted() {
        let samples: Vec<f64> = (1..=100).map(f64::from).chain([-3.0]).collect();
        let s = summarise(samples);
        assert_eq!(s.sleeps, 101);
        assert_eq!(s.min_us, -3.0);
        assert_eq!(s.p50_us, 50.0);
        assert_eq!(s.p99_us, 99.0);
        assert_eq!(s.max_us, 100.0);
        assert_eq!(s.early, 1);
    }
}
