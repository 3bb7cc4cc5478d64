//! Trait-level tests for rows whose tasks make progress concurrently on the runtime's own
//! I/O (an echo server task and its client in one runtime): the io_uring and epoll rows.
//!
//! A hang is bounded by [`DEADLINE`] on the runtime's own timer and reported as a failure.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fanbench_rt::ext::AsyncWriteRentExt;
use fanbench_rt::{AsyncReadRent, AsyncWriteRent, Listener, Runtime, Stream};

use crate::support::{loopback_listener, open_fds, select, Either, PollOnce};
use crate::Make;

/// How long any single step may take before the test fails as hung.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Await `fut`, failing the test if it has not completed within [`DEADLINE`].
pub async fn within<R: Runtime, T>(what: &str, fut: impl Future<Output = T>) -> T {
    match select(fut, R::sleep(DEADLINE)).await {
        Either::Left(value) => value,
        Either::Right(_) => panic!("{what} did not complete within {DEADLINE:?}"),
    }
}

/// Read until `n` bytes arrived or the stream ended.
pub async fn read_up_to<H: AsyncReadRent>(half: &mut H, n: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(n);
    while buf.len() < n {
        let (res, returned) = half.read(buf).await;
        buf = returned;
        if res.expect("read") == 0 {
            break;
        }
    }
    buf
}

/// A connected pair: (client side, server side).
pub async fn connected_pair<R: Runtime>() -> (R::Stream, R::Stream) {
    let (mut listener, addr) = loopback_listener::<R>();
    let client = within::<R, _>("connect", R::connect(addr))
        .await
        .expect("connect");
    let (server, peer) = within::<R, _>("accept", listener.accept())
        .await
        .expect("accept");
    assert!(
        peer.ip().is_loopback(),
        "peer address {peer} is not loopback"
    );
    (client, server)
}

fn patterned(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// 256 KiB sent by a client come back from an echo server task byte for byte, in order.
pub fn echo_round_trip_returns_every_byte_in_order<R: Runtime>(make: Make<R>) {
    make().block_on(async {
        let (mut listener, addr) = loopback_listener::<R>();
        R::spawn_local(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            stream.set_nodelay(true).expect("nodelay");
            let (mut rd, mut wr) = stream.into_split();
            loop {
                let (res, buf) = rd.read(Vec::with_capacity(4096)).await;
                if res.expect("server read") == 0 {
                    break;
                }
                wr.write_all(Bytes::from(buf)).await.expect("server write");
            }
            wr.shutdown().await.expect("server shutdown");
        });
        let payload = patterned(256 * 1024);
        let client = within::<R, _>("connect", R::connect(addr))
            .await
            .expect("connect");
        client.set_nodelay(true).expect("nodelay");
        let (mut rd, mut wr) = client.into_split();
        let send = Bytes::from(payload.clone());
        R::spawn_local(async move {
            wr.write_all(send).await.expect("client write");
            // Keep the write half (and so the connection) open until the echo is read.
            R::sleep(DEADLINE).await;
        });
        let echoed = within::<R, _>("echo", read_up_to(&mut rd, payload.len())).await;
        assert_eq!(echoed.len(), payload.len(), "echo came back short");
        assert!(echoed == payload, "echo differs from what was sent");
    });
}

/// `read` fills only the spare capacity: bytes already in the buffer are kept in front.
pub fn read_appends_after_initialised_bytes<R: Runtime>(make: Make<R>) {
    make().block_on(async {
        let (client, server) = connected_pair::<R>().await;
        let (_crd, mut cwr) = client.into_split();
        let (mut srd, _swr) = server.into_split();
        let (res, _) = cwr.write(Bytes::from_static(b"world")).await;
        assert_eq!(res.expect("write"), 5);
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(b"hello ");
        while buf.len() < 11 {
            let (res, returned) = within::<R, _>("read", srd.read(buf)).await;
            buf = returned;
            assert_ne!(res.expect("read"), 0, "unexpected end of stream");
        }
        assert_eq!(&buf[..], b"hello world");
    });
}

