//! What `run` and `bench-all` do when they are told to stop (SIGINT, SIGTERM, SIGHUP: a
//! Ctrl-C, a CI timeout, a closed terminal): the servers they started are stopped at once,
//! the measurement in flight is abandoned at its next check, what was measured so far is
//! written (flagged partial) and the exit status is 128 + the signal, as a shell reports it.
//! A second signal stops the servers and exits without writing anything more.
//!
//! # State
//!
//! One process-wide flag, the first signal's number (0: none yet). The signals are received
//! by `signal-hook` on a thread of their own, so the handler itself only writes to a pipe.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Once;
use std::time::Duration;

use anyhow::Context;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::server_proc;

static SIGNAL: AtomicI32 = AtomicI32::new(0);
static INSTALL: Once = Once::new();

/// The measurement stopped because the harness was told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted(pub i32);

impl Interrupted {
    /// `SIGTERM`, `SIGINT`, ...
    pub fn signal_name(&self) -> String {
        signal_name(self.0)
    }

    /// The exit status a shell reports for a process this signal ended: 128 + the signal.
    pub fn exit_code(&self) -> u8 {
        u8::try_from(128 + self.0).unwrap_or(255)
    }
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted by {}", self.signal_name())
    }
}

impl std::error::Error for Interrupted {}

/// The conventional name of a signal number.
pub fn signal_name(sig: i32) -> String {
    match sig {
        SIGINT => "SIGINT".into(),
        SIGTERM => "SIGTERM".into(),
        SIGHUP => "SIGHUP".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGBUS => "SIGBUS".into(),
        other => format!("signal {other}"),
    }
}

/// Starts listening for SIGINT, SIGTERM and SIGHUP (once per process; later calls are no-ops).
pub fn install() -> anyhow::Result<()> {
    let mut result = Ok(());
    INSTALL.call_once(|| result = start_listener());
    result
}

fn start_listener() -> anyhow::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("installing the SIGINT/SIGTERM handlers")?;
    std::thread::Builder::new()
        .name("fanbench-interrupt".into())
        .spawn(move || {
            for sig in signals.forever() {
                if SIGNAL
                    .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    eprintln!(
                        "\nfanbench: {}: stopping the servers, then writing what was measured \
                         (send it again to quit at once)",
                        signal_name(sig)
                    );
                    server_proc::signal_all(libc::SIGTERM);
                } else {
                    server_proc::signal_all(libc::SIGKILL);
                    std::process::exit(128 + sig);
                }
            }
        })
        .context("spawning the signal thread")?;
    Ok(())
}

/// The signal that interrupted this process, if one did.
pub fn received() -> Option<Interrupted> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(Interrupted(sig)),
    }
}

/// Err once the process has been told to stop.
pub fn check() -> Result<(), Interrupted> {
    match received() {
        Some(i) => Err(i),
        None => Ok(()),
    }
}

/// How often a waiting measurement looks at the flag: short next to a CI's grace period.
pub const POLL: Duration = Duration::from_millis(50);

/// The [`Interrupted`] anywhere in an error's chain.
pub fn in_chain(err: &anyhow::Error) -> Option<Interrupted> {
    err.chain()
        .find_map(|e| e.downcast_ref::<Interrupted>().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_is_128_plus_the_signal() {
        assert_eq!(Interrupted(SIGTERM).exit_code(), 143);
        assert_eq!(Interrupted(SIGINT).exit_code(), 130);
        assert_eq!(Interrupted(SIGTERM).to_string(), "interrupted by SIGTERM");
    }

    #[test]
    fn interrupted_is_found_through_context() {
        let err = anyhow::Error::new(Interrupted(SIGINT)).context("repetition 2 of fanout-100");
        assert_eq!(in_chain(&err), Some(Interrupted(SIGINT)));
        assert_eq!(in_chain(&anyhow::anyhow!("other")), None);
    }
}
