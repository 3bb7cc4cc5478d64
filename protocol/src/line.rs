//! Control-line framing shared by [`crate::ClientParser`] and [`crate::ServerParser`].
//!
//! A control line ends at `\n`; one `\r` right before it is dropped (nats-server accepts a bare
//! `\n` too). The operation name is matched case-insensitively against a per-side table. After
//! the name, depending on the operation, at least one space/tab is required (`PUB`, `SUB`, ...),
//! optional (`CONNECT`, `INFO`), or everything up to the newline is ignored (`PING`, `PONG`,
//! `+OK`), exactly as nats-server's state machine in `parser.go` does.
//!
//! The scanner remembers how far it has searched for `\n`, so a long line (or a large payload,
//! see [`payload_ready`]) that arrives in many small reads is never rescanned.

use std::ops::Range;

use bytes::BytesMut;

use crate::ProtocolError;

/// What may follow an operation name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sep {
    /// At least one space or tab, then the arguments (`PUB`, `SUB`, `MSG`, `-ERR`, ...).
    Required,
    /// Optional spaces/tabs, then the arguments (`CONNECT`, `INFO`).
    Optional,
    /// Anything up to the newline, ignored (`PING`, `PONG`, `+OK`).
    RestIgnored,
}

/// One operation a parser accepts.
pub(crate) struct OpSpec<K> {
    /// Upper-case name.
    pub name: &'static [u8],
    pub sep: Sep,
    pub kind: K,
}

/// A complete control line at the front of the buffer.
pub(crate) struct Line<K> {
    pub kind: K,
    /// The arguments, as a range of the buffer (empty for [`Sep::RestIgnored`] ops).
    pub args: Range<usize>,
    /// Length of the line including its `\n`.
    pub len: usize,
}

enum NameMatch<K> {
    Op { kind: K, name_len: usize, sep: Sep },
    NeedMore,
    Unknown,
}

#[inline]
pub(crate) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn match_name<K: Copy>(line: &[u8], table: &[OpSpec<K>]) -> NameMatch<K> {
    let mut need_more = false;
    for spec in table {
        let n = spec.name.len();
        if line.len() >= n {
            if line[..n].eq_ignore_ascii_case(spec.name) {
                return NameMatch::Op {
                    kind: spec.kind,
                    name_len: n,
                    sep: spec.sep,
                };
            }
        } else if line.eq_ignore_ascii_case(&spec.name[..line.len()]) {
            need_more = true;
        }
    }
    if need_more {
        NameMatch::NeedMore
    } else {
        NameMatch::Unknown
    }
}

/// Classify a (complete or partial) line without its terminator.
///
/// Returns `Ok(Some(..))` only for complete lines. The checks are monotone in the line's length,
/// so a partial line fails exactly when every completion of it would fail: the result does not
/// depend on how the input was split.
fn classify<K: Copy>(
    line: &[u8],
    complete: bool,
    table: &[OpSpec<K>],
    max_control_line: usize,
) -> Result<Option<(K, Range<usize>)>, ProtocolError> {
    match match_name(line, table) {
        NameMatch::Unknown => Err(ProtocolError::UnknownOperation),
        NameMatch::NeedMore if complete => Err(ProtocolError::UnknownOperation),
        NameMatch::NeedMore => Ok(None),
        NameMatch::Op {
            kind,
            name_len,
            sep,
        } => {
            let rest = &line[name_len..];
            if sep == Sep::RestIgnored {
                // nats-server ignores (and never buffers) what follows PING/PONG/+OK; we must
                // buffer it until the newline, so it is bounded like arguments are.
                if rest.len() > max_control_line {
                    return Err(ProtocolError::MaxControlLineExceeded);
                }
                return Ok(complete.then_some((kind, line.len()..line.len())));
            }
            if sep == Sep::Required {
                match rest.first() {
                    None if complete => return Err(ProtocolError::UnknownOperation),
                    None => return Ok(None),
                    Some(&b) if !is_ws(b) => return Err(ProtocolError::UnknownOperation),
                    Some(_) => {}
                }
            }
            let ws = rest.iter().take_while(|&&b| is_ws(b)).count();
            let args_len = rest.len() - ws;
            // The whitespace run is bounded too, so an endless run of spaces cannot make us
            // buffer without limit (nats-server skips it without buffering).
            if args_len > max_control_line || ws > max_control_line {
                return Err(ProtocolError::MaxControlLineExceeded);
            }
            let start = name_len + ws;
            Ok(complete.then_some((kind, start..line.len())))
        }
    }
}

