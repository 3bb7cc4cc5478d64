//! Dropping an accept future never leaks a descriptor. This binary holds a single test so
//! that the process-wide descriptor count is not disturbed by other tests.

use std::io::Read;
use std::net::TcpStream as StdStream;
use std::pin::pin;
use std::time::Duration;

use fanbench_rt::{Listener, Runtime};
use fanbench_rt_compio::{CompioConfig, CompioRuntime};
use fanbench_rt_testsuite::support::{loopback_listener, open_fds, with_watchdog, PollOnce, HANG};

#[test]
fn dropping_an_accept_future_closes_what_it_accepted_and_leaks_no_fd() {
    with_watchdog("accept_drop", || {
        let mut rt = CompioRuntime::new(CompioConfig::default()).expect("io_uring works");
        let baseline = open_fds();
        rt.block_on(async {
            let (mut listener, addr) = loopback_listener::<CompioRuntime>();

            // 1. Dropped while nothing is pending: the op is cancelled.
            {
                let mut accept = pin!(listener.accept());
                assert!(PollOnce(accept.as_mut()).await.is_pending());
            }
            CompioRuntime::sleep(Duration::from_millis(20)).await;

            // 2. Dropped after the kernel accepted a connection into the op but before the
            //    future saw it: the accepted descriptor must be closed, which the client
            //    observes as end of stream.
            let mut client = {
                let mut accept = pin!(listener.accept());
                assert!(PollOnce(accept.as_mut()).await.is_pending());
                let client = StdStream::connect(addr).expect("connect");
                // Run the driver (not the accept future) so the ACCEPT completes.
                CompioRuntime::sleep(Duration::from_millis(50)).await;
                client
            };
            CompioRuntime::sleep(Duration::from_millis(20)).await;
            client.set_read_timeout(Some(HANG)).expect("timeout");
            let mut buf = [0u8; 8];
            match client.read(&mut buf) {
                Ok(0) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
                // Case 1's cancellation may have raced: then the connection is still in
                // the backlog and the next accept gets it.
                other => panic!("client was neither closed nor reset: {other:?}"),
            }
            drop(client);
            drop(listener);
            CompioRuntime::sleep(Duration::from_millis(20)).await;
        });
        assert_eq!(open_fds(), baseline, "descriptors leaked");
    });
}
