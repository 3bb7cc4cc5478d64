//! The ring: setup flags with fallbacks, the `user_data` encoding, and SQE pushing.

use std::io;
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue::Entry, types, IoUring, Probe};

use crate::FloorStats;

/// What a completion is for: the top byte of `user_data`; the low bits are a connection's slab
/// index where there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Accept = 1,
    Recv = 2,
    Send = 3,
    /// The periodic wake-up that bounds how long a stop takes to be seen.
    Tick = 4,
    /// The end of a batching window.
    Window = 5,
    /// Cancellations at shutdown (they own nothing).
    Cancel = 6,
}

const KIND_SHIFT: u32 = 56;
const INDEX_MASK: u64 = (1 << KIND_SHIFT) - 1;

pub(crate) fn user_data(kind: Kind, index: usize) -> u64 {
    ((kind as u64) << KIND_SHIFT) | (index as u64 & INDEX_MASK)
}

/// The kind and index of a `user_data`; `None` for a value this server never submits.
pub(crate) fn decode(user_data: u64) -> Option<(Kind, usize)> {
    let kind = match user_data >> KIND_SHIFT {
        1 => Kind::Accept,
        2 => Kind::Recv,
        3 => Kind::Send,
        4 => Kind::Tick,
        5 => Kind::Window,
        6 => Kind::Cancel,
        _ => return None,
    };
    Some((kind, (user_data & INDEX_MASK) as usize))
}

/// One completion, copied out of the CQ so that handling it may push SQEs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cqe {
    pub user_data: u64,
    pub result: i32,
    pub flags: u32,
}

impl Cqe {
    /// A multishot op stays armed after this completion.
    pub fn more(&self) -> bool {
        cqueue::more(self.flags)
    }
}

/// The ring and the setup flags the kernel accepted.
pub(crate) struct Ring {
    ring: IoUring,
    pub flags: Vec<&'static str>,
}

impl Ring {
    /// The best ring the kernel gives: `SINGLE_ISSUER|DEFER_TASKRUN` (completion work runs
    /// only when this thread waits, never as an interrupt of its work), else
    /// `COOP_TASKRUN`, else none. The CQ is 4x the SQ so that a turn's completions fit.
    pub fn new(entries: u32) -> io::Result<Ring> {
        let candidates: [&[&'static str]; 3] = [
            &["single_issuer", "defer_taskrun"],
            &["coop_taskrun", "taskrun_flag"],
            &[],
        ];
        let mut last = None;
        for flags in candidates {
            let mut b = IoUring::builder();
            b.setup_cqsize(entries.saturating_mul(4)).setup_clamp();
            for f in flags {
                match *f {
                    "single_issuer" => b.setup_single_issuer(),
                    "defer_taskrun" => b.setup_defer_taskrun(),
                    "coop_taskrun" => b.setup_coop_taskrun(),
                    _ => b.setup_taskrun_flag(),
                };
            }
            match b.build(entries) {
                Ok(ring) => {
                    check_opcodes(&ring)?;
                    return Ok(Ring {
                        ring,
                        flags: flags.to_vec(),
                    });
                }
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = Some(e),
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(unavailable(last.unwrap_or_else(|| {
            io::Error::other("no setup flag combination was accepted")
        })))
    }

    /// Queue one SQE, submitting first if the SQ is full.
    ///
    /// # Safety
    ///
    /// Every buffer the entry points at must stay valid, and not be moved or freed, until the
    /// entry's last completion arrives (or, for a timeout's timespec, until it is submitted).
    pub unsafe fn push(&mut self, sqe: &Entry, stats: &mut FloorStats) -> io::Result<()> {
        loop {
            // SAFETY: the caller guarantees the entry's buffers outlive the op.
            if unsafe { self.ring.submission().push(sqe) }.is_ok() {
                stats.sqes += 1;
                return Ok(());
            }
            self.submit(0, stats)?;
        }
    }

    /// Submit what is queued and wait for `want` completions; `EINTR` and `EBUSY` (CQ
    /// overflow: reap, then enter again) are not errors.
    pub fn submit(&mut self, want: usize, stats: &mut FloorStats) -> io::Result<()> {
        stats.enters += 1;
        match self.ring.submitter().submit_and_wait(want) {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => Ok(()),
            Err(e) => Err(io::Error::new(e.kind(), format!("io_uring_enter: {e}"))),
        }
    }

    /// Submit what is queued and wait up to `timeout` for one completion (used at shutdown,
    /// when nothing else guarantees a completion will come).
    pub fn wait_bounded(&mut self, timeout: Duration, stats: &mut FloorStats) -> io::Result<()> {
        stats.enters += 1;
        let ts = types::Timespec::from(timeout);
        let args = types::SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(io::Error::new(e.kind(), format!("io_uring_enter: {e}"))),
        }
    }

    /// Move every available completion into `out`.
    pub fn reap(&mut self, out: &mut Vec<Cqe>) {
        out.extend(self.ring.completion().map(|c| Cqe {
            user_data: c.user_data(),
            result: c.result(),
            flags: c.flags(),
        }));
    }
}

fn check_opcodes(ring: &IoUring) -> io::Result<()> {
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| unavailable(io::Error::new(e.kind(), format!("probing opcodes: {e}"))))?;
    for (code, name) in [
        (opcode::AcceptMulti::CODE, "ACCEPT"),
        (opcode::Recv::CODE, "RECV"),
        (opcode::Send::CODE, "SEND"),
        (opcode::Timeout::CODE, "TIMEOUT"),
        (opcode::AsyncCancel2::CODE, "ASYNC_CANCEL"),
    ] {
        if !probe.is_supported(code) {
            return Err(unavailable(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("the kernel lacks IORING_OP_{name}"),
            )));
        }
    }
    Ok(())
}

fn unavailable(e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("io_uring unavailable: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_round_trips_kind_and_index() {
        for kind in [
            Kind::Accept,
            Kind::Recv,
            Kind::Send,
            Kind::Tick,
            Kind::Window,
            Kind::Cancel,
        ] {
            for index in [0, 1, 12345, INDEX_MASK as usize] {
                assert_eq!(decode(user_data(kind, index)), Some((kind, index)));
            }
        }
        assert_eq!(decode(0), None);
        assert_eq!(decode(u64::MAX), None);
    }
}
