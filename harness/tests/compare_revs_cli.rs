//! `fanbench compare-revs` and `fanbench compare --paired` driven as a user would: bad input
//! is refused clearly before anything is built or measured, and the paired verdicts of two
//! saved sides.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

mod common;

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

/// Pids of the processes whose executable lies under `dir`.
fn processes_under(dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe.starts_with(dir))
        })
        .collect()
}

#[test]
fn sigterm_stops_the_servers_and_writes_what_was_measured() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let head = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(&repo)
        .output();
    let head = match head {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        _ => {
            eprintln!("skipped: not in a git checkout (compare-revs resolves revisions with git)");
            return;
        }
    };
    // This build's binary stands in for HEAD's, so nothing is built.
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let cached = cache.join("bin").join(&head);
    std::fs::create_dir_all(&cached).expect("cache dir");
    let bin = assert_cmd::cargo::cargo_bin("fanbench");
    std::fs::copy(&bin, cached.join("fanbench")).expect("copy the binary");
    let out_dir = dir.path().join("out");
    let mut child = std::process::Command::new(&bin)
        .args([
            "compare-revs",
            "HEAD",
            "--workloads",
            "seed-5x5",
            "--runtimes",
            "tokio",
        ])
        .args(["--rounds", "50"])
        .args(common::placement_args())
        .arg("--cache-dir")
        .arg(&cache)
        .arg("--out")
        .arg(&out_dir)
        .current_dir(&repo)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("fanbench runs");
    // Wait until a few rounds were measured (a server log per repetition), at most 60 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let logs = || -> usize {
        std::fs::read_dir(&out_dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|run| std::fs::read_dir(run.path().join("logs")).ok())
            .flatten()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".log"))
            })
            .count()
    };
    while logs() < 4 && std::time::Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            use std::io::Read;
            let _ = child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err);
            panic!("compare-revs ended before it was signalled ({status}): {err}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(logs() >= 4, "no rounds measured within 60 s");
    // SAFETY: kill takes no pointers; the pid is our own child's, not yet reaped.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(sent, 0, "sending SIGTERM");
    let out = child.wait_with_output().expect("compare-revs exits");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        processes_under(&cache).is_empty(),
        "servers outlived the run: {:?}",
        processes_under(&cache)
    );
    let run = std::fs::read_dir(&out_dir)
        .expect("run dir")
        .filter_map(|e| e.ok())
        .next()
        .expect("one run")
        .path();
    for side in ["base", "new"] {
        let text = std::fs::read_to_string(run.join(side).join("results.json")).expect("side");
        let doc: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(doc["partial"], true, "{side}");
        assert_eq!(doc["interrupted_by"], "SIGTERM", "{side}");
        let skipped = doc["skipped"].as_array().expect("skipped");
        assert!(
            skipped.iter().any(|s| s["reason"]
                .as_str()
                .is_some_and(|r| r.contains("interrupted by SIGTERM"))),
            "{side}: {skipped:?}"
        );
    }
}
