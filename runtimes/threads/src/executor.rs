//! A park/unpark executor for one thread: what `block_on` needs when every I/O call blocks.
//!
//! # State
//!
//! A `Core` belongs to one [`ThreadsRuntime`](crate::ThreadsRuntime) and lives on the thread
//! that made it. While `block_on` runs, the core is installed in the thread-local `CURRENT`,
//! which is how `spawn_local` and [`Sleep`] find it. It holds:
//!
//! * the local tasks (boxed futures), each with its own `FlagWaker`;
//! * the timers: `(deadline, id) -> Waker`, ordered by deadline.
//!
//! # Waking
//!
//! A waker sets its task's flag, then the core's shared `pending` flag, then unparks the
//! core's thread. This is correct from any thread: if the wake lands before the thread parks,
//! the park token makes `park` return at once. Before parking, `block_on` fires the timers
//! that are due and parks no longer than the earliest deadline left (`park_timeout`), so a
//! task waiting for "queue non-empty or ping timer" is woken by whichever comes first.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::{pin, Pin};
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

thread_local! {
    static CURRENT: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}

/// What every waker of one core shares: the thread to unpark and "something was woken".
struct Notify {
    thread: Thread,
    pending: AtomicBool,
}

/// The waker of one task (or of the `block_on` future).
struct FlagWaker {
    woken: AtomicBool,
    notify: Arc<Notify>,
}

impl FlagWaker {
    fn new(notify: &Arc<Notify>) -> Arc<Self> {
        Arc::new(FlagWaker {
            // A new task has not been polled yet: it starts woken.
            woken: AtomicBool::new(true),
            notify: notify.clone(),
        })
    }

    fn take_woken(&self) -> bool {
        self.woken.swap(false, Ordering::AcqRel)
    }
}

impl Wake for FlagWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.notify.pending.store(true, Ordering::Release);
        self.notify.thread.unpark();
    }
}

struct Task {
    future: Pin<Box<dyn Future<Output = ()>>>,
    flag: Arc<FlagWaker>,
    waker: Waker,
}

/// The scheduler state of one runtime (see the module docs).
pub(crate) struct Core {
    notify: Arc<Notify>,
    tasks: RefCell<Vec<Task>>,
    /// Tasks spawned while `tasks` is being run; moved into `tasks` after each pass.
    spawned: RefCell<Vec<Task>>,
    timers: RefCell<BTreeMap<(Instant, u64), Waker>>,
    next_timer_id: Cell<u64>,
}

impl Core {
    /// A core for the current thread.
    pub(crate) fn new() -> Rc<Core> {
        Rc::new(Core {
            notify: Arc::new(Notify {
                thread: std::thread::current(),
                pending: AtomicBool::new(false),
            }),
            tasks: RefCell::new(Vec::new()),
            spawned: RefCell::new(Vec::new()),
            timers: RefCell::new(BTreeMap::new()),
            next_timer_id: Cell::new(0),
        })
    }

    /// Run `fut` and every local task until `fut` completes.
    pub(crate) fn block_on<F: Future>(self: &Rc<Core>, fut: F) -> F::Output {
        assert!(
            self.notify.thread.id() == std::thread::current().id(),
            "a ThreadsRuntime must run on the thread that created it"
        );
        let _enter = Enter::new(self.clone());
        let main = FlagWaker::new(&self.notify);
        let main_waker = Waker::from(main.clone());
        let mut fut = pin!(fut);
        loop {
            self.notify.pending.store(false, Ordering::Release);
            if main.take_woken() {
                if let Poll::Ready(out) = fut.as_mut().poll(&mut Context::from_waker(&main_waker)) {
                    return out;
                }
            }
            self.run_tasks();
            let next_deadline = self.fire_timers(Instant::now());
            if self.notify.pending.load(Ordering::Acquire) {
                continue;
            }
            match next_deadline {
                Some(deadline) => {
                    std::thread::park_timeout(deadline.saturating_duration_since(Instant::now()))
                }
                None => std::thread::park(),
            }
        }
    }

