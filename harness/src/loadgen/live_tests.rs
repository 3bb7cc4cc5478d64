//! End-to-end runs of the load generator against a real nats-server (skipped, with the reason
//! printed, when `nats-server` is not installed). They run one at a time: each starts its own
//! server on a free port, pinned to CPU 0 with GOMAXPROCS=1, and pins the load generator to
//! CPU 1 when the machine has two CPUs.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::*;

/// Live runs share the machine's CPUs; running two at once would distort both.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A nats-server for one test; it holds [`ONE_AT_A_TIME`] until it is dropped (after the
/// child is killed: fields drop after `Drop::drop`).
struct NatsServer {
    child: Child,
    addr: SocketAddr,
    config: std::path::PathBuf,
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

/// Takes the live tests' turn and starts nats-server with `extra_config`, or says why the test
/// is skipped.
fn nats_or_skip(extra_config: &str) -> Option<NatsServer> {
    let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    match NatsServer::start(extra_config, turn) {
        Ok(server) => Some(server),
        Err(reason) => {
            println!("SKIPPED: {reason}");
            None
        }
    }
}

impl NatsServer {
    /// Starts nats-server with `extra_config` (nats config syntax), or returns why it cannot.
    fn start(extra_config: &str, turn: std::sync::MutexGuard<'static, ()>) -> Result<Self, String> {
        let probe = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
        let addr = probe.local_addr().map_err(|e| e.to_string())?;
        drop(probe);
        let config = std::env::temp_dir().join(format!("fanbench-loadgen-{}.conf", addr.port()));
        std::fs::write(
            &config,
            format!("host: 127.0.0.1\nport: {}\n{extra_config}\n", addr.port()),
        )
        .map_err(|e| format!("writing {}: {e}", config.display()))?;
        let mut cmd = Command::new("nats-server");
        cmd.arg("-c")
            .arg(&config)
            .env("GOMAXPROCS", "1")
            .stdout(Stdio::null());
        if std::env::var_os("FANBENCH_TEST_SERVER_LOG").is_none() {
            cmd.stderr(Stdio::null());
        }
        if cpu_count() >= 2 {
            // SAFETY: pre_exec runs in the forked child before exec; sched_setaffinity is
            // async-signal-safe and the cpu_set_t lives on the child's stack.
            unsafe {
                use std::os::unix::process::CommandExt;
                cmd.pre_exec(|| {
                    let mut set: libc::cpu_set_t = std::mem::zeroed();
                    libc::CPU_SET(0, &mut set);
                    libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().map_err(|e| {
            format!("nats-server not runnable ({e}); install it with apt-get install nats-server")
        })?;
        let server = Self {
            child,
            addr,
            config,
            _one_at_a_time: turn,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                return Err("nats-server did not listen within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill has no memory effects; the pid is our own live child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

fn cpu_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn client_cpus() -> Vec<usize> {
    if cpu_count() >= 2 {
        vec![1]
    } else {
        Vec::new()
    }
}

fn spec(
    addr: SocketAddr,
    publishers: u32,
    subscribers: u32,
    rate: f64,
    payload: usize,
) -> LoadSpec {
    LoadSpec {
        target: addr,
        publishers,
        subscribers_per_publisher: subscribers,
        rate_per_publisher: rate,
        payload_bytes: payload,
        warmup: Duration::from_millis(500),
        duration: Duration::from_secs(3),
        slow_subscribers: 0,
        slow_read_bytes_per_s: 0,
        client_cpus: client_cpus(),
    }
}

/// Records the order in which the hooks ran and when.
#[derive(Default)]
struct Recorder {
    calls: Vec<(&'static str, u64)>,
}

impl WindowHooks for Recorder {
    fn measure_start(&mut self) {
        self.calls.push(("start", os::now_ns()));
    }
    fn measure_end(&mut self) {
        self.calls.push(("end", os::now_ns()));
    }
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn describe(name: &str, r: &LoadReport) {
    println!(
        "{name}: sent {} expected {} delivered {} lost {} dup {} reord {} | latency p50 {:.0} us p99 {:.0} us max {:.0} us | service p50 {:.0} us p99 {:.0} us | pacing lag p50 {:.1} us p99 {:.1} us max {:.1} us behind {} ({}) | loadgen cpu {:.1}% of {} core(s), busiest {:?} {:?} | grace {:.0} ms | errors {:?}",
        r.sent,
        r.expected,
        r.delivered,
        r.lost,
        r.duplicates,
        r.reordered,
        us(r.latency.value_at_quantile(0.5)),
        us(r.latency.value_at_quantile(0.99)),
        us(r.latency.max()),
        us(r.service_latency.value_at_quantile(0.5)),
        us(r.service_latency.value_at_quantile(0.99)),
        us(r.pacing_lag.value_at_quantile(0.5)),
        us(r.pacing_lag.value_at_quantile(0.99)),
        us(r.max_pacing_lag_ns),
        r.behind_schedule,
        r.pacer_priority,
        r.loadgen_cpu.utilisation * 100.0,
        r.loadgen_cpu.cores,
        r.loadgen_cpu.busiest_thread,
        r.loadgen_cpu.busiest_thread_utilisation,
        r.grace_ns as f64 / 1e6,
        r.errors,
    );
    println!(
        "  receive path: {} ({:?}; fallback: {:?}) | read delay p50 {:.1} us p99 {:.1} us max {:.1} us | received in window {} | rx {:?}",
        r.receive_path.name,
        r.receive_path.ring_flags,
        r.receive_path.fallback_reason,
        us(r.read_delay.value_at_quantile(0.5)),
        us(r.read_delay.value_at_quantile(0.99)),
        us(r.read_delay.max()),
        r.received_in_window,
        r.rx,
    );
    println!(
        "  thread cpu null reason: {:?}; windows: {:?}",
        r.loadgen_cpu.thread_cpu_null_reason,
        r.windows
            .iter()
            .map(|w| (
                w.delivered,
                w.latency_p99_ns.map(us),
                w.latency_max_ns.map(us)
            ))
            .collect::<Vec<_>>(),
    );
}

/// The accounting identities every complete, healthy run satisfies.
fn assert_complete(r: &LoadReport, publishers: u64, healthy_subscribers: u64, per_publisher: u64) {
    assert_eq!(
        r.sent,
        publishers * per_publisher,
        "every due message was sent"
    );
    assert_eq!(r.expected, publishers * per_publisher * healthy_subscribers);
    assert_eq!(
        r.lost, 0,
        "no healthy subscriber lost a message: {:?}",
        r.errors
    );
    assert_eq!(r.subscribers_with_loss, 0);
    assert_eq!(r.duplicates, 0);
    assert_eq!(r.delivered, r.expected);
    assert_eq!(
        r.latency.len(),
        r.delivered,
        "one latency sample per delivery"
    );
    assert_eq!(r.service_latency.len(), r.delivered);
    assert_eq!(
        r.pacing_lag.len(),
        r.sent,
        "one pacing-lag sample per sent message"
    );
    assert_eq!(
        r.windows.iter().map(|w| w.delivered).sum::<u64>(),
        r.delivered
    );
    assert_eq!(r.windows.iter().map(|w| w.sent).sum::<u64>(), r.sent);
    assert_eq!(
        r.windows.iter().map(|w| w.expected).sum::<u64>(),
        r.expected
    );
    assert!(
        r.service_latency.max() <= r.latency.max(),
        "service latency never exceeds latency (actual send >= intended)"
    );
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

#[test]
fn five_publishers_by_25_subscribers_at_50_msgs_deliver_everything_once() {
    let Some(server) = nats_or_skip("") else {
        return;
    };
    let mut hooks = Recorder::default();
    let before = os::now_ns();
    let r = run(&spec(server.addr, 5, 25, 50.0, 256), &mut hooks).expect("run completes");
    describe("5x25 @ 50 msg/s, 256 B", &r);
    assert_complete(&r, 5, 25, 150);
    assert_eq!(r.windows.len(), 3);
    assert!(r
        .windows
        .iter()
        .all(|w| w.sent == 250 && w.expected == 250 * 25));
    assert_eq!(
        hooks.calls.iter().map(|c| c.0).collect::<Vec<_>>(),
        ["start", "end"]
    );
    // The window starts after the warm-up and ends no earlier than `duration` later.
    assert!(hooks.calls[0].1 >= before + 500_000_000);
    assert!(hooks.calls[1].1 >= hooks.calls[0].1);
    assert_eq!(r.loadgen_cpu.cores, 1);
    assert!(r.loadgen_cpu.utilisation.is_finite() && r.loadgen_cpu.utilisation > 0.0);
}

#[test]
fn one_publisher_to_100_subscribers_at_2000_msgs_of_1_kib_loses_nothing() {
    let Some(server) = nats_or_skip("") else {
        return;
    };
    let r = run(
        &spec(server.addr, 1, 100, 2000.0, 1024),
        &mut Recorder::default(),
    )
    .expect("run completes");
    describe("1x100 @ 2000 msg/s, 1 KiB", &r);
    assert_complete(&r, 1, 100, 6000);
}

#[test]
fn publishers_and_subscribers_answer_server_pings_during_the_run() {
    // A client that misses two PINGs in a row is dropped as stale. The server does not PING a
    // client it heard from recently, so the publishers send only twice a second: between
    // their messages they are PINGed every 100 ms, and one that did not answer would lose its
    // connection (and the run its messages) within the window.
    let Some(server) = nats_or_skip("ping_interval: \"100ms\"\nping_max: 2") else {
        return;
    };
    let r =
        run(&spec(server.addr, 2, 5, 2.0, 128), &mut Recorder::default()).expect("run completes");
    describe("2x5 @ 2 msg/s, 128 B, PING every 100 ms", &r);
    assert_complete(&r, 2, 5, 6);
}

#[test]
fn thousand_subscribers_on_two_threads_all_subscribe_and_merge_into_one_report() {
    let Some(server) = nats_or_skip("") else {
        return;
    };
    let mut spec = spec(server.addr, 5, 200, 20.0, 1024);
    // Two subscriber threads (on the same CPU when the machine has only two).
    spec.client_cpus = if cpu_count() >= 2 {
        vec![1, 1]
    } else {
        vec![0, 0]
    };
    let r = run(&spec, &mut Recorder::default()).expect("run completes");
    describe("5x200 @ 20 msg/s, 1 KiB, 2 subscriber threads", &r);
    assert_complete(&r, 5, 200, 60);
    assert_eq!(
        r.loadgen_cpu.cores, 1,
        "two threads on one CPU use one core"
    );
}

#[test]
fn server_stopped_for_500ms_shows_in_p99_and_max_latency() {
    let Some(server) = nats_or_skip("") else {
        return;
    };
    let mut spec = spec(server.addr, 1, 10, 200.0, 256);
    spec.warmup = Duration::from_millis(500);
    spec.duration = Duration::from_secs(6);
    struct StopMidWindow<'a> {
        server: &'a NatsServer,
        stopper: Option<std::thread::JoinHandle<()>>,
    }
    impl WindowHooks for StopMidWindow<'_> {
        fn measure_start(&mut self) {
            let pid = self.server.child.id() as libc::pid_t;
            self.stopper = Some(std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(3));
                // SAFETY: kill has no memory effects; `pid` is the test's live child.
                unsafe { libc::kill(pid, libc::SIGSTOP) };
                std::thread::sleep(Duration::from_millis(500));
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGCONT) };
            }));
        }
        fn measure_end(&mut self) {}
    }
    let mut hooks = StopMidWindow {
        server: &server,
        stopper: None,
    };
    let r = run(&spec, &mut hooks).expect("run completes");
    if let Some(stopper) = hooks.stopper.take() {
        stopper.join().expect("stopper thread");
    }
    describe("1x10 @ 200 msg/s, 6 s, server stopped 500 ms", &r);
    assert_complete(&r, 1, 10, 1200);
    // Open loop: the 100 messages due during the stop were sent on time and waited in the
    // socket buffers, so the first of them waited ~500 ms and ~8% of all deliveries waited.
    assert!(
        r.latency.max() >= 450_000_000,
        "max latency {} ns",
        r.latency.max()
    );
    assert!(
        r.latency.value_at_quantile(0.99) >= 100_000_000,
        "p99 {} ns",
        r.latency.value_at_quantile(0.99)
    );
    let stalled = r
        .windows
        .iter()
        .filter(|w| w.latency_max_ns.unwrap_or(0) >= 400_000_000)
        .count();
    assert!(
        stalled >= 1,
        "the stall shows in the per-second windows: {:?}",
        r.windows
    );
}

#[test]
fn server_stopped_for_the_last_30_percent_of_the_window_shows_in_received_throughput() {
    let Some(server) = nats_or_skip("") else {
        return;
    };
    let mut spec = spec(server.addr, 1, 10, 500.0, 256);
    spec.duration = Duration::from_secs(3);
    // Stopped from 2.1 s into the 3 s window until 0.4 s after it: what was due in the last
    // 0.9 s is delivered after the window, so the window received ~70% of what was offered.
    struct StopAtTheEnd<'a> {
        server: &'a NatsServer,
        stopper: Option<std::thread::JoinHandle<()>>,
    }
    impl WindowHooks for StopAtTheEnd<'_> {
        fn measure_start(&mut self) {
            let pid = self.server.child.id() as libc::pid_t;
            self.stopper = Some(std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(2100));
                // SAFETY: kill has no memory effects; `pid` is the test's live child.
                unsafe { libc::kill(pid, libc::SIGSTOP) };
                std::thread::sleep(Duration::from_millis(1300));
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGCONT) };
            }));
        }
        fn measure_end(&mut self) {}
    }
    let mut hooks = StopAtTheEnd {
        server: &server,
        stopper: None,
    };
    let r = run(&spec, &mut hooks).expect("run completes");
    if let Some(stopper) = hooks.stopper.take() {
        stopper.join().expect("stopper thread");
    }
    describe(
        "1x10 @ 500 msg/s, server stopped for the window's last 0.9 s",
        &r,
    );
    assert_complete(&r, 1, 10, 1500);
    if r.receive_path.ring_flags.is_none() {
        return println!("SKIPPED the throughput check: no kernel receive timestamps here");
    }
    let share = r.received_in_window as f64 / r.expected as f64;
    assert!(
        (0.6..0.8).contains(&share),
        "received in the window {} of {} offered ({share:.2})",
        r.received_in_window,
        r.expected
    );
    assert!(
        r.latency.max() >= 1_000_000_000,
        "max latency {} ns",
        r.latency.max()
    );
}

