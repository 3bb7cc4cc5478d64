//! Alone in its binary: it lowers the process's RLIMIT_NOFILE.

use fanbench_rt_monoio::{MonoioConfig, MonoioRuntime, MonoioUringRuntime};

/// The lowest free descriptor number: every number below it is in use.
fn lowest_free_fd() -> u64 {
    use std::os::fd::AsRawFd;
    let probe = std::fs::File::open("/dev/null").expect("open /dev/null");
    probe.as_raw_fd() as u64
}

#[test]
fn uring_runtime_without_a_free_descriptor_is_a_clean_error() {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `old` is a valid rlimit owned by this frame.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut old) }, 0);
    // Every allowed descriptor number is taken: io_uring_setup fails with EMFILE.
    let limit = libc::rlimit {
        rlim_cur: lowest_free_fd(),
        rlim_max: old.rlim_max,
    };
    // SAFETY: `limit` is a valid rlimit owned by this frame.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    let result = MonoioUringRuntime::new(MonoioConfig::default());
    // SAFETY: as above.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &old) };
    let err = result
        .err()
        .expect("no free descriptor: the ring cannot be made");
    let msg = err.to_string();
    assert!(
        msg.contains("io_uring"),
        "error does not name the driver: {msg}"
    );
    assert!(
        msg.contains("os error 24"),
        "error does not carry EMFILE: {msg}"
    );
    let _ = MonoioRuntime::<fanbench_rt_monoio::Uring>::new(MonoioConfig::default())
        .expect("runtime builds again once descriptors are available");
}
