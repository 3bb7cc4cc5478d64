//! The pacer: sends every publisher's messages on schedule.
//!
//! # Design
//!
//! One pacer serves all publishers (each on its own connection and subject). Their schedules
//! are staggered over one period (see [`Schedule::staggered`]) so their deadlines rarely meet.
//! [`Pacer`] holds the schedule and the connections; how it waits is its host's business:
//! [`run_pacer`] gives it a thread of its own, and the io_uring receive path runs it inside
//! receiver thread 0's ring loop (`ring` module) when the two would share a CPU anyway.
//! On its own thread, waiting for the next deadline is `ppoll` on the publisher sockets (so
//! server `PING`s and `-ERR`s are handled and blocked writes resume while waiting) with a timeout
//! that ends a margin before the deadline; the rest is a busy-wait on CLOCK_MONOTONIC. The margin
//! adapts to how late wake-ups have been (twice their moving average, between [`MIN_SPIN_NS`]
//! and [`MAX_SPIN_NS`]), so a quiet machine spins a few microseconds per message and a noisy one
//! spins longer rather than sending late. That thread's timer slack is 1 ns and, where allowed,
//! it runs SCHED_FIFO.
//!
//! Sockets are non-blocking. When the kernel will not take a whole message (the server stopped
//! reading), the rest is kept in that publisher's backlog and sent as the socket drains; later
//! messages queue behind it, so nothing waits: the schedule of every publisher keeps running.
//! A message's actual send time is when it was handed to the socket or appended to the backlog.
//!
//! A message that falls due while the pacer is late is sent at once (never skipped, never
//! batched away) and its lag recorded: pacing lag = actual - intended send time.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::{Buf, Bytes, BytesMut};
use hdrhistogram::Histogram;

use super::os;
use super::payload::{self, Header};
use super::schedule::Schedule;
use super::stats;
use super::wire::{self, Incoming};
use super::Timeline;

/// Bounds of the margin before a deadline at which the pacer stops sleeping and spins.
pub const MIN_SPIN_NS: u64 = 5_000;
pub const MAX_SPIN_NS: u64 = 100_000;

/// Moving average of how late timed wake-ups are, and the spin margin it implies.
#[derive(Debug, Clone, Copy)]
pub struct SpinMargin {
    late_avg_ns: u64,
}

impl SpinMargin {
    pub fn new() -> Self {
        Self {
            late_avg_ns: MAX_SPIN_NS / 2,
        }
    }

    /// Twice the average lateness, within [`MIN_SPIN_NS`, `MAX_SPIN_NS`].
    pub fn margin_ns(&self) -> u64 {
        (2 * self.late_avg_ns).clamp(MIN_SPIN_NS, MAX_SPIN_NS)
    }

    /// Records that a wake-up asked for `asked_ns` happened at `woke_ns` (weight 1/8).
    pub fn observe(&mut self, asked_ns: u64, woke_ns: u64) {
        let late = woke_ns.saturating_sub(asked_ns).min(10 * MAX_SPIN_NS);
        self.late_avg_ns = (7 * self.late_avg_ns + late) / 8;
    }
}

/// The most writev slices handed to the kernel at once when draining a backlog.
const MAX_IOV: usize = 64;

/// One publisher's connection, ready to publish (handshake done, non-blocking).
pub struct PublisherConn {
    id: u32,
    stream: TcpStream,
    pub_line: Bytes,
    read_buf: BytesMut,
    parser: wire::Parser,
    backlog: VecDeque<Bytes>,
    backlog_bytes: usize,
    alive: bool,
}

