//! The single-threaded executor: a slab of tasks and a run queue.
//!
//! # State
//!
//! A task is a `Pin<Box<dyn Future>>` boxed once at spawn and stored in a slab slot with its
//! generation and its waker. To poll it, the executor takes the box (a pointer move, never a
//! re-boxing) and the waker out of the slot, releases the slab borrow, polls, and puts them
//! back, so a task may spawn tasks or wake itself while it runs. A finished task's slot is
//! freed and its future dropped outside any borrow.
//!
//! The run queue holds [`TaskId`]s; an id whose slot is gone or reused (different
//! generation) is skipped. [`Executor::run_ready`] polls at most `budget` tasks per tick so
//! the driver is visited regularly and completions are never starved by busy tasks.

mod waker;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context as TaskContext, Waker};

use slab::Slab;

pub(crate) use waker::{Shared, TaskId, TaskWaker};

type BoxedTask = Pin<Box<dyn Future<Output = ()>>>;

struct TaskSlot {
    generation: u32,
    /// `None` only while the task is being polled.
    future: Option<BoxedTask>,
    /// `None` only while the task is being polled.
    waker: Option<Waker>,
    header: Arc<TaskWaker>,
}

/// Tasks, run queues and the executor's counters.
pub(crate) struct Executor {
    tasks: RefCell<Slab<TaskSlot>>,
    run_queue: RefCell<VecDeque<TaskId>>,
    main_woken: Cell<bool>,
    next_generation: Cell<u32>,
    remote_scratch: RefCell<Vec<TaskId>>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) task_polls: Cell<u64>,
    pub(crate) tasks_spawned: Cell<u64>,
    pub(crate) ticks: Cell<u64>,
}

impl Executor {
    pub(crate) fn new(shared: Arc<Shared>) -> Executor {
        Executor {
            tasks: RefCell::new(Slab::with_capacity(64)),
            run_queue: RefCell::new(VecDeque::with_capacity(64)),
            main_woken: Cell::new(false),
            next_generation: Cell::new(0),
            remote_scratch: RefCell::new(Vec::new()),
            shared,
            task_polls: Cell::new(0),
            tasks_spawned: Cell::new(0),
            ticks: Cell::new(0),
        }
    }

    /// Add a task and queue its first poll.
    pub(crate) fn spawn(&self, future: BoxedTask) {
        let generation = self.next_generation.get();
        self.next_generation.set(generation.wrapping_add(1));
        let id = {
            let mut tasks = self.tasks.borrow_mut();
            let entry = tasks.vacant_entry();
            let id = TaskId::new(entry.key(), generation);
            let header = Arc::new(TaskWaker::new(id, self.shared.clone()));
            header.scheduled.store(true, Ordering::Relaxed);
            entry.insert(TaskSlot {
                generation,
                future: Some(future),
                waker: Some(Waker::from(header.clone())),
                header,
            });
            id
        };
        self.tasks_spawned.set(self.tasks_spawned.get() + 1);
        self.run_queue.borrow_mut().push_back(id);
    }

    /// Queue a task woken on this thread.
    pub(crate) fn schedule_local(&self, id: TaskId) {
        if id == TaskId::MAIN {
            self.main_woken.set(true);
        } else {
            self.run_queue.borrow_mut().push_back(id);
        }
    }

    /// Whether the `block_on` future was woken since it was last polled (and clear it).
    pub(crate) fn take_main_woken(&self) -> bool {
        self.main_woken.replace(false)
    }

    pub(crate) fn wake_main(&self) {
        self.main_woken.set(true);
    }

    /// Whether any task (or the main future) is ready to run.
    pub(crate) fn has_runnable(&self) -> bool {
        self.main_woken.get() || !self.run_queue.borrow().is_empty()
    }

    /// Move tasks woken from other threads onto the local run queue.
    pub(crate) fn drain_remote(&self) {
        let mut scratch = self.remote_scratch.borrow_mut();
        self.shared.drain_remote(&mut scratch);
        for id in scratch.drain(..) {
            self.schedule_local(id);
        }
    }

    /// Poll up to `budget` ready tasks; returns how many were polled.
    pub(crate) fn run_ready(&self, budget: u32) -> u32 {
        let mut polled = 0;
        while polled < budget {
            let Some(id) = self.run_queue.borrow_mut().pop_front() else {
                break;
            };
            if self.poll_task(id) {
                polled += 1;
            }
        }
        self.task_polls
            .set(self.task_polls.get() + u64::from(polled));
        polled
    }

    /// Poll one task; `false` if the id was stale.
    fn poll_task(&self, id: TaskId) -> bool {
        let (mut future, waker) = {
            let mut tasks = self.tasks.borrow_mut();
            let Some(slot) = tasks.get_mut(id.index()) else {
                return false;
            };
            if slot.generation != id.generation() {
                return false;
            }
            let (Some(future), Some(waker)) = (slot.future.take(), slot.waker.take()) else {
                return false;
            };
            slot.header.scheduled.store(false, Ordering::Release);
            (future, waker)
        };
        let done = future
            .as_mut()
            .poll(&mut TaskContext::from_waker(&waker))
            .is_ready();
        if done {
            let slot = self.tasks.borrow_mut().remove(id.index());
            drop(slot);
            drop(future);
        } else if let Some(slot) = self.tasks.borrow_mut().get_mut(id.index()) {
            slot.future = Some(future);
            slot.waker = Some(waker);
        }
        true
    }

    /// Drop every task (on runtime drop). Futures are dropped outside the slab borrow, so
    /// their destructors may cancel ops; a destructor that spawns is drained too.
    pub(crate) fn drop_all_tasks(&self) {
        loop {
            let slots: Vec<TaskSlot> = self.tasks.borrow_mut().drain().collect();
            if slots.is_empty() {
                break;
            }
            drop(slots);
        }
        self.run_queue.borrow_mut().clear();
    }

    /// Number of live tasks.
    pub(crate) fn task_count(&self) -> usize {
        self.tasks.borrow().len()
    }
}
