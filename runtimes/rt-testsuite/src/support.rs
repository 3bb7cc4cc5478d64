//! Helpers for the adapters' integration tests: a hang watchdog, a cross-thread signal,
//! single polls, a two-way select, loopback listeners and descriptor counting.

use std::future::Future;
use std::io::Read;
use std::net::{SocketAddr, TcpStream as StdStream};
use std::pin::Pin;
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::Duration;

use fanbench_rt::{bind_reuseport, ListenOptions, Listener, Runtime};

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

    /// On a new std thread: wait until a task has polled this signal, then set it. The
    /// set happens while the waiting runtime is (or is about to be) parked.
    pub fn set_once_polled_from_thread(&self) -> JoinHandle<()> {
        let remote = self.clone();
        std::thread::spawn(move || {
            while !remote.was_polled() {
                std::thread::sleep(Duration::from_millis(1));
            }
            remote.set();
        })
    }
}

/// The future of [`Signal::wait`].
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

/// Which of two futures finished first.
#[derive(Debug)]
pub enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Poll `a` then `b` until one is ready (the broker's accept-or-shutdown shape); the other
/// is dropped.
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

/// Number of open descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// A std listener on an ephemeral loopback port, bound the way every row binds.
pub fn std_loopback_listener() -> std::net::TcpListener {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
    bind_reuseport(addr, ListenOptions::default()).expect("bind loopback")
}

/// A listener of runtime `R` on an ephemeral loopback port, and its address. Call it
/// inside `R::block_on`.
pub fn loopback_listener<R: Runtime>() -> (R::Listener, SocketAddr) {
    let listener = R::listener_from_std(std_loopback_listener()).expect("adopt listener");
    let local = listener.local_addr().expect("local_addr");
    (listener, local)
}

/// Read from a blocking std stream until end of stream (bounded by [`HANG`]).
pub fn read_to_end(mut s: StdStream) -> Vec<u8> {
    s.set_read_timeout(Some(HANG)).expect("set timeout");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read to EOF");
    out
}
