//! The floor as a process, for measuring it from outside with
//! `fanbench run --target HOST:PORT --label floor --server-pid PID`.
//! Runs until SIGINT/SIGTERM, then prints its counters as JSON on stdout.
//!
//! `taskset -c 0 cargo run --release -p fanbench-floor --example serve -- --coalesce-us 1000`

use std::net::TcpListener;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use fanbench_floor::FloorConfig;

/// Serve the floor until SIGINT/SIGTERM.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on (HOST:PORT).
    #[arg(long, default_value = "127.0.0.1:4222")]
    addr: String,
    /// Batching window in microseconds (0: off).
    #[arg(long, default_value_t = fanbench_floor::DEFAULT_COALESCE.as_micros() as u64)]
    coalesce_us: u64,
    /// Payloads of at least this many bytes are sent by reference instead of copied.
    #[arg(long, default_value_t = fanbench_floor::DEFAULT_SHARE_THRESHOLD)]
    share_threshold: usize,
    /// Bytes queued for one connection before it is cut as a slow consumer.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    max_pending: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }
    let listener =
        TcpListener::bind(&args.addr).with_context(|| format!("binding {}", args.addr))?;
    eprintln!("floor: listening on {}", listener.local_addr()?);
    let config = FloorConfig {
        coalesce: Duration::from_micros(args.coalesce_us),
        share_threshold: args.share_threshold,
        max_pending: args.max_pending,
        ..FloorConfig::default()
    };
    let stats = fanbench_floor::serve(listener, config, stop).context("serving")?;
    println!("{}", serde_json::to_string_pretty(&stats)?);
    Ok(())
}