impl PublisherConn {
    /// Connects publisher `id`, completes the handshake (INFO, CONNECT, PING/PONG) and switches
    /// the socket to non-blocking.
    pub fn connect(
        target: SocketAddr,
        id: u32,
        subject: &str,
        payload_bytes: usize,
    ) -> Result<Self> {
        let timeout = Duration::from_secs(5);
        let stream = TcpStream::connect_timeout(&target, timeout)
            .with_context(|| format!("publisher {id}: connecting to {target}"))?;
        stream.set_nodelay(true).context("setting TCP_NODELAY")?;
        stream
            .set_read_timeout(Some(timeout))
            .context("setting a read timeout")?;
        let mut conn = Self {
            id,
            stream,
            pub_line: Bytes::from(format!("PUB {subject} {payload_bytes}\r\n")),
            read_buf: BytesMut::with_capacity(4096),
            parser: wire::Parser::new(payload_bytes),
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            alive: true,
        };
        conn.handshake()
            .with_context(|| format!("publisher {id}: handshake with {target}"))?;
        conn.stream
            .set_nonblocking(true)
            .context("setting O_NONBLOCK")?;
        Ok(conn)
    }

    fn handshake(&mut self) -> Result<()> {
        self.read_until(|op| matches!(op, Incoming::Info))?;
        let hello = wire::hello(&format!("fanbench-pub-{}", self.id), None);
        self.stream
            .write_all(&hello)
            .context("sending CONNECT/PING")?;
        self.read_until(|op| matches!(op, Incoming::Pong))
    }

    /// Blocking read until `done` accepts an op; `-ERR` or a closed connection is an error.
    fn read_until(&mut self, done: impl Fn(&Incoming) -> bool) -> Result<()> {
        wire::read_until(
            &mut self.stream,
            &mut self.parser,
            &mut self.read_buf,
            wire::Pings::Ignore,
            done,
        )
    }

    fn queue(&mut self, chunk: Bytes) {
        self.backlog_bytes += chunk.len();
        self.backlog.push_back(chunk);
    }

    /// Writes as much of the backlog as the socket takes now.
    fn flush(&mut self, errors: &mut Vec<String>) {
        while self.alive && !self.backlog.is_empty() {
            let slices: Vec<IoSlice<'_>> = self
                .backlog
                .iter()
                .take(MAX_IOV)
                .map(|b| IoSlice::new(b))
                .collect();
            match self.stream.write_vectored(&slices) {
                Ok(0) => {
                    self.fail(errors, "socket accepted no bytes".to_string());
                }
                Ok(mut written) => {
                    self.backlog_bytes -= written;
                    while written > 0 {
                        let front = self
                            .backlog
                            .front_mut()
                            .expect("written bytes came from the backlog");
                        if front.len() <= written {
                            written -= front.len();
                            self.backlog.pop_front();
                        } else {
                            front.advance(written);
                            written = 0;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.fail(errors, format!("write failed: {e}")),
            }
        }
    }

    /// Reads whatever the server sent (PING, -ERR) without blocking.
    fn service_reads(&mut self, errors: &mut Vec<String>) {
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.fail(errors, "server closed the connection".to_string());
                    return;
                }
                Ok(n) => self.read_buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(errors, format!("read failed: {e}"));
                    return;
                }
            }
        }
        loop {
            match self.parser.next(&mut self.read_buf) {
                Ok(Some(Incoming::Ping)) => self.queue(Bytes::from_static(wire::PONG)),
                Ok(Some(Incoming::Err(text))) => {
                    errors.push(format!("publisher {}: server sent -ERR {text}", self.id))
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    self.fail(errors, format!("unparsable data from the server: {e:#}"));
                    return;
                }
            }
        }
        self.flush(errors);
    }

    fn fail(&mut self, errors: &mut Vec<String>, what: String) {
        if self.alive {
            errors.push(format!(
                "publisher {}: {what}; it sends nothing more",
                self.id
            ));
        }
        self.alive = false;
    }
}

/// What the pacer did.
pub struct PacerReport {
    /// Pacing lag of the messages due in the measured window.
    pub pacing_lag: Histogram<u64>,
    /// Messages due in the measured window that were handed to a socket.
    pub sent_in_window: u64,
    /// The same, per second of the window.
    pub sent_per_window: Vec<u64>,
    /// Largest pacing lag (ns) per second of the window.
    pub max_lag_per_window: Vec<u64>,
    /// Messages sent in total (warm-up included).
    pub sent_total: u64,
    /// Bytes still unsent when the pacer gave up draining (0 when everything went out).
    pub unsent_bytes: usize,
    /// Where and how the pacer ran ("own thread, SCHED_FIFO 1", the receiver's loop, ...).
    pub priority: String,
    pub errors: Vec<String>,
}

