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

#[test]
fn hpub_splits_headers_from_payload() {
    let hdr = "NATS/1.0\r\nA: b\r\n\r\n";
    let input = format!(
        "HPUB foo rep {} {}\r\n{hdr}hello\r\n",
        hdr.len(),
        hdr.len() + 5
    );
    assert_eq!(
        one(input.as_bytes()),
        ClientOp::HPub {
            subject: b("foo"),
            reply_to: Some(b("rep")),
            headers: b("NATS/1.0\r\nA: b\r\n\r\n"),
            payload: b("hello"),
        }
    );
    let input = format!("HPUB foo {} {}\r\n{hdr}\r\n", hdr.len(), hdr.len());
    assert_eq!(
        one(input.as_bytes()),
        ClientOp::HPub {
            subject: b("foo"),
            reply_to: None,
            headers: b("NATS/1.0\r\nA: b\r\n\r\n"),
            payload: Bytes::new(),
        }
    );
}

#[test]
fn sub_with_and_without_queue_group() {
    assert_eq!(
        one(b"SUB foo.* 1\r\n"),
        ClientOp::Sub {
            subject: b("foo.*"),
            queue_group: None,
            sid: b("1")
        }
    );
    assert_eq!(
        one(b"SUB foo.> workers 22\r\n"),
        ClientOp::Sub {
            subject: b("foo.>"),
            queue_group: Some(b("workers")),
            sid: b("22")
        }
    );
}

#[test]
fn unsub_max_msgs_follows_nats_server_parse_size() {
    assert_eq!(
        one(b"UNSUB 1\r\n"),
        ClientOp::Unsub {
            sid: b("1"),
            max_msgs: None
        }
    );
    assert_eq!(
        one(b"UNSUB 1 10\r\n"),
        ClientOp::Unsub {
            sid: b("1"),
            max_msgs: Some(10)
        }
    );
    assert_eq!(
        one(b"UNSUB 1 0\r\n"),
        ClientOp::Unsub {
            sid: b("1"),
            max_msgs: Some(0)
        }
    );
    // nats-server's parseSize gives -1 for this, which it treats as "no max": unsubscribe now.
    assert_eq!(
        one(b"UNSUB 1 abc\r\n"),
        ClientOp::Unsub {
            sid: b("1"),
            max_msgs: None
        }
    );
}

#[test]
fn ping_and_pong_ignore_trailing_bytes_like_nats_server() {
    assert_eq!(one(b"PING\r\n"), ClientOp::Ping);
    assert_eq!(one(b"PONG\r\n"), ClientOp::Pong);
    assert_eq!(one(b"PING x y\r\n"), ClientOp::Ping);
    assert_eq!(one(b"pongpong\r\n"), ClientOp::Pong);
}

#[test]
fn op_names_are_case_insensitive() {
    assert_eq!(
        one(b"pub foo 1\r\nx\r\n"),
        ClientOp::Pub {
            subject: b("foo"),
            reply_to: None,
            payload: b("x")
        }
    );
    assert_eq!(
        one(b"SuB foo 1\r\n"),
        ClientOp::Sub {
            subject: b("foo"),
            queue_group: None,
            sid: b("1")
        }
    );
    assert_eq!(
        one(b"unsub 1\r\n"),
        ClientOp::Unsub {
            sid: b("1"),
            max_msgs: None
        }
    );
    assert_eq!(one(b"Ping\r\n"), ClientOp::Ping);
    assert!(matches!(one(b"connect {}\r\n"), ClientOp::Connect(_)));
    let hp = one(b"hpub a 0 0\r\n\r\n");
    assert!(matches!(hp, ClientOp::HPub { .. }), "{hp:?}");
}

#[test]
fn arguments_may_be_separated_by_runs_of_spaces_and_tabs() {
    assert_eq!(
        one(b"PUB \t foo\t\t  bar   3 \r\nabc\r\n"),
        ClientOp::Pub {
            subject: b("foo"),
            reply_to: Some(b("bar")),
            payload: b("abc")
        }
    );
    assert_eq!(
        one(b"SUB\tfoo \t q\t7\r\n"),
        ClientOp::Sub {
            subject: b("foo"),
            queue_group: Some(b("q")),
            sid: b("7")
        }
    );
}

