//! The executor: spawning, wakers (local and cross-thread), fairness, counters.

mod common;

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::io::Write;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::{each_policy, runtime, watchdog};
use fanbench_rt::AsyncReadRent;
use fanbench_uring::{spawn, SubmitPolicy};

/// A one-shot signal set from any thread.
#[derive(Default)]
struct Signal {
    set: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Signal {
    fn fire(&self) {
        self.set.store(true, Ordering::SeqCst);
        if let Some(w) = self.waker.lock().unwrap().take() {
            w.wake();
        }
    }

    fn wait(self: &Arc<Self>) -> impl Future<Output = ()> + use<> {
        let this = self.clone();
        poll_fn(move |cx| {
            *this.waker.lock().unwrap() = Some(cx.waker().clone());
            if this.set.load(Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn spawned_tasks_all_run_and_block_on_returns_the_main_output() {
    for (policy, mut rt) in each_policy() {
        let done = Rc::new(Cell::new(0));
        let d = done.clone();
        let out = rt.block_on(async move {
            for i in 0..1000 {
                let d = d.clone();
                spawn(async move {
                    if i % 2 == 0 {
                        YieldNow(false).await;
                    }
                    d.set(d.get() + 1);
                });
            }
            while d.get() < 1000 {
                YieldNow(false).await;
            }
            42
        });
        assert_eq!(out, 42, "{policy}");
        assert_eq!(done.get(), 1000, "{policy}");
        assert_eq!(
            rt.task_count(),
            0,
            "{policy}: finished tasks leave the slab"
        );
        let stats = rt.stats();
        assert_eq!(stats.tasks_spawned, 1000);
        assert!(stats.task_polls >= 1500, "{policy}: {stats:?}");
    }
}

#[test]
fn cross_thread_wake_ends_a_park_through_the_eventfd() {
    for (policy, mut rt) in each_policy() {
        let signal = Arc::new(Signal::default());
        let s = signal.clone();
        let waker_thread = std::thread::spawn(move || {
            // Give the runtime time to run out of work and park in the kernel.
            std::thread::sleep(Duration::from_millis(100));
            s.fire();
        });
        rt.block_on(watchdog("cross-thread wake", signal.wait()));
        waker_thread.join().unwrap();
        let stats = rt.stats();
        assert!(stats.remote_wakes >= 1, "{policy}: {stats:?}");
        assert!(
            stats.eventfd_wakes >= 1,
            "{policy}: a parked runtime must be woken through the eventfd: {stats:?}"
        );
    }
}

#[test]
fn many_cross_thread_wakes_of_spawned_tasks_all_arrive() {
    const TASKS: usize = 2000;
    let mut rt = runtime(SubmitPolicy::Eager);
    let signals: Vec<Arc<Signal>> = (0..TASKS).map(|_| Arc::default()).collect();
    let for_thread = signals.clone();
    let woken = Rc::new(Cell::new(0usize));
    let w = woken.clone();
    rt.block_on(watchdog("2000 remote wakes", async move {
        for s in &signals {
            let (s, w) = (s.clone(), w.clone());
            spawn(async move {
                s.wait().await;
                w.set(w.get() + 1);
            });
        }
        let thread = std::thread::spawn(move || {
            for (i, s) in for_thread.iter().enumerate() {
                s.fire();
                if i % 100 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        while w.get() < TASKS {
            fanbench_uring::sleep(Duration::from_millis(1)).await;
        }
        thread.join().unwrap();
    }));
    assert_eq!(woken.get(), TASKS);
}

#[test]
fn waking_a_task_after_its_runtime_is_dropped_is_harmless() {
    let signal = Arc::new(Signal::default());
    {
        let mut rt = runtime(SubmitPolicy::Eager);
        let s = signal.clone();
        rt.block_on(async move {
            spawn(async move { s.wait().await });
            YieldNow(false).await;
        });
        assert_eq!(rt.task_count(), 1);
    }
    // The task (and its waker's runtime) is gone; the stored waker must still be callable.
    let thread = {
        let s = signal.clone();
        std::thread::spawn(move || s.fire())
    };
    thread.join().unwrap();
    signal.fire();
}

#[test]
fn dropping_the_runtime_drops_unfinished_tasks() {
    struct Guard(Arc<AtomicUsize>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicUsize::new(0));
    let mut rt = runtime(SubmitPolicy::Eager);
    let d = dropped.clone();
    rt.block_on(async move {
        for _ in 0..10 {
            let g = Guard(d.clone());
            spawn(async move {
                let _g = g;
                std::future::pending::<()>().await;
            });
        }
        YieldNow(false).await;
    });
    assert_eq!(dropped.load(Ordering::SeqCst), 0);
    drop(rt);
    assert_eq!(dropped.load(Ordering::SeqCst), 10);
}

#[test]
fn a_task_that_never_stops_yielding_does_not_starve_io_completions() {
    for (policy, mut rt) in each_policy() {
        rt.block_on(watchdog("recv next to a busy task", async {
            let stop = Rc::new(Cell::new(false));
            let s = stop.clone();
            spawn(async move {
                while !s.get() {
                    YieldNow(false).await;
                }
            });
            let (mut ours, mut theirs) = common::pair().await;
            theirs.write_all(b"ping").unwrap();
            let (res, buf) = ours.read(Vec::with_capacity(16)).await;
            assert_eq!(res.unwrap(), 4, "{policy}");
            assert_eq!(&buf[..], b"ping");
            fanbench_uring::sleep(Duration::from_millis(2)).await;
            stop.set(true);
        }));
    }
}

#[test]
fn stats_count_enters_sqes_cqes_and_serialize_to_json() {
    for (policy, mut rt) in each_policy() {
        rt.block_on(async {
            let (mut ours, mut theirs) = common::pair().await;
            for _ in 0..10 {
                theirs.write_all(b"x").unwrap();
                let (res, _) = ours.read(Vec::with_capacity(8)).await;
                assert_eq!(res.unwrap(), 1);
            }
        });
        let s = rt.stats();
        assert_eq!(s.policy, policy);
        assert!(s.io_uring_enter_calls > 0, "{s:?}");
        assert!(s.sqes_submitted >= 11, "connect + 10 recvs: {s:?}");
        assert!(s.cqes_reaped >= 11, "{s:?}");
        assert!(s.ticks > 0 && s.task_polls > 0, "{s:?}");
        assert_eq!(s.sqes_per_enter.total(), s.io_uring_enter_calls);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["policy"], policy.to_string());
        assert!(json["sqes_per_enter"].as_array().unwrap().len() > 1);
        assert_eq!(json["flags"]["sqpoll"], policy == SubmitPolicy::Sqpoll);
    }
}

#[test]
fn invalid_ring_size_is_a_clear_error() {
    for entries in [0, fanbench_uring::MAX_RING_ENTRIES + 1] {
        let err = fanbench_uring::UringRuntime::new(fanbench_uring::UringConfig {
            ring_entries: entries,
            ..Default::default()
        })
        .err()
        .expect("must be refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("ring size"), "{err}");
    }
}

#[test]
fn spawn_outside_a_runtime_panics_with_a_clear_message() {
    let err = std::panic::catch_unwind(|| spawn(async {})).unwrap_err();
    let msg = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(msg.contains("outside a UringRuntime"), "{msg}");
}

/// results/README.md documents the counters `fanbench serve --stats-out` writes for the uring
/// rows; every serialized field (and every ring flag) must have its row in that table.
#[test]
fn every_stats_field_is_documented_in_the_results_readme() {
    let readme = include_str!("../../../results/README.md");
    let section = readme
        .split("## uring counters")
        .nth(1)
        .expect("results/README.md has a \"uring counters\" section");
    let rt = fanbench_uring::UringRuntime::new(Default::default()).unwrap();
    let json = serde_json::to_value(rt.stats()).unwrap();
    let fields = json.as_object().unwrap();
    let flags = json["flags"].as_object().unwrap();
    for name in fields.keys().chain(flags.keys()) {
        assert!(
            section.contains(&format!("`{name}`")),
            "results/README.md does not document the uring counter `{name}`"
        );
    }
}
