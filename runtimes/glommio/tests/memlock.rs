//! Alone in its binary: it lowers the process's RLIMIT_MEMLOCK.

use fanbench_rt_glommio::{GlommioConfig, GlommioRuntime};

#[test]
fn memlock_limit_below_glommio_minimum_is_a_clean_error() {
    let limit = libc::rlimit {
        rlim_cur: 64 * 1024,
        rlim_max: libc::RLIM_INFINITY,
    };
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: both pointers are to valid rlimit values owned by this frame.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut old), 0);
        let limit = libc::rlimit {
            rlim_max: old.rlim_max,
            ..limit
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit), 0);
    }
    let result = GlommioRuntime::new(GlommioConfig::default());
    // SAFETY: as above.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &old) };
    let err = result
        .err()
        .expect("glommio must refuse a 64 KiB memlock limit");
    let msg = err.to_string().to_lowercase();
    assert!(
        msg.contains("memlock"),
        "error does not name the cause: {msg}"
    );
}
