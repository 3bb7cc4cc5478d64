//! Running a load test: connecting everyone, driving the window from the coordinating
//! thread (hooks, per-second samples, the pacer), waiting for in-flight messages, and the load
//! generator's own CPU. See the module docs of [`super`] for the timeline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use tokio::sync::watch;

use super::report::{assemble, CpuUsage, LoadReport, ReceivePath};
use super::schedule::Schedule;
use super::subscriber::{self, Phase, SubPlan};
use super::{
    cpustat, os, plan_subscribers, publisher, ring, validate, LoadSpec, Share, Timeline,
    WindowHooks, GRACE_MAX, GRACE_MIN, PACER_SPIN_SHARE, READY_TIMEOUT, SATURATION_UTILISATION,
    START_LEAD_NS,
};

/// Runs one load test against `spec.target` and reports what it measured.
pub fn run(spec: &LoadSpec, hooks: &mut dyn WindowHooks) -> Result<LoadReport> {
    run_share(spec, &Share::whole(spec), hooks)
}

/// Runs `share` of the load test `spec` (see [`Share`]); the report covers that share only.
pub fn run_share(
    spec: &LoadSpec,
    share: &Share,
    hooks: &mut dyn WindowHooks,
) -> Result<LoadReport> {
    validate(spec)?;
    let all = spec.publishers * spec.subscribers_per_publisher;
    ensure!(
        share.subscribers.start < share.subscribers.end && share.subscribers.end <= all,
        "subscriber share {:?} is empty or outside the run's 0..{all}",
        share.subscribers
    );
    let connections = u64::from(spec.publishers) * (u64::from(spec.subscribers_per_publisher) + 1);
    os::ensure_fd_limit(connections + 64)
        .context("raising the open-file limit for the connections")?;
    let run_token = share
        .run_token
        .clone()
        .unwrap_or_else(|| format!("{:x}{:x}", std::process::id(), os::now_ns() & 0xff_ffff));
    let subject = |k: u32| format!("fanbench.{run_token}.{k}");
    let mut plans = plan_subscribers(spec, subject);
    plans.retain(|p| share.subscribers.contains(&p.id));
    let receiver_cpus = receiver_cpus(&spec.client_cpus);
    let thread_count = receiver_cpus.len().max(1);
    let (ready_tx, ready_rx) = mpsc::channel();
    let shared = Arc::new(subscriber::Shared {
        target: spec.target,
        payload_bytes: spec.payload_bytes,
        slow_read_bytes_per_s: spec.slow_read_bytes_per_s,
        ready: Mutex::new(ready_tx),
        unique_in_window: AtomicU64::new(0),
        max_latency_ns: AtomicU64::new(0),
        threads: Mutex::new(Vec::new()),
        mark_ns: AtomicU64::new(u64::MAX),
        pacer: Mutex::new(None),
    });
    let (phase_tx, phase_rx) = watch::channel(Phase::Connecting);
    let receive_path = ReceivePath::choose();
    let mut threads = Vec::new();
    let mut spawn_error = None;
    let mut ring_thread_0 = false;
    // Healthy subscribers are dealt round-robin over one receiver thread per client CPU; slow
    // ones (a trickle reader needs no speed) share one readiness thread on the first CPU.
    let healthy: Vec<&SubPlan> = plans.iter().filter(|p| !p.slow).collect();
    let slow: Vec<SubPlan> = plans.iter().filter(|p| p.slow).cloned().collect();
    for t in 0..thread_count {
        let mine: Vec<SubPlan> = healthy
            .iter()
            .enumerate()
            .filter(|(i, _)| i % thread_count == t)
            .map(|(_, p)| (*p).clone())
            .collect();
        if mine.is_empty() {
            continue;
        }
        let cpu = receiver_cpus.get(t).copied();
        let spawned = if receive_path.ring_flags.is_some() {
            ring::spawn_thread(t, cpu, mine, Arc::clone(&shared), phase_rx.clone())
        } else {
            subscriber::spawn_thread(t, cpu, mine, Arc::clone(&shared), phase_rx.clone())
        };
        match spawned {
            Ok(handle) => {
                ring_thread_0 |= t == 0 && receive_path.ring_flags.is_some();
                threads.push(handle)
            }
            Err(e) => {
                spawn_error = Some(e);
                break;
            }
        }
    }
    if !slow.is_empty() && spawn_error.is_none() {
        match subscriber::spawn_thread(
            thread_count,
            spec.client_cpus.first().copied(),
            slow,
            Arc::clone(&shared),
            phase_rx.clone(),
        ) {
            Ok(handle) => threads.push(handle),
            Err(e) => spawn_error = Some(e),
        }
    }
    // The coordinator (window edges, hooks, CPU sampling) runs on the client CPUs too, so
    // nothing of the instrument's lands on the server's.
    let pinned = if spec.client_cpus.is_empty() {
        None
    } else {
        Some(os::AffinityGuard::pin(&spec.client_cpus).context("pinning the coordinator")?)
    };
    // With a CPU of its own the pacer has a thread and may spin; otherwise it shares the first
    // client CPU with receiver thread 0 and, on the ring path, runs in that thread's loop.
    let pacer_in_ring = ring_thread_0 && spec.client_cpus.len() < 3;
    let driven = match spawn_error {
        Some(e) => Err(e),
        None => drive(
            spec,
            share,
            &plans,
            &shared,
            &ready_rx,
            &phase_tx,
            &subject,
            hooks,
            pacer_in_ring,
        ),
    };
    phase_tx.send_replace(Phase::Stop);
    let mut reports: Vec<subscriber::ThreadReport> = Vec::new();
    let mut thread_errors = Vec::new();
    for handle in threads {
        match handle.join() {
            Ok(Ok(report)) => reports.push(report),
            Ok(Err(e)) => thread_errors.push(format!("{e:#}")),
            Err(_) => thread_errors.push("a subscriber thread panicked".to_string()),
        }
    }
    drop(pinned);
    let driven = driven?;
    if !thread_errors.is_empty() {
        bail!("subscriber threads failed: {}", thread_errors.join("; "));
    }
    Ok(assemble(spec, &plans, driven, reports, receive_path))
}