#[test]
fn bare_lf_terminates_a_control_line() {
    assert_eq!(one(b"PING\n"), ClientOp::Ping);
    assert_eq!(
        one(b"PUB foo 2\nhi\r\n"),
        ClientOp::Pub {
            subject: b("foo"),
            reply_to: None,
            payload: b("hi")
        }
    );
}

#[test]
fn connect_whitespace_after_name_is_optional() {
    assert!(matches!(one(b"CONNECT{\"verbose\":false}\r\n"), ClientOp::Connect(c) if !c.verbose));
    assert!(matches!(one(b"CONNECT \t {}\r\n"), ClientOp::Connect(c) if c.verbose));
}

#[test]
fn plus_ok_and_valid_info_from_a_client_are_consumed_silently() {
    let (ops, err, rest) = parse_all(b"+OK\r\nINFO {\"server_id\":\"x\"}\r\nPING\r\n");
    assert_eq!(err, None);
    assert_eq!(ops, vec![ClientOp::Ping]);
    assert!(rest.is_empty());
}

#[test]
fn several_ops_in_one_buffer_come_out_in_order() {
    let (ops, err, rest) =
        parse_all(b"CONNECT {}\r\nSUB a 1\r\nPUB a 1\r\nx\r\nPING\r\nUNSUB 1\r\nPING");
    assert_eq!(err, None);
    assert_eq!(ops.len(), 5, "{ops:?}");
    assert_eq!(
        ops[4],
        ClientOp::Unsub {
            sid: b("1"),
            max_msgs: None
        }
    );
    assert_eq!(&rest[..], b"PING", "the partial op stays in the buffer");
}

#[test]
fn payload_and_subject_share_the_read_buffer_allocation() {
    let mut buf = BytesMut::with_capacity(256);
    buf.extend_from_slice(b"PUB some.subject 11\r\nhello world\r\n");
    let base = buf.as_ptr() as usize;
    let end = base + buf.capacity();
    let mut p = ClientParser::new(Limits::default());
    let Some(ClientOp::Pub {
        subject, payload, ..
    }) = p.next_op(&mut buf).expect("parses")
    else {
        panic!("expected PUB")
    };
    for part in [&subject, &payload] {
        let ptr = part.as_ptr() as usize;
        assert!(
            ptr >= base && ptr + part.len() <= end,
            "not a slice of the read buffer"
        );
    }
    assert_eq!(&payload[..], b"hello world");
}

#[test]
fn incomplete_input_returns_none_and_keeps_the_bytes() {
    let mut p = ClientParser::new(Limits::default());
    let mut buf = BytesMut::from(&b"PUB foo 5\r\nhel"[..]);
    assert_eq!(p.next_op(&mut buf), Ok(None));
    assert_eq!(&buf[..], b"PUB foo 5\r\nhel");
    buf.extend_from_slice(b"lo\r");
    assert_eq!(p.next_op(&mut buf), Ok(None));
    buf.extend_from_slice(b"\n");
    assert_eq!(
        p.next_op(&mut buf),
        Ok(Some(ClientOp::Pub {
            subject: b("foo"),
            reply_to: None,
            payload: b("hello")
        }))
    );
    assert!(buf.is_empty());
}

#[test]
fn max_size_payload_arriving_one_byte_at_a_time_is_parsed() {
    // 1 MiB fed byte by byte: 1M calls. Each must be O(1) (no rescans) for this to finish.
    let payload: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut input = BytesMut::new();
    fanbench_protocol::encode::pub_op(&mut input, b"big", None, &payload);
    let mut p = ClientParser::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut got = None;
    for (i, &byte) in input.iter().enumerate() {
        buf.extend_from_slice(&[byte]);
        if let Some(op) = p.next_op(&mut buf).expect("valid input") {
            assert_eq!(i, input.len() - 1, "op completed early");
            got = Some(op);
        }
    }
    match got {
        Some(ClientOp::Pub {
            subject,
            payload: pl,
            ..
        }) => {
            assert_eq!(&subject[..], b"big");
            assert_eq!(&pl[..], &payload[..]);
        }
        other => panic!("{other:?}"),
    }
}
