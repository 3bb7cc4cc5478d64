//! The controller side: start the agents (`sh -c CMD`), measure their clocks, split the load,
//! run every repetition on all of them at a common instant, and merge what they measured.
//!
//! Split: every publisher runs on the first agent; the subscribers (ids `0 .. P x S`) are cut
//! into contiguous, nearly equal ranges, one per agent in `--agent` order. The first agent's
//! subscribers measure end-to-end latency on the publishers' own clock (the result's latency);
//! the others count delivery, loss and order into the result, and their latency, corrected by
//! the measured clock offset, is recorded per agent with the offset's error bound (null when
//! the bound is wider than the latency's median).

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::merge::merge;
use super::protocol::{FromAgent, Hello, Prepare, ToAgent};
use crate::loadgen::{now_ns, LoadReport, GRACE_MAX, READY_TIMEOUT};
use crate::measure::record;
use crate::metrics::ServerSampler;
use crate::results::schema::{
    GitInfo, HostInfo, Measured, Percentiles, Repetition, RuntimeConfig, RuntimeKind, Scenario,
    ScenarioResult,
};
use crate::results::summary::summarize;
use crate::results::write::{percentiles_us_from_ns, serialize_histogram};
use crate::sysinfo;

/// Clock probes per agent; the one with the smallest round trip is kept.
pub const CLOCK_PROBES: usize = 16;
/// Time an agent has to say hello after it was started (ssh may ask the network first).
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(30);
/// Least time between sending the start instant and the start itself.
const START_LEAD: Duration = Duration::from_millis(300);

/// What the latency figures of a run with agents are: recorded in the results.
pub const LATENCY_RULE: &str = "publishers run on agent 0; the result's latency, service \
     latency, pacing lag and per-second latency are agent 0's subscribers' (end to end, one \
     clock); counts are summed over every agent; each other agent's latency is in its own \
     entry, corrected by the measured clock offset, null when the offset's error bound is \
     wider than its median";

/// The results' `agents` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentsSection {
    /// True when an agent failed: the result holds only the repetitions (or the agents) that
    /// completed, and is marked invalid.
    pub partial: bool,
    /// Why the run ended early (names the agent), or null.
    pub failure: Option<String>,
    pub latency_rule: String,
    pub agents: Vec<AgentRecord>,
}

/// One agent: who it is, its share of the load, its clock and what it measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub index: u32,
    /// The command it was started with (`sh -c`).
    pub command: String,
    /// From its hello (null when it never said hello).
    pub fanbench: Option<String>,
    pub git: Option<GitInfo>,
    pub host: Option<HostInfo>,
    /// "publishers+subscribers" or "subscribers".
    pub role: String,
    pub publishers: u32,
    /// Subscriber ids `[from, to)` it ran.
    pub subscribers_from: u32,
    pub subscribers_to: u32,
    /// Its CLOCK_MONOTONIC minus the controller's (ns), and the error bound (round trip / 2)
    /// of the probe it was taken from; null when it was not measured.
    pub clock_offset_ns: Option<i64>,
    pub clock_offset_bound_ns: Option<u64>,
    pub clock_probe_rtt_ns: Option<u64>,
    /// Error bound of its subscribers' latency: 0 on the publishers' agent, else the sum of
    /// both agents' offset bounds.
    pub latency_clock_bound_ns: Option<u64>,
    pub repetitions: Vec<AgentRepetition>,
    /// What went wrong with it, or null.
    pub error: Option<String>,
}

/// What one agent measured in one repetition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRepetition {
    pub index: u32,
    pub sent: u64,
    pub expected: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub received_in_window: u64,
    /// Its subscribers' latency (us), corrected by the clock offset; null with the reason
    /// when there is none or the clock bound is wider than its median.
    pub latency_us: Option<Percentiles>,
    pub latency_null_reason: Option<String>,
    /// The latency histogram (ns, base64 of the V2 serialization).
    pub latency_histogram: String,
    /// Its load generator's CPU (user + sys) over the window, and its cores.
    pub cpu_s: f64,
    pub cores: usize,
    pub behind_schedule: bool,
    pub errors: Vec<String>,
}

