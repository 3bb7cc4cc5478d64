//! The runtime rows the suite runs on, each built the way `fanbench serve` builds it for one
//! server thread, and a visitor that hands each row's runtime type to generic code.

use std::io;

use fanbench_rt::Runtime;

/// A runtime row of the micro suite (a `--runtime` name of `fanbench`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MicroRow {
    /// fanbench's own io_uring runtime, default configuration.
    Uring,
    /// Tokio current-thread with a `LocalSet`.
    Tokio,
    /// Tokio multi-thread (one worker) with a `LocalSet` on the calling thread.
    TokioMt,
    /// compio (io_uring driver).
    Compio,
    /// glommio `LocalExecutor`, unbound.
    Glommio,
    /// monoio, io_uring driver.
    Monoio,
    /// monoio, legacy epoll driver.
    MonoioEpoll,
    /// The blocking baseline's park/unpark executor.
    Threads,
}

impl MicroRow {
    /// Every row, in `fanbench runtimes` order.
    pub const ALL: &'static [MicroRow] = &[
        MicroRow::Uring,
        MicroRow::Tokio,
        MicroRow::TokioMt,
        MicroRow::Compio,
        MicroRow::Glommio,
        MicroRow::Monoio,
        MicroRow::MonoioEpoll,
        MicroRow::Threads,
    ];

    /// The `--runtime` name.
    pub fn name(self) -> &'static str {
        match self {
            MicroRow::Uring => "uring",
            MicroRow::Tokio => "tokio",
            MicroRow::TokioMt => "tokio-mt",
            MicroRow::Compio => "compio",
            MicroRow::Glommio => "glommio",
            MicroRow::Monoio => "monoio",
            MicroRow::MonoioEpoll => "monoio-epoll",
            MicroRow::Threads => "threads",
        }
    }

    /// Look a row up by its `--runtime` name.
    pub fn named(name: &str) -> Option<MicroRow> {
        MicroRow::ALL.iter().copied().find(|r| r.name() == name)
    }

    /// Hand this row's runtime type and constructor to `visitor`.
    pub fn visit<V: RowVisitor>(self, visitor: &mut V) -> V::Output {
        use fanbench_rt_compio::{CompioConfig, CompioRuntime};
        use fanbench_rt_glommio::{GlommioConfig, GlommioRuntime};
        use fanbench_rt_monoio::{MonoioConfig, MonoioEpollRuntime, MonoioUringRuntime};
        use fanbench_rt_threads::ThreadsRuntime;
        use fanbench_rt_tokio::{TokioMtRuntime, TokioRuntime};
        use fanbench_uring::{UringConfig, UringRuntime};
        match self {
            MicroRow::Uring => {
                visitor.visit::<UringRuntime>(self, || UringRuntime::new(UringConfig::default()))
            }
            MicroRow::Tokio => visitor.visit::<TokioRuntime>(self, TokioRuntime::new),
            // One worker: `fanbench serve --threads 1`, what bench-all runs by default.
            MicroRow::TokioMt => {
                visitor.visit::<TokioMtRuntime>(self, || TokioMtRuntime::new(1, |_| {}))
            }
            MicroRow::Compio => {
                visitor.visit::<CompioRuntime>(self, || CompioRuntime::new(CompioConfig::default()))
            }
            MicroRow::Glommio => visitor
                .visit::<GlommioRuntime>(self, || GlommioRuntime::new(GlommioConfig::default())),
            MicroRow::Monoio => visitor.visit::<MonoioUringRuntime>(self, || {
                MonoioUringRuntime::new(MonoioConfig::default())
            }),
            MicroRow::MonoioEpoll => visitor.visit::<MonoioEpollRuntime>(self, || {
                MonoioEpollRuntime::new(MonoioConfig::default())
            }),
            MicroRow::Threads => {
                visitor.visit::<ThreadsRuntime>(self, || Ok(ThreadsRuntime::new()))
            }
        }
    }
}

/// Builds a runtime of type `R` on the calling thread. A plain function, so that a second
/// runtime of the same row can be built on another thread (the cross-thread operations).
pub type MakeRuntime<R> = fn() -> io::Result<R>;

/// Generic code that runs on one row's runtime type.
pub trait RowVisitor {
    /// What a visit returns.
    type Output;
    /// Called with the row, its runtime type and how to build one.
    fn visit<R: Runtime>(&mut self, row: MicroRow, make: MakeRuntime<R>) -> Self::Output;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_name_finds_its_row() {
        for row in MicroRow::ALL {
            assert_eq!(MicroRow::named(row.name()), Some(*row));
        }
        assert_eq!(MicroRow::named("nats-server"), None);
    }
}
