//! Alone in its binary: it counts the process's open descriptors, so both rows run in one
//! test, one after the other.

use fanbench_rt_monoio::{MonoioConfig, MonoioEpollRuntime, MonoioRuntime, MonoioUringRuntime};
use fanbench_rt_testsuite::suite;

#[test]
fn dropped_accept_loses_no_connection_and_leaks_no_fd_on_both_drivers() {
    suite::dropped_accept_loses_no_connection_and_leaks_no_fd::<MonoioUringRuntime>(|| {
        MonoioRuntime::new(MonoioConfig::default()).expect("monoio io_uring runtime")
    });
    suite::dropped_accept_loses_no_connection_and_leaks_no_fd::<MonoioEpollRuntime>(|| {
        MonoioRuntime::new(MonoioConfig::default()).expect("monoio epoll runtime")
    });
}
