//! `fanbench compare-revs BASE [NEW]`: the change a commit made, measured by interleaving.
//!
//! Only the server under test comes from each revision: BASE's and NEW's `fanbench serve`
//! are built in a worktree of their own (`build`, cached by commit), while this binary's load
//! generator, metrics and validity rules measure both, so an instrument that improved since
//! BASE measures both sides alike. For every (workload, row) the two servers are measured on
//! the same CPUs one repetition at a time in alternation, A B, B A, A B, ..., one pair per
//! round, each repetition by a server started for it: the drift of a shared machine falls on
//! both sides, and the verdict is on the paired differences (`compare::paired`).
//!
//! The default spends its time on rounds rather than workloads ([`DEFAULT_WORKLOADS`]): the
//! honest noise of a metric is its spread over rounds, and with the few rounds a run of six
//! workloads affords, only a change that is exactly the same in every round survives the
//! correction for the hundreds of tests of the table.
//!
//! nats-server runs the same binary on both sides: it is the negative control, and whatever
//! it shows is the machine.

mod build;

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use anyhow::{bail, Context};
use fanbench_plots::model::ResultsDoc;

use crate::compare::metrics::{Criteria, Verdict};
use crate::compare::paired::{compare_paired, PairedComparison};
use crate::compare::render::{paired_markdown, paired_text, PairedHeader};
use crate::interrupt::{self, Interrupted};
use crate::measure::{assemble_rounds, LiveServer, Placement, PlacementArgs, Row, QUICK};
use crate::results::measured::Measured;
use crate::results::provenance::new_results_file;
use crate::results::schema::{
    Repetition, ResultsFile, RuntimeConfig, Scenario, ScenarioResult, Skipped,
};
use crate::results::write::write_results;
use crate::sysinfo;
use crate::workload::{self, WorkloadOverrides};

use build::RevBinary;

/// How the verdicts are reached, for `fanbench compare-revs --help`.
const METHOD_HELP: &str = "\
Method: for every (workload, runtime) the two servers are measured in alternation, one \
repetition each per round (A B, B A, ...), each repetition by a server started for it, on \
the same CPUs, by this binary's load generator. Each metric's sample is ln(new/base) per round. Test: a paired t-test whose variance is \
shrunk towards the typical variance of that metric over the whole table (empirical Bayes, as \
in limma); counted metrics (syscalls/msg, SQEs/msg) have their variance floored at the \
Poisson variance of their counts. A change counts when its Benjamini-Hochberg q-value over \
the whole table is below --alpha and |change| exceeds --threshold, widened by the negative \
control's own change (nats-server, the same binary on both sides); where the control itself \
changed, no verdict is given. See README.md, \"Comparing revisions\".";

/// Options of `fanbench compare-revs`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = METHOD_HELP)]
pub struct CompareRevsArgs {
    /// Base revision (commit, branch or tag): its `fanbench serve` is built and cached.
    pub base: String,
    /// New revision; default: the server of this binary (the working tree it was built from).
    pub new: Option<String>,
    /// Rounds per (workload, runtime): each measures both servers once, in alternating order.
    #[arg(long, default_value_t = DEFAULT_ROUNDS)]
    pub rounds: u32,
    /// Only these runtime rows, comma-separated (default: every row of this binary, then
    /// nats-server as the negative control).
    #[arg(long, value_delimiter = ',')]
    pub runtimes: Option<Vec<String>>,
    /// Only these workloads, comma-separated (default: seed-5x25,fanout-100; bench-all's six
    /// are seed-5x5,seed-5x25,fanout-100,fanout-1000,video-1mb,slow-subscriber).
    #[arg(long, value_delimiter = ',')]
    pub workloads: Option<Vec<String>>,
    /// Smallest change that counts, in percent.
    #[arg(long, default_value_t = 5.0, value_name = "PCT")]
    pub threshold: f64,
    /// False discovery rate over the whole table (and the level of the confidence intervals).
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// Print Markdown (for a pull request comment) instead of plain text.
    #[arg(long)]
    pub markdown: bool,
    /// List every metric, the unchanged ones too.
    #[arg(long)]
    pub all: bool,
    /// Exit with status 1 when any metric regressed.
    #[arg(long)]
    pub fail_on_regression: bool,
    /// Results directory: writes DIR/compare-<run-id>/{base,new}/results.json, compare.md,
    /// compare.txt and the servers' logs.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    /// Where revisions are built and their binaries cached (default:
    /// $CARGO_TARGET_DIR/compare-revs, else target/compare-revs).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: WorkloadOverrides,
    #[command(flatten)]
    pub placement: PlacementArgs,
}

