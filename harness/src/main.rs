//! `fanbench`: serve the broker on a chosen runtime, drive it with the open-loop load
//! generator, and turn the measurements into results, charts and comparisons.
//!
//! Each subcommand lives in its own module; this file only parses options and dispatches.

use clap::{Parser, Subcommand};

mod agent;
mod batching;
mod bench_all;
mod calibrate;
mod climb;
mod compare;
mod compare_revs;
mod cpus;
mod interrupt;
mod loadgen;
mod measure;
mod metrics;
mod micro;
mod policies;
mod report;
mod results;
mod resume;
mod run;
mod runtimes;
mod serve;
mod server_proc;
mod soak;
mod sweep;
mod sysinfo;
mod workload;

#[derive(Parser)]
#[command(name = "fanbench", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the broker on one runtime until SIGINT/SIGTERM.
    Serve(serve::ServeArgs),
    /// Measure one workload on one server (started pinned, or an external --target).
    Run(run::RunArgs),
    /// Every available runtime row x every default workload into results/<run-id>/.
    BenchAll(bench_all::BenchAllArgs),
    /// Charts (SVG) and a self-contained index.html for a results or sweep file.
    Report(report::ReportArgs),
    /// What the runtime itself costs: criterion micro benchmarks on every row (micro.json).
    Micro(micro::MicroArgs),
    /// Compare two results (files, run directories or commits): every metric's change and verdict.
    Compare(compare::CompareArgs),
    /// Compare two git revisions' servers, measured in alternation by this binary.
    CompareRevs(compare_revs::CompareRevsArgs),
    /// Raise the offered load step by step until p99 passes the SLO: max sustainable throughput.
    Sweep(sweep::SweepArgs),
    /// Hold one fan-out load on each row for minutes: RSS, descriptors and latency over time.
    Soak(soak::SoakArgs),
    /// A load-generator worker for `fanbench run --agent` (line-delimited JSON on stdin/stdout).
    Agent(agent::AgentArgs),
    /// Measure the load generator's own ceiling against a minimal fan-out server (the blaster).
    Calibrate(calibrate::CalibrateArgs),
    /// The minimal fan-out server `calibrate` measures against (started by calibrate).
    #[command(hide = true)]
    Blaster(calibrate::blaster::BlasterArgs),
    /// List the runtime rows built into this binary, with their crate versions.
    Runtimes {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Run(args) => run::run(args),
        Command::BenchAll(args) => bench_all::run(args),
        Command::Report(args) => report::run(args),
        Command::Micro(args) => micro::run(args),
        Command::Compare(args) => compare::run(args),
        Command::CompareRevs(args) => compare_revs::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Soak(args) => soak::run(args),
        Command::Calibrate(args) => calibrate::run(args),
        Command::Agent(args) => agent::run(args),
        Command::Blaster(args) => calibrate::blaster::run(args),
        Command::Runtimes { json } => runtimes::list(json),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("fanbench: error: {err:#}");
            // 128 + the signal, as a shell reports a process the signal ended.
            match interrupt::in_chain(&err).or_else(interrupt::received) {
                Some(by) => std::process::ExitCode::from(by.exit_code()),
                None => std::process::ExitCode::FAILURE,
            }
        }
    }
}
