//! One client connection: a reader task and a writer task sharing a [`ClientShared`].
//!
//! # Reader
//!
//! Reads into a `BytesMut` it owns, parses complete operations in place (payloads are
//! zero-copy slices of the read buffer) and handles them: subscribe, publish (look the subject
//! up once, queue a frame on every matching subscriber), PING/PONG, CONNECT. A protocol error
//! is answered with nats-server's `-ERR` text, and the connection is closed where nats-server
//! closes it.
//!
//! # Writer
//!
//! Waits for its outbound queue, takes everything queued (up to `UIO_MAXIOV` iovecs) and sends
//! it with one vectored write. On a busy connection the next write waits for the batching
//! window to end first ([`crate::coalesce`]). One timer per connection, re-armed only when it fires, enforces
//! the CONNECT timeout, the PING interval with max outstanding PINGs, and the write deadline
//! (checked every half deadline). When the queue closes, the writer sends what is left and
//! shuts the socket down in both directions, which also ends the reader's pending read.

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use fanbench_protocol::{encode, subject, ClientOp, ClientParser, Connect, ProtocolError};
use fanbench_rt::ext::AsyncWriteRentExt;
use fanbench_rt::{AsyncReadRent, AsyncWriteRent, Runtime, Stream};
use futures_util::future::{select, Either};

use crate::coalesce::{Hold, Pacing};
use crate::outbound::{Batch, CloseReason, Outbound, MAX_IOVECS};
use crate::server::Broker;

/// One subscription of one client.
pub struct Subscription {
    /// The subscribing client.
    pub client: Arc<ClientShared>,
    /// The subject, possibly with wildcards.
    pub subject: Bytes,
    /// The queue group, if any.
    pub queue: Option<Bytes>,
    /// The client's subscription id.
    pub sid: Bytes,
    /// Messages after which the subscription ends (0: unlimited).
    max_msgs: AtomicU64,
    delivered: AtomicU64,
    removed: AtomicBool,
}

impl Subscription {
    /// Claim one delivery. Returns `None` if the subscription is gone or exhausted, otherwise
    /// whether this delivery is its last (so the caller removes it).
    fn claim(&self) -> Option<bool> {
        if self.removed.load(Ordering::Acquire) {
            return None;
        }
        let max = self.max_msgs.load(Ordering::Acquire);
        if max == 0 {
            return Some(false);
        }
        let n = self.delivered.fetch_add(1, Ordering::AcqRel) + 1;
        if n > max {
            return None;
        }
        Some(n == max)
    }
}

/// The part of a connection that other connections (publishers) and its two tasks share.
pub struct ClientShared {
    /// Server-assigned id, as sent in INFO.
    pub id: u64,
    /// Frames waiting to be written to this client.
    pub outbound: Arc<Outbound>,
    echo: AtomicBool,
    headers: AtomicBool,
    verbose: AtomicBool,
    connected: AtomicBool,
    pings_out: AtomicU32,
    /// Tasks still running; the last one to finish unregisters the client.
    live_tasks: AtomicU8,
}

impl ClientShared {
    pub(crate) fn new(id: u64, max_pending: usize) -> Arc<Self> {
        Arc::new(ClientShared {
            id,
            outbound: Outbound::new(max_pending),
            echo: AtomicBool::new(true),
            headers: AtomicBool::new(false),
            // nats-server's defaults before (or without) CONNECT: verbose and pedantic on.
            verbose: AtomicBool::new(true),
            connected: AtomicBool::new(false),
            pings_out: AtomicU32::new(0),
            live_tasks: AtomicU8::new(2),
        })
    }
}

/// One of a connection's two tasks' hold on it. When the task ends, or is dropped without
/// ever running (a spawner that could not start it, a runtime dropped with it queued), the
/// last of the two holds to go unregisters the connection, so the connection count never
/// keeps a connection nobody serves.
pub(crate) struct TaskHold {
    pub(crate) broker: Arc<Broker>,
    pub(crate) client: Arc<ClientShared>,
}

