//! The event loop: one ring, every connection, one turn per `io_uring_enter`.
//!
//! # A turn
//!
//! 1. `submit_and_wait(1)`: everything queued last turn goes in, at least one completion
//!    comes out (the periodic tick guarantees one every [`TICK`]).
//! 2. The clock is read once: every completion of the turn happened "now".
//! 3. Completions are handled: accepts open connections (INFO queued), receives are parsed
//!    (`PUB` is copied into each subscriber's pending buffer), sends advance their buffer
//!    and consult the batching policy.
//! 4. If the batching window is over, held connections are released.
//! 5. Every connection that got data this turn and is neither sending nor held starts one
//!    send with all of it.
//! 6. Connections that are shut down and have no op in flight are freed (their fd closed).
//!
//! # State
//!
//! `conns` is a slab; a connection's `user_data` carries its index. A slot is freed only when
//! neither its receive nor its send is in flight (see `conn.rs` # Safety), and only at the end
//! of a turn, so an index in `held` or `dirty` never points at a newer connection.

use std::io;
use std::mem;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use fanbench_protocol::{encode, subject, ClientOp, ProtocolError, ServerInfo};
use io_uring::{opcode, types, types::CancelBuilder};
use slab::Slab;

use crate::batching::{Batching, Decision};
use crate::conn::{Chunk, Conn, State};
use crate::ring::{self, Cqe, Kind, Ring};
use crate::subjects::Subjects;
use crate::{FloorConfig, FloorStats, ANNOUNCED_VERSION};

/// The periodic wake-up: a stop is seen within this.
pub(crate) const TICK: Duration = Duration::from_millis(25);
/// How long a stop waits for the kernel to hand back every buffer.
const DRAIN_TIMEOUT: Duration = Duration::from_millis(100);

pub(crate) struct Server {
    ring: Ring,
    listener: TcpListener,
    local: SocketAddr,
    server_id: String,
    config: FloorConfig,
    conns: Slab<Conn>,
    subjects: Subjects,
    batching: Batching,
    /// Connections whose next send waits for the window to end.
    held: Vec<usize>,
    /// Connections that got data this turn.
    dirty: Vec<usize>,
    /// Connections to free at the end of the turn.
    to_free: Vec<usize>,
    /// Connections cut as slow consumers during one fan-out.
    cut: Vec<usize>,
    cqes: Vec<ring::Cqe>,
    /// What follows `MSG <subject> <sid> ` in the message being fanned out.
    body: BytesMut,
    /// The timespecs the kernel reads when a timeout is submitted (boxed: a stable address).
    window_ts: Box<types::Timespec>,
    tick_ts: Box<types::Timespec>,
    /// Ops the kernel has not finished with (accept, receives, sends, timeouts).
    ops_in_flight: usize,
    accept_armed: bool,
    /// Accepting stopped for lack of descriptors; resumed when a connection is freed.
    accept_paused: bool,
    stopping: bool,
    next_client_id: u64,
    stats: FloorStats,
}

impl Server {
    pub fn new(listener: TcpListener, config: FloorConfig) -> io::Result<Server> {
        let ring = Ring::new(config.ring_entries)?;
        let local = listener.local_addr().map_err(|e| {
            io::Error::new(e.kind(), format!("reading the listener's address: {e}"))
        })?;
        let stats = FloorStats {
            ring_flags: ring.flags.iter().map(|f| f.to_string()).collect(),
            coalesce_us: u64::try_from(config.coalesce.as_micros()).unwrap_or(u64::MAX),
            ..FloorStats::default()
        };
        Ok(Server {
            ring,
            listener,
            local,
            server_id: format!("FLOOR{:016X}", u64::from(std::process::id()) ^ now_ns()),
            batching: Batching::new(config.coalesce),
            config,
            conns: Slab::new(),
            subjects: Subjects::default(),
            held: Vec::new(),
            dirty: Vec::new(),
            to_free: Vec::new(),
            cut: Vec::new(),
            cqes: Vec::new(),
            body: BytesMut::with_capacity(64),
            window_ts: Box::new(types::Timespec::new()),
            tick_ts: Box::new(TICK.into()),
            ops_in_flight: 0,
            accept_armed: false,
            accept_paused: false,
            stopping: false,
            next_client_id: 1,
            stats,
        })
    }

