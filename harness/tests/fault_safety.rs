//! The harness keeps what it measured whatever stops it: a server that dies mid-run, a
//! SIGTERM to `bench-all`, `run`, `sweep` or `calibrate`, a `--resume` of the interrupted run;
//! and `bench-all` measures in the order the resume and the comparisons rely on.
//! The real binary is driven as a CI job or a user would; the workloads are the smallest that
//! still measure.

mod common;
use common::{fanbench, placement_args};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One small pair per row: 1 publisher x 3 subscribers at 100 msg/s, a 2 s window.
const SMALL: &[&str] = &[
    "--workloads",
    "seed-5x5",
    "--publishers",
    "1",
    "--subscribers",
    "3",
    "--rate",
    "100",
    "--duration",
    "2s",
    "--warmup",
    "200ms",
    "--reps",
    "1",
    "--skip-calibration",
];

/// Two rows that need neither io_uring nor nats-server.
const ROWS: &str = "tokio,threads";

fn bench_all(out: &Path) -> Child {
    bench_all_of(out, SMALL[1])
}

/// `bench-all` of the two rows on `workloads` (comma-separated), otherwise as small.
fn bench_all_of(out: &Path, workloads: &str) -> Child {
    let mut small = SMALL.to_vec();
    assert_eq!(small[0], "--workloads", "SMALL starts with the workloads");
    small[1] = workloads;
    fanbench()
        .args(["bench-all", "--runtimes", ROWS])
        .args(small)
        .args(placement_args())
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start bench-all")
}

/// Pids of `parent`'s child processes with `word` in their command line.
fn children_running(parent: u32, word: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state, ppid, ...
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let ppid = after.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == Some(parent) && String::from_utf8_lossy(&cmdline).contains(word) {
            pids.push(pid);
        }
    }
    pids
}

/// Waits until `parent` has a server child that is not in `seen`; returns its pid.
fn wait_for_new_server(parent: u32, seen: &[u32], timeout: Duration) -> u32 {
    wait_for_new_child(parent, "serve", seen, timeout)
}

/// Waits until `parent` has a child running `word` that is not in `seen`; returns its pid.
fn wait_for_new_child(parent: u32, word: &str, seen: &[u32], timeout: Duration) -> u32 {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(pid) = children_running(parent, word)
            .into_iter()
            .find(|p| !seen.contains(p))
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "no new {word} process started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig})");
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the harness did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A process that is gone (or a zombie nobody has reaped yet: it runs nothing).
fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// The single run directory bench-all created under `out`.
fn run_dir(out: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .expect("out dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("results written"))
        .expect("results are JSON")
}

fn pairs(json: &Value) -> Vec<String> {
    json["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| format!("{}/{}", r["scenario"].as_str().unwrap_or(""), r["runtime"]))
        .collect()
}

/// Sends SIGTERM to `harness`, waits for it to exit with 128 + SIGTERM, and checks that none
/// of `children` outlived it; returns how long it took to exit.
fn sigterm_and_check_exit(harness: &mut Child, children: &[u32]) -> Duration {
    let signalled = Instant::now();
    signal(harness.id(), libc::SIGTERM);
    let status = wait_with_timeout(harness, Duration::from_secs(30));
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(143), "{status}");
    for &pid in children {
        assert!(is_gone(pid), "child {pid} was left running");
    }
    took
}

/// The file an interrupted command wrote says it is partial and which signal cut it short.
fn assert_partial_by_sigterm(json: &Value) {
    assert_eq!(json["partial"], true);
    assert_eq!(json["interrupted_by"], "SIGTERM");
}

#[test]
fn a_server_killed_mid_run_is_recorded_as_failed_and_bench_all_measures_the_other_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut harness = bench_all(dir.path());
    let server = wait_for_new_server(harness.id(), &[], Duration::from_secs(60));
    // Inside the first pair's window (the server answered, the load is running).
    std::thread::sleep(Duration::from_millis(800));
    signal(server, libc::SIGKILL);
    let status = wait_with_timeout(&mut harness, Duration::from_secs(120));
    assert!(status.success(), "{status}");
    let json = read_json(&run_dir(dir.path()).join("results.json"));
    let failed = json["failed"].as_array().expect("failed[]");
    assert_eq!(failed.len(), 1, "{json:#}");
    assert_eq!(failed[0]["runtime"], "tokio");
    assert_eq!(failed[0]["server_signal"], 9);
    assert!(
        failed[0]["server_exit"]
            .as_str()
            .is_some_and(|s| s.contains("SIGKILL")),
        "{failed:?}"
    );
    assert!(failed[0]["server_log_tail"]
        .as_str()
        .is_some_and(|t| t.contains("listening")));
    assert_eq!(pairs(&json), vec!["seed-5x5/\"threads\"".to_string()]);
    assert_eq!(json["partial"], false);
}

