//! Property tests: encode → parse round trips, split invariance, and robustness on arbitrary
//! bytes, for both directions.

use bytes::{Bytes, BytesMut};
use fanbench_protocol::{
    encode, ClientOp, ClientParser, Connect, Limits, ProtocolError, ServerInfo, ServerOp,
    ServerParser,
};
use proptest::prelude::*;

// ---------------------------------------------------------------- strategies

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-zA-Z0-9_$-]{1,8}",
        1 => Just("*".to_string()),
    ]
}

fn subject() -> impl Strategy<Value = Bytes> {
    (prop::collection::vec(token(), 1..5), any::<bool>()).prop_map(|(mut t, fwc)| {
        if fwc {
            t.push(">".into());
        }
        Bytes::from(t.join("."))
    })
}

fn word() -> impl Strategy<Value = Bytes> {
    "[a-zA-Z0-9_.]{1,12}".prop_map(Bytes::from)
}

fn payload() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..200),
        1 => prop::collection::vec(prop::sample::select(b"\r\nPUB MSG 1".to_vec()), 0..40),
        1 => Just(Vec::new()),
    ]
    .prop_map(Bytes::from)
}

fn headers() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(("[A-Za-z-]{1,10}", "[ -~]{0,20}"), 0..4).prop_map(|kv| {
        let mut h = String::from("NATS/1.0\r\n");
        for (k, v) in kv {
            h.push_str(&format!("{k}: {v}\r\n"));
        }
        h.push_str("\r\n");
        Bytes::from(h)
    })
}

fn connect() -> impl Strategy<Value = Connect> {
    (any::<[bool; 5]>(), 0u8..=1, prop::option::of("[ -~]{0,16}")).prop_map(
        |([verbose, pedantic, echo, headers, nr], protocol, name)| Connect {
            verbose,
            pedantic,
            echo,
            headers: headers || nr,
            no_responders: nr,
            protocol,
            name,
            lang: Some("rust".into()),
            ..Connect::default()
        },
    )
}

fn client_op() -> impl Strategy<Value = ClientOp> {
    prop_oneof![
        6 => (subject(), prop::option::of(word()), payload())
            .prop_map(|(subject, reply_to, payload)| ClientOp::Pub { subject, reply_to, payload }),
        2 => (subject(), prop::option::of(word()), headers(), payload()).prop_map(
            |(subject, reply_to, headers, payload)| ClientOp::HPub { subject, reply_to, headers, payload }
        ),
        2 => (subject(), prop::option::of(word()), word())
            .prop_map(|(subject, queue_group, sid)| ClientOp::Sub { subject, queue_group, sid }),
        1 => (word(), prop::option::of(0u64..999_999_999))
            .prop_map(|(sid, max_msgs)| ClientOp::Unsub { sid, max_msgs }),
        1 => Just(ClientOp::Ping),
        1 => Just(ClientOp::Pong),
        1 => connect().prop_map(ClientOp::Connect),
    ]
}

fn server_info() -> impl Strategy<Value = ServerInfo> {
    (
        "[ -~]{0,20}",
        any::<u16>(),
        any::<bool>(),
        any::<u64>(),
        prop::option::of("[0-9.]{1,15}"),
    )
        .prop_map(
            |(server_id, port, headers, client_id, client_ip)| ServerInfo {
                server_id,
                port,
                headers,
                client_id,
                client_ip,
                ..ServerInfo::default()
            },
        )
}

fn server_op() -> impl Strategy<Value = ServerOp> {
    prop_oneof![
        6 => (subject(), word(), prop::option::of(word()), payload())
            .prop_map(|(subject, sid, reply_to, payload)| ServerOp::Msg { subject, sid, reply_to, payload }),
        2 => (subject(), word(), prop::option::of(word()), headers(), payload()).prop_map(
            |(subject, sid, reply_to, headers, payload)| ServerOp::HMsg { subject, sid, reply_to, headers, payload }
        ),
        1 => Just(ServerOp::Ping),
        1 => Just(ServerOp::Pong),
        1 => Just(ServerOp::Ok),
        1 => "[ -&(-~]{0,40}".prop_map(ServerOp::Err),
        1 => server_info().prop_map(ServerOp::Info),
    ]
}

