//! Per-publisher sequence checking for one subscriber: loss, duplicates and reordering over the
//! sequence numbers due in the measured window.

use std::ops::Range;

/// What one received sequence number turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// First time seen, and higher than every sequence number seen before.
    InOrder,
    /// First time seen, but a higher sequence number arrived earlier.
    Reordered,
    /// Seen before.
    Duplicate,
    /// Not one of the sequence numbers this tracker expects (a bug or corruption upstream).
    Unexpected,
}

/// Tracks which of the expected sequence numbers arrived.
///
/// - lost = expected - distinct sequence numbers received;
/// - a duplicate is a sequence number received again (each extra copy counts once);
/// - a reordered message is one received after a higher sequence number (counted once, when it
///   arrives; it is not lost).
#[derive(Debug, Clone)]
pub struct SeqTracker {
    expected: Range<u64>,
    seen: Vec<u64>,
    highest: Option<u64>,
    unique: u64,
    duplicates: u64,
    reordered: u64,
}

impl SeqTracker {
    /// A tracker expecting every sequence number in `expected`.
    pub fn new(expected: Range<u64>) -> Self {
        let words = (expected.end.saturating_sub(expected.start)).div_ceil(64);
        Self {
            seen: vec![0; usize::try_from(words).unwrap_or(usize::MAX)],
            expected,
            highest: None,
            unique: 0,
            duplicates: 0,
            reordered: 0,
        }
    }

    /// Records one received sequence number.
    pub fn observe(&mut self, seq: u64) -> Observation {
        if !self.expected.contains(&seq) {
            return Observation::Unexpected;
        }
        let offset = seq - self.expected.start;
        let (word, bit) = ((offset / 64) as usize, 1u64 << (offset % 64));
        if self.seen[word] & bit != 0 {
            self.duplicates += 1;
            return Observation::Duplicate;
        }
        self.seen[word] |= bit;
        self.unique += 1;
        match self.highest {
            Some(highest) if seq < highest => {
                self.reordered += 1;
                Observation::Reordered
            }
            _ => {
                self.highest = Some(seq);
                Observation::InOrder
            }
        }
    }

    /// How many sequence numbers were expected.
    pub fn expected(&self) -> u64 {
        self.expected.end.saturating_sub(self.expected.start)
    }

    /// Distinct expected sequence numbers received.
    #[cfg(test)]
    pub fn unique(&self) -> u64 {
        self.unique
    }

    /// Expected sequence numbers never received.
    pub fn lost(&self) -> u64 {
        self.expected() - self.unique
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    pub fn reordered(&self) -> u64 {
        self.reordered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_in_order_stream_has_no_loss_duplicates_or_reordering() {
        let mut t = SeqTracker::new(10..200);
        for seq in 10..200 {
            assert_eq!(t.observe(seq), Observation::InOrder);
        }
        assert_eq!((t.expected(), t.unique(), t.lost()), (190, 190, 0));
        assert_eq!((t.duplicates(), t.reordered()), (0, 0));
    }

    #[test]
    fn gaps_count_as_lost() {
        let mut t = SeqTracker::new(0..100);
        for seq in (0..100).filter(|s| s % 10 != 3) {
            t.observe(seq);
        }
        assert_eq!(t.lost(), 10);
        assert_eq!(t.reordered(), 0);
    }

    #[test]
    fn repeated_sequence_numbers_count_as_duplicates_not_deliveries() {
        let mut t = SeqTracker::new(0..5);
        for seq in [0, 1, 1, 2, 1, 3, 4] {
            t.observe(seq);
        }
        assert_eq!(t.duplicates(), 2);
        assert_eq!(t.unique(), 5);
        assert_eq!(t.lost(), 0);
    }

    #[test]
    fn late_arrivals_count_as_reordered_and_not_lost() {
        let mut t = SeqTracker::new(0..6);
        let seen: Vec<Observation> = [0, 2, 1, 3, 5, 4].iter().map(|&s| t.observe(s)).collect();
        assert_eq!(seen[2], Observation::Reordered);
        assert_eq!(seen[5], Observation::Reordered);
        assert_eq!(t.reordered(), 2);
        assert_eq!(t.lost(), 0);
    }

    #[test]
    fn a_duplicate_of_an_old_message_is_not_also_counted_as_reordered() {
        let mut t = SeqTracker::new(0..3);
        t.observe(0);
        t.observe(2);
        assert_eq!(t.observe(0), Observation::Duplicate);
        assert_eq!((t.duplicates(), t.reordered(), t.lost()), (1, 0, 1));
    }

    #[test]
    fn sequence_numbers_outside_the_window_are_reported_and_ignored() {
        let mut t = SeqTracker::new(100..164);
        assert_eq!(t.observe(99), Observation::Unexpected);
        assert_eq!(t.observe(164), Observation::Unexpected);
        assert_eq!(t.observe(163), Observation::InOrder);
        assert_eq!((t.unique(), t.lost()), (1, 63));
    }

    #[test]
    fn empty_window_expects_nothing() {
        let mut t = SeqTracker::new(5..5);
        assert_eq!(t.observe(5), Observation::Unexpected);
        assert_eq!((t.expected(), t.lost()), (0, 0));
    }
}
