//! Size limits the parsers enforce.

/// nats-server's default `max_control_line` (`MAX_CONTROL_LINE_SIZE`).
pub const DEFAULT_MAX_CONTROL_LINE: usize = 4096;
/// nats-server's default `max_payload` (`MAX_PAYLOAD_SIZE`, 1 MiB).
pub const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;

/// Limits a parser enforces on its input.
///
/// `max_control_line` bounds the *arguments* of a control line: the bytes after the operation
/// name and the whitespace that follows it, up to (not including) the terminating `\r\n`. This is
/// what nats-server measures (`overMaxControlLineLimit` is called with `arg`, the bytes from the
/// first argument byte to the CR). `max_payload` bounds the `#bytes` of `PUB`/`MSG` and the total
/// size of `HPUB`/`HMSG`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum length of a control line's arguments, in bytes. Default 4096.
    pub max_control_line: usize,
    /// Maximum payload size (headers included for `HPUB`/`HMSG`), in bytes. Default 1 MiB.
    pub max_payload: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_control_line: DEFAULT_MAX_CONTROL_LINE,
            max_payload: DEFAULT_MAX_PAYLOAD,
        }
    }
}