/// One `writev` of several buffers delivers them whole and in order.
pub fn writev_sends_buffers_in_order<R: Runtime>(make: Make<R>) {
    make().block_on(async {
        let (client, server) = connected_pair::<R>().await;
        let (mut crd, _cwr) = client.into_split();
        let (_srd, mut swr) = server.into_split();
        let parts = vec![
            Bytes::from_static(b"MSG foo 1 5\r\n"),
            Bytes::from_static(b"hello"),
            Bytes::from_static(b"\r\n"),
            Bytes::from_static(b"MSG foo 2 5\r\nworld\r\n"),
        ];
        let expected: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        let (res, returned) = swr.writev(parts).await;
        // An empty loopback socket buffer takes 40 bytes in one call.
        assert_eq!(res.expect("writev"), expected.len());
        assert_eq!(returned.len(), 4, "writev must hand every buffer back");
        let got = within::<R, _>("read", read_up_to(&mut crd, expected.len())).await;
        assert_eq!(got, expected);
    });
}

/// More buffers than one vectored call can take (IOV_MAX is 1024), and more bytes than the
/// socket buffers hold, still arrive complete and in order through `writev_all`.
pub fn writev_all_delivers_many_buffers_in_order<R: Runtime>(make: Make<R>) {
    make().block_on(async {
        let (client, server) = connected_pair::<R>().await;
        let (mut crd, _cwr) = client.into_split();
        let (_srd, mut swr) = server.into_split();
        let mut bufs: Vec<Bytes> = (0..3000u32)
            .map(|i| Bytes::from(format!("{i:08}|").repeat(1 + (i % 50) as usize)))
            .collect();
        let expected: Vec<u8> = bufs.iter().flat_map(|p| p.iter().copied()).collect();
        R::spawn_local(async move {
            let total: usize = bufs.iter().map(Bytes::len).sum();
            let n = swr.writev_all(&mut bufs).await.expect("writev_all");
            assert_eq!(n, total, "writev_all reported a different byte count");
            assert!(bufs.is_empty(), "writev_all left {} buffers", bufs.len());
            R::sleep(DEADLINE).await;
        });
        let got = within::<R, _>("read", read_up_to(&mut crd, expected.len())).await;
        assert_eq!(got.len(), expected.len(), "stream came back short");
        assert!(got == expected, "bytes arrived out of order");
    });
}

