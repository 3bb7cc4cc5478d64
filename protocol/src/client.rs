//! Client → server operations and their incremental parser (the broker's read path).

use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};

use crate::line::{self, LineScanner, OpSpec, Sep};
use crate::{Connect, Limits, ProtocolError};

/// A client → server operation. All byte fields are zero-copy slices of the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOp {
    /// `CONNECT {json}`, parsed and validated (see [`Connect::from_json`]).
    Connect(Connect),
    /// `PUB <subject> [reply-to] <#bytes>` and its payload.
    ///
    /// The subject is *not* validated here: on a pedantic connection nats-server answers a
    /// non-literal subject with `-ERR 'Invalid Publish Subject'` (see
    /// [`crate::subject::is_valid_literal_subject`]) without closing.
    Pub {
        subject: Bytes,
        reply_to: Option<Bytes>,
        payload: Bytes,
    },
    /// `HPUB <subject> [reply-to] <#header bytes> <#total bytes>`.
    /// `headers` is the whole header block (`"NATS/1.0\r\n...\r\n\r\n"`), `payload` what follows
    /// it. The header block is not validated (nats-server does not either). The broker must
    /// reject `HPUB` with [`ProtocolError::HeadersNotSupported`] when the client's `CONNECT` did
    /// not set `headers`.
    HPub {
        subject: Bytes,
        reply_to: Option<Bytes>,
        headers: Bytes,
        payload: Bytes,
    },
    /// `SUB <subject> [queue group] <sid>`.
    ///
    /// The subject is *not* validated here: an invalid one is a broker-level error
    /// ([`crate::subject::is_valid_subject`] → `-ERR 'Invalid Subject'`) that does **not** close
    /// the connection ([`ProtocolError::InvalidSubject`]).
    Sub {
        subject: Bytes,
        queue_group: Option<Bytes>,
        sid: Bytes,
    },
    /// `UNSUB <sid> [max_msgs]`.
    ///
    /// As in nats-server (`processUnsub`), a `max_msgs` that is not a valid size is not an error:
    /// it reads as `None`. nats-server unsubscribes immediately when max is absent, invalid or 0,
    /// and otherwise after `max_msgs` deliveries in total; so `None` and `Some(0)` both mean
    /// "now".
    Unsub { sid: Bytes, max_msgs: Option<u64> },
    /// `PING`.
    Ping,
    /// `PONG`.
    Pong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pub,
    HPub,
    Sub,
    Unsub,
    Ping,
    Pong,
    Connect,
    Info,
    Ok,
    Err,
}

/// Hot operations first: the table is searched in order.
const TABLE: &[OpSpec<Kind>] = &[
    OpSpec {
        name: b"PUB",
        sep: Sep::Required,
        kind: Kind::Pub,
    },
    OpSpec {
        name: b"HPUB",
        sep: Sep::Required,
        kind: Kind::HPub,
    },
    OpSpec {
        name: b"SUB",
        sep: Sep::Required,
        kind: Kind::Sub,
    },
    OpSpec {
        name: b"UNSUB",
        sep: Sep::Required,
        kind: Kind::Unsub,
    },
    OpSpec {
        name: b"PING",
        sep: Sep::RestIgnored,
        kind: Kind::Ping,
    },
    OpSpec {
        name: b"PONG",
        sep: Sep::RestIgnored,
        kind: Kind::Pong,
    },
    OpSpec {
        name: b"CONNECT",
        sep: Sep::Optional,
        kind: Kind::Connect,
    },
    OpSpec {
        name: b"INFO",
        sep: Sep::Optional,
        kind: Kind::Info,
    },
    OpSpec {
        name: b"+OK",
        sep: Sep::RestIgnored,
        kind: Kind::Ok,
    },
    OpSpec {
        name: b"-ERR",
        sep: Sep::Required,
        kind: Kind::Err,
    },
];

/// A `PUB`/`HPUB` whose control line is parsed and whose payload is still arriving.
#[derive(Debug)]
struct PendingPub {
    /// Frame length: control line + payload + CRLF.
    total: usize,
    subject: Range<usize>,
    reply_to: Option<Range<usize>>,
    /// `Some(header length)` for `HPUB`.
    headers: Option<usize>,
    /// Where the payload (or header block) starts: the control line's length.
    body_start: usize,
}

/// Incremental, zero-copy parser for the client → server direction.
///
/// Accepts what nats-server accepts from a client: operation names in any case, arguments
/// separated by runs of spaces/tabs, `\r\n` or a bare `\n` as line end. It also consumes, like
/// nats-server, `+OK` (ignored), `INFO {json}` (JSON checked, then ignored) and `-ERR`
/// ([`ProtocolError::ClientSentErr`], closes). `MSG`/`HMSG` from a client are unknown
/// operations.
#[derive(Debug)]
pub struct ClientParser {
    limits: Limits,
    scanner: LineScanner,
    pending: Option<PendingPub>,
    failed: Option<ProtocolError>,
}