/// One side of the comparison: whose server, and how to name it.
struct Side {
    label: String,
    /// None: this binary.
    program: Option<PathBuf>,
    /// The revision's full commit id (None: this binary).
    commit: Option<String>,
    rows: Vec<String>,
    /// Whether its `serve` takes `--coalesce-us` (older revisions batch with their own
    /// built-in window and have no such option).
    takes_coalesce_us: bool,
    file: ResultsFile,
}

impl Side {
    fn of_revision(bin: RevBinary, file: ResultsFile) -> Side {
        Side {
            label: format!("{} ({})", bin.rev, bin.short()),
            program: Some(bin.path),
            commit: Some(bin.commit),
            takes_coalesce_us: bin.serve_options.iter().any(|o| o == "--coalesce-us"),
            rows: bin.rows,
            file,
        }
    }

    fn this_binary(file: ResultsFile) -> Side {
        let git = &file.git;
        let commit = git
            .commit
            .as_deref()
            .map(|c| c.chars().take(10).collect::<String>())
            .unwrap_or_else(|| "unknown commit".into());
        let dirty = if git.dirty == Some(true) {
            "+dirty"
        } else {
            ""
        };
        Side {
            label: format!("working tree ({commit}{dirty}, this binary)"),
            program: None,
            commit: None,
            takes_coalesce_us: true,
            rows: crate::runtimes::names()
                .into_iter()
                .map(str::to_string)
                .collect(),
            file,
        }
    }

    /// Runs the side's server from a fresh copy of its executable under `dir`, made the same
    /// way for both sides. Peak RSS counts the executable's mapped pages, and an A/A run whose
    /// new side ran from the measuring binary's own file (or from a file written otherwise)
    /// showed 5 to 14 % more peak RSS for the same code.
    fn stage(&mut self, dir: &Path) -> anyhow::Result<()> {
        let source = match &self.program {
            Some(path) => path.clone(),
            None => std::env::current_exe().context("locating this binary")?,
        };
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let copy = dir.join("fanbench");
        std::fs::copy(&source, &copy)
            .with_context(|| format!("copying {} to {}", source.display(), copy.display()))?;
        self.program = Some(copy);
        Ok(())
    }

    fn serves(&self, row: Row) -> bool {
        match row {
            Row::NatsServer => true,
            Row::Fanbench(_) => self.rows.iter().any(|r| r == row.name()),
        }
    }
}

fn scenarios(args: &CompareRevsArgs) -> anyhow::Result<Vec<Scenario>> {
    if args.overrides.reps.is_some() {
        bail!("compare-revs measures one repetition per side per round: use --rounds, not --reps");
    }
    let dir = workload::workloads_dir(args.overrides.workloads_dir.as_deref());
    let names: Vec<String> = match &args.workloads {
        Some(names) if names.is_empty() => bail!("--workloads is empty"),
        Some(names) => names.clone(),
        None => DEFAULT_WORKLOADS.iter().map(|s| s.to_string()).collect(),
    };
    names
        .iter()
        .map(|name| {
            let mut s = workload::load(name, &dir)?;
            QUICK.apply(&mut s);
            s.repetitions = args.rounds;
            args.overrides.apply(s)
        })
        .collect()
}

fn rows(args: &CompareRevsArgs) -> anyhow::Result<Vec<Row>> {
    match &args.runtimes {
        Some(names) if names.is_empty() => bail!("--runtimes is empty"),
        Some(names) => names.iter().map(|n| Row::named(n.trim())).collect(),
        None => Ok(Row::all()),
    }
}