#[test]
fn a_mark_counts_the_messages_received_after_it() {
    let Some(server) = nats_or_skip("") else {
        return;
    };
    let spec = spec(server.addr, 1, 10, 1000.0, 128);
    // The mark is set 1.5 s into the 3 s window.
    struct MarkMidway {
        mark: Option<u64>,
    }
    impl WindowHooks for MarkMidway {
        fn measure_start(&mut self) {}
        fn measure_end(&mut self) {}
        fn second_done(&mut self, index: u32) {
            if index == 0 {
                self.mark = Some(os::now_ns() + 500_000_000);
            }
        }
        fn mark(&mut self) -> Option<u64> {
            self.mark
        }
    }
    let r = run(&spec, &mut MarkMidway { mark: None }).expect("run completes");
    describe("1x10 @ 1000 msg/s, marked 1.5 s into the window", &r);
    assert_complete(&r, 1, 10, 3000);
    let since = r.received_since_mark.expect("the mark was set");
    // The mark falls inside second 1: everything of second 2 came after it, nothing of
    // second 0 did (a loaded machine moves messages between seconds, so no share is asserted).
    let (one, two) = (r.windows[1].received, r.windows[2].received);
    assert!(
        two <= since && since <= one + two,
        "received since the mark {since}; in second 1 {one}, in second 2 {two}"
    );
    let unmarked = run(&spec, &mut Recorder::default()).expect("run completes");
    assert_eq!(unmarked.received_since_mark, None);
}

