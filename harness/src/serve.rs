//! `fanbench serve`: the broker on one runtime row until SIGINT/SIGTERM.
//!
//! Thread-per-core rows run one runtime per thread, each pinned to a CPU from `--cpus` and each
//! with its own `SO_REUSEPORT` listener; all of them share one [`Broker`]. `tokio-mt` runs one
//! work-stealing runtime with `--threads` workers and one listener.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use fanbench_broker::{serve, Broker, BrokerConfig, LocalSpawner, Shutdown, Spawner};
use fanbench_rt::{bind_reuseport, ListenOptions, Runtime};
use serde_json::{json, Value};

use crate::cpus::{parse_cpu_list, pin_current_thread};
use crate::runtimes::{self, RuntimeRow};

/// Options of `fanbench serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Runtime row to serve on (`fanbench runtimes` lists them).
    #[arg(long)]
    pub runtime: String,
    /// Address to listen on (HOST:PORT).
    #[arg(long, default_value = "127.0.0.1:4222")]
    pub addr: String,
    /// Server threads: one runtime per thread (for tokio-mt: worker threads).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// CPUs to pin the server threads to, e.g. `0` or `0-1`; thread i gets the i-th CPU
    /// (wrapping). Default: not pinned.
    #[arg(long)]
    pub cpus: Option<String>,
    /// Write the runtime's own counters as JSON to this file at shutdown.
    #[arg(long)]
    pub stats_out: Option<PathBuf>,
    /// Bytes queued for one connection before it is cut as a slow consumer.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub max_pending: usize,
    /// Largest accepted payload, in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_payload: usize,
    /// Longest accepted control line, in bytes.
    #[arg(long, default_value_t = 4096)]
    pub max_control_line: usize,
    /// Live connections beyond which new ones are refused.
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_connections: usize,
    /// Seconds between server PINGs to each client.
    #[arg(long, default_value_t = 120.0)]
    pub ping_interval: f64,
    /// Unanswered PINGs after which a connection is closed as stale.
    #[arg(long, default_value_t = 2)]
    pub max_pings_out: u32,
    /// Seconds a write may stay blocked before the client is cut as a slow consumer.
    #[arg(long, default_value_t = 10.0)]
    pub write_deadline: f64,
    /// Seconds a new connection may take to send CONNECT.
    #[arg(long, default_value_t = 2.0)]
    pub connect_timeout: f64,
    /// Batching window in microseconds, the same policy on every row: a busy connection's
    /// next write waits up to this long so it carries everything queued meanwhile (0: off).
    #[arg(long, value_name = "US", default_value_t = crate::workload::DEFAULT_COALESCE_US)]
    pub coalesce_us: u64,
    /// uring row: submission policy (eager: submit every tick; adaptive: busy-poll small
    /// batches while completions arrive; sqpoll: kernel submission thread).
    #[arg(long, default_value_t = fanbench_uring::DEFAULT_POLICY)]
    pub uring_policy: fanbench_uring::SubmitPolicy,
    /// uring row: submission queue entries per ring.
    #[arg(long, default_value_t = fanbench_uring::UringConfig::default().ring_entries)]
    pub uring_ring_entries: u32,
    /// uring row, sqpoll policy: bind the kernel submission thread to this CPU
    /// (`sq_thread_cpu`); without it the thread inherits the server's CPUs.
    #[arg(long, value_name = "CPU")]
    pub uring_sqpoll_cpu: Option<u32>,
    /// uring row, adaptive policy: microseconds to keep busy-polling the ring after the last
    /// completion before parking.
    #[arg(long, value_name = "US", default_value_t = fanbench_uring::UringConfig::default().busy_poll.as_micros() as u64)]
    pub uring_busy_poll_us: u64,
    /// uring row: SQEs queued before a submit is forced mid-tick.
    #[arg(long, default_value_t = fanbench_uring::UringConfig::default().batch_threshold)]
    pub uring_batch_threshold: u32,
}