/// The workloads of a default compare: two, so that each (workload, row) gets
/// [`DEFAULT_ROUNDS`] rounds within 15 minutes. Syscalls per message at fanout-100 vary by a
/// third from round to round with the load (how many messages arrive together), so a change
/// of the uring row's batching there needs about seven rounds to clear the correction for
/// the table's tests; seed-5x25 is the seed workload. The other workloads of bench-all are a
/// `--workloads` away (at about 50 s per workload and round for ten rows).
pub const DEFAULT_WORKLOADS: &[&str] = &["seed-5x25", "fanout-100"];

/// Rounds per (workload, row) by default.
pub const DEFAULT_ROUNDS: u32 = 7;

/// Seconds one repetition costs beyond its warm-up and window: the load generator's connects
/// and drain, the server's start and stop (measured on the 2-CPU machine at quick timing:
/// 2.3 to 2.8 s a repetition for 1.25 s of warm-up and window).
const REP_OVERHEAD_S: f64 = 1.2;

fn rep_estimate_seconds(s: &Scenario) -> f64 {
    s.warmup_s + s.duration_s + REP_OVERHEAD_S
}

/// Seconds the interleaved measurement is expected to take: two repetitions per round,
/// without extra rounds.
pub fn estimate_seconds(rows: usize, scenarios: &[Scenario]) -> f64 {
    2.0 * rows as f64
        * scenarios
            .iter()
            .map(|s| f64::from(s.repetitions) * rep_estimate_seconds(s))
            .sum::<f64>()
}

/// Seconds the extra rounds can add at most: [`EXTRA_SHARE`] of the planned rounds, each at
/// the cost of the longest round.
pub fn extra_estimate_seconds(rows: usize, scenarios: &[Scenario]) -> f64 {
    let rounds: f64 = scenarios.iter().map(|s| f64::from(s.repetitions)).sum();
    let longest_round_s = scenarios
        .iter()
        .map(|s| 2.0 * rep_estimate_seconds(s))
        .fold(0.0, f64::max);
    (EXTRA_SHARE * rows as f64 * rounds).ceil() * longest_round_s
}

