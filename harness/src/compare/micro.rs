//! `fanbench compare` on micro costs: the two runs' `micro.json`, cell by cell (operation,
//! runtime), judged with criterion's confidence intervals.
//!
//! Criterion's interval says how precisely one run measured a cell; it says nothing about how
//! much the same cell moves between two runs, which on a shared machine is far more (another
//! job running on the benchmark's CPU during one cell's fraction of a second). So a cell
//! changes only when three things hold: the two intervals do not overlap; the estimate moved
//! by more than a minimum (`--micro-threshold`); and the move stands out from the two runs'
//! own run-to-run noise, measured on every cell they share (`--micro-noise` robust standard
//! deviations of log(new/base) from its median). results/README.md has the A/A runs that set
//! the defaults.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use fanbench_plots::micro::{fmt_ns, MicroDoc, MicroEntry, MICRO_FILE};

use super::metrics::Verdict;
use super::render::md_escape;
use super::CompareArgs;

/// Default `--micro-threshold`: a change below 10 % is never a verdict. Criterion's own noise
/// threshold is 1 %, for one machine re-running one benchmark back to back; two whole runs of
/// the suite here differ by more than that on almost every cell.
pub const DEFAULT_THRESHOLD_PCT: f64 = 10.0;
/// Default `--micro-noise`: how many robust standard deviations of the runs' own cell-to-cell
/// spread a change must stand out by. The A/A runs in results/README.md set it.
pub const DEFAULT_NOISE_K: f64 = 5.0;
/// Fewer cells compared on both sides than this and their spread is not a usable estimate of
/// the noise: the third rule is then not applied (and the output says so).
pub const MIN_CELLS_FOR_NOISE: usize = 8;
/// 1 / Φ⁻¹(3/4): scales a median absolute deviation to a standard deviation for normal data.
const MAD_TO_SD: f64 = 1.4826;

/// How a micro cell is judged.
#[derive(Debug, Clone, Copy)]
pub struct MicroCriteria {
    /// Smallest |change| that counts, in percent of the base estimate.
    pub threshold_pct: f64,
    /// Robust standard deviations of the runs' noise a change must exceed (0: rule off).
    pub noise_k: f64,
}

impl MicroCriteria {
    fn of(args: &CompareArgs) -> anyhow::Result<Self> {
        if !(args.micro_threshold >= 0.0 && args.micro_threshold.is_finite()) {
            bail!("--micro-threshold must be a non-negative percentage");
        }
        if !(args.micro_noise >= 0.0 && args.micro_noise.is_finite()) {
            bail!("--micro-noise must be a non-negative number of standard deviations");
        }
        Ok(MicroCriteria {
            threshold_pct: args.micro_threshold,
            noise_k: args.micro_noise,
        })
    }
}

/// One side's figure for a cell: criterion's point estimate and interval, per operation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figure {
    pub ns: f64,
    pub ci_ns: [f64; 2],
}

/// One (operation, runtime) of the comparison.
#[derive(Debug, Clone)]
pub struct MicroRow {
    pub operation: String,
    pub runtime: String,
    pub base: Option<Figure>,
    pub new: Option<Figure>,
    /// (new - base) / base: positive is slower (these are times).
    pub change: Option<f64>,
    pub verdict: Verdict,
    /// Which rule decided, or why the cell was not compared.
    pub note: String,
}

/// The two runs' noise, from every cell measured on both sides.
#[derive(Debug, Clone, Copy)]
pub struct Noise {
    /// Cells it was estimated on.
    pub cells: usize,
    /// Median of log(new / base) over those cells: how much the whole run moved.
    pub median_log: f64,
    /// Robust standard deviation of log(new / base) (1.4826 x the median absolute deviation).
    pub spread_log: f64,
}

impl Noise {
    /// The band of changes (as fractions) that do not stand out from the noise.
    pub fn band(&self, k: f64) -> (f64, f64) {
        (
            (self.median_log - k * self.spread_log).exp() - 1.0,
            (self.median_log + k * self.spread_log).exp() - 1.0,
        )
    }
}

/// The micro costs of two runs compared.
#[derive(Debug, Clone)]
pub struct MicroComparison {
    pub rows: Vec<MicroRow>,
    pub criteria: MicroCriteria,
    /// `None` when fewer than [`MIN_CELLS_FOR_NOISE`] cells were measured on both sides.
    pub noise: Option<Noise>,
    /// Criterion's confidence level of the intervals (0.95), when the files say.
    pub confidence_level: Option<f64>,
    /// Rows with a timer-lateness distribution on both sides (shown, never judged).
    pub lateness_rows: usize,
    pub warnings: Vec<String>,
}

impl MicroComparison {
    pub fn count(&self, pred: impl Fn(&Verdict) -> bool) -> usize {
        self.rows.iter().filter(|r| pred(&r.verdict)).count()
    }

