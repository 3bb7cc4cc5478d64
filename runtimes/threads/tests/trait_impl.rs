//! The threads row against fanbench's runtime trait, directly (no broker).

mod common;

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{select, with_watchdog, Either, Signal};
use fanbench_rt::ext::AsyncWriteRentExt;
use fanbench_rt::{
    bind_reuseport, AsyncReadRent, AsyncWriteRent, ListenOptions, Listener, Runtime, Stream,
};
use fanbench_rt_threads::{ThreadsRuntime, ThreadsStream};

fn loopback_listener() -> std::net::TcpListener {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
    bind_reuseport(addr, ListenOptions::default()).expect("bind loopback")
}

/// Accept one connection on a fresh runtime (blocking the calling thread until it arrives).
fn accept_one(listener: std::net::TcpListener) -> ThreadsStream {
    ThreadsRuntime::new().block_on(async move {
        let mut l = ThreadsRuntime::listener_from_std(listener).expect("adopt");
        l.accept().await.expect("accept").0
    })
}

fn read_to_end(mut s: StdStream) -> Vec<u8> {
    s.set_read_timeout(Some(common::HANG)).expect("set timeout");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read to EOF");
    out
}

#[test]
fn echo_over_loopback_returns_the_same_bytes_and_buffers() {
    with_watchdog("echo", || {
        let std_listener = loopback_listener();
        let addr = std_listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            let stream = accept_one(std_listener);
            stream.set_nodelay(true).expect("nodelay");
            let (mut rd, mut wr) = stream.into_split();
            ThreadsRuntime::new().block_on(async move {
                let mut buf = Vec::with_capacity(4096);
                loop {
                    buf.clear();
                    let (res, b) = rd.read(buf).await;
                    buf = b;
                    if res.expect("server read") == 0 {
                        break;
                    }
                    wr.write_all(Bytes::copy_from_slice(&buf))
                        .await
                        .expect("server write");
                }
                wr.shutdown().await.expect("server shutdown");
            });
        });
        ThreadsRuntime::new().block_on(async {
            let stream = ThreadsRuntime::connect(addr).await.expect("connect");
            let (mut rd, mut wr) = stream.into_split();
            let (res, returned) = wr.write(b"hello, threads".to_vec()).await;
            assert_eq!(res.expect("client write"), 14);
            assert_eq!(
                returned, b"hello, threads",
                "write hands the buffer back intact"
            );
            let mut got = Vec::with_capacity(64);
            while got.len() < 14 {
                let (res, b) = rd.read(got).await;
                got = b;
                assert!(res.expect("client read") > 0, "early EOF");
            }
            assert_eq!(got, b"hello, threads");
            wr.shutdown().await.expect("client shutdown");
        });
        server.join().expect("server thread");
    });
}

