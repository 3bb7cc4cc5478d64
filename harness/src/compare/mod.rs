//! `fanbench compare A B`: every (workload, runtime, metric) of two results, with a verdict
//! that counts a change only beyond a threshold and when it is statistically significant over
//! the repetitions and their per-second windows ([`stats`] says which test and why).
//!
//! A and B are results files, run directories, or git commits (the newest run recorded for
//! that commit under `--results-dir`). Files are read with the tolerant reader of
//! `fanbench-plots`, so results from any commit with the same schema version compare.

pub mod metrics;
pub mod micro;
pub mod paired;
pub mod render;
pub mod stats;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use fanbench_plots::model::ResultsDoc;

use metrics::{compare, Criteria, Verdict};

/// How verdicts are reached, for `fanbench compare --help`.
const VERDICT_HELP: &str = "\
Verdicts: for every (workload, runtime, metric) the base and new values are the summaries \
(medians over repetitions). A change counts only when |change| > --threshold AND it is \
statistically significant: its Benjamini-Hochberg q-value over every test of the table is \
below --alpha. The samples are the per-second window values \
(throughput, window p50/p99/max latency) pooled over all repetitions, else one value per \
repetition (p99.9, syscalls, CPU, RSS). Test: Welch's t-test on the log of the values \
(multiplicative effects, skewed latencies, unequal variances); with at least 8 samples per \
side a Mann-Whitney U test must agree. Fewer than 2 samples per side cannot be tested and \
never counts. Invalid runs are shown but excluded from verdicts. Two runs made apart also \
differ by the machine's drift, which no test on them can tell from a change: to compare \
commits, measure them in alternation with `fanbench compare-revs`. Micro costs (micro.json beside both results, or BASE and NEW given as micro.json files or `fanbench micro` run directories) are compared per (operation, runtime): a change counts only when criterion's intervals do not overlap, |change| > --micro-threshold, and it stands out from the two runs' own noise by more than --micro-noise robust standard deviations. See results/README.md.";

/// Options of `fanbench compare`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = VERDICT_HELP)]
pub struct CompareArgs {
    /// Baseline: a results.json, a run directory, or a git commit (newest run of that commit
    /// under --results-dir).
    pub base: String,
    /// New results: same forms as BASE.
    pub new: String,
    /// Print a Markdown table instead of plain text.
    #[arg(long)]
    pub markdown: bool,
    /// Smallest change that counts, in percent of the base value.
    #[arg(long, default_value_t = 5.0, value_name = "PCT")]
    pub threshold: f64,
    /// False discovery rate over the whole table (a change must have its q-value below it).
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// Exit with status 1 when any metric or micro cost regressed.
    #[arg(long)]
    pub fail_on_regression: bool,
    /// Print only the rows that improved or regressed.
    #[arg(long)]
    pub changes_only: bool,
    /// Where runs are looked up when BASE or NEW is a commit.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub results_dir: PathBuf,
    /// BASE and NEW are the two sides of one `compare-revs` run (its base/ and new/
    /// directories): pair repetitions by round and judge them as compare-revs does.
    #[arg(long)]
    pub paired: bool,
    /// List the unchanged rows too: of --paired, and of the micro costs (micro.json).
    #[arg(long)]
    pub all: bool,
    /// Compare one row with another instead of every row with itself: BASE's results of
    /// this row against NEW's results of --new-row (BASE and NEW may be the same run, to ask
    /// whether two rows of one suite differ beyond noise).
    #[arg(
        long,
        value_name = "ROW",
        requires = "new_row",
        conflicts_with = "paired"
    )]
    pub base_row: Option<String>,
    /// The row of NEW compared with --base-row's.
    #[arg(long, value_name = "ROW", requires = "base_row")]
    pub new_row: Option<String>,
    /// Micro costs: smallest change of an estimate that counts, in percent of the base.
    #[arg(long, default_value_t = micro::DEFAULT_THRESHOLD_PCT, value_name = "PCT")]
    pub micro_threshold: f64,
    /// Micro costs: how many robust standard deviations of the two runs' own noise (the
    /// spread of every cell's change) a change must stand out by; 0 turns the rule off.
    #[arg(long, default_value_t = micro::DEFAULT_NOISE_K, value_name = "K")]
    pub micro_noise: f64,
}