/// `fanbench compare-revs`.
pub fn run(args: CompareRevsArgs) -> anyhow::Result<()> {
    if args.rounds < 2 {
        bail!("--rounds must be at least 2 (a paired test needs two rounds)");
    }
    if !(args.threshold >= 0.0 && args.threshold.is_finite()) {
        bail!("--threshold must be a non-negative percentage");
    }
    if !(args.alpha > 0.0 && args.alpha < 1.0) {
        bail!("--alpha must be between 0 and 1");
    }
    let scenarios = scenarios(&args)?;
    let rows = rows(&args)?;
    let placement = args.placement.resolve()?;
    let repo = build::repo_root()?;
    let cache = args
        .cache_dir
        .clone()
        .unwrap_or_else(|| build::default_cache_dir(&repo));

    let started = SystemTime::now();
    let infos: Vec<_> = rows.iter().map(|r| r.info(&placement)).collect();
    let template = new_results_file(started, infos);
    let base_bin = build::binary_for(&repo, &cache, &args.base).context("BASE")?;
    let mut base = Side::of_revision(base_bin, template.clone());
    let mut new = match &args.new {
        Some(rev) => Side::of_revision(
            build::binary_for(&repo, &cache, rev).context("NEW")?,
            template.clone(),
        ),
        None => Side::this_binary(template.clone()),
    };
    for side in [&base, &new] {
        if args.overrides.coalesce_us.is_some() && !side.takes_coalesce_us {
            bail!(
                "--coalesce-us was given but the fanbench of {} has no such serve option (its \
                 server batches with its own built-in window)",
                side.label
            );
        }
    }
    let run_dir = args.out.join(format!("compare-{}", template.run_id));
    let staging = cache.join("run").join(&template.run_id);
    let base_dir = staging
        .join("bin")
        .join(base.commit.as_deref().unwrap_or("base"));
    base.stage(&base_dir)?;
    let new_dir = match new.commit.as_deref() {
        Some(commit) if Some(commit) != base.commit.as_deref() => staging.join("bin").join(commit),
        _ => staging.join("new"),
    };
    new.stage(&new_dir)?;
    let log_dir = run_dir.join("logs");
    let measured_started = Instant::now();
    let estimate = estimate_seconds(rows.len(), &scenarios);
    let extra = extra_estimate_seconds(rows.len(), &scenarios);
    eprintln!(
        "fanbench: compare-revs {} vs {}: {} rows x {} workloads x {} rounds, estimated {:.0} s \
         (at most {:.0} s more for rounds measured again); server CPUs {:?}, load generator CPUs \
         {:?}; writing {}",
        base.label,
        new.label,
        rows.len(),
        scenarios.len(),
        args.rounds,
        estimate,
        extra,
        placement.server_cpus,
        placement.client_cpus,
        run_dir.display()
    );
    let mut notes = Vec::new();
    let total = rows.len() * scenarios.len();
    let mut extra_budget = (EXTRA_SHARE * (total as f64) * f64::from(args.rounds)).ceil() as u32;
    let mut done = 0;
    // Told to stop, the servers are stopped at once (the signal thread), the pair in flight
    // is abandoned and what was measured is written, flagged partial.
    interrupt::install()?;
    'pairs: for scenario in &scenarios {
        for row in &rows {
            if interrupt::received().is_some() {
                break 'pairs;
            }
            done += 1;
            eprintln!(
                "fanbench: [{done}/{total}] {} on {} ({:.0} s elapsed)",
                scenario.name,
                row.name(),
                measured_started.elapsed().as_secs_f64()
            );
            if let Some(why) = unavailable(*row, &base, &new, &placement) {
                notes.push(format!("{} / {}: {why}", scenario.name, row.name()));
                for side in [&mut base, &mut new] {
                    side.file.skipped.push(Skipped {
                        scenario: Some(scenario.name.clone()),
                        runtime: row.name().to_string(),
                        reason: why.clone(),
                    });
                }
                continue;
            }
            let plan = Interleave {
                base: &base,
                new: &new,
                placement: &placement,
                log_dir: &log_dir,
                rounds: args.rounds,
            };
            match plan.measure(*row, scenario, &mut extra_budget) {
                Ok((b, n)) => {
                    base.file.results.push(b);
                    new.file.results.push(n);
                }
                // Once told to stop, a failure is the stop's doing (e.g. a server stopped while
                // it started), not the pair's.
                Err(_) if interrupt::received().is_some() => break 'pairs,
                Err(err) => {
                    let reason = format!("{err:#}");
                    eprintln!(
                        "fanbench: {} on {} failed: {reason}",
                        scenario.name,
                        row.name()
                    );
                    notes.push(format!(
                        "{} / {} failed: {reason}",
                        scenario.name,
                        row.name()
                    ));
                    for side in [&mut base, &mut new] {
                        side.file.skipped.push(Skipped {
                            scenario: Some(scenario.name.clone()),
                            runtime: row.name().to_string(),
                            reason: reason.clone(),
                        });
                    }
                }
            }
            write_sides(&run_dir, &mut base, &mut new)?;
        }
    }
    let elapsed = measured_started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&staging);
    if let Some(by) = interrupt::received() {
        return finish_interrupted(by, &run_dir, &scenarios, &rows, &mut base, &mut new);
    }
    for side in [&mut base, &mut new] {
        side.file.partial = false;
    }
    write_sides(&run_dir, &mut base, &mut new)?;
    let comparison = analyse(&run_dir, &args, notes)?;
    let header = PairedHeader {
        base: &base.label,
        new: &new.label,
        rounds: args.rounds,
        threshold_pct: args.threshold,
        alpha: args.alpha,
        control: rows
            .iter()
            .any(|r| matches!(r, Row::NatsServer))
            .then_some(crate::measure::NATS_SERVER),
    };
    let text = paired_text(&comparison, &header, args.all);
    let markdown = paired_markdown(&comparison, &header, args.all);
    std::fs::write(run_dir.join("compare.txt"), &text).context("writing compare.txt")?;
    std::fs::write(run_dir.join("compare.md"), &markdown).context("writing compare.md")?;
    print!("{}", if args.markdown { &markdown } else { &text });
    eprintln!(
        "fanbench: measured in {elapsed:.0} s (estimated {estimate:.0} s); {}",
        run_dir.display()
    );
    let regressed = comparison.count(|v| *v == Verdict::Regressed);
    if args.fail_on_regression && regressed > 0 {
        bail!("{regressed} metric(s) regressed (--fail-on-regression)");
    }
    Ok(())
}

