//! The shared trait-level suite (`fanbench-rt-testsuite`), run on the glommio row.

use fanbench_rt::Runtime;
use fanbench_rt_glommio::{GlommioConfig, GlommioRuntime};
use fanbench_rt_testsuite::{basic, suite};

fn glommio() -> GlommioRuntime {
    GlommioRuntime::new(GlommioConfig::default()).expect("glommio runtime")
}

#[test]
fn echo_round_trip_returns_every_byte_in_order() {
    suite::echo_round_trip_returns_every_byte_in_order(glommio);
}

#[test]
fn read_appends_after_initialised_bytes() {
    suite::read_appends_after_initialised_bytes(glommio);
}

#[test]
fn writev_sends_buffers_in_order() {
    suite::writev_sends_buffers_in_order(glommio);
}

#[test]
fn writev_all_delivers_many_buffers_in_order() {
    suite::writev_all_delivers_many_buffers_in_order(glommio);
}

#[test]
fn shutdown_wakes_pending_read_with_eof() {
    suite::shutdown_wakes_pending_read_with_eof(glommio);
}

#[test]
fn wake_from_std_thread_runs_task() {
    suite::wake_from_std_thread_runs_task(glommio);
}

#[test]
fn wake_from_other_runtime_thread_runs_task() {
    suite::wake_from_other_runtime_thread_runs_task(glommio);
}

#[test]
fn sleep_never_completes_early() {
    basic::sleep_never_completes_early(glommio);
}

#[test]
fn pinned_executor_runs_on_its_cpu() {
    let mut rt = GlommioRuntime::new(GlommioConfig { cpu: Some(0) }).expect("pinned runtime");
    let cpu = rt.block_on(async {
        // SAFETY: sched_getcpu has no preconditions.
        unsafe { libc::sched_getcpu() }
    });
    assert_eq!(cpu, 0, "executor pinned to CPU 0 ran on CPU {cpu}");
}

#[test]
fn nonexistent_cpu_is_a_clean_error() {
    let err = GlommioRuntime::new(GlommioConfig { cpu: Some(4095) })
        .err()
        .expect("CPU 4095 does not exist on this machine");
    let msg = err.to_string();
    assert!(msg.contains("glommio"), "error lacks context: {msg}");
    assert!(msg.contains("4095"), "error does not name the CPU: {msg}");
}