/// Outcome of a run with agents: the result of what was measured (None when nothing was), the
/// `agents` section, and the failure that ended the run early.
pub struct AgentRun {
    pub result: Option<ScenarioResult>,
    pub section: AgentsSection,
    pub failure: Option<anyhow::Error>,
}

type Event = (usize, Result<FromAgent, String>);

struct Agent {
    command: String,
    child: Child,
    stdin: Option<ChildStdin>,
}

struct Agents {
    agents: Vec<Agent>,
    events: mpsc::Receiver<Event>,
    /// Messages that arrived from one agent while the controller waited for another.
    pending: Vec<std::collections::VecDeque<Result<FromAgent, String>>>,
}

impl Agents {
    fn start(commands: &[String]) -> Result<Self> {
        let (tx, events) = mpsc::channel();
        let mut agents = Vec::new();
        for (i, command) in commands.iter().enumerate() {
            let spawned = Command::new("sh")
                .arg("-c")
                .arg(command)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .with_context(|| format!("starting agent {i} (sh -c {command:?})"));
            let mut child = match spawned {
                Ok(c) => c,
                Err(e) => {
                    let mut started = Agents {
                        agents,
                        events,
                        pending: Vec::new(),
                    };
                    started.stop();
                    return Err(e);
                }
            };
            let stdout = child.stdout.take().context("agent stdout was not piped")?;
            let stdin = child.stdin.take();
            let tx = tx.clone();
            std::thread::Builder::new()
                .name(format!("agent-{i}-reader"))
                .spawn(move || read_agent(i, stdout, tx))
                .context("spawning an agent reader thread")?;
            agents.push(Agent {
                command: command.clone(),
                child,
                stdin,
            });
        }
        let pending = agents.iter().map(|_| Default::default()).collect();
        Ok(Agents {
            agents,
            events,
            pending,
        })
    }

    fn name(&self, i: usize) -> String {
        format!("agent {i} ({})", self.agents[i].command)
    }

