//! Cancelled accepts and connects leak no descriptor (counted in /proc/self/fd).
//!
//! Its own test binary, and the tests hold one lock, so no other test opens descriptors
//! while one is counting.

mod common;

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Mutex;
use std::task::Poll;
use std::time::Duration;

use common::{each_policy, fd_count, watchdog};
use fanbench_uring::{sleep, UringListener, UringStream};

static SERIAL: Mutex<()> = Mutex::new(());

async fn poll_once_then_drop<F: Future>(fut: F) {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        let _ = fut.as_mut().poll(cx);
        Poll::Ready(())
    })
    .await;
}

/// Let the runtime process completions and queued closes.
async fn settle() {
    sleep(Duration::from_millis(30)).await;
}

#[test]
fn a_dropped_listener_closes_connections_its_multishot_accept_took() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    for (policy, mut rt) in each_policy() {
        let before = fd_count();
        rt.block_on(watchdog("accept leak", async {
            let mut listener = UringListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let addr = listener.local_addr().unwrap();
            // Arm the multishot accept, then walk away from the accept future.
            poll_once_then_drop(listener.accept()).await;
            let clients: Vec<_> = (0..5)
                .map(|_| std::net::TcpStream::connect(addr).unwrap())
                .collect();
            settle().await;
            drop(listener);
            settle().await;
            drop(clients);
            settle().await;
        }));
        assert_eq!(fd_count(), before, "{policy}: accepted descriptors leaked");
    }
}

#[test]
fn accept_after_a_dropped_accept_future_still_gets_the_connection() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    for (policy, mut rt) in each_policy() {
        rt.block_on(watchdog("accept after drop", async {
            let mut listener = UringListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let addr = listener.local_addr().unwrap();
            poll_once_then_drop(listener.accept()).await;
            let client = std::net::TcpStream::connect(addr).unwrap();
            settle().await;
            let (_stream, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, client.local_addr().unwrap(), "{policy}");
        }));
    }
}

#[test]
fn a_cancelled_connect_closes_its_socket() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    for (policy, mut rt) in each_policy() {
        let before = fd_count();
        rt.block_on(watchdog("connect leak", async {
            // A blackhole address: the SYN goes unanswered, so the connect stays in flight.
            for _ in 0..10 {
                poll_once_then_drop(UringStream::connect("10.255.255.1:9".parse().unwrap())).await;
            }
            settle().await;
        }));
        assert_eq!(fd_count(), before, "{policy}: connect sockets leaked");
        assert_eq!(rt.ops_in_flight(), 0, "{policy}");
    }
}

#[test]
fn dropping_streams_and_listeners_closes_their_descriptors() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    for (policy, mut rt) in each_policy() {
        let before = fd_count();
        rt.block_on(watchdog("close", async {
            let mut listener = UringListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let addr = listener.local_addr().unwrap();
            for _ in 0..20 {
                let client = UringStream::connect(addr).await.unwrap();
                let (server, _) = listener.accept().await.unwrap();
                drop((client, server));
            }
            drop(listener);
            settle().await;
        }));
        assert_eq!(fd_count(), before, "{policy}");
    }
}

#[test]
fn dropping_a_runtime_closes_its_ring_and_eventfd() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let before = fd_count();
    for (_, rt) in each_policy() {
        drop(rt);
    }
    assert_eq!(fd_count(), before);
}
