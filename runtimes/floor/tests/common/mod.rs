//! A floor server on a thread, and blocking std-socket clients.

#![allow(dead_code)] // each test file uses its own part of the helpers

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use fanbench_floor::{FloorConfig, FloorStats};
use fanbench_protocol::{Limits, ServerOp, ServerParser};

/// A running floor.
pub struct Floor {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<std::io::Result<FloorStats>>,
}

/// Starts a floor with `config`, or returns `None` (after saying why) when io_uring is
/// unavailable here.
pub fn start(config: FloorConfig) -> Option<Floor> {
    if let Err(e) = fanbench_floor::probe() {
        eprintln!("skipping: {e}");
        return None;
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback listener");
    let addr = listener.local_addr().expect("local address");
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = stop.clone();
        std::thread::spawn(move || fanbench_floor::serve(listener, config, stop))
    };
    Some(Floor { addr, stop, thread })
}

impl Floor {
    /// Stops the server and returns its counters.
    pub fn stop(self) -> FloorStats {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .expect("the server thread panicked")
            .expect("the server failed")
    }
}

/// A blocking client.
pub struct Client {
    pub stream: TcpStream,
    buf: BytesMut,
    parser: ServerParser,
}

impl Client {
    /// Connects and reads the INFO.
    pub fn connect(addr: SocketAddr) -> (Client, fanbench_protocol::ServerInfo) {
        Self::connect_with(addr, None)
    }

    /// Connects with `SO_RCVBUF` set before connecting (so the window is small from the start).
    pub fn connect_with(
        addr: SocketAddr,
        rcvbuf: Option<usize>,
    ) -> (Client, fanbench_protocol::ServerInfo) {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        if let Some(size) = rcvbuf {
            socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
        }
        socket.connect(&addr.into()).expect("connecting");
        let stream: TcpStream = socket.into();
        stream.set_nodelay(true).expect("TCP_NODELAY");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("read timeout");
        let mut client = Client {
            stream,
            buf: BytesMut::new(),
            parser: ServerParser::new(Limits {
                max_payload: 64 << 20,
                ..Limits::default()
            }),
        };
        match client.next() {
            Some(ServerOp::Info(info)) => (client, info),
            other => panic!("expected INFO first, got {other:?}"),
        }
    }

    /// Connects, subscribes to `subject` and waits for the PONG that proves it is done.
    pub fn subscriber(addr: SocketAddr, subject: &str, rcvbuf: Option<usize>) -> Client {
        let (mut c, _) = Self::connect_with(addr, rcvbuf);
        c.send(
            format!("CONNECT {{\"verbose\":false,\"echo\":false}}\r\nSUB {subject} 1\r\nPING\r\n")
                .as_bytes(),
        );
        assert_eq!(c.next(), Some(ServerOp::Pong));
        c
    }

    /// Connects as a publisher (CONNECT, PING/PONG).
    pub fn publisher(addr: SocketAddr) -> Client {
        let (mut c, _) = Self::connect(addr);
        c.send(b"CONNECT {\"verbose\":false,\"echo\":false}\r\nPING\r\n");
        assert_eq!(c.next(), Some(ServerOp::Pong));
        c
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("writing to the server");
    }

    pub fn publish(&mut self, subject: &str, payload: &[u8]) {
        let mut frame = format!("PUB {subject} {}\r\n", payload.len()).into_bytes();
        frame.extend_from_slice(payload);
        frame.extend_from_slice(b"\r\n");
        self.send(&frame);
    }

    /// The next operation, or `None` when the server closed the connection.
    pub fn next(&mut self) -> Option<ServerOp> {
        self.next_reading(usize::MAX)
    }

    /// As [`Client::next`], reading at most `chunk` bytes per read.
    pub fn next_reading(&mut self, chunk: usize) -> Option<ServerOp> {
        let mut scratch = vec![0u8; chunk.min(256 * 1024)];
        loop {
            if let Some(op) = self
                .parser
                .next_op(&mut self.buf)
                .expect("server sent garbage")
            {
                return Some(op);
            }
            match self.stream.read(&mut scratch) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&scratch[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("reading from the server: {e}"),
            }
        }
    }

    /// The next `MSG`'s payload; panics on anything else.
    pub fn next_msg(&mut self) -> Bytes {
        match self.next() {
            Some(ServerOp::Msg { payload, .. }) => payload,
            other => panic!("expected MSG, got {other:?}"),
        }
    }
}

/// Message `seq` of `len` bytes: the sequence number, then a pattern derived from it.
pub fn payload(seq: u64, len: usize) -> Vec<u8> {
    let mut p: Vec<u8> = (0..len).map(|i| (seq as usize * 31 + i) as u8).collect();
    let head = seq.to_le_bytes();
    let n = head.len().min(len);
    p[..n].copy_from_slice(&head[..n]);
    p
}
