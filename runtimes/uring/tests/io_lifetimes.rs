//! Buffers lent to the kernel outlive dropped futures; shutdown; drop of a busy runtime.

mod common;

use std::future::{poll_fn, Future};
use std::io::{Read, Write};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use common::{each_policy, pair, runtime, watchdog, CountedBuf};
use fanbench_rt::{AsyncReadRent, AsyncWriteRent, Stream};
use fanbench_uring::{sleep, spawn, SubmitPolicy};

/// Poll `fut` exactly once (so its op is submitted), then drop it.
async fn poll_once_then_drop<F: Future>(fut: F) {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        assert!(
            fut.as_mut().poll(cx).is_pending(),
            "op completed on first poll"
        );
        Poll::Ready(())
    })
    .await;
}

#[test]
fn a_dropped_in_flight_read_keeps_its_buffer_until_the_completion() {
    for (policy, mut rt) in each_policy() {
        let live = Arc::new(AtomicUsize::new(0));
        let l = live.clone();
        rt.block_on(watchdog("dropped read", async move {
            let (mut ours, _theirs) = pair().await;
            poll_once_then_drop(ours.read(CountedBuf::new(4096, &l))).await;
            assert_eq!(
                l.load(Ordering::SeqCst),
                1,
                "{policy}: buffer freed while the kernel may still write into it"
            );
            // The cancel's completion releases it.
            while l.load(Ordering::SeqCst) != 0 {
                sleep(Duration::from_millis(1)).await;
            }
        }));
        assert_eq!(live.load(Ordering::SeqCst), 0);
        assert_eq!(rt.ops_in_flight(), 0, "{policy}");
        assert!(rt.stats().ops_cancelled >= 1);
    }
}

#[test]
fn a_dropped_in_flight_writev_keeps_its_buffers_until_the_completion() {
    for (policy, mut rt) in each_policy() {
        let live = Arc::new(AtomicUsize::new(0));
        let l = live.clone();
        rt.block_on(watchdog("dropped writev", async move {
            let (mut ours, theirs) = pair().await;
            let bufs = vec![
                CountedBuf::filled(&vec![1u8; 1 << 20], &l),
                CountedBuf::filled(&vec![2u8; 1 << 20], &l),
            ];
            poll_once_then_drop(ours.writev(bufs)).await;
            assert_eq!(l.load(Ordering::SeqCst), 2, "{policy}: buffers freed early");
            while l.load(Ordering::SeqCst) != 0 {
                sleep(Duration::from_millis(1)).await;
            }
            drop(theirs);
        }));
        assert_eq!(live.load(Ordering::SeqCst), 0);
    }
}

#[test]
fn dropping_the_runtime_with_reads_in_flight_releases_every_buffer_once() {
    for (policy, mut rt) in each_policy() {
        let live = Arc::new(AtomicUsize::new(0));
        let l = live.clone();
        let peers = rt.block_on(async move {
            let mut peers = Vec::new();
            for _ in 0..64 {
                let (ours, theirs) = pair().await;
                peers.push(theirs);
                let (mut r, _w) = ours.into_split();
                let buf = CountedBuf::new(1024, &l);
                spawn(async move {
                    let _ = r.read(buf).await;
                    unreachable!("nobody writes");
                });
            }
            sleep(Duration::from_millis(5)).await;
            peers
        });
        assert_eq!(live.load(Ordering::SeqCst), 64);
        assert!(rt.ops_in_flight() >= 64, "{policy}");
        drop(rt);
        assert_eq!(
            live.load(Ordering::SeqCst),
            0,
            "{policy}: the drain must release every cancelled read's buffer"
        );
        drop(peers);
    }
}

#[test]
fn shutdown_on_the_write_half_ends_a_read_pending_on_the_read_half() {
    for (policy, mut rt) in each_policy() {
        rt.block_on(watchdog("shutdown wakes the reader", async move {
            let (ours, mut theirs) = pair().await;
            let (mut r, mut w) = ours.into_split();
            let reader = std::rc::Rc::new(std::cell::Cell::new(None));
            let rr = reader.clone();
            spawn(async move {
                let (res, _) = r.read(Vec::with_capacity(64)).await;
                rr.set(Some(res.map_err(|e| e.to_string())));
            });
            sleep(Duration::from_millis(5)).await;
            assert!(reader.take().is_none(), "read finished before shutdown");
            w.shutdown().await.unwrap();
            while reader.get_mut_none() {
                sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(reader.take(), Some(Ok(0)), "{policy}");
            // The peer sees end of stream too.
            let mut rest = Vec::new();
            theirs.read_to_end(&mut rest).unwrap();
            assert!(rest.is_empty());
        }));
    }
}

trait CellExt {
    fn get_mut_none(&self) -> bool;
}

impl<T> CellExt for std::rc::Rc<std::cell::Cell<Option<T>>> {
    fn get_mut_none(&self) -> bool {
        let v = self.take();
        let none = v.is_none();
        self.set(v);
        none
    }
}

#[test]
fn reads_and_writes_on_two_halves_run_concurrently() {
    for (policy, mut rt) in each_policy() {
        rt.block_on(watchdog("full duplex", async move {
            let (ours, mut theirs) = pair().await;
            let (mut r, mut w) = ours.into_split();
            let echo = std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                let mut total = 0;
                loop {
                    match theirs.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            theirs.write_all(&buf[..n]).unwrap();
                            total += n;
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                total
            });
            const TOTAL: usize = 4 << 20;
            let received = std::rc::Rc::new(std::cell::Cell::new(0usize));
            let rc = received.clone();
            spawn(async move {
                let mut buf = Vec::with_capacity(65536);
                loop {
                    buf.clear();
                    let (res, b) = r.read(buf).await;
                    buf = b;
                    let n = res.unwrap();
                    if n == 0 {
                        break;
                    }
                    assert!(buf.iter().all(|&x| x == 7));
                    rc.set(rc.get() + n);
                }
            });
            let chunk = bytes::Bytes::from(vec![7u8; 65536]);
            let mut sent = 0;
            while sent < TOTAL {
                let mut bufs = vec![chunk.clone(), chunk.clone()];
                let n = fanbench_rt::ext::AsyncWriteRentExt::writev_all(&mut w, &mut bufs)
                    .await
                    .unwrap();
                sent += n;
            }
            while received.get() < TOTAL {
                sleep(Duration::from_millis(1)).await;
            }
            w.shutdown().await.unwrap();
            assert_eq!(echo.join().unwrap(), TOTAL, "{policy}");
            assert_eq!(received.get(), TOTAL);
        }));
    }
}

#[test]
fn reading_outside_a_runtime_is_an_error_not_a_panic() {
    let mut rt = runtime(SubmitPolicy::Eager);
    let (mut ours, _theirs) = rt.block_on(pair());
    // Drive the read future by hand, outside block_on.
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut fut = pin!(ours.read(Vec::with_capacity(8)));
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready((Err(e), _)) => assert!(e.to_string().contains("no fanbench-uring runtime")),
        _ => panic!("expected an error"),
    }
}