    /// Serve until `stop` is set, then close everything and return the counters.
    pub fn run(mut self, stop: &AtomicBool) -> io::Result<FloorStats> {
        let result = self.serve(stop);
        self.shut_down();
        result.map(|()| mem::take(&mut self.stats))
    }

    fn serve(&mut self, stop: &AtomicBool) -> io::Result<()> {
        self.arm_accept()?;
        self.arm_tick()?;
        while !stop.load(Ordering::Relaxed) {
            self.ring.submit(1, &mut self.stats)?;
            let now = now_ns();
            let mut cqes = mem::take(&mut self.cqes);
            self.ring.reap(&mut cqes);
            self.stats.cqes += cqes.len() as u64;
            for cqe in cqes.drain(..) {
                self.complete(cqe, now)?;
            }
            self.cqes = cqes;
            if !self.held.is_empty() && self.batching.window_over(now) {
                self.release_held()?;
            }
            self.flush_dirty()?;
            self.free_closed()?;
        }
        Ok(())
    }

    fn complete(&mut self, cqe: Cqe, now: u64) -> io::Result<()> {
        let Some((kind, index)) = ring::decode(cqe.user_data) else {
            return Ok(());
        };
        match kind {
            Kind::Accept => self.accepted(cqe),
            Kind::Recv => self.received(index, cqe.result),
            Kind::Send => self.sent(index, cqe.result, now),
            Kind::Tick => {
                self.ops_in_flight -= 1;
                if self.stopping {
                    Ok(())
                } else {
                    self.arm_tick()
                }
            }
            Kind::Window => {
                // The release itself is decided by the clock at the end of the turn.
                self.ops_in_flight -= 1;
                Ok(())
            }
            Kind::Cancel => Ok(()),
        }
    }

    // ---- accepting ------------------------------------------------------------------

    fn arm_accept(&mut self) -> io::Result<()> {
        let sqe = opcode::AcceptMulti::new(types::Fd(self.listener.as_raw_fd()))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(ring::user_data(Kind::Accept, 0));
        // SAFETY: a multishot accept without an address buffer points at no memory.
        unsafe { self.ring.push(&sqe, &mut self.stats)? };
        self.ops_in_flight += 1;
        self.accept_armed = true;
        Ok(())
    }

    fn accepted(&mut self, cqe: Cqe) -> io::Result<()> {
        if !cqe.more() {
            self.ops_in_flight -= 1;
            self.accept_armed = false;
        }
        if cqe.result >= 0 {
            // SAFETY: a successful accept returns a fresh descriptor that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(cqe.result) };
            if self.stopping {
                return Ok(());
            }
            self.open(fd)?;
        } else if matches!(
            -cqe.result,
            libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM
        ) {
            // Out of descriptors or memory: accepting again at once would fail at once, in a
            // loop. Wait until a connection is freed.
            self.stats.accept_errors += 1;
            self.accept_paused = true;
        } else if cqe.result != -libc::ECANCELED {
            self.stats.accept_errors += 1;
        }
        if !self.accept_armed && !self.accept_paused && !self.stopping {
            self.arm_accept()?;
        }
        Ok(())
    }

    fn open(&mut self, fd: OwnedFd) -> io::Result<()> {
        let sock = socket2::SockRef::from(&fd);
        // Latency is measured per message: never let Nagle hold a small send.
        if sock.set_tcp_nodelay(true).is_err() {
            self.stats.accept_errors += 1;
            return Ok(());
        }
        let peer = sock.peer_addr().ok().and_then(|a| a.as_socket());
        let info = self.info(peer);
        let mut conn = Conn::new(fd, self.config.limits);
        encode::info(conn.out.text(), &info);
        let index = self.conns.insert(conn);
        self.stats.accepts += 1;
        self.arm_recv(index)?;
        self.mark_dirty(index);
        Ok(())
    }

    /// The fields the broker sends, except `headers: false` (no `HPUB`).
    fn info(&mut self, peer: Option<SocketAddr>) -> ServerInfo {
        let client_id = self.next_client_id;
        self.next_client_id += 1;
        ServerInfo {
            server_id: self.server_id.clone(),
            server_name: self.config.server_name.clone(),
            version: ANNOUNCED_VERSION.to_string(),
            proto: 1,
            go: concat!("fanbench-floor ", env!("CARGO_PKG_VERSION")).to_string(),
            host: self.local.ip().to_string(),
            port: self.local.port(),
            headers: false,
            max_payload: self.config.limits.max_payload,
            client_id,
            client_ip: peer.map(|p| p.ip().to_string()),
            ..ServerInfo::default()
        }
    }

