//! The operations, written once over the runtime trait.
//!
//! Each [`Op`] is timed with criterion's `iter_custom`: one `block_on` per sample runs the
//! setup (untimed), then `iters` iterations of the operation between two `Instant`s, then
//! the teardown (untimed). So a row is charged for the operation, never for entering
//! `block_on`, building a runtime, connecting a socket or starting a thread.
//!
//! Where tokio's own benches (benches/rt_multi_threaded.rs) define an operation, the name and
//! the shape are theirs: `spawn_many` (10 000 spawned tasks, the last one signals),
//! `yield_many` (200 tasks yielding 1 000 times each), `ping_pong` (1 000 spawned tasks, each
//! spawning a responder and exchanging a pair of oneshot messages with it), `chained_spawn`
//! (1 000 tasks, each spawning the next). One iteration is then one whole such batch, as in
//! tokio; [`Op::elements`] says how many operations that is.

use std::future::poll_fn;
use std::hint::black_box;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use fanbench_broker::outbound::{Batch, CloseReason, Outbound};
use fanbench_rt::ext::AsyncWriteRentExt;
use fanbench_rt::{bind_reuseport, AsyncReadRent, ListenOptions, Listener, Runtime, Stream};

use crate::rows::{MakeRuntime, MicroRow};
use crate::sync::{spawn_join, yield_now, Countdown};

/// One micro operation (a criterion group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    SpawnLocal,
    InlineAwait,
    SpawnMany,
    Gather,
    ChainedSpawn,
    YieldMany,
    PingPong,
    WakeLocal,
    WakeRemote,
    SleepZero,
    TcpRoundTrip,
    PublishFanout,
}

/// Tasks per `spawn_many` iteration (tokio's NUM_SPAWN).
pub const SPAWN_MANY: usize = 10_000;
/// Tasks per `gather` iteration.
pub const GATHER: usize = 1_000;
/// Links per `chained_spawn` iteration (tokio's ITER).
pub const CHAIN: usize = 1_000;
/// Tasks and yields per task of a `yield_many` iteration (tokio's TASKS, NUM_YIELD).
pub const YIELD_TASKS: usize = 200;
pub const YIELDS_PER_TASK: usize = 1_000;
/// Pings per `ping_pong` iteration (tokio's NUM_PINGS).
pub const PINGS: usize = 1_000;
/// Bytes of one TCP round trip.
pub const ROUND_TRIP_BYTES: usize = 128;
/// Subscribers one PUB is fanned out to in `publish_fanout_100`.
pub const FANOUT: usize = 100;
/// Payload of that PUB.
pub const FANOUT_PAYLOAD: usize = 128;

