//! The pub/sub broker, written once against [`fanbench_rt::Runtime`].
//!
//! # Structure
//!
//! - [`Broker`] is the state shared by every connection on every runtime thread: the
//!   subscription list ([`sublist`]), the registry of live clients, limits and shutdown.
//! - A connection is two tasks ([`client`]): a reader that parses commands and publishes, and
//!   a writer that drains the connection's [`outbound`] queue with one vectored write per batch.
//! - A publish looks its subject up once (trie + match cache), then appends one frame per
//!   matching subscription to that subscriber's outbound queue: a per-subscriber `MSG` header
//!   and the publisher's payload `Bytes`, shared (a message of at most 2 KiB is copied into
//!   the queue's staging buffer instead, see [`outbound`]).
//! - Writes are batched by one policy on every row ([`coalesce`]): a busy connection's next
//!   write waits until the server-wide window ends (`BrokerConfig::coalesce`, zero: off).
//! - Outbound queues are bounded in bytes; past the bound the subscriber is a slow consumer and
//!   is cut (`-ERR 'Slow Consumer'`) without delaying anyone else.
//! - Tasks are started through a [`Spawner`], so runtimes whose tasks must be `Send`
//!   (work-stealing) or must be threads (the blocking baseline) run the same code.
//!
//! All state shared between connections is `Send + Sync`: publishers and subscribers may live
//! on different runtime threads, and a publisher wakes a subscriber's writer across threads.

#![forbid(unsafe_code)]

pub mod client;
pub mod coalesce;
pub mod config;
pub mod hotpath;
pub mod outbound;
pub mod server;
pub mod shutdown;
pub mod spawn;
pub mod sublist;

pub use client::{ReaderTask, WriterTask};
pub use config::BrokerConfig;
pub use server::{serve, Broker};
pub use shutdown::Shutdown;
pub use spawn::{LocalSpawner, Spawner};
