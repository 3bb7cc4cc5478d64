//! The provenance every results file starts with: run id, times, command, git, host,
//! toolchain and the rows considered.

use std::time::SystemTime;

use super::schema::{ResultsFile, RuntimeInfo, SCHEMA_VERSION};
use crate::sysinfo;

/// A results file with its provenance and no results yet (`run`, `sweep` and `bench-all`),
/// flagged partial until its run clears the flag at the end.
pub fn new_results_file(started: SystemTime, runtimes: Vec<RuntimeInfo>) -> ResultsFile {
    let git = sysinfo::git(sysinfo::source_root());
    ResultsFile {
        schema_version: SCHEMA_VERSION,
        run_id: sysinfo::run_id(started, &git),
        started_at: sysinfo::rfc3339(started),
        finished_at: None,
        command: std::env::args().collect(),
        git,
        host: sysinfo::host(),
        toolchain: sysinfo::toolchain(),
        runtimes,
        results: Vec::new(),
        skipped: Vec::new(),
        calibration: None,
        batching: Vec::new(),
        policies: Vec::new(),
        partial: true,
        interrupted_by: None,
        failed: Vec::new(),
        agents: None,
    }
}
