//! Rings too small for the load: waiting for SQ space, and CQ overflow.

mod common;

use std::cell::Cell;
use std::io::Write;
use std::rc::Rc;
use std::time::Duration;

use common::watchdog;
use fanbench_rt::{AsyncReadRent, Stream};
use fanbench_uring::{sleep, spawn, SubmitPolicy, UringConfig, UringRuntime};

fn tiny(policy: SubmitPolicy) -> UringRuntime {
    UringRuntime::new(UringConfig {
        policy,
        ring_entries: 4,
        cq_entries: 8,
        batch_threshold: 2,
        ..UringConfig::default()
    })
    .unwrap()
}

#[test]
fn a_four_entry_ring_carries_hundreds_of_concurrent_ops() {
    for policy in SubmitPolicy::ALL {
        let mut rt = tiny(policy);
        let done = Rc::new(Cell::new(0));
        let d = done.clone();
        let peers = rt.block_on(watchdog("tiny ring", async move {
            let mut peers = Vec::new();
            let mut halves = Vec::new();
            for _ in 0..200 {
                let (ours, theirs) = common::pair().await;
                peers.push(theirs);
                halves.push(ours.into_split());
            }
            // 200 recvs queued at once: far more than 4 SQ slots.
            for (i, (mut r, _w)) in halves.into_iter().enumerate() {
                let d = d.clone();
                spawn(async move {
                    let _w = _w;
                    let (res, buf) = r.read(Vec::with_capacity(16)).await;
                    assert_eq!(res.unwrap(), 8);
                    assert_eq!(buf, format!("{i:08}").as_bytes());
                    d.set(d.get() + 1);
                });
            }
            sleep(Duration::from_millis(5)).await;
            for (i, p) in peers.iter_mut().enumerate() {
                p.write_all(format!("{i:08}").as_bytes()).unwrap();
            }
            // Hold the thread so nothing is reaped while the completions are posted: under
            // SQPOLL the kernel thread posts them on its own schedule, and a runtime that
            // reaps while they trickle in never lets the CQ overflow.
            std::thread::sleep(Duration::from_millis(200));
            while d.get() < 200 {
                sleep(Duration::from_millis(1)).await;
            }
            peers
        }));
        assert_eq!(done.get(), 200, "{policy}");
        let s = rt.stats();
        assert!(s.sq_full > 0, "{policy}: the SQ never filled: {s:?}");
        assert!(
            s.cq_overflows > 0,
            "{policy}: 200 completions into an 8-entry CQ must overflow it: {s:?}"
        );
        drop(peers);
    }
}
