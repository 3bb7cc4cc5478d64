//! Timers: never early, cancellation safe, intervals.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{each_policy, futures_select, watchdog, Either};
use fanbench_uring::{interval, sleep, spawn};

#[test]
fn sleeps_never_complete_before_their_deadline() {
    for (policy, mut rt) in each_policy() {
        let early = Rc::new(Cell::new(0));
        let finished = Rc::new(Cell::new(0));
        let (e, f) = (early.clone(), finished.clone());
        rt.block_on(watchdog("300 sleeps", async move {
            for i in 0..300u64 {
                let (e, f) = (e.clone(), f.clone());
                spawn(async move {
                    // 0 .. 29 ms, with sub-millisecond offsets.
                    let d = Duration::from_micros((i * 977) % 30_000);
                    let start = Instant::now();
                    sleep(d).await;
                    if start.elapsed() < d {
                        e.set(e.get() + 1);
                    }
                    f.set(f.get() + 1);
                });
            }
            while f.get() < 300 {
                sleep(Duration::from_millis(5)).await;
            }
        }));
        assert_eq!(finished.get(), 300, "{policy}");
        assert_eq!(
            early.get(),
            0,
            "{policy}: a sleep completed before its deadline"
        );
        assert_eq!(rt.timer_count(), 0, "{policy}");
    }
}

#[test]
fn a_dropped_sleep_is_unregistered_at_once() {
    for (policy, mut rt) in each_policy() {
        let registered_after_drop = rt.block_on(async {
            let short = std::pin::pin!(sleep(Duration::from_millis(1)));
            let long = std::pin::pin!(sleep(Duration::from_secs(3600)));
            match futures_select(short, long).await {
                Either::Left(()) => {}
                Either::Right(()) => panic!("the hour-long sleep finished first"),
            }
            fanbench_uring::current_stats().map(|_| ())
        });
        assert!(registered_after_drop.is_some());
        assert_eq!(
            rt.timer_count(),
            0,
            "{policy}: the dropped sleep stayed registered"
        );
    }
}

#[test]
fn a_sleep_created_outside_the_runtime_works_inside() {
    let mut rt = common::runtime(fanbench_uring::SubmitPolicy::Eager);
    let s = sleep(Duration::from_millis(3));
    let deadline = s.deadline();
    rt.block_on(s);
    assert!(Instant::now() >= deadline);
}

#[test]
fn interval_ticks_are_at_least_one_period_apart() {
    for (policy, mut rt) in each_policy() {
        rt.block_on(watchdog("interval", async {
            let period = Duration::from_millis(3);
            let mut iv = interval(period);
            let mut last = iv.tick().await;
            for _ in 0..10 {
                let t = iv.tick().await;
                assert!(t - last >= period, "{policy}");
                assert!(
                    Instant::now() >= t,
                    "{policy}: tick completed before its time"
                );
                last = t;
            }
        }));
    }
}
