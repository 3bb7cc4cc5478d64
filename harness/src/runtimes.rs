//! The runtime rows built into this binary: one typed registry, [`RuntimeRow`].
//!
//! Every fact about a row is an exhaustive `match` on [`RuntimeRow`], so a new variant does not
//! compile until each place says what the row is: here its name, summary and crate (whose
//! version `build.rs` reads from Cargo.lock), in `serve.rs` how it is served. What the
//! compiler cannot see (plots' palette, the conformance and adversarial suites, the README) is
//! checked by tests. The whole checklist for a new row is `runtimes/README.md`.

use anyhow::Result;
use serde::Serialize;

/// Declares [`RuntimeRow`] and [`RuntimeRow::ALL`] from one list, so no variant can be left out of
/// `ALL`.
macro_rules! registry {
    ($($(#[$doc:meta])* $variant:ident,)*) => {
        /// A runtime row: our broker on one runtime (a `--runtime` name).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum RuntimeRow {
            $($(#[$doc])* $variant,)*
        }

        impl RuntimeRow {
            /// Every row, in the order `fanbench runtimes` and bench-all list them.
            pub const ALL: &'static [RuntimeRow] = &[$(RuntimeRow::$variant,)*];
        }
    };
}

registry! {
    /// fanbench's own io_uring runtime.
    Uring,
    /// Tokio current-thread, one per server thread.
    Tokio,
    /// Tokio multi-thread work-stealing.
    TokioMt,
    /// compio (io_uring driver).
    Compio,
    /// glommio.
    Glommio,
    /// monoio (io_uring driver).
    Monoio,
    /// monoio (legacy epoll driver).
    MonoioEpoll,
    /// Blocking std::net, a thread per connection.
    Threads,
    /// Not a runtime: a minimal raw io_uring fan-out server, the physical floor of the job.
    Floor,
}

impl RuntimeRow {
    /// The `--runtime` name.
    pub fn name(self) -> &'static str {
        match self {
            RuntimeRow::Uring => "uring",
            RuntimeRow::Tokio => "tokio",
            RuntimeRow::TokioMt => "tokio-mt",
            RuntimeRow::Compio => "compio",
            RuntimeRow::Glommio => "glommio",
            RuntimeRow::Monoio => "monoio",
            RuntimeRow::MonoioEpoll => "monoio-epoll",
            RuntimeRow::Threads => "threads",
            RuntimeRow::Floor => "floor",
        }
    }

    /// What the row is.
    pub fn summary(self) -> &'static str {
        match self {
            RuntimeRow::Uring => {
                "fanbench's own io_uring runtime (runtimes/uring), one per server thread"
            }
            RuntimeRow::Tokio => {
                "Tokio current-thread runtime, one per server thread, SO_REUSEPORT listeners"
            }
            RuntimeRow::TokioMt => "Tokio multi-thread work-stealing runtime, --threads workers",
            RuntimeRow::Compio => {
                "compio runtime (io_uring driver), one per server thread, SO_REUSEPORT listeners"
            }
            RuntimeRow::Glommio => {
                "glommio LocalExecutor, one per server thread pinned with Placement::Fixed, \
                 SO_REUSEPORT listeners"
            }
            RuntimeRow::Monoio => {
                "monoio runtime (io_uring driver), one per server thread, SO_REUSEPORT listeners"
            }
            RuntimeRow::MonoioEpoll => {
                "monoio runtime (legacy epoll driver), one per server thread, SO_REUSEPORT \
                 listeners"
            }
            RuntimeRow::Threads => {
                "blocking std::net: a thread per connection reading, one per connection writing \
                 (pre-async baseline); ignores --threads"
            }
            RuntimeRow::Floor => {
                "not a runtime: a minimal single-threaded raw io_uring fan-out server \
                 (runtimes/floor, no broker, no trait), the floor the rows are read against; \
                 ignores --threads"
            }
        }
    }

    /// The crate the row is built on.
    pub fn crate_name(self) -> &'static str {
        match self {
            RuntimeRow::Uring => "io-uring",
            RuntimeRow::Tokio | RuntimeRow::TokioMt => "tokio",
            RuntimeRow::Compio => "compio",
            RuntimeRow::Glommio => "glommio",
            RuntimeRow::Monoio | RuntimeRow::MonoioEpoll => "monoio",
            RuntimeRow::Threads => "fanbench-rt-threads",
            RuntimeRow::Floor => "io-uring",
        }
    }

    /// That crate's version in this build (`build.rs` reads it from Cargo.lock; a crate
    /// missing from its list is a compile error here).
    pub fn crate_version(self) -> &'static str {
        match self {
            RuntimeRow::Uring => env!("FANBENCH_CRATE_VERSION_IO_URING"),
            RuntimeRow::Tokio | RuntimeRow::TokioMt => env!("FANBENCH_CRATE_VERSION_TOKIO"),
            RuntimeRow::Compio => env!("FANBENCH_CRATE_VERSION_COMPIO"),
            RuntimeRow::Glommio => env!("FANBENCH_CRATE_VERSION_GLOMMIO"),
            RuntimeRow::Monoio | RuntimeRow::MonoioEpoll => env!("FANBENCH_CRATE_VERSION_MONOIO"),
            RuntimeRow::Threads => env!("CARGO_PKG_VERSION"),
            RuntimeRow::Floor => env!("FANBENCH_CRATE_VERSION_IO_URING"),
        }
    }

    /// Look a row up by its `--runtime` name.
    pub fn named(name: &str) -> Option<RuntimeRow> {
        RuntimeRow::ALL.iter().copied().find(|r| r.name() == name)
    }
}