    /// Poll every woken local task once; drop the finished ones.
    fn run_tasks(&self) {
        let mut tasks = std::mem::take(&mut *self.tasks.borrow_mut());
        tasks.retain_mut(|task| {
            if !task.flag.take_woken() {
                return true;
            }
            let mut cx = Context::from_waker(&task.waker);
            task.future.as_mut().poll(&mut cx).is_pending()
        });
        tasks.append(&mut self.spawned.borrow_mut());
        if tasks.iter().any(|t| t.flag.woken.load(Ordering::Acquire)) {
            self.notify.pending.store(true, Ordering::Release);
        }
        // Tasks polled above cannot have added to `self.tasks` (spawns go to `spawned`).
        *self.tasks.borrow_mut() = tasks;
    }

    /// Wake the timers due at `now`; return the earliest deadline still pending.
    fn fire_timers(&self, now: Instant) -> Option<Instant> {
        let due: Vec<Waker> = {
            let mut timers = self.timers.borrow_mut();
            let later = timers.split_off(&(now, u64::MAX));
            std::mem::replace(&mut *timers, later)
                .into_values()
                .collect()
        };
        for waker in due {
            waker.wake();
        }
        self.timers
            .borrow()
            .keys()
            .next()
            .map(|(deadline, _)| *deadline)
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()>>>) {
        let flag = FlagWaker::new(&self.notify);
        let waker = Waker::from(flag.clone());
        self.spawned.borrow_mut().push(Task {
            future,
            flag,
            waker,
        });
        self.notify.pending.store(true, Ordering::Release);
    }
}

/// Installs a core as the thread's current one for the duration of a `block_on`, and puts
/// back whatever was there before (nested runtimes on one thread stay separate).
struct Enter {
    previous: Option<Rc<Core>>,
}

impl Enter {
    fn new(core: Rc<Core>) -> Enter {
        let previous = CURRENT.with(|c| c.borrow_mut().replace(core));
        Enter { previous }
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

fn current() -> Rc<Core> {
    CURRENT
        .with(|c| c.borrow().clone())
        .expect("ThreadsRuntime: spawn_local/sleep used outside ThreadsRuntime::block_on")
}

/// Spawn a task on the current thread's runtime.
pub(crate) fn spawn_local<F: Future<Output = ()> + 'static>(fut: F) {
    current().spawn(Box::pin(fut));
}

/// A timer on the current thread's runtime; completes no earlier than its deadline.
pub struct Sleep {
    deadline: Instant,
    /// The core and key this timer is registered under, once polled.
    registered: Option<(Weak<Core>, (Instant, u64))>,
}

impl Sleep {
    pub(crate) fn new(duration: Duration) -> Sleep {
        Sleep {
            deadline: Instant::now() + duration,
            registered: None,
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            self.unregister();
            return Poll::Ready(());
        }
        let core = match &self.registered {
            Some((core, _)) => core.upgrade(),
            None => None,
        }
        .unwrap_or_else(current);
        let key = match self.registered {
            Some((_, key)) => key,
            None => {
                let id = core.next_timer_id.get();
                core.next_timer_id.set(id + 1);
                let key = (self.deadline, id);
                self.registered = Some((Rc::downgrade(&core), key));
                key
            }
        };
        // (Re-)insert: the entry is gone if the timer fired but the deadline was not yet
        // reached by the clock reading above (it never is, but a spurious poll is harmless).
        core.timers.borrow_mut().insert(key, cx.waker().clone());
        Poll::Pending
    }
}

impl Sleep {
    fn unregister(&mut self) {
        if let Some((core, key)) = self.registered.take() {
            if let Some(core) = core.upgrade() {
                core.timers.borrow_mut().remove(&key);
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.unregister();
    }
}
