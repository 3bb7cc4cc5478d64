//! Counting kernel events of another process with `perf_event_open`: tracepoints (syscalls,
//! io_uring submissions) and the software `task-clock`.
//!
//! # Covering every thread
//!
//! A perf event opened with `pid = tid, cpu = -1` counts one thread only. [`ProcessCounters`]
//! opens one event per tracepoint on **every** thread in `/proc/<pid>/task`, each with
//! `inherit = 1`: a thread that any counted thread creates later gets a child event, and `read()`
//! on the parent returns its own count plus those of all its (live or exited) children. Each
//! task is therefore counted exactly once: by its own event if it existed at open time, else by
//! its creator's. To make the snapshot of existing threads consistent, the thread list is
//! re-read after opening and the whole set is reopened if it changed meanwhile (a thread created
//! by a not-yet-counted thread during the opening would otherwise be missed).
//!
//! Counters are never reset: a window's count is the difference of two reads.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use perf_event_open_sys as sys;

use super::procfs;

/// Syscalls broken out individually (`syscalls:sys_enter_<name>`): the ones a broker's data
/// path, event loop, scheduler wake-ups and allocator make.
pub const BREAKDOWN_SYSCALLS: &[&str] = &[
    "write",
    "writev",
    "sendmsg",
    "sendto",
    "read",
    "readv",
    "recvfrom",
    "recvmsg",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_ctl",
    "io_uring_enter",
    "futex",
    "sched_yield",
    "nanosleep",
    "clock_nanosleep",
    "accept4",
    "mmap",
    "munmap",
    "madvise",
];

/// Where tracefs is (or was mounted by us).
pub fn tracefs_events_dir() -> anyhow::Result<PathBuf> {
    let candidates = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
    for root in candidates {
        let events = Path::new(root).join("events");
        match std::fs::metadata(events.join("raw_syscalls")) {
            Ok(meta) if meta.is_dir() => return Ok(events),
            Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(err)
                    .with_context(|| format!("tracefs at {root} is not readable (run as root)"));
            }
            _ => {}
        }
    }
    mount_tracefs().context("tracefs is not mounted")?;
    let events = Path::new(candidates[0]).join("events");
    if events.join("raw_syscalls").is_dir() {
        Ok(events)
    } else {
        bail!("tracefs mounted at /sys/kernel/tracing has no raw_syscalls events (kernel built without syscall tracepoints?)")
    }
}

fn mount_tracefs() -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("not running as root, so it cannot be mounted (mount -t tracefs tracefs /sys/kernel/tracing)");
    }
    let source = c"tracefs";
    let target = c"/sys/kernel/tracing";
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call; data is null.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            source.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .context("mount -t tracefs tracefs /sys/kernel/tracing");
    }
    Ok(())
}

/// The numeric id of tracepoint `category:name`.
pub fn tracepoint_id(events: &Path, category: &str, name: &str) -> anyhow::Result<u64> {
    let path = events.join(category).join(name).join("id");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("tracepoint {category}:{name} ({})", path.display()))?;
    text.trim()
        .parse()
        .with_context(|| format!("tracepoint id in {} is not a number", path.display()))
}

/// What to count.
#[derive(Debug, Clone, Copy)]
pub enum EventKind {
    Tracepoint(u64),
    TaskClock,
}

/// One perf event on one thread, counting (never sampling), with `inherit`.
struct Counter {
    file: File,
}

impl Counter {
    fn open(kind: EventKind, tid: u32) -> std::io::Result<Counter> {
        let (type_, config) = match kind {
            EventKind::Tracepoint(id) => (sys::bindings::PERF_TYPE_TRACEPOINT, id),
            EventKind::TaskClock => (
                sys::bindings::PERF_TYPE_SOFTWARE,
                u64::from(sys::bindings::PERF_COUNT_SW_TASK_CLOCK),
            ),
        };
        let mut attr = sys::bindings::perf_event_attr {
            type_,
            size: std::mem::size_of::<sys::bindings::perf_event_attr>() as u32,
            config,
            ..Default::default()
        };
        attr.set_disabled(0);
        attr.set_inherit(1);
        let pid = libc::pid_t::try_from(tid)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        // SAFETY: `attr` is a fully initialised perf_event_attr whose `size` is its own size; it
        // requests a counting event (no sampling buffers). pid is a thread id, cpu -1 = any CPU.
        let fd = unsafe {
            sys::perf_event_open(
                &mut attr,
                pid,
                -1,
                -1,
                libc::c_ulong::from(sys::bindings::PERF_FLAG_FD_CLOEXEC),
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: perf_event_open returned a new fd that nothing else owns.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Counter {
            file: File::from(owned),
        })
    }

    /// Stops counting at once: the event is no longer scheduled with its thread, so a
    /// tracepoint's probe finds nothing to count and returns.
    fn disable(&self) {
        // SAFETY: the fd is a perf event this Counter owns; DISABLE takes no pointer. A
        // failure leaves the event counting until it is closed, which costs only time.
        unsafe {
            sys::ioctls::DISABLE(self.file.as_raw_fd(), 0);
        }
    }

    /// The count so far (this thread plus inherited children), read_format = 0: one u64.
    fn read(&self) -> std::io::Result<u64> {
        let mut buf = [0u8; 8];
        (&self.file).read_exact(&mut buf)?;
        Ok(u64::from_ne_bytes(buf))
    }
}

/// One event opened on every thread of a process.
pub struct ProcessEvent {
    counters: Vec<Counter>,
}

impl ProcessEvent {
    /// Opens `kind` on each of `tids`. A thread that exited in the meantime is skipped (its
    /// work is over); any other error fails the event.
    fn open(kind: EventKind, tids: &[u32]) -> anyhow::Result<ProcessEvent> {
        Self::open_until(kind, tids, None)
    }

