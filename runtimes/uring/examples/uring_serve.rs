//! The broker on one `uring` runtime thread, for comparing submission policies by hand before
//! `fanbench serve --runtime uring` exists:
//!
//! ```text
//! cargo run --release -p fanbench-uring --example uring_serve -- 127.0.0.1:4222 adaptive stats.json
//! fanbench run --target 127.0.0.1:4222 --label uring-adaptive --server-pid <pid> ...
//! ```
//!
//! Stops on SIGINT/SIGTERM and writes the runtime's counters as JSON.

use std::net::SocketAddr;

use fanbench_broker::{serve, Broker, BrokerConfig, LocalSpawner, Shutdown};
use fanbench_rt::Runtime;
use fanbench_uring::{SubmitPolicy, UringConfig, UringRuntime};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: uring_serve ADDR POLICY STATS_OUT";
    let addr: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let policy: SubmitPolicy = args.next().ok_or(usage)?.parse()?;
    let stats_out = args.next().ok_or(usage)?;

    // Signals go to a waiting thread, never interrupt the ring.
    // SAFETY: an empty sigset, then SIGINT and SIGTERM added; masks only this thread (and
    // the threads it spawns after this point).
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let shutdown = Shutdown::new();
    let broker = Broker::new(BrokerConfig::default(), shutdown.clone());
    std::thread::spawn(move || {
        let mut sig = 0;
        // SAFETY: `set` is a valid sigset and `sig` a valid out-pointer.
        unsafe { libc::sigwait(&set, &mut sig) };
        shutdown.trigger();
    });

    let mut rt = UringRuntime::new(UringConfig {
        policy,
        ..UringConfig::default()
    })?;
    let listener = fanbench_rt::bind_reuseport(addr, Default::default())?;
    rt.block_on(async move {
        let listener = UringRuntime::listener_from_std(listener)?;
        serve::<UringRuntime, _>(listener, broker, LocalSpawner).await
    })?;
    std::fs::write(&stats_out, serde_json::to_string_pretty(&rt.stats())?)?;
    Ok(())
}
