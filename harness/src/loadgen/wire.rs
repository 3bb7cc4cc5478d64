//! The load generator's view of the protocol: what it sends (through `fanbench_protocol::encode`)
//! and the few server operations it acts on (parsed by `fanbench_protocol::ServerParser`).

use std::io::{self, Read, Write};
use std::net::TcpStream;

use anyhow::{bail, Context, Result};
use bytes::{Bytes, BytesMut};
use fanbench_protocol::{encode, Connect, Limits, ServerOp, ServerParser};

/// `PONG\r\n`.
pub const PONG: &[u8] = b"PONG\r\n";

/// A server operation, reduced to what the load generator needs.
#[derive(Debug)]
pub enum Incoming {
    Info,
    /// `MSG` or `HMSG`: the payload (after any headers).
    Msg(Bytes),
    Ping,
    Pong,
    Ok,
    Err(String),
}

/// Incremental parser of one connection's server → client stream.
pub struct Parser {
    inner: ServerParser,
}

impl Parser {
    /// A parser accepting payloads up to `max_payload` bytes (never below nats-server's 1 MiB
    /// default).
    pub fn new(max_payload: usize) -> Self {
        let defaults = Limits::default();
        Self {
            inner: ServerParser::new(Limits {
                max_payload: max_payload.max(defaults.max_payload),
                ..defaults
            }),
        }
    }

    /// The next complete operation in `buf` (consumed from it), or `None` if more bytes are needed.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Incoming>> {
        let op = self
            .inner
            .next_op(buf)
            .context("parsing the server's byte stream")?;
        Ok(op.map(|op| match op {
            ServerOp::Info(_) => Incoming::Info,
            ServerOp::Msg { payload, .. } | ServerOp::HMsg { payload, .. } => {
                Incoming::Msg(payload)
            }
            ServerOp::Ping => Incoming::Ping,
            ServerOp::Pong => Incoming::Pong,
            ServerOp::Ok => Incoming::Ok,
            ServerOp::Err(text) => Incoming::Err(text),
        }))
    }
}

/// `CONNECT` (quiet: no `+OK`s, no echo, no headers), then `SUB <subject> <sid>` when given,
/// then `PING`: the `PONG` answering it proves the server processed everything before it.
pub fn hello(name: &str, subscribe: Option<(&str, &str)>) -> BytesMut {
    let connect = Connect {
        verbose: false,
        pedantic: false,
        echo: false,
        headers: false,
        protocol: 1,
        name: Some(name.to_string()),
        lang: Some("rust".to_string()),
        version: Some(env!("CARGO_PKG_VERSION").to_string()),
        ..Connect::default()
    };
    let mut out = BytesMut::with_capacity(256);
    encode::connect(&mut out, &connect);
    if let Some((subject, sid)) = subscribe {
        encode::sub(&mut out, subject.as_bytes(), None, sid.as_bytes());
    }
    encode::ping(&mut out);
    out
}

/// What a blocking handshake does with a server `PING`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pings {
    Answer,
    Ignore,
}

/// Blocking read from `stream` until `done` accepts an operation; `-ERR` or a closed
/// connection is an error. Bytes read past that operation stay in `buf`.
pub fn read_until(
    stream: &mut TcpStream,
    parser: &mut Parser,
    buf: &mut BytesMut,
    pings: Pings,
    done: impl Fn(&Incoming) -> bool,
) -> Result<()> {
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(op) = parser.next(buf)? {
            match op {
                Incoming::Err(text) => bail!("server sent -ERR {text}"),
                Incoming::Ping if pings == Pings::Answer => {
                    stream.write_all(PONG).context("sending PONG")?
                }
                op if done(&op) => return Ok(()),
                _ => {}
            }
        }
        let n = match stream.read(&mut chunk) {
            // A socket read with a timeout returns EINTR instead of restarting (e.g. when
            // io_uring task work is signalled to this thread): read again.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            read => read.context("reading from the server")?,
        };
        if n == 0 {
            bail!("server closed the connection");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_subscribes_then_pings() {
        let text =
            String::from_utf8(hello("x", Some(("fanbench.a.0", "1"))).to_vec()).expect("ascii");
        assert!(text.starts_with("CONNECT {"), "{text}");
        assert!(text.contains("\"verbose\":false"), "{text}");
        assert!(text.contains("\"echo\":false"), "{text}");
        assert!(
            text.ends_with("\r\nSUB fanbench.a.0 1\r\nPING\r\n"),
            "{text}"
        );
    }

    #[test]
    fn parser_yields_msg_payload_ping_and_err_text() {
        let mut p = Parser::new(1024);
        let mut buf =
            BytesMut::from(&b"MSG s 1 3\r\nabc\r\nPING\r\n-ERR 'Slow Consumer'\r\nMS"[..]);
        assert!(
            matches!(p.next(&mut buf).expect("ok"), Some(Incoming::Msg(b)) if &b[..] == b"abc")
        );
        assert!(matches!(
            p.next(&mut buf).expect("ok"),
            Some(Incoming::Ping)
        ));
        assert!(
            matches!(p.next(&mut buf).expect("ok"), Some(Incoming::Err(t)) if t == "Slow Consumer")
        );
        assert!(p.next(&mut buf).expect("ok").is_none());
    }
}
