//! `fanbench compare` on micro costs, driven as a user would: the real binary on run
//! directories built from the micro.json fixture (harness/tests/fixtures/micro.json, a
//! `fanbench micro --quick` run trimmed to five operations on three rows) and modified copies.

mod common;
use common::fanbench;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

fn micro_fixture() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/micro.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON")
}

fn results_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plots/tests/fixtures/results.json")
}

/// A run directory `dir/name` holding `micro` as micro.json and, with `results`, the results
/// fixture as results.json (a bench-all run directory; without it, a `fanbench micro` one).
fn run_dir(dir: &Path, name: &str, micro: &Value, results: bool) -> PathBuf {
    let run = dir.join(name);
    std::fs::create_dir_all(&run).expect("mkdir");
    std::fs::write(run.join("micro.json"), micro.to_string()).expect("write micro.json");
    if results {
        std::fs::copy(results_fixture(), run.join("results.json")).expect("copy results");
    }
    run
}

/// The fixture with one cell's estimate and intervals multiplied by `factor`.
fn scaled(op: &str, runtime: &str, factor: f64) -> Value {
    let mut v = micro_fixture();
    let entry = v["entries"]
        .as_array_mut()
        .expect("entries")
        .iter_mut()
        .find(|e| e["operation"] == op && e["runtime"] == runtime)
        .expect("cell");
    let est = &mut entry["estimate"];
    for key in ["per_element_ns", "per_iteration_ns"] {
        est[key] = serde_json::json!(est[key].as_f64().expect("number") * factor);
    }
    for key in ["per_element_ci_ns", "per_iteration_ci_ns"] {
        for bound in est[key].as_array_mut().expect("interval") {
            *bound = serde_json::json!(bound.as_f64().expect("number") * factor);
        }
    }
    v
}

fn compare(args: &[&Path], extra: &[&str]) -> Output {
    fanbench()
        .arg("compare")
        .args(args)
        .args(extra)
        .output()
        .expect("fanbench runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_micro_run_compared_with_itself_shows_no_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Both forms of a side: a bench-all directory (results.json and micro.json) and a
    // `fanbench micro` directory (micro.json alone).
    for results in [true, false] {
        let a = run_dir(
            dir.path(),
            &format!("a-{results}"),
            &micro_fixture(),
            results,
        );
        let out = compare(&[&a, &a], &["--fail-on-regression"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("Micro costs (micro.json)"), "{text}");
        assert!(
            text.contains("micro costs: 0 regressed, 0 improved, 15 no change, 1 not measured, 0 only on one side"),
            "{text}"
        );
        assert!(text.contains("Changed: 0"), "{text}");
        assert!(!text.contains("Only micro costs compared"), "{text}");
        // The fan-out table is there exactly when both sides have results.
        assert_eq!(
            text.contains("| workload |") || text.contains("workload  "),
            results
        );
    }
}

#[test]
fn one_estimate_doubled_is_flagged_and_fails_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = run_dir(dir.path(), "a", &micro_fixture(), true);
    let b = run_dir(dir.path(), "b", &scaled("spawn_many", "tokio", 2.0), true);

    let out = compare(&[&a, &b], &[]);
    assert!(
        out.status.success(),
        "without --fail-on-regression it exits 0"
    );
    let text = stdout(&out);
    assert!(
        text.contains("micro costs: 1 regressed, 0 improved"),
        "{text}"
    );
    let flagged: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("regressed (intervals apart"))
        .collect();
    assert_eq!(flagged.len(), 1, "{text}");
    assert!(flagged[0].starts_with("spawn_many") && flagged[0].contains(" tokio "));
    assert!(flagged[0].contains("+100.0%"), "{}", flagged[0]);
    // The fan-out results are the same file on both sides: none of them regressed.
    assert!(text.contains("0 regressed, 0 improved"), "{text}");

    let out = compare(&[&a, &b], &["--fail-on-regression"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("1 micro cost(s) regressed (--fail-on-regression)"),
        "{}",
        stderr(&out)
    );

    // Halved the other way round: an improvement, and nothing fails.
    let out = compare(&[&b, &a], &["--fail-on-regression", "--markdown"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let md = stdout(&out);
    assert!(md.contains("| spawn_many | tokio |"), "{md}");
    assert!(md.contains("**improved"), "{md}");
}

#[test]
fn micro_json_files_and_micro_only_directories_compare_and_a_missing_side_is_said() {
    let dir = tempfile::tempdir().expect("tempdir");
    let micro_only = run_dir(dir.path(), "micro-only", &micro_fixture(), false);
    let doubled = run_dir(
        dir.path(),
        "doubled",
        &scaled("wake_local", "uring", 2.0),
        false,
    );
    // Two micro.json files given directly.
    let out = compare(
        &[&micro_only.join("micro.json"), &doubled.join("micro.json")],
        &["--fail-on-regression"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("micro costs: 1 regressed"));

    // A bench-all directory against a micro-only one: the micro costs, and a note saying
    // the fan-out results were not compared.
    let full = run_dir(dir.path(), "full", &micro_fixture(), true);
    let out = compare(&[&full, &micro_only], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Only micro costs compared"),
        "{}",
        stdout(&out)
    );

    // Results on both sides, micro.json on one only: said, not silently skipped.
    let results_only = dir.path().join("results-only");
    std::fs::create_dir_all(&results_only).expect("mkdir");
    std::fs::copy(results_fixture(), results_only.join("results.json")).expect("copy");
    let out = compare(&[&full, &results_only], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Micro costs: not compared, only the base run has them"),
        "{}",
        stdout(&out)
    );

    // A micro-only side against results without micro.json: a clear error.
    let out = compare(&[&micro_only, &results_only], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no micro.json beside its results"),
        "{}",
        stderr(&out)
    );

    // A broken micro.json: an error naming it, no panic.
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).expect("mkdir");
    std::fs::write(
        broken.join("micro.json"),
        "{\"schema_version\": 1, \"entries\": [",
    )
    .expect("write");
    let out = compare(&[&micro_only, &broken], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("micro.json"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"));
}
