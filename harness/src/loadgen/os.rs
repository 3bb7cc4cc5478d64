//! Thin wrappers over the Linux calls the load generator needs: the monotonic clock, absolute
//! sleeps, CPU pinning, timer slack, real-time priority and CPU accounting.

use std::io;

use anyhow::{bail, Context, Result};

/// CLOCK_MONOTONIC in nanoseconds (the clock stamped into payloads).
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn timespec_from_ns(ns: u64) -> libc::timespec {
    libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    }
}

/// Sleeps until CLOCK_MONOTONIC reaches `deadline_ns` (absolute, so an interrupted or late
/// wake-up never accumulates drift).
pub fn sleep_until_ns(deadline_ns: u64) {
    let ts = timespec_from_ns(deadline_ns);
    loop {
        // SAFETY: `ts` is a valid timespec; a null remainder is allowed with TIMER_ABSTIME.
        let rc = unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &ts,
                std::ptr::null_mut(),
            )
        };
        if rc != libc::EINTR {
            return;
        }
    }
}

/// Pins the calling thread to one CPU.
pub fn pin_current_thread(cpu: usize) -> Result<()> {
    crate::cpus::pin_current_thread(&[cpu])
}

/// Sets the calling thread's timer slack (the kernel's default of 50 us would make every
/// timed wake-up up to 50 us late).
pub fn set_timer_slack_ns(slack_ns: u64) -> Result<()> {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, slack_ns as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error()).context("setting timer slack");
    }
    Ok(())
}

/// Gives the calling thread SCHED_FIFO priority 1 so that its wake-ups preempt the subscriber
/// threads sharing its CPU. Needs root or CAP_SYS_NICE; the error says why it was refused.
pub fn set_realtime_priority() -> Result<()> {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    if rc != 0 {
        return Err(io::Error::last_os_error()).context("setting SCHED_FIFO priority 1");
    }
    Ok(())
}

/// Raises the soft limit on open files to at least `needed` (up to the hard limit); errors when
/// the hard limit is lower than `needed`.
pub fn ensure_fd_limit(needed: u64) -> Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error()).context("getrlimit(RLIMIT_NOFILE)");
    }
    if limit.rlim_cur >= needed {
        return Ok(());
    }
    if limit.rlim_max < needed {
        bail!(
            "{needed} open files are needed but the hard limit is {} (raise it with ulimit -Hn)",
            limit.rlim_max
        );
    }
    limit.rlim_cur = needed;
    // SAFETY: `limit` is a valid rlimit whose soft value does not exceed its hard value.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(io::Error::last_os_error()).context("setrlimit(RLIMIT_NOFILE)");
    }
    Ok(())
}

/// The calling thread's kernel thread id.
pub fn gettid() -> i32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// CPU time (ns) a thread of this process has run, from `/proc/self/task/<tid>/schedstat`.
pub fn thread_cpu_ns(tid: i32) -> Result<u64> {
    let path = format!("/proc/self/task/{tid}/schedstat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let first = text.split_whitespace().next().unwrap_or("");
    first
        .parse()
        .with_context(|| format!("parsing the run time in {path}: {text:?}"))
}

/// User and system CPU time of this whole process, in microseconds.
pub fn process_cpu_us() -> Result<(u64, u64)> {
    // SAFETY: rusage is plain data; all-zero is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return Err(io::Error::last_os_error()).context("getrusage(RUSAGE_SELF)");
    }
    let us = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    Ok((us(usage.ru_utime), us(usage.ru_stime)))
}

/// Confines the calling thread to some CPUs until dropped, then gives back the CPUs it had.
pub struct AffinityGuard {
    saved: libc::cpu_set_t,
    /// Not Send: it must restore the thread that made it.
    _thread_bound: std::marker::PhantomData<*const ()>,
}

impl AffinityGuard {
    pub fn pin(cpus: &[usize]) -> Result<Self> {
        // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
        let mut saved: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: pid 0 is the calling thread; `saved` is a writable cpu_set_t of the size passed.
        let rc = unsafe {
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut saved)
        };
        if rc != 0 {
            return Err(io::Error::last_os_error()).context("reading the thread's CPU affinity");
        }
        crate::cpus::pin_current_thread(cpus)?;
        Ok(Self {
            saved,
            _thread_bound: std::marker::PhantomData,
        })
    }
}

impl Drop for AffinityGuard {
    fn drop(&mut self) {
        // SAFETY: pid 0 is the calling thread (the guard is not Send, so it is dropped on the
        // thread that made it); `saved` is the set it had before.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.saved) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_clock_never_goes_back() {
        let a = now_ns();
        let b = now_ns();
        assert!(b >= a);
    }

    #[test]
    fn absolute_sleep_does_not_return_before_its_deadline() {
        let deadline = now_ns() + 2_000_000;
        sleep_until_ns(deadline);
        assert!(now_ns() >= deadline);
    }

    #[test]
    fn thread_cpu_time_of_the_calling_thread_is_readable_and_grows() {
        let tid = gettid();
        let before = thread_cpu_ns(tid).expect("schedstat readable");
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        assert!(thread_cpu_ns(tid).expect("schedstat readable") > before);
    }

    #[test]
    fn fd_limit_already_met_is_left_alone_and_an_impossible_one_is_an_error() {
        assert!(ensure_fd_limit(16).is_ok());
        assert!(
            ensure_fd_limit(u64::MAX - 1).is_err(),
            "beyond any limit the kernel allows"
        );
    }

    #[test]
    fn pinning_to_a_cpu_that_does_not_exist_is_an_error() {
        let handle = std::thread::spawn(|| pin_current_thread(100_000).is_err());
        assert!(handle.join().expect("thread ran"));
    }
}
