//! Protocol errors, with the `-ERR` text nats-server sends for each and whether it closes.
//!
//! Established from nats-server's source (v2.9/v2.10 and later; the behaviour below has not
//! changed since) — `server/parser.go` (`client.parse`), `server/client.go` — and from
//! recorded runs against a real nats-server. Every parse-level error closes the connection:
//! `client.readLoop` calls `closeConnection(ProtocolViolation)` for any error `parse` returns
//! (the `-ERR`, if any, was already queued by the code that detected it).
//!
//! | error | `-ERR` text | closes | nats-server source |
//! |---|---|---|---|
//! | [`UnknownOperation`](ProtocolError::UnknownOperation): bad op name, empty line, `MSG` from a client | `Unknown Protocol Operation` | yes | `parser.go` `parse`, label `parseErr` |
//! | [`PayloadNotTerminated`](ProtocolError::PayloadNotTerminated): payload not followed by `\r\n` | `Unknown Protocol Operation` | yes | `parser.go` `parse`, states `MSG_END_R`/`MSG_END_N` → `parseErr` |
//! | [`MaxControlLineExceeded`](ProtocolError::MaxControlLineExceeded) | `maximum control line exceeded` | yes | `parser.go` `overMaxControlLineLimit` (sends `ErrMaxControlLine.Error()`, lower case since v2.2) |
//! | [`MaxPayloadViolation`](ProtocolError::MaxPayloadViolation): `PUB` size / `HPUB` total over `max_payload` | `Maximum Payload Violation` | yes | `client.go` `processPub`/`processHeaderPub` → `maxPayloadViolation` |
//! | [`InvalidArguments`](ProtocolError::InvalidArguments): wrong argument count for `PUB`/`HPUB`/`SUB`/`UNSUB` | none | yes | `client.go` `processPub`/`processHeaderPub`/`parseSub`/`processUnsub` "Parse Error" |
//! | [`BadSize`](ProtocolError::BadSize): size not 1–9 ASCII digits | none | yes | `client.go` `processPub` "Bad or Missing Size", `parseSize` |
//! | [`HeaderSizeExceedsTotal`](ProtocolError::HeaderSizeExceedsTotal): `HPUB` header size > total size | none | yes | `client.go` `processHeaderPub` "Header Size larger then TotalSize" |
//! | [`InvalidConnect`](ProtocolError::InvalidConnect): `CONNECT` JSON does not parse | none | yes | `client.go` `processConnect` returns the `json.Unmarshal` error |
//! | [`BadClientProtocol`](ProtocolError::BadClientProtocol): `CONNECT` `protocol` outside 0..=1 | `invalid client protocol` | yes | `client.go` `processConnect` (`ErrBadClientProtocol`) |
//! | [`NoRespondersRequiresHeaders`](ProtocolError::NoRespondersRequiresHeaders) | `no responders requires headers support` | yes | `client.go` `processConnect` (`ErrNoRespondersRequiresHeaders`) |
//! | [`InvalidInfo`](ProtocolError::InvalidInfo): `INFO` JSON does not parse | none | yes | `client.go` `processInfo` returns the unmarshal error |
//! | [`ClientSentErr`](ProtocolError::ClientSentErr): a client sent `-ERR` | none | yes | `client.go` `processErr` (`closeConnection(ParseError)`) |
//! | [`HeadersNotSupported`](ProtocolError::HeadersNotSupported): `HPUB` on a connection whose `CONNECT` had `headers:false` (broker check) | none | yes | `client.go` `processHeaderPub` (`ErrMsgHeadersNotSupported`) |
//! | [`InvalidSubject`](ProtocolError::InvalidSubject): `SUB` subject invalid (broker check, [`crate::subject::is_valid_subject`]) | `Invalid Subject` | **no** | `client.go` `processSub` (sublist insert fails) |
//! | [`InvalidPublishSubject`](ProtocolError::InvalidPublishSubject): pedantic `PUB` to a non-literal subject (broker check) | `Invalid Publish Subject` | **no** (message still delivered) | `client.go` `processPub` |
//!
//! The parsers return only the parse-level errors. The last three rows are never produced by
//! a parser; they exist so the broker reports them with the same two methods.

use thiserror::Error;

