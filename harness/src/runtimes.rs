//! The runtime rows built into this binary (`fanbench runtimes`).
//!
//! Adding a row: one entry here and one arm in `serve::serve_row`.

use anyhow::Result;
use serde::Serialize;

/// One runtime row: a `--runtime` name.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RuntimeRow {
    /// The `--runtime` name.
    pub name: &'static str,
    /// What the row is.
    pub summary: &'static str,
    /// The crate the row is built on.
    pub crate_name: &'static str,
    /// That crate's version in this build.
    pub crate_version: &'static str,
}

/// Every row this binary can serve.
pub const ROWS: &[RuntimeRow] = &[
    RuntimeRow {
        name: "uring",
        summary: "fanbench's own io_uring runtime (runtimes/uring), one per server thread",
        crate_name: "io-uring",
        crate_version: env!("FANBENCH_CRATE_VERSION_IO_URING"),
    },
    RuntimeRow {
        name: "uring-nocoalesce",
        summary: "the uring row with its send coalescing window off (--uring-coalesce-us 0)",
        crate_name: "io-uring",
        crate_version: env!("FANBENCH_CRATE_VERSION_IO_URING"),
    },
    RuntimeRow {
        name: "tokio",
        summary: "Tokio current-thread runtime, one per server thread, SO_REUSEPORT listeners",
        crate_name: "tokio",
        crate_version: env!("FANBENCH_CRATE_VERSION_TOKIO"),
    },
    RuntimeRow {
        name: "tokio-mt",
        summary: "Tokio multi-thread work-stealing runtime, --threads workers",
        crate_name: "tokio",
        crate_version: env!("FANBENCH_CRATE_VERSION_TOKIO"),
    },
    RuntimeRow {
        name: "compio",
        summary: "compio runtime (io_uring driver), one per server thread, SO_REUSEPORT listeners",
        crate_name: "compio",
        crate_version: env!("FANBENCH_CRATE_VERSION_COMPIO"),
    },
    RuntimeRow {
        name: "glommio",
        summary: "glommio LocalExecutor, one per server thread pinned with Placement::Fixed, \
                  SO_REUSEPORT listeners",
        crate_name: "glommio",
        crate_version: env!("FANBENCH_CRATE_VERSION_GLOMMIO"),
    },
    RuntimeRow {
        name: "monoio",
        summary: "monoio runtime (io_uring driver), one per server thread, SO_REUSEPORT listeners",
        crate_name: "monoio",
        crate_version: env!("FANBENCH_CRATE_VERSION_MONOIO"),
    },
    RuntimeRow {
        name: "monoio-epoll",
        summary: "monoio runtime (legacy epoll driver), one per server thread, SO_REUSEPORT \
                  listeners",
        crate_name: "monoio",
        crate_version: env!("FANBENCH_CRATE_VERSION_MONOIO"),
    },
    RuntimeRow {
        name: "threads",
        summary: "blocking std::net: a thread per connection reading, one per connection writing \
                  (pre-async baseline); ignores --threads",
        crate_name: "fanbench-rt-threads",
        crate_version: env!("CARGO_PKG_VERSION"),
    },
];

/// Look a row up by name.
pub fn find(name: &str) -> Option<&'static RuntimeRow> {
    ROWS.iter().find(|r| r.name == name)
}

/// The names of every row, for error messages.
pub fn names() -> Vec<&'static str> {
    ROWS.iter().map(|r| r.name).collect()
}

/// `fanbench runtimes`: print the rows, as a table or as JSON.
pub fn list(json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(ROWS)?);
        return Ok(());
    }
    println!("{:<18} {:<22} summary", "runtime", "crate");
    for row in ROWS {
        let krate = format!("{} {}", row.crate_name, row.crate_version);
        println!("{:<18} {:<22} {}", row.name, krate, row.summary);
    }
    Ok(())
}
