//! The states an in-flight op goes through, one registry slot each.
//!
//! # State
//!
//! ```text
//!              completion                     poll
//! Submitted ─────────────────▶ Completed ───────────────▶ (slot freed, result returned)
//!     │ poll                      ▲
//!     ▼          completion       │
//! Waiting(waker) ─────────────────┘
//!     │ future dropped (also from Submitted)
//!     ▼                           completion without F_MORE
//! Ignored(resources) ─────────────────────────────────────▶ (slot freed, resources dropped)
//!
//! Submitted/Waiting with `Coalesce::Hold` (a send on a busy connection, see the `driver`
//! docs): a successful completion goes to Held { completion, waker } instead of Completed,
//! and every held op is released (to Completed, its waker woken) together when the window
//! ends. The kernel is done with a held op: dropping its future frees the slot at once.
//!
//! Multishot { ready, waker, finished }: each completion is queued in `ready`; the one
//! without IORING_CQE_F_MORE sets `finished`. Dropped: queued and later results are handed
//! to the resources' `on_orphan_completion` (which closes accepted fds), then as above.
//! ```
//!
//! A slot leaves the registry only when the kernel has said it is done with the op (a CQE
//! without `IORING_CQE_F_MORE`) *and* nobody waits for the result. That is what keeps
//! buffers and descriptors alive for exactly as long as the kernel may use them.

use std::collections::VecDeque;
use std::task::Waker;
use std::time::Instant;

/// What a CQE said about an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Completion {
    /// The CQE's `res`: a byte count, a new descriptor, 0, or `-errno`.
    pub(crate) result: i32,
    /// The CQE's flags (`IORING_CQE_F_MORE`, buffer ids...).
    pub(crate) flags: u32,
    /// For sends while coalescing (not [`Coalesce::Off`]): what the connection's next send
    /// needs to tell whether the connection is busy.
    pub(crate) send_mark: Option<SendMark>,
}

/// When a send's completion reached its task, for the busy test of the connection's next
/// send ([`Driver::send_coalescing`](super::Driver::send_coalescing)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SendMark {
    /// When the CQE was reaped, or for a held completion when its window ended.
    pub(crate) at: Instant,
    /// For a held completion: the driver's park count at the window's end. The writer counts
    /// as busy only if it sends again before the driver next parks, i.e. messages queued up
    /// while it was held.
    pub(crate) released_before_park: Option<u64>,
}

/// What the coalescing window does with a single-shot op (see `driver`'s module docs,
/// # Send coalescing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coalesce {
    /// Not a send, or coalescing is off.
    Off,
    /// A send on a connection that is not busy: never held, but its completion carries a
    /// [`SendMark`].
    Stamp,
    /// A send on a busy connection: a successful completion is held until the window ends
    /// (and carries a [`SendMark`] made then).
    Hold,
}

impl Completion {
    /// `res` as an `io::Result`.
    pub(crate) fn into_result(self) -> std::io::Result<u32> {
        if self.result < 0 {
            Err(std::io::Error::from_raw_os_error(-self.result))
        } else {
            Ok(self.result as u32)
        }
    }
}

/// Resources of an op nobody waits for any more: kept alive until its last completion.
///
/// Implemented for every op type; the default ignores the completion (the resources are
/// then simply dropped). Ops that create descriptors (accept) close them here.
pub(crate) trait Orphan: 'static {
    /// Called for each completion that arrives after the op's future was dropped.
    fn on_orphan_completion(&mut self, completion: Completion) {
        let _ = completion;
    }
}

/// Completions of a multishot op waiting to be consumed.
pub(crate) struct Multishot {
    pub(crate) ready: VecDeque<Completion>,
    pub(crate) waker: Option<Waker>,
    /// The last CQE (no `F_MORE`) arrived: the kernel is done with the op.
    pub(crate) finished: bool,
}

/// One registry slot.
pub(crate) enum Lifecycle {
    /// In the submission queue or in the kernel; nobody polled it yet.
    Submitted { coalesce: Coalesce },
    /// In the kernel; this waker is woken by the completion.
    Waiting { waker: Waker, coalesce: Coalesce },
    /// The completion arrived; the future has not collected it yet.
    Completed(Completion),
    /// The completion arrived and is held until the coalescing window ends (the kernel is
    /// done with the op; only the wake is deferred).
    Held {
        completion: Completion,
        waker: Option<Waker>,
    },
    /// The future was dropped (or the op was detached by the driver). The kernel may still
    /// use these resources, so they live here until the last completion.
    Ignored(Box<dyn Orphan>),
    /// A multishot op owned by a live handle.
    Multishot(Multishot),
}