    pub fn regressed(&self) -> usize {
        self.count(|v| *v == Verdict::Regressed)
    }
}

/// A usable figure from an entry, or why there is none.
fn figure(entry: &MicroEntry) -> Result<Figure, String> {
    let Some(est) = &entry.estimate else {
        return Err(entry
            .absent_reason
            .clone()
            .unwrap_or_else(|| "no estimate and no reason given".into()));
    };
    let [lo, hi] = est.per_element_ci_ns;
    let sane = est.per_element_ns.is_finite()
        && est.per_element_ns > 0.0
        && lo.is_finite()
        && hi.is_finite()
        && lo <= hi;
    if !sane {
        return Err(format!(
            "estimate {} ns with interval [{lo}, {hi}] is not a positive time with an interval",
            est.per_element_ns
        ));
    }
    Ok(Figure {
        ns: est.per_element_ns,
        ci_ns: [lo, hi],
    })
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn noise_of(log_ratios: &[f64]) -> Option<Noise> {
    if log_ratios.len() < MIN_CELLS_FOR_NOISE {
        return None;
    }
    let mut sorted = log_ratios.to_vec();
    sorted.sort_by(f64::total_cmp);
    let m = median(&sorted);
    let mut deviations: Vec<f64> = sorted.iter().map(|r| (r - m).abs()).collect();
    deviations.sort_by(f64::total_cmp);
    Some(Noise {
        cells: sorted.len(),
        median_log: m,
        spread_log: MAD_TO_SD * median(&deviations),
    })
}

/// The (operation, runtime) cells of both files, each once, operation by operation in the
/// order the files list them (base first).
fn cells(base: &MicroDoc, new: &MicroDoc) -> Vec<(String, String)> {
    let mut operations: Vec<&str> = Vec::new();
    for name in base
        .operations
        .iter()
        .map(|o| o.name.as_str())
        .chain(base.entries.iter().map(|e| e.operation.as_str()))
        .chain(new.operations.iter().map(|o| o.name.as_str()))
        .chain(new.entries.iter().map(|e| e.operation.as_str()))
    {
        if !operations.contains(&name) {
            operations.push(name);
        }
    }
    let mut keys = Vec::new();
    for op in operations {
        for e in base.entries.iter().chain(&new.entries) {
            if e.operation == op && !keys.iter().any(|(o, r)| o == op && *r == e.runtime) {
                keys.push((op.to_string(), e.runtime.clone()));
            }
        }
    }
    keys
}

fn find<'a>(doc: &'a MicroDoc, op: &str, runtime: &str) -> Option<&'a MicroEntry> {
    doc.entries
        .iter()
        .find(|e| e.operation == op && e.runtime == runtime)
}

fn duplicates(doc: &MicroDoc, side: &str) -> Option<String> {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    let mut dup = Vec::new();
    for e in &doc.entries {
        let key = (e.operation.as_str(), e.runtime.as_str());
        if seen.contains(&key) {
            dup.push(format!("{}/{}", key.0, key.1));
        } else {
            seen.push(key);
        }
    }
    (!dup.is_empty()).then(|| {
        format!(
            "{side} lists {} more than once (the first is compared)",
            dup.join(", ")
        )
    })
}

fn setting<'a>(doc: &'a MicroDoc, name: &str) -> Option<&'a serde_json::Value> {
    doc.settings.get(name).filter(|v| !v.is_null())
}

