//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fanbench_rt::{IoBuf, IoBufMut};
use fanbench_uring::{SubmitPolicy, UringConfig, UringRuntime};

/// A runtime with the given policy (everything else default).
pub fn runtime(policy: SubmitPolicy) -> UringRuntime {
    UringRuntime::new(UringConfig {
        policy,
        ..UringConfig::default()
    })
    .expect("io_uring runtime")
}

/// Every policy's runtime, for tests that must hold under each.
pub fn each_policy() -> impl Iterator<Item = (SubmitPolicy, UringRuntime)> {
    SubmitPolicy::ALL.into_iter().map(|p| (p, runtime(p)))
}

/// Fail (instead of hanging) if `fut` does not finish within a generous watchdog.
pub async fn watchdog<F: Future>(what: &str, fut: F) -> F::Output {
    let fut = std::pin::pin!(fut);
    let timeout = std::pin::pin!(fanbench_uring::sleep(Duration::from_secs(20)));
    match futures_select(fut, timeout).await {
        Either::Left(out) => out,
        Either::Right(()) => panic!("watchdog: {what} did not finish in 20 s"),
    }
}

pub enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Poll two futures, return the first to finish.
pub async fn futures_select<A: Future + Unpin, B: Future + Unpin>(
    mut a: A,
    mut b: B,
) -> Either<A::Output, B::Output> {
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(x) = std::pin::Pin::new(&mut a).poll(cx) {
            return std::task::Poll::Ready(Either::Left(x));
        }
        if let std::task::Poll::Ready(x) = std::pin::Pin::new(&mut b).poll(cx) {
            return std::task::Poll::Ready(Either::Right(x));
        }
        std::task::Poll::Pending
    })
    .await
}

/// Open descriptors of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// A buffer that counts how many of its kind are alive (to prove the runtime keeps a buffer
/// until the kernel is done with it).
pub struct CountedBuf {
    inner: Vec<u8>,
    live: Arc<AtomicUsize>,
}

impl CountedBuf {
    pub fn new(capacity: usize, live: &Arc<AtomicUsize>) -> CountedBuf {
        live.fetch_add(1, Ordering::SeqCst);
        CountedBuf {
            inner: Vec::with_capacity(capacity),
            live: live.clone(),
        }
    }

    pub fn filled(data: &[u8], live: &Arc<AtomicUsize>) -> CountedBuf {
        let mut b = CountedBuf::new(data.len(), live);
        b.inner.extend_from_slice(data);
        b
    }
}

impl Drop for CountedBuf {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

// SAFETY: delegates to Vec<u8>, whose heap allocation does not move with the value.
unsafe impl IoBufMut for CountedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.inner.as_mut_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.inner.len()
    }
    fn bytes_total(&self) -> usize {
        self.inner.capacity()
    }
    unsafe fn set_init(&mut self, init: usize) {
        // SAFETY: forwarded contract.
        unsafe { self.inner.set_init(init) }
    }
}

// SAFETY: delegates to Vec<u8>.
unsafe impl IoBuf for CountedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.inner.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.inner.len()
    }
}

/// A connected pair: (uring stream, std stream) over loopback.
pub async fn pair() -> (fanbench_uring::UringStream, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let ours = fanbench_uring::UringStream::connect(addr).await.unwrap();
    let (theirs, _) = listener.accept().unwrap();
    (ours, theirs)
}