// ---------------------------------------------------------------- encoding

fn encode_client(out: &mut BytesMut, op: &ClientOp) {
    match op {
        ClientOp::Connect(c) => encode::connect(out, c),
        ClientOp::Pub {
            subject,
            reply_to,
            payload,
        } => encode::pub_op(out, subject, reply_to.as_deref(), payload),
        ClientOp::HPub {
            subject,
            reply_to,
            headers,
            payload,
        } => encode::hpub_op(out, subject, reply_to.as_deref(), headers, payload),
        ClientOp::Sub {
            subject,
            queue_group,
            sid,
        } => encode::sub(out, subject, queue_group.as_deref(), sid),
        ClientOp::Unsub { sid, max_msgs } => encode::unsub(out, sid, *max_msgs),
        ClientOp::Ping => encode::ping(out),
        ClientOp::Pong => encode::pong(out),
    }
}

fn encode_server(out: &mut BytesMut, op: &ServerOp) {
    match op {
        ServerOp::Info(i) => encode::info(out, i),
        ServerOp::Msg {
            subject,
            sid,
            reply_to,
            payload,
        } => encode::msg(out, subject, sid, reply_to.as_deref(), payload),
        ServerOp::HMsg {
            subject,
            sid,
            reply_to,
            headers,
            payload,
        } => encode::hmsg(out, subject, sid, reply_to.as_deref(), headers, payload),
        ServerOp::Ping => encode::ping(out),
        ServerOp::Pong => encode::pong(out),
        ServerOp::Ok => encode::ok(out),
        ServerOp::Err(t) => encode::err(out, t),
    }
}

// ---------------------------------------------------------------- feeding

/// What a parse produced: the ops in order, then the error that stopped it (if any).
#[derive(Debug, PartialEq)]
struct Outcome<T> {
    ops: Vec<T>,
    err: Option<ProtocolError>,
}

/// Feed `input` in chunks of the given sizes (cycled), calling `next` until it needs more.
/// Panics if the parser makes no progress while claiming to (an infinite loop).
fn feed<T>(
    input: &[u8],
    chunks: &[usize],
    mut next: impl FnMut(&mut BytesMut) -> Result<Option<T>, ProtocolError>,
) -> Outcome<T> {
    let mut buf = BytesMut::new();
    let mut ops = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    loop {
        // Every op consumes at least one byte, so more ops than bytes means a loop.
        loop {
            assert!(
                ops.len() <= input.len(),
                "parser produced more ops than input bytes"
            );
            match next(&mut buf) {
                Ok(Some(op)) => ops.push(op),
                Ok(None) => break,
                Err(e) => return Outcome { ops, err: Some(e) },
            }
        }
        if pos == input.len() {
            return Outcome { ops, err: None };
        }
        let n = chunks
            .get(i % chunks.len().max(1))
            .copied()
            .unwrap_or(usize::MAX)
            .max(1);
        i += 1;
        let end = input.len().min(pos.saturating_add(n));
        buf.extend_from_slice(&input[pos..end]);
        pos = end;
    }
}

fn client_outcome(input: &[u8], chunks: &[usize], limits: Limits) -> Outcome<ClientOp> {
    let mut p = ClientParser::new(limits);
    feed(input, chunks, |b| p.next_op(b))
}

fn server_outcome(input: &[u8], chunks: &[usize], limits: Limits) -> Outcome<ServerOp> {
    let mut p = ServerParser::new(limits);
    feed(input, chunks, |b| p.next_op(b))
}

fn chunks() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![3 => 1usize..8, 1 => 8usize..300], 1..20)
}

