//! Dropping an accept future never leaks a descriptor. This binary holds a single test so
//! that the process-wide descriptor count is not disturbed by other tests.

use std::io::Read;
use std::net::TcpStream as StdStream;
use std::pin::pin;

use fanbench_rt::{Listener, Runtime};
use fanbench_rt_testsuite::support::{loopback_listener, open_fds, with_watchdog, PollOnce, HANG};
use fanbench_rt_threads::ThreadsRuntime;

#[test]
fn dropping_an_accept_future_leaks_no_fd_and_loses_no_connection() {
    with_watchdog("accept_drop", || {
        let baseline = open_fds();
        ThreadsRuntime::new().block_on(async {
            let (mut listener, addr) = loopback_listener::<ThreadsRuntime>();

            // Dropped after a poll that found nothing: no connection is taken.
            {
                let mut accept = pin!(listener.accept());
                assert!(PollOnce(accept.as_mut()).await.is_pending());
            }
            // A connection made now is still in the backlog for the next accept.
            let mut client = StdStream::connect(addr).expect("connect");
            let (stream, _) = listener.accept().await.expect("accept");
            drop(stream);
            client.set_read_timeout(Some(HANG)).expect("timeout");
            let mut buf = [0u8; 8];
            assert_eq!(
                client.read(&mut buf).expect("read"),
                0,
                "server side closed"
            );
        });
        assert_eq!(open_fds(), baseline, "descriptors leaked");
    });
}
