//! The results file: its schema (the one serializable result type every view is generated
//! from), the summary statistics over repetitions, and writing it to disk.

pub mod schema;
pub mod write;
