//! Shared by the integration tests: start `fanbench serve` on a free port and talk to it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;

/// This build's `fanbench` binary, as a command to run.
pub fn fanbench() -> Command {
    Command::cargo_bin("fanbench").expect("the fanbench binary is built")
}

/// Server on CPU 0; the load generator on CPU 1 when there is one (else shared, with a warning).
pub fn placement_args() -> Vec<&'static str> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus >= 2 {
        vec!["--server-cpus", "0", "--client-cpus", "1"]
    } else {
        vec!["--server-cpus", "0", "--client-cpus", "0"]
    }
}

/// A `fanbench serve` child process, killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub runtime: String,
    /// nats-server's configuration file, deleted when the server is dropped.
    _config: Option<tempfile::TempPath>,
}

/// How to start a server ([`Server::start_with`]).
#[derive(Default)]
pub struct StartOptions<'a> {
    /// Extra `fanbench serve` arguments (ignored for nats-server).
    pub extra: &'a [&'a str],
    /// nats-server configuration file text (ignored for fanbench rows).
    pub nats_config: Option<&'a str>,
    /// `RLIMIT_NOFILE` (soft and hard) for the server process.
    pub nofile: Option<u64>,
}

/// Set `RLIMIT_NOFILE` (soft and hard) in the child between fork and exec. The hard limit too,
/// because Go programs (nats-server) raise their soft limit to the hard one at start.
fn limit_open_files(command: &mut Command, n: u64) {
    use std::os::unix::process::CommandExt;
    let limit = libc::rlimit {
        rlim_cur: n,
        rlim_max: n,
    };
    // SAFETY: the closure runs in the forked child before exec and only calls setrlimit(2),
    // which is async-signal-safe; `limit` is a plain value copied into the closure.
    unsafe {
        command.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

impl Server {
    /// Start `fanbench serve --runtime <runtime> --addr 127.0.0.1:0 <extra>` and wait until it
    /// says where it listens.
    pub fn start(runtime: &str, extra: &[&str]) -> Server {
        Self::start_with(
            runtime,
            &StartOptions {
                extra,
                ..StartOptions::default()
            },
        )
    }

    /// Start a server with options: `extra` arguments for `fanbench serve`, a configuration
    /// file for nats-server (which has no flags for its limits), and an open-file limit.
    pub fn start_with(runtime: &str, opts: &StartOptions<'_>) -> Server {
        if runtime == "nats-server" {
            return Self::start_nats_server(opts);
        }
        Self::start_fanbench(runtime, opts)
    }

    /// Whether the reference nats-server row can run here. It must when
    /// `FANBENCH_REQUIRE_NATS_SERVER=1` (CI installs it); elsewhere a missing nats-server skips
    /// the reference row with a message instead of failing on a machine without it.
    pub fn nats_server_available() -> bool {
        let installed = Command::new("nats-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            assert!(
                std::env::var("FANBENCH_REQUIRE_NATS_SERVER").as_deref() != Ok("1"),
                "nats-server is required (FANBENCH_REQUIRE_NATS_SERVER=1) but not installed"
            );
            eprintln!("SKIPPED: nats-server is not installed (apt-get install nats-server); reference row not run");
        }
        installed
    }

    fn start_fanbench(runtime: &str, opts: &StartOptions<'_>) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_fanbench"));
        command
            .args(["serve", "--runtime", runtime, "--addr", "127.0.0.1:0"])
            .args(opts.extra);
        if let Some(n) = opts.nofile {
            limit_open_files(&mut command, n);
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning fanbench serve");
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut lines = BufReader::new(stderr).lines();
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("fanbench serve --runtime {runtime} exited without a word"))
            .expect("reading serve's stderr");
        let addr = line
            .split(" listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from serve: {line:?}"));
        // Keep draining stderr so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            addr,
            runtime: runtime.to_string(),
            _config: None,
        }
    }

    /// Start the reference `nats-server` (Debian package) on a free port.
    fn start_nats_server(opts: &StartOptions<'_>) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new("nats-server");
        command.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
        let config = opts.nats_config.map(|text| {
            let mut file = tempfile::Builder::new()
                .prefix("fanbench-nats-")
                .suffix(".conf")
                .tempfile()
                .expect("creating a nats-server config file");
            file.write_all(text.as_bytes())
                .expect("writing the nats-server config");
            file.into_temp_path()
        });
        if let Some(path) = &config {
            command.arg("-c").arg(path);
        }
        if let Some(n) = opts.nofile {
            limit_open_files(&mut command, n);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is not installed: `apt-get install nats-server` (CI installs it)");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not start listening on {addr}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Server {
            child,
            addr,
            runtime: "nats-server".to_string(),
            _config: config,
        }
    }

    /// The nats:// URL of the server.
    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Send SIGTERM and wait for a clean exit; returns the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for serve") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not exit within 10 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Open descriptors of the server process (`/proc/<pid>/fd`).
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("reading the server's /proc/<pid>/fd")
            .count()
    }

    /// A numeric field of `/proc/<pid>/status`: `VmRSS`, `VmHWM` (KiB), `Threads`.
    pub fn status_field(&self, key: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("reading the server's /proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in /proc/<pid>/status"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw protocol connection with a read timeout.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Connect and consume the INFO line.
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("connecting");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut raw = Raw {
            stream,
            buf: Vec::new(),
        };
        let info = raw.line();
        assert!(info.starts_with("INFO {"), "first line was {info:?}");
        raw
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("writing");
    }

    /// Read one CRLF-terminated line (without the CRLF). Panics on timeout or EOF.
    pub fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return line;
            }
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk).expect("reading a line");
            assert!(
                n > 0,
                "connection closed while waiting for a line; have {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Read exactly `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            let mut chunk = [0u8; 65536];
            let got = self.stream.read(&mut chunk).expect("reading bytes");
            assert!(got > 0, "connection closed while waiting for bytes");
            self.buf.extend_from_slice(&chunk[..got]);
        }
        self.buf.drain(..n).collect()
    }

    /// Whether the server closes the connection within 5 s (EOF or reset), after consuming
    /// anything still buffered.
    pub fn is_closed_by_server(&mut self) -> bool {
        self.buf.clear();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut chunk = [0u8; 4096];
        while Instant::now() < deadline {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return false
                }
                Err(_) => return true,
            }
        }
        false
    }

    /// PING and wait for the PONG: everything sent before has been processed.
    pub fn sync(&mut self) {
        self.send(b"PING\r\n");
        assert_eq!(self.line(), "PONG");
    }
}

/// The runtime rows the binary serves (`fanbench runtimes --json`), for the tests that check
/// a suite covers every row.
pub fn runtime_rows() -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_fanbench"))
        .args(["runtimes", "--json"])
        .output()
        .expect("fanbench runtimes runs");
    assert!(
        out.status.success(),
        "fanbench runtimes --json: {}",
        out.status
    );
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).expect("fanbench runtimes --json prints JSON");
    rows.iter()
        .map(|row| {
            row["name"]
                .as_str()
                .expect("each row has a name")
                .to_string()
        })
        .collect()
}
