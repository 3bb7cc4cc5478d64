//! The broker's shutdown wait, held by the `block_on` future of the `tokio` row while local
//! tasks keep waking: the `LocalSet` polls the main future again on every turn, and the wait
//! must keep one waker however many times it is polled (it once added one per poll, a leak
//! of about 16 bytes per turn that a long soak showed as RSS growth).

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;

use fanbench_broker::Shutdown;
use fanbench_rt::Runtime;
use fanbench_rt_tokio::TokioRuntime;

#[test]
fn a_shutdown_wait_polled_on_every_turn_keeps_one_waker() {
    let mut rt = TokioRuntime::new().expect("tokio runtime");
    let shutdown = Shutdown::new();
    let polls = rt.block_on(async {
        let waiters_seen = Rc::new(Cell::new(None));
        {
            let (shutdown, waiters_seen) = (shutdown.clone(), waiters_seen.clone());
            TokioRuntime::spawn_local(async move {
                for _ in 0..20_000 {
                    tokio::task::yield_now().await;
                }
                waiters_seen.set(Some(shutdown.registered_waiters()));
                shutdown.trigger();
            });
        }
        let mut wait = pin!(shutdown.wait());
        let mut polls = 0u64;
        poll_fn(|cx| {
            polls += 1;
            wait.as_mut().poll(cx)
        })
        .await;
        (polls, waiters_seen.get())
    });
    let (polls, waiters) = polls;
    assert!(
        polls >= 1000,
        "the main future was polled {polls} times: the test did not exercise repeated polls"
    );
    assert_eq!(
        waiters,
        Some(1),
        "one pending wait, polled {polls} times, must hold one waker"
    );
}