/// Compares two micro.json files cell by cell.
pub fn compare(base: &MicroDoc, new: &MicroDoc, criteria: MicroCriteria) -> MicroComparison {
    let mut warnings = Vec::new();
    warnings.extend(duplicates(base, "base"));
    warnings.extend(duplicates(new, "new"));
    for name in ["budget", "sample_size", "cpu", "peer_cpu"] {
        if let (Some(b), Some(n)) = (setting(base, name), setting(new, name)) {
            if b != n {
                warnings.push(format!(
                    "the runs differ in settings.{name} (base {b}, new {n}): their intervals \
                     and figures are not measured alike"
                ));
            }
        }
    }
    let level = |doc: &MicroDoc| {
        doc.entries
            .iter()
            .filter_map(|e| e.estimate.as_ref())
            .map(|e| e.confidence_level)
            .find(|l| *l > 0.0)
    };
    let confidence_level = match (level(base), level(new)) {
        (Some(b), Some(n)) if (b - n).abs() > 1e-9 => {
            warnings.push(format!(
                "the runs' intervals have different confidence levels (base {b}, new {n})"
            ));
            None
        }
        (b, n) => b.or(n),
    };

    // First pass: each cell's figures, or why it cannot be compared.
    struct Pending {
        row: MicroRow,
        log_ratio: Option<f64>,
    }
    let mut pending = Vec::new();
    for (op, runtime) in cells(base, new) {
        let (b, n) = (find(base, &op, &runtime), find(new, &op, &runtime));
        let mut row = MicroRow {
            operation: op,
            runtime,
            base: None,
            new: None,
            change: None,
            verdict: Verdict::NoChange,
            note: String::new(),
        };
        let mut log_ratio = None;
        match (b, n) {
            (Some(_), None) => {
                row.base = b.and_then(|e| figure(e).ok());
                row.verdict = Verdict::OnlyIn("base");
                row.note = "not in the new run".into();
            }
            (None, Some(_)) => {
                row.new = n.and_then(|e| figure(e).ok());
                row.verdict = Verdict::OnlyIn("new");
                row.note = "not in the base run".into();
            }
            (Some(b), Some(n)) => match (figure(b), figure(n)) {
                (Ok(fb), Ok(fn_)) => {
                    row.base = Some(fb);
                    row.new = Some(fn_);
                    row.change = Some((fn_.ns - fb.ns) / fb.ns);
                    log_ratio = Some((fn_.ns / fb.ns).ln());
                }
                (fb, fn_) => {
                    row.base = fb.as_ref().ok().copied();
                    row.new = fn_.as_ref().ok().copied();
                    let why = match (fb.err(), fn_.err()) {
                        (Some(b), Some(n)) if b == n => format!("both runs: {b}"),
                        (b, n) => [("base", b), ("new", n)]
                            .into_iter()
                            .filter_map(|(side, e)| e.map(|e| format!("{side}: {e}")))
                            .collect::<Vec<_>>()
                            .join("; "),
                    };
                    row.verdict = Verdict::NotMeasured(why.clone());
                    row.note = why;
                }
            },
            (None, None) => unreachable!("cells() lists only entries of either file"),
        }
        pending.push(Pending { row, log_ratio });
    }

    let logs: Vec<f64> = pending.iter().filter_map(|p| p.log_ratio).collect();
    let noise = noise_of(&logs);
    let threshold = criteria.threshold_pct / 100.0;
    let rows = pending
        .into_iter()
        .map(|p| {
            let mut row = p.row;
            let (Some(log_ratio), Some(b), Some(n), Some(change)) =
                (p.log_ratio, row.base, row.new, row.change)
            else {
                return row;
            };
            let overlap = b.ci_ns[0] <= n.ci_ns[1] && n.ci_ns[0] <= b.ci_ns[1];
            let outside_noise = |noise: &Noise| {
                (log_ratio - noise.median_log).abs() > criteria.noise_k * noise.spread_log
            };
            (row.verdict, row.note) = if overlap {
                (Verdict::NoChange, "intervals overlap".into())
            } else if change.abs() <= threshold {
                (
                    Verdict::NoChange,
                    format!("intervals apart, within ±{}%", criteria.threshold_pct),
                )
            } else if noise.as_ref().is_some_and(|nz| !outside_noise(nz)) {
                (
                    Verdict::NoChange,
                    "intervals apart, beyond the threshold, within the runs' noise".into(),
                )
            } else {
                let verdict = if change > 0.0 {
                    Verdict::Regressed
                } else {
                    Verdict::Improved
                };
                let rule = if noise.is_some() {
                    ", outside the runs' noise"
                } else {
                    ""
                };
                (
                    verdict,
                    format!("intervals apart, beyond ±{}%{rule}", criteria.threshold_pct),
                )
            };
            row
        })
        .collect();

    if let Some(nz) = &noise {
        let shift = nz.median_log.exp() - 1.0;
        if shift.abs() > threshold {
            warnings.push(format!(
                "the median micro cost moved {:+.1}% between the runs: the machine (other load, \
                 frequency) or a change to every operation, which no per-cell verdict can tell \
                 apart; cells are judged by how far they stand out from that move",
                shift * 100.0
            ));
        }
    }
    let lateness_rows = base
        .timer_lateness
        .iter()
        .filter(|b| b.lateness.is_some())
        .filter(|b| {
            new.timer_lateness
                .iter()
                .any(|n| n.runtime == b.runtime && n.lateness.is_some())
        })
        .count();
    MicroComparison {
        rows,
        criteria,
        noise,
        confidence_level,
        lateness_rows,
        warnings,
    }
}

/// The micro part of `fanbench compare`'s output, ready to print.
pub struct Section {
    pub text: String,
    /// Cells that regressed (0 when nothing was compared).
    pub regressed: usize,
}