    // ---- receiving ------------------------------------------------------------------

    fn arm_recv(&mut self, index: usize) -> io::Result<()> {
        let conn = &mut self.conns[index];
        let (ptr, len) = conn.recv_room();
        let sqe = opcode::Recv::new(types::Fd(conn.fd.as_raw_fd()), ptr, len)
            .build()
            .user_data(ring::user_data(Kind::Recv, index));
        // SAFETY: `ptr..ptr+len` is `recv_buf`'s spare capacity; `recv_in_flight` keeps the
        // buffer untouched and the connection unfreed until the completion (conn.rs # Safety).
        unsafe { self.ring.push(&sqe, &mut self.stats)? };
        conn.recv_in_flight = true;
        self.ops_in_flight += 1;
        Ok(())
    }

    fn received(&mut self, index: usize, result: i32) -> io::Result<()> {
        self.ops_in_flight -= 1;
        self.stats.recvs += 1;
        let conn = &mut self.conns[index];
        conn.recv_in_flight = false;
        match conn.state {
            State::Open if result > 0 => {
                let n = result as usize;
                // SAFETY: the kernel wrote `n` bytes into the spare capacity the receive was
                // given, which starts at the buffer's length (untouched since it was armed).
                unsafe { conn.recv_buf.set_len(conn.recv_buf.len() + n) };
                self.parse(index);
                if self.conns[index].state == State::Open {
                    self.arm_recv(index)?;
                }
            }
            // Closed by the peer (0) or broken.
            State::Open => self.close(index),
            // Draining: the reader is done; the peer's close or the drain's end closes it.
            State::Draining if result <= 0 => self.close(index),
            State::Draining => {}
            State::Closing => self.free_when_idle(index),
        }
        Ok(())
    }

    fn parse(&mut self, index: usize) {
        loop {
            let conn = &mut self.conns[index];
            let op = match conn.parser.next_op(&mut conn.recv_buf) {
                Ok(Some(op)) => op,
                Ok(None) => return,
                Err(e) => {
                    self.protocol_error(index, &e);
                    return;
                }
            };
            match op {
                ClientOp::Pub {
                    subject,
                    reply_to,
                    payload,
                } => self.publish(index, &subject, reply_to.as_deref(), &payload),
                ClientOp::HPub { .. } => {
                    self.protocol_error(index, &ProtocolError::HeadersNotSupported)
                }
                ClientOp::Sub {
                    subject,
                    queue_group,
                    sid,
                } => self.subscribe(index, subject, queue_group.is_some(), sid),
                ClientOp::Unsub { sid, max_msgs } => self.unsubscribe(index, &sid, max_msgs),
                ClientOp::Ping => {
                    encode::pong(self.conns[index].out.text());
                    self.mark_dirty(index);
                }
                ClientOp::Pong => {}
                ClientOp::Connect(c) => self.conns[index].echo = c.echo,
            }
            if self.conns[index].state != State::Open {
                return;
            }
        }
    }

    /// `-ERR` (when nats-server sends one) and, when nats-server closes, a drain and close.
    fn protocol_error(&mut self, index: usize, e: &ProtocolError) {
        if let Some(text) = e.err_text() {
            self.send_err(index, text);
        }
        if e.closes_connection() {
            self.drain_and_close(index);
        }
    }

    fn send_err(&mut self, index: usize, text: &str) {
        encode::err(self.conns[index].out.text(), text);
        self.mark_dirty(index);
    }

    fn subscribe(&mut self, index: usize, subject: Bytes, queue_group: bool, sid: Bytes) {
        if queue_group {
            return self.send_err(index, "Queue Groups Not Supported");
        }
        if !subject::is_valid_subject(&subject) {
            let e = ProtocolError::InvalidSubject;
            return self.protocol_error(index, &e);
        }
        if subject::has_wildcard(&subject) {
            return self.send_err(index, "Wildcard Subscriptions Not Supported");
        }
        let conn = &mut self.conns[index];
        // As nats-server: a SUB reusing a live sid is ignored.
        if conn.subs.iter().any(|(_, s)| *s == sid) {
            return;
        }
        conn.subs.push((subject.clone(), sid.clone()));
        self.subjects.insert(subject, index, sid);
    }

