//! A connection's outbound queue: frames waiting for the writer task, bounded in bytes.
//!
//! # State
//!
//! Publishers on any thread append under a short mutex; the writer task takes everything
//! queued at once and sends it with one vectored write. Small text (the per-subscriber `MSG`
//! header, the payload's trailing CRLF, PONG, +OK) is encoded into one staging `BytesMut`, and
//! so is a whole message of at most [`COPY_BELOW`] bytes; a larger message costs two iovecs:
//! `[CRLF of the previous message + MSG header][shared payload]`.
//!
//! What counts against `max_pending` is everything the queue keeps alive: the frames queued
//! and the batch the writer took and has not finished writing ([`Outbound::written`]); a
//! payload is an allocation of its own length (the reader copies it out of its read buffer),
//! so the bytes counted are the bytes held.
//!
//! When a push would take those bytes past `max_pending`, the connection becomes a slow
//! consumer: the queue is dropped, `-ERR 'Slow Consumer'` is queued in its place and the queue
//! closes. Nobody ever waits on a full queue.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use fanbench_protocol::encode;
use parking_lot::Mutex;

/// Why a queue was closed. The writer sends what is queued, then shuts the connection down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed the connection or the reader hit an error.
    ClientClosed,
    /// A protocol error was answered with `-ERR` (queued before closing).
    ProtocolError,
    /// Pending bytes passed max pending, or a write blew its deadline.
    SlowConsumer,
    /// Too many unanswered PINGs.
    StaleConnection,
    /// CONNECT did not arrive in time.
    ConnectTimeout,
    /// The server is shutting down.
    ServerShutdown,
}

/// Largest number of iovecs handed to one vectored write (Linux `UIO_MAXIOV`).
pub const MAX_IOVECS: usize = 1024;

/// Staging capacity reserved at a time for small encoded text and copied messages (the
/// buffer is reused from the front once its batch is written: `broker/PERF.md`, "Staging
/// chunks of 4 KiB").
const STAGING_CHUNK: usize = 4 * 1024;

/// Messages whose headers and payload take at most this many bytes are copied into the
/// staging buffer; larger payloads are queued shared (`broker/PERF.md`, "Copying small
/// payloads").
pub const COPY_BELOW: usize = 2048;

/// Small messages are copied only while less than this many bytes are queued: a subscriber
/// that falls behind (a slow or stuck reader) queues shared payloads, so its queue does not
/// turn every publish into a copy of its own.
pub const COPY_WHILE_QUEUED_BELOW: usize = 16 * 1024;

struct Inner {
    frames: Vec<Bytes>,
    staging: BytesMut,
    pending_bytes: usize,
    /// Bytes of the batch the writer is writing (taken, not yet written).
    in_flight: usize,
    waker: Option<Waker>,
    closed: Option<CloseReason>,
}

/// The queue itself; shared by the connection's reader, its writer and every publisher.
pub struct Outbound {
    inner: Mutex<Inner>,
    max_pending: usize,
}

/// What the writer got from [`Outbound::poll_take`].
pub enum Batch {
    /// Frames to write, in order (at most [`MAX_IOVECS`]).
    Frames,
    /// The queue is closed and drained: shut the connection down.
    Closed(CloseReason),
}

impl Outbound {
    /// An empty queue bounded at `max_pending` bytes.
    pub fn new(max_pending: usize) -> Arc<Self> {
        Arc::new(Outbound {
            inner: Mutex::new(Inner {
                frames: Vec::new(),
                staging: BytesMut::new(),
                pending_bytes: 0,
                in_flight: 0,
                waker: None,
                closed: None,
            }),
            max_pending,
        })
    }

