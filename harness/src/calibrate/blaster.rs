//! The blaster: the cheapest fan-out server that can be written, used only to find the load
//! generator's ceiling (`fanbench calibrate`).
//!
//! One thread, non-blocking sockets, `poll(2)`. It answers `CONNECT`/`SUB`/`PING` like a NATS
//! server and, for every `PUB`, appends a pre-formatted `MSG` frame (its `MSG <subject> <sid> `
//! prefix is built once per subscription) to each subscriber whose subject matches exactly.
//! A subscriber's frames go out in one `send` once `frames_per_send` of them are queued, or
//! when nothing new arrived for [`FLUSH_AFTER_MS`]: `frames_per_send = 1` is one segment per
//! message, the receiver's worst case; 64 packs a segment as a batching server would.
//! No wildcards, no queue groups, no limits beyond [`MAX_QUEUED_BYTES`]: it is not a broker.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use anyhow::{bail, Context, Result};
use bytes::BytesMut;
use fanbench_protocol::{ClientOp, ClientParser, Limits};

/// How long queued frames wait for company before they are sent anyway.
pub const FLUSH_AFTER_MS: i32 = 1;
/// A subscriber with more than this queued has stopped reading: it is disconnected.
const MAX_QUEUED_BYTES: usize = 64 * 1024 * 1024;
const INFO: &[u8] = b"INFO {\"server_id\":\"fanbench-blaster\",\"server_name\":\"fanbench-blaster\",\"version\":\"0.0.0\",\"proto\":1,\"max_payload\":1048576,\"headers\":false}\r\n";

#[derive(clap::Args, Debug)]
pub struct BlasterArgs {
    /// Address to listen on.
    #[arg(long)]
    pub listen: SocketAddr,
    /// MSG frames per send to each subscriber (1: one message per segment).
    #[arg(long, default_value_t = 1)]
    pub frames_per_send: usize,
}

struct Sub {
    subject: Vec<u8>,
    /// `MSG <subject> <sid> `.
    prefix: Vec<u8>,
}

struct Conn {
    stream: TcpStream,
    input: BytesMut,
    parser: ClientParser,
    subs: Vec<Sub>,
    out: Vec<u8>,
    sent: usize,
    queued_frames: usize,
    closed: bool,
}

impl Conn {
    /// Sends what is queued; keeps the rest for when the socket drains.
    fn flush(&mut self) {
        while self.sent < self.out.len() {
            match self.stream.write(&self.out[self.sent..]) {
                Ok(0) => {
                    self.closed = true;
                    return;
                }
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.closed = true;
                    return;
                }
            }
        }
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
        } else if self.out.len() - self.sent > MAX_QUEUED_BYTES {
            self.closed = true;
        }
        self.queued_frames = 0;
    }
}

/// Serves until killed.
pub fn run(args: BlasterArgs) -> Result<()> {
    if args.frames_per_send == 0 {
        bail!("--frames-per-send must be at least 1");
    }
    let listener =
        TcpListener::bind(args.listen).with_context(|| format!("binding {}", args.listen))?;
    listener
        .set_nonblocking(true)
        .context("making the listener non-blocking")?;
    let mut conns: Vec<Conn> = Vec::new();
    let mut fds: Vec<libc::pollfd> = Vec::new();
    let mut scratch = vec![0u8; 256 * 1024];
    loop {
        fds.clear();
        fds.push(libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        let mut any_queued = false;
        for c in &conns {
            let mut events = libc::POLLIN;
            if c.sent < c.out.len() && c.queued_frames == 0 {
                events |= libc::POLLOUT;
            }
            any_queued |= c.queued_frames > 0;
            fds.push(libc::pollfd {
                fd: c.stream.as_raw_fd(),
                events,
                revents: 0,
            });
        }
        let timeout = if any_queued { FLUSH_AFTER_MS } else { 100 };
        // SAFETY: `fds` is a live, correctly sized array of pollfd for the whole call.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if ready < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e).context("poll");
        }
        if ready == 0 {
            for c in conns.iter_mut().filter(|c| c.queued_frames > 0) {
                c.flush();
            }
        }
        if fds[0].revents & libc::POLLIN != 0 {
            accept_all(&listener, &mut conns)?;
        }
        let mut publishes = Vec::new();
        for (i, pfd) in fds.iter().enumerate().skip(1) {
            let Some(c) = conns.get_mut(i - 1) else { break };
            if pfd.revents & libc::POLLOUT != 0 {
                c.flush();
            }
            if pfd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                read_ops(c, &mut scratch, &mut publishes);
            }
        }
        for (subject, payload) in publishes {
            fan_out(&mut conns, &subject, &payload, args.frames_per_send);
        }
        conns.retain(|c| !c.closed);
    }
}

fn accept_all(listener: &TcpListener, conns: &mut Vec<Conn>) -> Result<()> {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream
                    .set_nonblocking(true)
                    .context("non-blocking socket")?;
                stream.set_nodelay(true).context("TCP_NODELAY")?;
                let mut c = Conn {
                    stream,
                    input: BytesMut::with_capacity(64 * 1024),
                    parser: ClientParser::new(Limits::default()),
                    subs: Vec::new(),
                    out: INFO.to_vec(),
                    sent: 0,
                    queued_frames: 0,
                    closed: false,
                };
                c.flush();
                conns.push(c);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A connection that died in the backlog is its client's problem.
            Err(_) => return Ok(()),
        }
    }
}

/// Reads what is there and acts on every complete operation; publishes are returned.
fn read_ops(c: &mut Conn, scratch: &mut [u8], publishes: &mut Vec<(Vec<u8>, Vec<u8>)>) {
    // A publisher's last PUBs may arrive together with its close: parse what was read first.
    loop {
        match c.stream.read(scratch) {
            Ok(0) => {
                c.closed = true;
                break;
            }
            Ok(n) => c.input.extend_from_slice(&scratch[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                c.closed = true;
                break;
            }
        }
    }
    loop {
        match c.parser.next_op(&mut c.input) {
            Ok(Some(ClientOp::Sub { subject, sid, .. })) => {
                let mut prefix = b"MSG ".to_vec();
                prefix.extend_from_slice(&subject);
                prefix.push(b' ');
                prefix.extend_from_slice(&sid);
                prefix.push(b' ');
                c.subs.push(Sub {
                    subject: subject.to_vec(),
                    prefix,
                });
            }
            Ok(Some(ClientOp::Ping)) => {
                c.out.extend_from_slice(b"PONG\r\n");
                c.flush();
            }
            Ok(Some(ClientOp::Pub {
                subject, payload, ..
            })) => publishes.push((subject.to_vec(), payload.to_vec())),
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(_) => {
                c.closed = true;
                return;
            }
        }
    }
}

fn fan_out(conns: &mut [Conn], subject: &[u8], payload: &[u8], frames_per_send: usize) {
    let mut len = itoa_buf(payload.len());
    len.extend_from_slice(b"\r\n");
    for c in conns.iter_mut() {
        for s in c.subs.iter().filter(|s| s.subject == subject) {
            c.out.extend_from_slice(&s.prefix);
            c.out.extend_from_slice(&len);
            c.out.extend_from_slice(payload);
            c.out.extend_from_slice(b"\r\n");
            c.queued_frames += 1;
        }
        if c.queued_frames >= frames_per_send {
            c.flush();
        }
    }
}

fn itoa_buf(n: usize) -> Vec<u8> {
    n.to_string().into_bytes()
}