/// What the coordinator measured itself.
pub(super) struct Driven {
    pub(super) timeline: Timeline,
    /// The pacer's report when it ran on a thread of its own (otherwise a receiver thread's
    /// report carries it).
    pub(super) pacer: Option<publisher::PacerReport>,
    pub(super) cpu: CpuUsage,
    pub(super) window_ns: u64,
    pub(super) grace_ns: u64,
    /// Highest steal share of any CPU, per second of the window (None: /proc/stat unreadable).
    pub(super) steal_per_window: Vec<Option<f64>>,
    /// Whether the hooks set a mark.
    pub(super) marked: bool,
    /// The latest any boundary's hooks ran after the boundary.
    pub(super) boundary_late_ns: u64,
}

#[allow(clippy::too_many_arguments)]
fn drive(
    spec: &LoadSpec,
    share: &Share,
    plans: &[SubPlan],
    shared: &Arc<subscriber::Shared>,
    ready_rx: &mpsc::Receiver<Result<(), String>>,
    phase_tx: &watch::Sender<Phase>,
    subject: &dyn Fn(u32) -> String,
    hooks: &mut dyn WindowHooks,
    pacer_in_ring: bool,
) -> Result<Driven> {
    wait_until_subscribed(plans.len(), ready_rx)?;
    let senders = if share.publishers { spec.publishers } else { 0 };
    let pubs = (0..senders)
        .map(|k| publisher::PublisherConn::connect(spec.target, k, &subject(k), spec.payload_bytes))
        .collect::<Result<Vec<_>>>()?;

    let start_ns = match hooks.ready()? {
        Some(at) => {
            let now = os::now_ns();
            ensure!(
                at > now,
                "the common start instant passed {} us before this process was ready",
                (now - at) / 1000
            );
            at
        }
        None => os::now_ns() + START_LEAD_NS,
    };
    let window_start_ns = start_ns + spec.warmup.as_nanos() as u64;
    let window_end_ns = window_start_ns + spec.duration.as_nanos() as u64;
    let timeline = Timeline {
        window_start_ns,
        window_end_ns,
        schedules: Arc::new(Schedule::staggered(
            start_ns,
            spec.rate_per_publisher,
            spec.publishers,
        )?),
        publisher_clock_offset_ns: share.publisher_clock_offset_ns,
    };
    let drain_deadline_ns = window_end_ns + GRACE_MAX.as_nanos() as u64;
    let pacer_spin_share = if spec.client_cpus.len() >= 3 {
        1.0
    } else {
        PACER_SPIN_SHARE
    };
    // The ring loop takes the pacer from the hand-over slot when it sees the run start, so
    // the slot is filled before the phase changes.
    let thread_pubs = if pacer_in_ring {
        let pacer = publisher::Pacer::new(pubs, &timeline, spec.payload_bytes, pacer_spin_share);
        *shared
            .pacer
            .lock()
            .map_err(|_| anyhow::anyhow!("the pacer's hand-over lock is poisoned"))? = Some(pacer);
        None
    } else {
        Some(pubs)
    };
    phase_tx.send_replace(Phase::Running(timeline.clone()));
    let pacer_thread = match thread_pubs {
        None => None,
        Some(pubs) => {
            let pacer_cpu = spec.client_cpus.first().copied();
            let pacer_timeline = timeline.clone();
            let pacer_shared = Arc::clone(shared);
            let payload_bytes = spec.payload_bytes;
            // The pacer stays alive until the window's end has been sampled, so that its CPU
            // time can still be read from /proc (a thread that exited has no entry there).
            let (release_pacer, pacer_released) = mpsc::channel::<()>();
            let handle = std::thread::Builder::new()
                .name("loadgen-pacer".into())
                .spawn(move || {
                    let pinned = pacer_cpu.map(os::pin_current_thread).transpose();
                    if let Ok(mut threads) = pacer_shared.threads.lock() {
                        threads.push(("pacer".to_string(), os::gettid()));
                    }
                    let mut report = publisher::run_pacer(
                        pubs,
                        &pacer_timeline,
                        payload_bytes,
                        drain_deadline_ns,
                        pacer_spin_share,
                    );
                    if let Err(e) = pinned {
                        report.errors.push(format!("pacer: {e:#}"));
                    }
                    // Returns when released or when the coordinator is gone.
                    let _ = pacer_released.recv();
                    report
                })
                .context("spawning the pacer thread")?;
            Some((handle, release_pacer))
        }
    };

    // How late the hooks ran after each boundary: the server's counters are read then, so
    // a late reading covers more than the second it closes.
    let mut boundary_late_ns = 0u64;
    let mut late = |boundary_ns: u64| {
        boundary_late_ns = boundary_late_ns.max(os::now_ns().saturating_sub(boundary_ns));
    };
    sleep_until_or_interrupted(window_start_ns)?;
    late(window_start_ns);
    hooks.measure_start();
    let cpu_start = CpuSample::take(shared);
    let started = Instant::now();
    // /proc/stat at every second of the window: host steal per window, client CPUs' busy share.
    let mut stat_marks = vec![cpustat::snapshot().ok()];
    for w in 1..timeline.windows() as u64 {
        let boundary_ns = window_start_ns + w * 1_000_000_000;
        sleep_until_or_interrupted(boundary_ns)?;
        stat_marks.push(cpustat::snapshot().ok());
        late(boundary_ns);
        hooks.second_done(w as u32 - 1);
        if let Some(mark) = hooks.mark() {
            let _ = shared.mark_ns.compare_exchange(
                u64::MAX,
                mark,
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
    }
    sleep_until_or_interrupted(window_end_ns)?;
    late(window_end_ns);
    hooks.measure_end();
    let cpu_end = CpuSample::take(shared);
    stat_marks.push(cpustat::snapshot().ok());
    hooks.second_done(timeline.windows() as u32 - 1);
    let window_ns = started.elapsed().as_nanos() as u64;
    let pacer_thread = pacer_thread.map(|(handle, release)| {
        drop(release);
        handle
    });
    let steal_per_window: Vec<Option<f64>> = stat_marks
        .windows(2)
        .map(|pair| match (&pair[0], &pair[1]) {
            (Some(a), Some(b)) => cpustat::shares(a, b, &[])
                .iter()
                .map(|s| s.steal)
                .reduce(f64::max),
            _ => None,
        })
        .collect();
    let client_cpu_shares = match (stat_marks.first(), stat_marks.last()) {
        (Some(Some(a)), Some(Some(b))) => Some(cpustat::shares(a, b, &spec.client_cpus)),
        _ => None,
    };

    let healthy_expected: u64 = plans
        .iter()
        .filter(|p| !p.slow)
        .map(|p| {
            let due = timeline.schedules[p.publisher as usize]
                .seqs_due_in(window_start_ns, window_end_ns);
            due.end - due.start
        })
        .sum();
    let grace_ns = wait_for_in_flight(shared, healthy_expected, window_end_ns);
    let pacer = match pacer_thread {
        Some(handle) => Some(
            handle
                .join()
                .map_err(|_| anyhow::anyhow!("the pacer thread panicked"))?,
        ),
        None => None,
    };
    let mut cpu = cpu_usage(
        &cpu_start,
        &cpu_end,
        window_ns,
        client_cores(&spec.client_cpus),
    );
    match client_cpu_shares {
        Some(shares) => cpu.client_cpus = shares,
        None => cpu.client_cpus_null_reason = Some("/proc/stat could not be read".into()),
    }
    Ok(Driven {
        timeline,
        pacer,
        cpu,
        window_ns,
        grace_ns,
        steal_per_window,
        marked: shared.mark_ns.load(std::sync::atomic::Ordering::Relaxed) != u64::MAX,
        boundary_late_ns,
    })
}

/// With three or more client CPUs the pacer gets the first to itself (and may spin before a
/// deadline); otherwise the receivers use every client CPU and the pacer shares the first.
fn receiver_cpus(client_cpus: &[usize]) -> Vec<usize> {
    if client_cpus.len() >= 3 {
        client_cpus[1..].to_vec()
    } else {
        client_cpus.to_vec()
    }
}

/// Cores the load generator runs on: the distinct client CPUs, or every CPU this process may
/// use when none were given.
fn client_cores(client_cpus: &[usize]) -> usize {
    if client_cpus.is_empty() {
        return std::thread::available_parallelism().map_or(1, |n| n.get());
    }
    let mut distinct = client_cpus.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    distinct.len()
}

fn wait_until_subscribed(
    total: usize,
    ready_rx: &mpsc::Receiver<Result<(), String>>,
) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut ready = 0;
    while ready < total {
        crate::interrupt::check()?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("only {ready} of {total} subscribers were subscribed after {READY_TIMEOUT:?}")
        }
        match ready_rx.recv_timeout(left.min(crate::interrupt::POLL)) {
            Ok(Ok(())) => ready += 1,
            Ok(Err(e)) => bail!("a subscriber could not subscribe: {e}"),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                bail!("only {ready} of {total} subscribers were subscribed; the rest are gone")
            }
        }
    }
    Ok(())
}

