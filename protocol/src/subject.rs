//! Subject validation, as nats-server does it (`server/sublist.go`: `IsValidSubject`,
//! `IsValidLiteralSubject`).
//!
//! A subject is `.`-separated tokens. A token that is exactly `*` matches any one token; a token
//! that is exactly `>` matches one or more trailing tokens and must be last. `*` or `>` inside a
//! longer token (`a*`, `>b`) is an ordinary character, as on nats-server.
//!
//! These are broker-level checks: an invalid `SUB` subject gets `-ERR 'Invalid Subject'` and the
//! connection stays open ([`crate::ProtocolError::InvalidSubject`]); on a pedantic connection a
//! `PUB` to an invalid literal subject gets `-ERR 'Invalid Publish Subject'`, the connection stays
//! open and the message is still processed ([`crate::ProtocolError::InvalidPublishSubject`]).

/// Valid subscription subject: non-empty, no empty token, no whitespace (space, tab, CR, LF,
/// form feed) anywhere, `>` as a whole token only in last position.
pub fn is_valid_subject(s: &[u8]) -> bool {
    if s.is_empty() {
        return false;
    }
    let mut saw_fwc = false;
    for t in s.split(|&b| b == b'.') {
        if t.is_empty() || saw_fwc {
            return false;
        }
        if t.iter()
            .any(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x0c))
        {
            return false;
        }
        if t == b">" {
            saw_fwc = true;
        }
    }
    true
}

/// Valid publish subject, nats-server's `IsValidLiteralSubject`: non-empty, no empty token, no
/// token that is exactly `*` or `>`. Like nats-server it does not look for whitespace (a parsed
/// `PUB` subject cannot contain a space or tab).
pub fn is_valid_literal_subject(s: &[u8]) -> bool {
    if s.is_empty() {
        return false;
    }
    s.split(|&b| b == b'.')
        .all(|t| !t.is_empty() && t != b"*" && t != b">")
}

/// Whether a (valid) subject contains a wildcard token.
pub fn has_wildcard(s: &[u8]) -> bool {
    s.split(|&b| b == b'.').any(|t| t == b"*" || t == b">")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_subjects() {
        for ok in [
            &b"foo"[..],
            b"foo.bar",
            b"*",
            b">",
            b"foo.*",
            b"foo.>",
            b"*.bar.>",
            b"foo.*.baz",
            b"a*.b>",
            b"_INBOX.x",
        ] {
            assert!(is_valid_subject(ok), "{:?}", String::from_utf8_lossy(ok));
        }
        for bad in [
            &b""[..],
            b".",
            b"foo.",
            b".foo",
            b"foo..bar",
            b"foo.>.bar",
            b">.foo",
            b"foo bar",
            b"foo\tbar",
            b"foo.\r",
            b"a\x0cb",
        ] {
            assert!(!is_valid_subject(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn literal_subjects() {
        for ok in [&b"foo"[..], b"foo.bar", b"a*.b>", b"_INBOX.abc.def"] {
            assert!(is_valid_literal_subject(ok));
            assert!(!has_wildcard(ok));
        }
        for bad in [
            &b""[..],
            b"foo.*",
            b"*",
            b">",
            b"foo.>",
            b"foo..bar",
            b"foo.",
        ] {
            assert!(!is_valid_literal_subject(bad));
        }
        assert!(has_wildcard(b"foo.*"));
        assert!(has_wildcard(b"foo.>"));
    }
}
