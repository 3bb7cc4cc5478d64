//! The batching policy: hold a busy connection's next send until the current window ends.
//!
//! # The rule
//!
//! With a window W > 0, after a connection's write completes at time t the connection is
//! *busy* if its previous write completed less than W before t, or if this write was started
//! as soon as a hold ended and found frames already waiting. A busy connection's next write
//! waits until the current *shared* window ends: there is one window end for the whole
//! server; a hold joins it when it lies in the future, otherwise it starts a new window ending
//! W from now. A connection that is not busy writes as soon as it has frames.
//!
//! So under load a message waits at most W and each write carries everything queued
//! meanwhile (fewer sends per delivered message: most of a fan-out server's CPU is the
//! kernel's send path, one pass per send); at low load nothing is held and nothing is paid.
//! Sharing the window end means every held writer wakes at the same instant, which a
//! runtime's timer serves with one expiry instead of one per connection.
//!
//! The rule lives in the broker (each writer sleeps on the runtime's own timer), so every row
//! runs the same policy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The default window: 1 ms, the same for every row. Chosen by measurement (`broker/PERF.md`):
/// under load it cuts sends per delivered message, and with them CPU per message, for at most
/// one window of latency; at low load it holds nothing.
pub const DEFAULT_COALESCE: Duration = Duration::from_millis(1);

/// The longest window the harness accepts: a longer one is a latency bug, not a policy.
pub const MAX_COALESCE: Duration = Duration::from_millis(100);

/// The server-wide window end shared by every connection's writer.
pub struct Window {
    window: Duration,
    epoch: Instant,
    /// Nanoseconds after `epoch` at which the current window ends (0: none yet).
    end_ns: AtomicU64,
}

impl Window {
    /// A window of `window` (zero: batching off).
    pub fn new(window: Duration) -> Self {
        Window {
            window,
            epoch: Instant::now(),
            end_ns: AtomicU64::new(0),
        }
    }

    /// The window length (zero: off).
    pub fn duration(&self) -> Duration {
        self.window
    }

    /// Whether batching is off.
    pub fn is_off(&self) -> bool {
        self.window.is_zero()
    }

    /// When a hold starting at `now` ends: the current window's end if it lies ahead,
    /// otherwise the end of a new window starting now.
    pub fn hold_until(&self, now: Instant) -> Instant {
        let now_ns = now.saturating_duration_since(self.epoch).as_nanos() as u64;
        let mut end = self.end_ns.load(Ordering::Acquire);
        loop {
            if end > now_ns {
                return self.epoch + Duration::from_nanos(end);
            }
            let new_end = now_ns + self.window.as_nanos() as u64;
            match self.end_ns.compare_exchange_weak(
                end,
                new_end,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return self.epoch + Duration::from_nanos(new_end),
                Err(current) => end = current,
            }
        }
    }
}

/// One writer's view of the rule: feed it each write's completion, ask it whether to hold.
#[derive(Debug, Default)]
pub struct Pacing {
    last_done: Option<Instant>,
    /// The write in flight was started as soon as a hold ended, with frames waiting.
    sent_on_release: bool,
}

impl Pacing {
    /// Note that the next write starts right after a hold ended, with frames waiting.
    pub fn released_with_work(&mut self) {
        self.sent_on_release = true;
    }

    /// A write completed at `now`: whether the connection is busy (its next write is held).
    pub fn completed(&mut self, now: Instant, window: Duration) -> bool {
        let recent = self
            .last_done
            .is_some_and(|prev| now.saturating_duration_since(prev) < window);
        let busy = !window.is_zero() && (recent || self.sent_on_release);
        self.last_done = Some(now);
        self.sent_on_release = false;
        busy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_millis(1);

    #[test]
    fn a_connection_that_writes_less_than_once_a_window_is_never_busy() {
        let mut p = Pacing::default();
        let t0 = Instant::now();
        for i in 0..10 {
            assert!(!p.completed(t0 + W * 2 * i, W), "write {i}");
        }
    }

    #[test]
    fn two_writes_within_a_window_make_the_connection_busy() {
        let mut p = Pacing::default();
        let t0 = Instant::now();
        assert!(!p.completed(t0, W));
        assert!(p.completed(t0 + W / 2, W));
    }

    #[test]
    fn a_write_sent_on_release_keeps_the_connection_busy() {
        let mut p = Pacing::default();
        let t0 = Instant::now();
        assert!(!p.completed(t0, W));
        assert!(p.completed(t0 + W / 4, W));
        // Held for a whole window: the previous completion is now older than W.
        p.released_with_work();
        assert!(p.completed(t0 + W * 2, W));
        // Released with nothing waiting: the next write came later on its own.
        assert!(!p.completed(t0 + W * 4, W));
    }

    #[test]
    fn batching_off_never_holds() {
        let mut p = Pacing::default();
        let t0 = Instant::now();
        p.released_with_work();
        assert!(!p.completed(t0, Duration::ZERO));
        assert!(!p.completed(t0, Duration::ZERO));
    }

    #[test]
    fn holds_join_the_current_window_and_start_a_new_one_after_it() {
        let w = Window::new(W);
        let t0 = Instant::now();
        let end = w.hold_until(t0);
        assert_eq!(end.duration_since(t0), W);
        assert_eq!(w.hold_until(t0 + W / 2), end, "joins the open window");
        let next = w.hold_until(end + W / 10);
        assert_eq!(
            next.duration_since(end + W / 10),
            W,
            "a new window after the end"
        );
    }
}
