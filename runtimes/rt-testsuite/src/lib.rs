//! Test support for fanbench's runtime adapters: helpers ([`support`]) and trait-level tests
//! written once, generic over `R: fanbench_rt::Runtime`. Each adapter's integration tests
//! call these functions with a constructor for its runtime ([`Make`]).
//!
//! - [`basic`]: tests every row passes, including the blocking threads row (whose I/O
//!   blocks the calling thread, so two tasks of one runtime never do I/O concurrently).
//! - [`suite`]: tests that need tasks of one runtime to make progress concurrently on its
//!   own I/O (the io_uring/epoll rows).
//!
//! Nothing here asserts a duration beyond "no earlier than asked": hangs are caught by
//! [`support::with_watchdog`] or [`suite::DEADLINE`] and reported as failures.

#![forbid(unsafe_code)]

pub mod basic;
pub mod suite;
pub mod support;

/// Build a runtime on the calling thread.
pub type Make<R> = fn() -> R;
