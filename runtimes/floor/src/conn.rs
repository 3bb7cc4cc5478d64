//! One client connection: its receive buffer and parser, its two send buffers, and its part of
//! the batching policy.
//!
//! # Safety
//!
//! While `recv_in_flight`, the kernel may write into `recv_buf`'s spare capacity; while
//! `send_in_flight`, it reads `out.in_flight[out.sent..]`. Neither buffer is touched (appended
//! to, reserved, swapped or dropped) while its op is in flight: the server only parses after a
//! receive completed, only appends to `out.pending`, and frees a connection only once both
//! flags are clear. Moving a `Conn` (the slab growing) does not move the buffers' heap storage.

use std::os::fd::OwnedFd;

use bytes::BytesMut;
use fanbench_protocol::{encode, ClientParser, Limits};

use crate::batching::ConnClock;

/// First receive buffer (subscribers send little).
const RECV_INITIAL: usize = 4096;
/// A receive is re-armed with at least this much room...
const RECV_MIN_SPARE: usize = 1024;
/// ...growing by this much (or by the buffer's length, for frames larger than it).
const RECV_CHUNK: usize = 64 * 1024;
/// First send buffer.
const SEND_INITIAL: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Reading and being delivered to.
    Open,
    /// Flushing what is queued (a final `-ERR`), then closing; no more reads or deliveries.
    Draining,
    /// Shut down; freed once its ops have completed.
    Closing,
}

/// A connection's outgoing bytes: the buffer the kernel is sending, and the one filling up
/// meanwhile. When the first is done the two swap, so steady state allocates nothing.
#[derive(Debug)]
pub(crate) struct SendBuf {
    in_flight: BytesMut,
    /// Bytes of `in_flight` the kernel has taken.
    sent: usize,
    /// Where deliveries, PONGs and `-ERR`s are appended.
    pub pending: BytesMut,
}

impl SendBuf {
    fn new() -> Self {
        SendBuf {
            in_flight: BytesMut::new(),
            sent: 0,
            pending: BytesMut::with_capacity(SEND_INITIAL),
        }
    }

    /// Bytes queued and not yet taken by the kernel (what max pending bounds).
    pub fn queued(&self) -> usize {
        self.in_flight.len() - self.sent + self.pending.len()
    }

    /// The bytes the next send hands the kernel: the rest of a partly sent buffer, else
    /// everything pending. `None` when nothing is queued. Only call with no send in flight.
    pub fn next_chunk(&mut self) -> Option<(*const u8, u32)> {
        if self.sent == self.in_flight.len() {
            self.in_flight.clear();
            self.sent = 0;
            std::mem::swap(&mut self.in_flight, &mut self.pending);
        }
        let rest = &self.in_flight[self.sent..];
        if rest.is_empty() {
            return None;
        }
        Some((rest.as_ptr(), u32::try_from(rest.len()).unwrap_or(u32::MAX)))
    }

    /// The kernel took `n` more bytes; true when the buffer in flight is all sent.
    pub fn advance(&mut self, n: usize) -> bool {
        self.sent = (self.sent + n).min(self.in_flight.len());
        self.sent == self.in_flight.len()
    }

    /// Drop everything pending (not what the kernel is sending) and queue `-ERR '<text>'`.
    pub fn replace_pending_with_err(&mut self, text: &str) {
        self.pending.clear();
        encode::err(&mut self.pending, text);
    }
}

/// One client connection.
pub(crate) struct Conn {
    pub fd: OwnedFd,
    pub state: State,
    pub parser: ClientParser,
    pub recv_buf: BytesMut,
    pub recv_in_flight: bool,
    pub out: SendBuf,
    pub send_in_flight: bool,
    pub clock: ConnClock,
    /// `CONNECT`'s `echo`: deliver this connection's own publishes to it.
    pub echo: bool,
    /// Its subscriptions: (subject, sid).
    pub subs: Vec<(bytes::Bytes, bytes::Bytes)>,
    /// Queued in the server's list of connections with new data this turn.
    pub dirty: bool,
    /// Queued in the server's list of connections to free.
    pub freeing: bool,
}

impl Conn {
    pub fn new(fd: OwnedFd, limits: Limits) -> Self {
        Conn {
            fd,
            state: State::Open,
            parser: ClientParser::new(limits),
            recv_buf: BytesMut::with_capacity(RECV_INITIAL),
            recv_in_flight: false,
            out: SendBuf::new(),
            send_in_flight: false,
            clock: ConnClock::default(),
            echo: true,
            subs: Vec::new(),
            dirty: false,
            freeing: false,
        }
    }

    /// Room for the next receive: `(pointer, length)` into `recv_buf`'s spare capacity.
    pub fn recv_room(&mut self) -> (*mut u8, u32) {
        let spare = self.recv_buf.capacity() - self.recv_buf.len();
        if spare < RECV_MIN_SPARE {
            self.recv_buf.reserve(RECV_CHUNK.max(self.recv_buf.len()));
        }
        let room = self.recv_buf.spare_capacity_mut();
        (
            room.as_mut_ptr().cast::<u8>(),
            u32::try_from(room.len()).unwrap_or(u32::MAX),
        )
    }

    /// Whether it has finished with everything it had to send.
    pub fn flushed(&self) -> bool {
        !self.send_in_flight && self.out.queued() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(out: &mut SendBuf) -> Vec<u8> {
        let (ptr, len) = out.next_chunk().expect("queued");
        // SAFETY: `ptr..ptr+len` is inside `in_flight`, which nothing touches until the next
        // call on `out`.
        unsafe { std::slice::from_raw_parts(ptr, len as usize) }.to_vec()
    }

    #[test]
    fn a_partial_send_resumes_at_its_offset_before_anything_pending() {
        let mut out = SendBuf::new();
        out.pending.extend_from_slice(b"abcdef");
        assert_eq!(chunk(&mut out), b"abcdef");
        out.pending.extend_from_slice(b"XYZ");
        assert_eq!(out.queued(), 9);
        assert!(!out.advance(4));
        assert_eq!(out.queued(), 5);
        assert_eq!(chunk(&mut out), b"ef");
        assert!(out.advance(2));
        assert_eq!(chunk(&mut out), b"XYZ");
        assert!(out.advance(3));
        assert!(out.next_chunk().is_none());
        assert_eq!(out.queued(), 0);
    }

    #[test]
    fn an_err_replaces_what_is_pending_but_not_what_is_in_flight() {
        let mut out = SendBuf::new();
        out.pending.extend_from_slice(b"first");
        chunk(&mut out);
        out.pending.extend_from_slice(b"second");
        out.replace_pending_with_err("Slow Consumer");
        assert!(out.advance(5));
        assert_eq!(chunk(&mut out), b"-ERR 'Slow Consumer'\r\n");
    }
}
