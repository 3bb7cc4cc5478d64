//! Load from several processes or hosts: `fanbench agent --stdio` runs a share of the load
//! generator's work for a controller (`fanbench run --target ... --agent CMD ...`), which
//! starts each agent with a command of the user's (`ssh -T host fanbench agent --stdio`,
//! `ip netns exec ns fanbench agent --stdio`, ...) and talks to it over the command's stdin
//! and stdout, one JSON object per line ([`protocol`]).
//!
//! The agent reuses the ordinary load generator through [`loadgen::run_share`]: the same
//! subscribers, pacer and measurements, restricted to its share and started at the common
//! instant the controller sends. The controller ([`controller`]) measures each agent's clock
//! offset, splits the load, merges what the agents measured ([`merge`]) and records the
//! agents in the results' `agents` section.

pub mod controller;
mod merge;
pub mod protocol;

use std::io::{BufRead, Write};

use anyhow::{bail, Context, Result};

use crate::loadgen::LoadReport;
use crate::loadgen::{self, WindowHooks};
use protocol::{FromAgent, Prepare, ToAgent};

/// Options of `fanbench agent`.
#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// Speak the controller's line-delimited JSON on stdin/stdout (the only transport).
    #[arg(long, required = true)]
    pub stdio: bool,
    /// CPUs this agent's load-generator threads are pinned to, e.g. `1` or `2,3` (default:
    /// none pinned, one receiver thread).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub client_cpus: Vec<usize>,
}

/// `fanbench agent --stdio`: answers the controller until its stdin closes.
pub fn run(args: AgentArgs) -> Result<()> {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut out = std::io::stdout().lock();
    send(&mut out, &protocol::hello())?;
    while let Some(line) = lines.next() {
        let line = line.context("reading the controller's messages from stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        let message: ToAgent = match serde_json::from_str(&line) {
            Ok(m) => m,
            Err(e) => {
                let message = format!("not a controller message ({e}): {}", clip(&line));
                send(
                    &mut out,
                    &FromAgent::Error {
                        message: message.clone(),
                    },
                )?;
                bail!(message);
            }
        };
        match message {
            ToAgent::Probe { controller_ns } => send(
                &mut out,
                &FromAgent::Probe {
                    controller_ns,
                    agent_ns: loadgen::now_ns(),
                },
            )?,
            ToAgent::Prepare(prepare) => {
                let reply = match run_share(&prepare, &args.client_cpus, &mut lines, &mut out) {
                    Ok(report) => FromAgent::Report(Box::new(report)),
                    Err(e) => FromAgent::Error {
                        message: format!("{e:#}"),
                    },
                };
                send(&mut out, &reply)?;
            }
            ToAgent::Start { .. } => send(
                &mut out,
                &FromAgent::Error {
                    message: "start before prepare".into(),
                },
            )?,
        }
    }
    Ok(())
}

fn run_share<R: BufRead>(
    prepare: &Prepare,
    client_cpus: &[usize],
    lines: &mut std::io::Lines<R>,
    out: &mut dyn Write,
) -> Result<LoadReport> {
    let (spec, share) = prepare.to_spec(client_cpus)?;
    let mut hooks = AgentHooks { lines, out };
    loadgen::run_share(&spec, &share, &mut hooks)
}

/// Reports readiness and progress to the controller and waits for its start instant.
struct AgentHooks<'a, R> {
    lines: &'a mut std::io::Lines<R>,
    out: &'a mut dyn Write,
}

impl<R: BufRead> WindowHooks for AgentHooks<'_, R> {
    fn measure_start(&mut self) {}
    fn measure_end(&mut self) {}

    fn ready(&mut self) -> Result<Option<u64>> {
        send(self.out, &FromAgent::Ready)?;
        loop {
            let line = self
                .lines
                .next()
                .context("the controller closed stdin before sending the start instant")?
                .context("reading the start instant from stdin")?;
            match serde_json::from_str::<ToAgent>(&line)
                .with_context(|| format!("not a controller message: {}", clip(&line)))?
            {
                ToAgent::Start { start_ns } => return Ok(Some(start_ns)),
                // A late clock probe is still answered: the controller may re-measure.
                ToAgent::Probe { controller_ns } => send(
                    self.out,
                    &FromAgent::Probe {
                        controller_ns,
                        agent_ns: loadgen::now_ns(),
                    },
                )?,
                ToAgent::Prepare(_) => bail!("prepare while waiting for the start instant"),
            }
        }
    }

    fn second_done(&mut self, index: u32) {
        // Progress only: a controller that stopped reading is noticed at the report.
        let _ = send(self.out, &FromAgent::Second { index });
    }
}

fn send(out: &mut dyn Write, message: &FromAgent) -> Result<()> {
    let mut line = serde_json::to_vec(message).context("encoding a message")?;
    line.push(b'\n');
    out.write_all(&line)
        .and_then(|()| out.flush())
        .context("writing to the controller (stdout)")
}

/// At most 200 characters of a line, for error messages.
pub(crate) fn clip(line: &str) -> String {
    let mut s: String = line.chars().take(200).collect();
    if s.len() < line.len() {
        s.push_str("...");
    }
    s
}
