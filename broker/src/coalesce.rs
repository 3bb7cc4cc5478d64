//! The batching policy: hold a busy connection's next send until the current window ends.
//!
//! # The rule
//!
//! With a window W > 0, after a connection's write completes at time t the connection is
//! *busy* if its previous write completed less than W before t, or if this write was started
//! as soon as a hold ended and found frames already waiting. A busy connection's next write
//! waits until the current window ends. Windows are the server clock's intervals
//! `[kW, (k+1)W)`, counted from the server's start and shared by every connection: a hold
//! lasts until the end of the interval the write completed in. A connection that is not busy
//! writes as soon as it has frames.
//!
//! Windows on a fixed grid make the rule's effect independent of how a runtime completes
//! writes. When a window instead opened at the first completion after the previous one ended,
//! a runtime that submits a whole wake-up's writes at once and reaps them together (io_uring,
//! the floor) opened each window a burst later than one whose first write completes inline
//! (epoll), so its windows were W plus a burst long: fewer sends and longer waits for a reason
//! that was not the runtime's cost (broker/PERF.md, "Windows on a grid").
//!
//! So under load a message waits at most W and each write carries everything queued
//! meanwhile (fewer sends per delivered message: most of a fan-out server's CPU is the
//! kernel's send path, one pass per send); at low load nothing is held and nothing is paid.
//! Sharing the window end means every held writer wakes at the same instant, so one timer
//! serves a window: the writer whose hold opened it ([`Hold::keeps_time`]) sleeps until its
//! end and then wakes every writer held for it; the others only wait to be woken.
//!
//! The rule lives in the broker (the timekeeper sleeps on the runtime's own timer), so every
//! row runs the same policy.
//!
//! # Ending a hold on time on every runtime
//!
//! Timers differ: Tokio's and Monoio's wheels round a deadline up to their next 1 ms tick, so
//! a 1 ms hold lasted up to 2 ms there and those rows sent about a third fewer, fuller segments
//! than rows with exact timers (broker/PERF.md): the same rule, a different policy in effect.
//! So a held writer also waits on the window itself ([`Window::released`]), and the first
//! reader to handle input after the window's end wakes every writer held for it
//! ([`Window::release_due`]). Under load, when holds happen, input arrives all the time and a
//! hold ends within one input's spacing of its end whatever the timer; when input stops, the
//! timekeeper's sleep still ends it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

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
    /// Writers held until a window end: (registration id, end in ns after `epoch`, waker).
    held: Mutex<Vec<(u64, u64, Waker)>>,
    /// The earliest end in `held`, readable without the lock (`u64::MAX`: nothing held).
    earliest_held_ns: AtomicU64,
    next_id: AtomicU64,
}

impl Window {
    /// A window of `window` (zero: batching off).
    pub fn new(window: Duration) -> Self {
        Window {
            window,
            epoch: Instant::now(),
            end_ns: AtomicU64::new(0),
            held: Mutex::new(Vec::new()),
            earliest_held_ns: AtomicU64::new(u64::MAX),
            next_id: AtomicU64::new(0),
        }
    }

    fn ns_since_epoch(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    /// A future that completes once a hold ending at `until` is over and a reader or the
    /// window's timekeeper ([`Window::keeper`]) has seen that ([`Window::release_due`]). Its
    /// first poll completes at once if `until` has passed.
    pub fn released(&self, until: Instant) -> Released<'_> {
        Released {
            window: self,
            until_ns: self.ns_since_epoch(until),
            id: None,
        }
    }

    /// [`Window::release_due`] at the current time; reads the clock only while a writer is
    /// held. Readers call it after each read.
    pub fn release_due_now(&self) {
        if self.earliest_held_ns.load(Ordering::Acquire) != u64::MAX {
            self.release_due(Instant::now());
        }
    }

    /// Wakes every writer whose hold ended at or before `now`. Cheap when nothing is held or
    /// nothing is due (one atomic load).
    pub fn release_due(&self, now: Instant) {
        if self.ns_since_epoch(now) < self.earliest_held_ns.load(Ordering::Acquire) {
            return;
        }
        self.release_held_until(now);
    }