    /// [`ProcessEvent::open`], giving up once `deadline` has passed (what was opened is then
    /// closed in the background, see [`close_in_background`]).
    fn open_until(
        kind: EventKind,
        tids: &[u32],
        deadline: Option<Instant>,
    ) -> anyhow::Result<ProcessEvent> {
        let mut counters = Vec::with_capacity(tids.len());
        for &tid in tids {
            if deadline.is_some_and(|d| Instant::now() > d) {
                let done = counters.len();
                close_in_background(vec![ProcessEvent { counters }]);
                bail!(OutOfTime(format!(
                    "{done} of {} threads had this event when the time for attaching ran out",
                    tids.len()
                )));
            }
            match Counter::open(kind, tid) {
                Ok(counter) => counters.push(counter),
                Err(err) if err.raw_os_error() == Some(libc::ESRCH) => {}
                Err(err) => {
                    return Err(anyhow!(err))
                        .with_context(|| format!("perf_event_open on thread {tid}"))
                }
            }
        }
        if counters.is_empty() {
            bail!("no thread of the process could be counted (did it exit?)");
        }
        Ok(ProcessEvent { counters })
    }

    fn disable(&self) {
        for counter in &self.counters {
            counter.disable();
        }
    }

    /// Sum over the threads (each including its inherited children).
    pub fn read(&self) -> anyhow::Result<u64> {
        let mut total = 0u64;
        for counter in &self.counters {
            total = total.saturating_add(counter.read().context("reading a perf counter")?);
        }
        Ok(total)
    }
}

/// Runs `open` on the thread ids of `pid` until the thread set is the same before and after
/// (a thread created by a not-yet-counted thread during the opening would otherwise be missed).
fn on_stable_threads<T>(
    pid: u32,
    mut open: impl FnMut(&[u32]) -> T,
) -> anyhow::Result<(Vec<u32>, T)> {
    let mut last_change = String::new();
    for _attempt in 0..5 {
        let before = procfs::thread_ids(pid)?;
        let opened = open(&before);
        let after = procfs::thread_ids(pid)?;
        if before == after {
            return Ok((before, opened));
        }
        last_change = format!("{} -> {} threads", before.len(), after.len());
    }
    bail!("the thread set of pid {pid} kept changing while counters were opened ({last_change})")
}

/// The tracepoint events on a set of threads.
struct TracepointSet {
    syscalls: Result<ProcessEvent, String>,
    breakdown: Vec<(&'static str, ProcessEvent)>,
    breakdown_missing: Vec<(String, String)>,
    sqes: Result<ProcessEvent, String>,
}

/// Why the tracepoints are not counted before [`ProcessCounters::attach_tracepoints`].
pub const NOT_ATTACHED: &str = "tracepoints not attached";

impl TracepointSet {
    fn not_attached() -> TracepointSet {
        TracepointSet {
            syscalls: Err(NOT_ATTACHED.into()),
            breakdown: Vec::new(),
            breakdown_missing: Vec::new(),
            sqes: Err(NOT_ATTACHED.into()),
        }
    }

