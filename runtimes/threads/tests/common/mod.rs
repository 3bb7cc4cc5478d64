//! Helpers shared by this crate's integration tests.

#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// How long a test may run before it is declared hung. This is a hang detector, not a
/// speed check: every test finishes in milliseconds when the behaviour is right.
pub const HANG: Duration = Duration::from_secs(30);

/// Run `body` on its own thread and fail if it does not finish within [`HANG`].
pub fn with_watchdog<T: Send + 'static>(
    name: &str,
    body: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let _ = tx.send(body());
        })
        .expect("spawn test thread");
    match rx.recv_timeout(HANG) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{name}: hung for {HANG:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{name}: test thread panicked"),
    }
}

/// A one-shot signal that may be set from any thread and awaited on one.
#[derive(Clone, Default)]
pub struct Signal(Arc<Mutex<SignalState>>);

#[derive(Default)]
struct SignalState {
    set: bool,
    waker: Option<Waker>,
    polled: bool,
}

impl Signal {
    pub fn new() -> Self {
        Self::default()
    }

    /// Set the signal and wake the task waiting for it.
    pub fn set(&self) {
        let waker = {
            let mut s = self.0.lock().expect("signal lock");
            s.set = true;
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Whether a task has polled (and so registered a waker on) this signal.
    pub fn was_polled(&self) -> bool {
        self.0.lock().expect("signal lock").polled
    }

    /// Wait for the signal.
    pub fn wait(&self) -> SignalWait {
        SignalWait(self.clone())
    }
}

pub struct SignalWait(Signal);

impl Future for SignalWait {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = (self.0).0.lock().expect("signal lock");
        s.polled = true;
        if s.set {
            Poll::Ready(())
        } else {
            s.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// Poll a future exactly once, yielding what it returned.
pub struct PollOnce<'a, F>(pub Pin<&'a mut F>);

impl<F: Future> Future for PollOnce<'_, F> {
    type Output = Poll<F::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(self.0.as_mut().poll(cx))
    }
}

/// Number of open descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// Which of two futures finished first.
pub enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Poll `a` then `b` until one is ready (the broker's accept-or-shutdown shape).
pub async fn select<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        if let Poll::Ready(v) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(v));
        }
        Poll::Pending
    })
    .await
}