/// Where a pacer that no host took ran: nowhere.
const NEVER_RAN: &str = "never ran";

impl PacerReport {
    fn new(windows: usize) -> Self {
        Self {
            pacing_lag: stats::pacing_histogram(),
            sent_in_window: 0,
            sent_per_window: vec![0; windows],
            max_lag_per_window: vec![0; windows],
            sent_total: 0,
            unsent_bytes: 0,
            priority: NEVER_RAN.to_string(),
            errors: Vec::new(),
        }
    }

    /// The report of a pacer that never ran (its thread ended before the run started).
    pub fn absent(windows: usize) -> Self {
        let mut report = Self::new(windows);
        report
            .errors
            .push("pacer: it never ran (its thread ended before the run started)".into());
        report
    }
}

/// What the pacer's host should do next ([`Pacer::next_step`]).
pub enum NextStep {
    /// Every message was sent.
    Done,
    /// The next message is due within the spin margin: [`Pacer::spin_and_send`].
    SpinAndSend,
    /// Sleep (or wait for I/O) until this CLOCK_MONOTONIC ns, the margin before the deadline.
    WakeAt(u64),
}

/// The schedule of every publisher and what has been sent of it: the part of the pacer that
/// does not depend on how it waits (its own thread, [`run_pacer`], or a receiver's ring loop).
pub struct Pacer {
    pubs: Vec<PublisherConn>,
    timeline: Timeline,
    end_seq: Vec<u64>,
    next_seq: Vec<u64>,
    /// The earliest intended send time still to come, `u64::MAX` when nothing is left.
    next_due_ns: u64,
    next_pub: usize,
    spin: SpinMargin,
    spin_cap_ns: u64,
    filler: Bytes,
    crlf: Bytes,
    report: PacerReport,
}

impl Pacer {
    /// `spin_share`: the largest share of its CPU the pacer may spend busy-waiting before
    /// deadlines (1.0 when it has a CPU of its own). A timed wake-up alone is late by its
    /// wake-up latency (about 100 us on a VM), which would enter every latency; spinning the
    /// whole margin at every message would take the CPU from the receivers sharing it. So the
    /// margin is capped at `spin_share / total rate`: the full adaptive margin at the rates of
    /// the default workloads, a few microseconds at tens of thousands of messages per second.
    pub fn new(
        pubs: Vec<PublisherConn>,
        timeline: &Timeline,
        payload_bytes: usize,
        spin_share: f64,
    ) -> Self {
        let schedules: &[Schedule] = &timeline.schedules;
        let end_seq: Vec<u64> = schedules
            .iter()
            .map(|s| s.first_seq_at_or_after(timeline.window_end_ns))
            .collect();
        let total_rate: f64 = schedules.iter().map(Schedule::rate).sum();
        let spin_cap_ns = if total_rate > 0.0 {
            (spin_share * 1e9 / total_rate) as u64
        } else {
            u64::MAX
        };
        let mut pacer = Self {
            next_seq: vec![0; pubs.len()],
            pubs,
            timeline: timeline.clone(),
            end_seq,
            next_due_ns: u64::MAX,
            next_pub: 0,
            spin: SpinMargin::new(),
            spin_cap_ns,
            filler: Bytes::from(payload::filler(payload_bytes)),
            crlf: Bytes::from_static(b"\r\n"),
            report: PacerReport::new(timeline.windows()),
        };
        pacer.find_next();
        pacer
    }

    fn find_next(&mut self) {
        let schedules = &self.timeline.schedules;
        let next = (0..self.pubs.len())
            .filter(|&k| self.pubs[k].alive && self.next_seq[k] < self.end_seq[k])
            .min_by_key(|&k| schedules[k].intended_ns(self.next_seq[k]));
        match next {
            Some(k) => {
                self.next_pub = k;
                self.next_due_ns = schedules[k].intended_ns(self.next_seq[k]);
            }
            None => self.next_due_ns = u64::MAX,
        }
    }

