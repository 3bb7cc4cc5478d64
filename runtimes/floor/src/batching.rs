//! The batching policy every fanbench row implements: hold a busy connection's next send until
//! the shared window ends.
//!
//! # The rule
//!
//! A window `W` (0 = off). When a send to a connection completes at time `t`, the connection is
//! *busy* if its previous send completed less than `W` before `t`, or if this send was started
//! right after a hold was released and found data waiting. A busy connection's next send is
//! held until the current window ends: windows are the monotonic clock's intervals
//! `[kW, (k+1)W)`, shared by every connection, and a hold lasts until the end of the interval
//! the send completed in (the broker's rule, `broker/src/coalesce.rs`). A connection that is
//! not busy sends as soon as it has data. Under load a message so waits at most `W`; at low
//! load nothing is held.
//!
//! This module is only the decision; the server keeps the list of held connections, arms one
//! io_uring timeout per window and releases the list when the window is over.

use std::time::Duration;

/// One connection's part of the policy.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ConnClock {
    /// When its previous send completed (monotonic ns).
    last_done: Option<u64>,
    /// The send in flight was started by a release and found data waiting.
    after_release: bool,
    /// Its next send waits for the window to end.
    pub held: bool,
}

impl ConnClock {
    /// A send is being started by a window's release (the connection had data waiting).
    pub fn released_with_data(&mut self) {
        self.after_release = true;
    }
}

/// What to do after a send completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Not busy: send whatever is queued now.
    SendNow,
    /// Busy: hold the next send. `new_window` is the end of the window this hold opened (arm a
    /// timeout for it); `None` when the hold joined the current window.
    Hold { new_window: Option<u64> },
}

/// The server-wide window.
#[derive(Debug, Clone)]
pub(crate) struct Batching {
    window_ns: u64,
    window_end: u64,
}

impl Batching {
    pub fn new(window: Duration) -> Self {
        Batching {
            window_ns: u64::try_from(window.as_nanos()).unwrap_or(u64::MAX),
            window_end: 0,
        }
    }

    /// A send on `conn` completed (every byte handed to the kernel) at `now`.
    pub fn send_done(&mut self, conn: &mut ConnClock, now: u64) -> Decision {
        let busy = self.window_ns > 0
            && (conn.after_release
                || conn
                    .last_done
                    .is_some_and(|t| now.saturating_sub(t) < self.window_ns));
        conn.last_done = Some(now);
        conn.after_release = false;
        if !busy {
            return Decision::SendNow;
        }
        conn.held = true;
        if self.window_end > now {
            Decision::Hold { new_window: None }
        } else {
            self.window_end = (now / self.window_ns + 1).saturating_mul(self.window_ns);
            Decision::Hold {
                new_window: Some(self.window_end),
            }
        }
    }

    /// Whether the current window has ended (held connections are due).
    pub fn window_over(&self, now: u64) -> bool {
        now >= self.window_end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn off_never_holds() {
        let mut b = Batching::new(Duration::ZERO);
        let mut c = ConnClock::default();
        for t in 0..10 {
            assert_eq!(b.send_done(&mut c, t * 1000), Decision::SendNow);
        }
    }

    #[test]
    fn a_second_completion_within_the_window_holds_and_opens_a_window() {
        let mut b = Batching::new(Duration::from_millis(1));
        let mut c = ConnClock::default();
        assert_eq!(b.send_done(&mut c, 10 * MS), Decision::SendNow);
        assert_eq!(
            b.send_done(&mut c, 10 * MS + MS / 2),
            Decision::Hold {
                new_window: Some(11 * MS)
            }
        );
        assert!(c.held);
        assert!(!b.window_over(11 * MS - 1));
        assert!(b.window_over(11 * MS));
    }

    #[test]
    fn completions_spaced_beyond_the_window_never_hold() {
        let mut b = Batching::new(Duration::from_millis(1));
        let mut c = ConnClock::default();
        for i in 0..5 {
            assert_eq!(b.send_done(&mut c, i * (MS + 1)), Decision::SendNow);
        }
    }

    #[test]
    fn a_hold_joins_a_window_already_open() {
        let mut b = Batching::new(Duration::from_millis(1));
        let (mut x, mut y) = (ConnClock::default(), ConnClock::default());
        b.send_done(&mut x, 0);
        b.send_done(&mut y, 0);
        assert_eq!(
            b.send_done(&mut x, 100),
            Decision::Hold {
                new_window: Some(MS)
            }
        );
        assert_eq!(
            b.send_done(&mut y, 200),
            Decision::Hold { new_window: None }
        );
    }

    #[test]
    fn a_send_started_by_a_release_with_data_keeps_the_connection_busy() {
        let mut b = Batching::new(Duration::from_millis(1));
        let mut c = ConnClock::default();
        b.send_done(&mut c, 0);
        b.send_done(&mut c, 100); // held until MS
        c.held = false;
        c.released_with_data();
        // Its completion comes more than a window after the previous one, yet it is busy.
        assert!(matches!(
            b.send_done(&mut c, 3 * MS),
            Decision::Hold {
                new_window: Some(_)
            }
        ));
        // A release that found nothing: the next completion long after is not busy.
        c.held = false;
        assert_eq!(b.send_done(&mut c, 10 * MS), Decision::SendNow);
    }
}
