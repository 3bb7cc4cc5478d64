//! Subscriber threads: each runs a Tokio current-thread runtime (pinned to one client CPU) that
//! drives its share of the subscriber connections as local tasks, recording into per-thread
//! statistics that are merged when the run ends.
//!
//! A receive timestamp is taken once per `read` (every message in that read had arrived by
//! then), before parsing, so parsing cost never inflates latency.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::BytesMut;
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{watch, Semaphore};

use super::delivery;
use super::os;
use super::payload::Header;
use super::seq::SeqTracker;
use super::stats::{self, WindowAcc};
use super::wire::{self, Incoming};
use super::Timeline;

/// Connections a thread opens at once (more would overflow a server's accept backlog and cost
/// a 1 s SYN retransmit).
const CONNECT_CONCURRENCY: usize = 64;
/// Time allowed for one subscriber's connect and handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Error messages kept per thread; the rest are counted.
const MAX_ERRORS_PER_THREAD: usize = 100;
/// Receive buffer requested for slow subscribers, so the server feels their backpressure soon.
pub const SLOW_RCVBUF_BYTES: u32 = 4096;
/// Slow subscribers read once per tick, `slow_read_bytes_per_s / 10` bytes at most.
pub const SLOW_TICK: Duration = Duration::from_millis(100);
/// How long a slow subscriber reads at full speed after the run, to see whether it was cut.
pub const SLOW_FINAL_DRAIN: Duration = Duration::from_millis(500);

/// One subscriber connection to open.
#[derive(Debug, Clone)]
pub struct SubPlan {
    pub id: u32,
    pub publisher: u32,
    pub subject: String,
    pub slow: bool,
}

/// Where the run is; subscriber tasks follow it through a watch channel.
#[derive(Debug, Clone)]
pub enum Phase {
    /// Connect and subscribe, then wait.
    Connecting,
    /// Publishers are running on this timeline.
    Running(Timeline),
    /// Stop reading and report.
    Stop,
}

/// State shared by all subscriber threads and the coordinator.
pub struct Shared {
    pub target: SocketAddr,
    pub payload_bytes: usize,
    pub slow_read_bytes_per_s: u64,
    /// One message per subscriber once it is subscribed (its PONG arrived), or why it failed.
    pub ready: Mutex<mpsc::Sender<Result<(), String>>>,
    /// Distinct in-window messages received by healthy subscribers (for the grace period).
    pub unique_in_window: AtomicU64,
    /// Highest in-window latency seen so far (ns), for the grace period.
    pub max_latency_ns: AtomicU64,
    /// Kernel thread ids of the load generator's threads, for per-thread CPU.
    pub threads: Mutex<Vec<(String, i32)>>,
    /// CLOCK_MONOTONIC ns from which messages received in the window are also counted in
    /// `received_since_mark` ([`super::WindowHooks::mark`]); `u64::MAX` until set.
    pub mark_ns: AtomicU64,
    /// The pacer, handed to receiver thread 0 when it runs in that thread's ring loop (taken
    /// there when the run starts).
    pub pacer: Mutex<Option<super::publisher::Pacer>>,
}

/// What slow subscribers saw.
#[derive(Debug, Clone, Default)]
pub struct SlowAcc {
    pub bytes_read: u64,
    pub bytes_drained_at_end: u64,
    pub messages: u64,
    pub messages_in_window: u64,
    pub cut_as_slow_consumer: u32,
    pub closed_by_server: u32,
    pub max_latency_ns: Option<u64>,
}

/// One thread's measurements.
pub struct ThreadReport {
    pub latency: Histogram<u64>,
    pub service_latency: Histogram<u64>,
    pub windows: Vec<WindowAcc>,
    /// In-window `MSG`s received by healthy subscribers (duplicates included).
    pub delivered: u64,
    pub expected: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub subscribers_with_loss: u32,
    pub slow: SlowAcc,
    pub errors: Vec<String>,
    pub errors_suppressed: u64,
    /// Messages (healthy subscribers, any due time) received inside the measured window.
    pub received_in_window: u64,
    /// Of those, the ones received at or after the mark.
    pub received_since_mark: u64,
    /// Read time - kernel receive time per message, ns (empty on the readiness path, which
    /// has no kernel receive time).
    pub read_delay: Histogram<u64>,
    /// The io_uring receive path's counters (zero on the readiness path).
    pub rx: super::ring::RxCounters,
    /// The pacer's report, from the thread whose loop ran it.
    pub pacer: Option<super::publisher::PacerReport>,
}