    fn unsubscribe(&mut self, index: usize, sid: &[u8], max_msgs: Option<u64>) {
        if max_msgs.is_some_and(|m| m > 0) {
            return self.send_err(index, "UNSUB With max_msgs Not Supported");
        }
        let conn = &mut self.conns[index];
        // An unknown sid is ignored, as by nats-server.
        if let Some(at) = conn.subs.iter().position(|(_, s)| s == sid) {
            let (subject, sid) = conn.subs.swap_remove(at);
            self.subjects.remove(&subject, index, &sid);
        }
    }

    /// Copy the message into every subscriber's pending buffer: `MSG <subject> <sid> ` (kept
    /// per subscription), then `[reply-to ]<#bytes>\r\n<payload>\r\n` (built once per
    /// message). A payload at or above the share threshold is queued by reference instead.
    fn publish(&mut self, from: usize, subject: &[u8], reply_to: Option<&[u8]>, payload: &Bytes) {
        self.stats.messages_in += 1;
        let echo = self.conns[from].echo;
        let share = !payload.is_empty() && payload.len() >= self.config.share_threshold;
        // Everything after the per-subscription prefix, built once: `[reply-to ]<#bytes>\r\n`,
        // then (when copied) the payload and CRLF, so a delivery is two copies.
        let body = &mut self.body;
        body.clear();
        if let Some(r) = reply_to {
            body.extend_from_slice(r);
            body.extend_from_slice(b" ");
        }
        body.extend_from_slice(itoa::Buffer::new().format(payload.len()).as_bytes());
        body.extend_from_slice(encode::CRLF);
        let head_len = body.len();
        if !share {
            body.extend_from_slice(payload);
            body.extend_from_slice(encode::CRLF);
        }
        let Server {
            subjects,
            conns,
            body,
            dirty,
            cut,
            stats,
            config,
            ..
        } = self;
        for sub in subjects.get(subject) {
            if sub.conn == from && !echo {
                continue;
            }
            let conn = &mut conns[sub.conn];
            if conn.state != State::Open {
                continue;
            }
            let frame = sub.prefix.len() + head_len + payload.len() + 2;
            if conn.out.queued() + frame > config.max_pending {
                // Draining at once, so a second subscription of the same connection to this
                // subject queues nothing behind the -ERR.
                conn.state = State::Draining;
                conn.out.replace_pending_with_err("Slow Consumer");
                stats.slow_consumers += 1;
                cut.push(sub.conn);
                continue;
            }
            if share {
                let text = conn.out.text();
                text.reserve(sub.prefix.len() + head_len + 2);
                text.extend_from_slice(&sub.prefix);
                text.extend_from_slice(&body[..head_len]);
                conn.out.push_shared(payload);
                conn.out.text().extend_from_slice(encode::CRLF);
            } else {
                let text = conn.out.text();
                text.reserve(frame);
                text.extend_from_slice(&sub.prefix);
                text.extend_from_slice(body);
            }
            stats.deliveries_out += 1;
            if !conn.dirty {
                conn.dirty = true;
                dirty.push(sub.conn);
            }
        }
        let mut cut = mem::take(&mut self.cut);
        for index in cut.drain(..) {
            self.forget_subscriptions(index);
            self.mark_dirty(index);
        }
        self.cut = cut;
    }

    // ---- sending --------------------------------------------------------------------

    fn mark_dirty(&mut self, index: usize) {
        let conn = &mut self.conns[index];
        if !conn.dirty {
            conn.dirty = true;
            self.dirty.push(index);
        }
    }

    /// Start a send for every connection with new data that is neither sending nor held.
    fn flush_dirty(&mut self) -> io::Result<()> {
        let mut dirty = mem::take(&mut self.dirty);
        for index in dirty.drain(..) {
            let conn = &mut self.conns[index];
            conn.dirty = false;
            if conn.state != State::Closing && !conn.send_in_flight && !conn.clock.held {
                self.start_send(index)?;
            }
        }
        self.dirty = dirty;
        Ok(())
    }