impl Op {
    /// Every operation, in the order the suite runs them (and the report shows them).
    pub const ALL: &'static [Op] = &[
        Op::SpawnLocal,
        Op::InlineAwait,
        Op::SpawnMany,
        Op::Gather,
        Op::ChainedSpawn,
        Op::YieldMany,
        Op::PingPong,
        Op::WakeLocal,
        Op::WakeRemote,
        Op::SleepZero,
        Op::TcpRoundTrip,
        Op::PublishFanout,
    ];

    /// The criterion group name.
    pub fn name(self) -> &'static str {
        match self {
            Op::SpawnLocal => "spawn_local",
            Op::InlineAwait => "inline_await",
            Op::SpawnMany => "spawn_many",
            Op::Gather => "gather",
            Op::ChainedSpawn => "chained_spawn",
            Op::YieldMany => "yield_many",
            Op::PingPong => "ping_pong",
            Op::WakeLocal => "wake_local",
            Op::WakeRemote => "wake_remote",
            Op::SleepZero => "sleep_zero",
            Op::TcpRoundTrip => "tcp_round_trip_128",
            Op::PublishFanout => "publish_fanout_100",
        }
    }

    /// Look an operation up by name.
    pub fn named(name: &str) -> Option<Op> {
        Op::ALL.iter().copied().find(|o| o.name() == name)
    }

    /// Operations in one iteration (criterion's throughput in elements).
    pub fn elements(self) -> u64 {
        let n = match self {
            Op::SpawnMany => SPAWN_MANY,
            Op::Gather => GATHER,
            Op::ChainedSpawn => CHAIN,
            Op::YieldMany => YIELD_TASKS * YIELDS_PER_TASK,
            Op::PingPong => PINGS,
            Op::SpawnLocal
            | Op::InlineAwait
            | Op::WakeLocal
            | Op::WakeRemote
            | Op::SleepZero
            | Op::TcpRoundTrip
            | Op::PublishFanout => 1,
        };
        n as u64
    }

    /// What one element is.
    pub fn element(self) -> &'static str {
        match self {
            Op::SpawnLocal => "task spawned and awaited",
            Op::InlineAwait => "future awaited inline",
            Op::SpawnMany => "task spawned and run",
            Op::Gather => "task spawned and joined",
            Op::ChainedSpawn => "task spawned by the previous one",
            Op::YieldMany => "yield",
            Op::PingPong => "ping (spawn a pair, oneshot there and back)",
            Op::WakeLocal | Op::WakeRemote => "round trip (two wakes)",
            Op::SleepZero => "sleep(0)",
            Op::TcpRoundTrip => "128 B echoed",
            Op::PublishFanout => "PUB fanned out to 100 queues and taken",
        }
    }

    /// What the operation measures, for the report and micro.json.
    pub fn description(self) -> &'static str {
        match self {
            Op::SpawnLocal => {
                "spawn a local task and await its completion (the per-message cost of spawning)"
            }
            Op::InlineAwait => {
                "await the same future inline: the baseline spawn_local is read against"
            }
            Op::SpawnMany => "tokio's spawn_many: spawn 10 000 tasks; the last one signals",
            Op::Gather => "spawn 1 000 tasks, then join them all in order",
            Op::ChainedSpawn => "tokio's chained_spawn: 1 000 tasks, each spawning the next",
            Op::YieldMany => "tokio's yield_many: 200 tasks yield 1 000 times each",
            Op::PingPong => {
                "tokio's ping_pong: 1 000 tasks each spawn a responder and exchange a oneshot \
                 message there and back with it"
            }
            Op::WakeLocal => {
                "task A queues a frame on B's broker outbound queue (waking B), B answers on A's: \
                 one thread"
            }
            Op::WakeRemote => {
                "the same across two threads, one runtime each: the path a publisher on one \
                 thread takes to wake a subscriber's writer on another"
            }
            Op::SleepZero => "sleep(0): the timer path with nothing to wait for",
            Op::TcpRoundTrip => {
                "one 128 B write and read back through an echo task of the same runtime over \
                 loopback TCP (two sends, two receives, two wakes)"
            }
            Op::PublishFanout => {
                "the broker's hot path without I/O: one 128 B PUB parsed, looked up, queued on \
                 100 subscribers' outbound queues, and the 100 writer tasks woken to take it"
            }
        }
    }

    /// Whether tokio's own bench code for this operation runs beside the trait version.
    pub fn has_tokio_reference(self) -> bool {
        matches!(
            self,
            Op::SpawnMany | Op::YieldMany | Op::PingPong | Op::ChainedSpawn
        )
    }

    /// Why this operation has no result on `row`, if it has none.
    pub fn absent_on(self, row: MicroRow) -> Option<&'static str> {
        match (row, self) {
            (MicroRow::Threads, Op::TcpRoundTrip) => Some(
                "blocking I/O: the echo task shares the row's only thread, so the first read \
                 that waits blocks both ends (this row's I/O cost is in its fan-out results)",
            ),
            _ => None,
        }
    }
}

/// Where the second thread of [`Op::WakeRemote`] runs.
pub type PinPeer = Arc<dyn Fn() + Send + Sync>;

/// Time `iters` iterations of `op` on `rt` (see the module docs). `make` builds the second
/// runtime of the cross-thread operation; `pin_peer`, when given, pins its thread.
pub fn run<R: Runtime>(
    op: Op,
    rt: &mut R,
    make: MakeRuntime<R>,
    pin_peer: Option<&PinPeer>,
    iters: u64,
) -> anyhow::Result<Duration> {
    match op {
        Op::SpawnLocal => Ok(rt.block_on(timed(iters, || async {
            black_box(spawn_join::<R, _>(async { black_box(1u64) }).join().await);
        }))),
        Op::InlineAwait => Ok(rt.block_on(timed(iters, || async {
            black_box(async { black_box(1u64) }.await);
        }))),
        Op::SpawnMany => Ok(rt.block_on(timed(iters, spawn_many::<R>))),
        Op::Gather => Ok(rt.block_on(timed(iters, gather::<R>))),
        Op::ChainedSpawn => Ok(rt.block_on(timed(iters, chained_spawn::<R>))),
        Op::YieldMany => Ok(rt.block_on(timed(iters, yield_many::<R>))),
        Op::PingPong => Ok(rt.block_on(timed(iters, ping_pong::<R>))),
        Op::WakeLocal => Ok(rt.block_on(wake_local::<R>(iters))),
        Op::WakeRemote => wake_remote(rt, make, pin_peer, iters),
        Op::SleepZero => Ok(rt.block_on(timed(iters, || R::sleep(Duration::ZERO)))),
        Op::TcpRoundTrip => rt.block_on(tcp_round_trip::<R>(iters)),
        Op::PublishFanout => publish_fanout(rt, iters),
    }
}

