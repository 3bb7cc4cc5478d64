//! The shared broker state and the accept loop.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use fanbench_protocol::{encode, ServerInfo};
use fanbench_rt::{Listener, Runtime, Stream};
use futures_util::future::{select, Either};
use parking_lot::Mutex;

use crate::client::{ClientShared, ReaderTask, TaskHold, WriterTask};
use crate::coalesce::Window;
use crate::config::BrokerConfig;
use crate::outbound::CloseReason;
use crate::shutdown::Shutdown;
use crate::spawn::Spawner;
use crate::sublist::Sublist;

/// The version the broker announces in INFO. Clients gate features (headers, no-responders)
/// on the server's protocol level, so it announces the nats-server release whose client
/// protocol it implements; `server_name` says what it really is.
pub const ANNOUNCED_VERSION: &str = "2.10.0";

/// State shared by every connection on every runtime thread.
pub struct Broker {
    config: BrokerConfig,
    sublist: Sublist,
    clients: Mutex<HashMap<u64, Arc<ClientShared>>>,
    next_client_id: AtomicU64,
    server_id: String,
    shutdown: Shutdown,
    window: Window,
}

impl Broker {
    /// A broker with no connections, stopped by `shutdown`.
    pub fn new(config: BrokerConfig, shutdown: Shutdown) -> Arc<Self> {
        let server_id = format!("FANBENCH{:016X}", std::process::id() as u64 ^ nanos_now());
        Arc::new(Broker {
            window: Window::new(config.coalesce),
            config,
            sublist: Sublist::new(),
            clients: Mutex::new(HashMap::new()),
            next_client_id: AtomicU64::new(1),
            server_id,
            shutdown,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// The batching window shared by every connection's writer.
    pub fn window(&self) -> &Window {
        &self.window
    }

    /// The subscription list.
    pub fn sublist(&self) -> &Sublist {
        &self.sublist
    }

    /// The shutdown signal.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Live connections.
    pub fn connections(&self) -> usize {
        self.clients.lock().len()
    }

    pub(crate) fn unregister(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    /// Register a new connection, or refuse it when at max connections.
    fn register(&self) -> Option<Arc<ClientShared>> {
        let mut clients = self.clients.lock();
        if clients.len() >= self.config.max_connections {
            return None;
        }
        let id = self.next_client_id.fetch_add(1, Ordering::Relaxed);
        let client = ClientShared::new(id, self.config.max_pending);
        clients.insert(id, client.clone());
        Some(client)
    }

    fn info(&self, client_id: u64, local: SocketAddr, peer: SocketAddr) -> ServerInfo {
        ServerInfo {
            server_id: self.server_id.clone(),
            server_name: self.config.server_name.clone(),
            version: ANNOUNCED_VERSION.to_string(),
            proto: 1,
            go: concat!("fanbench ", env!("CARGO_PKG_VERSION")).to_string(),
            host: local.ip().to_string(),
            port: local.port(),
            headers: true,
            max_payload: self.config.limits.max_payload,
            client_id,
            client_ip: Some(peer.ip().to_string()),
            ..ServerInfo::default()
        }
    }

    /// Ask every connection to flush and close.
    fn close_all(&self) {
        let clients: Vec<_> = self.clients.lock().values().cloned().collect();
        for c in clients {
            c.outbound.close(CloseReason::ServerShutdown, None);
        }
    }
}

fn nanos_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Accept connections until the shutdown signal fires, then close every connection this
/// broker serves (flushing what is queued) and wait up to the shutdown grace for them.
///
/// Accept errors never end the loop: aborted connections are skipped; running out of
/// descriptors or memory (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) backs off, doubling from
/// 5 ms to 1 s, as nats-server does, and keeps accepting.
pub async fn serve<R, S>(
    mut listener: R::Listener,
    broker: Arc<Broker>,
    spawner: S,
) -> io::Result<()>
where
    R: Runtime,
    S: Spawner<R>,
{
    let local = listener.local_addr()?;
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = {
            let accept = pin!(listener.accept());
            let stop = pin!(broker.shutdown.wait());
            match select(accept, stop).await {
                Either::Left((res, _)) => res,
                Either::Right(((), _)) => break,
            }
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::ZERO;
                start_connection::<R, S>(&broker, &spawner, stream, local, peer);
            }
            Err(err) if is_resource_exhaustion(&err) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                R::sleep(backoff).await;
            }
            Err(_) => {}
        }
    }
    drop(listener);
    broker.close_all();
    let deadline = Instant::now() + broker.config.shutdown_grace;
    while broker.connections() > 0 && Instant::now() < deadline {
        R::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

fn is_resource_exhaustion(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

fn start_connection<R: Runtime, S: Spawner<R>>(
    broker: &Arc<Broker>,
    spawner: &S,
    stream: R::Stream,
    local: SocketAddr,
    peer: SocketAddr,
) {
    // Latency is the product: never let Nagle hold a small MSG back.
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let (client, refused) = match broker.register() {
        Some(client) => (client, false),
        // Never registered, so it does not count; its id is only for INFO.
        None => (
            ClientShared::new(
                broker.next_client_id.fetch_add(1, Ordering::Relaxed),
                broker.config.max_pending,
            ),
            true,
        ),
    };
    let info = broker.info(client.id, local, peer);
    client
        .outbound
        .push_text(|out: &mut BytesMut| encode::info(out, &info));
    if refused {
        // As nats-server: INFO, then the -ERR, then close. The writer sends both and shuts the
        // socket down; the reader sees the close.
        client.outbound.close(
            CloseReason::ProtocolError,
            Some("maximum connections exceeded"),
        );
    }
    spawn_pair::<R, S>(broker, spawner, client, read, write);
}

fn spawn_pair<R: Runtime, S: Spawner<R>>(
    broker: &Arc<Broker>,
    spawner: &S,
    client: Arc<ClientShared>,
    read: <R::Stream as Stream>::ReadHalf,
    write: <R::Stream as Stream>::WriteHalf,
) {
    let hold = |client| TaskHold {
        broker: broker.clone(),
        client,
    };
    spawner.spawn_writer(WriterTask::<R> {
        hold: hold(client.clone()),
        write,
    });
    spawner.spawn_reader(ReaderTask::<R> {
        hold: hold(client),
        read,
    });
}
