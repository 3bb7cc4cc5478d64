//! The `floor` row: the least work this machine can do for fanbench's job, against which every
//! row's CPU per message is read ("x floor").
//!
//! A single-threaded server on raw io_uring with no broker, no async runtime and no runtime
//! trait. It speaks just enough of the NATS subset for fanbench's load generator and delivers
//! each message to every subscriber of its subject, in order, never dropped (short of a slow
//! consumer being cut), with the same batching policy as every other row.
//!
//! # API
//!
//! [`serve`] runs the server on the calling thread until the caller sets `stop`, and returns
//! the counters ([`FloorStats`]). The stop is seen through a periodic io_uring timeout every
//! 25 ms (no eventfd to signal: set the flag and wait), then every connection is shut down
//! and every op cancelled; the completions normally arrive at once, and the wait for them is
//! bounded at 100 ms. So `serve` returns about 25 ms after `stop` is set. Pinning is the
//! caller's: `serve` runs where it is called. [`probe`] says whether io_uring is usable.
//!
//! # Protocol subset
//!
//! - On accept: `INFO {...}` with the broker's fields (`headers: false`: no `HPUB`).
//! - `CONNECT {...}`: parsed and validated; only `echo` is honoured. Quiet mode: no `+OK`
//!   whatever `verbose` says.
//! - `SUB <subject> <sid>`: exact subjects only. A wildcard subject gets
//!   `-ERR 'Wildcard Subscriptions Not Supported'`, a queue group
//!   `-ERR 'Queue Groups Not Supported'` (the connection stays open, nothing is subscribed);
//!   an invalid subject `-ERR 'Invalid Subject'` as on nats-server.
//! - `UNSUB <sid>`: immediate. `UNSUB <sid> <max_msgs>` with `max_msgs > 0` gets
//!   `-ERR 'UNSUB With max_msgs Not Supported'`.
//! - `PUB <subject> [reply-to] <#bytes>`: `MSG <subject> <sid> [reply-to] <#bytes>` to every
//!   subscriber. `HPUB` closes the connection (headers were not offered), as nats-server does.
//! - `PING` -> `PONG`; `PONG` ignored. The server never PINGs.
//! - Every parse error gets nats-server's `-ERR` text and close, through the
//!   `fanbench-protocol` parser the broker uses.
//!
//! # Design: the fewest syscalls and copies
//!
//! - One ring (`SINGLE_ISSUER|DEFER_TASKRUN` where the kernel has them), one
//!   `io_uring_enter` per loop turn (`submit_and_wait(1)`), which submits everything the
//!   previous turn queued and reaps what completed.
//! - A multishot accept.
//! - One plain `IORING_OP_RECV` per connection, into that connection's buffer, re-armed after
//!   parsing; the payload is parsed in place, not copied. (A provided-buffer ring would save
//!   the re-arm SQE per receive but not a copy; receives are one per publisher wake-up, a
//!   small share of the work at fan-out 100.)
//! - Per connection, one contiguous send buffer: each delivery copies
//!   `MSG <subject> <sid> ` (kept per subscription) and `<#bytes>\r\n<payload>\r\n` (built
//!   once per message) into it: two copies per delivery, no iovec. A payload of at least
//!   `share_threshold` bytes (default [`DEFAULT_SHARE_THRESHOLD`], measured in PERF.md) is
//!   instead queued by reference between the text, and such a batch goes out as
//!   `IORING_OP_SENDMSG` iovecs (at most 1024 per send). One send is in flight per connection;
//!   what is queued meanwhile goes out in the next (a second batch fills while the first is
//!   sent; they swap, so the steady state allocates nothing). A short send is resumed at its
//!   offset at once, ahead of anything queued after it.
//! - Max pending (64 MiB by default, like the broker's): a delivery that would take a
//!   connection's unsent bytes past it cuts the connection: what is pending is dropped,
//!   `-ERR 'Slow Consumer'` is queued behind the send in flight, and the connection closes once
//!   that is sent. Nobody else waits. A subscriber that never reads again keeps its socket
//!   until it closes or the server stops (there is no write deadline).
//!
//! # Batching
//!
//! The rule every row implements (`batching.rs`, the broker's `coalesce.rs`): after a send
//! completes, a *busy* connection (previous send completed less than `W` before, or this send
//! was started by a release and found data waiting) holds its next send until the current
//! window ends, windows being the monotonic clock's intervals `[kW, (k+1)W)`, shared by every
//! connection; one io_uring timeout (absolute, CLOCK_MONOTONIC) per window.
//! `W = 0` turns it off; the default is every row's, [`DEFAULT_COALESCE`]. A send the socket
//! took only in part is not a completed send: its rest goes at once, and the rule applies when
//! the whole batch is sent.
//!
//! # Safety
//!
//! The kernel reads or writes a connection's buffers while its send or receive is in flight.
//! Those buffers are never touched while their op is in flight, and a connection is freed only
//! after both ops completed (`conn.rs` # Safety). At shutdown every socket is shut down and
//! every op cancelled; the server waits (bounded) for the completions and leaks, never frees,
//! the connections if any op is still out, before the ring is closed (`server.rs`,
//! `Server::shut_down`). Timeouts point at boxed timespecs the kernel copies at submission.

mod batching;
mod conn;
mod ring;
mod server;
mod subjects;

use std::io;
use std::net::TcpListener;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use fanbench_protocol::Limits;
use serde::Serialize;

/// The version announced in `INFO`: the nats-server release whose client protocol fanbench's
/// broker implements (the broker announces the same; a test checks they agree).
pub const ANNOUNCED_VERSION: &str = "2.10.0";