/// Why `row` cannot be compared, if it cannot.
fn unavailable(row: Row, base: &Side, new: &Side, placement: &Placement) -> Option<String> {
    if let Some(why) = row.info(placement).unavailable_reason {
        return Some(why);
    }
    for side in [base, new] {
        if !side.serves(row) {
            return Some(format!(
                "{} has no row {} (its rows: {})",
                side.label,
                row.name(),
                side.rows.join(", ")
            ));
        }
    }
    None
}

/// Rounds measured at most beyond `--rounds` per pair, to replace rounds with an invalid side
/// (mostly host noise: another process took the CPU), which the test leaves out.
const EXTRA_ROUNDS: u32 = 2;
/// Extra rounds of the whole run, as a share of its planned rounds: bounds the time a noisy
/// machine adds (measured times of the default run are in README.md).
const EXTRA_SHARE: f64 = 1.0 / 10.0;

/// How each (workload, row) pair is measured: both sides' servers, where, and how often.
struct Interleave<'a> {
    base: &'a Side,
    new: &'a Side,
    placement: &'a Placement,
    log_dir: &'a Path,
    rounds: u32,
}

impl Interleave<'_> {
    /// `row` measured once per side per round in alternating order (A B, B A, ...), each
    /// repetition by a server started for it and stopped after it, until `rounds` rounds are
    /// valid on both sides (or [`EXTRA_ROUNDS`] more were tried, or `extra_budget` ran out,
    /// or no planned round was valid); then both sides' results assembled.
    ///
    /// A server per repetition, not per pair: a server instance keeps its own few percent of
    /// peak RSS (allocator arenas, pages of the executable it touched) through every
    /// repetition it serves, so one instance per side and pair made every round of an A/A
    /// pair show the same offset and the test took it for a change. Starting and stopping a
    /// server costs about 0.1 s of a repetition's 2.3 s.
    fn measure(
        &self,
        row: Row,
        scenario: &Scenario,
        extra_budget: &mut u32,
    ) -> anyhow::Result<(ScenarioResult, ScenarioResult)> {
        let sides = [self.base, self.new];
        let mut reps: [Vec<Repetition>; 2] = [Vec::new(), Vec::new()];
        let mut configs: [Option<RuntimeConfig>; 2] = [None, None];
        let mut stats_failures: [Option<String>; 2] = [None, None];
        let rounds = self.rounds;
        let (mut round, mut valid) = (0, 0);
        while valid < rounds && round < rounds + EXTRA_ROUNDS {
            if round >= rounds {
                // A pair with no valid planned round is invalid by nature here (e.g. the load
                // generator cannot keep its schedule): more rounds would only cost time.
                if *extra_budget == 0 || valid == 0 {
                    break;
                }
                *extra_budget -= 1;
            }
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for side in order {
                // No new server once told to stop (the signal thread stops the running ones).
                interrupt::check()?;
                let tag = format!("{}.r{round}", SIDE_TAGS[side]);
                let mut server = LiveServer::start(
                    row,
                    sides[side].program.as_deref(),
                    scenario
                        .coalesce_us
                        .filter(|_| sides[side].takes_coalesce_us),
                    scenario,
                    self.placement,
                    self.log_dir,
                    &tag,
                )
                .with_context(|| {
                    format!(
                        "starting the {} server ({}), round {round}",
                        SIDE_TAGS[side], sides[side].label
                    )
                })?;
                let rep = match server.repetition(scenario, round) {
                    Ok(rep) => rep,
                    Err(err) => {
                        server.abandon();
                        return Err(err.context(format!("round {round}, {} side", SIDE_TAGS[side])));
                    }
                };
                let (config, stats) = server.stop();
                if let (Some(why), None) = (stats.null_reason(), &stats_failures[side]) {
                    if matches!(row, Row::Fanbench(_)) {
                        stats_failures[side] = Some(format!("round {round}: {why}"));
                    }
                }
                configs[side].get_or_insert(config);
                reps[side].push(rep);
            }
            if reps.iter().all(|r| r.last().is_some_and(|rep| rep.valid)) {
                valid += 1;
            }
            round += 1;
        }
        let mut results = Vec::with_capacity(2);
        for side in 0..2 {
            let config = configs[side].take().context("no round was measured")?;
            let stats = match (row, stats_failures[side].take()) {
                (Row::NatsServer, _) => Measured::null("nats-server has no --stats-out counters"),
                (_, Some(why)) => Measured::null(why),
                (_, None) => Measured::null(format!(
                    "a server per round: each round's counters are in logs/{}.{}.{}.r<round>.stats.json",
                    scenario.name,
                    row.name(),
                    SIDE_TAGS[side]
                )),
            };
            let side_reps = std::mem::take(&mut reps[side]);
            results.push(assemble_rounds(scenario, config, side_reps, stats)?);
        }
        let new = results.pop().context("new side")?;
        let base = results.pop().context("base side")?;
        Ok((base, new))
    }
}

