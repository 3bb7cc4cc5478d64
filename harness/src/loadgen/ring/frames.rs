//! The receive path's parser of the server → client stream: MSG frames read in place.
//!
//! The general parser (`fanbench_protocol::ServerParser`) hands out each payload as `Bytes`,
//! which needs the frame contiguous in one buffer. Here the bytes arrive in provided buffers
//! that go back to the kernel as soon as they are parsed, and a frame may straddle several of
//! them. So the parser is a small state machine fed one buffer at a time: it never keeps a
//! payload, only what it needs of it (the load generator's 28-byte prefix), and copies bytes
//! only when a control line or that prefix is split across buffers. A 1 MiB payload costs no
//! copy and no allocation.
//!
//! What it understands is what a NATS server sends a subscriber: `MSG`, `HMSG` (headers are
//! skipped, the load generator's prefix is at the start of the payload proper), `PING`,
//! `PONG`, `+OK`, `-ERR`, `INFO`.

use anyhow::{bail, Result};

use crate::loadgen::payload::{Header, HEADER_LEN};

/// Longest control line accepted (nats-server's default `max_control_line`, and `INFO` lines
/// are well below the 64 KiB allowed here for them).
const MAX_LINE: usize = 64 * 1024;

/// What one frame was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A `MSG`/`HMSG` whose payload began with a load-generator prefix.
    Msg(Header),
    /// A `MSG`/`HMSG` whose payload is too short to hold the prefix.
    ShortMsg(usize),
    Ping,
    Pong,
    Ok,
    Info,
    Err(String),
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Reading a control line (part of it may be in `line`).
    Line,
    /// Inside a message: `skip` header bytes to pass over, then `left` payload bytes (the
    /// prefix is collected from the first of them), then the CRLF.
    Body {
        skip: usize,
        left: usize,
        len: usize,
    },
    /// The CRLF after a payload: bytes of it still to pass over.
    Trailer(u8),
}

/// One connection's parser state.
pub struct FrameParser {
    state: State,
    line: Vec<u8>,
    prefix: [u8; HEADER_LEN],
    prefix_len: usize,
}

impl Default for FrameParser {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameParser {
    pub fn new() -> Self {
        Self {
            state: State::Line,
            line: Vec::new(),
            prefix: [0; HEADER_LEN],
            prefix_len: 0,
        }
    }

    /// Parses `data` (the next bytes of the stream), calling `on` for every complete frame.
    /// An error means the stream is not one a NATS server sends; the connection is unusable.
    pub fn feed(&mut self, mut data: &[u8], mut on: impl FnMut(Frame)) -> Result<()> {
        while !data.is_empty() {
            match self.state {
                State::Line => {
                    let Some(nl) = memchr::memchr(b'\n', data) else {
                        if self.line.len() + data.len() > MAX_LINE {
                            bail!("a control line from the server is longer than {MAX_LINE} bytes");
                        }
                        self.line.extend_from_slice(data);
                        return Ok(());
                    };
                    let frame = if self.line.is_empty() {
                        self.control(&data[..nl])?
                    } else {
                        self.line.extend_from_slice(&data[..nl]);
                        let line = std::mem::take(&mut self.line);
                        let frame = self.control(&line);
                        self.line = line;
                        self.line.clear();
                        frame?
                    };
                    data = &data[nl + 1..];
                    if let Some(frame) = frame {
                        on(frame);
                    }
                }
                State::Body { skip, left, len } => {
                    if skip > 0 {
                        let n = skip.min(data.len());
                        data = &data[n..];
                        self.state = State::Body {
                            skip: skip - n,
                            left,
                            len,
                        };
                        continue;
                    }
                    // Fast path: the whole prefix is in this buffer.
                    if self.prefix_len == 0 && left >= HEADER_LEN && data.len() >= HEADER_LEN {
                        on(Frame::Msg(decode(&data[..HEADER_LEN])));
                        self.prefix_len = HEADER_LEN;
                    } else if self.prefix_len < HEADER_LEN.min(len) {
                        let want = HEADER_LEN.min(len) - self.prefix_len;
                        let n = want.min(data.len());
                        self.prefix[self.prefix_len..self.prefix_len + n]
                            .copy_from_slice(&data[..n]);
                        self.prefix_len += n;
                        if self.prefix_len == HEADER_LEN {
                            on(Frame::Msg(decode(&self.prefix)));
                        }
                    }
                    let n = left.min(data.len());
                    data = &data[n..];
                    if n == left {
                        if len < HEADER_LEN {
                            on(Frame::ShortMsg(len));
                        }
                        self.prefix_len = 0;
                        self.state = State::Trailer(2);
                    } else {
                        self.state = State::Body {
                            skip: 0,
                            left: left - n,
                            len,
                        };
                    }
                }
                State::Trailer(left) => {
                    // Byte by byte: a two-byte slice comparison would be a memcmp call.
                    let want = if left == 2 { b'\r' } else { b'\n' };
                    if data[0] != want {
                        bail!("a message payload from the server is not followed by CRLF");
                    }
                    data = &data[1..];
                    self.state = if left == 1 {
                        State::Line
                    } else {
                        State::Trailer(left - 1)
                    };
                }
            }
        }
        Ok(())
    }