/// Run `op()` `iters` times in a row and return the elapsed time.
async fn timed<F, Fut>(iters: u64, mut op: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    for _ in 0..iters {
        op().await;
    }
    start.elapsed()
}

async fn spawn_many<R: Runtime>() {
    let left = Countdown::new(SPAWN_MANY);
    for _ in 0..SPAWN_MANY {
        let left = left.clone();
        R::spawn_local(async move { left.done() });
    }
    left.wait().await;
}

async fn gather<R: Runtime>() {
    let handles: Vec<_> = (0..GATHER)
        .map(|i| spawn_join::<R, _>(async move { black_box(i) }))
        .collect();
    for h in handles {
        black_box(h.join().await);
    }
}

fn chain<R: Runtime>(left: usize, done: Rc<Countdown>) {
    if left == 0 {
        done.done();
    } else {
        R::spawn_local(async move { chain::<R>(left - 1, done) });
    }
}

async fn chained_spawn<R: Runtime>() {
    let done = Countdown::new(1);
    let first = done.clone();
    R::spawn_local(async move { chain::<R>(CHAIN, first) });
    done.wait().await;
}

async fn yield_many<R: Runtime>() {
    let left = Countdown::new(YIELD_TASKS);
    for _ in 0..YIELD_TASKS {
        let left = left.clone();
        R::spawn_local(async move {
            for _ in 0..YIELDS_PER_TASK {
                yield_now().await;
            }
            left.done();
        });
    }
    left.wait().await;
}

async fn ping_pong<R: Runtime>() {
    use tokio::sync::oneshot;
    let left = Countdown::new(PINGS);
    let outer = left.clone();
    R::spawn_local(async move {
        for _ in 0..PINGS {
            let left = outer.clone();
            R::spawn_local(async move {
                let (tx1, rx1) = oneshot::channel::<()>();
                let (tx2, rx2) = oneshot::channel::<()>();
                R::spawn_local(async move {
                    if rx1.await.is_ok() {
                        let _ = tx2.send(());
                    }
                });
                let _ = tx1.send(());
                let _ = rx2.await;
                left.done();
            });
        }
    });
    left.wait().await;
}

/// One small frame, as a PONG would be queued.
fn push_frame(queue: &Outbound) -> bool {
    queue.push_text(|out| out.extend_from_slice(b"."))
}

/// Wait for frames on `queue` and drop them; `false` once it is closed and drained.
async fn take_frames(queue: &Outbound, frames: &mut Vec<Bytes>) -> bool {
    let batch = poll_fn(|cx| queue.poll_take(cx, frames)).await;
    frames.clear();
    matches!(batch, Batch::Frames)
}

/// Answer every frame on `inbox` with one on `outbox` until `inbox` closes.
async fn answer(inbox: Arc<Outbound>, outbox: Arc<Outbound>) {
    let mut frames = Vec::new();
    while take_frames(&inbox, &mut frames).await {
        push_frame(&outbox);
    }
}

/// Queues big enough never to cut anyone as a slow consumer here.
const QUEUE_BOUND: usize = 1 << 20;

async fn ping_answerer(iters: u64, to_b: &Outbound, to_a: &Outbound) -> Duration {
    let mut frames = Vec::new();
    let start = Instant::now();
    for _ in 0..iters {
        push_frame(to_b);
        take_frames(to_a, &mut frames).await;
    }
    start.elapsed()
}

async fn wake_local<R: Runtime>(iters: u64) -> Duration {
    let (to_a, to_b) = (Outbound::new(QUEUE_BOUND), Outbound::new(QUEUE_BOUND));
    let done = spawn_join::<R, _>(answer(to_b.clone(), to_a.clone()));
    let elapsed = ping_answerer(iters, &to_b, &to_a).await;
    to_b.close(CloseReason::ServerShutdown, None);
    done.join().await;
    elapsed
}

