//! The conformance suite: one set of tests, run against every runtime row through the real
//! `fanbench serve` binary, with an independently written NATS client (`async-nats`) and with
//! raw sockets for the byte-exact and error cases.
//!
//! A new row plugs in with one line in the `conformance!` invocation at the bottom.

mod common;

use std::time::{Duration, Instant};

use async_nats::{Client, HeaderMap, Subscriber};
use bytes::Bytes;
use common::{Raw, Server};
use futures_util::StreamExt;

const RECV_TIMEOUT: Duration = Duration::from_secs(10);

async fn connect(server: &Server) -> Client {
    async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("{}: async-nats could not connect: {e}", server.runtime))
}

/// Subscribe and wait until the server has registered the subscription: the client also
/// subscribes to a private subject and publishes to it; messages on one connection are handled
/// in order, so receiving that probe proves the first SUB was processed.
async fn subscribe_ready(client: &Client, subject: &str, queue: Option<&str>) -> Subscriber {
    let sub = match queue {
        Some(q) => {
            client
                .queue_subscribe(subject.to_string(), q.to_string())
                .await
        }
        None => client.subscribe(subject.to_string()).await,
    }
    .expect("subscribe");
    sync_client(client).await;
    sub
}

/// Round trip through the server on this client's connection.
async fn sync_client(client: &Client) {
    let probe = format!("_SYNC.{}", client.new_inbox().replace('.', "_"));
    let mut probe_sub = client
        .subscribe(probe.clone())
        .await
        .expect("subscribe probe");
    client
        .publish(probe, Bytes::from_static(b"sync"))
        .await
        .expect("publish probe");
    tokio::time::timeout(RECV_TIMEOUT, probe_sub.next())
        .await
        .expect("probe round trip timed out")
        .expect("probe subscription ended");
}

async fn next(sub: &mut Subscriber) -> async_nats::Message {
    tokio::time::timeout(RECV_TIMEOUT, sub.next())
        .await
        .expect("timed out waiting for a message")
        .expect("subscription ended")
}

async fn pub_sub_payloads_are_byte_exact(rt: &str) {
    let server = Server::start(rt, &[]);
    let (a, b) = (connect(&server).await, connect(&server).await);
    let mut sub = subscribe_ready(&b, "exact", None).await;
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    let payloads: Vec<Bytes> = vec![
        Bytes::from_static(b"hello"),
        Bytes::new(),
        Bytes::from_static(b"line one\r\nline two\r\n"),
        Bytes::from_static(b"MSG exact 1 5\r\nfake\r\n"),
        Bytes::from(all_bytes),
    ];
    for p in &payloads {
        a.publish("exact", p.clone()).await.unwrap();
    }
    for p in &payloads {
        assert_eq!(&next(&mut sub).await.payload, p, "{rt}");
    }
}

async fn wildcards_match_as_nats_does(rt: &str) {
    let server = Server::start(rt, &[]);
    let (publisher, c) = (connect(&server).await, connect(&server).await);
    let mut star = subscribe_ready(&c, "a.*", None).await;
    let mut tail = subscribe_ready(&c, "a.>", None).await;
    let mut all = subscribe_ready(&c, ">", None).await;
    let mut mid = subscribe_ready(&c, "*.b.*", None).await;
    for subject in ["a.b", "a.b.c", "x", "a"] {
        publisher
            .publish(subject, Bytes::from(subject))
            .await
            .unwrap();
    }
    publisher.publish("done", Bytes::new()).await.unwrap();
    publisher.flush().await.unwrap();
    let collect = |sub: &mut Subscriber| {
        let mut got = Vec::new();
        while let Some(Some(m)) = sub.now_or_never_ok() {
            if !m.subject.starts_with("_SYNC.") {
                got.push(m.subject.to_string());
            }
        }
        got
    };
    // `>` sees everything, including the final marker, so once it has, all are delivered.
    let mut seen_all = Vec::new();
    loop {
        let m = next(&mut all).await;
        if m.subject.as_str() == "done" {
            break;
        }
        if !m.subject.starts_with("_SYNC.") {
            seen_all.push(m.subject.to_string());
        }
    }
    assert_eq!(seen_all, ["a.b", "a.b.c", "x", "a"], "{rt}");
    sync_client(&c).await;
    assert_eq!(collect(&mut star), ["a.b"], "{rt}: a.*");
    assert_eq!(collect(&mut tail), ["a.b", "a.b.c"], "{rt}: a.>");
    assert_eq!(collect(&mut mid), ["a.b.c"], "{rt}: *.b.*");
}

