//! A runtime-agnostic, level-triggered shutdown signal.
//!
//! # State
//!
//! Each pending [`Wait`] owns one slot of the waiter slab and replaces its waker there when
//! polled again with a different one; dropping the `Wait` frees the slot. So the slab holds at
//! most one waker per live `Wait`, however often a waiter is polled: a waiter polled on every
//! turn of its executor (the accept loop under Tokio's `LocalSet`, which polls the main future
//! whenever any local task wakes) must not add a waker per poll. `Waker::will_wake` alone
//! cannot guarantee that: it compares data and vtable pointers, and on the `tokio` row the
//! stored clone never compared equal to the waker of the next poll
//! (`runtimes/tokio/tests/shutdown_wait.rs`), so every poll added one.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;
use slab::Slab;

/// Set once (from a signal-handling thread or a test); every waiter, on any thread, wakes.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    triggered: AtomicBool,
    /// One waker per pending [`Wait`], keyed by the slot the `Wait` holds. Emptied for good
    /// by [`Shutdown::trigger`]: no `Wait` registers after the flag is set.
    waiters: Mutex<Slab<Waker>>,
}

impl Shutdown {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fire the signal. Idempotent.
    pub fn trigger(&self) {
        self.inner.triggered.store(true, Ordering::SeqCst);
        let waiters = std::mem::take(&mut *self.inner.waiters.lock());
        for w in waiters.into_iter().map(|(_, w)| w) {
            w.wake();
        }
    }

    /// Whether the signal has fired.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::SeqCst)
    }

    /// Complete once the signal has fired.
    pub fn wait(&self) -> Wait<'_> {
        Wait {
            shutdown: self,
            slot: None,
        }
    }

    /// Wakers registered by pending [`Wait`]s (at most one each).
    pub fn registered_waiters(&self) -> usize {
        self.inner.waiters.lock().len()
    }
}

/// Future returned by [`Shutdown::wait`].
pub struct Wait<'a> {
    shutdown: &'a Shutdown,
    /// This waiter's slot in the waiter slab, once it has been polled while pending.
    slot: Option<usize>,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let shutdown = self.shutdown;
        if shutdown.is_triggered() {
            return Poll::Ready(());
        }
        let mut waiters = shutdown.inner.waiters.lock();
        // Re-check under the lock: `trigger` sets the flag before taking the lock.
        if shutdown.is_triggered() {
            return Poll::Ready(());
        }
        match self.slot.and_then(|key| waiters.get_mut(key)) {
            Some(registered) => {
                if !registered.will_wake(cx.waker()) {
                    registered.clone_from(cx.waker());
                }
            }
            None => self.slot = Some(waiters.insert(cx.waker().clone())),
        }
        Poll::Pending
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.slot {
            // After `trigger` the slab is empty and the key unused: nothing to remove.
            self.shutdown.inner.waiters.lock().try_remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    /// A waker of its own (never `will_wake` another), counting its wake-ups.
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Counter>, Waker) {
        let c = Arc::new(Counter(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn a_waiter_polled_with_a_new_waker_each_time_keeps_one_slot() {
        let shutdown = Shutdown::new();
        let mut wait = std::pin::pin!(shutdown.wait());
        let mut last = None;
        for _ in 0..10_000 {
            let (c, waker) = counter();
            let mut cx = Context::from_waker(&waker);
            assert!(wait.as_mut().poll(&mut cx).is_pending());
            last = Some(c);
        }
        assert_eq!(shutdown.registered_waiters(), 1);
        shutdown.trigger();
        let c = last.expect("polled");
        assert_eq!(c.0.load(Ordering::SeqCst), 1, "the latest waker is woken");
        let (_, waker) = counter();
        assert!(wait
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready());
    }

    #[test]
    fn dropped_waiters_free_their_slots_and_every_live_one_wakes() {
        let shutdown = Shutdown::new();
        for _ in 0..1000 {
            let mut wait = std::pin::pin!(shutdown.wait());
            let (_, waker) = counter();
            assert!(wait
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending());
        }
        assert_eq!(shutdown.registered_waiters(), 0);
        let (a, b) = (shutdown.wait(), shutdown.wait());
        let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
        let ((ca, wa), (cb, wb)) = (counter(), counter());
        assert!(a.as_mut().poll(&mut Context::from_waker(&wa)).is_pending());
        assert!(b.as_mut().poll(&mut Context::from_waker(&wb)).is_pending());
        assert_eq!(shutdown.registered_waiters(), 2);
        shutdown.trigger();
        assert_eq!(ca.0.load(Ordering::SeqCst), 1);
        assert_eq!(cb.0.load(Ordering::SeqCst), 1);
        assert_eq!(shutdown.registered_waiters(), 0);
        assert!(shutdown.is_triggered());
        let (_, w) = counter();
        assert!(Pin::new(&mut shutdown.wait())
            .poll(&mut Context::from_waker(&w))
            .is_ready());
        assert_eq!(
            shutdown.registered_waiters(),
            0,
            "no waiter after the signal"
        );
    }
}
