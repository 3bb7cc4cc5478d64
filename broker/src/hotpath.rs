//! The publish path without sockets, for the micro-cost suite (`fanbench micro`).
//!
//! [`with_fanout`] sets up a broker with one publishing connection and `n` subscribing
//! connections, each subscribed to one subject through the real `SUB` handling; the
//! [`Publisher`] then feeds wire bytes (`PUB ...`) through the same parse-and-handle code the
//! read loop runs after a read: the subject is looked up in the sublist and one frame is
//! queued on every subscriber's [`Outbound`], waking its writer. What a writer does with its
//! queue (take the frames, write them) is the caller's: the micro suite drains the queues
//! with writer tasks on the runtime under test, so the wake-ups are that runtime's.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;

use crate::client::{ClientShared, Connection};
use crate::outbound::{Batch, CloseReason, Outbound};
use crate::{Broker, BrokerConfig, Shutdown};

/// The publishing connection of [`with_fanout`].
pub struct Publisher<'a> {
    conn: Connection<'a>,
    buf: BytesMut,
}

impl Publisher<'_> {
    /// Feed `wire` as if it had just been read from the socket, and handle every complete
    /// operation in it. A protocol error that closes the connection is returned as an error.
    pub fn feed(&mut self, wire: &[u8]) -> Result<(), CloseReason> {
        self.buf.extend_from_slice(wire);
        match self.conn.handle_buffered(&mut self.buf) {
            None => Ok(()),
            Some(reason) => Err(reason),
        }
    }
}

/// What the publishing connection sends first: no `+OK` per PUB (as load generators run).
const QUIET_CONNECT: &[u8] = b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n";

/// Run `body` with a publisher and the outbound queues of `subscribers` connections, each
/// subscribed to `subject` (so one `PUB subject` is fanned out to every queue). The queues are
/// empty when `body` starts.
///
/// Fails if `subject` is not a valid literal subject (its SUBs would be refused).
pub fn with_fanout<T>(
    subscribers: usize,
    subject: &str,
    body: impl FnOnce(&mut Publisher<'_>, &[Arc<Outbound>]) -> T,
) -> Result<T, String> {
    if !fanbench_protocol::subject::is_valid_literal_subject(subject.as_bytes()) {
        return Err(format!("{subject:?} is not a valid literal subject"));
    }
    let config = BrokerConfig::default();
    let max_pending = config.max_pending;
    let broker = Broker::new(config, Shutdown::new());
    let publishing = ClientShared::new(0, max_pending);
    let clients: Vec<Arc<ClientShared>> = (1..=subscribers as u64)
        .map(|id| ClientShared::new(id, max_pending))
        .collect();
    // The subscribing connections must outlive the body: dropping one does not unsubscribe,
    // but keeping them is what a live connection does.
    let mut subscriber_conns = Vec::with_capacity(subscribers);
    for client in &clients {
        let mut conn = Connection::new(&broker, client);
        let mut wire = BytesMut::from(QUIET_CONNECT);
        wire.extend_from_slice(format!("SUB {subject} 1\r\n").as_bytes());
        if let Some(reason) = conn.handle_buffered(&mut wire) {
            return Err(format!("subscribing failed: {reason:?}"));
        }
        subscriber_conns.push(conn);
    }
    let queues: Vec<Arc<Outbound>> = clients.iter().map(|c| c.outbound.clone()).collect();
    for queue in &queues {
        drain(queue);
    }
    let mut publisher = Publisher {
        conn: Connection::new(&broker, &publishing),
        buf: BytesMut::with_capacity(broker.config().read_buffer),
    };
    publisher
        .feed(QUIET_CONNECT)
        .map_err(|reason| format!("CONNECT failed: {reason:?}"))?;
    drain(&publishing.outbound);
    Ok(body(&mut publisher, &queues))
}

/// Take whatever is queued without a task to wake (setup only).
fn drain(queue: &Outbound) {
    let mut cx = Context::from_waker(Waker::noop());
    let mut frames = Vec::new();
    while let Poll::Ready(Batch::Frames) = queue.poll_take(&mut cx, &mut frames) {
        frames.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One PUB reaches every subscriber's queue exactly once, as MSG header + payload.
    #[test]
    fn one_pub_queues_one_msg_on_every_subscriber() {
        let payload = [b'x'; 128];
        let mut wire = b"PUB fan.out 128\r\n".to_vec();
        wire.extend_from_slice(&payload);
        wire.extend_from_slice(b"\r\n");
        let delivered = with_fanout(100, "fan.out", |publisher, queues| {
            publisher.feed(&wire).expect("publish");
            let mut cx = Context::from_waker(Waker::noop());
            let mut got = Vec::new();
            for queue in queues {
                let mut frames = Vec::new();
                assert!(matches!(
                    queue.poll_take(&mut cx, &mut frames),
                    Poll::Ready(Batch::Frames)
                ));
                let bytes: Vec<u8> = frames.iter().flat_map(|b| b.to_vec()).collect();
                got.push(bytes);
            }
            got
        })
        .expect("setup");
        assert_eq!(delivered.len(), 100);
        for bytes in delivered {
            assert!(bytes.starts_with(b"MSG fan.out 1 128\r\n"), "{bytes:?}");
            assert_eq!(bytes.len(), b"MSG fan.out 1 128\r\n".len() + 128 + 2);
            assert!(bytes.ends_with(b"x\r\n"));
        }
    }

    #[test]
    fn a_wildcard_subject_is_refused_with_a_reason() {
        let err = with_fanout(1, "fan.*", |_, _| ()).unwrap_err();
        assert!(err.contains("literal"), "{err}");
    }
}
