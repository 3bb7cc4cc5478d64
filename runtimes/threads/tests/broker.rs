//! The unchanged broker on the threads row, with [`ThreadSpawner`]: a thread per reader and
//! per writer, driven by a raw NATS client over std sockets.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};

use fanbench_broker::{serve, Broker, BrokerConfig, Shutdown};
use fanbench_rt::Runtime;
use fanbench_rt_testsuite::support::{std_loopback_listener, with_watchdog, HANG};
use fanbench_rt_threads::{ThreadSpawner, ThreadsRuntime};

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(HANG)).expect("timeout");
        let writer = stream.try_clone().expect("clone");
        let mut c = Client {
            reader: BufReader::new(stream),
            writer,
        };
        assert!(c.line().starts_with("INFO "), "server greets with INFO");
        c.send("CONNECT {\"verbose\":false,\"pedantic\":false}\r\n");
        c
    }

    fn send(&mut self, s: &str) {
        self.writer.write_all(s.as_bytes()).expect("send");
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.reader.read_line(&mut l).expect("read line");
        l
    }

    /// PING and wait for the PONG: everything sent before has been processed.
    fn flush(&mut self) {
        self.send("PING\r\n");
        assert_eq!(self.line(), "PONG\r\n");
    }
}

#[test]
fn broker_on_threads_delivers_a_publish_and_shuts_down_cleanly() {
    with_watchdog("broker", || {
        let std_listener = std_loopback_listener();
        let addr = std_listener.local_addr().expect("addr");
        let shutdown = Shutdown::new();
        let broker = Broker::new(BrokerConfig::default(), shutdown.clone());
        let server = {
            let broker = broker.clone();
            std::thread::spawn(move || {
                ThreadsRuntime::new().block_on(async move {
                    let listener = ThreadsRuntime::listener_from_std(std_listener)?;
                    serve::<ThreadsRuntime, _>(listener, broker, ThreadSpawner).await
                })
            })
        };

        let mut sub = Client::connect(addr);
        sub.send("SUB greet.* 7\r\n");
        sub.flush();
        let mut publisher = Client::connect(addr);
        for i in 0..100 {
            publisher.send(&format!(
                "PUB greet.x {}\r\nhello{i}\r\n",
                5 + i.to_string().len()
            ));
        }
        publisher.flush();
        for i in 0..100 {
            let body = format!("hello{i}");
            assert_eq!(sub.line(), format!("MSG greet.x 7 {}\r\n", body.len()));
            assert_eq!(sub.line(), format!("{body}\r\n"), "in order, none lost");
        }

        // Shutdown: the accept loop notices (accept yields every 50 ms), every connection is
        // closed, and both threads of each connection end (the readers were blocked in recv).
        shutdown.trigger();
        server
            .join()
            .expect("server thread")
            .expect("serve returns Ok");
        assert_eq!(
            broker.connections(),
            0,
            "every connection's two threads finished"
        );
        assert_eq!(sub.line(), "", "subscriber sees end of stream");
        assert_eq!(publisher.line(), "", "publisher sees end of stream");
    });
}