#[test]
fn slow_subscriber_is_cut_without_costing_healthy_subscribers_a_message() {
    // A small max_pending makes nats-server cut the trickling reader within a fraction of a second.
    let Some(server) = nats_or_skip("write_deadline: \"500ms\"") else {
        return;
    };
    let mut spec = spec(server.addr, 1, 5, 1000.0, 1024);
    spec.slow_subscribers = 1;
    spec.slow_read_bytes_per_s = 1000;
    let r = run(&spec, &mut Recorder::default()).expect("run completes");
    describe("1x5 (1 slow) @ 1000 msg/s, 1 KiB", &r);
    println!("slow: {:?}", r.slow);
    assert_complete(&r, 1, 4, 3000);
    assert_eq!(r.slow.subscribers, 1);
    assert!(r.slow.bytes_read > 0, "the slow subscriber read something");
    assert_eq!(
        r.slow.closed_by_server, 1,
        "nats-server closed the slow consumer"
    );
    assert!(
        r.slow.messages < 3500,
        "a trickle reader cannot have read every message"
    );
}

#[test]
fn unreachable_target_is_an_error_not_a_hang_or_panic() {
    let probe = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = probe.local_addr().expect("addr");
    drop(probe);
    let err =
        run(&spec(addr, 1, 2, 10.0, 64), &mut Recorder::default()).expect_err("nothing listens");
    assert!(format!("{err:#}").contains("subscribe"), "{err:#}");
}