#[test]
fn sigterm_leaves_partial_results_a_report_and_no_server_and_resume_completes_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut harness = bench_all(dir.path());
    let first = wait_for_new_server(harness.id(), &[], Duration::from_secs(60));
    let second = wait_for_new_server(harness.id(), &[first], Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    let took = sigterm_and_check_exit(&mut harness, &[first, second]);
    // The measurement in flight is abandoned, not run to its end.
    assert!(took < Duration::from_secs(10), "took {took:?}");

    let run = run_dir(dir.path());
    let json = read_json(&run.join("results.json"));
    assert_partial_by_sigterm(&json);
    assert_eq!(pairs(&json), vec!["seed-5x5/\"tokio\"".to_string()]);
    assert!(json["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .any(|s| s["runtime"] == "threads"
            && s["reason"].as_str().is_some_and(|r| r.contains("SIGTERM"))));
    let index = std::fs::read_to_string(run.join("index.html")).expect("report written");
    assert!(index.contains("Partial run"));

    let status = fanbench()
        .arg("bench-all")
        .arg("--resume")
        .arg(&run)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("resume");
    assert!(status.success(), "{status}");
    let json = read_json(&run.join("results.json"));
    assert_eq!(json["partial"], false);
    assert!(json["interrupted_by"].is_null());
    assert_eq!(
        pairs(&json),
        vec![
            "seed-5x5/\"tokio\"".to_string(),
            "seed-5x5/\"threads\"".to_string()
        ]
    );
    assert!(json["skipped"].as_array().expect("skipped").is_empty());
    // Resuming a finished run is refused.
    let out = fanbench()
        .arg("bench-all")
        .arg("--resume")
        .arg(&run)
        .output()
        .expect("resume again");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to resume"));
}

#[test]
fn sigkill_of_the_harness_takes_its_server_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut harness = bench_all(dir.path());
    let server = wait_for_new_server(harness.id(), &[], Duration::from_secs(60));
    signal(harness.id(), libc::SIGKILL);
    let _ = harness.wait();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !is_gone(server) {
        assert!(
            Instant::now() < deadline,
            "server {server} outlived the harness"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // What was measured before the kill (nothing yet, here) is still a file flagged partial
    // once a pair is done; with none done there is no file to check.
}

#[test]
fn sigterm_to_run_keeps_the_completed_repetitions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("results.json");
    let mut harness = fanbench()
        .args(["run", "--runtime", "tokio", "--workload", "seed-5x5"])
        .args(["--publishers", "1", "--subscribers", "3", "--rate", "100"])
        .args(["--duration", "1s", "--warmup", "200ms", "--reps", "5"])
        .args(placement_args())
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start run");
    let server = wait_for_new_server(harness.id(), &[], Duration::from_secs(60));
    let stderr = harness.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let line = lines.next().expect("a repetition finished").expect("line");
        if line.contains("repetition 0 done") {
            break;
        }
    }
    sigterm_and_check_exit(&mut harness, &[server]);
    let json = read_json(&out);
    assert_partial_by_sigterm(&json);
    let reps = json["results"][0]["repetitions"]
        .as_array()
        .expect("the completed repetitions are kept");
    assert!(!reps.is_empty() && reps.len() < 5, "{}", reps.len());
}

