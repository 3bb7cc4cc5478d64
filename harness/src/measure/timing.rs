//! The timing of quick runs (`bench-all --quick`, `sweep --quick`, and every step of
//! bench-all's quick sweep): one place, so the two commands cannot drift apart.

use crate::results::schema::Scenario;

/// Warm-up, window and repetitions a quick run applies to every workload (before the
/// command-line overrides).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuickTiming {
    pub warmup_s: f64,
    pub duration_s: f64,
    pub repetitions: u32,
}

/// `--quick`.
pub const QUICK: QuickTiming = QuickTiming {
    warmup_s: 0.25,
    duration_s: 1.0,
    repetitions: 1,
};

impl QuickTiming {
    /// Gives `scenario` this timing.
    pub fn apply(&self, scenario: &mut Scenario) {
        scenario.warmup_s = self.warmup_s;
        scenario.duration_s = self.duration_s;
        scenario.repetitions = self.repetitions;
    }
}