impl ThreadReport {
    pub fn new() -> Self {
        Self {
            received_in_window: 0,
            received_since_mark: 0,
            read_delay: stats::pacing_histogram(),
            rx: Default::default(),
            pacer: None,
            latency: stats::latency_histogram(),
            service_latency: stats::latency_histogram(),
            windows: Vec::new(),
            delivered: 0,
            expected: 0,
            lost: 0,
            duplicates: 0,
            reordered: 0,
            subscribers_with_loss: 0,
            slow: SlowAcc::default(),
            errors: Vec::new(),
            errors_suppressed: 0,
        }
    }

    pub fn error(&mut self, text: String) {
        if self.errors.len() < MAX_ERRORS_PER_THREAD {
            self.errors.push(text);
        } else {
            self.errors_suppressed += 1;
        }
    }
}

/// Starts one subscriber thread for `plans`, pinned to `cpu` when given.
pub fn spawn_thread(
    index: usize,
    cpu: Option<usize>,
    plans: Vec<SubPlan>,
    shared: Arc<Shared>,
    phase: watch::Receiver<Phase>,
) -> Result<std::thread::JoinHandle<Result<ThreadReport>>> {
    std::thread::Builder::new()
        .name(format!("loadgen-sub-{index}"))
        .spawn(move || {
            let result = thread_main(index, cpu, plans.clone(), &shared, phase);
            if let Err(e) = &result {
                // Unblock the coordinator: every subscriber of this thread counts as failed.
                if let Ok(ready) = shared.ready.lock() {
                    for plan in &plans {
                        let _ = ready.send(Err(format!("subscriber {}: {e:#}", plan.id)));
                    }
                }
            }
            result
        })
        .context("spawning a subscriber thread")
}

fn thread_main(
    index: usize,
    cpu: Option<usize>,
    plans: Vec<SubPlan>,
    shared: &Arc<Shared>,
    phase: watch::Receiver<Phase>,
) -> Result<ThreadReport> {
    if let Some(cpu) = cpu {
        os::pin_current_thread(cpu)?;
    }
    if let Ok(mut threads) = shared.threads.lock() {
        threads.push((format!("subscriber thread {index}"), os::gettid()));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building a Tokio current-thread runtime")?;
    let local = tokio::task::LocalSet::new();
    let report = Rc::new(RefCell::new(ThreadReport::new()));
    let permits = Rc::new(Semaphore::new(CONNECT_CONCURRENCY));
    local.block_on(&runtime, async {
        let tasks: Vec<_> = plans
            .into_iter()
            .map(|plan| {
                let ctx = TaskCtx {
                    plan,
                    shared: Arc::clone(shared),
                    report: Rc::clone(&report),
                    phase: phase.clone(),
                };
                tokio::task::spawn_local(subscriber_task(ctx, Rc::clone(&permits)))
            })
            .collect();
        for task in tasks {
            if let Err(e) = task.await {
                report
                    .borrow_mut()
                    .error(format!("a subscriber task panicked: {e}"));
            }
        }
    });
    drop(local);
    Rc::try_unwrap(report)
        .map(RefCell::into_inner)
        .map_err(|_| anyhow::anyhow!("subscriber tasks still hold the thread report"))
}

struct TaskCtx {
    plan: SubPlan,
    shared: Arc<Shared>,
    report: Rc<RefCell<ThreadReport>>,
    phase: watch::Receiver<Phase>,
}

/// An open, subscribed connection.
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    parser: wire::Parser,
}

async fn subscriber_task(mut ctx: TaskCtx, permits: Rc<Semaphore>) {
    let opened = {
        let _permit = permits.acquire().await;
        tokio::time::timeout(HANDSHAKE_TIMEOUT, open(&ctx.plan, &ctx.shared))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out after {HANDSHAKE_TIMEOUT:?}")))
    };
    let ready = opened.as_ref().map(|_| ()).map_err(|e| {
        format!(
            "subscriber {} (publisher {}): {e:#}",
            ctx.plan.id, ctx.plan.publisher
        )
    });
    if let Ok(tx) = ctx.shared.ready.lock() {
        let _ = tx.send(ready);
    }
    let Ok(conn) = opened else { return };
    let timeline = match ctx
        .phase
        .wait_for(|p| !matches!(p, Phase::Connecting))
        .await
    {
        Ok(phase) => match &*phase {
            Phase::Running(timeline) => timeline.clone(),
            _ => return,
        },
        Err(_) => return,
    };
    {
        let mut report = ctx.report.borrow_mut();
        if report.windows.len() < timeline.windows() {
            report
                .windows
                .resize_with(timeline.windows(), WindowAcc::new);
        }
    }
    if ctx.plan.slow {
        slow_loop(&mut ctx, conn, &timeline).await;
    } else {
        healthy_loop(&mut ctx, conn, &timeline).await;
    }
}