impl ServeArgs {
    fn broker_config(&self) -> Result<BrokerConfig> {
        let secs = |name: &str, v: f64| -> Result<Duration> {
            Duration::try_from_secs_f64(v)
                .map_err(|_| anyhow!("--{name} must be a non-negative number of seconds, got {v}"))
        };
        if self.max_payload == 0 || self.max_control_line < 16 || self.max_pending == 0 {
            bail!("--max-payload and --max-pending must be positive and --max-control-line at least 16");
        }
        if self.coalesce_us > crate::workload::MAX_COALESCE_US {
            bail!(
                "--coalesce-us must be at most {} µs, got {}",
                crate::workload::MAX_COALESCE_US,
                self.coalesce_us
            );
        }
        let mut config = BrokerConfig {
            max_pending: self.max_pending,
            max_connections: self.max_connections,
            ping_interval: secs("ping-interval", self.ping_interval)?,
            max_pings_out: self.max_pings_out,
            write_deadline: secs("write-deadline", self.write_deadline)?,
            connect_timeout: secs("connect-timeout", self.connect_timeout)?,
            coalesce: Duration::from_micros(self.coalesce_us),
            ..BrokerConfig::default()
        };
        config.limits.max_payload = self.max_payload;
        config.limits.max_control_line = self.max_control_line;
        Ok(config)
    }
}

/// What one server thread hands back when it stops: its runtime's counters, if it keeps any.
type ThreadStats = Option<Value>;

/// Run `fanbench serve`.
pub fn run(args: ServeArgs) -> Result<()> {
    let row = RuntimeRow::named(&args.runtime).ok_or_else(|| {
        anyhow!(
            "unknown runtime {:?}; built-in runtimes: {}",
            args.runtime,
            runtimes::names().join(", ")
        )
    })?;
    if args.threads == 0 {
        bail!("--threads must be at least 1");
    }
    let cpus = args.cpus.as_deref().map(parse_cpu_list).transpose()?;
    let addr = resolve(&args.addr)?;
    let config = args.broker_config()?;
    let listeners = bind_listeners(addr, listener_count(row, args.threads))?;
    let bound = listeners[0]
        .local_addr()
        .context("reading the bound address")?;

    let shutdown = Shutdown::new();
    install_signal_handler(shutdown.clone())?;
    let broker = Broker::new(config, shutdown.clone());
    eprintln!(
        "fanbench serve: {} listening on {bound} ({} thread{}{})",
        row.name(),
        args.threads,
        if args.threads == 1 { "" } else { "s" },
        cpus.as_ref()
            .map(|c| format!(", CPUs {c:?}"))
            .unwrap_or_default()
    );
    let stats = serve_row(row, &args, cpus.as_deref(), listeners, broker)?;
    if let Some(path) = &args.stats_out {
        write_stats(path, row.name(), args.threads, stats)?;
    }
    Ok(())
}

/// Listeners to bind: one per runtime for the thread-per-core rows.
fn listener_count(runtime: RuntimeRow, threads: usize) -> usize {
    match runtime {
        RuntimeRow::TokioMt => 1,
        // One accept thread; connections get their own threads (ThreadSpawner).
        RuntimeRow::Threads => 1,
        // One thread, one ring.
        RuntimeRow::Floor => 1,
        RuntimeRow::Uring
        | RuntimeRow::Tokio
        | RuntimeRow::Compio
        | RuntimeRow::Glommio
        | RuntimeRow::Monoio
        | RuntimeRow::MonoioEpoll => threads,
    }
}