#[test]
fn read_appends_after_the_initialised_bytes() {
    with_watchdog("read_appends", || {
        let std_listener = loopback_listener();
        let addr = std_listener.local_addr().expect("addr");
        let mut peer = StdStream::connect(addr).expect("connect");
        peer.write_all(b"tail").expect("write");
        let (mut rd, _wr) = accept_one(std_listener).into_split();
        ThreadsRuntime::new().block_on(async {
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
    });
}

#[test]
fn read_into_a_full_buffer_returns_zero_without_blocking() {
    with_watchdog("full_buffer", || {
        let std_listener = loopback_listener();
        let addr = std_listener.local_addr().expect("addr");
        let _peer = StdStream::connect(addr).expect("connect");
        let (mut rd, _wr) = accept_one(std_listener).into_split();
        ThreadsRuntime::new().block_on(async {
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
        let peer = StdStream::connect(addr).expect("connect");
        let reader = std::thread::spawn(move || read_to_end(peer));
        let (_rd, mut wr) = accept_one(std_listener).into_split();
        let mut expected = Vec::new();
        ThreadsRuntime::new().block_on(async {
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
            // More buffers than IOV_MAX and more bytes than a socket buffer: short writes
            // happen, and writev_all finishes in order.
            let mut big: Vec<Bytes> = (0..1500u32)
                .map(|i| Bytes::from(vec![(i % 251) as u8; 1000 + i as usize]))
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
fn shutdown_unblocks_a_read_blocked_on_the_other_half_with_eof() {
    with_watchdog("shutdown", || {
        let std_listener = loopback_listener();
        let addr = std_listener.local_addr().expect("addr");
        // The peer stays open and silent: only our own shutdown can end the read.
        let peer = StdStream::connect(addr).expect("connect");
        let (mut rd, mut wr) = accept_one(std_listener).into_split();
        let entered = Arc::new(AtomicBool::new(false));
        let reader = {
            let entered = entered.clone();
            std::thread::spawn(move || {
                ThreadsRuntime::new().block_on(async move {
                    entered.store(true, Ordering::SeqCst);
                    let (res, _) = rd.read(Vec::with_capacity(64)).await;
                    res.map_err(|e| e.kind())
                })
            })
        };
        while !entered.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        // Give the reader time to block in recv (if it has not yet, it sees EOF anyway).
        std::thread::sleep(Duration::from_millis(20));
        ThreadsRuntime::new()
            .block_on(wr.shutdown())
            .expect("shutdown");
        let res = reader.join().expect("reader thread");
        assert_eq!(res, Ok(0), "blocked read ends with EOF");
        assert!(read_to_end(peer).is_empty(), "peer sees end of stream");
    });
}

#[test]
fn foreign_thread_wake_runs_a_spawned_task() {
    with_watchdog("foreign_wake", || {
        ThreadsRuntime::new().block_on(async {
            let from_thread = Signal::new();
            let task_done = Signal::new();
            {
                let from_thread = from_thread.clone();
                let task_done = task_done.clone();
                ThreadsRuntime::spawn_local(async move {
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
        ThreadsRuntime::new().block_on(signal.wait());
        waker_thread.join().expect("waker thread");
    });
}

#[test]
fn a_wake_races_with_parking_without_being_lost() {
    // Many short wait/wake rounds: a wake landing between the executor's last check and
    // its park must still end the park (the park token), or this hangs.
    with_watchdog("wake_race", || {
        for _ in 0..2000 {
            let signal = Signal::new();
            let remote = signal.clone();
            let t = std::thread::spawn(move || remote.set());
            ThreadsRuntime::new().block_on(signal.wait());
            t.join().expect("waker thread");
        }
    });
}

#[test]
fn sleep_never_completes_early() {
    with_watchdog("sleep", || {
        ThreadsRuntime::new().block_on(async {
            for ms in [0u64, 1, 5, 20, 50] {
                let want = Duration::from_millis(ms);
                let start = Instant::now();
                ThreadsRuntime::sleep(want).await;
                let got = start.elapsed();
                assert!(got >= want, "sleep({want:?}) returned after {got:?}");
            }
        });
    });
}

#[test]
fn a_wake_ends_a_wait_on_signal_or_long_timer() {
    // The writer's shape: "queue non-empty OR ping timer". A wake must not wait for the timer.
    with_watchdog("signal_or_timer", || {
        let signal = Signal::new();
        let remote = signal.clone();
        let t = std::thread::spawn(move || {
            while !remote.was_polled() {
                std::thread::sleep(Duration::from_millis(1));
            }
            remote.set();
        });
        let winner = ThreadsRuntime::new().block_on(select(
            signal.wait(),
            ThreadsRuntime::sleep(Duration::from_secs(3600)),
        ));
        assert!(matches!(winner, Either::Left(())), "the signal wins");
        t.join().expect("waker thread");
    });
}

#[test]
fn a_timer_ends_a_wait_on_signal_or_timer_when_nothing_is_signalled() {
    with_watchdog("timer_wins", || {
        let signal = Signal::new();
        let start = Instant::now();
        let winner = ThreadsRuntime::new().block_on(select(
            signal.wait(),
            ThreadsRuntime::sleep(Duration::from_millis(30)),
        ));
        assert!(matches!(winner, Either::Right(())), "the timer wins");
        assert!(start.elapsed() >= Duration::from_millis(30));
    });
}

#[test]
fn accept_yields_so_a_select_with_shutdown_can_finish() {
    with_watchdog("accept_select", || {
        let stop = Signal::new();
        let remote = stop.clone();
        let t = std::thread::spawn(move || {
            while !remote.was_polled() {
                std::thread::sleep(Duration::from_millis(1));
            }
            remote.set();
        });
        let outcome = ThreadsRuntime::new().block_on(async {
            let mut l = ThreadsRuntime::listener_from_std(loopback_listener()).expect("adopt");
            match select(l.accept(), stop.wait()).await {
                Either::Left(_) => "accepted",
                Either::Right(()) => "stopped",
            }
        });
        assert_eq!(
            outcome, "stopped",
            "no client connects, so only shutdown can win"
        );
        t.join().expect("waker thread");
    });
}

#[test]
fn spawned_tasks_run_including_tasks_spawned_by_tasks() {
    with_watchdog("spawn_local", || {
        ThreadsRuntime::new().block_on(async {
            let done = Signal::new();
            let inner_done = done.clone();
            ThreadsRuntime::spawn_local(async move {
                ThreadsRuntime::sleep(Duration::from_millis(1)).await;
                ThreadsRuntime::spawn_local(async move {
                    inner_done.set();
                });
            });
            done.wait().await;
        });
    });
}

#[test]
fn dropping_the_runtime_drops_unfinished_tasks() {
    struct SetOnDrop(Rc<Cell<bool>>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let dropped = Rc::new(Cell::new(false));
    let mut rt = ThreadsRuntime::new();
    let guard = SetOnDrop(dropped.clone());
    rt.block_on(async move {
        ThreadsRuntime::spawn_local(async move {
            let _guard = guard;
            ThreadsRuntime::sleep(Duration::from_secs(3600)).await;
        });
        ThreadsRuntime::sleep(Duration::from_millis(1)).await;
    });
    assert!(
        !dropped.get(),
        "the task is still alive while the runtime is"
    );
    drop(rt);
    assert!(dropped.get(), "dropping the runtime dropped the task");
}

#[test]
fn connect_to_a_closed_port_is_an_error() {
    let addr = {
        let l = loopback_listener();
        l.local_addr().expect("addr")
    };
    ThreadsRuntime::new().block_on(async {
        let err = ThreadsRuntime::connect(addr).await.err().expect("refused");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    });
}
