//! Timers: `sleep`, `sleep_until`, `interval`.
//!
//! # State
//!
//! Pending sleeps live in one ordered map keyed by `(deadline, id)`, pointing at a slot that
//! holds the sleep's waker. Each tick the executor fires every sleep whose deadline passed
//! (takes it out of the map, marks its slot fired and wakes it); when the runtime is about to
//! park, the driver arms one kernel timeout for the earliest deadline (see
//! `driver::op::timeout`). A registered sleep learns whether it is due from its slot, with no
//! clock read and no search of the map (a writer polls its sleeps each time it runs); a
//! sleep is fired only once the clock reads past its deadline, so it never completes early.
//! Dropping a sleep removes its entry and frees its slot (cancellation safe: nothing fires
//! for a dropped sleep).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

use crate::context::Context;

type TimerKey = (Instant, u64);

/// One registered sleep's state. `key` tells a slot's current sleep from an earlier one that
/// used the same slot (ids are never reused).
struct Slot {
    key: TimerKey,
    waker: Option<Waker>,
    fired: bool,
}

/// The runtime's pending sleeps.
#[derive(Default)]
pub(crate) struct Timers {
    /// Pending sleeps in deadline order: key -> index into `slots`.
    entries: BTreeMap<TimerKey, usize>,
    slots: Vec<Slot>,
    free: Vec<usize>,
    next_id: u64,
}

impl Timers {
    fn insert(&mut self, deadline: Instant, waker: Waker) -> (TimerKey, usize) {
        let key = (deadline, self.next_id);
        self.next_id += 1;
        let slot = Slot {
            key,
            waker: Some(waker),
            fired: false,
        };
        let index = match self.free.pop() {
            Some(i) => {
                self.slots[i] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        self.entries.insert(key, index);
        (key, index)
    }

    /// The slot of the sleep registered as `key`, if it still is.
    fn slot(&mut self, key: TimerKey, index: usize) -> Option<&mut Slot> {
        self.slots.get_mut(index).filter(|s| s.key == key)
    }

    /// Forget a registered sleep: out of the map if it has not fired, and its slot freed.
    fn remove(&mut self, key: TimerKey, index: usize) {
        if let Some(slot) = self.slot(key, index) {
            let fired = slot.fired;
            slot.waker = None;
            // A freed slot matches no sleep: no id is ever issued twice.
            slot.key.1 = u64::MAX;
            if !fired {
                self.entries.remove(&key);
            }
            self.free.push(index);
        }
    }

    /// The earliest deadline, if any sleep is pending.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.entries.first_key_value().map(|((d, _), _)| *d)
    }

    /// Fire every entry due at `now` and collect its waker.
    pub(crate) fn expire(&mut self, now: Instant, out: &mut Vec<Waker>) {
        while let Some(entry) = self.entries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let index = entry.remove();
            let slot = &mut self.slots[index];
            slot.fired = true;
            out.extend(slot.waker.take());
        }
    }

    /// Fire every entry (runtime shutdown) and hand back their wakers.
    pub(crate) fn clear(&mut self) -> Vec<Waker> {
        let mut wakers = Vec::new();
        for index in std::mem::take(&mut self.entries).into_values() {
            let slot = &mut self.slots[index];
            slot.fired = true;
            wakers.extend(slot.waker.take());
        }
        wakers
    }

    /// Sleeps registered and not yet fired.
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
    /// The runtime it is registered with, its key and its slot.
    registered: Option<(Rc<Context>, TimerKey, usize)>,
}

impl Sleep {
    /// When this sleep completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    fn unregister(&mut self) {
        if let Some((ctx, key, index)) = self.registered.take() {
            ctx.timers.borrow_mut().remove(key, index);
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = self.get_mut();
        if let Some((ctx, key, index)) = &this.registered {
            let mut timers = ctx.timers.borrow_mut();
            match timers.slot(*key, *index) {
                Some(slot) if !slot.fired => {
                    match &mut slot.waker {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        w => *w = Some(cx.waker().clone()),
                    }
                    return Poll::Pending;
                }
                // Fired: the executor read the clock past the deadline.
                _ => {
                    drop(timers);
                    this.unregister();
                    return Poll::Ready(());
                }
            }
        }
        if Instant::now() >= this.deadline {
            return Poll::Ready(());
        }
        let ctx = Context::current().expect("fanbench-uring: sleep polled outside a UringRuntime");
        let (key, index) = ctx
            .timers
            .borrow_mut()
            .insert(this.deadline, cx.waker().clone());
        this.registered = Some((ctx, key, index));
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
