//! One client connection: its receive buffer and parser, its two send buffers, and its part of
//! the batching policy.
//!
//! # Safety
//!
//! While `recv_in_flight`, the kernel may write into `recv_buf`'s spare capacity; while
//! `send_in_flight`, it reads the unsent rest of `out.in_flight` (its text, the shared
//! payloads it holds, and for a vectored send `out.iovecs` and `*out.msg`). None of these is
//! touched (appended to, reserved, swapped, rebuilt or dropped) while its op is in flight: the
//! server only parses after a receive completed, only appends to `out.pending`, calls
//! `next_chunk` only with no send in flight, and frees a connection only once both flags are
//! clear. Moving a `Conn` (the slab growing) moves none of that memory: it is all on the heap.

use std::os::fd::OwnedFd;

use bytes::{Bytes, BytesMut};
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

/// Most iovecs one `sendmsg` takes (Linux `UIO_MAXIOV`); a longer batch goes in several sends.
const MAX_IOVECS: usize = 1024;

/// Bytes queued for one send: text copied into one contiguous buffer, with payloads at or
/// above the share threshold inserted by reference (`shared`: offset in `text`, payload).
#[derive(Debug, Default)]
struct Batch {
    text: BytesMut,
    shared: Vec<(usize, Bytes)>,
    shared_len: usize,
    /// Bytes of this batch the kernel has taken.
    sent: usize,
}

impl Batch {
    fn len(&self) -> usize {
        self.text.len() + self.shared_len
    }

    fn clear(&mut self) {
        self.text.clear();
        self.shared.clear();
        self.shared_len = 0;
        self.sent = 0;
    }

    /// The unsent rest as iovecs (at most [`MAX_IOVECS`]), in order.
    fn unsent_iovecs(&self, out: &mut Vec<libc::iovec>) {
        out.clear();
        let mut skip = self.sent;
        let mut push = |part: &[u8]| {
            if skip >= part.len() {
                skip -= part.len();
                return;
            }
            let rest = &part[skip..];
            skip = 0;
            if out.len() < MAX_IOVECS {
                out.push(libc::iovec {
                    iov_base: rest.as_ptr() as *mut libc::c_void,
                    iov_len: rest.len(),
                });
            }
        };
        let mut text_at = 0;
        for (at, payload) in &self.shared {
            push(&self.text[text_at..*at]);
            push(payload);
            text_at = *at;
        }
        push(&self.text[text_at..]);
    }
}

/// What the next send hands the kernel.
pub(crate) enum Chunk {
    /// One contiguous range: `IORING_OP_SEND`.
    Contiguous(*const u8, u32),
    /// Text and shared payloads: `IORING_OP_SENDMSG` with this header.
    Vectored(*const libc::msghdr),
}

/// A connection's outgoing bytes: the batch the kernel is sending, and the one filling up
/// meanwhile. When the first is done the two swap, so steady state allocates nothing.
pub(crate) struct SendBuf {
    in_flight: Batch,
    pending: Batch,
    /// The iovecs and header of a vectored send in flight (boxed: stable addresses).
    iovecs: Vec<libc::iovec>,
    msg: Box<libc::msghdr>,
}

impl SendBuf {
    fn new() -> Self {
        SendBuf {
            in_flight: Batch::default(),
            pending: Batch {
                text: BytesMut::with_capacity(SEND_INITIAL),
                ..Batch::default()
            },
            iovecs: Vec::new(),
            // SAFETY: msghdr is plain data for which all zeroes (null pointers, zero
            // lengths) is a valid value.
            msg: Box::new(unsafe { std::mem::zeroed() }),
        }
    }

    /// Bytes queued and not yet taken by the kernel (what max pending bounds; a shared
    /// payload counts in full for every connection it is queued on).
    pub fn queued(&self) -> usize {
        self.in_flight.len() - self.in_flight.sent + self.pending.len()
    }

    /// Where protocol text and copied messages are appended.
    pub fn text(&mut self) -> &mut BytesMut {
        &mut self.pending.text
    }

    /// Queue `payload` by reference at the current end of the text.
    pub fn push_shared(&mut self, payload: &Bytes) {
        let at = self.pending.text.len();
        self.pending.shared_len += payload.len();
        self.pending.shared.push((at, payload.clone()));
    }

    /// The next send: the rest of a partly sent batch, else everything pending. `None` when
    /// nothing is queued. Only call with no send in flight.
    pub fn next_chunk(&mut self) -> Option<Chunk> {
        if self.in_flight.sent == self.in_flight.len() {
            self.in_flight.clear();
            std::mem::swap(&mut self.in_flight, &mut self.pending);
        }
        let batch = &self.in_flight;
        if batch.sent == batch.len() {
            return None;
        }
        if batch.shared.is_empty() {
            let rest = &batch.text[batch.sent..];
            return Some(Chunk::Contiguous(
                rest.as_ptr(),
                u32::try_from(rest.len()).unwrap_or(u32::MAX),
            ));
        }
        batch.unsent_iovecs(&mut self.iovecs);
        self.msg.msg_iov = self.iovecs.as_mut_ptr();
        self.msg.msg_iovlen = self.iovecs.len() as _;
        Some(Chunk::Vectored(&*self.msg))
    }

