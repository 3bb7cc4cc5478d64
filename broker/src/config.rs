//! Broker limits and timeouts. Defaults are nats-server's.

use std::time::Duration;

use fanbench_protocol::Limits;

/// Limits and timeouts for every connection.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Control line and payload limits (4096 bytes, 1 MiB).
    pub limits: Limits,
    /// Bytes queued for one connection before it is cut as a slow consumer (64 MiB).
    pub max_pending: usize,
    /// How long one write may stay blocked before the connection is cut as a slow consumer
    /// (nats-server's `write_deadline`, 10 s).
    pub write_deadline: Duration,
    /// How often the server PINGs an idle client (2 min).
    pub ping_interval: Duration,
    /// Unanswered PINGs after which the connection is closed as stale (2).
    pub max_pings_out: u32,
    /// How long a new connection may take to send CONNECT (2 s, nats-server's auth timeout).
    pub connect_timeout: Duration,
    /// Live connections beyond which new ones are refused (64K).
    pub max_connections: usize,
    /// Size of each connection's read buffer (64 KiB).
    pub read_buffer: usize,
    /// Name the server gives in INFO.
    pub server_name: String,
    /// How long shutdown waits for connections to flush.
    pub shutdown_grace: Duration,
    /// The batching window: a busy connection's next write waits up to this long so it carries
    /// everything queued meanwhile (zero: off; the rule is in [`crate::coalesce`]).
    pub coalesce: Duration,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            limits: Limits::default(),
            max_pending: 64 * 1024 * 1024,
            write_deadline: Duration::from_secs(10),
            ping_interval: Duration::from_secs(120),
            max_pings_out: 2,
            connect_timeout: Duration::from_secs(2),
            max_connections: 64 * 1024,
            read_buffer: 64 * 1024,
            server_name: "fanbench".to_string(),
            shutdown_grace: Duration::from_secs(5),
            coalesce: crate::coalesce::DEFAULT_COALESCE,
        }
    }
}
