//! The pacer: one thread that sends every publisher's messages on schedule.
//!
//! # Design
//!
//! One thread serves all publishers (each on its own connection and subject). Their schedules
//! are staggered over one period (see [`Schedule::staggered`]) so their deadlines rarely meet.
//! Waiting for the next deadline is `ppoll` on the publisher sockets (so server `PING`s and
//! `-ERR`s are handled and blocked writes resume while waiting) with a timeout that ends a
//! margin before the deadline; the rest is a busy-wait on CLOCK_MONOTONIC. The margin adapts to
//! how late wake-ups have been (twice their moving average, between [`MIN_SPIN_NS`] and
//! [`MAX_SPIN_NS`]), so a quiet machine spins a few microseconds per message and a noisy one
//! spins longer rather than sending late. The thread's
//! timer slack is 1 ns and, where allowed, it runs SCHED_FIFO so that a wake-up preempts the
//! subscriber threads that may share its CPU.
//!
//! Sockets are non-blocking. When the kernel will not take a whole message (the server stopped
//! reading), the rest is kept in that publisher's backlog and sent as the socket drains; later
//! messages queue behind it, so nothing waits: the schedule of every publisher keeps running.
//! A message's actual send time is when it was handed to the socket or appended to the backlog.
//!
//! A message that falls due while the thread is late is sent at once (never skipped, never
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
    /// How the thread was scheduled ("SCHED_FIFO 1" or why it was not).
    pub priority: String,
    pub errors: Vec<String>,
}

/// Runs the schedule: sends every message due before the end of the measured window, then
/// drains the backlogs until `drain_deadline_ns`.
///
/// `spin_share`: the largest share of its CPU the pacer may spend busy-waiting before
/// deadlines (1.0 when it has a CPU of its own). A timed wake-up alone is late by its
/// wake-up latency (about 100 us on a VM), which would enter every latency; spinning the
/// whole margin at every message would take the CPU from the receivers sharing it. So the
/// margin is capped at `spin_share / total rate`: the full adaptive margin at the rates of the
/// default workloads, a few microseconds at tens of thousands of messages per second.
pub fn run_pacer(
    mut pubs: Vec<PublisherConn>,
    timeline: &Timeline,
    payload_bytes: usize,
    drain_deadline_ns: u64,
    spin_share: f64,
) -> PacerReport {
    let mut errors = Vec::new();
    if let Err(e) = os::set_timer_slack_ns(1) {
        errors.push(format!(
            "pacer: {e:#} (timed wake-ups may be up to 50 us late)"
        ));
    }
    let priority = match os::set_realtime_priority() {
        Ok(()) => "SCHED_FIFO 1".to_string(),
        Err(e) => format!("SCHED_OTHER ({e:#})"),
    };
    let filler = Bytes::from(payload::filler(payload_bytes));
    let crlf = Bytes::from_static(b"\r\n");
    let schedules: &[Schedule] = &timeline.schedules;
    let end_seq: Vec<u64> = schedules
        .iter()
        .map(|s| s.first_seq_at_or_after(timeline.window_end_ns))
        .collect();
    let mut next_seq = vec![0u64; pubs.len()];
    let mut spin = SpinMargin::new();
    let total_rate: f64 = schedules.iter().map(Schedule::rate).sum();
    let spin_cap_ns = if total_rate > 0.0 {
        (spin_share * 1e9 / total_rate) as u64
    } else {
        u64::MAX
    };
    let mut report = PacerReport {
        pacing_lag: stats::pacing_histogram(),
        sent_in_window: 0,
        sent_per_window: vec![0; timeline.windows()],
        max_lag_per_window: vec![0; timeline.windows()],
        sent_total: 0,
        unsent_bytes: 0,
        priority,
        errors: Vec::new(),
    };

    loop {
        let next = (0..pubs.len())
            .filter(|&k| pubs[k].alive && next_seq[k] < end_seq[k])
            .min_by_key(|&k| schedules[k].intended_ns(next_seq[k]));
        let Some(k) = next else { break };
        let seq = next_seq[k];
        let due = schedules[k].intended_ns(seq);
        let now = os::now_ns();
        let margin = spin.margin_ns().min(spin_cap_ns);
        if due > now + margin {
            let wake = due - margin;
            if !poll_io(&mut pubs, wake - now, &mut errors) {
                spin.observe(wake, os::now_ns());
            }
            continue;
        }
        while os::now_ns() < due {
            std::hint::spin_loop();
        }
        let actual = os::now_ns();
        let header = Header {
            publisher: pubs[k].id,
            seq,
            intended_ns: due,
            actual_ns: actual,
        };
        let conn = &mut pubs[k];
        let mut head = BytesMut::with_capacity(conn.pub_line.len() + payload::HEADER_LEN);
        head.extend_from_slice(&conn.pub_line);
        head.extend_from_slice(&header.encode());
        conn.queue(head.freeze());
        conn.queue(filler.clone());
        conn.queue(crlf.clone());
        conn.flush(&mut errors);
        next_seq[k] += 1;
        report.sent_total += 1;
        if let Some(window) = timeline.window_index(due) {
            report.pacing_lag.saturating_record(actual - due);
            report.sent_in_window += 1;
            report.sent_per_window[window] += 1;
            let lag = &mut report.max_lag_per_window[window];
            *lag = (*lag).max(actual - due);
        }
    }

    while os::now_ns() < drain_deadline_ns && pubs.iter().any(|p| p.alive && p.backlog_bytes > 0) {
        poll_io(
            &mut pubs,
            drain_deadline_ns
                .saturating_sub(os::now_ns())
                .min(10_000_000),
            &mut errors,
        );
    }
    report.unsent_bytes = pubs.iter().map(|p| p.backlog_bytes).sum();
    if report.unsent_bytes > 0 {
        errors.push(format!(
            "pacer: {} bytes were still queued when draining stopped",
            report.unsent_bytes
        ));
    }
    report.errors = errors;
    report
}

/// Waits up to `timeout_ns` for any publisher socket to become readable (or writable, for
/// those with a backlog) and services it. Returns whether a socket (rather than the timeout)
/// ended the wait.
fn poll_io(pubs: &mut [PublisherConn], timeout_ns: u64, errors: &mut Vec<String>) -> bool {
    let mut fds: Vec<libc::pollfd> = pubs
        .iter()
        .map(|p| libc::pollfd {
            fd: if p.alive { p.stream.as_raw_fd() } else { -1 },
            events: libc::POLLIN
                | if p.backlog.is_empty() {
                    0
                } else {
                    libc::POLLOUT
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
    for (conn, fd) in pubs.iter_mut().zip(&fds) {
        if fd.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0 {
            conn.service_reads(errors);
        }
        if fd.revents & libc::POLLOUT != 0 {
            conn.flush(errors);
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
