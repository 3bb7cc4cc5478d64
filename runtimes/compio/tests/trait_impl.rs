//! The compio row against fanbench's runtime trait, directly (no broker): the shared
//! trait tests of `fanbench-rt-testsuite`, then compio's own.

use std::net::TcpStream as StdStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;

use fanbench_rt::{AsyncReadRent, AsyncWriteRent};
use fanbench_rt::{Listener, Runtime, Stream};
use fanbench_rt_compio::{CompioConfig, CompioRuntime};
use fanbench_rt_testsuite::basic::{self, EchoServer};
use fanbench_rt_testsuite::support::{read_to_end, std_loopback_listener, with_watchdog, Signal};

fn runtime() -> CompioRuntime {
    CompioRuntime::new(CompioConfig::default()).expect("io_uring works on the test machine")
}

#[test]
fn echo_over_loopback_returns_the_same_bytes_and_buffers() {
    basic::echo_over_loopback_returns_the_same_bytes_and_buffers(
        runtime,
        EchoServer::SameRuntimeTask,
        b"hello, compio",
    );
}

#[test]
fn read_appends_after_the_initialised_bytes() {
    basic::read_appends_after_the_initialised_bytes(runtime);
}

#[test]
fn read_into_a_full_buffer_returns_zero() {
    basic::read_into_a_full_buffer_returns_zero(runtime);
}

#[test]
fn writev_delivers_every_buffer_in_order() {
    // 200 buffers of 8 KiB and more: short writes happen. (More buffers than IOV_MAX in
    // one call fail on this row with EMSGSIZE.)
    basic::writev_delivers_every_buffer_in_order(runtime, 200, 8192);
}

#[test]
fn shutdown_completes_a_read_pending_on_the_other_half_with_eof() {
    with_watchdog("shutdown", || {
        let std_listener = std_loopback_listener();
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
    basic::foreign_thread_wake_runs_a_spawned_task(runtime);
}

#[test]
fn foreign_thread_wake_runs_the_block_on_future() {
    basic::foreign_thread_wake_runs_the_block_on_future(runtime);
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
    basic::sleep_never_completes_early(runtime);
}

#[test]
fn connect_to_a_closed_port_is_an_error() {
    basic::connect_to_a_closed_port_is_an_error(runtime);
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