/// `shutdown` on the write half completes a read pending on the read half with `Ok(0)`,
/// and the peer sees end of stream.
pub fn shutdown_wakes_pending_read_with_eof<R: Runtime>(make: Make<R>) {
    make().block_on(async {
        let (client, server) = connected_pair::<R>().await;
        let (mut crd, mut cwr) = client.into_split();
        let (mut srd, _swr) = server.into_split();
        let outcome: Rc<RefCell<Option<io::Result<usize>>>> = Rc::new(RefCell::new(None));
        let started = Rc::new(Cell::new(false));
        {
            let outcome = Rc::clone(&outcome);
            let started = Rc::clone(&started);
            R::spawn_local(async move {
                started.set(true);
                let (res, _) = crd.read(Vec::with_capacity(1024)).await;
                *outcome.borrow_mut() = Some(res);
            });
        }
        // Let the reader start its read and park on it.
        while !started.get() {
            R::sleep(Duration::from_millis(1)).await;
        }
        R::sleep(Duration::from_millis(20)).await;
        assert!(
            outcome.borrow().is_none(),
            "read completed with no data sent"
        );
        cwr.shutdown().await.expect("shutdown");
        within::<R, _>("pending read after shutdown", async {
            while outcome.borrow().is_none() {
                R::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
        let res = outcome.borrow_mut().take().expect("outcome recorded");
        match res {
            Ok(n) => assert_eq!(n, 0, "read after shutdown returned data"),
            Err(e) => panic!("read after shutdown failed instead of Ok(0): {e}"),
        }
        let (res, _) = within::<R, _>("peer read", srd.read(Vec::with_capacity(16))).await;
        assert_eq!(res.expect("peer read"), 0, "peer did not see end of stream");
    });
}

/// State shared with the waking thread.
struct Remote {
    waker: Mutex<Option<Waker>>,
    fired: AtomicBool,
}

/// A task parked on a waker that only another thread wakes; `wake_from` runs on that thread.
fn foreign_wake_runs_task<R: Runtime>(make: Make<R>, wake_from: fn(Make<R>, Arc<Remote>)) {
    let remote = Arc::new(Remote {
        waker: Mutex::new(None),
        fired: AtomicBool::new(false),
    });
    let waking_thread = {
        let remote = Arc::clone(&remote);
        std::thread::spawn(move || wake_from(make, remote))
    };
    make().block_on(async {
        let done = Rc::new(Cell::new(false));
        let main_waker: Rc<RefCell<Option<Waker>>> = Rc::new(RefCell::new(None));
        {
            let (remote, done, main_waker) = (
                Arc::clone(&remote),
                Rc::clone(&done),
                Rc::clone(&main_waker),
            );
            R::spawn_local(async move {
                poll_fn(|cx| {
                    if remote.fired.load(Ordering::Acquire) {
                        return Poll::Ready(());
                    }
                    *remote.waker.lock().expect("waker lock") = Some(cx.waker().clone());
                    if remote.fired.load(Ordering::Acquire) {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                })
                .await;
                done.set(true);
                if let Some(w) = main_waker.borrow_mut().take() {
                    w.wake();
                }
            });
        }
        within::<R, _>(
            "task woken from another thread",
            poll_fn(|cx| {
                if done.get() {
                    Poll::Ready(())
                } else {
                    *main_waker.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                }
            }),
        )
        .await;
    });
    waking_thread.join().expect("waking thread panicked");
}

/// Take the parked task's waker once it is there, mark the event, and wake it.
fn fire(remote: &Remote) {
    let deadline = Instant::now() + DEADLINE;
    let waker = loop {
        if let Some(w) = remote.waker.lock().expect("waker lock").take() {
            break w;
        }
        assert!(Instant::now() < deadline, "the task never parked");
        std::thread::sleep(Duration::from_millis(1));
    };
    // Give the runtime time to go idle (park) so the wake has to unpark it.
    std::thread::sleep(Duration::from_millis(20));
    remote.fired.store(true, Ordering::Release);
    waker.wake();
}

/// A waker woken from a plain std thread runs its task.
pub fn wake_from_std_thread_runs_task<R: Runtime>(make: Make<R>) {
    foreign_wake_runs_task(make, |_, remote| fire(&remote));
}

/// A waker woken from inside another runtime of the same kind (a publisher on another
/// thread-per-core runtime, as in the broker) runs its task.
pub fn wake_from_other_runtime_thread_runs_task<R: Runtime>(make: Make<R>) {
    foreign_wake_runs_task(make, |make, remote| {
        make().block_on(async move { fire(&remote) });
    });
}

/// Dropping `accept` futures (idle, and with a connection arriving while one is in flight)
/// neither loses a connection nor leaks a descriptor. Run it alone in its test binary: it
/// counts the whole process's descriptors.
pub fn dropped_accept_loses_no_connection_and_leaks_no_fd<R: Runtime>(make: Make<R>) {
    make().block_on(async {
        let before = open_fds();
        {
            let (mut listener, addr) = loopback_listener::<R>();
            // Idle accepts, dropped while waiting.
            for _ in 0..20 {
                let accept = listener.accept();
                let timeout = R::sleep(Duration::from_millis(1));
                match select(accept, timeout).await {
                    Either::Left(_) => panic!("accepted a connection nobody made"),
                    Either::Right(_) => {}
                }
            }
            // An accept in flight when a connection arrives, dropped without being polled
            // again: the connection must still be accepted by the next call.
            let mut clients = Vec::new();
            for _ in 0..5 {
                {
                    let mut accept = pin!(listener.accept());
                    assert!(
                        PollOnce(accept.as_mut()).await.is_pending(),
                        "accepted a connection nobody made"
                    );
                    clients.push(std::net::TcpStream::connect(addr).expect("std connect"));
                    std::thread::sleep(Duration::from_millis(2));
                }
                let (stream, _) =
                    within::<R, _>("accept after a dropped accept", listener.accept())
                        .await
                        .expect("accept");
                drop(stream);
            }
            drop(clients);
            drop(listener);
        }
        // Some runtimes close asynchronously (an io_uring close op): allow them to finish.
        let deadline = Instant::now() + DEADLINE;
        while open_fds() != before && Instant::now() < deadline {
            R::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(open_fds(), before, "open descriptors before vs after");
    });
}