/// Dispatch to the row's way of running. One arm per runtime row (exhaustive: a new row does
/// not compile without its arm).
fn serve_row(
    runtime: RuntimeRow,
    args: &ServeArgs,
    cpus: Option<&[usize]>,
    listeners: Vec<std::net::TcpListener>,
    broker: Arc<Broker>,
) -> Result<Vec<ThreadStats>> {
    use fanbench_rt_tokio::{TokioMtRuntime, TokioRuntime, WorkStealing};
    match runtime {
        RuntimeRow::Floor => serve_floor(cpus, listeners, &broker),
        RuntimeRow::Uring => {
            use fanbench_uring::{UringConfig, UringRuntime};
            let config = UringConfig {
                policy: args.uring_policy,
                ring_entries: args.uring_ring_entries,
                batch_threshold: args.uring_batch_threshold,
                sqpoll_cpu: args.uring_sqpoll_cpu,
                busy_poll: Duration::from_micros(args.uring_busy_poll_us),
                ..UringConfig::default()
            };
            // Every thread's counters are summed into one set (`UringStats::merge`).
            let merged = std::sync::Mutex::new(None::<fanbench_uring::UringStats>);
            per_thread(
                listeners,
                cpus,
                broker,
                |_| Ok(UringRuntime::new(config.clone())?),
                LocalSpawner,
                |rt| {
                    let stats = rt.stats();
                    let mut merged = merged.lock().unwrap_or_else(|e| e.into_inner());
                    match merged.as_mut() {
                        Some(m) => m.merge(&stats),
                        None => *merged = Some(stats),
                    }
                    None
                },
            )?;
            let merged = merged.into_inner().unwrap_or_else(|e| e.into_inner());
            Ok(vec![merged.and_then(|m| serde_json::to_value(m).ok())])
        }
        RuntimeRow::Tokio => per_thread(
            listeners,
            cpus,
            broker,
            |_| Ok(TokioRuntime::new()?),
            LocalSpawner,
            |_| None,
        ),
        RuntimeRow::TokioMt => {
            let worker_cpus = cpus.map(<[usize]>::to_vec);
            let rt = TokioMtRuntime::new(args.threads, move |i| {
                if let Some(cpus) = &worker_cpus {
                    if let Err(e) = pin_current_thread(&[cpus[i % cpus.len()]]) {
                        eprintln!("fanbench serve: {e:#}");
                    }
                }
            })?;
            single(rt, listeners, cpus, broker, WorkStealing, |_| None)
        }
        RuntimeRow::Compio => {
            use fanbench_rt_compio::{CompioConfig, CompioRuntime};
            per_thread(
                listeners,
                cpus,
                broker,
                |_| Ok(CompioRuntime::new(CompioConfig::default())?),
                LocalSpawner,
                |_| None,
            )
        }
        // glommio pins its executor itself (Placement::Fixed) to the CPU this thread is pinned to.
        RuntimeRow::Glommio => {
            use fanbench_rt_glommio::{GlommioConfig, GlommioRuntime};
            per_thread(
                listeners,
                cpus,
                broker,
                |i| {
                    let cpu = cpus.map(|c| c[i % c.len()]);
                    Ok(GlommioRuntime::new(GlommioConfig { cpu })?)
                },
                LocalSpawner,
                |_| None,
            )
        }
        RuntimeRow::Monoio => {
            use fanbench_rt_monoio::{MonoioConfig, MonoioUringRuntime};
            per_thread(
                listeners,
                cpus,
                broker,
                |_| Ok(MonoioUringRuntime::new(MonoioConfig::default())?),
                LocalSpawner,
                |_| None,
            )
        }
        RuntimeRow::MonoioEpoll => {
            use fanbench_rt_monoio::{MonoioConfig, MonoioEpollRuntime};
            per_thread(
                listeners,
                cpus,
                broker,
                |_| Ok(MonoioEpollRuntime::new(MonoioConfig::default())?),
                LocalSpawner,
                |_| None,
            )
        }
        // Reader and writer threads inherit the accept thread's CPU affinity (`--cpus`).
        RuntimeRow::Threads => {
            use fanbench_rt_threads::{ThreadSpawner, ThreadsRuntime};
            single(
                ThreadsRuntime::new(),
                listeners,
                cpus,
                broker,
                ThreadSpawner,
                |_| None,
            )
        }
    }
}

/// Run one runtime per listener, each on its own pinned thread, until shutdown.
fn per_thread<R, S, M, X>(
    listeners: Vec<std::net::TcpListener>,
    cpus: Option<&[usize]>,
    broker: Arc<Broker>,
    make: M,
    spawner: S,
    stats: X,
) -> Result<Vec<ThreadStats>>
where
    R: Runtime,
    S: Spawner<R> + Send + Sync,
    M: Fn(usize) -> Result<R> + Sync,
    X: Fn(&R) -> ThreadStats + Sync,
{
    std::thread::scope(|scope| {
        let handles: Vec<_> = listeners
            .into_iter()
            .enumerate()
            .map(|(i, listener)| {
                let (broker, spawner, make, stats) =
                    (broker.clone(), spawner.clone(), &make, &stats);
                std::thread::Builder::new()
                    .name(format!("fanbench-server-{i}"))
                    .spawn_scoped(scope, move || {
                        let out = serve_on_thread(i, listener, cpus, &broker, make, spawner, stats);
                        if out.is_err() {
                            // One thread failing stops the server: the others must not serve on
                            // with a missing share of the listeners.
                            broker.shutdown().trigger();
                        }
                        out
                    })
                    .context("spawning a server thread")
            })
            .collect::<Result<_>>()?;
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow!("a server thread panicked"))?)
            .collect()
    })
}

fn serve_on_thread<R, S>(
    index: usize,
    listener: std::net::TcpListener,
    cpus: Option<&[usize]>,
    broker: &Arc<Broker>,
    make: &(dyn Fn(usize) -> Result<R> + Sync),
    spawner: S,
    stats: &(dyn Fn(&R) -> ThreadStats + Sync),
) -> Result<ThreadStats>
where
    R: Runtime,
    S: Spawner<R>,
{
    if let Some(cpus) = cpus {
        pin_current_thread(&[cpus[index % cpus.len()]])?;
    }
    let mut rt = make(index).context("starting the runtime")?;
    let broker = broker.clone();
    rt.block_on(async move {
        let listener = R::listener_from_std(listener)?;
        serve::<R, S>(listener, broker, spawner).await
    })
    .context("serving")?;
    Ok(stats(&rt))
}