/// A side given as micro costs alone: a micro.json file (by name, or by its `kind`), or a
/// directory with a micro.json and no results.json (what `fanbench micro` writes).
fn micro_only(spec: &str) -> Option<PathBuf> {
    let path = Path::new(spec);
    if path.is_dir() {
        let micro = path.join(MICRO_FILE);
        let results = path.join(fanbench_plots::RESULTS_FILE);
        return (micro.is_file() && !results.is_file()).then_some(micro);
    }
    if !path.is_file() {
        return None;
    }
    if path.file_name().is_some_and(|n| n == MICRO_FILE) {
        return Some(path.to_path_buf());
    }
    #[derive(serde::Deserialize)]
    struct Kind {
        kind: Option<String>,
    }
    let text = std::fs::read_to_string(path).ok()?;
    let kind: Kind = serde_json::from_str(&text).ok()?;
    (kind.kind.as_deref() == Some("micro")).then(|| path.to_path_buf())
}

fn load(path: &Path, side: &str) -> anyhow::Result<MicroDoc> {
    MicroDoc::load(path).with_context(|| format!("{side}: the micro costs"))
}

fn label(path: &Path, doc: &MicroDoc) -> String {
    let budget = doc
        .settings
        .get("budget")
        .and_then(|b| b.as_str())
        .map(|b| format!(", {b} budget"))
        .unwrap_or_default();
    format!("{} (run {}{budget})", path.display(), doc.run_id)
}

fn render(args: &CompareArgs, base: (&Path, &MicroDoc), new: (&Path, &MicroDoc)) -> Section {
    let criteria = MicroCriteria {
        threshold_pct: args.micro_threshold,
        noise_k: args.micro_noise,
    };
    let c = compare(base.1, new.1, criteria);
    let (bl, nl) = (label(base.0, base.1), label(new.0, new.1));
    let text = if args.markdown {
        markdown(&c, &bl, &nl, args.all)
    } else {
        text(&c, &bl, &nl, args.all)
    };
    Section {
        text,
        regressed: c.regressed(),
    }
}

/// When BASE or NEW holds micro costs alone, the comparison of the two runs' micro costs (the
/// other side's micro.json beside its results); `None` when both sides are results.
pub fn alone(args: &CompareArgs) -> anyhow::Result<Option<Section>> {
    let (base_only, new_only) = (micro_only(&args.base), micro_only(&args.new));
    if base_only.is_none() && new_only.is_none() {
        return Ok(None);
    }
    MicroCriteria::of(args)?;
    let side = |only: Option<PathBuf>, spec: &str, name: &str| -> anyhow::Result<PathBuf> {
        if let Some(path) = only {
            return Ok(path);
        }
        let resolved = super::resolve(spec, &args.results_dir).context(name.to_string())?;
        let micro = beside(&resolved.path);
        if !micro.is_file() {
            bail!(
                "{name} ({}) has no {MICRO_FILE} beside its results, and the other side holds \
                 only micro costs: nothing to compare",
                resolved.path.display()
            );
        }
        Ok(micro)
    };
    let with_results = match (&base_only, &new_only) {
        (None, _) => Some("BASE"),
        (_, None) => Some("NEW"),
        _ => None,
    };
    let base = side(base_only, &args.base, "BASE")?;
    let new = side(new_only, &args.new, "NEW")?;
    let (b, n) = (load(&base, "BASE")?, load(&new, "NEW")?);
    let mut section = render(args, (&base, &b), (&new, &n));
    if let Some(name) = with_results {
        section.text = format!(
            "Only micro costs compared: the other side of {name} holds micro costs alone, so \
             there are no fan-out results to set beside {name}'s.\n\n{}",
            section.text
        );
    }
    Ok(Some(section))
}

fn beside(results: &Path) -> PathBuf {
    results
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(MICRO_FILE)
}

/// The micro costs beside two results files: compared when both have a micro.json, a line
/// saying which side has one when only one does, `None` when neither does.
pub fn beside_results(
    args: &CompareArgs,
    base_results: &Path,
    new_results: &Path,
) -> anyhow::Result<Option<Section>> {
    MicroCriteria::of(args)?;
    let (base, new) = (beside(base_results), beside(new_results));
    match (base.is_file(), new.is_file()) {
        (true, true) => {
            let (b, n) = (load(&base, "BASE")?, load(&new, "NEW")?);
            Ok(Some(render(args, (&base, &b), (&new, &n))))
        }
        (false, false) => Ok(None),
        (has_base, _) => {
            let (side, path, other) = if has_base {
                ("base", &base, "new")
            } else {
                ("new", &new, "base")
            };
            Ok(Some(Section {
                text: format!(
                    "\nMicro costs: not compared, only the {side} run has them ({}); the {other} \
                     run has no {MICRO_FILE}.\n",
                    path.display()
                ),
                regressed: 0,
            }))
        }
    }
}

fn fmt_ci(f: &Option<Figure>) -> String {
    f.map(|f| format!("[{}, {}]", fmt_ns(f.ci_ns[0]), fmt_ns(f.ci_ns[1])))
        .unwrap_or_default()
}

