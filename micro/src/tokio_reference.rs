//! The four operations as tokio's own benches define them (benches/rt_multi_threaded.rs in
//! the tokio repository), on plain Tokio: a multi-thread runtime with 4 workers,
//! `tokio::spawn`, `tokio::sync::oneshot`, and a blocking `std::sync::mpsc` receive inside
//! `block_on` to learn that the last task finished; `yield_many` spawns from outside the
//! runtime. Same counts as the trait versions in [`crate::ops`], so the two figures sit side
//! by side in one group: the gap is what the trait and the runtime flavour cost (see the
//! README's "Micro costs").

use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc, Arc};

use criterion::Bencher;

use crate::ops::{Op, PinPeer, CHAIN, PINGS, SPAWN_MANY, YIELDS_PER_TASK, YIELD_TASKS};

/// The benchmark id of these figures in each group.
pub const ID: &str = "tokio-reference";

/// Workers of tokio's bench runtime (its NUM_WORKERS).
pub const WORKERS: usize = 4;

fn runtime(pin_workers: Option<&PinPeer>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(WORKERS).enable_all();
    if let Some(pin) = pin_workers.cloned() {
        builder.on_thread_start(move || pin());
    }
    builder.build()
}

/// Bench `op` the way tokio's benches do; an operation tokio defines no bench for is an error.
/// `pin_workers` runs on each worker thread as it starts (tokio's bench leaves them unpinned:
/// the harness gives them every CPU, whatever the benchmark thread is pinned to).
pub fn bench(op: Op, b: &mut Bencher, pin_workers: Option<&PinPeer>) -> anyhow::Result<()> {
    let rt = runtime(pin_workers)?;
    match op {
        Op::SpawnMany => spawn_many(&rt, b),
        Op::YieldMany => yield_many(&rt, b),
        Op::PingPong => ping_pong(&rt, b),
        Op::ChainedSpawn => chained_spawn(&rt, b),
        other => anyhow::bail!("tokio's benches define no {}", other.name()),
    }
    Ok(())
}

fn spawn_many(rt: &tokio::runtime::Runtime, b: &mut Bencher) {
    let (tx, rx) = mpsc::sync_channel(1000);
    let left = Arc::new(AtomicUsize::new(0));
    b.iter(|| {
        left.store(SPAWN_MANY, Relaxed);
        rt.block_on(async {
            for _ in 0..SPAWN_MANY {
                let (tx, left) = (tx.clone(), left.clone());
                tokio::spawn(async move {
                    if left.fetch_sub(1, Relaxed) == 1 {
                        let _ = tx.send(());
                    }
                });
            }
            let _ = rx.recv();
        });
    });
}

fn yield_many(rt: &tokio::runtime::Runtime, b: &mut Bencher) {
    let (tx, rx) = mpsc::sync_channel(YIELD_TASKS);
    b.iter(|| {
        for _ in 0..YIELD_TASKS {
            let tx = tx.clone();
            rt.spawn(async move {
                for _ in 0..YIELDS_PER_TASK {
                    tokio::task::yield_now().await;
                }
                let _ = tx.send(());
            });
        }
        for _ in 0..YIELD_TASKS {
            let _ = rx.recv();
        }
    });
}

fn ping_pong(rt: &tokio::runtime::Runtime, b: &mut Bencher) {
    use tokio::sync::oneshot;
    let (done_tx, done_rx) = mpsc::sync_channel(1000);
    let left = Arc::new(AtomicUsize::new(0));
    b.iter(|| {
        let (done_tx, left) = (done_tx.clone(), left.clone());
        left.store(PINGS, Relaxed);
        rt.block_on(async {
            tokio::spawn(async move {
                for _ in 0..PINGS {
                    let (done_tx, left) = (done_tx.clone(), left.clone());
                    tokio::spawn(async move {
                        let (tx1, rx1) = oneshot::channel::<()>();
                        let (tx2, rx2) = oneshot::channel::<()>();
                        tokio::spawn(async move {
                            if rx1.await.is_ok() {
                                let _ = tx2.send(());
                            }
                        });
                        let _ = tx1.send(());
                        let _ = rx2.await;
                        if left.fetch_sub(1, Relaxed) == 1 {
                            let _ = done_tx.send(());
                        }
                    });
                }
            });
            let _ = done_rx.recv();
        });
    });
}

fn chain(done: mpsc::SyncSender<()>, left: usize) {
    if left == 0 {
        let _ = done.send(());
    } else {
        tokio::spawn(async move { chain(done, left - 1) });
    }
}

fn chained_spawn(rt: &tokio::runtime::Runtime, b: &mut Bencher) {
    let (done_tx, done_rx) = mpsc::sync_channel(1000);
    b.iter(|| {
        let done_tx = done_tx.clone();
        rt.block_on(async {
            tokio::spawn(async move { chain(done_tx, CHAIN) });
            let _ = done_rx.recv();
        });
    });
}
