//! The server → client direction: every op, and its error cases.

use bytes::{Bytes, BytesMut};
use fanbench_protocol::{Limits, ProtocolError, ServerInfo, ServerOp, ServerParser};

fn parse_all(input: &[u8]) -> (Vec<ServerOp>, Option<ProtocolError>) {
    let mut p = ServerParser::new(Limits::default());
    let mut buf = BytesMut::from(input);
    let mut ops = Vec::new();
    loop {
        match p.next_op(&mut buf) {
            Ok(Some(op)) => ops.push(op),
            Ok(None) => return (ops, None),
            Err(e) => return (ops, Some(e)),
        }
    }
}

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

#[test]
fn info_as_nats_server_sends_it_with_a_space_before_crlf() {
    let (ops, err) = parse_all(
        b"INFO {\"server_id\":\"NA4H\",\"server_name\":\"WP1\",\"version\":\"2.10.4\",\"proto\":1,\
          \"go\":\"go1.21\",\"host\":\"0.0.0.0\",\"port\":4222,\"headers\":true,\
          \"max_payload\":1048576,\"client_id\":5,\"client_ip\":\"127.0.0.1\",\"xkey\":\"X\"} \r\n",
    );
    assert_eq!(err, None);
    let [ServerOp::Info(info)] = &ops[..] else {
        panic!("{ops:?}")
    };
    assert_eq!(info.server_name, "WP1");
    assert_eq!(info.version, "2.10.4");
    assert_eq!(info.port, 4222);
    assert!(info.headers);
    assert_eq!(info.client_id, 5);
}

#[test]
fn msg_and_hmsg_with_and_without_reply() {
    let (ops, err) = parse_all(
        b"MSG foo.bar 9 5\r\nhello\r\n\
          MSG foo 1 _INBOX.a 2\r\nhi\r\n\
          HMSG foo 2 12 14\r\nNATS/1.0\r\n\r\nok\r\n\
          HMSG foo 2 rep 12 12\r\nNATS/1.0\r\n\r\n\r\n",
    );
    assert_eq!(err, None);
    assert_eq!(
        ops,
        vec![
            ServerOp::Msg {
                subject: b("foo.bar"),
                sid: b("9"),
                reply_to: None,
                payload: b("hello")
            },
            ServerOp::Msg {
                subject: b("foo"),
                sid: b("1"),
                reply_to: Some(b("_INBOX.a")),
                payload: b("hi")
            },
            ServerOp::HMsg {
                subject: b("foo"),
                sid: b("2"),
                reply_to: None,
                headers: b("NATS/1.0\r\n\r\n"),
                payload: b("ok"),
            },
            ServerOp::HMsg {
                subject: b("foo"),
                sid: b("2"),
                reply_to: Some(b("rep")),
                headers: b("NATS/1.0\r\n\r\n"),
                payload: Bytes::new(),
            },
        ]
    );
}

#[test]
fn ping_pong_ok_and_err() {
    let (ops, err) = parse_all(
        b"PING\r\nPONG\r\n+OK\r\n-ERR 'Unknown Protocol Operation'\r\n-ERR unquoted text\r\n",
    );
    assert_eq!(err, None);
    assert_eq!(
        ops,
        vec![
            ServerOp::Ping,
            ServerOp::Pong,
            ServerOp::Ok,
            ServerOp::Err("Unknown Protocol Operation".into()),
            ServerOp::Err("unquoted text".into()),
        ]
    );
}

#[test]
fn server_side_errors() {
    let cases: [(&[u8], ProtocolError); 8] = [
        (b"PUB foo 1\r\nx\r\n", ProtocolError::UnknownOperation),
        (
            b"MSG foo 1\r\n",
            ProtocolError::InvalidArguments { op: "MSG" },
        ),
        (b"MSG foo 1 x\r\n", ProtocolError::BadSize { op: "MSG" }),
        (
            b"HMSG foo 1 5 4\r\n",
            ProtocolError::HeaderSizeExceedsTotal { op: "HMSG" },
        ),
        (
            b"HMSG foo 1 5\r\n",
            ProtocolError::InvalidArguments { op: "HMSG" },
        ),
        (b"MSG foo 1 2\r\nhiX", ProtocolError::PayloadNotTerminated),
        (
            b"MSG foo 1 2\r\nhi\n\n",
            ProtocolError::PayloadNotTerminated,
        ),
        (b"MSG foo 1 1048577\r\n", ProtocolError::MaxPayloadViolation),
    ];
    for (input, want) in cases {
        assert_eq!(
            parse_all(input).1,
            Some(want),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    assert!(matches!(
        parse_all(b"INFO {]\r\n").1,
        Some(ProtocolError::InvalidInfo { .. })
    ));
}

#[test]
fn info_round_trips_through_the_encoder() {
    let info = ServerInfo {
        server_id: "id".into(),
        server_name: "fanbench".into(),
        version: "0.1.0".into(),
        go: "rust".into(),
        host: "127.0.0.1".into(),
        port: 4222,
        headers: true,
        auth_required: true,
        client_id: 42,
        client_ip: Some("127.0.0.1".into()),
        connect_urls: vec!["a:1".into()],
        ..ServerInfo::default()
    };
    let mut out = BytesMut::new();
    fanbench_protocol::encode::info(&mut out, &info);
    assert!(out.starts_with(b"INFO {") && out.ends_with(b"}\r\n"));
    let (ops, err) = parse_all(&out);
    assert_eq!(err, None);
    assert_eq!(ops, vec![ServerOp::Info(info)]);
}