fn cells_of(row: &MicroRow) -> [String; 8] {
    let value = |f: &Option<Figure>| f.map(|f| fmt_ns(f.ns)).unwrap_or_else(|| "n/a".into());
    [
        row.operation.clone(),
        row.runtime.clone(),
        value(&row.base),
        fmt_ci(&row.base),
        value(&row.new),
        fmt_ci(&row.new),
        row.change
            .map(|c| format!("{:+.1}%", c * 100.0))
            .unwrap_or_default(),
        format!("{} ({})", row.verdict.label(), row.note),
    ]
}

const HEADER: [&str; 8] = [
    "operation",
    "runtime",
    "base",
    "base CI",
    "new",
    "new CI",
    "change",
    "verdict",
];

/// How the verdicts were reached, with this pair's noise figures.
fn rule(c: &MicroComparison) -> Vec<String> {
    let level = c
        .confidence_level
        .map(|l| format!("{}%", l * 100.0))
        .unwrap_or_else(|| "confidence".into());
    let mut lines = vec![format!(
        "Rule: a cell (time per operation; up is slower) changed only when criterion's {level} \
         intervals of the two runs do not overlap, AND the estimate moved by more than {}% \
         (--micro-threshold), AND the move stands out from the two runs' own noise by more \
         than {} robust standard deviations (--micro-noise) of log(new/base) over every cell \
         measured on both sides, around their median.",
        c.criteria.threshold_pct, c.criteria.noise_k
    )];
    lines.push(match &c.noise {
        Some(nz) => {
            let (lo, hi) = nz.band(c.criteria.noise_k);
            format!(
                "Noise of these runs over {} cells: median change {:+.1}%, robust standard \
                 deviation {:.1}% (1.4826 x MAD of the log ratio): a cell must move outside \
                 {:+.1}%..{:+.1}% to count.",
                nz.cells,
                (nz.median_log.exp() - 1.0) * 100.0,
                nz.spread_log * 100.0,
                lo * 100.0,
                hi * 100.0
            )
        }
        None => format!(
            "The third rule is not applied: fewer than {MIN_CELLS_FOR_NOISE} cells were \
             measured on both sides to estimate the runs' noise from."
        ),
    });
    if c.lateness_rows > 0 {
        lines.push(format!(
            "Timer lateness ({} rows on both sides) gets no verdict: it is a distribution of \
             sleeps without a confidence interval (the reports show it).",
            c.lateness_rows
        ));
    }
    lines
}

fn counts(c: &MicroComparison) -> String {
    format!(
        "micro costs: {} regressed, {} improved, {} no change, {} not measured, {} only on one \
         side",
        c.regressed(),
        c.count(|v| *v == Verdict::Improved),
        c.count(|v| *v == Verdict::NoChange),
        c.count(|v| matches!(v, Verdict::NotMeasured(_))),
        c.count(|v| matches!(v, Verdict::OnlyIn(_))),
    )
}

/// Changed cells; cells that could not be compared (always listed); unchanged ones with `all`.
fn sections(c: &MicroComparison, all: bool) -> [Vec<&MicroRow>; 3] {
    let of = |pred: &dyn Fn(&Verdict) -> bool| c.rows.iter().filter(|r| pred(&r.verdict)).collect();
    [
        of(&|v| matches!(v, Verdict::Regressed | Verdict::Improved)),
        of(&|v| matches!(v, Verdict::NotMeasured(_) | Verdict::OnlyIn(_))),
        if all {
            of(&|v| *v == Verdict::NoChange)
        } else {
            Vec::new()
        },
    ]
}

fn aligned(rows: &[&MicroRow]) -> String {
    let rows: Vec<[String; 8]> = rows.iter().map(|r| cells_of(r)).collect();
    let mut widths = HEADER.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header = HEADER.map(String::from);
    let rule = widths.map(|w| "-".repeat(w));
    let mut out = String::new();
    for cells in [&header, &rule].into_iter().chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
            // Figures right-aligned, words left-aligned.
            if (2..=6).contains(&i) {
                line.push_str(&pad);
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&pad);
            }
            line.push_str("  ");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// The micro comparison as plain text: what changed first, unchanged cells counted unless `all`.
pub fn text(c: &MicroComparison, base_label: &str, new_label: &str, all: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nMicro costs ({MICRO_FILE})\nbase: {base_label}\nnew:  {new_label}\n"
    );
    for line in rule(c) {
        let _ = writeln!(out, "{line}");
    }
    let [changed, apart, unchanged] = sections(c, all);
    let _ = writeln!(out, "\nChanged: {}", changed.len());
    if !changed.is_empty() {
        out.push_str(&aligned(&changed));
    }
    if !apart.is_empty() {
        let _ = writeln!(out, "\nNot compared: {}", apart.len());
        out.push_str(&aligned(&apart));
    }
    if all {
        let _ = writeln!(out, "\nNo change: {}", unchanged.len());
        if !unchanged.is_empty() {
            out.push_str(&aligned(&unchanged));
        }
    } else {
        let _ = writeln!(
            out,
            "{} cell(s) with no change are not listed (--all lists them).",
            c.count(|v| *v == Verdict::NoChange)
        );
    }
    for warning in &c.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    let _ = writeln!(out, "\n{}", counts(c));
    out
}