    fn send(&mut self, i: usize, message: &ToAgent) -> Result<()> {
        let name = self.name(i);
        let stdin = self.agents[i]
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow!("{name}: its stdin is closed"))?;
        let mut line = serde_json::to_vec(message).context("encoding a message")?;
        line.push(b'\n');
        stdin
            .write_all(&line)
            .and_then(|()| stdin.flush())
            .with_context(|| format!("{name}: writing to its stdin (did it exit?)"))
    }

    /// The next message of agent `i`, waiting until `deadline`.
    fn next_from(&mut self, i: usize, deadline: Instant) -> Result<FromAgent> {
        loop {
            if let Some(m) = self.pending[i].pop_front() {
                return self.check(i, m);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok((j, m)) if j == i => return self.check(i, m),
                Ok((j, m)) => self.pending[j].push_back(m),
                Err(_) => bail!("{}: no answer in time", self.name(i)),
            }
        }
    }

    /// The next message of any agent, waiting until `deadline`.
    fn next_any(&mut self, deadline: Instant) -> Option<(usize, Result<FromAgent>)> {
        for i in 0..self.pending.len() {
            if let Some(m) = self.pending[i].pop_front() {
                return Some((i, self.check(i, m)));
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let (i, m) = self.events.recv_timeout(left).ok()?;
        Some((i, self.check(i, m)))
    }

    fn check(&mut self, i: usize, m: Result<FromAgent, String>) -> Result<FromAgent> {
        match m {
            Ok(FromAgent::Error { message }) => bail!("{}: {message}", self.name(i)),
            Ok(m) => Ok(m),
            Err(why) => {
                let status = self.agents[i]
                    .child
                    .try_wait()
                    .ok()
                    .flatten()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default();
                bail!("{}: {why}{status}", self.name(i))
            }
        }
    }

    /// Closes every agent's stdin (they exit on end of input), then kills what is left.
    fn stop(&mut self) {
        for a in &mut self.agents {
            a.stdin = None;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for a in &mut self.agents {
            while matches!(a.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(a.child.try_wait(), Ok(None)) {
                let _ = a.child.kill();
                let _ = a.child.wait();
            }
        }
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_agent(i: usize, stdout: std::process::ChildStdout, tx: mpsc::Sender<Event>) {
    for line in BufReader::new(stdout).lines() {
        let event = match line {
            Ok(l) if l.trim().is_empty() => continue,
            Ok(l) => serde_json::from_str::<FromAgent>(&l).map_err(|e| {
                format!(
                    "sent a line that is not an agent message ({e}): {}",
                    super::clip(&l)
                )
            }),
            Err(e) => Err(format!("reading its output: {e}")),
        };
        let stop = event.is_err();
        if tx.send((i, event)).is_err() || stop {
            return;
        }
    }
    let _ = tx.send((i, Err("closed its output (exited)".to_string())));
}

/// Measures `scenario` against the server at `target` with the load split over agents started
/// by `commands`.
pub fn measure_with_agents(
    label: &str,
    target: SocketAddr,
    scenario: &Scenario,
    commands: &[String],
) -> AgentRun {
    let total = scenario
        .publishers
        .saturating_mul(scenario.subscribers_per_publisher);
    let shares = split(total, commands.len());
    let mut section = AgentsSection {
        partial: false,
        failure: None,
        latency_rule: LATENCY_RULE.to_string(),
        agents: commands
            .iter()
            .zip(&shares)
            .enumerate()
            .map(|(i, (command, range))| AgentRecord {
                index: i as u32,
                command: command.clone(),
                fanbench: None,
                git: None,
                host: None,
                role: if i == 0 {
                    "publishers+subscribers"
                } else {
                    "subscribers"
                }
                .into(),
                publishers: if i == 0 { scenario.publishers } else { 0 },
                subscribers_from: range.start,
                subscribers_to: range.end,
                clock_offset_ns: None,
                clock_offset_bound_ns: None,
                clock_probe_rtt_ns: None,
                latency_clock_bound_ns: None,
                repetitions: Vec::new(),
                error: None,
            })
            .collect(),
    };
    let mut repetitions = Vec::new();
    let failure = drive(
        target,
        scenario,
        commands,
        &shares,
        &mut section,
        &mut repetitions,
    )
    .err();
    if let Some(e) = &failure {
        section.partial = true;
        section.failure = Some(format!("{e:#}"));
    }
    let result = if repetitions.is_empty() {
        None
    } else {
        match assemble(label, target, scenario, repetitions, failure.as_ref()) {
            Ok(r) => Some(r),
            Err(e) => {
                return AgentRun {
                    result: None,
                    section,
                    failure: Some(
                        failure.map_or(e, |f| f.context("and assembling the result failed")),
                    ),
                }
            }
        }
    };
    AgentRun {
        result,
        section,
        failure,
    }
}

/// Subscriber ids `0..total` cut into `agents` contiguous ranges, sizes differing by at most one.
pub fn split(total: u32, agents: usize) -> Vec<std::ops::Range<u32>> {
    let n = agents.max(1) as u64;
    (0..n)
        .map(|i| ((u64::from(total) * i / n) as u32)..((u64::from(total) * (i + 1) / n) as u32))
        .collect()
}

fn drive(
    target: SocketAddr,
    scenario: &Scenario,
    commands: &[String],
    shares: &[std::ops::Range<u32>],
    section: &mut AgentsSection,
    repetitions: &mut Vec<Repetition>,
) -> Result<()> {
    if commands.is_empty() {
        bail!("no --agent command given");
    }
    if let Some((i, _)) = shares.iter().enumerate().find(|(_, r)| r.is_empty()) {
        bail!(
            "agent {i} would get no subscriber: {} agents for {} subscribers",
            commands.len(),
            scenario.publishers * scenario.subscribers_per_publisher
        );
    }
    // The server is not probed from here: only the agents need to reach it (the controller
    // may sit on another network); an agent that cannot connect fails the run by name.
    let mut agents = Agents::start(commands)?;
    let n = commands.len();
    let hello_deadline = Instant::now() + HELLO_TIMEOUT;
    for i in 0..n {
        match agents.next_from(i, hello_deadline)? {
            FromAgent::Hello(Hello {
                fanbench,
                git,
                host,
                ..
            }) => {
                // One protocol per version: an agent of another version is refused, not guessed at.
                if fanbench != env!("CARGO_PKG_VERSION") {
                    bail!(
                        "{}: runs fanbench {fanbench}, this controller {}",
                        agents.name(i),
                        env!("CARGO_PKG_VERSION")
                    );
                }
                let record = &mut section.agents[i];
                record.fanbench = Some(fanbench);
                record.git = Some(git);
                record.host = Some(host);
            }
            other => bail!("{}: expected hello, got {}", agents.name(i), kind(&other)),
        }
    }
    let mut offsets = Vec::new();
    for i in 0..n {
        let (offset, rtt) = probe_clock(&mut agents, i)?;
        let record = &mut section.agents[i];
        record.clock_offset_ns = Some(offset);
        record.clock_offset_bound_ns = Some(rtt.div_ceil(2));
        record.clock_probe_rtt_ns = Some(rtt);
        offsets.push((offset, rtt.div_ceil(2)));
    }
    for i in 0..n {
        section.agents[i].latency_clock_bound_ns = Some(if i == 0 {
            0
        } else {
            offsets[i].1 + offsets[0].1
        });
    }
    let warmup = Duration::try_from_secs_f64(scenario.warmup_s).context("warm-up")?;
    let duration = Duration::try_from_secs_f64(scenario.duration_s).context("duration")?;
    for index in 0..scenario.repetitions {
        let started_at = sysinfo::rfc3339(SystemTime::now());
        let run_token = format!("{:x}a{index}", now_ns() & 0xffff_ffff);
        for (i, share) in shares.iter().enumerate() {
            let prepare = Prepare {
                target,
                publishers: scenario.publishers,
                subscribers_per_publisher: scenario.subscribers_per_publisher,
                rate_per_publisher: scenario.rate_per_publisher,
                payload_bytes: scenario.payload_bytes,
                warmup_ns: warmup.as_nanos() as u64,
                duration_ns: duration.as_nanos() as u64,
                slow_subscribers: scenario.slow_subscribers,
                slow_read_bytes_per_s: scenario.slow_read_bytes_per_s,
                run_token: run_token.clone(),
                send: i == 0,
                subscribers: share.clone(),
                publisher_clock_offset_ns: if i == 0 {
                    0
                } else {
                    offsets[i].0 - offsets[0].0
                },
            };
            agents.send(i, &ToAgent::Prepare(prepare))?;
        }
        let ready_deadline = Instant::now() + READY_TIMEOUT + Duration::from_secs(10);
        for i in 0..n {
            match agents.next_from(i, ready_deadline)? {
                FromAgent::Ready => {}
                other => bail!("{}: expected ready, got {}", agents.name(i), kind(&other)),
            }
        }
        let max_rtt = offsets.iter().map(|o| o.1 * 2).max().unwrap_or(0);
        let start_ns = now_ns() + (START_LEAD.as_nanos() as u64).max(4 * max_rtt);
        for (i, (offset, _)) in offsets.iter().enumerate() {
            let start = start_ns.saturating_add_signed(*offset);
            agents.send(i, &ToAgent::Start { start_ns: start })?;
        }
        let end = Duration::from_nanos(start_ns.saturating_sub(now_ns()))
            + warmup
            + duration
            + GRACE_MAX
            + Duration::from_secs(30);
        let collect_deadline = Instant::now() + end;
        let mut reports: Vec<Option<LoadReport>> = (0..n).map(|_| None).collect();
        let mut failures: Vec<String> = Vec::new();
        let mut open: Vec<bool> = vec![true; n];
        while open.iter().any(|o| *o) {
            let Some((i, event)) = agents.next_any(collect_deadline) else {
                for i in (0..n).filter(|&i| open[i]) {
                    let why = format!("{}: no report in time", agents.name(i));
                    section.agents[i].error = Some(why.clone());
                    failures.push(why);
                }
                break;
            };
            if !open[i] {
                continue;
            }
            match event.and_then(|m| match m {
                FromAgent::Report(report) => Ok(Some(*report)),
                FromAgent::Second { index: s } => {
                    if i == 0 {
                        eprintln!(
                            "fanbench: {} repetition {index}: second {} of {} measured",
                            scenario.name,
                            s + 1,
                            duration.as_secs_f64().ceil() as u64
                        );
                    }
                    Ok(None)
                }
                other => bail!(
                    "{}: unexpected {} while running",
                    agents.name(i),
                    kind(&other)
                ),
            }) {
                Ok(Some(report)) => {
                    reports[i] = Some(report);
                    open[i] = false;
                }
                Ok(None) => {}
                Err(e) => {
                    let why = format!("{e:#}");
                    section.agents[i].error = Some(why.clone());
                    failures.push(why);
                    open[i] = false;
                }
            }
        }
        for (i, report) in reports.iter().enumerate() {
            if let Some(r) = report {
                let bound = section.agents[i].latency_clock_bound_ns;
                let rep = agent_repetition(index, r, i, bound)?;
                section.agents[i].repetitions.push(rep);
            }
        }
        let available: Vec<(usize, LoadReport)> = reports
            .into_iter()
            .enumerate()
            .filter_map(|(i, r)| r.map(|r| (i, r)))
            .collect();
        if let Some(mut merged) = merge(available, 0) {
            if !failures.is_empty() {
                merged
                    .errors
                    .push(format!("partial: {}", failures.join("; ")));
            }
            let mut sampler = ServerSampler::without_pid(
                "server measured through agents: its pid is not known here",
            );
            crate::loadgen::WindowHooks::measure_start(&mut sampler);
            crate::loadgen::WindowHooks::measure_end(&mut sampler);
            let (server_metrics, server_headline) = sampler.finish(&merged);
            repetitions.push(record::repetition(
                index,
                started_at,
                &merged,
                server_metrics,
                server_headline,
                record::RepetitionPlacement {
                    client_cpus: &[],
                    server_cores: None,
                    payload_bytes: scenario.payload_bytes,
                },
            )?);
        }
        if !failures.is_empty() {
            bail!("repetition {index}: {}", failures.join("; "));
        }
    }
    agents.stop();
    Ok(())
}

fn kind(m: &FromAgent) -> &'static str {
    match m {
        FromAgent::Hello(_) => "hello",
        FromAgent::Probe { .. } => "probe",
        FromAgent::Ready => "ready",
        FromAgent::Second { .. } => "second",
        FromAgent::Report(_) => "report",
        FromAgent::Error { .. } => "error",
    }
}

/// (agent clock - controller clock, round trip) of the probe with the smallest round trip.
fn probe_clock(agents: &mut Agents, i: usize) -> Result<(i64, u64)> {
    let mut best: Option<(i64, u64)> = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    for _ in 0..CLOCK_PROBES {
        let sent = now_ns();
        agents.send(
            i,
            &ToAgent::Probe {
                controller_ns: sent,
            },
        )?;
        let (echoed, agent_ns) = match agents.next_from(i, deadline)? {
            FromAgent::Probe {
                controller_ns,
                agent_ns,
            } => (controller_ns, agent_ns),
            other => bail!(
                "{}: expected a probe answer, got {}",
                agents.name(i),
                kind(&other)
            ),
        };
        let back = now_ns();
        if echoed != sent {
            bail!("{}: answered a probe it was not sent", agents.name(i));
        }
        let rtt = back - sent;
        let offset = agent_ns as i64 - (sent + rtt / 2) as i64;
        if best.is_none_or(|(_, r)| rtt < r) {
            best = Some((offset, rtt));
        }
    }
    best.ok_or_else(|| anyhow!("no clock probe"))
}

fn agent_repetition(
    index: u32,
    r: &LoadReport,
    agent: usize,
    bound_ns: Option<u64>,
) -> Result<AgentRepetition> {
    let p = percentiles_us_from_ns(&r.latency);
    let (latency_us, latency_null_reason) = match (p, bound_ns) {
        (None, _) => (None, Some("no in-window message was received".to_string())),
        (Some(_), None) => (None, Some("the clock offset was not measured".to_string())),
        (Some(p), Some(bound)) if agent != 0 && bound as f64 / 1000.0 > p.p50 => (
            None,
            Some(format!(
                "the clock offset's error bound ({:.1} us) is wider than the latency median ({:.1} us)",
                bound as f64 / 1000.0,
                p.p50
            )),
        ),
        (Some(p), Some(_)) => (Some(p), None),
    };
    Ok(AgentRepetition {
        index,
        sent: r.sent,
        expected: r.expected,
        delivered: r.delivered,
        lost: r.lost,
        duplicates: r.duplicates,
        reordered: r.reordered,
        received_in_window: r.received_in_window,
        latency_us,
        latency_null_reason,
        latency_histogram: serialize_histogram(&r.latency)?,
        cpu_s: r.loadgen_cpu.user_s + r.loadgen_cpu.sys_s,
        cores: r.loadgen_cpu.cores,
        behind_schedule: r.behind_schedule,
        errors: r.errors.clone(),
    })
}

fn assemble(
    label: &str,
    target: SocketAddr,
    scenario: &Scenario,
    repetitions: Vec<Repetition>,
    failure: Option<&anyhow::Error>,
) -> Result<ScenarioResult> {
    let runtime_config = RuntimeConfig {
        name: label.to_string(),
        kind: RuntimeKind::External,
        command: Vec::new(),
        env: Default::default(),
        target: target.to_string(),
        server_cpus: None,
        client_cpus: Vec::new(),
        server_pid: None,
        uring_policy: None,
        cpus_used: None,
    };
    let summary = summarize(&repetitions)?;
    let mut invalid_reasons: Vec<String> = repetitions
        .iter()
        .flat_map(|r| {
            r.invalid_reasons
                .iter()
                .map(move |why| format!("rep {}: {why}", r.index))
        })
        .collect();
    if let Some(e) = failure {
        invalid_reasons.push(format!("partial: an agent failed: {e:#}"));
    }
    Ok(ScenarioResult {
        scenario: scenario.name.clone(),
        runtime: label.to_string(),
        scenario_config: scenario.clone(),
        runtime_config,
        valid: failure.is_none() && repetitions.iter().all(|r| r.valid),
        invalid_reasons,
        repetitions,
        summary,
        server_stats: Measured::null(
            "server measured through agents: its own counters are not collected",
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_every_subscriber_once_in_near_equal_ranges() {
        assert_eq!(split(100, 2), vec![0..50, 50..100]);
        assert_eq!(split(10, 3), vec![0..3, 3..6, 6..10]);
        assert_eq!(split(1, 2), vec![0..0, 0..1]);
        let ranges = split(1001, 7);
        assert_eq!(ranges.first().map(|r| r.start), Some(0));
        assert_eq!(ranges.last().map(|r| r.end), Some(1001));
        assert!(ranges.windows(2).all(|w| w[0].end == w[1].start));
    }

    #[test]
    fn messages_round_trip_as_one_json_line() {
        let m = ToAgent::Start { start_ns: 42 };
        let line = serde_json::to_string(&m).expect("encodes");
        assert!(!line.contains('\n'));
        assert_eq!(line, r#"{"type":"start","start_ns":42}"#);
        let back: FromAgent =
            serde_json::from_str(r#"{"type":"probe","controller_ns":1,"agent_ns":2}"#)
                .expect("decodes");
        assert!(matches!(
            back,
            FromAgent::Probe {
                controller_ns: 1,
                agent_ns: 2
            }
        ));
    }

    fn rep_with_latency(ns: u64) -> LoadReport {
        super::super::merge::tests::report(ns, 1, 0)
    }

    #[test]
    fn remote_latency_is_null_when_the_clock_bound_is_wider_than_its_median() {
        let r = rep_with_latency(50_000);
        let narrow = agent_repetition(0, &r, 1, Some(10_000)).expect("rep");
        assert!(narrow.latency_us.is_some());
        let wide = agent_repetition(0, &r, 1, Some(80_000)).expect("rep");
        assert!(wide.latency_us.is_none());
        assert!(wide
            .latency_null_reason
            .as_deref()
            .is_some_and(|w| w.contains("wider")));
        // The publishing agent's own subscribers are on its clock: no bound applies.
        let own = agent_repetition(0, &r, 0, Some(0)).expect("rep");
        assert!(own.latency_us.is_some());
    }
}