impl ClientParser {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            scanner: LineScanner::default(),
            pending: None,
            failed: None,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Parse the next complete operation at the front of `buf`, removing its bytes from `buf`
    /// (`split_to(..).freeze()`, so payloads share the read buffer's allocation; nothing is
    /// copied).
    ///
    /// `Ok(None)`: more bytes are needed; `buf` keeps the partial operation and the parser
    /// remembers how far it has looked, so nothing is rescanned. Between calls the caller may
    /// only append to `buf`. Input may be split at any byte.
    ///
    /// After an error the connection is done: every later call returns the same error.
    pub fn next_op(&mut self, buf: &mut BytesMut) -> Result<Option<ClientOp>, ProtocolError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.parse(buf);
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<ClientOp>, ProtocolError> {
        loop {
            if let Some(p) = self.pending.take() {
                if !line::payload_ready(buf, p.total)? {
                    self.pending = Some(p);
                    return Ok(None);
                }
                return Ok(Some(finish_pub(buf, p)));
            }
            let Some(l) = self
                .scanner
                .next_line(buf, TABLE, self.limits.max_control_line)?
            else {
                return Ok(None);
            };
            match l.kind {
                Kind::Pub => {
                    let mut a: [Range<usize>; 3] = Default::default();
                    let (subject, reply_to, size) = match line::split_args(buf, l.args, &mut a) {
                        2 => (a[0].clone(), None, a[1].clone()),
                        3 => (a[0].clone(), Some(a[1].clone()), a[2].clone()),
                        _ => return Err(ProtocolError::InvalidArguments { op: "PUB" }),
                    };
                    let size =
                        line::parse_size(&buf[size]).ok_or(ProtocolError::BadSize { op: "PUB" })?;
                    if size > self.limits.max_payload {
                        return Err(ProtocolError::MaxPayloadViolation);
                    }
                    self.pending = Some(PendingPub {
                        total: l.len + size + 2,
                        subject,
                        reply_to,
                        headers: None,
                        body_start: l.len,
                    });
                }
                Kind::HPub => {
                    let mut a: [Range<usize>; 4] = Default::default();
                    let (subject, reply_to, hdr, total) =
                        match line::split_args(buf, l.args, &mut a) {
                            3 => (a[0].clone(), None, a[1].clone(), a[2].clone()),
                            4 => (a[0].clone(), Some(a[1].clone()), a[2].clone(), a[3].clone()),
                            _ => return Err(ProtocolError::InvalidArguments { op: "HPUB" }),
                        };
                    let bad = ProtocolError::BadSize { op: "HPUB" };
                    let hdr = line::parse_size(&buf[hdr]).ok_or_else(|| bad.clone())?;
                    let total = line::parse_size(&buf[total]).ok_or(bad)?;
                    if hdr > total {
                        return Err(ProtocolError::HeaderSizeExceedsTotal { op: "HPUB" });
                    }
                    if total > self.limits.max_payload {
                        return Err(ProtocolError::MaxPayloadViolation);
                    }
                    self.pending = Some(PendingPub {
                        total: l.len + total + 2,
                        subject,
                        reply_to,
                        headers: Some(hdr),
                        body_start: l.len,
                    });
                }
                Kind::Sub => {
                    let mut a: [Range<usize>; 3] = Default::default();
                    let (subject, queue, sid) = match line::split_args(buf, l.args, &mut a) {
                        2 => (a[0].clone(), None, a[1].clone()),
                        3 => (a[0].clone(), Some(a[1].clone()), a[2].clone()),
                        _ => return Err(ProtocolError::InvalidArguments { op: "SUB" }),
                    };
                    let frame = buf.split_to(l.len).freeze();
                    return Ok(Some(ClientOp::Sub {
                        subject: frame.slice(subject),
                        queue_group: queue.map(|q| frame.slice(q)),
                        sid: frame.slice(sid),
                    }));
                }
                Kind::Unsub => {
                    let mut a: [Range<usize>; 2] = Default::default();
                    let (sid, max) = match line::split_args(buf, l.args, &mut a) {
                        1 => (a[0].clone(), None),
                        2 => (a[0].clone(), Some(a[1].clone())),
                        _ => return Err(ProtocolError::InvalidArguments { op: "UNSUB" }),
                    };
                    let max_msgs = max
                        .and_then(|m| line::parse_size(&buf[m]))
                        .map(|m| m as u64);
                    let frame = buf.split_to(l.len).freeze();
                    return Ok(Some(ClientOp::Unsub {
                        sid: frame.slice(sid),
                        max_msgs,
                    }));
                }
                Kind::Ping => {
                    buf.advance(l.len);
                    return Ok(Some(ClientOp::Ping));
                }
                Kind::Pong => {
                    buf.advance(l.len);
                    return Ok(Some(ClientOp::Pong));
                }
                Kind::Connect => {
                    let c = Connect::from_json(&buf[l.args])?;
                    buf.advance(l.len);
                    return Ok(Some(ClientOp::Connect(c)));
                }
                Kind::Info => {
                    // nats-server's processInfo unmarshals and, for a client, ignores it.
                    serde_json::from_slice::<serde::de::IgnoredAny>(&buf[l.args]).map_err(|e| {
                        ProtocolError::InvalidInfo {
                            reason: e.to_string(),
                        }
                    })?;
                    buf.advance(l.len);
                }
                Kind::Ok => buf.advance(l.len),
                Kind::Err => {
                    let text = String::from_utf8_lossy(&buf[l.args]).into_owned();
                    return Err(ProtocolError::ClientSentErr(text));
                }
            }
        }
    }
}

fn finish_pub(buf: &mut BytesMut, p: PendingPub) -> ClientOp {
    let frame: Bytes = buf.split_to(p.total).freeze();
    let body_end = p.total - 2;
    let subject = frame.slice(p.subject);
    let reply_to = p.reply_to.map(|r| frame.slice(r));
    match p.headers {
        None => ClientOp::Pub {
            subject,
            reply_to,
            payload: frame.slice(p.body_start..body_end),
        },
        Some(h) => ClientOp::HPub {
            subject,
            reply_to,
            headers: frame.slice(p.body_start..p.body_start + h),
            payload: frame.slice(p.body_start + h..body_end),
        },
    }
}
