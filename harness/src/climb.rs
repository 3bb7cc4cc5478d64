//! The load sequence shared by `fanbench sweep` and `fanbench calibrate`: up by a factor while
//! every step passes, then, while refinements are left, the geometric middle of the highest
//! passing and the lowest failing load (each refinement narrows that interval by its square
//! root: with the factor 2, one pins the limit to within 1.41x, two to within 1.19x).

/// Where the load goes next. The caller measures [`Climb::rate`], then reports whether that
/// load passed with [`Climb::next`].
#[derive(Debug, Clone)]
pub struct Climb {
    rate: f64,
    factor: f64,
    /// Climbing steps left (refinements not counted); `None`: no limit.
    climbs_left: Option<u32>,
    refine_left: u32,
    /// Highest passing load, lowest failing load.
    low: Option<f64>,
    high: Option<f64>,
}

impl Climb {
    /// Starts at `start`; at most `max_steps` climbing steps (`None`: until one fails).
    pub fn new(start: f64, factor: f64, max_steps: Option<u32>, refine: u32) -> Self {
        Climb {
            rate: start,
            factor,
            climbs_left: max_steps,
            refine_left: refine,
            low: None,
            high: None,
        }
    }

    /// The load to measure now.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Whether the climb has stopped rising and now narrows the limit.
    pub fn refining(&self) -> bool {
        self.high.is_some()
    }

    /// The load at [`Climb::rate`] passed (or not): the next load, or `None` when the climb
    /// is over. Refinement needs a passing load below the failing one.
    pub fn next(&mut self, passed: bool) -> Option<f64> {
        let refining = self.refining();
        if passed {
            self.low = Some(self.low.map_or(self.rate, |l| l.max(self.rate)));
        } else {
            self.high = Some(self.high.map_or(self.rate, |h| h.min(self.rate)));
        }
        if !refining {
            self.climbs_left = self.climbs_left.map(|n| n.saturating_sub(1));
        }
        self.rate = match (self.low, self.high) {
            (_, None) if self.climbs_left != Some(0) => self.rate * self.factor,
            (Some(low), Some(high)) if self.refine_left > 0 => {
                self.refine_left -= 1;
                (low * high).sqrt()
            }
            _ => return None,
        };
        Some(self.rate)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The loads a climb visits when every load up to `limit` passes.
    pub(crate) fn loads(mut climb: Climb, limit: f64) -> Vec<f64> {
        let mut seen = vec![climb.rate()];
        while let Some(next) = climb.next(*seen.last().expect("a load") <= limit) {
            seen.push(next);
        }
        seen
    }

    #[test]
    fn the_climb_refines_between_the_last_sustained_and_the_first_unsustained_load() {
        // 100, 200, 400 sustained; 800 not; middle 565.7 sustained; middle of that and 800.
        let seen = loads(Climb::new(100.0, 2.0, Some(9), 2), 600.0);
        assert_eq!(seen.len(), 6, "{seen:?}");
        assert_eq!(&seen[..4], &[100.0, 200.0, 400.0, 800.0]);
        assert!((seen[4] - (400.0_f64 * 800.0).sqrt()).abs() < 1e-9);
        assert!((seen[5] - (seen[4] * 800.0).sqrt()).abs() < 1e-9);
        // An unsustained refinement lowers the upper end instead.
        let seen = loads(Climb::new(100.0, 2.0, Some(9), 2), 450.0);
        let mid = (400.0_f64 * 800.0).sqrt();
        assert!((seen[4] - mid).abs() < 1e-9);
        assert!((seen[5] - (400.0 * mid).sqrt()).abs() < 1e-9, "{seen:?}");
        assert_eq!(loads(Climb::new(100.0, 2.0, Some(9), 0), 450.0).len(), 4);
    }

    #[test]
    fn the_climb_stops_at_max_steps_and_refines_nothing_without_a_sustained_step() {
        assert_eq!(
            loads(Climb::new(100.0, 2.0, Some(3), 1), 1e9),
            vec![100.0, 200.0, 400.0]
        );
        assert_eq!(loads(Climb::new(100.0, 2.0, Some(9), 1), 10.0), vec![100.0]);
    }
}
