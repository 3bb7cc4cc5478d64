//! The results file: its schema (the one serializable result type every view is generated
//! from), the measured-or-null value its metrics use, its provenance, the summary statistics
//! over repetitions, writing it to disk, and its one-line terminal view.

pub mod measured;
pub mod provenance;
pub mod schema;
pub mod summary;
pub mod terminal;
pub mod write;

#[cfg(test)]
mod fixture;
