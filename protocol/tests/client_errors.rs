//! Every error case of the client → server direction: the error, the `-ERR` text nats-server
//! sends for it, and whether nats-server closes the connection.

use bytes::BytesMut;
use fanbench_protocol::{ClientOp, ClientParser, Limits, ProtocolError};

const UNKNOWN: Option<&str> = Some("Unknown Protocol Operation");

/// Parse until an error; panics if the input parses without one.
fn error_of(input: &[u8], limits: Limits) -> ProtocolError {
    let mut p = ClientParser::new(limits);
    let mut buf = BytesMut::from(input);
    loop {
        match p.next_op(&mut buf) {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no error for {:?}", String::from_utf8_lossy(input)),
            Err(e) => return e,
        }
    }
}

fn check(input: &[u8], want: ProtocolError, text: Option<&str>) {
    let e = error_of(input, Limits::default());
    assert_eq!(e, want, "input {:?}", String::from_utf8_lossy(input));
    assert_eq!(e.err_text(), text, "{e:?}");
    assert!(e.closes_connection(), "{e:?} must close");
}

#[test]
fn unknown_operation_sends_unknown_protocol_operation_and_closes() {
    for input in [
        &b"FOO bar\r\n"[..],
        b"\r\n",
        b" PING\r\n",
        b"PUBX foo 1\r\n",
        b"PUB\r\n",
        b"SUB\r\n",
        b"PIN\r\n",
        b"MSG foo 1 1\r\nx\r\n",
        b"HMSG foo 1 0 1\r\nx\r\n",
        b"RS+ foo\r\n",
        b"-ERR\r\n",
    ] {
        check(input, ProtocolError::UnknownOperation, UNKNOWN);
    }
}

#[test]
fn unknown_operation_is_detected_before_the_line_ends() {
    // nats-server fails on the first byte that cannot continue an operation name.
    let mut p = ClientParser::new(Limits::default());
    let mut buf = BytesMut::from(&b"PUX"[..]);
    assert_eq!(p.next_op(&mut buf), Err(ProtocolError::UnknownOperation));
}

#[test]
fn payload_not_followed_by_crlf_is_unknown_protocol_operation() {
    for input in [
        &b"PUB foo 5\r\nhelloX\r\n"[..],
        b"PUB foo 5\r\nhello\rX",
        b"PUB foo 5\r\nhelloX\n",
        b"PUB foo 3\r\nhello\r\n",
        b"HPUB foo 0 1\r\nab\r\n",
    ] {
        check(input, ProtocolError::PayloadNotTerminated, UNKNOWN);
    }
}

#[test]
fn control_line_limit_counts_the_arguments_only() {
    let limits = Limits {
        max_control_line: 16,
        max_payload: 1024,
    };
    // Arguments "aaaaaaaaaaaaa 1" = 15 bytes, + padding to exactly 16: accepted.
    let mut p = ClientParser::new(limits);
    let mut buf = BytesMut::from(&b"SUB   aaaaaaaaaaaaa 12\r\n"[..]);
    assert!(matches!(
        p.next_op(&mut buf),
        Ok(Some(ClientOp::Sub { .. }))
    ));
    // 17 bytes of arguments: rejected.
    let e = error_of(b"SUB aaaaaaaaaaaaa 123\r\n", limits);
    assert_eq!(e, ProtocolError::MaxControlLineExceeded);
    assert_eq!(e.err_text(), Some("maximum control line exceeded"));
    assert!(e.closes_connection());
}

#[test]
fn default_control_line_limit_is_4096_argument_bytes_for_every_op() {
    let subject = "a".repeat(4094);
    let ok = format!("SUB {subject} 1\r\n"); // arguments: 4096 bytes
    let mut p = ClientParser::new(Limits::default());
    let mut buf = BytesMut::from(ok.as_bytes());
    assert!(matches!(
        p.next_op(&mut buf),
        Ok(Some(ClientOp::Sub { .. }))
    ));

    let long = "a".repeat(4095);
    for input in [
        format!("SUB {long} 1\r\n"),
        format!("PUB {long} 1\r\nx\r\n"),
        format!("HPUB {long} 0 1\r\nx\r\n"),
        format!("UNSUB {long}1 1\r\n"),
        format!("CONNECT {{\"name\":\"{long}\"}}\r\n"),
    ] {
        check(
            input.as_bytes(),
            ProtocolError::MaxControlLineExceeded,
            Some("maximum control line exceeded"),
        );
    }
}

#[test]
fn control_line_limit_is_enforced_before_the_newline_arrives() {
    // Otherwise a client could make the broker buffer an endless line.
    let mut p = ClientParser::new(Limits::default());
    let mut buf = BytesMut::from(format!("PUB {}", "a".repeat(4096)).as_bytes());
    assert_eq!(p.next_op(&mut buf), Ok(None));
    buf.extend_from_slice(b"a");
    assert_eq!(
        p.next_op(&mut buf),
        Err(ProtocolError::MaxControlLineExceeded)
    );
    // PING's ignored tail and runs of whitespace are bounded too.
    let mut p = ClientParser::new(Limits::default());
    let mut buf = BytesMut::from(format!("PING{}", " ".repeat(4097)).as_bytes());
    assert_eq!(
        p.next_op(&mut buf),
        Err(ProtocolError::MaxControlLineExceeded)
    );
    let mut p = ClientParser::new(Limits::default());
    let mut buf = BytesMut::from(format!("PUB{}", " ".repeat(4097)).as_bytes());
    assert_eq!(
        p.next_op(&mut buf),
        Err(ProtocolError::MaxControlLineExceeded)
    );
}

