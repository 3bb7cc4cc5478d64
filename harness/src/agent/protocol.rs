//! The controller/agent protocol: one JSON object per line, `type` names the message.
//!
//! 1. The agent sends `hello` (its fanbench version, git checkout and host).
//! 2. The controller sends several `probe`s with its CLOCK_MONOTONIC stamp; the agent answers
//!    each at once with its own. The controller keeps the probe with the smallest round trip:
//!    offset = agent stamp - midpoint of the round trip, error bound = round trip / 2.
//! 3. Per repetition: `prepare` (the load and this agent's share); the agent connects and
//!    subscribes, answers `ready`, and waits for `start` (the common start instant on its own
//!    clock); while the window runs it sends `second` after each second; at the end `report`
//!    (every histogram as base64 of its V2 serialization, never percentiles) or `error`.
//! 4. The controller closes the agent's stdin; the agent exits.

use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::loadgen::{LoadReport, LoadSpec, Share};
use crate::results::schema::{GitInfo, HostInfo};

/// Controller to agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToAgent {
    Probe { controller_ns: u64 },
    Prepare(Prepare),
    Start { start_ns: u64 },
}

/// Agent to controller.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromAgent {
    Hello(Hello),
    Probe { controller_ns: u64, agent_ns: u64 },
    Ready,
    Second { index: u32 },
    Report(Box<LoadReport>),
    Error { message: String },
}

/// Who the agent is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    pub fanbench: String,
    pub git: GitInfo,
    pub host: HostInfo,
    pub pid: u32,
}

pub fn hello() -> FromAgent {
    FromAgent::Hello(Hello {
        fanbench: env!("CARGO_PKG_VERSION").to_string(),
        git: crate::sysinfo::git(crate::sysinfo::source_root()),
        host: crate::sysinfo::host(),
        pid: std::process::id(),
    })
}

/// The whole load and this agent's share of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Prepare {
    pub target: SocketAddr,
    pub publishers: u32,
    pub subscribers_per_publisher: u32,
    pub rate_per_publisher: f64,
    pub payload_bytes: usize,
    pub warmup_ns: u64,
    pub duration_ns: u64,
    pub slow_subscribers: u32,
    pub slow_read_bytes_per_s: u64,
    pub run_token: String,
    /// Whether this agent runs the publishers.
    pub send: bool,
    /// Subscriber ids this agent runs.
    pub subscribers: Range<u32>,
    /// Added to the publishers' send stamps to put them on this agent's clock
    /// ([`Share::publisher_clock_offset_ns`]).
    pub publisher_clock_offset_ns: i64,
}

impl Prepare {
    pub fn to_spec(&self, client_cpus: &[usize]) -> Result<(LoadSpec, Share)> {
        Ok((
            LoadSpec {
                target: self.target,
                publishers: self.publishers,
                subscribers_per_publisher: self.subscribers_per_publisher,
                rate_per_publisher: self.rate_per_publisher,
                payload_bytes: self.payload_bytes,
                warmup: Duration::from_nanos(self.warmup_ns),
                duration: Duration::from_nanos(self.duration_ns),
                slow_subscribers: self.slow_subscribers,
                slow_read_bytes_per_s: self.slow_read_bytes_per_s,
                client_cpus: client_cpus.to_vec(),
            },
            Share {
                run_token: Some(self.run_token.clone()),
                publishers: self.send,
                subscribers: self.subscribers.clone(),
                publisher_clock_offset_ns: self.publisher_clock_offset_ns,
            },
        ))
    }
}