/// Run one (multi-threaded) runtime with one listener until shutdown.
fn single<R, S>(
    mut rt: R,
    mut listeners: Vec<std::net::TcpListener>,
    cpus: Option<&[usize]>,
    broker: Arc<Broker>,
    spawner: S,
    stats: impl Fn(&R) -> ThreadStats,
) -> Result<Vec<ThreadStats>>
where
    R: Runtime,
    S: Spawner<R>,
{
    if let Some(cpus) = cpus {
        pin_current_thread(cpus)?;
    }
    let listener = listeners.pop().context("no listener was bound")?;
    rt.block_on(async move {
        let listener = R::listener_from_std(listener)?;
        serve::<R, S>(listener, broker, spawner).await
    })
    .context("serving")?;
    Ok(vec![stats(&rt)])
}

fn resolve(addr: &str) -> Result<SocketAddr> {
    addr.to_socket_addrs()
        .with_context(|| format!("bad --addr {addr:?}: expected HOST:PORT"))?
        .next()
        .ok_or_else(|| anyhow!("bad --addr {addr:?}: resolves to no address"))
}

/// Bind `count` listeners on `addr`. A probe bind without `SO_REUSEPORT` comes first, so that
/// a port already in use (even by another `SO_REUSEPORT` server) is an error, not a silent share.
fn bind_listeners(addr: SocketAddr, count: usize) -> Result<Vec<std::net::TcpListener>> {
    let probe = bind_reuseport(
        addr,
        ListenOptions {
            reuse_port: false,
            ..ListenOptions::default()
        },
    )
    .with_context(|| format!("cannot listen on {addr}"))?;
    let addr = probe.local_addr().context("reading the bound address")?;
    drop(probe);
    (0..count)
        .map(|_| {
            bind_reuseport(addr, ListenOptions::default())
                .with_context(|| format!("cannot listen on {addr}"))
        })
        .collect()
}

/// The floor row: not the broker, but the same limits and batching window, on this thread
/// (pinned to the first server CPU), until the broker's shutdown is triggered.
fn serve_floor(
    cpus: Option<&[usize]>,
    mut listeners: Vec<std::net::TcpListener>,
    broker: &Broker,
) -> Result<Vec<ThreadStats>> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = listeners.pop().context("no listener for the floor")?;
    if let Some(cpus) = cpus {
        pin_current_thread(&cpus[..1])?;
    }
    let config = broker.config();
    let floor = fanbench_floor::FloorConfig {
        coalesce: config.coalesce,
        max_pending: config.max_pending,
        limits: config.limits,
        ..fanbench_floor::FloorConfig::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        let shutdown = broker.shutdown().clone();
        std::thread::Builder::new()
            .name("fanbench-floor-stop".into())
            .spawn(move || {
                while !shutdown.is_triggered() && !stop.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                stop.store(true, Ordering::Release);
            })
            .context("spawning the floor's stop thread")?
    };
    let served = fanbench_floor::serve(listener, floor, stop.clone());
    stop.store(true, Ordering::Release);
    let _ = watcher.join();
    let stats = served.context("the floor server")?;
    Ok(vec![serde_json::to_value(stats).ok()])
}

fn install_signal_handler(shutdown: Shutdown) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("installing signal handlers")?;
    std::thread::Builder::new()
        .name("fanbench-signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                shutdown.trigger();
            }
        })
        .context("spawning the signal thread")?;
    Ok(())
}

fn write_stats(
    path: &PathBuf,
    runtime: &str,
    threads: usize,
    stats: Vec<ThreadStats>,
) -> Result<()> {
    let per_thread: Vec<Value> = stats.into_iter().flatten().collect();
    let doc = if per_thread.is_empty() {
        json!({
            "runtime": runtime,
            "threads": threads,
            "counters": null,
            "counters_null_reason": format!("the {runtime} row keeps no counters of its own"),
        })
    } else {
        json!({ "runtime": runtime, "threads": threads, "counters": per_thread })
    };
    let text = serde_json::to_string_pretty(&doc)?;
    std::fs::write(path, text).with_context(|| format!("writing --stats-out {}", path.display()))
}