    /// Queue one message for a subscriber: `MSG`/`HMSG` header, payload (shared), CRLF.
    /// Returns false if the queue is closed or has just been closed as a slow consumer.
    pub fn push_msg(
        &self,
        header: impl FnOnce(&mut BytesMut),
        headers: Option<&Bytes>,
        payload: &Bytes,
    ) -> bool {
        let mut inner = self.inner.lock();
        if inner.closed.is_some() {
            return false;
        }
        let before = inner.staging.len();
        reserve_staging(&mut inner.staging);
        header(&mut inner.staging);
        let header_len = inner.staging.len() - before;
        let body_len = headers.map_or(0, Bytes::len) + payload.len() + 2;
        if inner.pending_bytes + inner.in_flight + header_len + body_len > self.max_pending {
            inner.staging.truncate(before);
            let waker = slow_consumer(&mut inner);
            drop(inner);
            wake(waker);
            return false;
        }
        let copy = body_len <= COPY_BELOW && inner.pending_bytes < COPY_WHILE_QUEUED_BELOW;
        inner.pending_bytes += header_len + body_len;
        if copy {
            // Small, and the subscriber keeps up: copied into the staging buffer, so a batch
            // of small messages is one contiguous buffer (one iovec) instead of two iovecs per
            // message. A subscriber that falls behind gets shared payloads again, so what its
            // queue holds is references, not copies.
            for part in headers.into_iter().chain(std::iter::once(payload)) {
                inner.staging.extend_from_slice(part);
            }
        } else {
            for part in headers.into_iter().chain(std::iter::once(payload)) {
                if part.is_empty() {
                    continue;
                }
                if !inner.staging.is_empty() {
                    let staged = inner.staging.split().freeze();
                    inner.frames.push(staged);
                }
                inner.frames.push(part.clone());
            }
        }
        inner.staging.extend_from_slice(encode::CRLF);
        let waker = inner.waker.take();
        drop(inner);
        wake(waker);
        true
    }

    /// Queue protocol text (PONG, +OK, PING, INFO, -ERR). Returns false if closed.
    pub fn push_text(&self, text: impl FnOnce(&mut BytesMut)) -> bool {
        let mut inner = self.inner.lock();
        if inner.closed.is_some() {
            return false;
        }
        let before = inner.staging.len();
        reserve_staging(&mut inner.staging);
        text(&mut inner.staging);
        inner.pending_bytes += inner.staging.len() - before;
        let waker = inner.waker.take();
        drop(inner);
        wake(waker);
        true
    }

    /// Queue `-ERR '<text>'` (if any) and close the queue: the writer flushes what is queued,
    /// then shuts the connection down. Later pushes are refused. The first reason wins.
    pub fn close(&self, reason: CloseReason, err_text: Option<&str>) {
        let mut inner = self.inner.lock();
        if inner.closed.is_some() {
            return;
        }
        if let Some(text) = err_text {
            reserve_staging(&mut inner.staging);
            encode::err(&mut inner.staging, text);
        }
        inner.closed = Some(reason);
        let waker = inner.waker.take();
        drop(inner);
        wake(waker);
    }

    /// Cut the connection as a slow consumer (a write blew its deadline): drop what is queued.
    pub fn cut_slow_consumer(&self) {
        let mut inner = self.inner.lock();
        let waker = slow_consumer(&mut inner);
        drop(inner);
        wake(waker);
    }

    /// Whether the queue has been closed.
    pub fn is_closed(&self) -> bool {
        self.inner.lock().closed.is_some()
    }

    /// Bytes queued and not yet taken by the writer.
    pub fn pending_bytes(&self) -> usize {
        self.inner.lock().pending_bytes
    }