#[test]
fn sigterm_to_sweep_writes_the_steps_measured_a_report_and_leaves_no_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut harness = fanbench()
        .args(["sweep", "--runtime", ROWS, "--workload", "seed-5x5"])
        .args(["--publishers", "1", "--subscribers", "3", "--rate", "100"])
        .args(["--duration", "1s", "--warmup", "200ms", "--max-steps", "6"])
        .args(placement_args())
        .arg("--out")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sweep");
    // One server per step: the second one means the first step was measured.
    let first = wait_for_new_server(harness.id(), &[], Duration::from_secs(60));
    let second = wait_for_new_server(harness.id(), &[first], Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(300));
    sigterm_and_check_exit(&mut harness, &[first, second]);
    let run = run_dir(dir.path());
    let json = read_json(&run.join("sweep.json"));
    assert_partial_by_sigterm(&json);
    let sweeps = json["sweeps"].as_array().expect("sweeps");
    assert_eq!(sweeps.len(), 1, "the second row was not started");
    assert_eq!(sweeps[0]["ended_by"], "interrupted");
    assert!(!sweeps[0]["steps"].as_array().expect("steps").is_empty());
    let index = std::fs::read_to_string(run.join("index.html")).expect("report written");
    assert!(index.contains("Partial sweep"));
}

#[test]
fn sigterm_to_calibrate_writes_the_finished_configurations_and_leaves_no_blaster() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("calibration.json");
    let mut harness = fanbench()
        .args([
            "calibrate",
            "--payloads",
            "128",
            "--frames-per-send",
            "64,1",
        ])
        .args(["--subscribers", "10", "--step-s", "0.3"])
        .args(["--first-step", "200000", "--step-factor", "4"])
        .args(placement_args())
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start calibrate");
    // One blaster per configuration: the second one means the first was finished.
    let first = wait_for_new_child(harness.id(), "blaster", &[], Duration::from_secs(60));
    let second = wait_for_new_child(harness.id(), "blaster", &[first], Duration::from_secs(120));
    std::thread::sleep(Duration::from_millis(300));
    sigterm_and_check_exit(&mut harness, &[first, second]);
    let json = read_json(&out);
    assert_partial_by_sigterm(&json);
    let ceilings = json["ceilings"].as_array().expect("ceilings");
    assert_eq!(ceilings.len(), 1, "only the finished configuration");
    assert_eq!(ceilings[0]["frames_per_send"], 64);
    // A partial calibration is not read as one.
    let refused = fanbench()
        .args(["run", "--runtime", "tokio", "--calibration"])
        .arg(&out)
        .output()
        .expect("run with the partial calibration");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("partial calibration"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn resume_refuses_other_options_and_a_directory_without_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = fanbench()
        .arg("bench-all")
        .arg("--resume")
        .arg(dir.path())
        .output()
        .expect("resume");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no results.json"));
    let out = fanbench()
        .args(["bench-all", "--quick", "--resume"])
        .arg(dir.path())
        .output()
        .expect("resume");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}

#[test]
fn bench_all_measures_workload_by_workload_so_the_rows_compared_run_close_together() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut harness = bench_all_of(dir.path(), "seed-5x5,seed-5x25");
    let status = wait_with_timeout(&mut harness, Duration::from_secs(180));
    assert!(status.success(), "{status}");
    let json = read_json(&run_dir(dir.path()).join("results.json"));
    assert_eq!(
        pairs(&json),
        vec![
            "seed-5x5/\"tokio\"".to_string(),
            "seed-5x5/\"threads\"".to_string(),
            "seed-5x25/\"tokio\"".to_string(),
            "seed-5x25/\"threads\"".to_string(),
        ]
    );
}