fn strip_cr(buf: &[u8], end: usize) -> usize {
    if end > 0 && buf[end - 1] == b'\r' {
        end - 1
    } else {
        end
    }
}

/// Incremental control-line scanner.
#[derive(Debug, Default)]
pub(crate) struct LineScanner {
    /// `buf[..scanned]` is known to contain no `\n`.
    scanned: usize,
}

impl LineScanner {
    /// The next complete control line at the front of `buf`, or `Ok(None)` if it has not fully
    /// arrived (after checking that what has arrived can still become a valid line).
    pub fn next_line<K: Copy>(
        &mut self,
        buf: &BytesMut,
        table: &[OpSpec<K>],
        max_control_line: usize,
    ) -> Result<Option<Line<K>>, ProtocolError> {
        let from = self.scanned.min(buf.len());
        match memchr::memchr(b'\n', &buf[from..]) {
            Some(off) => {
                let lf = from + off;
                self.scanned = 0;
                let end = strip_cr(buf, lf);
                match classify(&buf[..end], true, table, max_control_line)? {
                    Some((kind, args)) => Ok(Some(Line {
                        kind,
                        args,
                        len: lf + 1,
                    })),
                    // classify never returns Ok(None) for a complete line.
                    None => Err(ProtocolError::UnknownOperation),
                }
            }
            None => {
                self.scanned = buf.len();
                let end = strip_cr(buf, buf.len());
                classify(&buf[..end], false, table, max_control_line)?;
                Ok(None)
            }
        }
    }
}

/// Whether a payload frame of `total` bytes (control line + payload + `\r\n`) is complete at the
/// front of `buf`. The terminator bytes are checked as soon as they arrive, like nats-server's
/// `MSG_END_R`/`MSG_END_N` states. O(1): nothing is rescanned.
pub(crate) fn payload_ready(buf: &BytesMut, total: usize) -> Result<bool, ProtocolError> {
    debug_assert!(total >= 2);
    if buf.len() >= total - 1 && buf[total - 2] != b'\r' {
        return Err(ProtocolError::PayloadNotTerminated);
    }
    if buf.len() >= total {
        if buf[total - 1] != b'\n' {
            return Err(ProtocolError::PayloadNotTerminated);
        }
        return Ok(true);
    }
    Ok(false)
}

/// Split `buf[range]` on runs of spaces/tabs into `out`. Returns the number of arguments, or
/// `N + 1` when there are more than `N` (the caller rejects that).
pub(crate) fn split_args<const N: usize>(
    buf: &[u8],
    range: Range<usize>,
    out: &mut [Range<usize>; N],
) -> usize {
    let mut n = 0;
    let mut start: Option<usize> = None;
    for i in range.clone() {
        if is_ws(buf[i]) {
            if let Some(s) = start.take() {
                if n == N {
                    return N + 1;
                }
                out[n] = s..i;
                n += 1;
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        if n == N {
            return N + 1;
        }
        out[n] = s..range.end;
        n += 1;
    }
    n
}

/// nats-server's `parseSize`: 1 to 9 ASCII digits, nothing else.
pub(crate) fn parse_size(d: &[u8]) -> Option<usize> {
    if d.is_empty() || d.len() > 9 {
        return None;
    }
    let mut n = 0usize;
    for &b in d {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + usize::from(b - b'0');
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_args_handles_runs_of_spaces_and_tabs() {
        let line = b"  a \t bb\tc  ";
        let mut out: [Range<usize>; 3] = Default::default();
        assert_eq!(split_args(line, 0..line.len(), &mut out), 3);
        assert_eq!(&line[out[0].clone()], b"a");
        assert_eq!(&line[out[1].clone()], b"bb");
        assert_eq!(&line[out[2].clone()], b"c");
    }

    #[test]
    fn split_args_reports_too_many() {
        let line = b"a b c d";
        let mut out: [Range<usize>; 3] = Default::default();
        assert_eq!(split_args(line, 0..line.len(), &mut out), 4);
    }

    #[test]
    fn parse_size_matches_nats_server_rules() {
        assert_eq!(parse_size(b"0"), Some(0));
        assert_eq!(parse_size(b"999999999"), Some(999_999_999));
        assert_eq!(parse_size(b"1000000000"), None, "10 digits is rejected");
        assert_eq!(parse_size(b""), None);
        assert_eq!(parse_size(b"-1"), None);
        assert_eq!(parse_size(b"1a"), None);
        assert_eq!(parse_size(b"+1"), None);
    }
}
