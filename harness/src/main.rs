//! `fanbench`: serve the broker on a chosen runtime, drive it with the open-loop load
//! generator, and turn the measurements into results, charts and comparisons.
//!
//! Each subcommand lives in its own module; this file only parses options and dispatches.

use clap::{Parser, Subcommand};

mod cpus;
mod loadgen;
mod runtimes;
mod serve;

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
        Command::Runtimes { json } => runtimes::list(json),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("fanbench: error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