    /// Interprets one control line (without its `\n`); `MSG`/`HMSG` switch to the body state
    /// and report their frame once the prefix has been read.
    fn control(&mut self, line: &[u8]) -> Result<Option<Frame>> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        // The common case first, without searching for the verb's end.
        if let [b'M', b'S', b'G', b' ', ..] = line {
            let len = last_number(line)?;
            self.begin_body(0, len);
            return Ok(None);
        }
        let verb_end = memchr::memchr(b' ', line).unwrap_or(line.len());
        let verb = &line[..verb_end];
        if verb.eq_ignore_ascii_case(b"MSG") {
            let len = last_number(line)?;
            self.begin_body(0, len);
            return Ok(None);
        }
        if verb.eq_ignore_ascii_case(b"HMSG") {
            let total = last_number(line)?;
            let rest = &line[..line.len() - digits_at_end(line)];
            let rest = rest.strip_suffix(b" ").unwrap_or(rest);
            let headers = last_number(rest)?;
            if headers > total {
                bail!("HMSG header size {headers} exceeds its total size {total}");
            }
            self.begin_body(headers, total - headers);
            return Ok(None);
        }
        Ok(Some(match verb.to_ascii_uppercase().as_slice() {
            b"PING" => Frame::Ping,
            b"PONG" => Frame::Pong,
            b"+OK" => Frame::Ok,
            b"INFO" => Frame::Info,
            b"-ERR" => {
                let text = String::from_utf8_lossy(&line[verb_end..]);
                Frame::Err(text.trim().trim_matches('\'').to_string())
            }
            _ => bail!(
                "unknown operation from the server: {:?}",
                String::from_utf8_lossy(&line[..line.len().min(64)])
            ),
        }))
    }

    fn begin_body(&mut self, skip: usize, len: usize) {
        self.prefix_len = 0;
        self.state = State::Body {
            skip,
            left: len,
            len,
        };
    }

    /// Whether the parser is between frames (nothing of a frame is pending).
    #[cfg(test)]
    pub fn at_frame_boundary(&self) -> bool {
        matches!(self.state, State::Line) && self.line.is_empty()
    }
}

fn decode(prefix: &[u8]) -> Header {
    // The caller passes exactly HEADER_LEN bytes, so decoding cannot fail.
    Header::decode(prefix).unwrap_or(Header {
        publisher: u32::MAX,
        seq: 0,
        intended_ns: 0,
        actual_ns: 0,
    })
}

fn digits_at_end(line: &[u8]) -> usize {
    line.iter().rev().take_while(|b| b.is_ascii_digit()).count()
}

