//! Exact bytes of every encoder.

use bytes::BytesMut;
use fanbench_protocol::{encode, Connect};

fn enc(f: impl FnOnce(&mut BytesMut)) -> String {
    let mut out = BytesMut::new();
    f(&mut out);
    String::from_utf8(out.to_vec()).expect("ascii")
}

#[test]
fn control_lines_are_byte_exact() {
    assert_eq!(
        enc(|o| encode::msg_header(o, b"a.b", b"7", None, 12)),
        "MSG a.b 7 12\r\n"
    );
    assert_eq!(
        enc(|o| encode::msg_header(o, b"a", b"1", Some(b"r"), 0)),
        "MSG a 1 r 0\r\n"
    );
    assert_eq!(
        enc(|o| encode::hmsg_header(o, b"a", b"1", None, 12, 17)),
        "HMSG a 1 12 17\r\n"
    );
    assert_eq!(
        enc(|o| encode::hmsg_header(o, b"a", b"1", Some(b"r"), 2, 3)),
        "HMSG a 1 r 2 3\r\n"
    );
    assert_eq!(enc(|o| encode::sub(o, b"a.*", None, b"1")), "SUB a.* 1\r\n");
    assert_eq!(
        enc(|o| encode::sub(o, b"a.>", Some(b"q"), b"2")),
        "SUB a.> q 2\r\n"
    );
    assert_eq!(enc(|o| encode::unsub(o, b"2", None)), "UNSUB 2\r\n");
    assert_eq!(
        enc(|o| encode::unsub(o, b"2", Some(u64::MAX))),
        "UNSUB 2 18446744073709551615\r\n"
    );
    assert_eq!(enc(encode::ping), "PING\r\n");
    assert_eq!(enc(encode::pong), "PONG\r\n");
    assert_eq!(enc(encode::ok), "+OK\r\n");
    assert_eq!(
        enc(|o| encode::err(o, "Unknown Protocol Operation")),
        "-ERR 'Unknown Protocol Operation'\r\n"
    );
}

#[test]
fn full_operations_include_payload_and_crlf() {
    assert_eq!(
        enc(|o| encode::pub_op(o, b"a", None, b"hi")),
        "PUB a 2\r\nhi\r\n"
    );
    assert_eq!(
        enc(|o| encode::pub_op(o, b"a", Some(b"r"), b"")),
        "PUB a r 0\r\n\r\n"
    );
    assert_eq!(
        enc(|o| encode::hpub_op(o, b"a", None, b"NATS/1.0\r\n\r\n", b"x")),
        "HPUB a 12 13\r\nNATS/1.0\r\n\r\nx\r\n"
    );
    assert_eq!(
        enc(|o| encode::msg(o, b"a", b"1", Some(b"r"), b"hey")),
        "MSG a 1 r 3\r\nhey\r\n"
    );
    assert_eq!(
        enc(|o| encode::hmsg(o, b"a", b"1", None, b"NATS/1.0\r\n\r\n", b"")),
        "HMSG a 1 12 12\r\nNATS/1.0\r\n\r\n\r\n"
    );
}

#[test]
fn connect_json_omits_absent_options() {
    let c = Connect {
        verbose: false,
        pedantic: false,
        name: Some("lg".into()),
        ..Connect::default()
    };
    let s = enc(|o| encode::connect(o, &c));
    assert!(s.starts_with("CONNECT {") && s.ends_with("}\r\n"), "{s}");
    assert!(
        s.contains("\"verbose\":false") && s.contains("\"name\":\"lg\""),
        "{s}"
    );
    assert!(!s.contains("pass") && !s.contains("auth_token"), "{s}");
    let back = Connect::from_json(&s.as_bytes()["CONNECT ".len()..s.len() - 2]).expect("parses");
    assert_eq!(back, c);
}