/// Connects, reads INFO, sends CONNECT + SUB + PING and waits for the PONG: once it arrives the
/// server has registered the subscription.
async fn open(plan: &SubPlan, shared: &Shared) -> Result<Conn> {
    let socket = if shared.target.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .context("creating a socket")?;
    if plan.slow {
        socket
            .set_recv_buffer_size(SLOW_RCVBUF_BYTES)
            .context("setting SO_RCVBUF")?;
    }
    let stream = socket
        .connect(shared.target)
        .await
        .with_context(|| format!("connecting to {}", shared.target))?;
    stream.set_nodelay(true).context("setting TCP_NODELAY")?;
    let mut conn = Conn {
        stream,
        buf: BytesMut::with_capacity(64 * 1024),
        parser: wire::Parser::new(shared.payload_bytes),
    };
    conn.read_until(|op| matches!(op, Incoming::Info)).await?;
    let hello = wire::hello(
        &format!("fanbench-sub-{}", plan.id),
        Some((&plan.subject, "1")),
    );
    conn.stream
        .write_all(&hello)
        .await
        .context("sending CONNECT/SUB/PING")?;
    conn.read_until(|op| matches!(op, Incoming::Pong)).await?;
    Ok(conn)
}

impl Conn {
    async fn read_until(&mut self, done: impl Fn(&Incoming) -> bool) -> Result<()> {
        loop {
            while let Some(op) = self.parser.next(&mut self.buf)? {
                match op {
                    Incoming::Err(text) => bail!("server sent -ERR {text}"),
                    Incoming::Ping => self
                        .stream
                        .write_all(wire::PONG)
                        .await
                        .context("sending PONG")?,
                    op if done(&op) => return Ok(()),
                    _ => {}
                }
            }
            self.buf.reserve(4096);
            if self
                .stream
                .read_buf(&mut self.buf)
                .await
                .context("reading from the server")?
                == 0
            {
                bail!("server closed the connection");
            }
        }
    }
}

/// Reads as fast as messages come; records latency, service latency, windows and sequence.
async fn healthy_loop(ctx: &mut TaskCtx, mut conn: Conn, timeline: &Timeline) {
    let plan = &ctx.plan;
    let schedule = timeline.schedules[plan.publisher as usize];
    let mut tracker =
        SeqTracker::new(schedule.seqs_due_in(timeline.window_start_ns, timeline.window_end_ns));
    let mut failure: Option<String> = None;
    let mut batch = delivery::Batch::default();
    loop {
        conn.buf.reserve(64 * 1024);
        let read = tokio::select! {
            biased;
            changed = ctx.phase.changed() => {
                if changed.is_err() || matches!(*ctx.phase.borrow(), Phase::Stop) {
                    break;
                }
                continue;
            }
            read = conn.stream.read_buf(&mut conn.buf) => read,
        };
        let received_ns = os::now_ns();
        batch.load_mark(&ctx.shared);
        match read {
            Ok(0) => {
                failure = Some("server closed the connection".into());
                break;
            }
            Ok(_) => {}
            Err(e) => {
                failure = Some(format!("read failed: {e}"));
                break;
            }
        }
        let mut pongs = 0;
        {
            let mut report = ctx.report.borrow_mut();
            loop {
                let op = match conn.parser.next(&mut conn.buf) {
                    Ok(Some(op)) => op,
                    Ok(None) => break,
                    Err(e) => {
                        failure = Some(format!("unparsable data from the server: {e:#}"));
                        break;
                    }
                };
                match op {
                    Incoming::Msg(payload) => match Header::decode(&payload) {
                        Ok(header) => delivery::record(
                            plan,
                            Some(&mut tracker),
                            header,
                            received_ns,
                            Some(timeline),
                            &mut report,
                            &mut batch,
                        ),
                        Err(e) => report.error(format!("subscriber {}: {e:#}", plan.id)),
                    },
                    Incoming::Ping => pongs += 1,
                    Incoming::Err(text) => {
                        report.error(format!("subscriber {}: server sent -ERR {text}", plan.id))
                    }
                    _ => {}
                }
            }
        }
        batch.flush(&ctx.shared);
        if failure.is_some() {
            break;
        }
        for _ in 0..pongs {
            if let Err(e) = conn.stream.write_all(wire::PONG).await {
                failure = Some(format!("sending PONG failed: {e}"));
                break;
            }
        }
        if failure.is_some() {
            break;
        }
    }
    let mut report = ctx.report.borrow_mut();
    if let Some(failure) = failure {
        report.error(format!(
            "subscriber {} (publisher {}): {failure}",
            plan.id, plan.publisher
        ));
    }
    report.expected += tracker.expected();
    report.lost += tracker.lost();
    report.duplicates += tracker.duplicates();
    report.reordered += tracker.reordered();
    if tracker.lost() > 0 {
        report.subscribers_with_loss += 1;
    }
}

