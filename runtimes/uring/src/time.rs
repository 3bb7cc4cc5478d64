//! Timers: `sleep`, `sleep_until`, `interval`.
//!
//! # State
//!
//! Pending sleeps live in one ordered map keyed by `(deadline, id)`. Each tick the executor
//! wakes every sleep whose deadline passed; when the runtime is about to park, the driver arms
//! one kernel timeout for the earliest deadline (see `driver::op::timeout`). A sleep decides
//! it is done by reading the clock itself, so it never completes early, and dropping it removes
//! its entry (cancellation safe: nothing fires for a dropped sleep).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

use crate::context::Context;

type TimerKey = (Instant, u64);

/// The runtime's pending sleeps.
#[derive(Default)]
pub(crate) struct Timers {
    entries: BTreeMap<TimerKey, Waker>,
    next_id: u64,
}

impl Timers {
    fn insert(&mut self, deadline: Instant, waker: Waker) -> TimerKey {
        let key = (deadline, self.next_id);
        self.next_id += 1;
        self.entries.insert(key, waker);
        key
    }

    /// The earliest deadline, if any sleep is pending.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.entries.first_key_value().map(|((d, _), _)| *d)
    }

    /// Remove every entry due at `now` and collect its waker.
    pub(crate) fn expire(&mut self, now: Instant, out: &mut Vec<Waker>) {
        while let Some(entry) = self.entries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            out.push(entry.remove());
        }
    }

    /// Drop every entry (runtime shutdown).
    pub(crate) fn clear(&mut self) -> Vec<Waker> {
        std::mem::take(&mut self.entries).into_values().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Complete no earlier than `duration` from now.
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(Instant::now() + duration)
}

/// Complete no earlier than `deadline`.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        registered: None,
    }
}

/// The future returned by [`sleep`]. Must be polled inside a `UringRuntime`.
pub struct Sleep {
    deadline: Instant,
    registered: Option<(Rc<Context>, TimerKey)>,
}

impl Sleep {
    /// When this sleep completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    fn unregister(&mut self) {
        if let Some((ctx, key)) = self.registered.take() {
            let waker = ctx.timers.borrow_mut().entries.remove(&key);
            drop(waker);
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = self.get_mut();
        // Registered and still in the map: the executor has not found it due yet (it removes
        // entries as they expire, every tick), so no clock read is needed. A sleep is polled
        // each time its task is (a writer selects on one per wake-up), so this matters.
        if let Some((ctx, key)) = &this.registered {
            if let Some(w) = ctx.timers.borrow_mut().entries.get_mut(key) {
                if !w.will_wake(cx.waker()) {
                    *w = cx.waker().clone();
                }
                return Poll::Pending;
            }
        }
        if Instant::now() >= this.deadline {
            this.unregister();
            return Poll::Ready(());
        }
        match &this.registered {
            Some((ctx, key)) => {
                let mut timers = ctx.timers.borrow_mut();
                match timers.entries.get_mut(key) {
                    Some(w) => {
                        if !w.will_wake(cx.waker()) {
                            *w = cx.waker().clone();
                        }
                    }
                    // Expired but the clock read above says not yet due: cannot happen with a
                    // monotonic clock; re-register to stay correct regardless.
                    None => {
                        let key = timers.insert(this.deadline, cx.waker().clone());
                        drop(timers);
                        if let Some((_, k)) = &mut this.registered {
                            *k = key;
                        }
                    }
                }
            }
            None => {
                let ctx = Context::current()
                    .expect("fanbench-uring: sleep polled outside a UringRuntime");
                let key = ctx
                    .timers
                    .borrow_mut()
                    .insert(this.deadline, cx.waker().clone());
                this.registered = Some((ctx, key));
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.unregister();
    }
}

/// A periodic timer: [`Interval::tick`] completes once per `period`, skipping ticks that
/// were missed rather than bursting to catch up.
pub struct Interval {
    next: Instant,
    period: Duration,
}

/// Ticks every `period`, the first tick immediately.
///
/// # Panics
///
/// If `period` is zero.
pub fn interval(period: Duration) -> Interval {
    assert!(
        !period.is_zero(),
        "fanbench-uring: interval period must be non-zero"
    );
    Interval {
        next: Instant::now(),
        period,
    }
}

impl Interval {
    /// Wait for the next tick; returns its scheduled time.
    pub async fn tick(&mut self) -> Instant {
        let scheduled = self.next;
        sleep_until(scheduled).await;
        let now = Instant::now();
        self.next = scheduled + self.period;
        if self.next <= now {
            // Missed ticks: skip to the next one in the future.
            let behind = now.duration_since(scheduled);
            let periods = (behind.as_nanos() / self.period.as_nanos()) as u32 + 1;
            self.next = scheduled + self.period * periods;
        }
        scheduled
    }
}
