//! TCP: echo, vectored writes, thousands of concurrent connections.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{each_policy, watchdog};
use fanbench_rt::ext::AsyncWriteRentExt;
use fanbench_rt::{AsyncReadRent, Listener, Runtime, Stream};
use fanbench_uring::{sleep, spawn, UringListener, UringRuntime};

/// Raise the soft descriptor limit to the hard one (thousands of sockets); returns it.
fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid out-pointer for getrlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: `lim` is a valid rlimit; raising the soft limit up to the hard one is allowed.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        // SAFETY: as above.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    }
    lim.rlim_cur
}

async fn read_exact(r: &mut impl AsyncReadRent, n: usize) -> Vec<u8> {
    let mut buf = BytesMut::with_capacity(n);
    while buf.len() < n {
        if buf.capacity() == buf.len() {
            buf.reserve(n - buf.len());
        }
        let (res, b) = r.read(buf).await;
        buf = b;
        assert!(res.unwrap() > 0, "unexpected end of stream");
    }
    buf.to_vec()
}

#[test]
fn echo_round_trip_through_the_runtime_trait() {
    for (policy, mut rt) in each_policy() {
        rt.block_on(watchdog("echo", async {
            let std_listener =
                fanbench_rt::bind_reuseport("127.0.0.1:0".parse().unwrap(), Default::default())
                    .unwrap();
            let mut listener = UringRuntime::listener_from_std(std_listener).unwrap();
            let addr = Listener::local_addr(&listener).unwrap();
            UringRuntime::spawn_local(async move {
                let (s, _) = Listener::accept(&mut listener).await.unwrap();
                s.set_nodelay(true).unwrap();
                let (mut r, mut w) = s.into_split();
                let data = read_exact(&mut r, 11).await;
                w.write_all(Bytes::from(data)).await.unwrap();
            });
            let client = UringRuntime::connect(addr).await.unwrap();
            let (mut r, mut w) = client.into_split();
            w.write_all(Bytes::from_static(b"hello world"))
                .await
                .unwrap();
            assert_eq!(read_exact(&mut r, 11).await, b"hello world", "{policy}");
            UringRuntime::sleep(Duration::from_millis(1)).await;
        }));
    }
}

#[test]
fn writev_sends_header_payload_and_crlf_in_order() {
    for (policy, mut rt) in each_policy() {
        rt.block_on(watchdog("writev", async {
            let (ours, mut theirs) = common::pair().await;
            let (_r, mut w) = ours.into_split();
            let payload = Bytes::from_static(b"payload");
            let mut bufs = Vec::new();
            for sid in 0..300 {
                bufs.push(Bytes::from(format!("MSG s {sid} 7\r\n")));
                bufs.push(payload.clone());
                bufs.push(Bytes::from_static(b"\r\n"));
            }
            let expected: Vec<u8> = bufs.iter().flat_map(|b| b.to_vec()).collect();
            // 900 buffers: within IOV_MAX; writev_all retries any short write.
            w.writev_all(&mut bufs).await.unwrap();
            drop(w);
            drop(_r);
            let got = std::thread::spawn(move || {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut theirs, &mut v).unwrap();
                v
            });
            sleep(Duration::from_millis(5)).await;
            assert_eq!(got.join().unwrap(), expected, "{policy}");
        }));
    }
}

#[test]
fn thousands_of_concurrent_connections_each_echo_correctly() {
    let limit = raise_fd_limit();
    // Two descriptors per connection (both ends live in this process), plus headroom.
    let conns = 2000.min((limit as usize).saturating_sub(200) / 2);
    assert!(
        conns >= 500,
        "descriptor limit {limit} too low for this test"
    );
    for (policy, mut rt) in each_policy() {
        let ok = Rc::new(Cell::new(0usize));
        let ok2 = ok.clone();
        rt.block_on(watchdog("thousands of connections", async move {
            let mut listener = UringListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let addr = listener.local_addr().unwrap();
            spawn(async move {
                for _ in 0..conns {
                    let (s, _) = listener.accept().await.unwrap();
                    spawn(async move {
                        let (mut r, mut w) = s.into_split();
                        let data = read_exact(&mut r, 8).await;
                        w.write_all(Bytes::from(data)).await.unwrap();
                    });
                }
            });
            let mut clients = Vec::new();
            for _ in 0..conns {
                clients.push(fanbench_uring::UringStream::connect(addr).await.unwrap());
            }
            // All connected; now every one talks at once.
            for (i, c) in clients.into_iter().enumerate() {
                let ok = ok2.clone();
                spawn(async move {
                    let (mut r, mut w) = c.into_split();
                    let msg = format!("{i:08}");
                    w.write_all(Bytes::from(msg.clone())).await.unwrap();
                    let back = read_exact(&mut r, 8).await;
                    assert_eq!(back, msg.as_bytes());
                    ok.set(ok.get() + 1);
                });
            }
            while ok2.get() < conns {
                sleep(Duration::from_millis(2)).await;
            }
        }));
        assert_eq!(ok.get(), conns, "{policy}");
        let s = rt.stats();
        assert!(
            s.sqes_submitted as usize >= 3 * conns,
            "{policy}: each connection needs connect, send, recv: {s:?}"
        );
    }
}