    /// The guard of a hold that keeps its window's time ([`Hold::keeps_time`]): dropping it
    /// ends the window at `end` for every writer held for it. The release takes the lock
    /// whatever the lock-free hint says, so that a writer registering at this very moment is
    /// either found by it or reads a clock already past its end (see [`Released`]'s poll).
    pub fn keeper(&self, end: Instant) -> Keeper<'_> {
        Keeper { window: self, end }
    }

    fn release_held_until(&self, now: Instant) {
        let now_ns = self.ns_since_epoch(now);
        let mut due = Vec::new();
        {
            let mut held = self.held.lock();
            let mut i = 0;
            while i < held.len() {
                if held[i].1 <= now_ns {
                    due.push(held.swap_remove(i).2);
                } else {
                    i += 1;
                }
            }
            self.publish_earliest(&held);
        }
        for waker in due {
            waker.wake();
        }
    }

    /// Stores the earliest end in `held` (the caller holds its lock).
    fn publish_earliest(&self, held: &[(u64, u64, Waker)]) {
        let earliest = held.iter().map(|(_, until, _)| *until).min();
        self.earliest_held_ns
            .store(earliest.unwrap_or(u64::MAX), Ordering::Release);
    }

    /// The window length (zero: off).
    pub fn duration(&self) -> Duration {
        self.window
    }

    /// Whether batching is off.
    pub fn is_off(&self) -> bool {
        self.window.is_zero()
    }

    /// The hold of a writer that becomes busy at `now`: until the end of the window (the
    /// grid interval) `now` lies in. The first hold of a window keeps its time.
    pub fn hold_until(&self, now: Instant) -> Hold {
        let now_ns = now.saturating_duration_since(self.epoch).as_nanos() as u64;
        let mut end = self.end_ns.load(Ordering::Acquire);
        loop {
            if end > now_ns {
                return Hold {
                    until: self.epoch + Duration::from_nanos(end),
                    keeps_time: false,
                };
            }
            let w = (self.window.as_nanos() as u64).max(1);
            let new_end = (now_ns / w + 1) * w;
            match self.end_ns.compare_exchange_weak(
                end,
                new_end,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Hold {
                        until: self.epoch + Duration::from_nanos(new_end),
                        keeps_time: true,
                    }
                }
                Err(current) => end = current,
            }
        }
    }
}

/// See [`Window::keeper`].
pub struct Keeper<'a> {
    window: &'a Window,
    end: Instant,
}

impl Drop for Keeper<'_> {
    fn drop(&mut self) {
        self.window.release_held_until(self.end);
    }
}

/// A writer's hold, from [`Window::hold_until`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    /// When the hold ends: its window's end.
    pub until: Instant,
    /// This hold opened the window: its writer sleeps until `until` and then wakes every
    /// writer held for it ([`Window::keeper`]), even if its own hold ends otherwise.
    /// Exactly one hold per window keeps its time.
    pub keeps_time: bool,
}

/// See [`Window::released`]. Dropping it withdraws its registration, so a writer whose own
/// sleep ended the hold is not woken again by a later release.
pub struct Released<'a> {
    window: &'a Window,
    until_ns: u64,
    /// Registration id while its waker is in the window's list.
    id: Option<u64>,
}

impl Future for Released<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let window = this.window;
        let mut held = window.held.lock();
        // Read under the lock: a timekeeper's release takes the lock after its clock passed
        // the end, so a registration it did not see reads a clock past the end here.
        if this.id.is_none() && window.ns_since_epoch(Instant::now()) >= this.until_ns {
            return Poll::Ready(());
        }
        match this.id {
            Some(id) => match held.iter_mut().find(|(i, _, _)| *i == id) {
                Some((_, _, waker)) => {
                    if !waker.will_wake(cx.waker()) {
                        *waker = cx.waker().clone();
                    }
                    Poll::Pending
                }
                // Taken out by a release: the hold is over.
                None => {
                    this.id = None;
                    Poll::Ready(())
                }
            },
            None => {
                let id = window.next_id.fetch_add(1, Ordering::Relaxed);
                held.push((id, this.until_ns, cx.waker().clone()));
                window
                    .earliest_held_ns
                    .fetch_min(this.until_ns, Ordering::AcqRel);
                this.id = Some(id);
                Poll::Pending
            }
        }
    }
}

