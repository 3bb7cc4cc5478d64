//! `fanbench bench-all --resume DIR`: continue a run that was interrupted (or killed), from
//! the results.json it left. The options are the interrupted run's own (its recorded command
//! line), so the pairs still to measure are measured exactly as the others were.

use std::path::Path;

use anyhow::{bail, Context};
use clap::{Args, FromArgMatches};

use crate::bench_all::BenchAllArgs;
use crate::results::schema::{ResultsFile, RuntimeInfo};
use crate::results::write::read_results;

/// The interrupted run's options and its results file.
pub fn load(dir: &Path) -> anyhow::Result<(BenchAllArgs, ResultsFile)> {
    let path = dir.join("results.json");
    if !path.is_file() {
        bail!(
            "--resume {}: no results.json there (give the run directory, results/<run-id>)",
            dir.display()
        );
    }
    let file = read_results(&path).context("--resume")?;
    if !file.partial {
        bail!(
            "--resume {}: that run finished (results.json is not flagged partial); nothing to resume",
            dir.display()
        );
    }
    let args = recorded_args(&file.command)
        .with_context(|| format!("--resume {}: reading its command line", dir.display()))?;
    Ok((args, file))
}

/// The `bench-all` options of a recorded command line (`fanbench bench-all --quick ...`).
fn recorded_args(command: &[String]) -> anyhow::Result<BenchAllArgs> {
    let Some(at) = command.iter().position(|a| a == "bench-all") else {
        bail!("it was not made by bench-all: {}", command.join(" "));
    };
    let cmd = BenchAllArgs::augment_args(clap::Command::new("bench-all"));
    let matches = cmd
        .try_get_matches_from(&command[at..])
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let args = BenchAllArgs::from_arg_matches(&matches).map_err(|e| anyhow::anyhow!("{e}"))?;
    if args.resume.is_some() {
        bail!("the recorded command is itself a --resume");
    }
    Ok(args)
}

/// The interrupted run's file, ready to be filled again: its results, calibration and
/// batching points stay; what was skipped or failed is measured again (the rows' availability
/// is checked anew), and so is the policy comparison, whole.
pub fn reopen(mut file: ResultsFile, runtimes: Vec<RuntimeInfo>) -> ResultsFile {
    file.runtimes = runtimes;
    file.skipped.clear();
    file.failed.clear();
    file.policies.clear();
    file.partial = true;
    file.interrupted_by = None;
    file.finished_at = None;
    file
}

/// Whether the sweep.json at `path` covers `rows` rows and none of its sweeps was cut short
/// by an interruption (else bench-all sweeps again).
pub fn sweep_is_complete(path: &Path, rows: usize) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
        return false;
    };
    let Some(sweeps) = value.get("sweeps").and_then(|s| s.as_array()) else {
        return false;
    };
    sweeps.len() == rows
        && sweeps
            .iter()
            .all(|s| s.get("ended_by").and_then(|e| e.as_str()) != Some("interrupted"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_bench_all_options_are_parsed() {
        let command: Vec<String> = [
            "/x/fanbench",
            "bench-all",
            "--quick",
            "--runtimes",
            "tokio,uring",
            "--duration",
            "1s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let args = recorded_args(&command).expect("parse");
        assert!(args.quick);
        assert_eq!(
            args.runtimes,
            Some(vec!["tokio".to_string(), "uring".to_string()])
        );
    }

    #[test]
    fn a_command_that_was_not_bench_all_is_refused() {
        let command = vec!["fanbench".to_string(), "run".to_string()];
        let err = format!("{:#}", recorded_args(&command).expect_err("refused"));
        assert!(err.contains("not made by bench-all"), "{err}");
    }

    #[test]
    fn an_interrupted_sweep_is_not_complete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sweep.json");
        assert!(!sweep_is_complete(&path, 1));
        std::fs::write(&path, r#"{"sweeps":[{"ended_by":"slo"}]}"#).expect("write");
        assert!(sweep_is_complete(&path, 1));
        assert!(!sweep_is_complete(&path, 2));
        std::fs::write(&path, r#"{"sweeps":[{"ended_by":"interrupted"}]}"#).expect("write");
        assert!(!sweep_is_complete(&path, 1));
    }
}
