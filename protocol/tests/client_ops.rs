//! Every client operation, parsed from bytes as a real client sends them.

use bytes::{Bytes, BytesMut};
use fanbench_protocol::{ClientOp, ClientParser, Connect, Limits, ProtocolError};

fn parse_all(input: &[u8]) -> (Vec<ClientOp>, Option<ProtocolError>, BytesMut) {
    let mut p = ClientParser::new(Limits::default());
    let mut buf = BytesMut::from(input);
    let mut ops = Vec::new();
    loop {
        match p.next_op(&mut buf) {
            Ok(Some(op)) => ops.push(op),
            Ok(None) => return (ops, None, buf),
            Err(e) => return (ops, Some(e), buf),
        }
    }
}

fn one(input: &[u8]) -> ClientOp {
    let (mut ops, err, rest) = parse_all(input);
    assert_eq!(err, None, "input {:?}", String::from_utf8_lossy(input));
    assert!(rest.is_empty(), "left over: {rest:?}");
    assert_eq!(ops.len(), 1, "{ops:?}");
    ops.remove(0)
}

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

#[test]
fn pub_without_and_with_reply() {
    assert_eq!(
        one(b"PUB foo 5\r\nhello\r\n"),
        ClientOp::Pub {
            subject: b("foo"),
            reply_to: None,
            payload: b("hello")
        }
    );
    assert_eq!(
        one(b"PUB foo.bar _INBOX.1 2\r\nhi\r\n"),
        ClientOp::Pub {
            subject: b("foo.bar"),
            reply_to: Some(b("_INBOX.1")),
            payload: b("hi")
        }
    );
}

#[test]
fn pub_payload_may_contain_crlf_and_be_empty() {
    assert_eq!(
        one(b"PUB a 4\r\n\r\n\r\n\r\n"),
        ClientOp::Pub {
            subject: b("a"),
            reply_to: None,
            payload: b("\r\n\r\n")
        }
    );
    assert_eq!(
        one(b"PUB a 0\r\n\r\n"),
        ClientOp::Pub {
            subject: b("a"),
            reply_to: None,
            payload: Bytes::new()
        }
    );
}

#[test]
fn connect_is_parsed_with_defaults() {
    match one(b"CONNECT {\"verbose\":false,\"headers\":true}\r\n") {
        ClientOp::Connect(c) => {
            assert_eq!(
                c,
                Connect {
                    verbose: false,
                    headers: true,
                    ..Connect::default()
                }
            );
        }
        other => panic!("{other:?}"),
    }
}