/// Fragments that look like protocol, so random inputs reach deep parser states.
fn protocolish() -> impl Strategy<Value = Vec<u8>> {
    let frag = prop_oneof![
        Just(b"PUB ".to_vec()),
        Just(b"HPUB ".to_vec()),
        Just(b"SUB ".to_vec()),
        Just(b"UNSUB ".to_vec()),
        Just(b"MSG ".to_vec()),
        Just(b"HMSG ".to_vec()),
        Just(b"PING".to_vec()),
        Just(b"PONG".to_vec()),
        Just(b"+OK".to_vec()),
        Just(b"-ERR ".to_vec()),
        Just(b"CONNECT {}".to_vec()),
        Just(b"INFO {}".to_vec()),
        Just(b"foo".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\t".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        "[0-9]{1,3}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 1..8),
    ];
    prop::collection::vec(frag, 0..60).prop_map(|v| v.concat())
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// (1)+(2): client ops encode and parse back to themselves, however the stream is split.
    #[test]
    fn client_ops_round_trip_under_any_split(
        ops in prop::collection::vec(client_op(), 0..20),
        chunks in chunks(),
    ) {
        let mut wire = BytesMut::new();
        for op in &ops {
            encode_client(&mut wire, op);
        }
        let whole = client_outcome(&wire, &[usize::MAX], Limits::default());
        prop_assert_eq!(&whole, &Outcome { ops: ops.clone(), err: None });
        let split = client_outcome(&wire, &chunks, Limits::default());
        prop_assert_eq!(split, whole);
    }

    /// (1)+(2): server ops encode and parse back to themselves, however the stream is split.
    #[test]
    fn server_ops_round_trip_under_any_split(
        ops in prop::collection::vec(server_op(), 0..20),
        chunks in chunks(),
    ) {
        let mut wire = BytesMut::new();
        for op in &ops {
            encode_server(&mut wire, op);
        }
        let whole = server_outcome(&wire, &[usize::MAX], Limits::default());
        prop_assert_eq!(&whole, &Outcome { ops: ops.clone(), err: None });
        let split = server_outcome(&wire, &chunks, Limits::default());
        prop_assert_eq!(split, whole);
    }

    /// (3): arbitrary bytes, split arbitrarily: no panic, no endless loop, and the same ops and
    /// the same error as the unsplit input (the partial-line checks do not depend on the split).
    #[test]
    fn arbitrary_bytes_never_panic_and_do_not_depend_on_the_split(
        input in prop_oneof![protocolish(), prop::collection::vec(any::<u8>(), 0..600)],
        chunks in chunks(),
        small in any::<bool>(),
    ) {
        let limits = if small {
            Limits { max_control_line: 24, max_payload: 16 }
        } else {
            Limits::default()
        };
        let whole = client_outcome(&input, &[usize::MAX], limits);
        let split = client_outcome(&input, &chunks, limits);
        prop_assert_eq!(split, whole);
        let whole = server_outcome(&input, &[usize::MAX], limits);
        let split = server_outcome(&input, &chunks, limits);
        prop_assert_eq!(split, whole);
    }
}

#[test]
fn one_mebibyte_payloads_round_trip_in_both_directions() {
    let payload: Bytes = (0..1024 * 1024u32)
        .map(|i| {
            if i % 1000 == 0 {
                b'\r'
            } else {
                (i % 256) as u8
            }
        })
        .collect::<Vec<u8>>()
        .into();
    let pub_op = ClientOp::Pub {
        subject: Bytes::from_static(b"big.one"),
        reply_to: Some(Bytes::from_static(b"r")),
        payload: payload.clone(),
    };
    let mut wire = BytesMut::new();
    encode_client(&mut wire, &pub_op);
    let got = client_outcome(&wire, &[65536, 1, 4093], Limits::default());
    assert_eq!(
        got,
        Outcome {
            ops: vec![pub_op],
            err: None
        }
    );

    let msg = ServerOp::Msg {
        subject: Bytes::from_static(b"big.one"),
        sid: Bytes::from_static(b"1"),
        reply_to: None,
        payload,
    };
    let mut wire = BytesMut::new();
    encode_server(&mut wire, &msg);
    let got = server_outcome(&wire, &[65536], Limits::default());
    assert_eq!(
        got,
        Outcome {
            ops: vec![msg],
            err: None
        }
    );
}
