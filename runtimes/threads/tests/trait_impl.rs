//! The threads row against fanbench's runtime trait, directly (no broker): the shared
//! trait tests of `fanbench-rt-testsuite`, then the threads row's own.

use std::cell::Cell;
use std::net::TcpStream as StdStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fanbench_rt::{AsyncReadRent, AsyncWriteRent, Listener, Runtime, Stream};
use fanbench_rt_testsuite::basic::{self, EchoServer};
use fanbench_rt_testsuite::support::{
    read_to_end, select, std_loopback_listener, with_watchdog, Either, Signal,
};
use fanbench_rt_threads::{ThreadsRuntime, ThreadsStream};

/// Accept one connection on a fresh runtime (blocking the calling thread until it arrives).
fn accept_one(listener: std::net::TcpListener) -> ThreadsStream {
    ThreadsRuntime::new().block_on(async move {
        let mut l = ThreadsRuntime::listener_from_std(listener).expect("adopt");
        l.accept().await.expect("accept").0
    })
}

#[test]
fn echo_over_loopback_returns_the_same_bytes_and_buffers() {
    basic::echo_over_loopback_returns_the_same_bytes_and_buffers(
        ThreadsRuntime::new,
        EchoServer::OwnThread,
        b"hello, threads",
    );
}

#[test]
fn read_appends_after_the_initialised_bytes() {
    basic::read_appends_after_the_initialised_bytes(ThreadsRuntime::new);
}

#[test]
fn read_into_a_full_buffer_returns_zero_without_blocking() {
    basic::read_into_a_full_buffer_returns_zero(ThreadsRuntime::new);
}

#[test]
fn writev_delivers_every_buffer_in_order() {
    // More buffers than IOV_MAX and more bytes than a socket buffer: short writes happen.
    basic::writev_delivers_every_buffer_in_order(ThreadsRuntime::new, 1500, 1000);
}

#[test]
fn shutdown_unblocks_a_read_blocked_on_the_other_half_with_eof() {
    with_watchdog("shutdown", || {
        let std_listener = std_loopback_listener();
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
    basic::foreign_thread_wake_runs_a_spawned_task(ThreadsRuntime::new);
}

#[test]
fn foreign_thread_wake_runs_the_block_on_future() {
    basic::foreign_thread_wake_runs_the_block_on_future(ThreadsRuntime::new);
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
    basic::sleep_never_completes_early(ThreadsRuntime::new);
}

#[test]
fn a_wake_ends_a_wait_on_signal_or_long_timer() {
    // The writer's shape: "queue non-empty OR ping timer". A wake must not wait for the timer.
    with_watchdog("signal_or_timer", || {
        let signal = Signal::new();
        let t = signal.set_once_polled_from_thread();
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
        let t = stop.set_once_polled_from_thread();
        let outcome = ThreadsRuntime::new().block_on(async {
            let mut l = ThreadsRuntime::listener_from_std(std_loopback_listener()).expect("adopt");
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
    basic::connect_to_a_closed_port_is_an_error(ThreadsRuntime::new);
}