/// The micro comparison as Markdown: the changes as a table, the cells that could not be
/// compared listed, the unchanged ones in a `<details>` block with `all`.
pub fn markdown(c: &MicroComparison, base_label: &str, new_label: &str, all: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n**Micro costs** (`{MICRO_FILE}`): base `{}` vs new `{}`\n",
        md_escape(base_label),
        md_escape(new_label)
    );
    let _ = writeln!(out, "{}\n", counts(c));
    let table = |out: &mut String, rows: &[&MicroRow]| {
        let _ = writeln!(out, "| {} |", HEADER.join(" | "));
        let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|---|");
        for row in rows {
            let mut cells = cells_of(row).map(|cell| md_escape(&cell));
            if matches!(row.verdict, Verdict::Regressed | Verdict::Improved) {
                cells[7] = format!("**{}**", cells[7]);
            }
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
    };
    let [changed, apart, unchanged] = sections(c, all);
    if changed.is_empty() {
        let _ = writeln!(out, "No micro cost changed.\n");
    } else {
        table(&mut out, &changed);
        out.push('\n');
    }
    for line in rule(c) {
        let _ = writeln!(out, "{}\n", md_escape(&line));
    }
    for warning in &c.warnings {
        let _ = writeln!(out, "> warning: {}\n", md_escape(warning));
    }
    if !apart.is_empty() {
        let _ = writeln!(out, "Not compared: {}\n", apart.len());
        table(&mut out, &apart);
        out.push('\n');
    }
    let _ = writeln!(out, "<details><summary>No change</summary>\n");
    if all {
        if !unchanged.is_empty() {
            table(&mut out, &unchanged);
            out.push('\n');
        }
    } else {
        let _ = writeln!(
            out,
            "{} cell(s) with no change are not listed (`--all` lists them)",
            c.count(|v| *v == Verdict::NoChange)
        );
    }
    let _ = writeln!(out, "\n</details>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn fixture_text() -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/micro.json");
        std::fs::read_to_string(&path).expect("fixture exists")
    }

    fn doc(value: &Value) -> MicroDoc {
        MicroDoc::parse(&value.to_string()).expect("fixture parses")
    }

    fn fixture() -> Value {
        serde_json::from_str(&fixture_text()).expect("fixture is JSON")
    }

    /// The fixture with the estimate and interval of (op, runtime) multiplied by `factor`.
    fn scaled(op: &str, runtime: &str, factor: f64) -> Value {
        let mut v = fixture();
        let entry = v["entries"]
            .as_array_mut()
            .expect("entries")
            .iter_mut()
            .find(|e| e["operation"] == op && e["runtime"] == runtime)
            .expect("cell in the fixture");
        let est = &mut entry["estimate"];
        for key in ["per_element_ns", "per_iteration_ns"] {
            est[key] = serde_json::json!(est[key].as_f64().expect("number") * factor);
        }
        for key in ["per_element_ci_ns", "per_iteration_ci_ns"] {
            for bound in est[key].as_array_mut().expect("interval") {
                *bound = serde_json::json!(bound.as_f64().expect("number") * factor);
            }
        }
        v
    }

    fn criteria() -> MicroCriteria {
        MicroCriteria {
            threshold_pct: DEFAULT_THRESHOLD_PCT,
            noise_k: DEFAULT_NOISE_K,
        }
    }

    fn judged(c: &MicroComparison) -> Vec<(&str, &str, &Verdict)> {
        c.rows
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Regressed | Verdict::Improved))
            .map(|r| (r.operation.as_str(), r.runtime.as_str(), &r.verdict))
            .collect()
    }

    #[test]
    fn fixture_follows_the_harness_writer() {
        let v = fixture();
        assert_eq!(v["schema_version"], crate::micro::MICRO_SCHEMA_VERSION);
        assert_eq!(v["kind"], "micro");
        for e in v["entries"].as_array().expect("entries") {
            let _: fanbench_micro::MicroEntry =
                serde_json::from_value(e.clone()).expect("entry matches MicroEntry");
        }
    }

    #[test]
    fn a_run_compared_with_itself_has_no_change() {
        let d = doc(&fixture());
        let c = compare(&d, &d, criteria());
        assert!(c.rows.len() >= MIN_CELLS_FOR_NOISE, "{}", c.rows.len());
        assert!(judged(&c).is_empty(), "{:?}", judged(&c));
        assert!(c.rows.iter().all(|r| r.change.is_none_or(|ch| ch == 0.0)));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        // The fixture's threads row has no TCP round trip: listed, not judged, not dropped.
        let rt = c
            .rows
            .iter()
            .find(|r| r.operation == "tcp_round_trip_128" && r.runtime == "threads")
            .expect("the absent cell is listed");
        assert!(matches!(rt.verdict, Verdict::NotMeasured(_)), "{rt:?}");
        assert!(rt.note.starts_with("both runs: blocking"), "{}", rt.note);
    }

    #[test]
    fn one_estimate_doubled_is_exactly_one_regression() {
        let base = doc(&fixture());
        let new = doc(&scaled("spawn_many", "tokio", 2.0));
        let c = compare(&base, &new, criteria());
        assert_eq!(
            judged(&c),
            vec![("spawn_many", "tokio", &Verdict::Regressed)]
        );
        let row = c
            .rows
            .iter()
            .find(|r| r.operation == "spawn_many" && r.runtime == "tokio")
            .expect("row");
        assert!((row.change.expect("change") - 1.0).abs() < 1e-9);
        assert_eq!(c.regressed(), 1);
    }

    #[test]
    fn one_estimate_halved_is_exactly_one_improvement() {
        let base = doc(&fixture());
        let new = doc(&scaled("wake_local", "uring", 0.5));
        let c = compare(&base, &new, criteria());
        assert_eq!(
            judged(&c),
            vec![("wake_local", "uring", &Verdict::Improved)]
        );
        assert_eq!(c.regressed(), 0);
    }

    #[test]
    fn a_small_or_overlapping_move_is_no_change() {
        let base = doc(&fixture());
        // 5 % with the interval moved along: apart for the narrow intervals, within ±10 %.
        let c = compare(
            &base,
            &doc(&scaled("spawn_many", "tokio", 1.05)),
            criteria(),
        );
        assert!(judged(&c).is_empty(), "{:?}", judged(&c));
        // Twice as slow but the threshold raised above it: no change either.
        let strict = MicroCriteria {
            threshold_pct: 150.0,
            ..criteria()
        };
        let c = compare(&base, &doc(&scaled("spawn_many", "tokio", 2.0)), strict);
        assert!(judged(&c).is_empty(), "{:?}", judged(&c));
        let row = c
            .rows
            .iter()
            .find(|r| r.operation == "spawn_many" && r.runtime == "tokio")
            .expect("row");
        assert!(row.note.contains("within ±150%"), "{}", row.note);
    }

    #[test]
    fn intervals_that_overlap_are_no_change_whatever_the_move() {
        let base = doc(&fixture());
        let mut v = scaled("spawn_many", "tokio", 2.0);
        // Widen the new interval down to the base estimate: they overlap.
        let entry = v["entries"]
            .as_array_mut()
            .expect("entries")
            .iter_mut()
            .find(|e| e["operation"] == "spawn_many" && e["runtime"] == "tokio")
            .expect("cell");
        let base_ns = base
            .entries
            .iter()
            .find(|e| e.operation == "spawn_many" && e.runtime == "tokio")
            .and_then(|e| e.estimate.as_ref())
            .expect("base estimate")
            .per_element_ns;
        entry["estimate"]["per_element_ci_ns"][0] = serde_json::json!(base_ns);
        let c = compare(&base, &doc(&v), criteria());
        assert!(judged(&c).is_empty(), "{:?}", judged(&c));
    }

    /// Every cell of the new run moved by a different amount (a noisy machine): a cell whose
    /// move is larger than the threshold but not than that spread gets no verdict; one far
    /// outside it does.
    #[test]
    fn a_move_within_the_runs_own_noise_is_no_change() {
        let base = doc(&fixture());
        let mut v = fixture();
        let factors = [0.8, 1.25, 0.85, 1.2, 0.9, 1.15, 1.0, 0.75, 1.3, 0.95, 1.1];
        let mut noisy = Vec::new();
        for (i, e) in v["entries"]
            .as_array_mut()
            .expect("entries")
            .iter_mut()
            .filter(|e| e["estimate"].is_object())
            .enumerate()
        {
            let f = factors[i % factors.len()];
            noisy.push((
                e["operation"].as_str().expect("op").to_string(),
                e["runtime"].as_str().expect("rt").to_string(),
            ));
            let est = &mut e["estimate"];
            est["per_element_ns"] = serde_json::json!(est["per_element_ns"].as_f64().unwrap() * f);
            for b in est["per_element_ci_ns"].as_array_mut().expect("ci") {
                *b = serde_json::json!(b.as_f64().unwrap() * f);
            }
        }
        let c = compare(&base, &doc(&v), criteria());
        let nz = c.noise.expect("enough cells for the noise");
        assert!(nz.spread_log > 0.1, "{nz:?}");
        assert!(judged(&c).is_empty(), "{:?}", judged(&c));
        assert!(c
            .rows
            .iter()
            .any(|r| r.note.contains("within the runs' noise")));
        // Without the noise rule, the same moves are verdicts.
        let off = MicroCriteria {
            noise_k: 0.0,
            ..criteria()
        };
        assert!(!judged(&compare(&base, &doc(&v), off)).is_empty());
        // One cell ten times slower on top stands out.
        let (op, rt) = &noisy[0];
        let entry = v["entries"]
            .as_array_mut()
            .expect("entries")
            .iter_mut()
            .find(|e| e["operation"] == op.as_str() && e["runtime"] == rt.as_str())
            .expect("cell");
        let est = &mut entry["estimate"];
        est["per_element_ns"] = serde_json::json!(est["per_element_ns"].as_f64().unwrap() * 10.0);
        for b in est["per_element_ci_ns"].as_array_mut().expect("ci") {
            *b = serde_json::json!(b.as_f64().unwrap() * 10.0);
        }
        let c = compare(&base, &doc(&v), criteria());
        assert_eq!(
            judged(&c),
            vec![(op.as_str(), rt.as_str(), &Verdict::Regressed)]
        );
    }

    #[test]
    fn cells_on_one_side_only_are_listed_as_such() {
        let base_v = fixture();
        let mut new_v = fixture();
        let entries = new_v["entries"].as_array_mut().expect("entries");
        // The new run lacks the tokio-reference cell and has an operation the base lacks.
        entries.retain(|e| e["runtime"] != "tokio-reference");
        let mut extra = entries[0].clone();
        extra["operation"] = serde_json::json!("brand_new_op");
        entries.push(extra);
        let c = compare(&doc(&base_v), &doc(&new_v), criteria());
        let only_base: Vec<_> = c
            .rows
            .iter()
            .filter(|r| r.verdict == Verdict::OnlyIn("base"))
            .map(|r| (r.operation.as_str(), r.runtime.as_str()))
            .collect();
        assert_eq!(only_base, vec![("spawn_many", "tokio-reference")]);
        let only_new: Vec<_> = c
            .rows
            .iter()
            .filter(|r| r.verdict == Verdict::OnlyIn("new"))
            .map(|r| r.operation.as_str())
            .collect();
        assert_eq!(only_new, vec!["brand_new_op"]);
        assert!(judged(&c).is_empty());
        let out = text(&c, "a", "b", false);
        assert!(out.contains("Not compared: 3"), "{out}");
        assert!(
            out.contains("only in base") && out.contains("only in new"),
            "{out}"
        );
        assert!(out.contains("brand_new_op"), "{out}");
    }

    #[test]
    fn a_bad_estimate_is_not_measured_not_a_panic() {
        let mut v = fixture();
        v["entries"][0]["estimate"]["per_element_ns"] = serde_json::json!(-1.0);
        let c = compare(&doc(&fixture()), &doc(&v), criteria());
        assert!(matches!(c.rows[0].verdict, Verdict::NotMeasured(_)));
        assert!(
            c.rows[0].note.contains("not a positive time"),
            "{}",
            c.rows[0].note
        );
    }

    #[test]
    fn different_budgets_are_warned_about() {
        let mut v = fixture();
        v["settings"]["budget"] = serde_json::json!("standard");
        let c = compare(&doc(&fixture()), &doc(&v), criteria());
        assert!(
            c.warnings.iter().any(|w| w.contains("settings.budget")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn views_lead_with_the_change_and_state_the_rule() {
        let base = doc(&fixture());
        let new = doc(&scaled("spawn_many", "tokio", 2.0));
        let c = compare(&base, &new, criteria());
        let plain = text(&c, "a", "b", false);
        assert!(plain.contains("Changed: 1"), "{plain}");
        assert!(plain.contains("--micro-threshold") && plain.contains("--micro-noise"));
        assert!(
            plain.contains("cell(s) with no change are not listed"),
            "{plain}"
        );
        assert!(
            plain.contains("micro costs: 1 regressed, 0 improved"),
            "{plain}"
        );
        let changed = plain
            .lines()
            .find(|l| l.starts_with("spawn_many") && l.contains("tokio "))
            .expect("the changed row");
        assert!(
            changed.contains("+100.0%") && changed.contains("regressed"),
            "{changed}"
        );
        let all = text(&c, "a", "b", true);
        assert!(all.contains("No change: "), "{all}");
        assert!(all.lines().count() > plain.lines().count());

        let md = markdown(&c, "a", "b", false);
        let table: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(
            table[0],
            "| operation | runtime | base | base CI | new | new CI | change | verdict |"
        );
        // The changed row first, then the one cell that could not be compared.
        assert!(table[2].contains("**regressed"), "{md}");
        assert!(table[2].starts_with("| spawn_many | tokio |"), "{md}");
        assert!(md.contains("<details>"));
    }
}