#[test]
fn payload_over_max_is_maximum_payload_violation_at_the_control_line() {
    let limits = Limits::default();
    // No payload bytes needed: nats-server rejects at the control line.
    let e = error_of(b"PUB foo 1048577\r\n", limits);
    assert_eq!(e, ProtocolError::MaxPayloadViolation);
    assert_eq!(e.err_text(), Some("Maximum Payload Violation"));
    assert!(e.closes_connection());
    // HPUB: the total (headers + payload) counts.
    assert_eq!(
        error_of(b"HPUB foo 10 1048577\r\n", limits),
        ProtocolError::MaxPayloadViolation
    );
    // Exactly max is fine (needs more bytes).
    let mut p = ClientParser::new(limits);
    let mut buf = BytesMut::from(&b"PUB foo 1048576\r\n"[..]);
    assert_eq!(p.next_op(&mut buf), Ok(None));
}

#[test]
fn wrong_argument_counts_close_without_err() {
    for (input, op) in [
        (&b"PUB foo\r\n"[..], "PUB"),
        (b"PUB a b c 1\r\n", "PUB"),
        (b"PUB \r\n", "PUB"),
        (b"HPUB foo 1\r\n", "HPUB"),
        (b"HPUB a b c d 1\r\n", "HPUB"),
        (b"SUB foo\r\n", "SUB"),
        (b"SUB a b c d\r\n", "SUB"),
        (b"UNSUB \r\n", "UNSUB"),
        (b"UNSUB 1 2 3\r\n", "UNSUB"),
    ] {
        check(input, ProtocolError::InvalidArguments { op }, None);
    }
}

#[test]
fn bad_sizes_close_without_err() {
    for (input, op) in [
        (&b"PUB foo abc\r\n"[..], "PUB"),
        (b"PUB foo -1\r\n", "PUB"),
        (b"PUB foo 1234567890\r\n", "PUB"),
        (b"PUB foo bar 1x\r\n", "PUB"),
        (b"HPUB foo x 5\r\n", "HPUB"),
        (b"HPUB foo 1 y\r\n", "HPUB"),
    ] {
        check(input, ProtocolError::BadSize { op }, None);
    }
}

#[test]
fn hpub_header_size_over_total_closes_without_err() {
    check(
        b"HPUB foo 10 5\r\n",
        ProtocolError::HeaderSizeExceedsTotal { op: "HPUB" },
        None,
    );
}

#[test]
fn connect_errors() {
    let e = error_of(b"CONNECT {oops}\r\n", Limits::default());
    assert!(matches!(e, ProtocolError::InvalidConnect { .. }), "{e:?}");
    assert_eq!(e.err_text(), None, "nats-server closes silently");
    assert!(e.closes_connection());
    // "CONNECT" with nothing after it: empty JSON, closed silently.
    let e = error_of(b"CONNECT\r\n", Limits::default());
    assert!(matches!(e, ProtocolError::InvalidConnect { .. }), "{e:?}");
    assert_eq!(e.err_text(), None);
    check(
        b"CONNECT {\"protocol\":2}\r\n",
        ProtocolError::BadClientProtocol,
        Some("invalid client protocol"),
    );
    check(
        b"CONNECT {\"no_responders\":true}\r\n",
        ProtocolError::NoRespondersRequiresHeaders,
        Some("no responders requires headers support"),
    );
}

#[test]
fn err_and_bad_info_from_a_client_close_without_err() {
    check(
        b"-ERR 'oops'\r\n",
        ProtocolError::ClientSentErr("'oops'".into()),
        None,
    );
    let e = error_of(b"INFO {\r\n", Limits::default());
    assert!(matches!(e, ProtocolError::InvalidInfo { .. }), "{e:?}");
    assert_eq!(e.err_text(), None);
}

#[test]
fn ops_before_the_error_are_delivered_and_the_error_then_sticks() {
    let mut p = ClientParser::new(Limits::default());
    let mut buf = BytesMut::from(&b"PING\r\nBAD\r\nPING\r\n"[..]);
    assert_eq!(p.next_op(&mut buf), Ok(Some(ClientOp::Ping)));
    assert_eq!(p.next_op(&mut buf), Err(ProtocolError::UnknownOperation));
    assert_eq!(p.next_op(&mut buf), Err(ProtocolError::UnknownOperation));
}

#[test]
fn broker_level_errors_keep_the_connection_open() {
    assert_eq!(
        ProtocolError::InvalidSubject.err_text(),
        Some("Invalid Subject")
    );
    assert!(!ProtocolError::InvalidSubject.closes_connection());
    assert_eq!(
        ProtocolError::InvalidPublishSubject.err_text(),
        Some("Invalid Publish Subject")
    );
    assert!(!ProtocolError::InvalidPublishSubject.closes_connection());
    assert_eq!(ProtocolError::HeadersNotSupported.err_text(), None);
    assert!(ProtocolError::HeadersNotSupported.closes_connection());
}
