//! Alone in its binary: it counts the process's open descriptors.

use fanbench_rt_glommio::{GlommioConfig, GlommioRuntime};
use fanbench_rt_testsuite::suite;

#[test]
fn dropped_accept_loses_no_connection_and_leaks_no_fd() {
    suite::dropped_accept_loses_no_connection_and_leaks_no_fd(|| {
        GlommioRuntime::new(GlommioConfig::default()).expect("glommio runtime")
    });
}