/// A loaded side of the comparison and how to name it.
pub struct Side {
    pub path: PathBuf,
    pub doc: ResultsDoc,
}

impl Side {
    fn label(&self) -> String {
        let commit = self
            .doc
            .git
            .commit
            .as_deref()
            .map(|c| {
                let short: String = c.chars().take(10).collect();
                let dirty = if self.doc.git.dirty == Some(true) {
                    "+dirty"
                } else {
                    ""
                };
                format!(", commit {short}{dirty}")
            })
            .unwrap_or_default();
        format!("{} (run {}{commit})", self.path.display(), self.doc.run_id)
    }

    /// For a side of a `compare-revs` run: the revision its servers were built from (the
    /// commit directory of `compare-revs/bin/<commit>/fanbench` in their command), else
    /// "this binary" when they ran from the measuring binary itself.
    fn server_label(&self) -> String {
        let program = self
            .doc
            .results
            .iter()
            .filter_map(|e| e.runtime_config.as_ref())
            .filter_map(|c| c.command.first())
            .find(|p| !p.contains("nats-server"));
        let revision = program.and_then(|p| {
            let parts: Vec<&str> = p.split('/').collect();
            parts.windows(2).find_map(|w| {
                let hex = w[1].len() == 40 && w[1].chars().all(|c| c.is_ascii_hexdigit());
                (w[0] == "bin" && hex).then(|| w[1][..10].to_string())
            })
        });
        match revision {
            Some(commit) => format!("server of commit {commit}; {}", self.label()),
            None => format!("server of the measuring binary; {}", self.label()),
        }
    }
}

/// Resolves a results file, run directory, or commit to a loaded results file.
pub fn resolve(spec: &str, results_dir: &Path) -> anyhow::Result<Side> {
    let path = Path::new(spec);
    if path.is_file() {
        return load(path);
    }
    if path.is_dir() {
        let file = path.join(fanbench_plots::RESULTS_FILE);
        if !file.is_file() {
            bail!(
                "{} is a directory without a {}",
                path.display(),
                fanbench_plots::RESULTS_FILE
            );
        }
        return load(&file);
    }
    let commit = rev_parse(spec).with_context(|| {
        format!("{spec:?} is not a results file, a run directory, or a git commit")
    })?;
    let file = newest_run_of(&commit, results_dir)?;
    load(&file)
}

/// Keep only `row`'s results of `side`, renamed `label` so that the two rows compared pair up.
fn keep_row(side: &mut Side, row: &str, label: &str) -> anyhow::Result<()> {
    side.doc.results.retain(|e| e.runtime == row);
    if side.doc.results.is_empty() {
        bail!("{} has no results of row {row:?}", side.path.display());
    }
    for entry in &mut side.doc.results {
        entry.runtime = label.to_string();
    }
    Ok(())
}

fn load(path: &Path) -> anyhow::Result<Side> {
    Ok(Side {
        path: path.to_path_buf(),
        doc: ResultsDoc::load(path)?,
    })
}

