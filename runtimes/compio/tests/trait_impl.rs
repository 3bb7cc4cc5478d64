//! The compio row against fanbench's runtime trait, directly (no broker).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{with_watchdog, Signal};
use fanbench_rt::ext::AsyncWriteRentExt;
use fanbench_rt::{
    bind_reuseport, AsyncReadRent, AsyncWriteRent, ListenOptions, Listener, Runtime, Stream,
};
use fanbench_rt_compio::{CompioConfig, CompioRuntime};

fn runtime() -> CompioRuntime {
    CompioRuntime::new(CompioConfig::default()).expect("io_uring works on the test machine")
}

fn loopback_listener() -> std::net::TcpListener {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
    bind_reuseport(addr, ListenOptions::default()).expect("bind loopback")
}

/// Read from a blocking std stream until EOF.
fn read_to_end(mut s: StdStream) -> Vec<u8> {
    s.set_read_timeout(Some(common::HANG)).expect("set timeout");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read to EOF");
    out
}

#[test]
fn echo_over_loopback_returns_the_same_bytes_and_buffers() {
    with_watchdog("echo", || {
        runtime().block_on(async {
            let std_listener = loopback_listener();
            let addr = std_listener.local_addr().expect("addr");
            let mut listener = CompioRuntime::listener_from_std(std_listener).expect("adopt");
            assert_eq!(listener.local_addr().expect("addr"), addr);
            CompioRuntime::spawn_local(async move {
                let (stream, _) = listener.accept().await.expect("accept");
                stream.set_nodelay(true).expect("nodelay");
                let (mut rd, mut wr) = stream.into_split();
                let mut buf = Vec::with_capacity(4096);
                loop {
                    buf.clear();
                    let (res, b) = rd.read(buf).await;
                    buf = b;
                    match res.expect("server read") {
                        0 => break,
                        _ => {
                            let data = Bytes::copy_from_slice(&buf);
                            wr.write_all(data).await.expect("server write");
                        }
                    }
                }
                wr.shutdown().await.expect("server shutdown");
            });

            let stream = CompioRuntime::connect(addr).await.expect("connect");
            let (mut rd, mut wr) = stream.into_split();
            let msg = b"hello, compio".to_vec();
            let (res, returned) = wr.write(msg).await;
            assert_eq!(res.expect("client write"), 13);
            assert_eq!(
                returned, b"hello, compio",
                "write hands the buffer back intact"
            );

            let mut got = Vec::with_capacity(64);
            while got.len() < 13 {
                let (res, b) = rd.read(got).await;
                got = b;
                assert!(res.expect("client read") > 0, "early EOF");
            }
            assert_eq!(got, b"hello, compio");
        })
    });
}

#[test]
fn read_appends_after_the_initialised_bytes() {
    with_watchdog("read_appends", || {
        let std_listener = loopback_listener();
        let addr = std_listener.local_addr().expect("addr");
        let peer = std::thread::spawn(move || {
            let mut s = StdStream::connect(addr).expect("connect");
            s.write_all(b"tail").expect("write");
            s
        });
        runtime().block_on(async {
            let mut listener = CompioRuntime::listener_from_std(std_listener).expect("adopt");
            let (stream, _) = listener.accept().await.expect("accept");
            let (mut rd, _wr) = stream.into_split();
            let mut buf = Vec::with_capacity(16);
            buf.extend_from_slice(b"head");
            let mut total = 0;
            while total < 4 {
                let (res, b) = rd.read(buf).await;
                buf = b;
                total += res.expect("read");
            }
            assert_eq!(buf, b"headtail");
        });
        drop(peer.join().expect("peer thread"));
    });
}