/// The log and stats file tags of the two sides.
const SIDE_TAGS: [&str; 2] = ["base", "new"];

/// Told to stop: every pair not measured is listed as skipped with the signal, both files
/// are written flagged partial, and the error says how the run was stopped.
fn finish_interrupted(
    by: Interrupted,
    run_dir: &Path,
    scenarios: &[Scenario],
    rows: &[Row],
    base: &mut Side,
    new: &mut Side,
) -> anyhow::Result<()> {
    let reason = format!("not measured: the run was {by}");
    for side in [&mut *base, &mut *new] {
        let pairs = scenarios.iter().flat_map(|scenario| {
            rows.iter()
                .map(move |row| (scenario.name.as_str(), row.name()))
        });
        side.file.mark_interrupted(pairs, &reason, by.signal_name());
    }
    write_sides(run_dir, base, new)?;
    eprintln!(
        "fanbench: {by}: the pairs measured so far are in {0}; `fanbench compare --paired \
         {0}/base {0}/new` compares them",
        run_dir.display()
    );
    Err(by.into())
}

fn write_sides(run_dir: &Path, base: &mut Side, new: &mut Side) -> anyhow::Result<()> {
    for (name, side) in [("base", base), ("new", new)] {
        side.file.finished_at = Some(sysinfo::rfc3339(SystemTime::now()));
        write_results(&run_dir.join(name).join("results.json"), &side.file)?;
    }
    Ok(())
}

/// The paired comparison of the two results files just written.
fn analyse(
    run_dir: &Path,
    args: &CompareRevsArgs,
    notes: Vec<String>,
) -> anyhow::Result<PairedComparison> {
    let load = |name: &str| ResultsDoc::load(&run_dir.join(name).join("results.json"));
    let (base, new) = (load("base")?, load("new")?);
    let criteria = Criteria {
        threshold_pct: args.threshold,
        alpha: args.alpha,
    };
    let mut comparison = compare_paired(&base, &new, Some(crate::measure::NATS_SERVER), criteria);
    comparison.warnings.extend(notes);
    Ok(comparison)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: CompareRevsArgs,
    }

    fn parse(extra: &[&str]) -> CompareRevsArgs {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workloads");
        let dir = dir.display().to_string();
        let mut argv = vec!["fanbench", "main", "--workloads-dir", &dir];
        argv.extend(extra);
        Cli::parse_from(argv).args
    }

    #[test]
    fn default_compare_fits_fifteen_minutes_for_ten_rows() {
        let args = parse(&[]);
        let scenarios = scenarios(&args).expect("load");
        assert_eq!(scenarios.len(), DEFAULT_WORKLOADS.len());
        assert!(scenarios.iter().all(|s| s.repetitions == DEFAULT_ROUNDS));
        let estimate = estimate_seconds(10, &scenarios) + extra_estimate_seconds(10, &scenarios);
        assert!(estimate < 14.0 * 60.0, "estimate {estimate} s");
    }

    #[test]
    fn reps_are_refused_in_favour_of_rounds() {
        let err = scenarios(&parse(&["--reps", "5"])).expect_err("--reps refused");
        assert!(format!("{err:#}").contains("--rounds"), "{err:#}");
        let five = scenarios(&parse(&["--rounds", "5"])).expect("load");
        assert!(five.iter().all(|s| s.repetitions == 5));
    }
}
