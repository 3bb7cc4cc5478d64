//! The checks behind the fuzz targets, as plain functions so that stable `cargo test` runs
//! them too (cargo-fuzz itself needs nightly).
//!
//! [`check_client_parser`] takes one fuzzer input and reads it as: one byte choosing the
//! limits, up to [`MAX_SPLITS`] bytes of split sizes (ended by a zero byte), then the bytes a
//! client sends. It asserts what must hold for any input:
//!
//! - no panic, no endless loop (every operation consumes at least one byte);
//! - the outcome (operations, then the error that stopped the parse) is the same whether the
//!   input arrives whole or in the given pieces;
//! - after an error the parser keeps returning that same error;
//! - a payload never exceeds `max_payload`, and nothing is left unparsed when the input ended
//!   with a complete operation and no error.

use bytes::BytesMut;
use fanbench_protocol::{ClientOp, ClientParser, Limits, ProtocolError};

/// Most split sizes one input may describe.
pub const MAX_SPLITS: usize = 32;

/// The operations parsed, then the error that stopped the parse (if any).
#[derive(Debug, PartialEq)]
pub struct Outcome {
    pub ops: Vec<ClientOp>,
    pub err: Option<ProtocolError>,
}

/// Decode one fuzzer input into (limits, split sizes, stream).
pub fn decode(data: &[u8]) -> (Limits, Vec<usize>, &[u8]) {
    let (&mode, rest) = data.split_first().unwrap_or((&0, &[]));
    let limits = if mode & 1 == 0 {
        Limits::default()
    } else {
        // Small limits reach the limit checks with short inputs.
        Limits {
            max_control_line: 16 + usize::from(mode >> 1),
            max_payload: usize::from(mode >> 1),
        }
    };
    let end = rest
        .iter()
        .take(MAX_SPLITS)
        .position(|&b| b == 0)
        .unwrap_or(rest.len().min(MAX_SPLITS));
    let splits = rest[..end].iter().map(|&b| usize::from(b)).collect();
    let stream = rest.get(end + 1..).unwrap_or(&[]);
    (limits, splits, stream)
}

/// Feed `input` to a fresh parser in pieces of the given sizes (cycled; empty: all at once).
pub fn parse_in_pieces(input: &[u8], pieces: &[usize], limits: Limits) -> Outcome {
    let mut parser = ClientParser::new(limits);
    let mut buf = BytesMut::new();
    let mut ops = Vec::new();
    let (mut pos, mut i) = (0, 0);
    loop {
        loop {
            assert!(
                ops.len() <= input.len(),
                "more operations than input bytes: the parser loops"
            );
            match parser.next_op(&mut buf) {
                Ok(Some(op)) => {
                    check_op(&op, &limits);
                    ops.push(op);
                }
                Ok(None) => break,
                Err(err) => {
                    assert_eq!(
                        parser.next_op(&mut buf),
                        Err(err.clone()),
                        "an error must stick"
                    );
                    return Outcome {
                        ops,
                        err: Some(err),
                    };
                }
            }
        }
        if pos == input.len() {
            return Outcome { ops, err: None };
        }
        let n = match pieces {
            [] => input.len(),
            _ => pieces[i % pieces.len()].max(1),
        };
        i += 1;
        let end = input.len().min(pos + n);
        buf.extend_from_slice(&input[pos..end]);
        pos = end;
    }
}

fn check_op(op: &ClientOp, limits: &Limits) {
    match op {
        ClientOp::Pub { payload, .. } => assert!(payload.len() <= limits.max_payload),
        ClientOp::HPub {
            headers, payload, ..
        } => assert!(headers.len() + payload.len() <= limits.max_payload),
        _ => {}
    }
}

/// The fuzz target's body.
pub fn check_client_parser(data: &[u8]) {
    let (limits, splits, stream) = decode(data);
    let whole = parse_in_pieces(stream, &[], limits);
    let split = parse_in_pieces(stream, &splits, limits);
    assert_eq!(
        whole, split,
        "the outcome depends on how the input was split"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seeds: valid traffic, each error kind, and the split/limit encodings.
    const SEEDS: &[&[u8]] = &[
        b"\x00\x03\x01\x00CONNECT {\"verbose\":false}\r\nPUB a 5\r\nhello\r\nPING\r\n",
        b"\x00\x01\x00SUB a.* q 1\r\nUNSUB 1 5\r\nHPUB a 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
        b"\x00\x00FOO bar\r\n",
        b"\x00\x02\x00PUB a 3\r\nabcdef\r\n",
        b"\x09\x01\x00PUB a 100\r\n",
        b"\x01\x05\x00SUB aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 1\r\n",
        b"\x00\x00PUB a notanumber\r\n",
        b"\x00\x00\xff\xfe\x00\r\n",
        b"",
    ];

    #[test]
    fn seeds_parse_the_same_whole_and_split() {
        for seed in SEEDS {
            check_client_parser(seed);
        }
    }

    #[test]
    fn valid_traffic_parses_to_operations_without_error() {
        let (limits, splits, stream) = decode(SEEDS[0]);
        assert_eq!(splits, [3, 1]);
        let out = parse_in_pieces(stream, &splits, limits);
        assert_eq!(out.err, None);
        assert_eq!(out.ops.len(), 3);
    }

    #[test]
    fn small_limits_reach_the_payload_check() {
        let (limits, _, stream) = decode(SEEDS[4]);
        assert_eq!(limits.max_payload, 4);
        assert_eq!(
            parse_in_pieces(stream, &[], limits).err,
            Some(ProtocolError::MaxPayloadViolation)
        );
    }

    /// A stable-toolchain stand-in for the fuzzer: mutated seeds and random bytes from a fixed
    /// xorshift generator (deterministic, so a failure reproduces).
    #[test]
    fn mutated_and_random_inputs_never_panic_or_depend_on_the_split() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..20_000 {
            let mut input = SEEDS[round % SEEDS.len()].to_vec();
            let edits = next() % 8;
            for _ in 0..edits {
                let r = next();
                let at = (r >> 8) as usize % (input.len() + 1);
                match r % 4 {
                    0 if at < input.len() => input[at] = (r >> 40) as u8,
                    1 => input.insert(at, (r >> 40) as u8),
                    2 if at < input.len() => {
                        input.remove(at);
                    }
                    _ => input.extend_from_slice(b" \r\n"),
                }
            }
            if round % 5 == 0 {
                input = (0..next() % 300).map(|_| next() as u8).collect();
            }
            check_client_parser(&input);
        }
    }
}
