//! Open-loop send schedule: message `n` of a publisher is due at `start + n / rate`, whatever
//! happened to the messages before it.

use std::ops::Range;

use anyhow::{ensure, Result};

/// Highest rate per publisher accepted (one message per 10 ns); keeps the schedule strictly
/// increasing in whole nanoseconds.
pub const MAX_RATE_PER_PUBLISHER: f64 = 1e8;

/// One publisher's schedule, in CLOCK_MONOTONIC nanoseconds.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    start_ns: u64,
    period_ns: f64,
}

impl Schedule {
    /// Messages per second.
    pub fn rate(&self) -> f64 {
        1e9 / self.period_ns
    }

    /// A schedule of `rate` messages per second starting at `start_ns`.
    pub fn new(start_ns: u64, rate: f64) -> Result<Self> {
        ensure!(
            rate.is_finite() && rate > 0.0 && rate <= MAX_RATE_PER_PUBLISHER,
            "rate per publisher must be a number in (0, {MAX_RATE_PER_PUBLISHER}] msg/s, got {rate}"
        );
        Ok(Self {
            start_ns,
            period_ns: 1e9 / rate,
        })
    }

    /// Schedules for `publishers` publishers at the same rate, their phases spread evenly over
    /// one period so that they do not all fall due at the same instant.
    pub fn staggered(base_ns: u64, rate: f64, publishers: u32) -> Result<Vec<Self>> {
        let first = Self::new(base_ns, rate)?;
        Ok((0..publishers)
            .map(|k| {
                let offset = (first.period_ns * f64::from(k) / f64::from(publishers)).round();
                Self {
                    start_ns: base_ns + offset as u64,
                    period_ns: first.period_ns,
                }
            })
            .collect())
    }

    /// When message `seq` is due.
    pub fn intended_ns(&self, seq: u64) -> u64 {
        self.start_ns + (seq as f64 * self.period_ns).round() as u64
    }

    /// The first sequence number due at or after `t_ns`.
    pub fn first_seq_at_or_after(&self, t_ns: u64) -> u64 {
        if t_ns <= self.start_ns {
            return 0;
        }
        let mut seq = ((t_ns - self.start_ns) as f64 / self.period_ns).floor() as u64;
        while self.intended_ns(seq) < t_ns {
            seq += 1;
        }
        while seq > 0 && self.intended_ns(seq - 1) >= t_ns {
            seq -= 1;
        }
        seq
    }

    /// The sequence numbers due in `[from_ns, to_ns)`.
    pub fn seqs_due_in(&self, from_ns: u64, to_ns: u64) -> Range<u64> {
        let first = self.first_seq_at_or_after(from_ns);
        let end = self.first_seq_at_or_after(to_ns).max(first);
        first..end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_n_is_due_at_start_plus_n_periods() {
        let s = Schedule::new(1_000, 2000.0).expect("valid");
        assert_eq!(s.intended_ns(0), 1_000);
        assert_eq!(s.intended_ns(1), 1_000 + 500_000);
        assert_eq!(s.intended_ns(2000), 1_000 + 1_000_000_000);
    }

    #[test]
    fn fractional_periods_do_not_drift() {
        // 3 msg/s: period 333_333_333.3 ns; after 3 million messages the error stays < 1 ns.
        let s = Schedule::new(0, 3.0).expect("valid");
        assert_eq!(s.intended_ns(3), 1_000_000_000);
        assert_eq!(s.intended_ns(3_000_000), 1_000_000_000_000_000);
    }

    #[test]
    fn first_seq_at_or_after_matches_brute_force() {
        for rate in [1.0, 7.0, 50.0, 333.3, 2000.0, 30.0] {
            let s = Schedule::new(5_000_000, rate).expect("valid");
            for t in (0..3_000_000_000u64).step_by(37_777_777) {
                let brute = (0..).find(|&n| s.intended_ns(n) >= t).expect("exists");
                assert_eq!(s.first_seq_at_or_after(t), brute, "rate {rate} t {t}");
            }
        }
    }

    #[test]
    fn window_counts_messages_due_inside_it_only() {
        // 10 msg/s from t=0: due at 0, 0.1 s, ... A window [1 s, 3 s) holds seqs 10..30.
        let s = Schedule::new(0, 10.0).expect("valid");
        assert_eq!(s.seqs_due_in(1_000_000_000, 3_000_000_000), 10..30);
        // A message due exactly at the end belongs to the next window.
        assert_eq!(s.seqs_due_in(1_000_000_000, 1_100_000_000), 10..11);
        assert!(s.seqs_due_in(2_000_000_000, 1_000_000_000).is_empty());
    }

    #[test]
    fn staggered_publishers_are_spread_over_one_period() {
        let all = Schedule::staggered(0, 100.0, 4).expect("valid");
        let starts: Vec<u64> = all.iter().map(|s| s.intended_ns(0)).collect();
        assert_eq!(starts, vec![0, 2_500_000, 5_000_000, 7_500_000]);
        assert_eq!(all[3].intended_ns(1), 17_500_000);
    }

    #[test]
    fn invalid_rates_are_rejected() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e9] {
            assert!(Schedule::new(0, rate).is_err(), "rate {rate}");
        }
    }
}
