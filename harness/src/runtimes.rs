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
    let krates: Vec<String> = ROWS
        .iter()
        .map(|row| format!("{} {}", row.crate_name, row.crate_version))
        .collect();
    let name_w = ROWS.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let krate_w = krates.iter().map(String::len).max().unwrap_or(0);
    println!("{:<name_w$}  {:<krate_w$}  summary", "runtime", "crate");
    for (row, krate) in ROWS.iter().zip(&krates) {
        println!(
            "{:<name_w$}  {:<krate_w$}  {}",
            row.name, krate, row.summary
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row names a real resolved version, and the uring rows report the io-uring our
    /// runtime uses, not another version the lock file holds for someone else (glommio).
    #[test]
    fn rows_report_the_crate_versions_they_are_built_with() {
        for row in ROWS {
            let digits = row.crate_version.split('.').collect::<Vec<_>>();
            assert!(
                digits.len() >= 3 && digits[0].parse::<u32>().is_ok(),
                "{}: crate version {:?}",
                row.name,
                row.crate_version
            );
        }
        let manifest = include_str!("../../runtimes/uring/Cargo.toml");
        let requirement = manifest
            .lines()
            .find_map(|l| l.strip_prefix("io-uring = \""))
            .and_then(|rest| rest.split('"').next())
            .expect("runtimes/uring/Cargo.toml depends on io-uring");
        let major_minor: Vec<&str> = requirement.split('.').take(2).collect();
        let uring = find("uring").unwrap();
        assert!(
            uring
                .crate_version
                .starts_with(&format!("{}.", major_minor.join("."))),
            "uring row reports io-uring {} but runtimes/uring requires {requirement}",
            uring.crate_version
        );
    }
}