    /// Opens every tracepoint on `tids`; `Err` only when `deadline` passed first (everything
    /// opened is then closed in the background).
    fn open(
        events: &anyhow::Result<PathBuf>,
        tids: &[u32],
        deadline: Option<Instant>,
    ) -> anyhow::Result<TracepointSet> {
        let mut out_of_time: Option<String> = None;
        let mut tracepoint = |category: &str, names: &[&str]| -> Result<ProcessEvent, String> {
            if let Some(why) = &out_of_time {
                return Err(why.clone());
            }
            let events = events.as_ref().map_err(|e| format!("{e:#}"))?;
            let mut last_err = None;
            for name in names {
                match tracepoint_id(events, category, name) {
                    Ok(id) => {
                        return ProcessEvent::open_until(EventKind::Tracepoint(id), tids, deadline)
                            .map_err(|e| {
                                if e.is::<OutOfTime>() {
                                    out_of_time = Some(format!("{category}:{name}: {e}"));
                                }
                                format!("{e:#}")
                            })
                    }
                    Err(e) => last_err = Some(format!("{e:#}")),
                }
            }
            Err(last_err.unwrap_or_else(|| "no tracepoint name given".into()))
        };
        let syscalls = tracepoint("raw_syscalls", &["sys_enter"]);
        let mut breakdown = Vec::new();
        let mut breakdown_missing = Vec::new();
        for &name in BREAKDOWN_SYSCALLS {
            match tracepoint("syscalls", &[&format!("sys_enter_{name}")]) {
                Ok(event) => breakdown.push((name, event)),
                Err(reason) => breakdown_missing.push((name.to_string(), reason)),
            }
        }
        // The tracepoint was io_uring_submit_sqe before Linux 6.0.
        let sqes = tracepoint("io_uring", &["io_uring_submit_req", "io_uring_submit_sqe"]);
        let set = TracepointSet {
            syscalls,
            breakdown,
            breakdown_missing,
            sqes,
        };
        if let Some(why) = out_of_time {
            let events = set
                .syscalls
                .into_iter()
                .chain(set.sqes)
                .chain(set.breakdown.into_iter().map(|(_, e)| e));
            close_in_background(events.collect());
            bail!("attaching ran out of time ({why})");
        }
        Ok(set)
    }
}

/// The time allowed for attaching the tracepoints ran out.
#[derive(Debug)]
struct OutOfTime(String);

impl std::fmt::Display for OutOfTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OutOfTime {}

/// Disables `events` now and closes them on a thread of their own (closing a tracepoint's
/// last event waits for an RCU grace period: see [`ProcessCounters::close_in_background`]).
fn close_in_background(events: Vec<ProcessEvent>) {
    for event in &events {
        event.disable();
    }
    drop_in_background(events);
}

/// Drops `counters` (already disabled) on a thread named `perf-close`, or here if no thread
/// can be started.
fn drop_in_background<T: Send + 'static>(counters: T) {
    if let Err(err) = std::thread::Builder::new()
        .name("perf-close".into())
        .spawn(move || drop(counters))
    {
        // The counters went into the closure and were dropped with it, here.
        eprintln!("fanbench: perf counters closed in the foreground ({err})");
    }
}

/// Every counter the harness keeps on a server process. Each is `Err(reason)` when it could
/// not be opened.
pub struct ProcessCounters {
    pub threads_at_open: u32,
    pub syscalls: Result<ProcessEvent, String>,
    pub breakdown: Vec<(&'static str, ProcessEvent)>,
    /// Syscalls of [`BREAKDOWN_SYSCALLS`] that could not be counted, with the reason.
    pub breakdown_missing: Vec<(String, String)>,
    pub sqes: Result<ProcessEvent, String>,
    pub task_clock: Result<ProcessEvent, String>,
}

/// One reading of every counter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CounterSample {
    pub syscalls: Option<u64>,
    pub breakdown: BTreeMap<String, u64>,
    pub sqes: Option<u64>,
    pub task_clock_ns: Option<u64>,
}

impl ProcessCounters {
    /// Opens task-clock, and the tracepoints too when `tracepoints`, on every current thread of
    /// `pid` (see the module docs). Call it while the process is quiet (before the load
    /// starts): the thread set must hold still while the counters are opened, and is retried a
    /// few times until it does.
    pub fn open(pid: u32, tracepoints: bool) -> anyhow::Result<ProcessCounters> {
        let events = tracefs_events_dir();
        let (tids, (task_clock, set)) = on_stable_threads(pid, |tids| {
            let task_clock =
                ProcessEvent::open(EventKind::TaskClock, tids).map_err(|e| format!("{e:#}"));
            // Without a deadline opening cannot run out of time, its only failure.
            let set = if tracepoints {
                TracepointSet::open(&events, tids, None)
                    .unwrap_or_else(|_| TracepointSet::not_attached())
            } else {
                TracepointSet::not_attached()
            };
            (task_clock, set)
        })?;
        Ok(ProcessCounters {
            threads_at_open: u32::try_from(tids.len()).unwrap_or(u32::MAX),
            syscalls: set.syscalls,
            breakdown: set.breakdown,
            breakdown_missing: set.breakdown_missing,
            sqes: set.sqes,
            task_clock,
        })
    }