/// An error in the byte stream (or, for the broker-level variants, in what it asked for).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// The line does not start with an operation this side accepts.
    #[error("unknown protocol operation")]
    UnknownOperation,
    /// A control line's arguments are longer than `Limits::max_control_line`.
    #[error("maximum control line exceeded")]
    MaxControlLineExceeded,
    /// A `PUB`/`HPUB` (or `MSG`/`HMSG`) announces more bytes than `Limits::max_payload`.
    #[error("maximum payload exceeded")]
    MaxPayloadViolation,
    /// The payload was not followed by `\r\n`.
    #[error("payload not followed by CRLF")]
    PayloadNotTerminated,
    /// Wrong number of arguments for `op`.
    #[error("{op}: wrong number of arguments")]
    InvalidArguments {
        /// The operation, e.g. `"PUB"`.
        op: &'static str,
    },
    /// A size argument of `op` is missing, not decimal, or longer than 9 digits.
    #[error("{op}: bad or missing size")]
    BadSize {
        /// The operation, e.g. `"PUB"`.
        op: &'static str,
    },
    /// `HPUB`/`HMSG` header size larger than the total size.
    #[error("{op}: header size larger than total size")]
    HeaderSizeExceedsTotal {
        /// The operation, `"HPUB"` or `"HMSG"`.
        op: &'static str,
    },
    /// The `CONNECT` JSON did not parse.
    #[error("invalid CONNECT JSON: {reason}")]
    InvalidConnect {
        /// The JSON parser's message.
        reason: String,
    },
    /// `CONNECT` asked for a client protocol version other than 0 or 1.
    #[error("invalid client protocol")]
    BadClientProtocol,
    /// `CONNECT` set `no_responders` without `headers`.
    #[error("no responders requires headers support")]
    NoRespondersRequiresHeaders,
    /// The `INFO` JSON did not parse.
    #[error("invalid INFO JSON: {reason}")]
    InvalidInfo {
        /// The JSON parser's message.
        reason: String,
    },
    /// The client sent `-ERR`; nats-server logs it and closes the connection.
    #[error("client sent -ERR: {0}")]
    ClientSentErr(String),
    /// Broker-level: `HPUB` from a client that did not announce `headers: true` in `CONNECT`.
    #[error("message headers not supported")]
    HeadersNotSupported,
    /// Broker-level: `SUB` with an invalid subject (see [`crate::subject::is_valid_subject`]).
    /// nats-server answers `-ERR 'Invalid Subject'` and keeps the connection open.
    #[error("invalid subject")]
    InvalidSubject,
    /// Broker-level: `PUB` to a subject that is not a valid literal subject on a pedantic
    /// connection. nats-server answers `-ERR 'Invalid Publish Subject'`, keeps the connection
    /// open and still processes the message.
    #[error("invalid publish subject")]
    InvalidPublishSubject,
}

impl ProtocolError {
    /// The text nats-server puts inside `-ERR '...'` for this error, or `None` when nats-server
    /// closes the connection without sending `-ERR`.
    pub fn err_text(&self) -> Option<&'static str> {
        match self {
            Self::UnknownOperation | Self::PayloadNotTerminated => {
                Some("Unknown Protocol Operation")
            }
            Self::MaxControlLineExceeded => Some("maximum control line exceeded"),
            Self::MaxPayloadViolation => Some("Maximum Payload Violation"),
            Self::BadClientProtocol => Some("invalid client protocol"),
            Self::NoRespondersRequiresHeaders => Some("no responders requires headers support"),
            Self::InvalidSubject => Some("Invalid Subject"),
            Self::InvalidPublishSubject => Some("Invalid Publish Subject"),
            Self::InvalidArguments { .. }
            | Self::BadSize { .. }
            | Self::HeaderSizeExceedsTotal { .. }
            | Self::InvalidConnect { .. }
            | Self::InvalidInfo { .. }
            | Self::ClientSentErr(_)
            | Self::HeadersNotSupported => None,
        }
    }

    /// Whether nats-server closes the connection after this error. Every error a parser
    /// returns closes; only the broker-level subject checks leave the connection open.
    pub fn closes_connection(&self) -> bool {
        !matches!(self, Self::InvalidSubject | Self::InvalidPublishSubject)
    }
}