#[test]
fn read_into_a_full_buffer_returns_zero() {
    with_watchdog("full_buffer", || {
        let std_listener = loopback_listener();
        let addr = std_listener.local_addr().expect("addr");
        let _peer = StdStream::connect(addr).expect("connect");
        runtime().block_on(async {
            let mut listener = CompioRuntime::listener_from_std(std_listener).expect("adopt");
            let (stream, _) = listener.accept().await.expect("accept");
            let (mut rd, _wr) = stream.into_split();
            let mut full = Vec::with_capacity(4);
            let cap = full.capacity();
            full.resize(cap, 9);
            let (res, back) = rd.read(full).await;
            assert_eq!(res.expect("read"), 0);
            assert_eq!(back.len(), cap);
        });
    });
}

#[test]
fn writev_delivers_every_buffer_in_order() {
    with_watchdog("writev", || {
        let std_listener = loopback_listener();
        let addr = std_listener.local_addr().expect("addr");
        let reader = std::thread::spawn(move || {
            std_listener
                .set_nonblocking(false)
                .expect("blocking listener");
            let (s, _) = std_listener.accept().expect("accept");
            s.set_nonblocking(false).expect("blocking");
            read_to_end(s)
        });
        let mut expected = Vec::new();
        runtime().block_on(async {
            let stream = CompioRuntime::connect(addr).await.expect("connect");
            let (_rd, mut wr) = stream.into_split();
            // A small batch goes out whole in one call.
            let small = vec![
                Bytes::from_static(b"MSG a 1 5\r\n"),
                Bytes::from_static(b"hello"),
                Bytes::from_static(b"\r\n"),
            ];
            let total: usize = small.iter().map(Bytes::len).sum();
            let (res, back) = wr.writev(small).await;
            assert_eq!(res.expect("writev"), total);
            assert_eq!(back.len(), 3, "writev hands the buffers back");
            for b in &back {
                expected.extend_from_slice(b);
            }
            // A large batch may be written short; writev_all finishes it, in order.
            let mut big: Vec<Bytes> = (0..200u32)
                .map(|i| Bytes::from(vec![(i % 251) as u8; 8192 + i as usize]))
                .collect();
            for b in &big {
                expected.extend_from_slice(b);
            }
            wr.writev_all(&mut big).await.expect("writev_all");
            assert!(big.is_empty());
            wr.shutdown().await.expect("shutdown");
        });
        let got = reader.join().expect("reader thread");
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "bytes arrived out of order");
    });
}

#[test]
fn shutdown_completes_a_read_pending_on_the_other_half_with_eof() {
    with_watchdog("shutdown", || {
        let std_listener = loopback_listener();
        let addr = std_listener.local_addr().expect("addr");
        // The peer stays open and silent: only our own shutdown can end the read.
        let peer = StdStream::connect(addr).expect("connect");
        runtime().block_on(async {
            let mut listener = CompioRuntime::listener_from_std(std_listener).expect("adopt");
            let (stream, _) = listener.accept().await.expect("accept");
            let (mut rd, mut wr) = stream.into_split();
            let done = Signal::new();
            let result = Rc::new(std::cell::Cell::new(None));
            {
                let done = done.clone();
                let result = result.clone();
                CompioRuntime::spawn_local(async move {
                    let (res, _) = rd.read(Vec::with_capacity(64)).await;
                    result.set(Some(res.map_err(|e| e.kind())));
                    done.set();
                });
            }
            // Let the read get in flight first.
            CompioRuntime::sleep(Duration::from_millis(20)).await;
            assert!(result.get().is_none(), "read finished before shutdown");
            wr.shutdown().await.expect("shutdown");
            done.wait().await;
            let res = result.get().expect("read finished");
            assert!(matches!(res, Ok(0) | Err(_)), "pending read gave {res:?}");
        });
        assert!(read_to_end(peer).is_empty(), "peer sees end of stream");
    });
}

#[test]
fn foreign_thread_wake_runs_a_spawned_task() {
    with_watchdog("foreign_wake", || {
        runtime().block_on(async {
            let from_thread = Signal::new();
            let task_done = Signal::new();
            {
                let from_thread = from_thread.clone();
                let task_done = task_done.clone();
                CompioRuntime::spawn_local(async move {
                    from_thread.wait().await;
                    task_done.set();
                });
            }
            let remote = from_thread.clone();
            let waker_thread = std::thread::spawn(move || {
                while !remote.was_polled() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                remote.set();
            });
            task_done.wait().await;
            waker_thread.join().expect("waker thread");
        });
    });
}

