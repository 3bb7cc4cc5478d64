//! Encoders. Every function appends to a `BytesMut`; integers are formatted with `itoa`.
//!
//! Encoders do not validate their input (subjects, sids): callers send what they mean to send,
//! including deliberately invalid input in tests.

use bytes::{BufMut, BytesMut};

use crate::{Connect, ServerInfo};

pub const CRLF: &[u8] = b"\r\n";

#[inline]
fn put_usize(out: &mut BytesMut, n: usize) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(n).as_bytes());
}

#[inline]
fn put_u64(out: &mut BytesMut, n: u64) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(n).as_bytes());
}

/// Room for a control line with these variable parts (op name, spaces, two numbers, CRLF).
#[inline]
fn reserve_line(out: &mut BytesMut, parts: usize) {
    out.reserve(parts + 8 + 2 * 20 + 4);
}

#[inline]
fn put_json<T: serde::Serialize>(out: &mut BytesMut, v: &T) {
    // Writing into a BytesMut cannot fail, and these types (strings, integers, booleans,
    // string lists) always serialize.
    serde_json::to_writer(out.writer(), v).expect("INFO/CONNECT serialization cannot fail");
}

/// `INFO {json}\r\n`.
pub fn info(out: &mut BytesMut, info: &ServerInfo) {
    out.extend_from_slice(b"INFO ");
    put_json(out, info);
    out.extend_from_slice(CRLF);
}

/// `CONNECT {json}\r\n`.
pub fn connect(out: &mut BytesMut, c: &Connect) {
    out.extend_from_slice(b"CONNECT ");
    put_json(out, c);
    out.extend_from_slice(CRLF);
}

/// `MSG <subject> <sid> [reply-to] <#bytes>\r\n`. The payload and a CRLF must follow (the
/// broker sends them as separate iovecs).
pub fn msg_header(
    out: &mut BytesMut,
    subject: &[u8],
    sid: &[u8],
    reply_to: Option<&[u8]>,
    payload_len: usize,
) {
    reserve_line(
        out,
        subject.len() + sid.len() + reply_to.map_or(0, <[u8]>::len),
    );
    out.extend_from_slice(b"MSG ");
    out.extend_from_slice(subject);
    out.put_u8(b' ');
    out.extend_from_slice(sid);
    out.put_u8(b' ');
    if let Some(r) = reply_to {
        out.extend_from_slice(r);
        out.put_u8(b' ');
    }
    put_usize(out, payload_len);
    out.extend_from_slice(CRLF);
}

/// `HMSG <subject> <sid> [reply-to] <#header bytes> <#total bytes>\r\n`. Headers, payload and
/// a CRLF must follow.
pub fn hmsg_header(
    out: &mut BytesMut,
    subject: &[u8],
    sid: &[u8],
    reply_to: Option<&[u8]>,
    headers_len: usize,
    total_len: usize,
) {
    reserve_line(
        out,
        subject.len() + sid.len() + reply_to.map_or(0, <[u8]>::len),
    );
    out.extend_from_slice(b"HMSG ");
    out.extend_from_slice(subject);
    out.put_u8(b' ');
    out.extend_from_slice(sid);
    out.put_u8(b' ');
    if let Some(r) = reply_to {
        out.extend_from_slice(r);
        out.put_u8(b' ');
    }
    put_usize(out, headers_len);
    out.put_u8(b' ');
    put_usize(out, total_len);
    out.extend_from_slice(CRLF);
}

/// A complete `MSG` including payload and trailing CRLF.
pub fn msg(
    out: &mut BytesMut,
    subject: &[u8],
    sid: &[u8],
    reply_to: Option<&[u8]>,
    payload: &[u8],
) {
    msg_header(out, subject, sid, reply_to, payload.len());
    out.reserve(payload.len() + 2);
    out.extend_from_slice(payload);
    out.extend_from_slice(CRLF);
}