    /// One send of everything queued (or of what a partial send left). A draining connection
    /// with nothing left is closed instead.
    fn start_send(&mut self, index: usize) -> io::Result<()> {
        let conn = &mut self.conns[index];
        let Some(chunk) = conn.out.next_chunk() else {
            if conn.state == State::Draining {
                self.close(index);
            }
            return Ok(());
        };
        let fd = types::Fd(conn.fd.as_raw_fd());
        let sqe = match chunk {
            Chunk::Contiguous(ptr, len) => opcode::Send::new(fd, ptr, len)
                .flags(libc::MSG_NOSIGNAL)
                .build(),
            Chunk::Vectored(msg) => {
                self.stats.vectored_sends += 1;
                opcode::SendMsg::new(fd, msg)
                    .flags(libc::MSG_NOSIGNAL as u32)
                    .build()
            }
        }
        .user_data(ring::user_data(Kind::Send, index));
        // SAFETY: the chunk points into the batch in flight (and, vectored, at the iovecs and
        // header beside it), which `send_in_flight` keeps untouched and the connection unfreed
        // until the completion (conn.rs # Safety).
        unsafe { self.ring.push(&sqe, &mut self.stats)? };
        conn.send_in_flight = true;
        self.ops_in_flight += 1;
        self.stats.sends += 1;
        Ok(())
    }

    fn sent(&mut self, index: usize, result: i32, now: u64) -> io::Result<()> {
        self.ops_in_flight -= 1;
        let conn = &mut self.conns[index];
        conn.send_in_flight = false;
        if conn.state == State::Closing {
            self.free_when_idle(index);
            return Ok(());
        }
        if result <= 0 {
            // The peer is gone (EPIPE, ECONNRESET); a send of a non-empty buffer never
            // returns 0.
            self.close(index);
            return Ok(());
        }
        self.stats.bytes_out += result as u64;
        if !conn.out.advance(result as usize) {
            // The socket took part of it: the rest goes at once, ahead of anything pending.
            self.stats.partial_sends += 1;
            return self.start_send(index);
        }
        match self.batching.send_done(&mut conn.clock, now) {
            Decision::SendNow => self.start_send(index),
            Decision::Hold { new_window } => {
                self.stats.holds += 1;
                if let Some(end) = new_window {
                    // Holds left from the window that just ended are due (its timeout's
                    // completion may not have been reaped yet).
                    self.release_held()?;
                    self.arm_window(end)?;
                    self.stats.windows += 1;
                }
                self.held.push(index);
                Ok(())
            }
        }
    }

    fn arm_window(&mut self, end_ns: u64) -> io::Result<()> {
        *self.window_ts = types::Timespec::new()
            .sec(end_ns / 1_000_000_000)
            .nsec((end_ns % 1_000_000_000) as u32);
        let sqe = opcode::Timeout::new(&*self.window_ts)
            .flags(types::TimeoutFlags::ABS)
            .build()
            .user_data(ring::user_data(Kind::Window, 0));
        // SAFETY: the kernel copies the timespec when the SQE is submitted; it lives in a box
        // owned by the server and is rewritten only when the next window opens, which is never
        // within the same turn (a window opens only once the previous one is over, and the
        // clock is read once per turn), and every turn submits.
        unsafe { self.ring.push(&sqe, &mut self.stats)? };
        self.ops_in_flight += 1;
        Ok(())
    }

    fn arm_tick(&mut self) -> io::Result<()> {
        let sqe = opcode::Timeout::new(&*self.tick_ts)
            .build()
            .user_data(ring::user_data(Kind::Tick, 0));
        // SAFETY: the kernel copies the timespec at submission; it is boxed, owned by the
        // server and never changed.
        unsafe { self.ring.push(&sqe, &mut self.stats)? };
        self.ops_in_flight += 1;
        Ok(())
    }

    /// The window is over: every held connection with data sends it now.
    fn release_held(&mut self) -> io::Result<()> {
        let mut held = mem::take(&mut self.held);
        for index in held.drain(..) {
            let conn = &mut self.conns[index];
            conn.clock.held = false;
            if conn.state == State::Closing || conn.send_in_flight {
                continue;
            }
            if conn.out.queued() > 0 {
                conn.clock.released_with_data();
                self.stats.held_sends += 1;
                self.start_send(index)?;
            } else if conn.state == State::Draining {
                self.close(index);
            }
        }
        self.held = held;
        Ok(())
    }

    // ---- closing --------------------------------------------------------------------

    /// Stop reading and delivering; close once what is queued is sent.
    fn drain_and_close(&mut self, index: usize) {
        let conn = &mut self.conns[index];
        if conn.state != State::Open {
            return;
        }
        conn.state = State::Draining;
        self.forget_subscriptions(index);
        if self.conns[index].flushed() && !self.conns[index].clock.held {
            self.close(index);
        }
    }

