//! Send coalescing: only a busy connection's sends are held (in short, one whose previous send
//! completed less than a window ago); a held send completion wakes its task no sooner than
//! the window, frees its slot at once if its future is dropped, and errors are never held.

mod common;

use std::future::{poll_fn, Future};
use std::io::Read;
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use common::{pair, watchdog};
use fanbench_rt::{AsyncWriteRent, Stream};
use fanbench_uring::{current_stats, sleep, UringConfig, UringRuntime, MAX_COALESCE};

fn runtime_with_window(window: Duration) -> UringRuntime {
    UringRuntime::new(UringConfig {
        coalesce: window,
        ..UringConfig::default()
    })
    .expect("io_uring runtime")
}

/// One send of `bytes`, which must go out whole.
async fn send(w: &mut impl AsyncWriteRent, bytes: &[u8]) {
    let (res, _) = w.write(bytes.to_vec()).await;
    assert_eq!(res.unwrap(), bytes.len());
}

#[test]
fn a_held_send_completes_no_sooner_than_the_window_and_its_bytes_arrive() {
    let window = Duration::from_millis(50);
    let mut rt = runtime_with_window(window);
    let (mut theirs, w) = rt.block_on(watchdog("held send", async move {
        let (ours, theirs) = pair().await;
        let (_r, mut w) = ours.into_split();
        // The connection's first send: nothing before it, so it is not held.
        send(&mut w, b"hi ").await;
        assert_eq!(current_stats().unwrap().completions_held, 0);
        // Right after it the connection is busy: this one is held.
        let started = Instant::now();
        send(&mut w, b"hello").await;
        assert!(
            started.elapsed() >= window,
            "a held completion was delivered after {:?}, before the {window:?} window ended",
            started.elapsed()
        );
        (theirs, w)
    }));
    let mut got = [0u8; 8];
    theirs.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hi hello");
    drop(w);
    let stats = rt.stats();
    assert_eq!(stats.completions_held, 1);
    assert_eq!(stats.hold_windows, 1);
    assert_eq!(stats.coalesce_us, 50_000);
}

#[test]
fn a_connection_sending_less_often_than_once_per_window_is_never_held() {
    let window = Duration::from_millis(20);
    let mut rt = runtime_with_window(window);
    rt.block_on(watchdog("sparse sends", async move {
        let (ours, _theirs) = pair().await;
        let (_r, mut w) = ours.into_split();
        for _ in 0..3 {
            send(&mut w, b"x").await;
            // Sleeps never end early, so the next send starts more than a window later.
            sleep(window + Duration::from_millis(5)).await;
        }
    }));
    let stats = rt.stats();
    assert_eq!(stats.completions_held, 0, "{stats:?}");
    assert_eq!(stats.hold_windows, 0, "{stats:?}");
}

#[test]
fn a_writer_that_sends_again_as_soon_as_it_is_released_stays_held() {
    let mut rt = runtime_with_window(Duration::from_millis(50));
    rt.block_on(watchdog("busy sends", async move {
        let (ours, _theirs) = pair().await;
        let (_r, mut w) = ours.into_split();
        for _ in 0..5 {
            send(&mut w, b"x").await;
        }
    }));
    let stats = rt.stats();
    // The first send is not held (nothing before it); each later one starts the moment the
    // previous one is released, so the connection stays busy.
    assert_eq!(stats.completions_held, 4, "{stats:?}");
    assert_eq!(stats.hold_windows, 4, "{stats:?}");
}

#[test]
fn a_writer_with_nothing_queued_when_released_is_not_held_again() {
    let mut rt = runtime_with_window(Duration::from_millis(50));
    rt.block_on(watchdog("released idle", async move {
        let (ours, _theirs) = pair().await;
        let (_r, mut w) = ours.into_split();
        for _ in 0..2 {
            send(&mut w, b"x").await;
        }
        assert_eq!(current_stats().unwrap().completions_held, 1);
        // Released with nothing to send: the runtime parks before the next send, well within
        // the window.
        sleep(Duration::from_millis(5)).await;
        send(&mut w, b"x").await;
    }));
    let stats = rt.stats();
    assert_eq!(stats.completions_held, 1, "{stats:?}");
}

#[test]
fn without_a_window_nothing_is_held() {
    let mut rt = runtime_with_window(Duration::ZERO);
    rt.block_on(watchdog("unheld send", async move {
        let (ours, _theirs) = pair().await;
        let (_r, mut w) = ours.into_split();
        for _ in 0..3 {
            send(&mut w, b"x").await;
        }
    }));
    let stats = rt.stats();
    assert_eq!(stats.completions_held, 0);
    assert_eq!(stats.hold_windows, 0);
}

#[test]
fn a_send_dropped_while_held_frees_its_slot_without_a_cancel() {
    let mut rt = runtime_with_window(MAX_COALESCE);
    rt.block_on(watchdog("dropped held send", async move {
        let (ours, _theirs) = pair().await;
        let (_r, mut w) = ours.into_split();
        send(&mut w, b"busy").await;
        {
            let mut write = pin!(w.write(b"held".to_vec()));
            poll_fn(|cx| {
                assert!(write.as_mut().poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
            // Not polled again: once its completion is held it cannot resolve.
            while current_stats().unwrap().completions_held == 0 {
                sleep(Duration::from_millis(1)).await;
            }
        }
    }));
    assert_eq!(rt.ops_in_flight(), 0, "the held op's slot was not freed");
    assert_eq!(rt.stats().ops_cancelled, 0, "a completed op was cancelled");
}

#[test]
fn a_failed_send_is_not_held() {
    let mut rt = runtime_with_window(MAX_COALESCE);
    rt.block_on(watchdog("failed send", async move {
        let (ours, _theirs) = pair().await;
        let (_r, mut w) = ours.into_split();
        // A send first, so the failing one is on a busy connection and would be held if
        // errors were.
        send(&mut w, b"busy").await;
        w.shutdown().await.unwrap();
        let (res, _) = w.write(b"after shutdown".to_vec()).await;
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EPIPE));
    }));
    assert_eq!(rt.stats().completions_held, 0);
}

#[test]
fn a_window_longer_than_the_maximum_is_a_clear_error() {
    let err = match UringRuntime::new(UringConfig {
        coalesce: MAX_COALESCE + Duration::from_millis(1),
        ..UringConfig::default()
    }) {
        Ok(_) => panic!("an over-long coalescing window was accepted"),
        Err(e) => e,
    };
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("coalescing window"), "{err}");
}