impl Drop for TaskHold {
    fn drop(&mut self) {
        // A task that never ran must not leave its peer task waiting on a queue nobody fills.
        self.client.outbound.close(CloseReason::ClientClosed, None);
        if self.client.live_tasks.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.broker.unregister(self.client.id);
        }
    }
}

/// The task that reads a connection's commands and acts on them.
pub struct ReaderTask<R: Runtime> {
    pub(crate) hold: TaskHold,
    pub(crate) read: <R::Stream as Stream>::ReadHalf,
}

/// The task that writes a connection's outbound queue.
pub struct WriterTask<R: Runtime> {
    pub(crate) hold: TaskHold,
    pub(crate) write: <R::Stream as Stream>::WriteHalf,
}

impl<R: Runtime> ReaderTask<R> {
    /// Run until the connection closes.
    pub fn run(self) -> impl Future<Output = ()> {
        let ReaderTask { hold, read } = self;
        async move {
            let (broker, client) = (&hold.broker, &hold.client);
            let mut conn = Connection::new(broker, client);
            let reason = conn.read_loop::<R>(read).await;
            conn.unsubscribe_all();
            client.outbound.close(reason, None);
        }
    }
}

impl<R: Runtime> WriterTask<R> {
    /// Run until the outbound queue closes and is flushed.
    pub fn run(self) -> impl Future<Output = ()> {
        let WriterTask { hold, mut write } = self;
        async move {
            write_loop::<R>(&hold.broker, &hold.client, &mut write).await;
            // The peer may already be gone; nothing is left to tell it.
            let _ = write.shutdown().await;
        }
    }
}

/// A connection's reader state. `pub(crate)` for [`crate::hotpath`], which drives the same
/// parse-and-handle path without a socket.
pub(crate) struct Connection<'a> {
    broker: &'a Broker,
    client: &'a Arc<ClientShared>,
    subs: HashMap<Bytes, Arc<Subscription>>,
    parser: ClientParser,
    pedantic: bool,
}

impl<'a> Connection<'a> {
    /// A fresh connection's reader state (nats-server's defaults until CONNECT arrives).
    pub(crate) fn new(broker: &'a Broker, client: &'a Arc<ClientShared>) -> Self {
        Connection {
            broker,
            client,
            subs: HashMap::new(),
            parser: ClientParser::new(broker.config().limits),
            pedantic: true,
        }
    }

    /// Parse and handle every complete operation in `buf`, as the read loop does after each
    /// read; returns the close reason if a protocol error closes the connection.
    pub(crate) fn handle_buffered(&mut self, buf: &mut BytesMut) -> Option<CloseReason> {
        loop {
            match self.parser.next_op(buf) {
                Ok(Some(op)) => {
                    if let Err(err) = self.handle(op) {
                        if let Some(reason) = self.protocol_error(&err) {
                            return Some(reason);
                        }
                    }
                }
                Ok(None) => return None,
                Err(err) => {
                    if let Some(reason) = self.protocol_error(&err) {
                        return Some(reason);
                    }
                }
            }
        }
    }
}