/// Poll a stream once without waiting.
trait NowOrNever: futures_util::Stream + Unpin {
    fn now_or_never_ok(&mut self) -> Option<Option<Self::Item>> {
        futures_util::FutureExt::now_or_never(self.next())
    }
}
impl<T: futures_util::Stream + Unpin> NowOrNever for T {}

async fn queue_group_delivers_each_message_to_one_member(rt: &str) {
    let server = Server::start(rt, &[]);
    let publisher = connect(&server).await;
    let mut members = Vec::new();
    for _ in 0..3 {
        let c = connect(&server).await;
        let sub = subscribe_ready(&c, "work", Some("workers")).await;
        members.push((c, sub));
    }
    let plain_client = connect(&server).await;
    let mut plain = subscribe_ready(&plain_client, "work", None).await;
    const N: usize = 60;
    for i in 0..N {
        publisher
            .publish("work", Bytes::from(i.to_string()))
            .await
            .unwrap();
    }
    publisher.flush().await.unwrap();
    for _ in 0..N {
        next(&mut plain).await;
    }
    let mut counts = Vec::new();
    for (c, sub) in &mut members {
        sync_client(c).await;
        let mut n = 0;
        while let Some(Some(_)) = sub.now_or_never_ok() {
            n += 1;
        }
        counts.push(n);
    }
    assert_eq!(
        counts.iter().sum::<usize>(),
        N,
        "{rt}: each message reaches exactly one member: {counts:?}"
    );
    assert!(
        counts.iter().all(|&n| n > 0),
        "{rt}: the group spreads messages: {counts:?}"
    );
}

async fn unsub_with_max_stops_after_max_messages(rt: &str) {
    let server = Server::start(rt, &[]);
    let (publisher, c) = (connect(&server).await, connect(&server).await);
    let mut sub = subscribe_ready(&c, "limited", None).await;
    sub.unsubscribe_after(3).await.unwrap();
    sync_client(&c).await;
    for i in 0..10 {
        publisher
            .publish("limited", Bytes::from(i.to_string()))
            .await
            .unwrap();
    }
    for i in 0..3 {
        assert_eq!(
            next(&mut sub).await.payload,
            Bytes::from(i.to_string()),
            "{rt}"
        );
    }
    let after = tokio::time::timeout(Duration::from_secs(5), sub.next()).await;
    assert!(
        matches!(after, Ok(None)),
        "{rt}: the subscription must end after 3 messages"
    );
}

async fn headers_arrive_intact(rt: &str) {
    let server = Server::start(rt, &[]);
    let (publisher, c) = (connect(&server).await, connect(&server).await);
    let mut sub = subscribe_ready(&c, "hdr", None).await;
    let mut headers = HeaderMap::new();
    headers.insert("X-Fanbench", "yes");
    headers.insert("Trace-Id", "abc-123");
    publisher
        .publish_with_headers("hdr", headers, Bytes::from_static(b"body\r\n"))
        .await
        .unwrap();
    let m = next(&mut sub).await;
    assert_eq!(m.payload, Bytes::from_static(b"body\r\n"), "{rt}");
    let h = m.headers.expect("headers were delivered");
    assert_eq!(h.get("X-Fanbench").map(|v| v.as_str()), Some("yes"), "{rt}");
    assert_eq!(
        h.get("Trace-Id").map(|v| v.as_str()),
        Some("abc-123"),
        "{rt}"
    );
}