fn rev_parse(rev: &str) -> anyhow::Result<String> {
    if rev.starts_with('-') {
        bail!("not a revision");
    }
    let out = Command::new("git")
        .args([
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ])
        .output()
        .context("running git rev-parse")?;
    if !out.status.success() {
        bail!("git does not know a commit {rev:?}");
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The results file of the newest run (by start time) recorded for `commit` in `results_dir`.
pub fn newest_run_of(commit: &str, results_dir: &Path) -> anyhow::Result<PathBuf> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default)]
        started_at: Option<String>,
        #[serde(default)]
        git: Option<ProbeGit>,
    }
    #[derive(serde::Deserialize)]
    struct ProbeGit {
        #[serde(default)]
        commit: Option<String>,
    }
    let entries = std::fs::read_dir(results_dir)
        .with_context(|| format!("listing runs in {}", results_dir.display()))?;
    let mut best: Option<(String, PathBuf)> = None;
    for entry in entries.flatten() {
        let file = entry.path().join(fanbench_plots::RESULTS_FILE);
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let Ok(probe) = serde_json::from_str::<Probe>(&text) else {
            continue;
        };
        if probe.git.and_then(|g| g.commit).as_deref() != Some(commit) {
            continue;
        }
        let started = probe.started_at.unwrap_or_default();
        if best.as_ref().is_none_or(|(b, _)| started > *b) {
            best = Some((started, file));
        }
    }
    best.map(|(_, file)| file).with_context(|| {
        format!(
            "no run of commit {commit} in {} (bench it first with bench-all, or measure two commits in alternation with `fanbench compare-revs {}`)",
            results_dir.display(),
            &commit[..commit.len().min(10)]
        )
    })
}

/// `fanbench compare`.
pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    if !(args.threshold >= 0.0 && args.threshold.is_finite()) {
        bail!("--threshold must be a non-negative percentage");
    }
    if !(args.alpha > 0.0 && args.alpha < 1.0) {
        bail!("--alpha must be between 0 and 1");
    }
    // Micro costs are compared per row with itself, never across rows.
    if !args.paired && args.base_row.is_none() {
        if let Some(section) = micro::alone(&args)? {
            print!("{}", section.text);
            return fail_on_regression(&args, 0, section.regressed);
        }
    }
    let mut base = resolve(&args.base, &args.results_dir).context("BASE")?;
    let mut new = resolve(&args.new, &args.results_dir).context("NEW")?;
    let criteria = Criteria {
        threshold_pct: args.threshold,
        alpha: args.alpha,
    };
    if args.paired {
        return run_paired(&args, &base, &new, criteria);
    }
    let rows = args.base_row.as_deref().zip(args.new_row.as_deref());
    if let Some((base_row, new_row)) = rows {
        let label = format!("{base_row} -> {new_row}");
        keep_row(&mut base, base_row, &label).context("BASE")?;
        keep_row(&mut new, new_row, &label).context("NEW")?;
    }
    let comparison = compare(&base.doc, &new.doc, criteria);
    let micro = match rows {
        Some(_) => None,
        None => micro::beside_results(&args, &base.path, &new.path)?,
    };
    let output = if args.markdown {
        render::markdown(&comparison, &base.label(), &new.label(), args.changes_only)
    } else {
        render::text(&comparison, &base.label(), &new.label(), args.changes_only)
    };
    print!("{output}");
    let micro_regressed = micro.map_or(0, |section| {
        print!("{}", section.text);
        section.regressed
    });
    let regressed = comparison.count(|v| *v == Verdict::Regressed);
    fail_on_regression(&args, regressed, micro_regressed)
}

/// The exit status of `--fail-on-regression`: an error when any metric or micro cost
/// regressed.
fn fail_on_regression(args: &CompareArgs, metrics: usize, micro: usize) -> anyhow::Result<()> {
    if !args.fail_on_regression || metrics + micro == 0 {
        return Ok(());
    }
    let what = match (metrics, micro) {
        (m, 0) => format!("{m} metric(s)"),
        (0, u) => format!("{u} micro cost(s)"),
        (m, u) => format!("{m} metric(s) and {u} micro cost(s)"),
    };
    bail!("{what} regressed (--fail-on-regression)");
}

