//! The server under test as a child process: started pinned to the server CPU set, awaited
//! until it answers the protocol (`INFO`), stopped with SIGTERM (then SIGKILL).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Seek};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

use crate::cpus;

/// How long a server gets to answer after it was started.
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a server gets to exit after SIGTERM before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything needed to start one server.
#[derive(Debug, Clone)]
pub struct ServerCommand {
    pub program: PathBuf,
    /// What to record as argv[0] when `program` is not telling (`/proc/self/exe`).
    pub shown_as: Option<String>,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// The process (and every thread it creates) is confined to these CPUs.
    pub cpus: Vec<usize>,
    /// Where it will listen (it must answer INFO there).
    pub addr: SocketAddr,
}

impl ServerCommand {
    /// argv as recorded in the results.
    pub fn argv(&self) -> Vec<String> {
        let program = match &self.shown_as {
            Some(shown) => format!("{shown} (via {})", self.program.display()),
            None => self.program.display().to_string(),
        };
        std::iter::once(program)
            .chain(self.args.iter().cloned())
            .collect()
    }
}

/// A running server. Dropping it kills the process.
pub struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    log: std::fs::File,
}

/// How the server ended.
#[derive(Debug, Clone)]
pub struct Stopped {
    pub status: ExitStatus,
    /// True when SIGTERM was not enough and SIGKILL was needed.
    pub killed: bool,
}

/// A free TCP port on 127.0.0.1 (bound and released; the server binds it right after).
pub fn free_local_addr() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free local port")?;
    listener.local_addr().context("reading the free port")
}

impl ServerProcess {
    /// Starts the server with its stdout/stderr going to `log_path`, pinned to `cmd.cpus`, and
    /// waits until it answers `INFO` on `cmd.addr`.
    pub fn start(cmd: &ServerCommand, log_path: &Path) -> anyhow::Result<ServerProcess> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(log_path)
            .with_context(|| format!("creating server log {}", log_path.display()))?;
        let set = cpus::cpu_set(&cmd.cpus)?;
        let mut command = Command::new(&cmd.program);
        command
            .args(&cmd.args)
            .envs(&cmd.env)
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("duplicating the log fd")?)
            .stderr(log.try_clone().context("duplicating the log fd")?);
        // SAFETY: the closure runs in the forked child before exec and only makes the
        // async-signal-safe sched_setaffinity syscall (no allocation, no lock) on a cpu_set_t
        // built before the fork.
        unsafe {
            command.pre_exec(move || cpus::set_current_thread_affinity(&set));
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", cmd.argv().join(" ")))?;
        let mut server = ServerProcess {
            child,
            addr: cmd.addr,
            log,
        };
        server
            .wait_ready(READY_TIMEOUT)
            .with_context(|| format!("server {}", cmd.argv().join(" ")))?;
        Ok(server)
    }

    /// The exit status if the server has exited (it is then reaped), else None.
    pub fn exit_status(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        self.child.try_wait().context("checking the server process")
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls until a connection to the server receives an `INFO` line, or the process exits,
    /// or `timeout` passes.
    fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last_err = anyhow!("never tried");
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .try_wait()
                .context("checking the server process")?
            {
                bail!(
                    "exited with {status} before answering; its output:\n{}",
                    self.log_tail(4096)
                );
            }
            match probe_info(self.addr) {
                Ok(()) => return Ok(()),
                Err(err) => last_err = err,
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(last_err).with_context(|| {
            format!(
                "did not answer INFO on {} within {timeout:?}; its output:\n{}",
                self.addr,
                self.log_tail(4096)
            )
        })
    }

    /// The last `max` bytes of the server's output.
    pub fn log_tail(&self, max: u64) -> String {
        let mut file = &self.log;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut text = String::new();
        if file
            .seek(std::io::SeekFrom::Start(len.saturating_sub(max)))
            .is_ok()
        {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// Sends `sig` to the server process.
    pub fn signal(&self, sig: libc::c_int) -> anyhow::Result<()> {
        let pid = libc::pid_t::try_from(self.child.id()).context("pid out of range")?;
        // SAFETY: kill has no memory-safety preconditions; the pid is our own child, not yet
        // reaped (we hold `Child`), so it cannot have been recycled.
        if unsafe { libc::kill(pid, sig) } != 0 {
            return Err(std::io::Error::last_os_error()).context("signalling the server");
        }
        Ok(())
    }

    /// SIGTERM, wait up to `timeout`, then SIGKILL.
    pub fn stop(mut self, timeout: Duration) -> anyhow::Result<Stopped> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(Stopped {
                status,
                killed: false,
            });
        }
        self.signal(libc::SIGTERM)?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Stopped {
                    status,
                    killed: false,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill().context("killing the server")?;
        let status = self.child.wait().context("reaping the server")?;
        Ok(Stopped {
            status,
            killed: true,
        })
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Connects and reads the first line; Ok when it is `INFO {...}`.
pub fn probe_info(addr: SocketAddr) -> anyhow::Result<()> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
        .with_context(|| format!("connecting to {addr}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .context("setting a read timeout")?;
    let mut line = String::new();
    BufReader::new(stream.take(64 * 1024))
        .read_line(&mut line)
        .with_context(|| format!("reading INFO from {addr}"))?;
    if line.starts_with("INFO ") {
        Ok(())
    } else {
        bail!("{addr} answered {:?} instead of INFO", line.trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_rejects_a_server_that_does_not_speak_the_protocol() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            std::io::Write::write_all(&mut conn, b"HTTP/1.1 400 Bad Request\r\n").expect("write");
        });
        let err = format!("{:#}", probe_info(addr).unwrap_err());
        handle.join().expect("thread");
        assert!(err.contains("instead of INFO"), "{err}");
    }

    #[test]
    fn a_server_that_exits_early_is_reported_with_its_output() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cmd = ServerCommand {
            program: "/bin/sh".into(),
            shown_as: None,
            args: vec!["-c".into(), "echo cannot bind >&2; exit 3".into()],
            env: BTreeMap::new(),
            cpus: vec![0],
            addr: free_local_addr().expect("port"),
        };
        let err = ServerProcess::start(&cmd, &dir.path().join("log"))
            .err()
            .expect("must fail");
        let text = format!("{err:#}");
        assert!(text.contains("cannot bind"), "{text}");
        assert!(text.contains("exit status: 3"), "{text}");
    }

    #[test]
    fn child_is_pinned_to_the_requested_cpu() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("affinity");
        // The child records its own allowed CPU list, then dies (so start() fails: no INFO).
        let cmd = ServerCommand {
            program: "/bin/sh".into(),
            shown_as: None,
            args: vec![
                "-c".into(),
                format!(
                    "grep Cpus_allowed_list /proc/self/status > {}",
                    out.display()
                ),
            ],
            env: BTreeMap::new(),
            cpus: vec![0],
            addr: free_local_addr().expect("port"),
        };
        let _ = ServerProcess::start(&cmd, &dir.path().join("log"));
        let text = std::fs::read_to_string(&out).expect("child wrote its affinity");
        assert_eq!(text.split(':').nth(1).map(str::trim), Some("0"), "{text}");
    }
}