impl Drop for Released<'_> {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else {
            return;
        };
        let mut held = self.window.held.lock();
        if let Some(at) = held.iter().position(|(i, _, _)| *i == id) {
            held.swap_remove(at);
            self.window.publish_earliest(&held);
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
    fn holds_last_until_the_end_of_their_grid_interval_and_share_it() {
        let w = Window::new(W);
        let t0 = w.epoch + W * 7 + W / 4;
        let first = w.hold_until(t0);
        assert_eq!(first.until, w.epoch + W * 8, "the end of the grid interval");
        assert!(
            first.keeps_time,
            "the hold that opens a window keeps its time"
        );
        let joined = w.hold_until(t0 + W / 2);
        assert_eq!(joined.until, first.until, "joins the open window");
        assert!(!joined.keeps_time, "one timekeeper per window");
        let next = w.hold_until(first.until + W / 10);
        assert_eq!(next.until, w.epoch + W * 9, "the next interval");
        assert!(next.keeps_time);
        // A completion exactly at a window's end belongs to the next window.
        assert_eq!(w.hold_until(w.epoch + W * 9).until, w.epoch + W * 10);
    }

    struct Count(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting_waker() -> (std::sync::Arc<Count>, Waker) {
        let count = std::sync::Arc::new(Count(std::sync::atomic::AtomicUsize::new(0)));
        (count.clone(), Waker::from(count))
    }

    #[test]
    fn a_reader_past_the_window_end_releases_the_held_writers_and_not_before() {
        let w = Window::new(W);
        let t0 = Instant::now();
        let end = w.hold_until(t0).until;
        let (woken, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut held = Box::pin(w.released(end));
        assert!(held.as_mut().poll(&mut cx).is_pending());
        w.release_due(end - W / 10);
        assert_eq!(woken.0.load(Ordering::SeqCst), 0, "released before the end");
        assert!(held.as_mut().poll(&mut cx).is_pending());
        w.release_due(end);
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
        assert!(held.as_mut().poll(&mut cx).is_ready());
        assert_eq!(w.held.lock().len(), 0);
    }

    #[test]
    fn the_timekeepers_release_wakes_every_writer_held_for_its_window() {
        let w = Window::new(W);
        let t0 = w.epoch + W * 3;
        let keeper = w.hold_until(t0);
        let (woken, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut held: Vec<_> = (0..5)
            .map(|i| {
                let hold = w.hold_until(t0 + W / 10 * i);
                assert!(!hold.keeps_time);
                assert_eq!(hold.until, keeper.until);
                Box::pin(w.released(hold.until))
            })
            .collect();
        for h in &mut held {
            assert!(h.as_mut().poll(&mut cx).is_pending());
        }
        drop(w.keeper(keeper.until));
        assert_eq!(woken.0.load(Ordering::SeqCst), 5);
        for h in &mut held {
            assert!(h.as_mut().poll(&mut cx).is_ready());
        }
        assert_eq!(w.held.lock().len(), 0);
    }

    #[test]
    fn a_hold_dropped_before_its_release_is_not_woken() {
        let w = Window::new(W);
        let end = w.hold_until(Instant::now()).until;
        let (woken, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut first = Box::pin(w.released(end));
        let mut later = Box::pin(w.released(end + W));
        assert!(first.as_mut().poll(&mut cx).is_pending());
        assert!(later.as_mut().poll(&mut cx).is_pending());
        drop(first);
        assert_eq!(w.held.lock().len(), 1);
        // Only the later hold is left, and it is not due at `end`.
        w.release_due(end);
        assert_eq!(woken.0.load(Ordering::SeqCst), 0);
        w.release_due(end + W);
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
        // A hold whose end has passed is over at its first poll, without registering.
        std::thread::sleep(end.saturating_duration_since(Instant::now()) + W);
        let mut past = Box::pin(w.released(end));
        assert!(past.as_mut().poll(&mut cx).is_ready());
        assert_eq!(w.held.lock().len(), 0);
    }
}
