//! The two uring rows differ in one setting only: `uring` holds send completions for a
//! coalescing window (`--uring-coalesce-us`, default 1000 µs), `uring-nocoalesce` runs with the
//! window off. A results chart comparing them is only honest if the server really ran with the
//! setting its row name claims, so this checks the counters each row writes with `--stats-out`.

mod common;

use common::{Raw, Server};
use serde_json::Value;

/// Serve `runtime`, deliver `messages` to three subscribers, shut down with SIGTERM and return
/// the merged uring counters from `--stats-out`.
fn counters_after_traffic(runtime: &str, extra: &[&str], messages: usize) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let stats = dir.path().join("stats.json");
    let stats_arg = stats.to_str().expect("utf-8 temp path");
    let mut args = vec!["--stats-out", stats_arg];
    args.extend_from_slice(extra);
    let server = Server::start(runtime, &args);

    let mut subs: Vec<Raw> = (0..3)
        .map(|i| {
            let mut sub = Raw::connect(server.addr);
            sub.send(format!("CONNECT {{\"verbose\":false}}\r\nSUB rows.x {i}\r\n").as_bytes());
            sub.sync();
            sub
        })
        .collect();
    let mut publisher = Raw::connect(server.addr);
    publisher.send(b"CONNECT {\"verbose\":false}\r\n");
    for n in 0..messages {
        let payload = format!("m{n:05}");
        publisher.send(format!("PUB rows.x {}\r\n{payload}\r\n", payload.len()).as_bytes());
    }
    publisher.sync();
    for (i, sub) in subs.iter_mut().enumerate() {
        for n in 0..messages {
            assert_eq!(sub.line(), format!("MSG rows.x {i} 6"));
            assert_eq!(sub.bytes(8), format!("m{n:05}\r\n").into_bytes());
        }
    }

    let status = server.terminate();
    assert!(status.success(), "{runtime} exited with {status}");
    let text = std::fs::read_to_string(&stats).expect("--stats-out written at shutdown");
    let doc: Value = serde_json::from_str(&text).expect("--stats-out is JSON");
    assert_eq!(doc["runtime"], runtime);
    doc["counters"][0].clone()
}

#[test]
fn uring_row_coalesces_sends_with_its_default_window() {
    let counters = counters_after_traffic("uring", &[], 200);
    assert_eq!(counters["coalesce_us"], 1000, "{counters}");
    assert!(
        counters["completions_held"]
            .as_u64()
            .expect("completions_held")
            > 0,
        "sends were delivered but no completion was held: {counters}"
    );
}

#[test]
fn uring_nocoalesce_row_runs_with_coalescing_off_whatever_the_flag_says() {
    // The row name is the setting: even an explicit window does not turn it back on.
    let counters = counters_after_traffic("uring-nocoalesce", &["--uring-coalesce-us", "500"], 200);
    assert_eq!(counters["coalesce_us"], 0, "{counters}");
    assert_eq!(counters["completions_held"], 0, "{counters}");
    assert_eq!(counters["hold_windows"], 0, "{counters}");
}

#[test]
fn uring_coalesce_flag_sets_the_window() {
    let counters = counters_after_traffic("uring", &["--uring-coalesce-us", "0"], 50);
    assert_eq!(counters["coalesce_us"], 0, "{counters}");
    assert_eq!(counters["completions_held"], 0, "{counters}");
}
