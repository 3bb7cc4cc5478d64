//! `fanbench report` and `fanbench compare` driven as a user would: the real binary on the
//! results fixture (plots/tests/fixtures/results.json, schema v1) and on modified copies.

mod common;
use common::fanbench;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plots/tests/fixtures/results.json")
}

fn run(args: &[&str]) -> Output {
    fanbench().args(args).output().expect("fanbench runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn scale(value: &mut Value, factor: f64) {
    if let Some(v) = value.as_f64() {
        *value = serde_json::json!(v * factor);
    }
}

/// A copy of the fixture in `dir` with throughput x `tp` and p99 latency x `p99` in the
/// summaries, repetitions and per-second windows.
fn degraded_copy(dir: &Path, tp: f64, p99: f64) -> PathBuf {
    let text = std::fs::read_to_string(fixture()).expect("fixture");
    let mut doc: Value = serde_json::from_str(&text).expect("JSON");
    for result in doc["results"].as_array_mut().expect("results") {
        scale(&mut result["summary"]["throughput_msgs_per_s"], tp);
        scale(&mut result["summary"]["latency_us"]["p99"], p99);
        for rep in result["repetitions"].as_array_mut().expect("reps") {
            scale(&mut rep["throughput_msgs_per_s"], tp);
            scale(&mut rep["latency_us"]["p99"], p99);
            for w in rep["windows"].as_array_mut().expect("windows") {
                let delivered = w["delivered"].as_u64().expect("delivered") as f64;
                w["delivered"] = serde_json::json!((delivered * tp).round() as u64);
                scale(&mut w["latency_p99_us"], p99);
            }
        }
    }
    let path = dir.join("degraded.json");
    std::fs::write(&path, doc.to_string()).expect("write copy");
    path
}

#[test]
fn report_writes_every_chart_and_index_html_beside_the_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let results = dir.path().join("results.json");
    std::fs::copy(fixture(), &results).expect("copy fixture");
    let out = run(&["report", results.to_str().expect("utf-8")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in [
        "index.html",
        "latency-fanout-100.svg",
        "spectrum-fanout-100.svg",
        "timeline-fanout-100.svg",
        "syscall-mix-fanout-100.svg",
        "syscalls-per-msg.svg",
        "cpu-per-msg.svg",
    ] {
        assert!(dir.path().join(name).is_file(), "{name} written");
        assert!(stdout(&out).contains(name), "{name} listed");
    }
}

#[test]
fn compare_of_a_run_with_itself_reports_no_change_and_exits_zero() {
    let f = fixture();
    let f = f.to_str().expect("utf-8");
    let out = run(&["compare", f, f, "--fail-on-regression"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(text.contains("0 regressed, 0 improved"), "{text}");
    assert!(text.contains("no change"));
    assert!(!text.contains(" regressed "), "{text}");
}

#[test]
fn compare_reports_a_30_percent_throughput_cut_and_50_percent_p99_rise_as_regressed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = degraded_copy(dir.path(), 0.7, 1.5);
    let base = fixture();
    let args = [
        "compare",
        base.to_str().expect("utf-8"),
        copy.to_str().expect("utf-8"),
    ];
    let plain = run(&args);
    assert!(
        plain.status.success(),
        "without --fail-on-regression it exits 0"
    );
    let text = stdout(&plain);
    let regressed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("  regressed  "))
        .collect();
    assert!(
        regressed
            .iter()
            .any(|l| l.contains("throughput") && l.contains("-30.0%")),
        "{text}"
    );
    assert!(
        regressed
            .iter()
            .any(|l| l.contains("latency p99") && l.contains("+50.0%")),
        "{text}"
    );

    let failing = run(&[&args[..], &["--fail-on-regression"]].concat());
    assert_eq!(failing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failing.stderr).contains("regressed"));
}

#[test]
fn compare_markdown_prints_a_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = degraded_copy(dir.path(), 0.7, 1.5);
    let base = fixture();
    let out = run(&[
        "compare",
        base.to_str().expect("utf-8"),
        copy.to_str().expect("utf-8"),
        "--markdown",
        "--changes-only",
    ]);
    assert!(out.status.success());
    let text = stdout(&out);
    let table: Vec<&str> = text.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(
        table[0],
        "| workload | runtime | metric | base | new | change | verdict | test |"
    );
    assert!(table.len() > 2);
    assert!(table[2..]
        .iter()
        .all(|l| l.contains("**regressed**") || l.contains("**improved**")));
}

#[test]
fn compare_accepts_a_run_directory_and_rejects_nonsense_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(fixture(), dir.path().join("results.json")).expect("copy");
    let d = dir.path().to_str().expect("utf-8");
    let out = run(&["compare", d, d]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(&["compare", d, "no-such-file-or-commit-xyz"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a results file, a run directory, or a git commit"),
        "{err}"
    );

    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "[1, 2").expect("write");
    let out = run(&["compare", d, garbage.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn compare_of_two_rows_pairs_one_rows_results_with_the_others() {
    let f = fixture();
    let f = f.to_str().expect("utf-8");
    let out = run(&["compare", f, f, "--base-row", "tokio", "--new-row", "uring"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("server CPU us/msg"))
        .collect();
    // One line per workload both rows ran, each naming both rows, and no other row.
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines.iter().all(|l| l.contains("tokio -> uring")), "{text}");
    assert!(
        !text.contains("nats-server") && !text.contains("tokio-mt"),
        "{text}"
    );
    // A row against itself is no change.
    let same = stdout(&run(&[
        "compare",
        f,
        f,
        "--base-row",
        "uring",
        "--new-row",
        "uring",
    ]));
    assert!(same.contains("0 regressed, 0 improved"), "{same}");

    let missing = run(&[
        "compare",
        f,
        f,
        "--base-row",
        "glommio",
        "--new-row",
        "uring",
    ]);
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("no results of row \"glommio\""), "{err}");
    let alone = run(&["compare", f, f, "--base-row", "uring"]);
    assert!(!alone.status.success(), "--base-row needs --new-row");
}