    /// Shut the socket down (which completes its receive and send) and free it once its ops
    /// are back. Anything not yet sent is dropped.
    fn close(&mut self, index: usize) {
        let conn = &mut self.conns[index];
        if conn.state == State::Closing {
            return;
        }
        let was_open = conn.state == State::Open;
        conn.state = State::Closing;
        conn.out.clear_pending();
        // An error means the socket is already disconnected: its ops complete anyway.
        let _ = socket2::SockRef::from(&conn.fd).shutdown(std::net::Shutdown::Both);
        if was_open {
            self.forget_subscriptions(index);
        }
        self.stats.closed += 1;
        self.free_when_idle(index);
    }

    fn forget_subscriptions(&mut self, index: usize) {
        for (subject, sid) in mem::take(&mut self.conns[index].subs) {
            self.subjects.remove(&subject, index, &sid);
        }
    }

    fn free_when_idle(&mut self, index: usize) {
        let conn = &mut self.conns[index];
        if conn.state == State::Closing
            && !conn.recv_in_flight
            && !conn.send_in_flight
            && !conn.freeing
        {
            conn.freeing = true;
            self.to_free.push(index);
        }
    }

    fn free_closed(&mut self) -> io::Result<()> {
        if self.to_free.is_empty() {
            return Ok(());
        }
        for index in self.to_free.drain(..) {
            let conn = self.conns.remove(index);
            if conn.clock.held {
                self.held.retain(|&i| i != index);
            }
            // Dropping `conn` closes its descriptor.
        }
        if self.accept_paused && !self.accept_armed {
            self.accept_paused = false;
            self.arm_accept()?;
        }
        Ok(())
    }

    /// Shut every socket down, cancel every op, and wait (bounded) for the kernel to hand
    /// every buffer back. Buffers of ops that did not complete in time are leaked, never
    /// freed: the kernel could still write into them.
    fn shut_down(&mut self) {
        self.stopping = true;
        for (_, conn) in self.conns.iter_mut() {
            conn.state = State::Closing;
            let _ = socket2::SockRef::from(&conn.fd).shutdown(std::net::Shutdown::Both);
        }
        let cancel = opcode::AsyncCancel2::new(CancelBuilder::any())
            .build()
            .user_data(ring::user_data(Kind::Cancel, 0));
        // SAFETY: a cancellation points at no memory.
        let pushed = unsafe { self.ring.push(&cancel, &mut self.stats) };
        let deadline = now_ns() + DRAIN_TIMEOUT.as_nanos() as u64;
        let mut waited = pushed.is_ok();
        // The last thing before giving up is a reap, so a stall of this thread past the
        // deadline does not leak buffers whose completions are already there.
        while waited {
            let mut cqes = mem::take(&mut self.cqes);
            self.ring.reap(&mut cqes);
            for cqe in cqes.drain(..) {
                self.drained(cqe);
            }
            self.cqes = cqes;
            waited = self.ops_in_flight > 0
                && now_ns() < deadline
                && self
                    .ring
                    .wait_bounded(Duration::from_millis(5), &mut self.stats)
                    .is_ok();
        }
        self.stats.ops_leaked = self.ops_in_flight as u64;
        if self.ops_in_flight > 0 {
            mem::forget(mem::take(&mut self.conns));
        }
    }

    /// A completion during shutdown: only the bookkeeping of who owns what.
    fn drained(&mut self, cqe: Cqe) {
        let Some((kind, index)) = ring::decode(cqe.user_data) else {
            return;
        };
        match kind {
            Kind::Accept => {
                if cqe.result >= 0 {
                    // SAFETY: a fresh descriptor from accept; closing it is all we do.
                    drop(unsafe { OwnedFd::from_raw_fd(cqe.result) });
                }
                if !cqe.more() {
                    self.ops_in_flight -= 1;
                }
            }
            Kind::Recv => {
                self.conns[index].recv_in_flight = false;
                self.ops_in_flight -= 1;
            }
            Kind::Send => {
                self.conns[index].send_in_flight = false;
                self.ops_in_flight -= 1;
            }
            Kind::Tick | Kind::Window => self.ops_in_flight -= 1,
            Kind::Cancel => {}
        }
    }
}

/// CLOCK_MONOTONIC in ns: the clock absolute io_uring timeouts use.
pub(crate) fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