    /// Opens the tracepoints on every current thread of `pid`, now, under load (the counters
    /// opened by [`ProcessCounters::open`] without them keep counting).
    pub fn attach_tracepoints(
        &mut self,
        pid: u32,
        deadline: Option<Instant>,
    ) -> anyhow::Result<()> {
        let events = tracefs_events_dir();
        let (_, set) = on_stable_threads(pid, |tids| TracepointSet::open(&events, tids, deadline))?;
        let set = set?;
        self.syscalls = set.syscalls;
        self.breakdown = set.breakdown;
        self.breakdown_missing = set.breakdown_missing;
        self.sqes = set.sqes;
        Ok(())
    }

    /// Stops every counter now and closes them on a thread of their own. When this process is
    /// a tracepoint's last user, closing its last event waits for an RCU grace period under the
    /// kernel's `event_mutex`: about a second for all of them, one after the other. Disabled
    /// first, the events cost the process nothing meanwhile, and the caller goes on; opening
    /// tracepoints takes the same mutex, so the next opening waits for these closes if they are
    /// not done.
    pub fn close_in_background(self) {
        let tracepoints = self
            .syscalls
            .iter()
            .chain(self.sqes.iter())
            .chain(self.breakdown.iter().map(|(_, e)| e));
        for event in tracepoints.chain(self.task_clock.iter()) {
            event.disable();
        }
        drop_in_background(self);
    }

    /// Reads every counter. A read failure turns that value into `None`.
    pub fn sample(&self) -> CounterSample {
        let read = |event: &Result<ProcessEvent, String>| event.as_ref().ok()?.read().ok();
        CounterSample {
            syscalls: read(&self.syscalls),
            breakdown: self
                .breakdown
                .iter()
                .filter_map(|(name, event)| Some((name.to_string(), event.read().ok()?)))
                .collect(),
            sqes: read(&self.sqes),
            task_clock_ns: read(&self.task_clock),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` only when this process may count tracepoints (root with tracefs); otherwise
    /// says so and returns (the counters are then reported as null with a reason).
    fn with_counters_on_self(f: impl FnOnce(&ProcessCounters)) {
        let pid = std::process::id();
        let counters = match ProcessCounters::open(pid, true) {
            Ok(c) if c.syscalls.is_ok() => c,
            Ok(c) => {
                eprintln!("skipping: raw_syscalls unavailable: {:?}", c.syscalls.err());
                return;
            }
            Err(e) => {
                eprintln!("skipping: {e:#}");
                return;
            }
        };
        f(&counters)
    }

    #[test]
    fn attaching_gives_up_when_its_time_runs_out_and_not_before() {
        // A child whose thread set holds still (this test process's does not: other tests
        // start and end threads).
        struct Child(std::process::Child);
        impl Drop for Child {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let child = Child(
            std::process::Command::new("sleep")
                .arg("30")
                .spawn()
                .expect("spawning sleep"),
        );
        let pid = child.0.id();
        let mut counters = match ProcessCounters::open(pid, false) {
            Ok(c) if c.task_clock.is_ok() => c,
            Ok(c) => {
                return eprintln!("skipping: task-clock unavailable: {:?}", c.task_clock.err())
            }
            Err(e) => return eprintln!("skipping: {e:#}"),
        };
        if tracefs_events_dir().is_err() {
            return eprintln!("skipping: no tracefs here");
        }
        let past = Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(1));
        let err = counters
            .attach_tracepoints(pid, Some(past))
            .expect_err("a deadline already passed");
        assert!(format!("{err:#}").contains("ran out of time"), "{err:#}");
        assert!(counters.syscalls.is_err(), "nothing is left attached");
        let later = Instant::now() + std::time::Duration::from_secs(30);
        counters
            .attach_tracepoints(pid, Some(later))
            .expect("attaching in time");
        assert!(
            counters.syscalls.is_ok(),
            "{:?}",
            counters.syscalls.as_ref().err()
        );
    }

    #[test]
    fn writes_made_by_a_thread_created_after_opening_are_counted() {
        with_counters_on_self(|counters| {
            let before = counters.sample();
            let writes = 200u64;
            std::thread::spawn(move || {
                let mut null = std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/null")
                    .expect("open /dev/null");
                for _ in 0..writes {
                    std::io::Write::write_all(&mut null, b"x").expect("write");
                }
            })
            .join()
            .expect("thread");
            let after = counters.sample();
            let delta = |s: &CounterSample| s.breakdown.get("write").copied();
            let (Some(b), Some(a)) = (delta(&before), delta(&after)) else {
                panic!("write tracepoint not counted");
            };
            // Other test threads may write too, so at least, not exactly.
            assert!(a - b >= writes, "counted {} writes, made {writes}", a - b);
            let total = after.syscalls.expect("total") - before.syscalls.expect("total");
            assert!(total >= writes);
        });
    }
}