/// The names of every row, for error messages.
pub fn names() -> Vec<&'static str> {
    RuntimeRow::ALL.iter().map(|r| r.name()).collect()
}

/// One row as `fanbench runtimes --json` prints it.
#[derive(Debug, Serialize)]
struct Listing {
    name: &'static str,
    summary: &'static str,
    crate_name: &'static str,
    crate_version: &'static str,
}

impl From<RuntimeRow> for Listing {
    fn from(row: RuntimeRow) -> Listing {
        Listing {
            name: row.name(),
            summary: row.summary(),
            crate_name: row.crate_name(),
            crate_version: row.crate_version(),
        }
    }
}

/// `fanbench runtimes`: print the rows, as a table or as JSON.
pub fn list(json: bool) -> Result<()> {
    let rows: Vec<Listing> = RuntimeRow::ALL.iter().copied().map(Listing::from).collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let krates: Vec<String> = rows
        .iter()
        .map(|row| format!("{} {}", row.crate_name, row.crate_version))
        .collect();
    let name_w = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let krate_w = krates.iter().map(String::len).max().unwrap_or(0);
    println!("{:<name_w$}  {:<krate_w$}  summary", "runtime", "crate");
    for (row, krate) in rows.iter().zip(&krates) {
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
        for row in RuntimeRow::ALL {
            let digits = row.crate_version().split('.').collect::<Vec<_>>();
            assert!(
                digits.len() >= 3 && digits[0].parse::<u32>().is_ok(),
                "{}: crate version {:?}",
                row.name(),
                row.crate_version()
            );
        }
        let manifest = include_str!("../../runtimes/uring/Cargo.toml");
        let requirement = manifest
            .lines()
            .find_map(|l| l.strip_prefix("io-uring = \""))
            .and_then(|rest| rest.split('"').next())
            .expect("runtimes/uring/Cargo.toml depends on io-uring");
        let major_minor: Vec<&str> = requirement.split('.').take(2).collect();
        let uring = RuntimeRow::named("uring").unwrap();
        assert!(
            uring
                .crate_version()
                .starts_with(&format!("{}.", major_minor.join("."))),
            "uring row reports io-uring {} but runtimes/uring requires {requirement}",
            uring.crate_version()
        );
    }

    #[test]
    fn every_row_name_is_unique_and_finds_its_row() {
        for row in RuntimeRow::ALL {
            assert_eq!(RuntimeRow::named(row.name()), Some(*row));
        }
        let mut names = names();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), RuntimeRow::ALL.len());
    }

    /// A row without a colour of its own would get a hashed fallback that may clash with
    /// another row's.
    #[test]
    fn every_row_has_a_palette_colour() {
        for row in crate::measure::Row::all() {
            assert!(
                fanbench_plots::palette::known_runtime_colour(row.name()).is_some(),
                "{}: no colour in plots/src/palette.rs",
                row.name()
            );
        }
    }

    /// runtimes/README.md and the top-level README name every row.
    #[test]
    fn every_row_is_documented() {
        let checklist = include_str!("../../runtimes/README.md");
        let readme = include_str!("../../README.md");
        for row in RuntimeRow::ALL {
            let quoted = format!("`{}`", row.name());
            assert!(readme.contains(&quoted), "README.md does not list {quoted}");
            assert!(
                checklist.contains(&quoted),
                "runtimes/README.md does not list {quoted}"
            );
        }
    }
}
