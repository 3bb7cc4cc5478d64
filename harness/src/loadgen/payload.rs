//! The fixed prefix every load-generator payload starts with.
//!
//! Layout (little endian), [`HEADER_LEN`] bytes, followed by filler up to the payload size:
//!
//! | offset | size | field                                        |
//! |--------|------|----------------------------------------------|
//! | 0      | 4    | publisher id (`u32`)                         |
//! | 4      | 8    | sequence number (`u64`, 0-based)             |
//! | 12     | 8    | intended send time (CLOCK_MONOTONIC ns)      |
//! | 20     | 8    | actual send time (CLOCK_MONOTONIC ns)        |

use anyhow::{bail, Result};

/// Bytes taken by the prefix; a payload is at least this long.
pub const HEADER_LEN: usize = 28;

/// What a publisher stamps into each payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub publisher: u32,
    pub seq: u64,
    pub intended_ns: u64,
    pub actual_ns: u64,
}

impl Header {
    /// The prefix as bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&self.publisher.to_le_bytes());
        out[4..12].copy_from_slice(&self.seq.to_le_bytes());
        out[12..20].copy_from_slice(&self.intended_ns.to_le_bytes());
        out[20..28].copy_from_slice(&self.actual_ns.to_le_bytes());
        out
    }

    /// Reads the prefix of a received payload; a payload shorter than the prefix is an error
    /// (it did not come from this load generator, or the server truncated it).
    pub fn decode(payload: &[u8]) -> Result<Self> {
        let Some(prefix) = payload.get(..HEADER_LEN) else {
            bail!(
                "payload of {} bytes is shorter than the {HEADER_LEN}-byte load-generator prefix",
                payload.len()
            );
        };
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&prefix[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let mut publisher = [0u8; 4];
        publisher.copy_from_slice(&prefix[0..4]);
        Ok(Self {
            publisher: u32::from_le_bytes(publisher),
            seq: u64_at(4),
            intended_ns: u64_at(12),
            actual_ns: u64_at(20),
        })
    }
}

/// Filler that pads a payload of `payload_bytes` after the prefix (a recognisable pattern, so a
/// corrupted payload is visible in a packet capture).
pub fn filler(payload_bytes: usize) -> Vec<u8> {
    (0..payload_bytes.saturating_sub(HEADER_LEN))
        .map(|i| b'a' + (i % 26) as u8)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_through_bytes() {
        let header = Header {
            publisher: 4_000_000_000,
            seq: u64::MAX - 3,
            intended_ns: 123_456_789_012,
            actual_ns: 123_456_789_999,
        };
        let mut payload = header.encode().to_vec();
        payload.extend_from_slice(&filler(100));
        assert_eq!(payload.len(), 100);
        assert_eq!(Header::decode(&payload).expect("decodes"), header);
    }

    #[test]
    fn header_fields_sit_at_documented_offsets() {
        let header = Header {
            publisher: 1,
            seq: 2,
            intended_ns: 3,
            actual_ns: 4,
        };
        let bytes = header.encode();
        assert_eq!(bytes[0], 1);
        assert_eq!(bytes[4], 2);
        assert_eq!(bytes[12], 3);
        assert_eq!(bytes[20], 4);
    }

    #[test]
    fn short_payload_is_an_error_not_a_panic() {
        let err = Header::decode(&[0u8; HEADER_LEN - 1]).expect_err("too short");
        assert!(err.to_string().contains("shorter"), "{err}");
    }

    #[test]
    fn filler_pads_to_payload_size_and_is_empty_for_minimal_payloads() {
        assert_eq!(filler(1024).len(), 1024 - HEADER_LEN);
        assert!(filler(HEADER_LEN).is_empty());
        assert!(filler(3).is_empty());
    }
}