#[test]
fn invalid_specs_are_rejected_before_connecting() {
    let addr: SocketAddr = "127.0.0.1:9".parse().expect("addr");
    let cases = [
        (
            "publisher",
            LoadSpec {
                publishers: 0,
                ..spec(addr, 1, 1, 10.0, 64)
            },
        ),
        (
            "subscriber",
            LoadSpec {
                subscribers_per_publisher: 0,
                ..spec(addr, 1, 1, 10.0, 64)
            },
        ),
        ("payload", spec(addr, 1, 1, 10.0, 10)),
        ("rate", spec(addr, 1, 1, 0.0, 64)),
        (
            "duration",
            LoadSpec {
                duration: Duration::ZERO,
                ..spec(addr, 1, 1, 10.0, 64)
            },
        ),
        (
            "sequence-check",
            LoadSpec {
                duration: Duration::from_secs(3600),
                ..spec(addr, 5, 200, 100_000.0, 64)
            },
        ),
        (
            "slow",
            LoadSpec {
                slow_subscribers: 2,
                ..spec(addr, 1, 1, 10.0, 64)
            },
        ),
    ];
    for (what, case) in cases {
        let err = run(&case, &mut Recorder::default()).expect_err(what);
        assert!(format!("{err:#}").contains(what), "{what}: {err:#}");
    }
}