    /// Makes the calling thread the pacer's (1 ns timer slack, SCHED_FIFO where permitted) and
    /// records where it runs (`host`) and how it is scheduled.
    pub fn claim_thread(&mut self, host: &str) {
        if let Err(e) = os::set_timer_slack_ns(1) {
            self.report.errors.push(format!(
                "pacer: {e:#} (timed wake-ups may be up to 50 us late)"
            ));
        }
        self.report.priority = match os::set_realtime_priority() {
            Ok(()) => format!("{host}, SCHED_FIFO 1"),
            Err(e) => format!("{host}, SCHED_OTHER ({e:#})"),
        };
    }

    /// The earliest intended send time still to come (`u64::MAX`: every message was sent).
    pub fn next_due_ns(&self) -> u64 {
        self.next_due_ns
    }

    /// Whether to busy-wait for the next message or sleep until the margin before it.
    pub fn next_step(&self, now_ns: u64) -> NextStep {
        if self.next_due_ns == u64::MAX {
            return NextStep::Done;
        }
        let margin = self.spin.margin_ns().min(self.spin_cap_ns);
        if self.next_due_ns > now_ns + margin {
            NextStep::WakeAt(self.next_due_ns - margin)
        } else {
            NextStep::SpinAndSend
        }
    }

    /// Records how late a timed wake-up asked for `asked_ns` was.
    pub fn observe_wake(&mut self, asked_ns: u64, woke_ns: u64) {
        self.spin.observe(asked_ns, woke_ns);
    }

    /// Sends every message due at or before `now_ns` (each stamped with the time it is
    /// handed to its socket).
    pub fn send_due(&mut self, now_ns: u64) {
        while self.next_due_ns <= now_ns {
            self.send_next();
        }
    }

    /// Busy-waits until the next deadline, then sends what is due.
    pub fn spin_and_send(&mut self) {
        while os::now_ns() < self.next_due_ns {
            std::hint::spin_loop();
        }
        self.send_due(os::now_ns());
    }

    fn send_next(&mut self) {
        let k = self.next_pub;
        let seq = self.next_seq[k];
        let due = self.next_due_ns;
        let actual = os::now_ns();
        let header = Header {
            publisher: self.pubs[k].id,
            seq,
            intended_ns: due,
            actual_ns: actual,
        };
        let conn = &mut self.pubs[k];
        let mut head = BytesMut::with_capacity(conn.pub_line.len() + payload::HEADER_LEN);
        head.extend_from_slice(&conn.pub_line);
        head.extend_from_slice(&header.encode());
        conn.queue(head.freeze());
        conn.queue(self.filler.clone());
        conn.queue(self.crlf.clone());
        conn.flush(&mut self.report.errors);
        self.next_seq[k] += 1;
        let report = &mut self.report;
        report.sent_total += 1;
        if let Some(window) = self.timeline.window_index(due) {
            report.pacing_lag.saturating_record(actual - due);
            report.sent_in_window += 1;
            report.sent_per_window[window] += 1;
            let lag = &mut report.max_lag_per_window[window];
            *lag = (*lag).max(actual - due);
        }
        self.find_next();
    }

    /// How many publishers there are (alive or not).
    pub fn publishers(&self) -> usize {
        self.pubs.len()
    }

    /// Publisher `k`'s socket, for a caller that waits on it itself.
    pub fn fd(&self, k: usize) -> i32 {
        self.pubs[k].stream.as_raw_fd()
    }

    /// Whether publisher `k` has bytes the kernel has not taken yet.
    pub fn has_backlog(&self, k: usize) -> bool {
        self.pubs
            .get(k)
            .is_some_and(|p| p.alive && !p.backlog.is_empty())
    }

    /// Whether publisher `k` can still send.
    pub fn is_alive(&self, k: usize) -> bool {
        self.pubs.get(k).is_some_and(|p| p.alive)
    }

    /// Publisher `k`'s socket is readable (or failed): reads and answers what the server sent.
    pub fn on_readable(&mut self, k: usize) {
        if let Some(p) = self.pubs.get_mut(k) {
            p.service_reads(&mut self.report.errors);
        }
        self.find_next();
    }

