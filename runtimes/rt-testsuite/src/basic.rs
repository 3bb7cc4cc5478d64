//! Trait-level tests every row passes, the blocking threads row included: where a test
//! needs two parties doing I/O at once, the second one is a std thread (or, for an echo
//! server, optionally a task of the same runtime). Each runs under
//! [`with_watchdog`](crate::support::with_watchdog).

use std::io::Write;
use std::net::{SocketAddr, TcpStream as StdStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fanbench_rt::ext::AsyncWriteRentExt;
use fanbench_rt::{AsyncReadRent, AsyncWriteRent, Listener, Runtime, Stream};

use crate::support::{read_to_end, std_loopback_listener, with_watchdog, Signal};
use crate::Make;

/// Where [`echo_over_loopback_returns_the_same_bytes_and_buffers`] runs its echo server.
#[derive(Clone, Copy, Debug)]
pub enum EchoServer {
    /// A task spawned on the client's runtime: the two share one thread.
    SameRuntimeTask,
    /// Its own runtime on its own thread (rows whose I/O blocks the calling thread).
    OwnThread,
}

/// Echo every byte read back to the peer until end of stream, then shut down.
async fn echo_until_eof<S: Stream>(stream: S) {
    stream.set_nodelay(true).expect("nodelay");
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        let (res, b) = rd.read(buf).await;
        buf = b;
        if res.expect("server read") == 0 {
            break;
        }
        wr.write_all(Bytes::copy_from_slice(&buf))
            .await
            .expect("server write");
    }
    wr.shutdown().await.expect("server shutdown");
}

/// Send `msg`, read the echo back, and shut down.
async fn echo_client<R: Runtime>(addr: SocketAddr, msg: &'static [u8]) {
    let stream = R::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let (res, returned) = wr.write(msg.to_vec()).await;
    assert_eq!(res.expect("client write"), msg.len());
    assert_eq!(returned, msg, "write hands the buffer back intact");
    let mut got = Vec::with_capacity(64);
    while got.len() < msg.len() {
        let (res, b) = rd.read(got).await;
        got = b;
        assert!(res.expect("client read") > 0, "early EOF");
    }
    assert_eq!(got, msg);
    wr.shutdown().await.expect("client shutdown");
}

/// An adopted listener keeps its address; `write` reports every byte of `msg` written and
/// hands the buffer back intact; the echo comes back as sent.
pub fn echo_over_loopback_returns_the_same_bytes_and_buffers<R: Runtime>(
    make: Make<R>,
    server: EchoServer,
    msg: &'static [u8],
) {
    with_watchdog("echo", move || {
        let std_listener = std_loopback_listener();
        let addr = std_listener.local_addr().expect("addr");
        let adopt = move || {
            let listener = R::listener_from_std(std_listener).expect("adopt");
            assert_eq!(listener.local_addr().expect("addr"), addr);
            listener
        };
        match server {
            EchoServer::SameRuntimeTask => make().block_on(async {
                let mut listener = adopt();
                R::spawn_local(async move {
                    let (stream, _) = listener.accept().await.expect("accept");
                    echo_until_eof(stream).await;
                });
                echo_client::<R>(addr, msg).await;
            }),
            EchoServer::OwnThread => {
                let server_thread = std::thread::spawn(move || {
                    make().block_on(async move {
                        let mut listener = adopt();
                        let (stream, _) = listener.accept().await.expect("accept");
                        echo_until_eof(stream).await;
                    });
                });
                make().block_on(echo_client::<R>(addr, msg));
                server_thread.join().expect("server thread");
            }
        }
    });
}

/// `read` fills only the spare capacity: bytes already in the buffer are kept in front.
pub fn read_appends_after_the_initialised_bytes<R: Runtime>(make: Make<R>) {
    with_watchdog("read_appends", move || {
        let std_listener = std_loopback_listener();
        let addr = std_listener.local_addr().expect("addr");
        let peer = std::thread::spawn(move || {
            let mut s = StdStream::connect(addr).expect("connect");
            s.write_all(b"tail").expect("write");
            s
        });
        make().block_on(async {
            let mut listener = R::listener_from_std(std_listener).expect("adopt");
            let (stream, _) = listener.accept().await.expect("accept");
            let (mut rd, _wr) = stream.into_split();
            let mut buf = Vec::with_capacity(16);
            buf.extend_from_slice(b"head");
            let mut total = 0;
            while total < 4 {
                let (res, b) = rd.read(buf).await;
                buf = b;
                total += res.expect("read");
            }
            assert_eq!(buf, b"headtail");
        });
        drop(peer.join().expect("peer thread"));
    });
}

