//! Server → client operations and their incremental parser (the load generator's read path).

use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};

use crate::line::{self, LineScanner, OpSpec, Sep};
use crate::{Limits, ProtocolError, ServerInfo};

/// A server → client operation. All byte fields are zero-copy slices of the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOp {
    /// `INFO {json}`.
    Info(ServerInfo),
    /// `MSG <subject> <sid> [reply-to] <#bytes>` and its payload.
    Msg {
        subject: Bytes,
        sid: Bytes,
        reply_to: Option<Bytes>,
        payload: Bytes,
    },
    /// `HMSG <subject> <sid> [reply-to] <#header bytes> <#total bytes>`: `headers` is the
    /// header block, `payload` what follows it.
    HMsg {
        subject: Bytes,
        sid: Bytes,
        reply_to: Option<Bytes>,
        headers: Bytes,
        payload: Bytes,
    },
    Ping,
    Pong,
    /// `+OK`.
    Ok,
    /// `-ERR '<text>'`: the text between the quotes (the whole argument if it is not quoted).
    Err(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Msg,
    HMsg,
    Ping,
    Pong,
    Ok,
    Err,
    Info,
}

const TABLE: &[OpSpec<Kind>] = &[
    OpSpec {
        name: b"MSG",
        sep: Sep::Required,
        kind: Kind::Msg,
    },
    OpSpec {
        name: b"HMSG",
        sep: Sep::Required,
        kind: Kind::HMsg,
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
        name: b"+OK",
        sep: Sep::RestIgnored,
        kind: Kind::Ok,
    },
    OpSpec {
        name: b"-ERR",
        sep: Sep::Required,
        kind: Kind::Err,
    },
    OpSpec {
        name: b"INFO",
        sep: Sep::Optional,
        kind: Kind::Info,
    },
];

#[derive(Debug)]
struct PendingMsg {
    total: usize,
    subject: Range<usize>,
    sid: Range<usize>,
    reply_to: Option<Range<usize>>,
    headers: Option<usize>,
    body_start: usize,
}

/// Incremental, zero-copy parser for the server → client direction. Same contract as
/// [`crate::ClientParser::next_op`]. `Limits` apply as on the server side; note that an `INFO`
/// line from a large nats-server cluster (many `connect_urls`) can exceed the default 4096-byte
/// control line, so a client talking to such a server should raise `max_control_line`.
#[derive(Debug)]
pub struct ServerParser {
    limits: Limits,
    scanner: LineScanner,
    pending: Option<PendingMsg>,
    failed: Option<ProtocolError>,
}

impl ServerParser {
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

    /// See [`crate::ClientParser::next_op`].
    pub fn next_op(&mut self, buf: &mut BytesMut) -> Result<Option<ServerOp>, ProtocolError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.parse(buf);
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<ServerOp>, ProtocolError> {
        if let Some(p) = self.pending.take() {
            if !line::payload_ready(buf, p.total)? {
                self.pending = Some(p);
                return Ok(None);
            }
            return Ok(Some(finish_msg(buf, p)));
        }
        let Some(l) = self
            .scanner
            .next_line(buf, TABLE, self.limits.max_control_line)?
        else {
            return Ok(None);
        };
        let pending = match l.kind {
            Kind::Msg => {
                let mut a: [Range<usize>; 4] = Default::default();
                let (subject, sid, reply_to, size) = match line::split_args(buf, l.args, &mut a) {
                    3 => (a[0].clone(), a[1].clone(), None, a[2].clone()),
                    4 => (a[0].clone(), a[1].clone(), Some(a[2].clone()), a[3].clone()),
                    _ => return Err(ProtocolError::InvalidArguments { op: "MSG" }),
                };
                let size =
                    line::parse_size(&buf[size]).ok_or(ProtocolError::BadSize { op: "MSG" })?;
                if size > self.limits.max_payload {
                    return Err(ProtocolError::MaxPayloadViolation);
                }
                PendingMsg {
                    total: l.len + size + 2,
                    subject,
                    sid,
                    reply_to,
                    headers: None,
                    body_start: l.len,
                }
            }
            Kind::HMsg => {
                let mut a: [Range<usize>; 5] = Default::default();
                let (subject, sid, reply_to, hdr, total) =
                    match line::split_args(buf, l.args, &mut a) {
                        4 => (a[0].clone(), a[1].clone(), None, a[2].clone(), a[3].clone()),
                        5 => (
                            a[0].clone(),
                            a[1].clone(),
                            Some(a[2].clone()),
                            a[3].clone(),
                            a[4].clone(),
                        ),
                        _ => return Err(ProtocolError::InvalidArguments { op: "HMSG" }),
                    };
                let bad = ProtocolError::BadSize { op: "HMSG" };
                let hdr = line::parse_size(&buf[hdr]).ok_or_else(|| bad.clone())?;
                let total = line::parse_size(&buf[total]).ok_or(bad)?;
                if hdr > total {
                    return Err(ProtocolError::HeaderSizeExceedsTotal { op: "HMSG" });
                }
                if total > self.limits.max_payload {
                    return Err(ProtocolError::MaxPayloadViolation);
                }
                PendingMsg {
                    total: l.len + total + 2,
                    subject,
                    sid,
                    reply_to,
                    headers: Some(hdr),
                    body_start: l.len,
                }
            }
            Kind::Ping => {
                buf.advance(l.len);
                return Ok(Some(ServerOp::Ping));
            }
            Kind::Pong => {
                buf.advance(l.len);
                return Ok(Some(ServerOp::Pong));
            }
            Kind::Ok => {
                buf.advance(l.len);
                return Ok(Some(ServerOp::Ok));
            }
            Kind::Err => {
                let arg = &buf[l.args];
                let text = match arg {
                    [b'\'', inner @ .., b'\''] => inner,
                    _ => arg,
                };
                let text = String::from_utf8_lossy(text).into_owned();
                buf.advance(l.len);
                return Ok(Some(ServerOp::Err(text)));
            }
            Kind::Info => {
                let info: ServerInfo = serde_json::from_slice(&buf[l.args]).map_err(|e| {
                    ProtocolError::InvalidInfo {
                        reason: e.to_string(),
                    }
                })?;
                buf.advance(l.len);
                return Ok(Some(ServerOp::Info(info)));
            }
        };
        if !line::payload_ready(buf, pending.total)? {
            self.pending = Some(pending);
            return Ok(None);
        }
        Ok(Some(finish_msg(buf, pending)))
    }
}

fn finish_msg(buf: &mut BytesMut, p: PendingMsg) -> ServerOp {
    let frame: Bytes = buf.split_to(p.total).freeze();
    let body_end = p.total - 2;
    let subject = frame.slice(p.subject);
    let sid = frame.slice(p.sid);
    let reply_to = p.reply_to.map(|r| frame.slice(r));
    match p.headers {
        None => ServerOp::Msg {
            subject,
            sid,
            reply_to,
            payload: frame.slice(p.body_start..body_end),
        },
        Some(h) => ServerOp::HMsg {
            subject,
            sid,
            reply_to,
            headers: frame.slice(p.body_start..p.body_start + h),
            payload: frame.slice(p.body_start + h..body_end),
        },
    }
}