/// `fanbench compare --paired`: the verdicts of `compare-revs` on its two saved sides.
fn run_paired(
    args: &CompareArgs,
    base: &Side,
    new: &Side,
    criteria: Criteria,
) -> anyhow::Result<()> {
    let comparison = paired::compare_paired(
        &base.doc,
        &new.doc,
        Some(crate::measure::NATS_SERVER),
        criteria,
    );
    let rounds = base
        .doc
        .results
        .iter()
        .map(|e| e.repetitions.len())
        .max()
        .unwrap_or(0);
    let (base_label, new_label) = (base.server_label(), new.server_label());
    let header = render::PairedHeader {
        base: &base_label,
        new: &new_label,
        rounds: u32::try_from(rounds).unwrap_or(u32::MAX),
        threshold_pct: args.threshold,
        alpha: args.alpha,
        control: Some(crate::measure::NATS_SERVER),
    };
    let output = if args.markdown {
        render::paired_markdown(&comparison, &header, args.all)
    } else {
        render::paired_text(&comparison, &header, args.all)
    };
    print!("{output}");
    let regressed = comparison.count(|v| *v == Verdict::Regressed);
    if args.fail_on_regression && regressed > 0 {
        bail!("{regressed} metric(s) regressed (--fail-on-regression)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::metrics::{compare, Criteria, Verdict};
    use super::*;
    use serde_json::Value;

    fn fixture_text() -> String {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../plots/tests/fixtures/results.json");
        std::fs::read_to_string(&path).expect("fixture exists")
    }

    fn scale(value: &mut Value, factor: f64) {
        if let Some(v) = value.as_f64() {
            *value = serde_json::json!(v * factor);
        }
    }

    /// Throughput x `tp`, p99 latency x `p99` everywhere it appears (summary, repetitions,
    /// windows), so the file stays self-consistent.
    fn degraded(tp: f64, p99: f64) -> ResultsDoc {
        let mut doc: Value = serde_json::from_str(&fixture_text()).expect("fixture is JSON");
        for result in doc["results"].as_array_mut().expect("results") {
            scale(&mut result["summary"]["throughput_msgs_per_s"], tp);
            scale(&mut result["summary"]["latency_us"]["p99"], p99);
            for rep in result["repetitions"].as_array_mut().expect("reps") {
                scale(&mut rep["throughput_msgs_per_s"], tp);
                scale(&mut rep["latency_us"]["p99"], p99);
                for w in rep["windows"].as_array_mut().expect("windows") {
                    let delivered = w["delivered"].as_u64().expect("delivered") as f64;
                    w["delivered"] = serde_json::json!((delivered * tp).round() as u64);
                    scale(&mut w["latency_p99_us"], p99);
                }
            }
        }
        ResultsDoc::parse(&doc.to_string()).expect("degraded copy parses")
    }

    fn criteria() -> Criteria {
        Criteria {
            threshold_pct: 5.0,
            alpha: 0.05,
        }
    }

    #[test]
    fn fixture_follows_the_harness_schema_exactly() {
        let parsed: crate::results::schema::ResultsFile =
            serde_json::from_str(&fixture_text()).expect("fixture matches schema.rs");
        assert_eq!(
            parsed.schema_version,
            crate::results::schema::SCHEMA_VERSION
        );
    }

    #[test]
    fn a_run_compared_with_itself_has_no_change_and_no_regression() {
        let doc = ResultsDoc::parse(&fixture_text()).expect("fixture parses");
        let c = compare(&doc, &doc, criteria());
        assert!(!c.rows.is_empty());
        assert_eq!(c.count(|v| *v == Verdict::Regressed), 0);
        assert_eq!(c.count(|v| *v == Verdict::Improved), 0);
        assert!(c
            .rows
            .iter()
            .all(|r| r.change.is_none() || r.change == Some(0.0)));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn throughput_cut_30_percent_and_p99_up_50_percent_regress() {
        let base = ResultsDoc::parse(&fixture_text()).expect("fixture parses");
        let new = degraded(0.7, 1.5);
        let c = compare(&base, &new, criteria());
        for metric in ["throughput", "latency p99"] {
            let rows: Vec<_> = c
                .rows
                .iter()
                .filter(|r| r.metric == metric && r.runtime != "tokio-mt")
                .collect();
            assert!(!rows.is_empty());
            for row in rows {
                assert_eq!(row.verdict, Verdict::Regressed, "{row:?}");
            }
        }
        // The fixture's invalid result (tokio-mt on fanout-100) is never judged.
        let invalid = c
            .rows
            .iter()
            .find(|r| r.runtime == "tokio-mt" && r.scenario == "fanout-100")
            .expect("row present");
        assert!(matches!(invalid.verdict, Verdict::Excluded(_)));
        // Untouched metrics stay unchanged.
        assert!(c
            .rows
            .iter()
            .filter(|r| r.metric == "syscalls/msg")
            .all(|r| !matches!(r.verdict, Verdict::Regressed | Verdict::Improved)));
    }

    #[test]
    fn improvement_is_reported_as_improved() {
        let base = ResultsDoc::parse(&fixture_text()).expect("fixture parses");
        let new = degraded(1.0, 0.5);
        let c = compare(&base, &new, criteria());
        let row = c
            .rows
            .iter()
            .find(|r| r.metric == "latency p99" && r.runtime == "uring")
            .expect("row");
        assert_eq!(row.verdict, Verdict::Improved);
    }

    #[test]
    fn change_within_threshold_is_no_change_even_if_significant() {
        let base = ResultsDoc::parse(&fixture_text()).expect("fixture parses");
        let new = degraded(0.97, 1.0);
        let c = compare(&base, &new, criteria());
        let row = c
            .rows
            .iter()
            .find(|r| r.metric == "throughput" && r.runtime == "uring")
            .expect("row");
        assert_eq!(row.verdict, Verdict::NoChange, "{row:?}");
        assert!(row.note.contains("within"), "{}", row.note);
    }

    #[test]
    fn summary_edited_without_its_repetitions_is_warned_about() {
        let mut doc: Value = serde_json::from_str(&fixture_text()).expect("JSON");
        scale(
            &mut doc["results"][0]["summary"]["throughput_msgs_per_s"],
            0.5,
        );
        let edited = ResultsDoc::parse(&doc.to_string()).expect("parses");
        let base = ResultsDoc::parse(&fixture_text()).expect("parses");
        let c = compare(&base, &edited, criteria());
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("median of its repetitions")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn markdown_output_is_a_table_with_a_row_per_metric() {
        let base = ResultsDoc::parse(&fixture_text()).expect("fixture parses");
        let new = degraded(0.7, 1.5);
        let c = compare(&base, &new, criteria());
        let md = render::markdown(&c, "a", "b", false);
        let table: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(
            table[0],
            "| workload | runtime | metric | base | new | change | verdict | test |"
        );
        assert!(table[1].starts_with("|---|"));
        assert_eq!(table.len(), 2 + c.rows.len());
        assert!(md.contains("| **regressed** |"));
        assert!(md.contains("-30.0%") && md.contains("+50.0%"));
    }

    #[test]
    fn single_window_runs_cannot_regress_and_say_why() {
        let mut doc: Value = serde_json::from_str(&fixture_text()).expect("JSON");
        for result in doc["results"].as_array_mut().expect("results") {
            let reps = result["repetitions"].as_array_mut().expect("reps");
            reps.truncate(1);
            reps[0]["windows"]
                .as_array_mut()
                .expect("windows")
                .truncate(1);
        }
        let base = ResultsDoc::parse(&doc.to_string()).expect("parses");
        let mut cut = base.clone();
        for entry in &mut cut.results {
            entry.summary.headline.throughput_msgs_per_s *= 0.7;
            entry.repetitions[0].headline.throughput_msgs_per_s *= 0.7;
            let w = &mut entry.repetitions[0].windows[0];
            w.delivered = (w.delivered as f64 * 0.7) as u64;
        }
        let c = compare(&base, &cut, criteria());
        assert_eq!(c.count(|v| *v == Verdict::Regressed), 0);
        assert!(
            c.warnings.iter().any(|w| w.contains("could not be tested")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn missing_pair_is_reported_on_its_side() {
        let base = ResultsDoc::parse(&fixture_text()).expect("fixture parses");
        let mut new = base.clone();
        new.results.retain(|e| e.runtime != "nats-server");
        let c = compare(&base, &new, criteria());
        assert!(c
            .rows
            .iter()
            .any(|r| r.runtime == "nats-server" && r.verdict == Verdict::OnlyIn("base")));
    }
}
