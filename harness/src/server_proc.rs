//! The server under test as a child process: started pinned to the server CPU set, awaited
//! until it answers the protocol (`INFO`), stopped with SIGTERM (then SIGKILL).
//!
//! # No server outlives the harness
//!
//! - Every server is started with `PR_SET_PDEATHSIG` = SIGKILL, so a harness killed with
//!   SIGKILL (or crashing) takes its servers with it. The kernel sends that signal when the
//!   *thread* that forked the child exits, not the process, so every server is spawned by one
//!   spawner thread that lives as long as the process ([`spawn_child`]).
//! - Every running server's pid is in one registry ([`LIVE`]), so the interrupt handler can
//!   stop them all ([`signal_all`]). A pid leaves the registry in the same critical section
//!   that reaps it, so a signal can never reach a recycled pid.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Seek};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
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

/// Pids of the servers started and not yet reaped.
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Sends `sig` to every server started and not yet reaped (the interrupt handler).
pub fn signal_all(sig: libc::c_int) {
    let live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    for &pid in live.iter() {
        if let Ok(pid) = libc::pid_t::try_from(pid) {
            // SAFETY: kill has no memory-safety preconditions; the pid is a child of ours
            // that has not been reaped (reaping removes it under this lock), so it cannot
            // have been recycled.
            unsafe { libc::kill(pid, sig) };
        }
    }
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns `command` on the spawner thread (started on first use, never ending), so that the
/// child's `PR_SET_PDEATHSIG` fires only when the whole harness dies.
fn spawn_child(command: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        let started = std::thread::Builder::new()
            .name("fanbench-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            });
        if let Err(e) = started {
            eprintln!("fanbench: cannot start the spawner thread: {e}");
        }
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((command, reply_tx))
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| std::io::Error::other("the spawner thread dropped the request"))?
}

/// The server died while it was being measured: how it ended and what it said last.
#[derive(Debug, Clone)]
pub struct ServerDied {
    pub status: ExitStatus,
    /// The last lines of its output.
    pub log_tail: String,
}

impl ServerDied {
    /// The signal that killed it, if one did.
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }

    /// Its exit code, if it exited.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

impl std::fmt::Display for ServerDied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the server died ({})", self.status)?;
        if !self.log_tail.trim().is_empty() {
            write!(f, "; its last output:\n{}", self.log_tail.trim_end())?;
        }
        Ok(())
    }
}

impl std::error::Error for ServerDied {}

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
        let parent = std::process::id();
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe syscalls (sched_setaffinity, prctl, getppid; no allocation, no
        // lock) on values built before the fork.
        unsafe {
            command.pre_exec(move || {
                cpus::set_current_thread_affinity(&set)?;
                die_with_parent(parent)
            });
        }
        let argv = cmd.argv().join(" ");
        let child = {
            // Registered before anyone can reap it: the lock is held from spawn to push.
            let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
            let child = spawn_child(command).with_context(|| format!("starting {argv}"))?;
            live.push(child.id());
            child
        };
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

    /// `try_wait`, dropping the pid from the registry in the same critical section.
    fn try_reap(&mut self) -> std::io::Result<Option<ExitStatus>> {
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        let status = self.child.try_wait()?;
        if status.is_some() {
            live.retain(|&p| p != self.child.id());
        }
        Ok(status)
    }

    /// SIGKILL and a blocking reap, under the registry lock.
    fn kill_and_reap(&mut self) -> std::io::Result<ExitStatus> {
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(status) = self.child.try_wait()? {
            live.retain(|&p| p != self.child.id());
            return Ok(status);
        }
        self.child.kill()?;
        let status = self.child.wait()?;
        live.retain(|&p| p != self.child.id());
        Ok(status)
    }

    /// How the server died, if it has exited (it is then reaped).
    pub fn death(&mut self) -> Option<ServerDied> {
        let status = self.try_reap().ok().flatten()?;
        Some(ServerDied {
            status,
            log_tail: last_lines(&self.log_tail(8192), LOG_TAIL_LINES),
        })
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
            if let Some(status) = self.try_reap().context("checking the server process")? {
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
        if let Some(status) = self.try_reap()? {
            return Ok(Stopped {
                status,
                killed: false,
            });
        }
        self.signal(libc::SIGTERM)?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.try_reap()? {
                return Ok(Stopped {
                    status,
                    killed: false,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let status = self.kill_and_reap().context("killing the server")?;
        Ok(Stopped {
            status,
            killed: true,
        })
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.kill_and_reap();
    }
}

/// Lines of a dead server's output a failure record keeps.
pub const LOG_TAIL_LINES: usize = 20;

/// The last `n` lines of `text`.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// In the forked child: ask for SIGKILL when the parent dies, and exit if it already has
/// (it may have died between fork and prctl, when the request would never fire).
fn die_with_parent(parent: u32) -> std::io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and has no memory-safety
    // preconditions; it is async-signal-safe.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: getppid has no preconditions.
    if u32::try_from(unsafe { libc::getppid() }).ok() != Some(parent) {
        // No allocation after fork: a raw errno, not a message.
        return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(())
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
    fn last_lines_keeps_the_tail() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("a", 5), "a");
        assert_eq!(last_lines("", 5), "");
    }

    #[test]
    fn a_server_that_dies_is_reported_with_its_signal_and_output() {
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        // A shell cannot listen: a thread of ours answers the readiness probe, and the
        // "server" is a shell that prints and then kills itself.
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            std::io::Write::write_all(&mut conn, b"INFO {}\r\n").expect("write");
        });
        let cmd = ServerCommand {
            program: "/bin/sh".into(),
            shown_as: None,
            args: vec!["-c".into(), "echo last words; sleep 0.3; kill -9 $$".into()],
            env: BTreeMap::new(),
            cpus: vec![0],
            addr,
        };
        let mut server = ServerProcess::start(&cmd, &dir.path().join("log")).expect("start");
        handle.join().expect("probe thread");
        let deadline = Instant::now() + Duration::from_secs(5);
        let death = loop {
            if let Some(death) = server.death() {
                break death;
            }
            assert!(Instant::now() < deadline, "the shell did not die");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(death.signal(), Some(libc::SIGKILL));
        assert_eq!(death.code(), None);
        assert!(death.log_tail.contains("last words"), "{death}");
        assert!(!LIVE.lock().expect("registry").contains(&server.pid()));
    }

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