#[test]
fn foreign_thread_wake_runs_the_block_on_future() {
    with_watchdog("foreign_wake_main", || {
        let signal = Signal::new();
        let remote = signal.clone();
        let waker_thread = std::thread::spawn(move || {
            while !remote.was_polled() {
                std::thread::sleep(Duration::from_millis(1));
            }
            remote.set();
        });
        runtime().block_on(signal.wait());
        waker_thread.join().expect("waker thread");
    });
}

/// Two runtimes whose tasks each wake many of the other's tasks at the same moment: with
/// compio's default remote-wake queue (64) both threads would spin forever waiting for the
/// other to drain its queue. See the crate docs on `remote_wake_queue`.
#[test]
fn remote_wakes_beyond_compio_default_queue_do_not_deadlock() {
    const TASKS: usize = 300;
    with_watchdog("cross_wakes", || {
        let barrier = Arc::new(Barrier::new(2));
        let (to_b, from_a) = mpsc::channel::<Vec<Signal>>();
        let (to_a, from_b) = mpsc::channel::<Vec<Signal>>();
        let side = |send: mpsc::Sender<Vec<Signal>>,
                    recv: mpsc::Receiver<Vec<Signal>>,
                    barrier: Arc<Barrier>| {
            move || {
                runtime().block_on(async move {
                    let mine: Vec<Signal> = (0..TASKS).map(|_| Signal::new()).collect();
                    let finished = Rc::new(AtomicUsize::new(0));
                    let all_done = Signal::new();
                    for s in &mine {
                        let s = s.clone();
                        let finished = finished.clone();
                        let all_done = all_done.clone();
                        CompioRuntime::spawn_local(async move {
                            s.wait().await;
                            if finished.fetch_add(1, Ordering::Relaxed) + 1 == TASKS {
                                all_done.set();
                            }
                        });
                    }
                    while !mine.iter().all(Signal::was_polled) {
                        CompioRuntime::sleep(Duration::from_millis(1)).await;
                    }
                    send.send(mine).expect("send signals");
                    let theirs = recv.recv().expect("receive signals");
                    barrier.wait();
                    // Wake every task of the other runtime from inside this runtime's thread.
                    for s in &theirs {
                        s.set();
                    }
                    all_done.wait().await;
                });
            }
        };
        let a = std::thread::spawn(side(to_b, from_b, barrier.clone()));
        let b = std::thread::spawn(side(to_a, from_a, barrier));
        a.join().expect("runtime A");
        b.join().expect("runtime B");
    });
}

#[test]
fn sleep_never_completes_early() {
    with_watchdog("sleep", || {
        runtime().block_on(async {
            for ms in [0u64, 1, 5, 20, 50] {
                let want = Duration::from_millis(ms);
                let start = Instant::now();
                CompioRuntime::sleep(want).await;
                let got = start.elapsed();
                assert!(got >= want, "sleep({want:?}) returned after {got:?}");
            }
        });
    });
}

#[test]
fn connect_to_a_closed_port_is_an_error() {
    with_watchdog("connect_refused", || {
        let addr = {
            let l = loopback_listener();
            l.local_addr().expect("addr")
        };
        runtime().block_on(async {
            let err = CompioRuntime::connect(addr).await.err().expect("refused");
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
        });
    });
}

#[test]
fn constructor_reports_an_io_uring_setup_failure_as_an_error() {
    let cfg = CompioConfig {
        ring_entries: 0,
        ..CompioConfig::default()
    };
    let err = CompioRuntime::new(cfg)
        .err()
        .expect("zero ring entries are rejected");
    assert!(
        err.to_string().contains("io_uring"),
        "error names the failing part: {err}"
    );
}