impl Connection<'_> {
    async fn read_loop<R: Runtime>(
        &mut self,
        mut read: <R::Stream as Stream>::ReadHalf,
    ) -> CloseReason {
        let chunk = self.broker.config().read_buffer;
        let mut buf = BytesMut::with_capacity(chunk);
        loop {
            if buf.capacity() - buf.len() < chunk / 4 {
                buf.reserve(chunk.max(buf.len()));
            } else if buf.capacity() > 4 * chunk && buf.len() <= chunk {
                // A buffer grown for a large message has been consumed: what is left of it
                // (the start of the next operation) moves to a fresh buffer, so that a small
                // payload read next does not land in, and keep alive, the large allocation.
                let mut fresh = BytesMut::with_capacity(chunk);
                fresh.extend_from_slice(&buf);
                buf = fresh;
            }
            let (res, b) = read.read(buf).await;
            buf = b;
            match res {
                Ok(0) | Err(_) => return CloseReason::ClientClosed,
                Ok(_) => {}
            }
            if self.client.outbound.is_closed() {
                return CloseReason::ClientClosed;
            }
            if let Some(reason) = self.handle_buffered(&mut buf) {
                return reason;
            }
            self.broker.window().release_due_now();
        }
    }

    /// Answer a protocol error; returns the close reason if the connection must close.
    fn protocol_error(&self, err: &ProtocolError) -> Option<CloseReason> {
        if err.closes_connection() {
            self.client
                .outbound
                .close(CloseReason::ProtocolError, err.err_text());
            Some(CloseReason::ProtocolError)
        } else {
            if let Some(text) = err.err_text() {
                self.client.outbound.push_text(|out| encode::err(out, text));
            }
            None
        }
    }

    fn ok(&self) {
        if self.client.verbose.load(Ordering::Relaxed) {
            self.client.outbound.push_text(encode::ok);
        }
    }

    /// Act on one operation; an error is answered as a protocol error.
    fn handle(&mut self, op: ClientOp) -> Result<(), ProtocolError> {
        match op {
            ClientOp::Connect(c) => self.connect(c),
            ClientOp::Pub {
                subject,
                reply_to,
                payload,
            } => {
                self.check_publish_subject(&subject);
                self.publish(&subject, reply_to.as_ref(), None, &payload);
                self.ok();
            }
            ClientOp::HPub {
                subject,
                reply_to,
                headers,
                payload,
            } => {
                // nats-server closes a connection that sends HPUB without declaring headers.
                if !self.client.headers.load(Ordering::Relaxed) {
                    return Err(ProtocolError::HeadersNotSupported);
                }
                self.check_publish_subject(&subject);
                self.publish(&subject, reply_to.as_ref(), Some(&headers), &payload);
                self.ok();
            }
            ClientOp::Sub {
                subject,
                queue_group,
                sid,
            } => self.subscribe(subject, queue_group, sid),
            ClientOp::Unsub { sid, max_msgs } => {
                self.unsubscribe(&sid, max_msgs);
                self.ok();
            }
            ClientOp::Ping => {
                self.client.outbound.push_text(encode::pong);
            }
            ClientOp::Pong => self.client.pings_out.store(0, Ordering::Relaxed),
        }
        Ok(())
    }

    fn connect(&mut self, c: Connect) {
        self.client.echo.store(c.echo, Ordering::Relaxed);
        self.client.headers.store(c.headers, Ordering::Relaxed);
        self.client.verbose.store(c.verbose, Ordering::Relaxed);
        self.pedantic = c.pedantic;
        self.client.connected.store(true, Ordering::Release);
        self.ok();
    }

    /// nats-server checks publish subjects only in pedantic mode, and then only complains:
    /// `-ERR 'Invalid Publish Subject'`, and the message is still routed and acknowledged.
    fn check_publish_subject(&self, subject: &[u8]) {
        if self.pedantic && !subject::is_valid_literal_subject(subject) {
            self.client
                .outbound
                .push_text(|out| encode::err(out, "Invalid Publish Subject"));
        }
    }

    fn subscribe(&mut self, subject_: Bytes, queue: Option<Bytes>, sid: Bytes) {
        if !subject::is_valid_subject(&subject_) {
            self.client
                .outbound
                .push_text(|out| encode::err(out, "Invalid Subject"));
            return;
        }
        if self.subs.contains_key(&sid) {
            // nats-server ignores a SUB that reuses a live sid.
            self.ok();
            return;
        }
        let sub = Arc::new(Subscription {
            client: self.client.clone(),
            subject: subject_,
            queue,
            sid: sid.clone(),
            max_msgs: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            removed: AtomicBool::new(false),
        });
        self.broker.sublist().insert(sub.clone());
        self.subs.insert(sid, sub);
        self.ok();
    }

    fn unsubscribe(&mut self, sid: &Bytes, max_msgs: Option<u64>) {
        let Some(sub) = self.subs.get(sid) else {
            return;
        };
        if let Some(max) = max_msgs.filter(|&m| m > 0) {
            sub.max_msgs.store(max, Ordering::Release);
            if sub.delivered.load(Ordering::Acquire) < max {
                return;
            }
        }
        if let Some(sub) = self.subs.remove(sid) {
            remove_subscription(self.broker, &sub);
        }
    }

    fn unsubscribe_all(&mut self) {
        for (_, sub) in self.subs.drain() {
            remove_subscription(self.broker, &sub);
        }
    }

    fn publish(
        &self,
        subject_: &Bytes,
        reply: Option<&Bytes>,
        headers: Option<&Bytes>,
        payload: &Bytes,
    ) {
        let matches = self.broker.sublist().matches(subject_);
        if matches.plain.is_empty() && matches.groups.is_empty() {
            return;
        }
        // A payload is a slice of the read buffer it arrived in, and a queued slice keeps that
        // whole buffer alive: a small payload a 64 KiB buffer, a large one the buffer grown
        // for it, up to twice its size plus the next messages read with it. So every payload
        // is copied out once per publish (never per subscriber), into an allocation of its own
        // length, and what a subscriber's queue keeps alive is what max pending counts,
        // whatever the payload size. The copy is cheap next to the fan-out it feeds (figures
        // in broker/PERF.md).
        let detach = |b: &Bytes| Bytes::copy_from_slice(b);
        let (headers, payload) = (headers.map(detach), detach(payload));
        let (headers, payload) = (headers.as_ref(), &payload);
        for sub in &matches.plain {
            self.deliver(sub, subject_, reply, headers, payload);
        }
        for group in &matches.groups {
            let n = group.members.len();
            let start = group.next_start();
            for i in 0..n {
                if self.deliver(
                    &group.members[(start + i) % n],
                    subject_,
                    reply,
                    headers,
                    payload,
                ) {
                    break;
                }
            }
        }
    }

    /// Queue one message for one subscription; returns whether it was queued.
    fn deliver(
        &self,
        sub: &Arc<Subscription>,
        subject_: &Bytes,
        reply: Option<&Bytes>,
        headers: Option<&Bytes>,
        payload: &Bytes,
    ) -> bool {
        let target = &sub.client;
        if target.id == self.client.id && !self.client.echo.load(Ordering::Relaxed) {
            return false;
        }
        let Some(last) = sub.claim() else {
            return false;
        };
        if last {
            remove_subscription(self.broker, sub);
        }
        let reply = reply.map(|r| &r[..]);
        match headers.filter(|_| target.headers.load(Ordering::Relaxed)) {
            Some(h) => target.outbound.push_msg(
                |out| {
                    encode::hmsg_header(
                        out,
                        subject_,
                        &sub.sid,
                        reply,
                        h.len(),
                        h.len() + payload.len(),
                    )
                },
                Some(h),
                payload,
            ),
            // A client that did not ask for headers gets the payload alone, as nats-server does.
            None => target.outbound.push_msg(
                |out| encode::msg_header(out, subject_, &sub.sid, reply, payload.len()),
                None,
                payload,
            ),
        }
    }
}