async fn request_reply_works_through_inbox(rt: &str) {
    let server = Server::start(rt, &[]);
    let (requester, responder) = (connect(&server).await, connect(&server).await);
    let mut service = subscribe_ready(&responder, "svc.echo", None).await;
    let handle = tokio::spawn(async move {
        for _ in 0..3 {
            let m = next(&mut service).await;
            let reply = m.reply.expect("request carries a reply subject");
            assert!(
                reply.as_str().starts_with("_INBOX."),
                "reply subject {reply}"
            );
            let mut answer = b"re:".to_vec();
            answer.extend_from_slice(&m.payload);
            responder.publish(reply, Bytes::from(answer)).await.unwrap();
        }
        responder.flush().await.unwrap();
    });
    for i in 0..3 {
        let reply = tokio::time::timeout(
            RECV_TIMEOUT,
            requester.request("svc.echo", Bytes::from(format!("q{i}"))),
        )
        .await
        .expect("request timed out")
        .expect("request failed");
        assert_eq!(reply.payload, Bytes::from(format!("re:q{i}")), "{rt}");
    }
    handle.await.unwrap();
}

async fn one_mib_payloads_are_delivered(rt: &str) {
    let server = Server::start(rt, &[]);
    let (publisher, c) = (connect(&server).await, connect(&server).await);
    let mut sub = subscribe_ready(&c, "big", None).await;
    let payload: Bytes = (0..1024 * 1024)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    for _ in 0..3 {
        publisher.publish("big", payload.clone()).await.unwrap();
    }
    for _ in 0..3 {
        assert!(
            next(&mut sub).await.payload == payload,
            "{rt}: 1 MiB payload differs"
        );
    }
}

