//! The per-runtime state shared by the executor, the driver, the timers and every in-flight
//! op, and the thread-local that says which runtime the current thread is running.
//!
//! # State
//!
//! A [`Context`] is reference counted (`Rc`): the [`UringRuntime`](crate::UringRuntime) holds
//! one reference, `CURRENT` holds one while `block_on` runs, and every in-flight op and
//! registered sleep holds one, so the driver (ring and op registry) outlives every future
//! that lent it a buffer. Tasks own ops, so the runtime breaks that cycle on drop by dropping
//! every task first (see `UringRuntime`'s `Drop`).

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use crate::driver::Driver;
use crate::executor::Executor;
use crate::time::Timers;

/// One runtime's state.
pub(crate) struct Context {
    /// Tasks and run queues.
    pub(crate) executor: Executor,
    /// Sleeping tasks, earliest deadline first.
    pub(crate) timers: RefCell<Timers>,
    /// The ring and the op registry. Dropped last: its `Drop` waits for in-flight ops.
    pub(crate) driver: RefCell<Driver>,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Context>>> = const { RefCell::new(None) };
}

impl Context {
    /// The runtime driving this thread, or an error outside `block_on`.
    pub(crate) fn current() -> io::Result<Rc<Context>> {
        CURRENT
            .try_with(|c| c.borrow().clone())
            .ok()
            .flatten()
            .ok_or_else(|| io::Error::other("no fanbench-uring runtime is running on this thread"))
    }

    /// Run `f` with the current runtime's context, if there is one.
    pub(crate) fn with_current<R>(f: impl FnOnce(&Context) -> R) -> Option<R> {
        CURRENT
            .try_with(|c| c.borrow().as_deref().map(f))
            .ok()
            .flatten()
    }

    /// Make `ctx` the current runtime until the guard drops. Refuses to nest a runtime
    /// inside another on one thread (a nested `block_on` would starve the outer one).
    pub(crate) fn enter(ctx: &Rc<Context>) -> EnterGuard {
        CURRENT.with(|c| {
            let mut c = c.borrow_mut();
            assert!(
                c.is_none(),
                "fanbench-uring: block_on called while a runtime is already running on this thread"
            );
            *c = Some(ctx.clone());
        });
        EnterGuard(())
    }

    /// Make `ctx` current if no runtime is (used while dropping a runtime, so destructors
    /// that queue closes reach its driver). `None` if another runtime is current.
    pub(crate) fn enter_if_vacant(ctx: &Rc<Context>) -> Option<EnterGuard> {
        CURRENT
            .try_with(|c| {
                let mut c = c.borrow_mut();
                if c.is_some() {
                    return None;
                }
                *c = Some(ctx.clone());
                Some(EnterGuard(()))
            })
            .ok()
            .flatten()
    }
}

/// Clears `CURRENT` when dropped (also when `block_on` unwinds).
pub(crate) struct EnterGuard(());

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let previous = CURRENT.try_with(|c| c.borrow_mut().take()).ok().flatten();
        drop(previous);
    }
}
