//! The shared trait-level suite (`fanbench-rt-testsuite`), run on both monoio rows.

use fanbench_rt::Runtime;
use fanbench_rt_monoio::{MonoioConfig, MonoioEpollRuntime, MonoioRuntime, MonoioUringRuntime};
use fanbench_rt_testsuite::{basic, suite};

fn uring() -> MonoioUringRuntime {
    MonoioRuntime::new(MonoioConfig::default()).expect("monoio io_uring runtime")
}

fn epoll() -> MonoioEpollRuntime {
    MonoioRuntime::new(MonoioConfig::default()).expect("monoio epoll runtime")
}

#[test]
fn uring_echo_round_trip_returns_every_byte_in_order() {
    suite::echo_round_trip_returns_every_byte_in_order(uring);
}

#[test]
fn epoll_echo_round_trip_returns_every_byte_in_order() {
    suite::echo_round_trip_returns_every_byte_in_order(epoll);
}

#[test]
fn uring_read_appends_after_initialised_bytes() {
    suite::read_appends_after_initialised_bytes(uring);
}

#[test]
fn epoll_read_appends_after_initialised_bytes() {
    suite::read_appends_after_initialised_bytes(epoll);
}

#[test]
fn uring_writev_sends_buffers_in_order() {
    suite::writev_sends_buffers_in_order(uring);
}

#[test]
fn epoll_writev_sends_buffers_in_order() {
    suite::writev_sends_buffers_in_order(epoll);
}

#[test]
fn uring_writev_all_delivers_many_buffers_in_order() {
    suite::writev_all_delivers_many_buffers_in_order(uring);
}

#[test]
fn epoll_writev_all_delivers_many_buffers_in_order() {
    suite::writev_all_delivers_many_buffers_in_order(epoll);
}

#[test]
fn uring_shutdown_wakes_pending_read_with_eof() {
    suite::shutdown_wakes_pending_read_with_eof(uring);
}

#[test]
fn epoll_shutdown_wakes_pending_read_with_eof() {
    suite::shutdown_wakes_pending_read_with_eof(epoll);
}

#[test]
fn uring_wake_from_std_thread_runs_task() {
    suite::wake_from_std_thread_runs_task(uring);
}

#[test]
fn epoll_wake_from_std_thread_runs_task() {
    suite::wake_from_std_thread_runs_task(epoll);
}

#[test]
fn uring_wake_from_other_runtime_thread_runs_task() {
    suite::wake_from_other_runtime_thread_runs_task(uring);
}

#[test]
fn epoll_wake_from_other_runtime_thread_runs_task() {
    suite::wake_from_other_runtime_thread_runs_task(epoll);
}

#[test]
fn uring_sleep_never_completes_early() {
    basic::sleep_never_completes_early(uring);
}

#[test]
fn epoll_sleep_never_completes_early() {
    basic::sleep_never_completes_early(epoll);
}

#[test]
fn uring_entries_beyond_kernel_maximum_is_a_clean_error() {
    // io_uring_setup rejects more than 32768 entries (IORING_MAX_ENTRIES) without CLAMP.
    let err = MonoioUringRuntime::new(MonoioConfig {
        entries: Some(1 << 20),
    })
    .err()
    .expect("2^20 ring entries must be refused");
    let msg = err.to_string();
    assert!(
        msg.contains("io_uring"),
        "error does not name the driver: {msg}"
    );
}

#[test]
fn configured_entries_still_run_tasks() {
    let mut rt = MonoioUringRuntime::new(MonoioConfig { entries: Some(256) }).expect("runtime");
    assert_eq!(rt.block_on(async { 6 * 7 }), 42);
}