fn wake_remote<R: Runtime>(
    rt: &mut R,
    make: MakeRuntime<R>,
    pin_peer: Option<&PinPeer>,
    iters: u64,
) -> anyhow::Result<Duration> {
    let (to_a, to_b) = (Outbound::new(QUEUE_BOUND), Outbound::new(QUEUE_BOUND));
    let (inbox, outbox) = (to_b.clone(), to_a.clone());
    let pin = pin_peer.cloned();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let peer = std::thread::Builder::new()
        .name("micro-peer".into())
        .spawn(move || -> anyhow::Result<()> {
            if let Some(pin) = pin {
                pin();
            }
            let built = make().context("building the peer runtime");
            let mut peer_rt = match built {
                Ok(rt) => {
                    let _ = ready_tx.send(Ok(()));
                    rt
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("{e:#}")));
                    return Err(e);
                }
            };
            peer_rt.block_on(answer(inbox, outbox));
            Ok(())
        })
        .context("starting the peer thread")?;
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => {
            let _ = peer.join();
            bail!("the peer runtime did not start: {reason}");
        }
        Err(_) => bail!("the peer thread ended before its runtime started"),
    }
    let elapsed = rt.block_on(ping_answerer(iters, &to_b, &to_a));
    to_b.close(CloseReason::ServerShutdown, None);
    match peer.join() {
        Ok(result) => result?,
        Err(_) => bail!("the peer thread panicked"),
    }
    Ok(elapsed)
}

async fn tcp_round_trip<R: Runtime>(iters: u64) -> anyhow::Result<Duration> {
    let addr: SocketAddr = "127.0.0.1:0".parse().context("loopback address")?;
    let std_listener = bind_reuseport(addr, ListenOptions::default()).context("binding")?;
    let mut listener = R::listener_from_std(std_listener).context("adopting the listener")?;
    let addr = listener.local_addr().context("local address")?;
    let client = R::connect(addr).await.context("connecting")?;
    let (server, _) = listener.accept().await.context("accepting")?;
    client.set_nodelay(true).context("TCP_NODELAY")?;
    server.set_nodelay(true).context("TCP_NODELAY")?;
    let (mut server_read, mut server_write) = server.into_split();
    let echo = spawn_join::<R, _>(async move {
        let mut buf = Vec::with_capacity(ROUND_TRIP_BYTES);
        loop {
            buf.clear();
            buf = match read_exactly(&mut server_read, buf, ROUND_TRIP_BYTES).await {
                Ok(Some(b)) => b,
                Ok(None) => return Ok(()),
                Err(e) => return Err(e).context("echo read"),
            };
            server_write
                .write_all(Bytes::copy_from_slice(&buf))
                .await
                .context("echo write")?;
        }
    });
    let (mut read, mut write) = client.into_split();
    let message = Bytes::from(vec![b'x'; ROUND_TRIP_BYTES]);
    let mut buf = Vec::with_capacity(ROUND_TRIP_BYTES);
    let start = Instant::now();
    for _ in 0..iters {
        write.write_all(message.clone()).await.context("write")?;
        buf.clear();
        buf = read_exactly(&mut read, buf, ROUND_TRIP_BYTES)
            .await
            .context("read")?
            .context("the echo closed the connection")?;
    }
    let elapsed = start.elapsed();
    drop(write);
    drop(read);
    echo.join().await?;
    Ok(elapsed)
}

/// Read until `buf` holds `n` bytes; `None` at end of stream.
async fn read_exactly<H: AsyncReadRent>(
    half: &mut H,
    mut buf: Vec<u8>,
    n: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    while buf.len() < n {
        let (res, returned) = half.read(buf).await;
        buf = returned;
        if res? == 0 {
            return Ok(None);
        }
    }
    Ok(Some(buf))
}

fn publish_fanout<R: Runtime>(rt: &mut R, iters: u64) -> anyhow::Result<Duration> {
    let mut wire = format!("PUB micro.fanout {FANOUT_PAYLOAD}\r\n").into_bytes();
    wire.extend(std::iter::repeat_n(b'x', FANOUT_PAYLOAD));
    wire.extend_from_slice(b"\r\n");
    let outcome =
        fanbench_broker::hotpath::with_fanout(FANOUT, "micro.fanout", |publisher, queues| {
            rt.block_on(async {
                let taken = Countdown::new(0);
                let exited = Countdown::new(queues.len());
                for queue in queues {
                    let (queue, taken, exited) = (queue.clone(), taken.clone(), exited.clone());
                    R::spawn_local(async move {
                        let mut frames = Vec::new();
                        while take_frames(&queue, &mut frames).await {
                            taken.done();
                        }
                        exited.done();
                    });
                }
                let start = Instant::now();
                for _ in 0..iters {
                    taken.reset(queues.len());
                    publisher.feed(&wire).map_err(|reason| {
                        anyhow::anyhow!("the PUB closed the connection: {reason:?}")
                    })?;
                    taken.wait().await;
                }
                let elapsed = start.elapsed();
                for queue in queues {
                    queue.close(CloseReason::ServerShutdown, None);
                }
                exited.wait().await;
                Ok(elapsed)
            })
        });
    outcome.map_err(|e| anyhow::anyhow!("setting up the fan-out: {e}"))?
}
