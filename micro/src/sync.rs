//! The few runtime-agnostic pieces the trait lacks and the operations need: a join handle for
//! a spawned task, a countdown the last of N tasks completes, and `yield_now`.
//!
//! They are single-threaded (`Rc`/`Cell`), as the trait's local tasks are: a row pays for
//! its own spawn and wake, never for an atomic this suite added. Cross-thread operations use
//! the broker's own outbound queue instead (`ops`), the path a publisher really takes.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::task::{Poll, Waker};

use fanbench_rt::Runtime;

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

/// The completion of a task started by [`spawn_join`].
pub struct Join<T>(Rc<RefCell<Slot<T>>>);

impl<T> Join<T> {
    /// Wait for the task's output.
    pub async fn join(self) -> T {
        poll_fn(|cx| {
            let mut slot = self.0.borrow_mut();
            match slot.value.take() {
                Some(v) => Poll::Ready(v),
                None => {
                    slot.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

/// Spawn `fut` on the current thread's runtime and return a handle to await its output: what
/// `tokio::spawn(..).await` is, on the trait.
pub fn spawn_join<R: Runtime, T: 'static>(fut: impl Future<Output = T> + 'static) -> Join<T> {
    let slot = Rc::new(RefCell::new(Slot {
        value: None,
        waker: None,
    }));
    let done = slot.clone();
    R::spawn_local(async move {
        let value = fut.await;
        let waker = {
            let mut slot = done.borrow_mut();
            slot.value = Some(value);
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    });
    Join(slot)
}

/// Counts tasks down; the waiter wakes when the last one is done.
#[derive(Default)]
pub struct Countdown {
    left: Cell<usize>,
    waker: Cell<Option<Waker>>,
}

impl Countdown {
    /// A countdown from `n`.
    pub fn new(n: usize) -> Rc<Self> {
        let c = Rc::new(Countdown::default());
        c.left.set(n);
        c
    }

    /// Start again from `n` (after [`Countdown::wait`] returned).
    pub fn reset(&self, n: usize) {
        self.left.set(n);
    }

    /// One task is done.
    pub fn done(&self) {
        let left = self.left.get().saturating_sub(1);
        self.left.set(left);
        if left == 0 {
            if let Some(w) = self.waker.take() {
                w.wake();
            }
        }
    }

    /// Wait until every task is done.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.left.get() == 0 {
                Poll::Ready(())
            } else {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }
}

/// Let the other ready tasks run, then continue: wake ourselves and return `Pending` once
/// (the runtime-agnostic `yield_now`; where a self-woken task goes in the run queue is the
/// row's scheduler's choice, and part of what `yield_many` measures).
pub async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}
