//! `fanbench compare-revs` and `fanbench compare --paired` driven as a user would: bad input
//! is refused clearly before anything is built or measured, and the paired verdicts of two
//! saved sides.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

fn run(args: &[&str]) -> Output {
    std::process::Command::cargo_bin("fanbench")
        .expect("the fanbench binary is built")
        .args(args)
        .output()
        .expect("fanbench runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plots/tests/fixtures/results.json")
}

#[test]
fn unknown_revision_and_bad_options_are_refused_clearly() {
    let quick = ["--workloads", "seed-5x5", "--runtimes", "tokio"];
    let cases: [(&[&str], &str); 3] = [
        (&["no-such-revision-xyz"], "does not know a commit"),
        (&["HEAD", "--rounds", "1"], "--rounds must be at least 2"),
        (&["HEAD", "--reps", "3"], "use --rounds"),
    ];
    for (args, expected) in cases {
        let mut argv = vec!["compare-revs"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&quick);
        let out = run(&argv);
        assert_eq!(out.status.code(), Some(1), "{argv:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(expected), "{argv:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// A copy of the fixture with p99 latency x `factor` in every repetition, nats-server's too
/// when `control` (the machine moved), else only our rows' (the code did).
fn p99_scaled_copy(dir: &Path, factor: f64, control: bool) -> PathBuf {
    let text = std::fs::read_to_string(fixture()).expect("fixture");
    let mut doc: Value = serde_json::from_str(&text).expect("JSON");
    for result in doc["results"].as_array_mut().expect("results") {
        if result["runtime"] == "nats-server" && !control {
            continue;
        }
        for rep in result["repetitions"].as_array_mut().expect("reps") {
            if let Some(v) = rep["latency_us"]["p99"].as_f64() {
                rep["latency_us"]["p99"] = serde_json::json!(v * factor);
            }
        }
    }
    let path = dir.join(format!("p99-x{factor}-control-{control}.json"));
    std::fs::write(&path, doc.to_string()).expect("write");
    path
}

#[test]
fn paired_compare_of_saved_sides_flags_a_change_made_in_every_round_and_only_that() {
    let dir = tempfile::tempdir().expect("tempdir");
    let worse = p99_scaled_copy(dir.path(), 1.5, false);
    let machine = p99_scaled_copy(dir.path(), 1.5, true);
    let base = fixture();
    let (base, worse, machine) = (
        base.to_str().expect("utf-8"),
        worse.to_str().expect("utf-8"),
        machine.to_str().expect("utf-8"),
    );

    let same = run(&["compare", "--paired", base, base]);
    assert!(same.status.success(), "{}", stderr(&same));
    let text = String::from_utf8_lossy(&same.stdout);
    assert!(text.contains("0 regressed, 0 improved"), "{text}");

    let out = run(&["compare", "--paired", "--fail-on-regression", base, worse]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let changed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("regressed (") || l.contains("improved ("))
        .collect();
    assert!(!changed.is_empty(), "{text}");
    assert!(
        changed
            .iter()
            .all(|l| l.contains("latency p99") && l.contains("regressed")),
        "{changed:#?}"
    );

    // The same rise in nats-server (the same binary on both sides) is the machine: no verdict
    // anywhere in that metric, and --fail-on-regression passes.
    let out = run(&["compare", "--paired", "--fail-on-regression", base, machine]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("0 regressed, 0 improved"), "{text}");
    assert!(
        text.contains("the negative control moved +50.0% here"),
        "{text}"
    );
}
