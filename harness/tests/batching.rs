//! The batching policy (`fanbench serve --coalesce-us`) is the broker's, so every row must
//! honour it the same way: a busy connection's next write is held until the window ends, an
//! idle connection's write is not. Each row is driven through the real `fanbench serve`.
//!
//! The window is long (100 ms) so the difference is far outside scheduling noise: a held
//! message arrives tens of milliseconds late, an unheld one within a few.

mod common;

use std::time::{Duration, Instant};

use common::{Raw, Server};

const WINDOW_US: &str = "100000";
/// Longer than any unheld delivery takes, shorter than the hold in the busy case (~80 ms).
const HELD: Duration = Duration::from_millis(40);

struct Pair {
    server: Server,
    sub: Raw,
    publisher: Raw,
}

fn start(runtime: &str, coalesce_us: &str) -> Pair {
    let server = Server::start(runtime, &["--coalesce-us", coalesce_us]);
    let mut sub = Raw::connect(server.addr);
    sub.send(b"CONNECT {\"verbose\":false}\r\nSUB batch.x 1\r\n");
    sub.sync();
    let mut publisher = Raw::connect(server.addr);
    publisher.send(b"CONNECT {\"verbose\":false}\r\n");
    publisher.sync();
    // The handshake's own writes (INFO, PONG) count: let the subscriber go idle first.
    std::thread::sleep(Duration::from_millis(250));
    Pair {
        server,
        sub,
        publisher,
    }
}

impl Pair {
    /// Publish message `n` and return how long the subscriber waited for it.
    fn deliver(&mut self, n: usize) -> Duration {
        let sent = Instant::now();
        self.publisher
            .send(format!("PUB batch.x 4\r\nm{n:03}\r\n").as_bytes());
        assert_eq!(self.sub.line(), "MSG batch.x 1 4");
        assert_eq!(self.sub.bytes(6), format!("m{n:03}\r\n").into_bytes());
        sent.elapsed()
    }

    fn stop(self, runtime: &str) {
        let status = self.server.terminate();
        assert!(status.success(), "{runtime} exited with {status}");
    }
}

/// Two writes 20 ms apart make the connection busy (the second completed less than one window
/// after the first), so the next write waits for the end of the window (the 100 ms grid
/// interval) the second completed in. Where that end falls is unknown from here, so the
/// fourth message is the one that must wait: if the third came after the end, it went at once
/// and its write, 20 ms after the second's, is held to the next end (at least 60 ms after the
/// fourth is sent); if it came before, it was held and released with work, so its own write
/// is held for a whole window, which the fourth, 20 ms later, waits out (about 80 ms).
fn a_busy_connections_next_write_is_held(runtime: &str) {
    let mut p = start(runtime, WINDOW_US);
    let mut waited = Vec::new();
    for n in 0..4 {
        if n > 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
        waited.push(p.deliver(n));
    }
    assert!(waited[0] < HELD, "{runtime}: first write held: {waited:?}");
    assert!(waited[1] < HELD, "{runtime}: second write held: {waited:?}");
    assert!(
        waited[3] >= HELD,
        "{runtime}: the fourth write on a busy connection was not held: {waited:?}"
    );
    let most = Duration::from_micros(WINDOW_US.parse().unwrap()) + HELD;
    assert!(
        waited.iter().all(|w| *w < most),
        "{runtime}: a write waited longer than a window: {waited:?}"
    );
    p.stop(runtime);
}

/// Writes further apart than the window are never held.
fn an_idle_connections_writes_are_not_held(runtime: &str) {
    let mut p = start(runtime, WINDOW_US);
    for n in 0..4 {
        let waited = p.deliver(n);
        assert!(waited < HELD, "{runtime}: idle write {n} held {waited:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
    p.stop(runtime);
}

/// With the window at 0 nothing is held, however busy.
fn batching_off_holds_nothing(runtime: &str) {
    let mut p = start(runtime, "0");
    for n in 0..6 {
        let waited = p.deliver(n);
        assert!(
            waited < HELD,
            "{runtime}: write {n} held {waited:?} with batching off"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    p.stop(runtime);
}

macro_rules! batching {
    ($($module:ident => $runtime:literal),* $(,)?) => {
        const BATCHING_ROWS: &[&str] = &[$($runtime),*];
        $(
        mod $module {
            const RT: &str = $runtime;
            #[test] fn a_busy_connections_next_write_is_held() { super::a_busy_connections_next_write_is_held(RT) }
            #[test] fn an_idle_connections_writes_are_not_held() { super::an_idle_connections_writes_are_not_held(RT) }
            #[test] fn batching_off_holds_nothing() { super::batching_off_holds_nothing(RT) }
        }
    )*};
}

/// A row added to the binary (harness/src/runtimes.rs) must be added to the list below.
#[test]
fn every_row_is_in_the_batching_tests() {
    for row in common::runtime_rows() {
        assert!(
            BATCHING_ROWS.contains(&row.as_str()),
            "row {row} is missing from the batching! list"
        );
    }
}

batching! {
    uring => "uring",
    tokio_current_thread => "tokio",
    tokio_mt => "tokio-mt",
    compio => "compio",
    glommio => "glommio",
    monoio => "monoio",
    monoio_epoll => "monoio-epoll",
    threads => "threads",
    floor => "floor",
}
