//! Wakers that are correct from any thread.
//!
//! # State
//!
//! Each task has one [`TaskWaker`] (an `Arc`, so `Waker`s built from it are `Send + Sync`).
//! Its `scheduled` flag makes a task sit in a run queue at most once: a wake sets it (and
//! queues the task only if it was clear); the executor clears it just before polling, so a
//! wake during the poll queues the task again.
//!
//! A wake on the runtime's own thread pushes the task id onto the local run queue. A wake
//! from any other thread pushes it onto [`Shared::remote`] (a mutex-protected list) and, if
//! the runtime is parked in the kernel, writes the runtime's eventfd, which the ring always
//! has a read pending on: the read completes and `io_uring_enter` returns.
//!
//! The park protocol (both sides use `SeqCst`, so one of them sees the other):
//! - runtime: `parked = true`; if `has_remote` then don't block; else block in the ring.
//! - waker:  push; `has_remote = true`; if `parked.swap(false)` then write the eventfd.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Wake;

use crate::context::Context;

/// Identifies a task: slab index in the low 32 bits, generation in the high 32 bits, so a
/// stale waker of a finished task never wakes a new task that reused its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TaskId(pub(crate) u64);

impl TaskId {
    /// The `block_on` future: not in the slab.
    pub(crate) const MAIN: TaskId = TaskId(u64::MAX);

    pub(crate) fn new(index: usize, generation: u32) -> TaskId {
        debug_assert!(
            index < u32::MAX as usize,
            "task slab index overflows a TaskId"
        );
        TaskId(((generation as u64) << 32) | index as u64)
    }

    pub(crate) fn index(self) -> usize {
        (self.0 & u32::MAX as u64) as usize
    }

    pub(crate) fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

/// The part of a runtime other threads may touch.
pub(crate) struct Shared {
    remote: Mutex<Vec<TaskId>>,
    has_remote: AtomicBool,
    parked: AtomicBool,
    /// Set when the runtime is gone: remote wakes become no-ops.
    closed: AtomicBool,
    eventfd: OwnedFd,
    pub(crate) remote_wakes: AtomicU64,
    pub(crate) eventfd_wakes: AtomicU64,
}

impl Shared {
    pub(crate) fn new(eventfd: OwnedFd) -> Shared {
        Shared {
            remote: Mutex::new(Vec::new()),
            has_remote: AtomicBool::new(false),
            parked: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            eventfd,
            remote_wakes: AtomicU64::new(0),
            eventfd_wakes: AtomicU64::new(0),
        }
    }

    pub(crate) fn eventfd(&self) -> &OwnedFd {
        &self.eventfd
    }

    fn push_remote(&self, id: TaskId) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        self.remote_wakes.fetch_add(1, Ordering::Relaxed);
        self.remote
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(id);
        self.has_remote.store(true, Ordering::SeqCst);
        if self.parked.swap(false, Ordering::SeqCst) {
            self.eventfd_wakes.fetch_add(1, Ordering::Relaxed);
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live local to an eventfd we own. An error
            // (EAGAIN: the counter is saturated) means a wake is already pending.
            unsafe {
                libc::write(
                    self.eventfd.as_raw_fd(),
                    (&one as *const u64).cast(),
                    std::mem::size_of::<u64>(),
                );
            }
        }
    }

    /// Move remotely woken tasks into `out`.
    pub(crate) fn drain_remote(&self, out: &mut Vec<TaskId>) {
        if !self.has_remote.load(Ordering::SeqCst) {
            return;
        }
        self.has_remote.store(false, Ordering::SeqCst);
        let mut remote = self
            .remote
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        out.append(&mut remote);
    }

    /// Announce that the runtime is about to block in the kernel. Returns `false` if a
    /// remote wake is already pending (then the runtime must not block).
    pub(crate) fn begin_park(&self) -> bool {
        self.parked.store(true, Ordering::SeqCst);
        if self.has_remote.load(Ordering::SeqCst) {
            self.parked.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    pub(crate) fn end_park(&self) {
        self.parked.store(false, Ordering::SeqCst);
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
}

/// The waker of one task.
pub(crate) struct TaskWaker {
    pub(crate) id: TaskId,
    pub(crate) scheduled: AtomicBool,
    pub(crate) shared: Arc<Shared>,
}

impl TaskWaker {
    pub(crate) fn new(id: TaskId, shared: Arc<Shared>) -> TaskWaker {
        TaskWaker {
            id,
            scheduled: AtomicBool::new(false),
            shared,
        }
    }
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let queued_locally = Context::with_current(|ctx| {
            if Arc::ptr_eq(&ctx.executor.shared, &self.shared) {
                ctx.executor.schedule_local(self.id);
                true
            } else {
                false
            }
        })
        .unwrap_or(false);
        if !queued_locally {
            self.shared.push_remote(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_id_packs_index_and_generation() {
        let id = TaskId::new(12345, 7);
        assert_eq!(id.index(), 12345);
        assert_eq!(id.generation(), 7);
        assert_ne!(id, TaskId::new(12345, 8));
    }
}