/// A complete `HMSG` including header block, payload and trailing CRLF.
pub fn hmsg(
    out: &mut BytesMut,
    subject: &[u8],
    sid: &[u8],
    reply_to: Option<&[u8]>,
    headers: &[u8],
    payload: &[u8],
) {
    hmsg_header(
        out,
        subject,
        sid,
        reply_to,
        headers.len(),
        headers.len() + payload.len(),
    );
    out.reserve(headers.len() + payload.len() + 2);
    out.extend_from_slice(headers);
    out.extend_from_slice(payload);
    out.extend_from_slice(CRLF);
}

/// A complete `PUB <subject> [reply-to] <#bytes>\r\n<payload>\r\n`.
pub fn pub_op(out: &mut BytesMut, subject: &[u8], reply_to: Option<&[u8]>, payload: &[u8]) {
    reserve_line(
        out,
        subject.len() + reply_to.map_or(0, <[u8]>::len) + payload.len(),
    );
    out.extend_from_slice(b"PUB ");
    out.extend_from_slice(subject);
    out.put_u8(b' ');
    if let Some(r) = reply_to {
        out.extend_from_slice(r);
        out.put_u8(b' ');
    }
    put_usize(out, payload.len());
    out.extend_from_slice(CRLF);
    out.extend_from_slice(payload);
    out.extend_from_slice(CRLF);
}

/// A complete `HPUB <subject> [reply-to] <#header bytes> <#total bytes>\r\n<headers><payload>\r\n`.
pub fn hpub_op(
    out: &mut BytesMut,
    subject: &[u8],
    reply_to: Option<&[u8]>,
    headers: &[u8],
    payload: &[u8],
) {
    reserve_line(
        out,
        subject.len() + reply_to.map_or(0, <[u8]>::len) + headers.len() + payload.len(),
    );
    out.extend_from_slice(b"HPUB ");
    out.extend_from_slice(subject);
    out.put_u8(b' ');
    if let Some(r) = reply_to {
        out.extend_from_slice(r);
        out.put_u8(b' ');
    }
    put_usize(out, headers.len());
    out.put_u8(b' ');
    put_usize(out, headers.len() + payload.len());
    out.extend_from_slice(CRLF);
    out.extend_from_slice(headers);
    out.extend_from_slice(payload);
    out.extend_from_slice(CRLF);
}

/// `SUB <subject> [queue group] <sid>\r\n`.
pub fn sub(out: &mut BytesMut, subject: &[u8], queue_group: Option<&[u8]>, sid: &[u8]) {
    reserve_line(
        out,
        subject.len() + queue_group.map_or(0, <[u8]>::len) + sid.len(),
    );
    out.extend_from_slice(b"SUB ");
    out.extend_from_slice(subject);
    out.put_u8(b' ');
    if let Some(q) = queue_group {
        out.extend_from_slice(q);
        out.put_u8(b' ');
    }
    out.extend_from_slice(sid);
    out.extend_from_slice(CRLF);
}

/// `UNSUB <sid> [max_msgs]\r\n`.
pub fn unsub(out: &mut BytesMut, sid: &[u8], max_msgs: Option<u64>) {
    reserve_line(out, sid.len());
    out.extend_from_slice(b"UNSUB ");
    out.extend_from_slice(sid);
    if let Some(m) = max_msgs {
        out.put_u8(b' ');
        put_u64(out, m);
    }
    out.extend_from_slice(CRLF);
}

/// `PING\r\n`.
pub fn ping(out: &mut BytesMut) {
    out.extend_from_slice(b"PING\r\n");
}

/// `PONG\r\n`.
pub fn pong(out: &mut BytesMut) {
    out.extend_from_slice(b"PONG\r\n");
}

/// `+OK\r\n`.
pub fn ok(out: &mut BytesMut) {
    out.extend_from_slice(b"+OK\r\n");
}

/// `-ERR '<text>'\r\n`.
pub fn err(out: &mut BytesMut, text: &str) {
    out.reserve(text.len() + 9);
    out.extend_from_slice(b"-ERR '");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"'\r\n");
}