fn remove_subscription(broker: &Broker, sub: &Arc<Subscription>) {
    sub.removed.store(true, Ordering::Release);
    broker.sublist().remove(sub);
}

/// Drain the outbound queue until it closes; enforce the CONNECT timeout, PINGs and the write
/// deadline with one timer, re-armed only when it fires.
async fn write_loop<R: Runtime>(
    broker: &Broker,
    client: &ClientShared,
    write: &mut <R::Stream as Stream>::WriteHalf,
) {
    let config = broker.config();
    let accepted = Instant::now();
    // Often enough to keep the write deadline to within half of it and the PING interval to
    // within one interval.
    let check_every = (config.write_deadline / 2)
        .min(config.ping_interval)
        .max(Duration::from_millis(1));
    let mut next_ping = accepted + config.ping_interval;
    let mut timer = pin!(R::sleep(config.connect_timeout.min(check_every)));
    let mut frames: Vec<Bytes> = Vec::with_capacity(MAX_IOVECS);
    let window = broker.window();
    let mut pacing = Pacing::default();
    // A hold and the time it was decided at.
    let mut hold: Option<(Hold, Instant)> = None;

    loop {
        // Set when this pass follows a hold: frames already queued at its first look mean the
        // write leaves on the hold's release with work waiting.
        let mut after_hold = false;
        if let Some((Hold { until, keeps_time }, now)) = hold.take() {
            after_hold = true;
            // Ends the window for every writer held for it when this hold is over, or when
            // the task is dropped during it (then early, which only costs batching).
            let _keeper = keeps_time.then(|| window.keeper(until));
            if until > now {
                // Whichever comes first: a reader or the timekeeper that saw the window end
                // (a timer that rounds up must not stretch the hold), or, for the timekeeper,
                // its own sleep.
                let released = pin!(window.released(until));
                let nap = pin!(if keeps_time {
                    Either::Left(R::sleep(until - now))
                } else {
                    Either::Right(std::future::pending())
                });
                let mut hold_over = select(nap, released);
                loop {
                    match select(&mut hold_over, timer.as_mut()).await {
                        Either::Left(_) => break,
                        Either::Right(((), _)) => {
                            on_timer(config, client, accepted, &mut next_ping);
                            timer.set(R::sleep(check_every));
                        }
                    }
                }
            }
        }
        let take = poll_fn(|cx| {
            let taken = client.outbound.poll_take(cx, &mut frames);
            if std::mem::take(&mut after_hold) && matches!(taken, Poll::Ready(Batch::Frames)) {
                pacing.released_with_work();
            }
            taken
        });
        match select(pin!(take), timer.as_mut()).await {
            Either::Left((Batch::Closed(_), _)) => return,
            Either::Left((Batch::Frames, _)) => {}
            Either::Right(((), _)) => {
                on_timer(config, client, accepted, &mut next_ping);
                timer.set(R::sleep(check_every));
                continue;
            }
        }
        let write_started = Instant::now();
        let result = {
            let mut writing = pin!(write.writev_all(&mut frames));
            loop {
                match select(writing.as_mut(), timer.as_mut()).await {
                    Either::Left((res, _)) => break res,
                    Either::Right(((), _)) => {
                        let blocked = write_started.elapsed();
                        if blocked >= config.write_deadline {
                            client.outbound.cut_slow_consumer();
                            break Err(io::ErrorKind::TimedOut.into());
                        }
                        on_timer(config, client, accepted, &mut next_ping);
                        // A write is blocked: wake up when its deadline passes, not up to a
                        // check period later (a socket that drains a little now and then
                        // would otherwise stretch the deadline by half).
                        let until_deadline = config.write_deadline - blocked;
                        timer.set(R::sleep(check_every.min(until_deadline)));
                    }
                }
            }
        };
        if result.is_err() {
            return;
        }
        frames.clear();
        client.outbound.written();
        if !window.is_off() {
            let now = Instant::now();
            if pacing.completed(now, window.duration()) {
                hold = Some((window.hold_until(now), now));
            }
        }
    }
}

/// The periodic checks: CONNECT timeout, then PING with max outstanding PINGs.
fn on_timer(
    config: &crate::BrokerConfig,
    client: &ClientShared,
    accepted: Instant,
    next_ping: &mut Instant,
) {
    let now = Instant::now();
    if !client.connected.load(Ordering::Acquire)
        && now.duration_since(accepted) >= config.connect_timeout
    {
        client
            .outbound
            .close(CloseReason::ConnectTimeout, Some("Authentication Timeout"));
        return;
    }
    if now >= *next_ping {
        *next_ping = now + config.ping_interval;
        if client.pings_out.fetch_add(1, Ordering::Relaxed) >= config.max_pings_out {
            client
                .outbound
                .close(CloseReason::StaleConnection, Some("Stale Connection"));
        } else {
            client.outbound.push_text(encode::ping);
        }
    }
}