async fn raw_protocol_errors_match_nats_server(rt: &str) {
    let server = Server::start(rt, &[]);

    let mut c = Raw::connect(server.addr);
    c.send(b"FOO bar\r\n");
    assert_eq!(c.line(), "-ERR 'Unknown Protocol Operation'", "{rt}");
    assert!(c.is_closed_by_server(), "{rt}: unknown op closes");

    let mut c = Raw::connect(server.addr);
    let mut long = b"SUB ".to_vec();
    long.extend(std::iter::repeat_n(b'a', 5000));
    c.send(&long);
    // nats-server 2.9/2.10 send this one in lower case (ErrMaxControlLine's text).
    assert_eq!(c.line(), "-ERR 'maximum control line exceeded'", "{rt}");
    assert!(
        c.is_closed_by_server(),
        "{rt}: control line overflow closes"
    );

    let mut c = Raw::connect(server.addr);
    c.send(b"PUB big 2000000\r\n");
    assert_eq!(c.line(), "-ERR 'Maximum Payload Violation'", "{rt}");
    assert!(c.is_closed_by_server(), "{rt}: payload over max closes");

    let mut c = Raw::connect(server.addr);
    c.send(b"SUB foo..bar 1\r\n");
    assert_eq!(c.line(), "-ERR 'Invalid Subject'", "{rt}");
    c.sync(); // still open and serving

    let mut c = Raw::connect(server.addr);
    c.send(b"PUB a 3\r\nabcdef\r\n");
    assert_eq!(
        c.line(),
        "-ERR 'Unknown Protocol Operation'",
        "{rt}: payload not followed by CRLF"
    );
    assert!(
        c.is_closed_by_server(),
        "{rt}: a bad payload trailer closes"
    );

    let mut c = Raw::connect(server.addr);
    c.send(b"PUB a notanumber\r\n");
    assert!(
        c.is_closed_by_server(),
        "{rt}: a bad PUB size closes without -ERR"
    );

    let mut c = Raw::connect(server.addr);
    c.send(b"CONNECT {\"verbose\":false}\r\nHPUB a 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
    assert!(
        c.is_closed_by_server(),
        "{rt}: HPUB without declaring headers closes"
    );

    // Before CONNECT a client is verbose and pedantic, as in nats-server.
    let mut c = Raw::connect(server.addr);
    c.send(b"PUB a.* 1\r\nx\r\nSUB ok 1\r\n");
    assert_eq!(
        c.line(),
        "-ERR 'Invalid Publish Subject'",
        "{rt}: pedantic by default"
    );
    assert_eq!(
        c.line(),
        "+OK",
        "{rt}: verbose by default; the PUB still goes through"
    );
    assert_eq!(c.line(), "+OK", "{rt}: SUB");
    c.sync();
}

async fn raw_ping_pong_verbose_and_echo(rt: &str) {
    let server = Server::start(rt, &[]);
    let mut c = Raw::connect(server.addr);
    c.send(b"CONNECT {\"verbose\":true,\"echo\":false}\r\n");
    assert_eq!(c.line(), "+OK", "{rt}: CONNECT");
    c.send(b"SUB me 7\r\n");
    assert_eq!(c.line(), "+OK", "{rt}: SUB");
    c.send(b"PUB me 2\r\nhi\r\n");
    assert_eq!(c.line(), "+OK", "{rt}: PUB");
    c.send(b"PING\r\n");
    assert_eq!(
        c.line(),
        "PONG",
        "{rt}: echo off: own message not delivered before PONG"
    );

    let mut d = Raw::connect(server.addr);
    d.send(b"CONNECT {\"verbose\":false}\r\nSUB me 1\r\nSUB me 2\r\n");
    d.sync();
    c.send(b"PUB me 3\r\nabc\r\n");
    assert_eq!(c.line(), "+OK", "{rt}");
    let mut got = vec![
        d.line(),
        String::from_utf8(d.bytes(5)).unwrap(),
        d.line(),
        String::from_utf8(d.bytes(5)).unwrap(),
    ];
    got.sort();
    assert_eq!(
        got,
        ["MSG me 1 3", "MSG me 2 3", "abc\r\n", "abc\r\n"],
        "{rt}: byte-exact MSG framing"
    );
}

async fn server_keeps_serving_others_after_bad_input(rt: &str) {
    let server = Server::start(rt, &[]);
    let (publisher, c) = (connect(&server).await, connect(&server).await);
    let mut sub = subscribe_ready(&c, "steady", None).await;
    for round in 0..20 {
        let mut bad = Raw::connect(server.addr);
        match round % 4 {
            0 => bad.send(b"\x00\xff\xfe garbage\r\n"),
            1 => bad.send(&vec![b'x'; 10_000]),
            2 => bad.send(b"PUB steady 3\r\nabcdef\r\n"),
            _ => bad.send(b"PUB steady notanumber\r\n"),
        }
        drop(bad);
        publisher
            .publish("steady", Bytes::from(round.to_string()))
            .await
            .unwrap();
    }
    for round in 0..20 {
        assert_eq!(
            next(&mut sub).await.payload,
            Bytes::from(round.to_string()),
            "{rt}"
        );
    }
}

/// Open-loop-ish fan-out with an independent client: every subscriber must get every message,
/// once, in order.
async fn fanout_has_no_loss_or_reordering(
    rt: &str,
    publishers: usize,
    subscribers: usize,
    rate: f64,
    payload: usize,
    secs: f64,
) {
    let server = Server::start(rt, &[]);
    let mut subs = Vec::new();
    for p in 0..publishers {
        for _ in 0..subscribers {
            let c = connect(&server).await;
            let s = subscribe_ready(&c, &format!("fan.{p}"), None).await;
            subs.push((p, c, s));
        }
    }
    let per_publisher = (rate * secs) as u64;
    let mut pubs = Vec::new();
    for p in 0..publishers {
        let c = connect(&server).await;
        pubs.push(tokio::spawn(async move {
            let start = Instant::now();
            for n in 0..per_publisher {
                let due = start + Duration::from_secs_f64(n as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                let mut body = vec![0u8; payload];
                body[..8].copy_from_slice(&n.to_be_bytes());
                c.publish(format!("fan.{p}"), Bytes::from(body))
                    .await
                    .unwrap();
            }
            c.flush().await.unwrap();
        }));
    }
    let checkers: Vec<_> = subs
        .into_iter()
        .map(|(p, c, mut s)| {
            tokio::spawn(async move {
                for want in 0..per_publisher {
                    let m = next(&mut s).await;
                    let got = u64::from_be_bytes(m.payload[..8].try_into().unwrap());
                    assert_eq!(got, want, "publisher {p}: lost or reordered message");
                    assert_eq!(m.payload.len(), payload);
                }
                drop(c);
            })
        })
        .collect();
    for p in pubs {
        p.await.unwrap();
    }
    for c in checkers {
        c.await.unwrap_or_else(|e| panic!("{rt}: {e}"));
    }
}

async fn fanout_5x25_at_50_per_second(rt: &str) {
    fanout_has_no_loss_or_reordering(rt, 5, 25, 50.0, 1024, 2.0).await;
}

async fn fanout_1x100_at_2000_per_second(rt: &str) {
    fanout_has_no_loss_or_reordering(rt, 1, 100, 2000.0, 1024, 1.0).await;
}

async fn sigterm_shuts_down_cleanly_with_clients_connected(rt: &str) {
    let mut server = Server::start(rt, &[]);
    let c = connect(&server).await;
    let _sub = subscribe_ready(&c, "bye", None).await;
    assert!(server.is_running());
    let status = server.terminate();
    // nats-server exits with status 1 on SIGTERM by design; fanbench exits cleanly.
    assert!(
        status.success() || rt == "nats-server",
        "{rt}: serve exited with {status}"
    );
}

macro_rules! conformance {
    ($($module:ident => $runtime:literal),* $(,)?) => {
        /// Every row the suite runs on.
        const SUITE_ROWS: &[&str] = &[$($runtime),*];
        $(
        mod $module {
            const RT: &str = $runtime;
            /// Skip the reference row where nats-server is not installed (and not required).
            macro_rules! require {
                () => {
                    if RT == "nats-server" && !super::common::Server::nats_server_available() {
                        return;
                    }
                };
            }
            #[tokio::test] async fn pub_sub_payloads_are_byte_exact() { require!(); super::pub_sub_payloads_are_byte_exact(RT).await }
            #[tokio::test] async fn wildcards_match_as_nats_does() { require!(); super::wildcards_match_as_nats_does(RT).await }
            #[tokio::test] async fn queue_group_delivers_each_message_to_one_member() { require!(); super::queue_group_delivers_each_message_to_one_member(RT).await }
            #[tokio::test] async fn unsub_with_max_stops_after_max_messages() { require!(); super::unsub_with_max_stops_after_max_messages(RT).await }
            #[tokio::test] async fn headers_arrive_intact() { require!(); super::headers_arrive_intact(RT).await }
            #[tokio::test] async fn request_reply_works_through_inbox() { require!(); super::request_reply_works_through_inbox(RT).await }
            #[tokio::test] async fn one_mib_payloads_are_delivered() { require!(); super::one_mib_payloads_are_delivered(RT).await }
            #[tokio::test] async fn raw_protocol_errors_match_nats_server() { require!(); super::raw_protocol_errors_match_nats_server(RT).await }
            #[tokio::test] async fn raw_ping_pong_verbose_and_echo() { require!(); super::raw_ping_pong_verbose_and_echo(RT).await }
            #[tokio::test] async fn server_keeps_serving_others_after_bad_input() { require!(); super::server_keeps_serving_others_after_bad_input(RT).await }
            #[tokio::test] async fn fanout_5x25_at_50_per_second() { require!(); super::fanout_5x25_at_50_per_second(RT).await }
            #[tokio::test] async fn fanout_1x100_at_2000_per_second() { require!(); super::fanout_1x100_at_2000_per_second(RT).await }
            #[tokio::test] async fn sigterm_shuts_down_cleanly_with_clients_connected() { require!(); super::sigterm_shuts_down_cleanly_with_clients_connected(RT).await }
        }
    )*};
}

/// Rows the conformance suite does not run on, and why.
const NOT_CONFORMANCE: &[(&str, &str)] = &[(
    "floor",
    "not a broker: the physical-floor server implements only the subset the load generator \
     uses (no wildcards, queue groups, headers or verbose mode; runtimes/floor docs)",
)];

/// A row added to the binary (harness/src/runtimes.rs) must be added to the list below, or to
/// `NOT_CONFORMANCE` with the reason.
#[test]
fn every_row_is_in_the_conformance_suite() {
    for row in common::runtime_rows() {
        assert!(
            SUITE_ROWS.contains(&row.as_str())
                || NOT_CONFORMANCE.iter().any(|(name, _)| *name == row),
            "row {row} is missing from the conformance! list (or NOT_CONFORMANCE)"
        );
    }
}

conformance! {
    // The reference: the suite itself is checked against the real nats-server.
    nats_server => "nats-server",
    uring => "uring",
    tokio_current_thread => "tokio",
    tokio_mt => "tokio-mt",
    compio => "compio",
    glommio => "glommio",
    monoio => "monoio",
    monoio_epoll => "monoio-epoll",
    threads => "threads",
}