/// The default batching window: the broker's default, the same for every row (a test checks
/// they agree).
pub const DEFAULT_COALESCE: Duration = Duration::from_millis(1);

/// The longest batching window accepted (a sanity bound; the harness's own, lower, applies
/// to every row).
pub const MAX_COALESCE: Duration = Duration::from_secs(1);

/// Payload size from which a payload is queued by reference rather than copied per
/// subscriber (see runtimes/floor/PERF.md for the measurement behind it).
pub const DEFAULT_SHARE_THRESHOLD: usize = 4 * 1024;

/// The largest ring the kernel allows.
pub const MAX_RING_ENTRIES: u32 = 32768;

/// How the floor serves.
#[derive(Debug, Clone)]
pub struct FloorConfig {
    /// Batching window `W` (zero: off). See the crate docs, # Batching.
    pub coalesce: Duration,
    /// Unsent bytes per connection past which it is cut as a slow consumer.
    pub max_pending: usize,
    /// Payloads of at least this many bytes are queued by reference (sent with `sendmsg`
    /// iovecs) instead of copied into each subscriber's send buffer.
    pub share_threshold: usize,
    /// Control line and payload limits.
    pub limits: Limits,
    /// Submission queue entries (the completion queue is 4x).
    pub ring_entries: u32,
    /// `server_name` in `INFO`.
    pub server_name: String,
}

impl Default for FloorConfig {
    /// A 1 ms window (every row's default), 64 MiB max pending, [`DEFAULT_SHARE_THRESHOLD`],
    /// nats-server's limits, 4096 SQEs.
    fn default() -> Self {
        FloorConfig {
            coalesce: DEFAULT_COALESCE,
            max_pending: 64 * 1024 * 1024,
            share_threshold: DEFAULT_SHARE_THRESHOLD,
            limits: Limits::default(),
            ring_entries: 4096,
            server_name: "fanbench-floor".to_string(),
        }
    }
}

impl FloorConfig {
    fn validate(&self) -> io::Result<()> {
        let invalid = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        if self.coalesce > MAX_COALESCE {
            return invalid(format!(
                "floor: the batching window must be at most {MAX_COALESCE:?}, got {:?}",
                self.coalesce
            ));
        }
        if self.max_pending == 0 || self.max_pending > u32::MAX as usize / 2 {
            return invalid(format!(
                "floor: max pending must be between 1 byte and 2 GiB, got {}",
                self.max_pending
            ));
        }
        if self.limits.max_payload == 0 || self.limits.max_control_line < 16 {
            return invalid(format!(
                "floor: max payload must be positive and max control line at least 16, got {} and {}",
                self.limits.max_payload, self.limits.max_control_line
            ));
        }
        if self.ring_entries == 0 || self.ring_entries > MAX_RING_ENTRIES {
            return invalid(format!(
                "floor: ring entries must be between 1 and {MAX_RING_ENTRIES}, got {}",
                self.ring_entries
            ));
        }
        Ok(())
    }
}

/// What the floor did, counted as it went.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FloorStats {
    /// Setup flags the kernel accepted.
    pub ring_flags: Vec<String>,
    /// The batching window, in microseconds.
    pub coalesce_us: u64,
    /// `io_uring_enter` calls.
    pub enters: u64,
    /// SQEs queued.
    pub sqes: u64,
    /// Completions reaped while serving.
    pub cqes: u64,
    /// Connections accepted.
    pub accepts: u64,
    /// Failed accepts (and accepted sockets that could not be configured).
    pub accept_errors: u64,
    /// Receive completions.
    pub recvs: u64,
    /// Sends submitted (resumed partial sends included).
    pub sends: u64,
    /// Sends that left part of their batch for the next send (the socket took only part,
    /// or the batch had more than 1024 iovecs).
    pub partial_sends: u64,
    /// Sends with shared payloads (`IORING_OP_SENDMSG`); the rest are `IORING_OP_SEND`.
    pub vectored_sends: u64,
    /// Completed sends after which the connection was held (busy).
    pub holds: u64,
    /// Sends started when a window ended, with data that waited for it.
    pub held_sends: u64,
    /// Batching windows opened (one timeout each).
    pub windows: u64,
    /// `PUB`s received.
    pub messages_in: u64,
    /// `MSG`s queued to subscribers.
    pub deliveries_out: u64,
    /// Bytes the kernel took from send buffers.
    pub bytes_out: u64,
    /// Connections cut as slow consumers.
    pub slow_consumers: u64,
    /// Connections closed (by either side) while serving.
    pub closed: u64,
    /// Ops still out when the shutdown's bounded wait ended (their buffers were leaked).
    pub ops_leaked: u64,
}

/// Serve on `listener` until `stop` is set, on the calling thread; returns the counters.
///
/// Fails at once when the configuration is invalid or io_uring is unavailable, and later only
/// if `io_uring_enter` itself fails. The stop is noticed within 25 ms (a periodic timeout),
/// after which every connection is shut down and `serve` returns (at most 100 ms more, when
/// the kernel is slow to hand buffers back).
pub fn serve(
    listener: TcpListener,
    config: FloorConfig,
    stop: Arc<AtomicBool>,
) -> io::Result<FloorStats> {
    config.validate()?;
    server::Server::new(listener, config)?.run(&stop)
}

/// Whether io_uring can run the floor here (a ring can be set up with the opcodes it uses).
pub fn probe() -> io::Result<()> {
    ring::Ring::new(8).map(drop)
}
