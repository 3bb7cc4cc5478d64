//! What the runtime itself costs: a criterion suite over the runtime trait, run on every row.
//!
//! The fan-out results say what a whole server costs on a row; these figures say where a
//! runtime spends it: spawning a task, waking one (on the same thread and across threads),
//! yielding, timers, one loopback TCP round trip, and the broker's publish path without I/O.
//! Every row runs the same code ([`ops`], generic over [`fanbench_rt::Runtime`]), one criterion
//! group per operation and one benchmark per row ([`suite`]). Tokio's own definitions of
//! `spawn_many`, `ping_pong`, `yield_many` and `chained_spawn` run beside them on plain Tokio
//! ([`tokio_reference`]), so the trait's cost can be read off next to the figures tokio
//! publishes. How late a 1 ms sleep wakes is a distribution ([`lateness`]), not a criterion mean.
//!
//! `fanbench micro` runs the suite from the release binary and writes `micro.json`;
//! `cargo bench -p fanbench-micro` runs the same suite with criterion's own defaults.

#![forbid(unsafe_code)]

pub mod lateness;
pub mod ops;
pub mod rows;
pub mod suite;
pub mod sync;
pub mod tokio_reference;

pub use ops::Op;
pub use rows::MicroRow;
pub use suite::{collect, run, MicroEntry, Settings, SuiteRun};