    /// The kernel took `n` more bytes; true when the batch in flight is all sent.
    pub fn advance(&mut self, n: usize) -> bool {
        let batch = &mut self.in_flight;
        batch.sent = (batch.sent + n).min(batch.len());
        batch.sent == batch.len()
    }

    /// Drop everything pending (not what the kernel is sending) and queue `-ERR '<text>'`.
    pub fn replace_pending_with_err(&mut self, text: &str) {
        self.pending.clear();
        encode::err(&mut self.pending.text, text);
    }

    /// Drop everything pending.
    pub fn clear_pending(&mut self) {
        self.pending.clear();
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
    pub subs: Vec<(Bytes, Bytes)>,
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

    /// What the next send would hand the kernel, as bytes.
    fn chunk(out: &mut SendBuf) -> Vec<u8> {
        match out.next_chunk().expect("queued") {
            Chunk::Contiguous(ptr, len) => {
                // SAFETY: `ptr..ptr+len` is inside the batch in flight, which nothing touches
                // until the next call on `out`.
                unsafe { std::slice::from_raw_parts(ptr, len as usize) }.to_vec()
            }
            Chunk::Vectored(msg) => {
                // SAFETY: as above: the header and iovecs point into the batch in flight.
                let msg = unsafe { &*msg };
                // SAFETY: `msg_iov` points at `msg_iovlen` initialised iovecs.
                let iovecs = unsafe { std::slice::from_raw_parts(msg.msg_iov, msg.msg_iovlen) };
                let mut bytes = Vec::new();
                for iov in iovecs {
                    // SAFETY: each iovec is a live slice of the batch's text or a payload.
                    bytes.extend_from_slice(unsafe {
                        std::slice::from_raw_parts(iov.iov_base as *const u8, iov.iov_len)
                    });
                }
                bytes
            }
        }
    }

    #[test]
    fn a_partial_send_resumes_at_its_offset_before_anything_pending() {
        let mut out = SendBuf::new();
        out.text().extend_from_slice(b"abcdef");
        assert_eq!(chunk(&mut out), b"abcdef");
        out.text().extend_from_slice(b"XYZ");
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
    fn shared_payloads_go_between_their_text_and_resume_mid_payload() {
        let mut out = SendBuf::new();
        let big = Bytes::from_static(b"PAYLOAD");
        out.text().extend_from_slice(b"MSG a 1 7\r\n");
        out.push_shared(&big);
        out.text().extend_from_slice(b"\r\nMSG a 1 7\r\n");
        out.push_shared(&big);
        out.text().extend_from_slice(b"\r\n");
        let whole = b"MSG a 1 7\r\nPAYLOAD\r\nMSG a 1 7\r\nPAYLOAD\r\n";
        assert_eq!(out.queued(), whole.len());
        assert_eq!(chunk(&mut out), whole);
        for cut in [3, 11, 14, 20, 30] {
            let mut out = SendBuf::new();
            out.text().extend_from_slice(b"MSG a 1 7\r\n");
            out.push_shared(&big);
            out.text().extend_from_slice(b"\r\nMSG a 1 7\r\n");
            out.push_shared(&big);
            out.text().extend_from_slice(b"\r\n");
            chunk(&mut out);
            assert!(!out.advance(cut));
            assert_eq!(chunk(&mut out), &whole[cut..], "resumed after {cut} bytes");
        }
    }

    #[test]
    fn a_batch_of_more_iovecs_than_sendmsg_takes_goes_in_several_sends() {
        let mut out = SendBuf::new();
        let p = Bytes::from_static(b"p");
        let mut whole = Vec::new();
        for _ in 0..MAX_IOVECS {
            out.text().extend_from_slice(b"h");
            out.push_shared(&p);
            whole.extend_from_slice(b"hp");
        }
        let first = chunk(&mut out);
        assert_eq!(
            first.len(),
            MAX_IOVECS,
            "one sendmsg carries at most UIO_MAXIOV iovecs"
        );
        assert!(!out.advance(first.len()));
        let mut sent = first;
        sent.extend(chunk(&mut out));
        assert_eq!(sent, whole);
    }

    #[test]
    fn an_err_replaces_what_is_pending_but_not_what_is_in_flight() {
        let mut out = SendBuf::new();
        out.text().extend_from_slice(b"first");
        chunk(&mut out);
        out.text().extend_from_slice(b"second");
        out.push_shared(&Bytes::from_static(b"shared"));
        out.replace_pending_with_err("Slow Consumer");
        assert!(out.advance(5));
        assert_eq!(chunk(&mut out), b"-ERR 'Slow Consumer'\r\n");
    }
}