/// The decimal number that ends `line`.
fn last_number(line: &[u8]) -> Result<usize> {
    let digits = digits_at_end(line);
    if digits == 0 || digits > 12 {
        bail!(
            "a message line from the server does not end with a size: {:?}",
            String::from_utf8_lossy(&line[..line.len().min(64)])
        );
    }
    Ok(line[line.len() - digits..]
        .iter()
        .fold(0usize, |n, d| n * 10 + usize::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(seq: u64, len: usize) -> Vec<u8> {
        let mut p = Header {
            publisher: 3,
            seq,
            intended_ns: 1000 + seq,
            actual_ns: 2000 + seq,
        }
        .encode()
        .to_vec();
        p.resize(len.max(HEADER_LEN), b'x');
        p.truncate(len);
        p
    }

    fn msg(seq: u64, len: usize) -> Vec<u8> {
        let mut out = format!("MSG fanbench.a.3 1 {len}\r\n").into_bytes();
        out.extend_from_slice(&payload(seq, len));
        out.extend_from_slice(b"\r\n");
        out
    }

    fn frames_of(stream: &[u8], chunk: usize) -> Vec<Frame> {
        let mut parser = FrameParser::new();
        let mut out = Vec::new();
        for piece in stream.chunks(chunk) {
            parser.feed(piece, |f| out.push(f)).expect("parses");
        }
        assert!(parser.at_frame_boundary(), "stream ended mid-frame");
        out
    }

    #[test]
    fn every_split_of_a_stream_yields_the_same_frames() {
        let mut stream = b"INFO {\"server_id\":\"x\"}\r\nPING\r\n".to_vec();
        for seq in 0..5 {
            stream.extend_from_slice(&msg(seq, 128));
        }
        stream.extend_from_slice(&msg(9, 3000));
        stream.extend_from_slice(b"+OK\r\nPONG\r\n-ERR 'Slow Consumer'\r\n");
        let whole = frames_of(&stream, stream.len());
        assert_eq!(whole.len(), 11);
        assert_eq!(whole[0], Frame::Info);
        assert_eq!(whole[1], Frame::Ping);
        assert_eq!(
            whole[2],
            Frame::Msg(Header {
                publisher: 3,
                seq: 0,
                intended_ns: 1000,
                actual_ns: 2000
            })
        );
        assert!(matches!(whole[7], Frame::Msg(h) if h.seq == 9));
        assert_eq!(whole[10], Frame::Err("Slow Consumer".into()));
        for chunk in [1, 2, 3, 7, 27, 28, 29, 100, 1000] {
            assert_eq!(frames_of(&stream, chunk), whole, "chunk size {chunk}");
        }
    }

    #[test]
    fn hmsg_skips_headers_and_reads_the_prefix_of_the_payload() {
        let headers = b"NATS/1.0\r\nA: b\r\n\r\n";
        let body = payload(7, 64);
        let mut stream = format!(
            "HMSG s 1 {} {}\r\n",
            headers.len(),
            headers.len() + body.len()
        )
        .into_bytes();
        stream.extend_from_slice(headers);
        stream.extend_from_slice(&body);
        stream.extend_from_slice(b"\r\n");
        for chunk in [1, 5, stream.len()] {
            let frames = frames_of(&stream, chunk);
            assert!(
                matches!(frames[..], [Frame::Msg(h)] if h.seq == 7),
                "{frames:?}"
            );
        }
    }

    #[test]
    fn a_payload_shorter_than_the_prefix_is_reported_not_decoded() {
        let stream = b"MSG s 1 5\r\nhello\r\nMSG s 1 0\r\n\r\nPING\r\n";
        for chunk in [1, 4, stream.len()] {
            assert_eq!(
                frames_of(stream, chunk),
                vec![Frame::ShortMsg(5), Frame::ShortMsg(0), Frame::Ping]
            );
        }
    }

    #[test]
    fn a_reply_subject_does_not_change_the_size() {
        let mut stream = b"MSG s 1 _INBOX.x 28\r\n".to_vec();
        stream.extend_from_slice(&payload(1, 28));
        stream.extend_from_slice(b"\r\n");
        assert!(matches!(frames_of(&stream, 3)[..], [Frame::Msg(h)] if h.seq == 1));
    }

    #[test]
    fn garbage_and_missing_trailers_are_errors_not_panics() {
        let mut parser = FrameParser::new();
        assert!(parser.feed(b"HELLO there\r\n", |_| {}).is_err());
        let mut parser = FrameParser::new();
        assert!(parser.feed(b"MSG s 1 abc\r\n", |_| {}).is_err());
        let mut parser = FrameParser::new();
        assert!(parser.feed(b"MSG s 1 2\r\nabXY", |_| {}).is_err());
        let mut parser = FrameParser::new();
        assert!(parser
            .feed(b"HMSG s 1 10 5\r\n", |_| {})
            .expect_err("headers larger than the total")
            .to_string()
            .contains("exceeds"));
        let mut parser = FrameParser::new();
        let long = vec![b'a'; MAX_LINE + 1];
        assert!(parser.feed(&long, |_| {}).is_err());
    }
}
