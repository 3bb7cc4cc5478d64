//! The NATS core protocol subset fanbench speaks: an incremental, zero-copy parser for each
//! direction and the encoders. No I/O, no runtime.
//!
//! * [`ClientParser`] parses what clients send ([`ClientOp`]); the broker's hot path.
//! * [`ServerParser`] parses what servers send ([`ServerOp`]); the load generator's read path.
//! * [`encode`] writes every operation of both directions.
//! * [`subject`] validates subjects as nats-server does.
//! * [`ProtocolError`] says, per error, the `-ERR` text nats-server sends and whether it closes
//!   the connection (see the table in its module docs).
//!
//! Parsers take the read buffer (`BytesMut`) and split complete operations off its front;
//! subjects, sids and payloads are `Bytes` slices of the same allocation, never copies.

#![forbid(unsafe_code)]

mod client;
mod connect;
pub mod encode;
mod error;
mod info;
mod limits;
mod line;
mod server;
pub mod subject;

pub use client::{ClientOp, ClientParser};
pub use connect::{Connect, MAX_CLIENT_PROTOCOL};
pub use error::ProtocolError;
pub use info::ServerInfo;
pub use limits::{Limits, DEFAULT_MAX_CONTROL_LINE, DEFAULT_MAX_PAYLOAD};
pub use server::{ServerOp, ServerParser};
