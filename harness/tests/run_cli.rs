//! `fanbench run` driven as a user would: the real binary starts a pinned server, runs a short
//! workload and writes a results file whose contract fields are checked here.

mod common;
use common::{fanbench, placement_args};

use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A short workload: 1 publisher x 3 subscribers at 100 msg/s, 1 s window, 2 repetitions.
const SHORT: &[&str] = &[
    "--workload",
    "seed-5x5",
    "--publishers",
    "1",
    "--subscribers",
    "3",
    "--rate",
    "100",
    "--duration",
    "1s",
    "--warmup",
    "200ms",
    "--reps",
    "2",
];

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("results file written");
    serde_json::from_str(&text).expect("results file is JSON")
}

/// Checks the results-file contract fields of a single-result file.
fn assert_contract(json: &Value, runtime: &str, expect_server_metrics: bool) {
    assert_eq!(json["schema_version"], 1);
    assert!(json["run_id"].is_string());
    assert!(json["git"]["commit"].is_string() || json["git"]["null_reason"].is_string());
    assert!(json["host"]["cores"].as_u64().expect("host.cores") >= 1);
    assert!(json["host"]["kernel"].is_string());
    let result = &json["results"][0];
    assert_eq!(result["runtime"], runtime);
    assert_eq!(result["scenario"], "seed-5x5");
    assert_eq!(result["scenario_config"]["subscribers_per_publisher"], 3);
    assert!(result["valid"].is_boolean());
    let reps = result["repetitions"].as_array().expect("repetitions");
    assert_eq!(reps.len(), 2);
    for rep in reps {
        // 100 messages due in the 1 s window, to 3 subscribers each.
        assert_eq!(rep["expected"], 300, "{rep:#}");
        assert!(rep["delivered"].as_u64().expect("delivered") > 0);
        assert!(
            rep["histograms"]["latency"]
                .as_str()
                .expect("histogram")
                .len()
                > 10
        );
        assert!(!rep["windows"].as_array().expect("windows").is_empty());
    }
    let summary = &result["summary"];
    assert!(
        summary["throughput_msgs_per_s"]
            .as_f64()
            .expect("throughput")
            > 0.0
    );
    for key in ["latency_us", "service_latency_us", "pacing_lag_us"] {
        for p in ["p50", "p90", "p99", "p999", "max", "mean"] {
            assert!(summary[key][p].is_number(), "summary.{key}.{p}");
        }
    }
    assert_eq!(summary["expected"], 600);
    for key in [
        "syscalls_per_msg",
        "sqes_per_msg",
        "server_cpu_us_per_msg",
        "server_peak_rss_bytes",
    ] {
        let reason = format!("{key}_null_reason");
        if expect_server_metrics {
            // Measured, or null with the reason (e.g. perf_event_open refused when not root).
            assert!(
                summary[key].is_number() || summary[&reason].is_string(),
                "summary.{key} is neither measured nor explained"
            );
        } else {
            assert!(summary[key].is_null(), "summary.{key} without a pid");
            assert!(summary[&reason].is_string(), "summary.{reason}");
        }
    }
    if expect_server_metrics {
        // CPU and RSS come from /proc and are always readable for our own child.
        assert!(summary["server_cpu_us_per_msg"].as_f64().expect("cpu/msg") > 0.0);
        assert!(summary["server_peak_rss_bytes"].as_u64().expect("rss") > 0);
    }
}

#[test]
fn run_starts_a_pinned_server_measures_it_and_writes_the_contract_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("results.json");
    let status = fanbench()
        .args(["run", "--runtime", "tokio"])
        .args(SHORT)
        .args(placement_args())
        .arg("--out")
        .arg(&out)
        .status()
        .expect("run fanbench");
    assert!(status.success());
    let json = read_json(&out);
    assert_contract(&json, "tokio", true);
    let config = &json["results"][0]["runtime_config"];
    assert_eq!(config["server_cpus"], serde_json::json!([0]));
    assert!(config["command"][1] == "serve");
    // Our server writes its --stats-out counters at shutdown.
    assert!(json["results"][0]["server_stats"].is_object());
    // The server's log sits next to the results.
    assert!(dir.path().join("logs/seed-5x5.tokio.log").exists());
}

