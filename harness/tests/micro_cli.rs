//! `fanbench micro` driven as a user would: the release binary runs the criterion suite on two
//! rows, writes micro.json, and `fanbench report` charts it.

mod common;
use common::fanbench;

use serde_json::Value;

/// Every operation has a cell for every row: an estimate with a sane interval, or no estimate
/// and a reason; tokio's reference runs beside the tokio row in tokio's four groups.
#[test]
fn micro_quick_writes_every_cell_and_the_report_charts_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run_dir = dir.path().join("run");
    let out = fanbench()
        .args([
            "micro",
            "--quick",
            "--runtimes",
            "tokio,threads",
            "--run-dir",
        ])
        .arg(&run_dir)
        .output()
        .expect("run fanbench micro");
    assert!(
        out.status.success(),
        "fanbench micro failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(run_dir.join("micro.json")).expect("micro.json written");
    let doc: Value = serde_json::from_str(&text).expect("micro.json is JSON");
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["kind"], "micro");
    assert!(
        !run_dir.join("criterion").exists(),
        "criterion's raw files are removed"
    );
    let operations: Vec<&str> = doc["operations"]
        .as_array()
        .expect("operations")
        .iter()
        .map(|o| o["name"].as_str().expect("name"))
        .collect();
    assert_eq!(operations.len(), 12, "{operations:?}");
    let entries = doc["entries"].as_array().expect("entries");
    let cell = |op: &str, rt: &str| {
        entries
            .iter()
            .find(|e| e["operation"] == op && e["runtime"] == rt)
            .unwrap_or_else(|| panic!("no cell for {op} on {rt}"))
    };
    for op in &operations {
        let tokio = cell(op, "tokio");
        let est = &tokio["estimate"];
        let value = est["per_element_ns"]
            .as_f64()
            .unwrap_or_else(|| panic!("{op} on tokio has no estimate: {}", tokio["absent_reason"]));
        let lo = est["per_element_ci_ns"][0].as_f64().expect("ci low");
        let hi = est["per_element_ci_ns"][1].as_f64().expect("ci high");
        assert!(
            value > 0.0 && lo <= value && value <= hi,
            "{op}: {lo} {value} {hi}"
        );
        assert!(est["samples"].as_u64().expect("samples") >= 10);
        let threads = cell(op, "threads");
        assert!(
            threads["estimate"].is_object() != threads["absent_reason"].is_string(),
            "{op} on threads: an estimate or a reason, not both nor neither"
        );
    }
    assert!(cell("tcp_round_trip_128", "threads")["absent_reason"]
        .as_str()
        .expect("threads has no in-runtime echo")
        .contains("blocking"));
    for op in ["spawn_many", "yield_many", "ping_pong", "chained_spawn"] {
        assert!(
            cell(op, "tokio-reference")["estimate"].is_object(),
            "{op}: tokio's own code ran"
        );
    }
    let lateness = doc["timer_lateness"].as_array().expect("timer_lateness");
    assert_eq!(lateness.len(), 2);
    for l in lateness {
        let s = &l["lateness"];
        assert!(s["p50_us"].as_f64().expect("p50") <= s["p99_us"].as_f64().expect("p99"));
        assert_eq!(s["early"], 0, "{}: a sleep woke early", l["runtime"]);
    }

    let report = fanbench()
        .arg("report")
        .arg(&run_dir)
        .output()
        .expect("run fanbench report");
    assert!(
        report.status.success(),
        "report failed: {}",
        String::from_utf8_lossy(&report.stderr)
    );
    assert!(run_dir.join("micro-costs.svg").is_file());
    let index = std::fs::read_to_string(run_dir.join("index.html")).expect("index.html");
    assert!(index.contains("id=\"micro\""));
    assert!(index.contains("tokio-reference"));
}

#[test]
fn micro_refuses_nats_server_and_unknown_rows() {
    for (rows, expect) in [
        ("nats-server", "not a runtime"),
        ("nope", "unknown runtime"),
    ] {
        let out = fanbench()
            .args(["micro", "--quick", "--runtimes", rows])
            .output()
            .expect("run fanbench micro");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expect), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