/// A `read` into a buffer with no spare capacity returns `Ok(0)` at once (the peer is
/// open and silent) and hands the buffer back unchanged in length.
pub fn read_into_a_full_buffer_returns_zero<R: Runtime>(make: Make<R>) {
    with_watchdog("full_buffer", move || {
        let std_listener = std_loopback_listener();
        let addr = std_listener.local_addr().expect("addr");
        let _peer = StdStream::connect(addr).expect("connect");
        make().block_on(async {
            let mut listener = R::listener_from_std(std_listener).expect("adopt");
            let (stream, _) = listener.accept().await.expect("accept");
            let (mut rd, _wr) = stream.into_split();
            let mut full = Vec::with_capacity(4);
            let cap = full.capacity();
            full.resize(cap, 9);
            let (res, back) = rd.read(full).await;
            assert_eq!(res.expect("read"), 0);
            assert_eq!(back.len(), cap);
        });
    });
}

/// A small `writev` goes out whole and hands its buffers back; a large batch of `count`
/// buffers of `base + i` bytes (more than the socket buffers hold) is written short and
/// finished in order by `writev_all`.
pub fn writev_delivers_every_buffer_in_order<R: Runtime>(make: Make<R>, count: u32, base: usize) {
    with_watchdog("writev", move || {
        let std_listener = std_loopback_listener();
        let addr = std_listener.local_addr().expect("addr");
        let reader = std::thread::spawn(move || {
            std_listener
                .set_nonblocking(false)
                .expect("blocking listener");
            let (s, _) = std_listener.accept().expect("accept");
            s.set_nonblocking(false).expect("blocking");
            read_to_end(s)
        });
        let mut expected = Vec::new();
        make().block_on(async {
            let stream = R::connect(addr).await.expect("connect");
            let (_rd, mut wr) = stream.into_split();
            let small = vec![
                Bytes::from_static(b"MSG a 1 5\r\n"),
                Bytes::from_static(b"hello"),
                Bytes::from_static(b"\r\n"),
            ];
            let total: usize = small.iter().map(Bytes::len).sum();
            let (res, back) = wr.writev(small).await;
            assert_eq!(res.expect("writev"), total);
            assert_eq!(back.len(), 3, "writev hands the buffers back");
            for b in &back {
                expected.extend_from_slice(b);
            }
            let mut big: Vec<Bytes> = (0..count)
                .map(|i| Bytes::from(vec![(i % 251) as u8; base + i as usize]))
                .collect();
            for b in &big {
                expected.extend_from_slice(b);
            }
            wr.writev_all(&mut big).await.expect("writev_all");
            assert!(big.is_empty());
            wr.shutdown().await.expect("shutdown");
        });
        let got = reader.join().expect("reader thread");
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "bytes arrived out of order");
    });
}

/// A task spawned with `spawn_local`, parked on a waker that only a std thread wakes, runs.
pub fn foreign_thread_wake_runs_a_spawned_task<R: Runtime>(make: Make<R>) {
    with_watchdog("foreign_wake", move || {
        make().block_on(async {
            let from_thread = Signal::new();
            let task_done = Signal::new();
            {
                let from_thread = from_thread.clone();
                let task_done = task_done.clone();
                R::spawn_local(async move {
                    from_thread.wait().await;
                    task_done.set();
                });
            }
            let waker_thread = from_thread.set_once_polled_from_thread();
            task_done.wait().await;
            waker_thread.join().expect("waker thread");
        });
    });
}

/// The `block_on` future itself, parked on a waker that only a std thread wakes, runs.
pub fn foreign_thread_wake_runs_the_block_on_future<R: Runtime>(make: Make<R>) {
    with_watchdog("foreign_wake_main", move || {
        let signal = Signal::new();
        let waker_thread = signal.set_once_polled_from_thread();
        make().block_on(signal.wait());
        waker_thread.join().expect("waker thread");
    });
}

/// `sleep` never completes before its duration has passed.
pub fn sleep_never_completes_early<R: Runtime>(make: Make<R>) {
    with_watchdog("sleep", move || {
        make().block_on(async {
            for ms in [0u64, 1, 5, 20, 50, 60] {
                let want = Duration::from_millis(ms);
                let start = Instant::now();
                R::sleep(want).await;
                let got = start.elapsed();
                assert!(got >= want, "sleep({want:?}) returned after {got:?}");
            }
        });
    });
}

/// `connect` to a port nobody listens on fails with `ConnectionRefused`.
pub fn connect_to_a_closed_port_is_an_error<R: Runtime>(make: Make<R>) {
    with_watchdog("connect_refused", move || {
        let addr = {
            let l = std_loopback_listener();
            l.local_addr().expect("addr")
        };
        make().block_on(async {
            let err = R::connect(addr).await.err().expect("refused");
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
        });
    });
}