/// Reads at most `slow_read_bytes_per_s / 10` bytes per [`SLOW_TICK`] until told to stop,
/// then reads at full speed for at most [`SLOW_FINAL_DRAIN`], only to learn whether the server
/// cut the connection (`-ERR 'Slow Consumer'`, then close) behind the data still queued.
async fn slow_loop(ctx: &mut TaskCtx, mut conn: Conn, timeline: &Timeline) {
    let per_tick = (ctx.shared.slow_read_bytes_per_s / 10) as usize;
    let mut tick = tokio::time::interval(SLOW_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut scratch = vec![0u8; per_tick.clamp(64 * 1024, 1 << 20)];
    let tick_bytes = per_tick.min(scratch.len());
    let mut closed = false;
    let mut acc = SlowAcc::default();
    while !closed {
        tokio::select! {
            biased;
            changed = ctx.phase.changed() => {
                if changed.is_err() || matches!(*ctx.phase.borrow(), Phase::Stop) {
                    break;
                }
            }
            _ = tick.tick() => {
                if tick_bytes > 0 {
                    closed = slow_read(&mut conn, &mut scratch[..tick_bytes], timeline, &mut acc);
                }
            }
        }
    }
    let trickled = acc.bytes_read;
    let drain_until = tokio::time::Instant::now() + SLOW_FINAL_DRAIN;
    while !closed {
        closed = slow_read(&mut conn, &mut scratch, timeline, &mut acc);
        if !closed
            && tokio::time::timeout_at(drain_until, conn.stream.readable())
                .await
                .is_err()
        {
            break;
        }
    }
    acc.bytes_drained_at_end = acc.bytes_read - trickled;
    acc.bytes_read = trickled;
    if closed {
        acc.closed_by_server += 1;
    }
    let mut report = ctx.report.borrow_mut();
    let slow = &mut report.slow;
    slow.bytes_read += acc.bytes_read;
    slow.bytes_drained_at_end += acc.bytes_drained_at_end;
    slow.messages += acc.messages;
    slow.messages_in_window += acc.messages_in_window;
    slow.cut_as_slow_consumer += acc.cut_as_slow_consumer.min(1);
    slow.closed_by_server += acc.closed_by_server;
    slow.max_latency_ns = slow.max_latency_ns.max(acc.max_latency_ns);
}

/// One non-blocking read of at most `scratch.len()` bytes; returns true when the connection is
/// finished (closed by the server or broken).
fn slow_read(conn: &mut Conn, scratch: &mut [u8], timeline: &Timeline, acc: &mut SlowAcc) -> bool {
    let n = match conn.stream.try_read(scratch) {
        Ok(0) => return true,
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
        Err(_) => return true,
    };
    let received_ns = os::now_ns();
    acc.bytes_read += n as u64;
    conn.buf.extend_from_slice(&scratch[..n]);
    loop {
        match conn.parser.next(&mut conn.buf) {
            Ok(Some(Incoming::Msg(payload))) => {
                acc.messages += 1;
                if let Ok(header) = Header::decode(&payload) {
                    let intended_ns = timeline.local_ns(header.intended_ns);
                    if timeline.window_index(intended_ns).is_some() {
                        acc.messages_in_window += 1;
                        let latency = received_ns.saturating_sub(intended_ns);
                        acc.max_latency_ns = acc.max_latency_ns.max(Some(latency));
                    }
                }
            }
            Ok(Some(Incoming::Err(text))) => {
                if text.to_ascii_lowercase().contains("slow consumer") {
                    acc.cut_as_slow_consumer += 1;
                }
            }
            Ok(Some(Incoming::Ping)) => {
                // A PONG is a few bytes; if the socket cannot take it the server cuts us anyway.
                let _ = conn.stream.try_write(wire::PONG);
            }
            Ok(Some(_)) => {}
            Ok(None) => return false,
            Err(_) => return true,
        }
    }
}
