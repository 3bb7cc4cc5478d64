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
//! Multishot { ready, waker, finished }: each completion is queued in `ready`; the one
//! without IORING_CQE_F_MORE sets `finished`. Dropped: queued and later results are handed
//! to the resources' `on_orphan_completion` (which closes accepted fds), then as above.
//! ```
//!
//! A slot leaves the registry only when the kernel has said it is done with the op (a CQE
//! without `IORING_CQE_F_MORE`) *and* nobody waits for the result. That is what keeps
//! buffers and descriptors alive for exactly as long as the kernel may use them.
//!
//! The transitions are the methods of [`Lifecycle`]; each returns what the driver must do
//! next (wake a task, free the slot, cancel the op), so the driver
//! keeps the registry, the ring and the wake list, and this file keeps the state machine.

use std::collections::VecDeque;
use std::mem;
use std::task::{Poll, Waker};

/// What a CQE said about an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Completion {
    /// The CQE's `res`: a byte count, a new descriptor, 0, or `-errno`.
    pub(crate) result: i32,
    /// The CQE's flags (`IORING_CQE_F_MORE`, buffer ids...).
    pub(crate) flags: u32,
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
    Submitted,
    /// In the kernel; this waker is woken by the completion.
    Waiting(Waker),
    /// The completion arrived; the future has not collected it yet.
    Completed(Completion),
    /// The future was dropped (or the op was detached by the driver). The kernel may still
    /// use these resources, so they live here until the last completion.
    Ignored(Box<dyn Orphan>),
    /// A multishot op owned by a live handle.
    Multishot(Multishot),
}

/// What the driver does after a completion was applied to a slot ([`Lifecycle::complete`]).
#[must_use]
pub(crate) enum Completed {
    /// Stored in the slot; nobody to wake yet.
    Stored,
    /// Stored; wake this task.
    Wake(Waker),
    /// The last completion of an orphaned op: free the slot and drop its resources.
    Finished,
    /// A second completion for a single-shot op: a driver bug.
    Unexpected,
}

/// What the driver does after an op's future or handle was dropped ([`Lifecycle::orphan`],
/// [`Lifecycle::orphan_multishot`]).
#[must_use]
pub(crate) enum Orphaned {
    /// The kernel is done with the op: free the slot, drop these resources (outside the
    /// driver borrow).
    Done(Box<dyn Orphan>),
    /// The slot now owns the resources (`Ignored`): cancel the op.
    Cancel,
    /// The slot was in a state an orphaned op cannot be in (a driver bug). Not knowing whether
    /// the kernel is done, the caller must leak these.
    Foreign(Box<dyn Orphan>),
}

impl Lifecycle {
    /// A single-shot op just queued.
    pub(crate) fn submitted() -> Lifecycle {
        Lifecycle::Submitted
    }

    /// A multishot op just queued.
    pub(crate) fn multishot() -> Lifecycle {
        Lifecycle::Multishot(Multishot {
            ready: VecDeque::new(),
            waker: None,
            finished: false,
        })
    }

    /// Polling a single-shot op: `Ready` with its completion (the caller frees the slot), or
    /// `Pending` with `waker` registered.
    pub(crate) fn poll(&mut self, waker: &Waker) -> Poll<Completion> {
        match self {
            Lifecycle::Completed(c) => Poll::Ready(*c),
            Lifecycle::Submitted => {
                *self = Lifecycle::Waiting(waker.clone());
                Poll::Pending
            }
            Lifecycle::Waiting(w) => {
                if !w.will_wake(waker) {
                    *w = waker.clone();
                }
                Poll::Pending
            }
            Lifecycle::Ignored(_) | Lifecycle::Multishot(_) => {
                unreachable!("fanbench-uring: single-shot op polled in a foreign state")
            }
        }
    }

    /// Polling a multishot op: its next completion, `Ready(None)` once it finished and every
    /// completion was taken (the caller frees the slot), or `Pending` with `waker` registered.
    pub(crate) fn poll_multishot(&mut self, waker: &Waker) -> Poll<Option<Completion>> {
        let Lifecycle::Multishot(m) = self else {
            unreachable!("fanbench-uring: multishot op polled in a foreign state")
        };
        if let Some(c) = m.ready.pop_front() {
            return Poll::Ready(Some(c));
        }
        if m.finished {
            return Poll::Ready(None);
        }
        match &m.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => m.waker = Some(waker.clone()),
        }
        Poll::Pending
    }

    /// A CQE for this slot arrived.
    pub(crate) fn complete(&mut self, completion: Completion) -> Completed {
        let more = io_uring::cqueue::more(completion.flags);
        match self {
            Lifecycle::Submitted => {
                *self = Lifecycle::Completed(completion);
                Completed::Stored
            }
            Lifecycle::Waiting(_) => {
                let Lifecycle::Waiting(waker) =
                    mem::replace(self, Lifecycle::Completed(completion))
                else {
                    unreachable!()
                };
                Completed::Wake(waker)
            }
            Lifecycle::Multishot(m) => {
                m.ready.push_back(completion);
                if !more {
                    m.finished = true;
                }
                match m.waker.take() {
                    Some(waker) => Completed::Wake(waker),
                    None => Completed::Stored,
                }
            }
            Lifecycle::Ignored(resources) => {
                resources.on_orphan_completion(completion);
                if more {
                    Completed::Stored
                } else {
                    Completed::Finished
                }
            }
            Lifecycle::Completed(_) => Completed::Unexpected,
        }
    }

    /// A single-shot op's future was dropped, handing over the resources the kernel may
    /// still use.
    pub(crate) fn orphan(&mut self, resources: Box<dyn Orphan>) -> Orphaned {
        match self {
            Lifecycle::Completed(_) => Orphaned::Done(resources),
            Lifecycle::Submitted | Lifecycle::Waiting(_) => {
                *self = Lifecycle::Ignored(resources);
                Orphaned::Cancel
            }
            Lifecycle::Ignored(_) | Lifecycle::Multishot(_) => Orphaned::Foreign(resources),
        }
    }

    /// A multishot op's handle was dropped: completions already queued go to the resources'
    /// `on_orphan_completion` (closing accepted fds); unless the op finished, the slot keeps
    /// the resources until its last completion.
    pub(crate) fn orphan_multishot(&mut self, mut resources: Box<dyn Orphan>) -> Orphaned {
        let Lifecycle::Multishot(m) = self else {
            return Orphaned::Foreign(resources);
        };
        for c in m.ready.drain(..) {
            resources.on_orphan_completion(c);
        }
        if m.finished {
            return Orphaned::Done(resources);
        }
        *self = Lifecycle::Ignored(resources);
        Orphaned::Cancel
    }
}