    /// Take up to [`MAX_IOVECS`] frames into `out` (which must be empty), or report that the
    /// queue is closed and drained, or register the writer's waker.
    pub fn poll_take(&self, cx: &mut Context<'_>, out: &mut Vec<Bytes>) -> Poll<Batch> {
        let mut inner = self.inner.lock();
        if !inner.staging.is_empty() {
            let staged = inner.staging.split().freeze();
            inner.frames.push(staged);
        }
        if inner.frames.is_empty() {
            if let Some(reason) = inner.closed {
                return Poll::Ready(Batch::Closed(reason));
            }
            match &inner.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => inner.waker = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        if inner.frames.len() <= MAX_IOVECS {
            std::mem::swap(out, &mut inner.frames);
        } else {
            out.extend(inner.frames.drain(..MAX_IOVECS));
        }
        let taken: usize = out.iter().map(Bytes::len).sum();
        inner.pending_bytes = inner.pending_bytes.saturating_sub(taken);
        inner.in_flight = taken;
        Poll::Ready(Batch::Frames)
    }

    /// The writer finished writing the batch it took (and dropped it): its bytes stop
    /// counting, and an empty staging buffer starts again at the front of its allocation, so
    /// each connection keeps copying into the same few (cache-warm) bytes instead of walking
    /// through its whole chunk (`broker/PERF.md`, "Staging from the front").
    pub fn written(&self) {
        let mut inner = self.inner.lock();
        inner.in_flight = 0;
        if inner.staging.is_empty() {
            // Moves nothing and allocates nothing: it only succeeds when no batch still
            // shares the allocation and the buffer is not already at its front.
            let whole = inner.staging.capacity() + 1;
            let _ = inner.staging.try_reclaim(whole);
        }
    }
}

fn reserve_staging(staging: &mut BytesMut) {
    if staging.capacity() - staging.len() < 512 {
        staging.reserve(STAGING_CHUNK);
    }
}

fn slow_consumer(inner: &mut Inner) -> Option<Waker> {
    if inner.closed.is_none() {
        inner.frames.clear();
        inner.staging.clear();
        encode::err(&mut inner.staging, "Slow Consumer");
        inner.pending_bytes = inner.staging.len();
        inner.closed = Some(CloseReason::SlowConsumer);
    }
    inner.waker.take()
}

fn wake(waker: Option<Waker>) {
    if let Some(w) = waker {
        w.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn take_all(q: &Outbound) -> (Vec<u8>, Option<CloseReason>) {
        let mut cx = Context::from_waker(Waker::noop());
        let mut bytes = Vec::new();
        loop {
            let mut out = Vec::new();
            match q.poll_take(&mut cx, &mut out) {
                Poll::Ready(Batch::Frames) => out.iter().for_each(|b| bytes.extend_from_slice(b)),
                Poll::Ready(Batch::Closed(r)) => return (bytes, Some(r)),
                Poll::Pending => return (bytes, None),
            }
        }
    }

    fn msg_header(out: &mut BytesMut) {
        encode::msg_header(out, b"foo", b"1", None, 5);
    }

    #[test]
    fn a_large_payload_is_shared_and_a_small_one_copied() {
        let q = Outbound::new(1 << 20);
        let big = Bytes::from(vec![b'x'; COPY_BELOW]);
        let header = |out: &mut BytesMut| encode::msg_header(out, b"foo", b"1", None, COPY_BELOW);
        assert!(q.push_msg(header, None, &big));
        assert!(q.push_msg(msg_header, None, &Bytes::from_static(b"hello")));
        let mut cx = Context::from_waker(Waker::noop());
        let mut out = Vec::new();
        assert!(matches!(
            q.poll_take(&mut cx, &mut out),
            Poll::Ready(Batch::Frames)
        ));
        // [header][shared payload][CRLF + small message + CRLF]
        assert_eq!(out.len(), 3);
        assert_eq!(
            out[1].as_ptr(),
            big.as_ptr(),
            "the large payload is not copied"
        );
        assert!(out[2].ends_with(b"MSG foo 1 5\r\nhello\r\n"));
    }

    #[test]
    fn messages_are_framed() {
        let q = Outbound::new(1 << 20);
        let payload = Bytes::from_static(b"hello");
        assert!(q.push_msg(msg_header, None, &payload));
        assert!(q.push_msg(msg_header, None, &payload));
        let (bytes, closed) = take_all(&q);
        assert_eq!(bytes, b"MSG foo 1 5\r\nhello\r\nMSG foo 1 5\r\nhello\r\n");
        assert_eq!(closed, None);
        assert_eq!(q.pending_bytes(), 0);
    }

    #[test]
    fn passing_max_pending_cuts_the_queue_as_slow_consumer() {
        let q = Outbound::new(30); // one 20-byte message fits, two do not
        let payload = Bytes::from_static(b"hello");
        assert!(q.push_msg(msg_header, None, &payload));
        assert!(!q.push_msg(msg_header, None, &payload));
        assert!(!q.push_msg(msg_header, None, &payload));
        let (bytes, closed) = take_all(&q);
        assert_eq!(bytes, b"-ERR 'Slow Consumer'\r\n");
        assert_eq!(closed, Some(CloseReason::SlowConsumer));
    }

    #[test]
    fn a_batch_being_written_counts_against_max_pending_until_written() {
        let q = Outbound::new(45); // two 20-byte messages fit, three do not
        let payload = Bytes::from_static(b"hello");
        assert!(q.push_msg(msg_header, None, &payload));
        assert!(q.push_msg(msg_header, None, &payload));
        let mut cx = Context::from_waker(Waker::noop());
        let mut out = Vec::new();
        assert!(matches!(
            q.poll_take(&mut cx, &mut out),
            Poll::Ready(Batch::Frames)
        ));
        // Taken but not written: still held, so a third message passes max pending.
        assert!(!q.push_msg(msg_header, None, &payload));
        let q = Outbound::new(45);
        assert!(q.push_msg(msg_header, None, &payload));
        assert!(q.push_msg(msg_header, None, &payload));
        let mut out = Vec::new();
        assert!(matches!(
            q.poll_take(&mut cx, &mut out),
            Poll::Ready(Batch::Frames)
        ));
        q.written();
        assert!(q.push_msg(msg_header, None, &payload));
        assert!(q.push_msg(msg_header, None, &payload));
    }

    #[test]
    fn a_written_batch_gives_the_staging_buffer_back_from_its_front() {
        let q = Outbound::new(1 << 20);
        let payload = Bytes::from_static(b"hello");
        let mut cx = Context::from_waker(Waker::noop());
        let mut first = None;
        for _ in 0..100 {
            assert!(q.push_msg(msg_header, None, &payload));
            let mut out = Vec::new();
            assert!(matches!(
                q.poll_take(&mut cx, &mut out),
                Poll::Ready(Batch::Frames)
            ));
            assert_eq!(out.len(), 1);
            let at = out[0].as_ptr();
            assert_eq!(
                *first.get_or_insert(at),
                at,
                "the batch starts where the first did"
            );
            drop(out);
            q.written();
        }
    }

    #[test]
    fn a_batch_still_held_is_never_overwritten() {
        let q = Outbound::new(1 << 20);
        let payload = Bytes::from_static(b"hello");
        let mut cx = Context::from_waker(Waker::noop());
        assert!(q.push_msg(msg_header, None, &payload));
        let mut kept = Vec::new();
        assert!(matches!(
            q.poll_take(&mut cx, &mut kept),
            Poll::Ready(Batch::Frames)
        ));
        // Written, but somebody still holds the bytes: the buffer must not move back over them.
        q.written();
        assert!(q.push_msg(msg_header, None, &Bytes::from_static(b"world")));
        let (bytes, _) = take_all(&q);
        assert_eq!(bytes, b"MSG foo 1 5\r\nworld\r\n");
        assert_eq!(&kept[0][..], b"MSG foo 1 5\r\nhello\r\n");
    }

    #[test]
    fn close_flushes_queued_text_then_reports_closed() {
        let q = Outbound::new(1 << 20);
        assert!(q.push_text(encode::pong));
        q.close(
            CloseReason::ProtocolError,
            Some("Unknown Protocol Operation"),
        );
        assert!(!q.push_text(encode::pong));
        let (bytes, closed) = take_all(&q);
        assert_eq!(bytes, b"PONG\r\n-ERR 'Unknown Protocol Operation'\r\n");
        assert_eq!(closed, Some(CloseReason::ProtocolError));
    }

    #[test]
    fn a_batch_never_exceeds_max_iovecs() {
        let q = Outbound::new(1 << 30);
        // Shared payloads: two iovecs per message.
        let payload = Bytes::from(vec![b'x'; COPY_BELOW]);
        let header = |out: &mut BytesMut| encode::msg_header(out, b"foo", b"1", None, COPY_BELOW);
        for _ in 0..2000 {
            assert!(q.push_msg(header, None, &payload));
        }
        let mut cx = Context::from_waker(Waker::noop());
        let mut out = Vec::new();
        assert!(matches!(
            q.poll_take(&mut cx, &mut out),
            Poll::Ready(Batch::Frames)
        ));
        assert_eq!(out.len(), MAX_IOVECS);
    }
}