    /// Publisher `k`'s socket is writable: sends what of its backlog the kernel takes.
    pub fn on_writable(&mut self, k: usize) {
        if let Some(p) = self.pubs.get_mut(k) {
            p.flush(&mut self.report.errors);
        }
        self.find_next();
    }

    /// Bytes not yet taken by the kernel, over every live publisher.
    pub fn backlog_bytes(&self) -> usize {
        self.pubs
            .iter()
            .filter(|p| p.alive)
            .map(|p| p.backlog_bytes)
            .sum()
    }

    /// The report, with what could not be sent.
    pub fn finish(mut self) -> PacerReport {
        self.report.unsent_bytes = self.pubs.iter().map(|p| p.backlog_bytes).sum();
        if self.report.unsent_bytes > 0 {
            self.report.errors.push(format!(
                "pacer: {} bytes were still queued when draining stopped",
                self.report.unsent_bytes
            ));
        }
        self.report
    }
}

/// Sets up the calling thread for pacing (1 ns timer slack, SCHED_FIFO where permitted) and
/// runs the schedule on it: sends every message due before the end of the measured window,
/// then drains the backlogs until `drain_deadline_ns`.
pub fn run_pacer(
    pubs: Vec<PublisherConn>,
    timeline: &Timeline,
    payload_bytes: usize,
    drain_deadline_ns: u64,
    spin_share: f64,
) -> PacerReport {
    let mut pacer = Pacer::new(pubs, timeline, payload_bytes, spin_share);
    pacer.claim_thread("own thread");
    loop {
        let now = os::now_ns();
        match pacer.next_step(now) {
            NextStep::Done => break,
            NextStep::SpinAndSend => pacer.spin_and_send(),
            NextStep::WakeAt(wake) => {
                if !poll_io(&mut pacer, wake - now) {
                    pacer.observe_wake(wake, os::now_ns());
                }
            }
        }
    }
    while os::now_ns() < drain_deadline_ns && pacer.backlog_bytes() > 0 {
        poll_io(
            &mut pacer,
            drain_deadline_ns
                .saturating_sub(os::now_ns())
                .min(10_000_000),
        );
    }
    pacer.finish()
}

/// Waits up to `timeout_ns` for any publisher socket to become readable (or writable, for
/// those with a backlog) and services it. Returns whether a socket (rather than the timeout)
/// ended the wait.
fn poll_io(pacer: &mut Pacer, timeout_ns: u64) -> bool {
    let mut fds: Vec<libc::pollfd> = (0..pacer.pubs.len())
        .map(|k| libc::pollfd {
            fd: if pacer.is_alive(k) { pacer.fd(k) } else { -1 },
            events: libc::POLLIN
                | if pacer.has_backlog(k) {
                    libc::POLLOUT
                } else {
                    0
                },
            revents: 0,
        })
        .collect();
    let timeout = libc::timespec {
        tv_sec: (timeout_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (timeout_ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: `fds` is a valid array of `fds.len()` pollfds that outlives the call; `timeout` is
    // a valid timespec; a null signal mask leaves the mask unchanged. Negative fds are ignored.
    let ready = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            &timeout,
            std::ptr::null(),
        )
    };
    if ready <= 0 {
        return false;
    }
    for (k, fd) in fds.iter().enumerate() {
        if fd.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0 {
            pacer.on_readable(k);
        }
        if fd.revents & libc::POLLOUT != 0 {
            pacer.on_writable(k);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_margin_tracks_twice_the_average_wake_up_lateness_within_bounds() {
        let mut m = SpinMargin::new();
        for _ in 0..200 {
            m.observe(1_000_000, 1_000_000 + 8_000);
        }
        assert!(
            (15_000..=17_000).contains(&m.margin_ns()),
            "{}",
            m.margin_ns()
        );
        for _ in 0..200 {
            m.observe(1_000_000, 1_000_000);
        }
        assert_eq!(m.margin_ns(), MIN_SPIN_NS);
        for _ in 0..200 {
            m.observe(1_000_000, 50_000_000);
        }
        assert_eq!(m.margin_ns(), MAX_SPIN_NS);
    }
}