/// Sleeps until `deadline_ns` (CLOCK_MONOTONIC), in slices short enough that a harness told
/// to stop abandons the repetition within [`crate::interrupt::POLL`].
fn sleep_until_or_interrupted(deadline_ns: u64) -> Result<()> {
    let poll_ns = crate::interrupt::POLL.as_nanos() as u64;
    loop {
        crate::interrupt::check()?;
        let now = os::now_ns();
        if now >= deadline_ns {
            return Ok(());
        }
        os::sleep_until_ns(deadline_ns.min(now + poll_ns));
    }
}

/// Waits after the window until the healthy subscribers have `expected` distinct in-window
/// messages, or for the grace period; returns how long it waited.
fn wait_for_in_flight(shared: &subscriber::Shared, expected: u64, window_end_ns: u64) -> u64 {
    loop {
        let now = os::now_ns();
        let waited = now.saturating_sub(window_end_ns);
        if shared.unique_in_window.load(Ordering::Relaxed) >= expected
            || crate::interrupt::received().is_some()
        {
            return waited;
        }
        let grace = (2 * shared.max_latency_ns.load(Ordering::Relaxed))
            .clamp(GRACE_MIN.as_nanos() as u64, GRACE_MAX.as_nanos() as u64);
        if waited >= grace {
            return waited;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

struct CpuSample {
    process_us: Result<(u64, u64), String>,
    threads: Vec<(String, Result<u64, String>)>,
}

impl CpuSample {
    fn take(shared: &subscriber::Shared) -> Self {
        let threads = shared
            .threads
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|(name, tid)| (name, os::thread_cpu_ns(tid).map_err(|e| format!("{e:#}"))))
            .collect();
        Self {
            process_us: os::process_cpu_us().map_err(|e| format!("{e:#}")),
            threads,
        }
    }
}

fn cpu_usage(start: &CpuSample, end: &CpuSample, window_ns: u64, cores: usize) -> CpuUsage {
    let window_s = window_ns as f64 / 1e9;
    let (user_s, sys_s) = match (&start.process_us, &end.process_us) {
        (Ok((u0, s0)), Ok((u1, s1))) => (
            u1.saturating_sub(*u0) as f64 / 1e6,
            s1.saturating_sub(*s0) as f64 / 1e6,
        ),
        _ => (f64::NAN, f64::NAN),
    };
    let utilisation = (user_s + sys_s) / (window_s * cores as f64);
    let mut busiest: Option<(f64, String)> = None;
    let mut thread_error = None;
    for (name, cpu_end) in &end.threads {
        let cpu_start = start
            .threads
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c);
        match (cpu_start, cpu_end) {
            (Some(Ok(a)), Ok(b)) => {
                let share = b.saturating_sub(*a) as f64 / window_ns as f64;
                if busiest.as_ref().is_none_or(|(s, _)| share > *s) {
                    busiest = Some((share, name.clone()));
                }
            }
            (Some(Err(e)), _) | (_, Err(e)) => thread_error = Some(e.clone()),
            (None, Ok(_)) => thread_error = Some(format!("{name} started after the window began")),
        }
    }
    let thread_cpu_null_reason = match (&busiest, thread_error) {
        (_, Some(e)) => Some(e),
        (None, None) => Some("no load-generator thread was registered".to_string()),
        (Some(_), None) => None,
    };
    let busiest = if thread_cpu_null_reason.is_some() {
        None
    } else {
        busiest
    };
    let saturated = utilisation > SATURATION_UTILISATION
        || busiest
            .as_ref()
            .is_some_and(|(s, _)| *s > SATURATION_UTILISATION);
    CpuUsage {
        user_s,
        sys_s,
        window_s,
        cores,
        utilisation,
        busiest_thread_utilisation: busiest.as_ref().map(|(s, _)| *s),
        busiest_thread: busiest.map(|(_, n)| n),
        thread_cpu_null_reason,
        saturated,
        client_cpus: Vec::new(),
        client_cpus_null_reason: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(process_us: (u64, u64), threads: &[(&str, u64)]) -> CpuSample {
        CpuSample {
            process_us: Ok(process_us),
            threads: threads
                .iter()
                .map(|(n, ns)| (n.to_string(), Ok(*ns)))
                .collect(),
        }
    }

    #[test]
    fn cpu_utilisation_is_relative_to_client_cores_and_flags_saturation() {
        let start = sample((0, 0), &[("pacer", 0), ("subscriber thread 0", 0)]);
        // 1.5 s user + 0.3 s sys over a 1 s window on 2 cores: 90% is not above the bound.
        let end = sample(
            (1_500_000, 300_000),
            &[("pacer", 100_000_000), ("subscriber thread 0", 800_000_000)],
        );
        let cpu = cpu_usage(&start, &end, 1_000_000_000, 2);
        assert!((cpu.utilisation - 0.9).abs() < 1e-9);
        assert!(!cpu.saturated);
        assert_eq!(cpu.busiest_thread.as_deref(), Some("subscriber thread 0"));
        let end = sample(
            (1_600_000, 300_000),
            &[("pacer", 0), ("subscriber thread 0", 0)],
        );
        assert!(cpu_usage(&start, &end, 1_000_000_000, 2).saturated);
    }

    #[test]
    fn one_saturated_thread_flags_saturation_even_with_idle_cores() {
        let start = sample((0, 0), &[("pacer", 0), ("subscriber thread 0", 0)]);
        let end = sample(
            (950_000, 0),
            &[("pacer", 0), ("subscriber thread 0", 950_000_000)],
        );
        let cpu = cpu_usage(&start, &end, 1_000_000_000, 4);
        assert!(cpu.utilisation < 0.3);
        assert!(cpu.saturated);
    }

    #[test]
    fn unreadable_thread_cpu_is_null_with_a_reason() {
        let start = sample((0, 0), &[("pacer", 0)]);
        let mut end = sample((1000, 0), &[]);
        end.threads.push(("pacer".into(), Err("gone".into())));
        let cpu = cpu_usage(&start, &end, 1_000_000_000, 1);
        assert_eq!(cpu.busiest_thread_utilisation, None);
        assert_eq!(cpu.thread_cpu_null_reason.as_deref(), Some("gone"));
    }

    #[test]
    fn duplicate_client_cpus_count_once() {
        assert_eq!(client_cores(&[1, 1]), 1);
        assert_eq!(client_cores(&[3, 1, 2]), 3);
    }

    #[test]
    fn a_share_of_the_subscribers_outside_the_run_is_an_error() {
        let spec = LoadSpec {
            target: "127.0.0.1:1".parse().expect("addr"),
            publishers: 1,
            subscribers_per_publisher: 3,
            rate_per_publisher: 1.0,
            payload_bytes: 64,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(1),
            slow_subscribers: 0,
            slow_read_bytes_per_s: 0,
            client_cpus: Vec::new(),
        };
        assert_eq!(Share::whole(&spec).subscribers, 0..3);
        let share = Share {
            subscribers: 2..4,
            ..Share::whole(&spec)
        };
        let err = run_share(&spec, &share, &mut NoHooks).expect_err("outside");
        assert!(err.to_string().contains("outside"), "{err}");
    }

    struct NoHooks;
    impl WindowHooks for NoHooks {
        fn measure_start(&mut self) {}
        fn measure_end(&mut self) {}
    }
}
