//! Load from several agents (`fanbench run --target ... --agent CMD`): two local agents on
//! loopback, an agent command that fails, and (root only) a two-agent fan-out through the
//! network-namespace lab of `scripts/netns-lab.sh`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::Server;

const BIN: &str = env!("CARGO_BIN_EXE_fanbench");

/// 1 publisher x `subs` subscribers at 200 msg/s, a 1 s window, one repetition.
fn short_load(subs: u32) -> Vec<String> {
    load(subs, "1s", 1)
}

/// 1 publisher x `subs` subscribers at 200 msg/s.
fn load(subs: u32, duration: &str, reps: u32) -> Vec<String> {
    [
        "--workload",
        "fanout-100",
        "--publishers",
        "1",
        "--subscribers",
        &subs.to_string(),
        "--rate",
        "200",
        "--duration",
        duration,
        "--warmup",
        "200ms",
        "--reps",
        &reps.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn run_with_agents(target: &str, agents: &[String], out: &Path, subs: u32) -> std::process::Output {
    let mut command = Command::new(BIN);
    command
        .args(["run", "--target", target, "--label", "tokio", "--out"])
        .arg(out)
        .args(short_load(subs));
    for a in agents {
        command.args(["--agent", a]);
    }
    command.output().expect("running fanbench run")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("results file written"))
        .expect("results file is JSON")
}

/// The merged counts equal the agents' sums, nothing is lost, and `agents[]` is filled in.
fn assert_merged(json: &Value, agents: usize, subs: u64) {
    let section = &json["agents"];
    assert_eq!(section["partial"], false, "{section}");
    let list = section["agents"].as_array().expect("agents[]");
    assert_eq!(list.len(), agents);
    let rep = &json["results"][0]["repetitions"][0];
    let field = |name: &str| -> u64 {
        list.iter()
            .map(|a| a["repetitions"][0][name].as_u64().expect(name))
            .sum()
    };
    for name in ["delivered", "expected", "lost", "sent"] {
        assert_eq!(rep[name].as_u64(), Some(field(name)), "{name}");
    }
    assert_eq!(rep["lost"], 0);
    assert!(rep["delivered"].as_u64().expect("delivered") > 0);
    // Every subscriber is on exactly one agent; the publisher on the first.
    let covered: u64 = list
        .iter()
        .map(|a| a["subscribers_to"].as_u64().unwrap() - a["subscribers_from"].as_u64().unwrap())
        .sum();
    assert_eq!(covered, subs);
    assert_eq!(list[0]["role"], "publishers+subscribers");
    assert_eq!(list[0]["latency_clock_bound_ns"], 0);
    for a in list {
        assert!(a["clock_offset_bound_ns"].is_u64(), "{a}");
        assert!(a["host"]["kernel"].is_string(), "{a}");
    }
    // The merged latency histogram is the publishing agent's (one clock).
    assert_eq!(
        rep["histograms"]["latency"],
        list[0]["repetitions"][0]["latency_histogram"]
    );
}

#[test]
fn two_local_agents_merge_into_one_result() {
    let server = Server::start("tokio", &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("results.json");
    let agent = format!("exec {BIN} agent --stdio");
    let output = run_with_agents(&server.addr.to_string(), &[agent.clone(), agent], &out, 10);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_merged(&read_json(&out), 2, 10);
}

#[test]
fn a_failing_agent_command_is_a_clear_error_naming_it() {
    let server = Server::start("tokio", &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    for (command, expect) in [
        ("/nonexistent/fanbench agent --stdio", "closed its output"),
        ("echo this is not json", "not an agent message"),
    ] {
        let out = dir.path().join("results.json");
        let output = run_with_agents(&server.addr.to_string(), &[command.to_string()], &out, 2);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(
            stderr.contains("agent 0") && stderr.contains(expect),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn an_agent_killed_mid_run_ends_the_run_naming_it_and_the_result_is_flagged_partial() {
    let server = Server::start("tokio", &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("results.json");
    let pid_file = dir.path().join("agent1.pid");
    // `exec` keeps the shell's pid, so $$ is the agent's.
    let second = format!(
        "echo $$ > '{}'; exec {BIN} agent --stdio",
        pid_file.display()
    );
    let mut command = Command::new(BIN);
    command
        .args([
            "run",
            "--target",
            &server.addr.to_string(),
            "--label",
            "tokio",
        ])
        .arg("--out")
        .arg(&out)
        .args(load(10, "4s", 2))
        .args([
            "--agent",
            &format!("exec {BIN} agent --stdio"),
            "--agent",
            &second,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let controller = command.spawn().expect("starting fanbench run");
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid: i32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "the second agent never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Inside the first repetition's window (start lead 0.3 s + warm-up 0.2 s + 4 s).
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: kill(2) on the pid of an agent this test started; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let output = controller
        .wait_with_output()
        .expect("waiting for fanbench run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("error: ") && stderr.contains("agent 1"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let json = read_json(&out);
    assert_eq!(json["agents"]["partial"], true);
    assert!(json["agents"]["failure"]
        .as_str()
        .is_some_and(|f| f.contains("agent 1")));
    assert!(json["agents"]["agents"][1]["error"].is_string());
    // Agent 0 finished its repetition: what it measured is kept, flagged invalid.
    let result = &json["results"][0];
    assert_eq!(result["valid"], false);
    assert_eq!(result["repetitions"].as_array().map(Vec::len), Some(1));
    assert!(result["invalid_reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .any(|r| r.as_str().is_some_and(|r| r.starts_with("partial"))));
}

/// The lab's namespaces (with a prefix of this test's own) and the server in it, removed when
/// dropped, whether the test passed or not.
struct Lab {
    script: PathBuf,
    prefix: String,
    server: Option<Child>,
}

impl Lab {
    fn down(&self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("down")
            .env("NETNS_LAB_PREFIX", &self.prefix)
            .status();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
        self.down();
    }
}

fn lab_available() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root (network namespaces need it)".into());
    }
    let ip = Command::new("ip")
        .args(["netns", "list"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !ip.is_ok_and(|s| s.success()) {
        return Err("`ip netns` is not available (iproute2)".into());
    }
    Ok(())
}

#[test]
fn two_agents_in_network_namespaces_fan_out_without_loss() {
    if let Err(why) = lab_available() {
        eprintln!("SKIPPED: {why}; the network-namespace lab was not run");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/netns-lab.sh");
    let lab = Lab {
        script,
        prefix: format!("fbt{}", std::process::id() % 100_000),
        server: None,
    };
    lab.down();
    let up = Command::new("bash")
        .arg(&lab.script)
        .arg("up")
        .env("NETNS_LAB_PREFIX", &lab.prefix)
        .output()
        .expect("running netns-lab.sh up");
    assert!(
        up.status.success(),
        "netns-lab.sh up: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let mut lab = lab;
    let ns = |suffix: &str| format!("{}{suffix}", lab.prefix);
    lab.server = Some(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns("S"),
                BIN,
                "serve",
                "--runtime",
                "tokio",
            ])
            .args(["--addr", "198.18.0.1:4222"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the server in the lab"),
    );
    // The server listens once a connection from an agent's namespace succeeds.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let probe = Command::new("ip")
            .args(["netns", "exec", &ns("A"), "bash", "-c"])
            .arg("exec 3<>/dev/tcp/198.18.0.1/4222")
            .stderr(Stdio::null())
            .status()
            .expect("probing the server");
        if probe.success() {
            break;
        }
        assert!(Instant::now() < deadline, "the lab's server never listened");
        std::thread::sleep(Duration::from_millis(100));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("results.json");
    let agents = [
        format!("ip netns exec {} {BIN} agent --stdio", ns("A")),
        format!("ip netns exec {} {BIN} agent --stdio", ns("B")),
    ];
    let output = run_with_agents("198.18.0.1:4222", &agents, &out, 100);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_merged(&read_json(&out), 2, 100);
}
