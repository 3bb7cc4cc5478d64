//! Measurement, shared by `run`, `sweep` and `bench-all`: which server to start ([`Row`]),
//! where it and the load generator run ([`Placement`]), one (scenario, row) pair measured
//! over its repetitions ([`measure`]) or one repetition at a time against a server kept
//! running ([`LiveServer`], for `compare-revs`), the validity rules (`validity`), how a
//! repetition is recorded in the results ([`record`]), and the short timing of quick runs
//! ([`QUICK`]).

mod alternate;
pub mod instrument;
mod pair;
mod placement;
pub mod record;
mod row;
mod timing;
pub(crate) mod validity;

#[cfg(test)]
pub(crate) mod fixture;

pub use alternate::{assemble as assemble_rounds, LiveServer};
pub use pair::{measure, measure_external, MeasureError};
pub use placement::{Placement, PlacementArgs};
pub use row::{Row, NATS_SERVER};
pub use timing::QUICK;