/// Runs tokio for one 2 s repetition with `--server-counters MODE` and returns the repetition.
fn run_with_counters(mode: &str) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("results.json");
    let status = fanbench()
        .args(["run", "--runtime", "tokio", "--workload", "seed-5x5"])
        .args(["--rate", "200", "--duration", "2s", "--warmup", "200ms"])
        .args(["--reps", "1", "--server-counters", mode])
        .args(placement_args())
        .arg("--out")
        .arg(&out)
        .status()
        .expect("run fanbench");
    assert!(status.success());
    read_json(&out)["results"][0]["repetitions"][0].clone()
}

#[test]
fn a_split_window_measures_cpu_before_the_tracepoints_and_counts_syscalls_after() {
    let rep = run_with_counters("split");
    let counting = &rep["server"]["counting"];
    assert_eq!(counting["mode"], "split", "{rep:#}");
    assert_eq!(counting["cpu_seconds"], serde_json::json!([0]));
    assert_eq!(counting["cpu_with_tracepoints"], false);
    assert!(rep["server_cpu_us_per_msg"].as_f64().expect("cpu/msg") > 0.0);
    if rep["syscalls_per_msg"].is_null() {
        // Not root, or no tracefs: the reason says which.
        let reason = rep["syscalls_per_msg_null_reason"]
            .as_str()
            .expect("reason");
        return println!("SKIPPED the counted part: {reason}");
    }
    assert_eq!(counting["counted_seconds"], serde_json::json!([1]));
    assert!(rep["syscalls_per_msg"].as_f64().expect("syscalls/msg") > 0.0);
    assert!(
        counting["counted_cpu_us_per_msg"]
            .as_f64()
            .expect("counted cpu")
            > 0.0
    );
    assert!(counting["attach_ms"].as_f64().expect("attach time") >= 0.0);
}

#[test]
fn counters_off_attach_nothing_and_say_why_syscalls_are_null() {
    let rep = run_with_counters("off");
    assert_eq!(rep["server"]["counting"]["mode"], "off", "{rep:#}");
    assert!(rep["syscalls_per_msg"].is_null());
    let reason = rep["syscalls_per_msg_null_reason"]
        .as_str()
        .expect("reason");
    assert!(reason.contains("--server-counters off"), "{reason}");
    // CPU from /proc clock ticks: 2 s of a light load may be under the 10 ticks needed, and
    // then it is null with that reason rather than a coarse number.
    let cpu = &rep["server_cpu_us_per_msg"];
    assert!(
        cpu.as_f64().is_some_and(|v| v > 0.0)
            || rep["server_cpu_us_per_msg_null_reason"]
                .as_str()
                .is_some_and(|r| r.contains("clock ticks")),
        "{rep:#}"
    );
}

#[test]
fn run_against_an_external_target_without_pid_reports_null_server_metrics() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let addr = format!("127.0.0.1:{port}");
    let mut server = fanbench()
        .args(["serve", "--runtime", "tokio", "--addr", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start server");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "server did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("results.json");
    let status = fanbench()
        .args(["run", "--target", &addr, "--label", "external-tokio"])
        .args(SHORT)
        .args(placement_args())
        .arg("--out")
        .arg(&out)
        .status()
        .expect("run fanbench");
    let _ = server.kill();
    let _ = server.wait();
    assert!(status.success());
    let json = read_json(&out);
    assert_contract(&json, "external-tokio", false);
    assert_eq!(json["results"][0]["runtime_config"]["kind"], "external");
}

#[test]
fn unknown_runtime_is_a_clear_error_listing_the_known_rows() {
    let out = fanbench()
        .args(["run", "--runtime", "no-such-runtime"])
        .output()
        .expect("run fanbench");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown runtime"), "{stderr}");
    assert!(
        stderr.contains("tokio-mt") && stderr.contains("nats-server"),
        "{stderr}"
    );
}

#[test]
fn invalid_override_is_rejected_before_anything_starts() {
    let out = fanbench()
        .args(["run", "--runtime", "tokio", "--payload", "4"])
        .output()
        .expect("run fanbench");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("payload_bytes"), "{stderr}");
}
