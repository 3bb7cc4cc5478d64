//! The comparison as a terminal table or as Markdown (for a pull request comment).

use std::fmt::Write as _;

use fanbench_plots::charts::{fmt_latency_us, fmt_sig3};

use super::metrics::{Comparison, Row, Unit, Verdict};
use super::paired::{PairedComparison, PairedRow};

/// A value in the metric's unit.
pub fn format_value(value: Option<f64>, unit: Unit) -> String {
    let Some(v) = value else {
        return "n/a".into();
    };
    match unit {
        Unit::MsgsPerS if v >= 1000.0 => format!("{v:.0} msg/s"),
        Unit::MsgsPerS => format!("{v:.1} msg/s"),
        Unit::Micros => fmt_latency_us(v),
        Unit::PerMsg => fmt_sig3(v),
        Unit::Bytes => format!("{:.1} MiB", v / (1024.0 * 1024.0)),
    }
}

/// `+12.3%`, `-30.0%`, `0.0%`; `from 0` when the base is zero.
pub fn format_change(row: &Row) -> String {
    match (row.change, row.base, row.new) {
        (Some(c), _, _) => format!("{:+.1}%", c * 100.0),
        (None, Some(_), Some(_)) => "from 0".into(),
        _ => String::new(),
    }
}

fn cells(row: &Row) -> [String; 8] {
    [
        row.scenario.clone(),
        row.runtime.clone(),
        row.metric.to_string(),
        format_value(row.base, row.unit),
        format_value(row.new, row.unit),
        format_change(row),
        row.verdict.label(),
        row.note.clone(),
    ]
}

const HEADER: [&str; 8] = [
    "workload", "runtime", "metric", "base", "new", "change", "verdict", "test",
];

/// One line per verdict kind with its count.
pub fn summary_line(c: &Comparison) -> String {
    format!(
        "{} regressed, {} improved, {} no change, {} excluded (invalid run), {} not measured, {} \
         only on one side",
        c.count(|v| *v == Verdict::Regressed),
        c.count(|v| *v == Verdict::Improved),
        c.count(|v| *v == Verdict::NoChange),
        c.count(|v| matches!(v, Verdict::Excluded(_))),
        c.count(|v| matches!(v, Verdict::NotMeasured(_))),
        c.count(|v| matches!(v, Verdict::OnlyIn(_))),
    )
}

fn visible(c: &Comparison, changes_only: bool) -> Vec<&Row> {
    c.rows
        .iter()
        .filter(|r| !changes_only || matches!(r.verdict, Verdict::Improved | Verdict::Regressed))
        .collect()
}

/// An aligned plain-text table.
pub fn text(c: &Comparison, base_label: &str, new_label: &str, changes_only: bool) -> String {
    let rows: Vec<[String; 8]> = visible(c, changes_only).into_iter().map(cells).collect();
    let mut widths = HEADER.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "base: {base_label}\nnew:  {new_label}\n");
    let line = |out: &mut String, cells: &[String]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let pad = w.saturating_sub(cell.chars().count());
            // Numbers right-aligned, words left-aligned.
            if (3..=5).contains(&i) {
                text.push_str(&" ".repeat(pad));
                text.push_str(cell);
            } else {
                text.push_str(cell);
                if i + 1 < cells.len() {
                    text.push_str(&" ".repeat(pad));
                }
            }
            if i + 1 < cells.len() {
                text.push_str("  ");
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(&mut out, &HEADER.map(String::from));
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&mut out, &rule);
    for row in &rows {
        line(&mut out, row);
    }
    for warning in &c.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    let _ = writeln!(out, "\n{}", summary_line(c));
    out
}

pub(super) fn md_escape(text: &str) -> String {
    text.replace('|', "\\|")
}

/// A GitHub-flavoured Markdown table.
pub fn markdown(c: &Comparison, base_label: &str, new_label: &str, changes_only: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "**fanbench compare**: base `{}` vs new `{}`\n",
        md_escape(base_label),
        md_escape(new_label)
    );
    let _ = writeln!(out, "| {} |", HEADER.join(" | "));
    let _ = writeln!(out, "|---|---|---|--:|--:|--:|---|---|");
    for row in visible(c, changes_only) {
        let mut cells = cells(row).map(|cell| md_escape(&cell));
        if matches!(row.verdict, Verdict::Regressed | Verdict::Improved) {
            cells[6] = format!("**{}**", cells[6]);
        }
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    if !c.warnings.is_empty() {
        out.push('\n');
        for warning in &c.warnings {
            let _ = writeln!(out, "> warning: {}", md_escape(warning));
        }
    }
    let _ = writeln!(out, "\n{}", summary_line(c));
    out
}

/// How a paired comparison was made, for the header of its views.
pub struct PairedHeader<'a> {
    pub base: &'a str,
    pub new: &'a str,
    pub rounds: u32,
    pub threshold_pct: f64,
    pub alpha: f64,
    pub control: Option<&'a str>,
}

fn paired_cells(row: &PairedRow) -> [String; 8] {
    let interval = row
        .interval
        .map(|(lo, hi)| format!("{:+.1}%..{:+.1}%", lo * 100.0, hi * 100.0))
        .unwrap_or_default();
    let change = row
        .change
        .map(|c| format!("{:+.1}%", c * 100.0))
        .unwrap_or_default();
    let verdict = match &row.verdict {
        Verdict::Refused(why) => format!("no verdict: {why}"),
        v => v.label(),
    };
    [
        row.scenario.clone(),
        row.runtime.clone(),
        row.metric.to_string(),
        format_value(row.base, row.unit),
        format_value(row.new, row.unit),
        change,
        interval,
        format!("{verdict} ({})", row.note),
    ]
}

const PAIRED_HEADER: [&str; 8] = [
    "workload", "runtime", "metric", "base", "new", "change", "CI", "verdict",
];

fn paired_summary(c: &PairedComparison, h: &PairedHeader<'_>) -> Vec<String> {
    let mut lines = vec![format!(
        "{} rounds per (workload, runtime) (more where invalid ones were measured again), the two servers alternating (A B, B A, ...) on the \
         same CPUs, measured by the same load generator; {} metrics tested, false discovery \
         rate {}% over the whole table (Benjamini-Hochberg), threshold ±{}%, CI at {}%.",
        h.rounds,
        c.tested,
        h.alpha * 100.0,
        h.threshold_pct,
        (1.0 - h.alpha) * 100.0
    )];
    lines.push(match (h.control, c.control_moved.is_empty()) {
        (None, _) => "Negative control: none.".to_string(),
        (Some(name), true) => format!(
            "Negative control {name} (the same server on both sides): it moved nowhere it \
             could be tested."
        ),
        (Some(name), false) => format!(
            "Negative control {name} (the same server on both sides) moved at {}: the machine \
             changed under the comparison there; other rows get no verdict at those (workload, \
             metric).",
            c.control_moved
                .iter()
                .map(|(s, m, change)| format!("{s} {m} {:+.1}%", change * 100.0))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    });
    lines
}

fn paired_counts(c: &PairedComparison) -> String {
    format!(
        "{} regressed, {} improved, {} no change, {} no verdict (control moved), {} not \
         measured, {} excluded (invalid rounds), {} only on one side",
        c.count(|v| *v == Verdict::Regressed),
        c.count(|v| *v == Verdict::Improved),
        c.count(|v| *v == Verdict::NoChange),
        c.count(|v| matches!(v, Verdict::Refused(_))),
        c.count(|v| matches!(v, Verdict::NotMeasured(_))),
        c.count(|v| matches!(v, Verdict::Excluded(_))),
        c.count(|v| matches!(v, Verdict::OnlyIn(_))),
    )
}

/// Not measured / excluded / one-sided rows, grouped by reason (each reason once).
fn collapsed_reasons(c: &PairedComparison) -> Vec<String> {
    let mut groups: Vec<(String, usize)> = Vec::new();
    for row in &c.rows {
        let key = match &row.verdict {
            Verdict::NotMeasured(why) => format!("not measured: {why}"),
            Verdict::Excluded(why) => format!("excluded: {why}"),
            Verdict::OnlyIn(side) => format!("{} only on the {side} side", row.runtime),
            _ => continue,
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => groups.push((key, 1)),
        }
    }
    groups
        .into_iter()
        .map(|(key, n)| format!("{n} x {key}"))
        .collect()
}

fn paired_sections(c: &PairedComparison, all: bool) -> (Vec<&PairedRow>, Vec<&PairedRow>) {
    let changed = c
        .rows
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Improved | Verdict::Regressed))
        .collect();
    let rest = c
        .rows
        .iter()
        .filter(|r| match r.verdict {
            Verdict::Refused(_) => true,
            Verdict::NoChange => all,
            Verdict::Improved | Verdict::Regressed => false,
            _ => all,
        })
        .collect();
    (changed, rest)
}

fn aligned(rows: &[[String; 8]]) -> String {
    let mut widths = PAIRED_HEADER.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header = PAIRED_HEADER.map(String::from);
    let rule = widths.map(|w| "-".repeat(w));
    for cells in std::iter::once(&header)
        .chain(std::iter::once(&rule))
        .chain(rows)
    {
        let mut line = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
            if (3..=6).contains(&i) {
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

/// Undecided rows listed at most (the most significant first).
const UNDECIDED_SHOWN: usize = 10;

fn undecided_title(n: usize) -> String {
    format!(
        "Undecided: {n} (beyond the threshold and p < alpha, but not significant after the \
         correction for the number of tests; no verdict)"
    )
}

/// The paired comparison as plain text: what changed first, the rest collapsed unless `all`.
pub fn paired_text(c: &PairedComparison, h: &PairedHeader<'_>, all: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "base: {}\nnew:  {}\n", h.base, h.new);
    for line in paired_summary(c, h) {
        let _ = writeln!(out, "{line}");
    }
    let (changed, rest) = paired_sections(c, all);
    let _ = writeln!(out, "\nChanged: {}", changed.len());
    if !changed.is_empty() {
        let rows: Vec<[String; 8]> = changed.iter().map(|r| paired_cells(r)).collect();
        out.push_str(&aligned(&rows));
    }
    if !rest.is_empty() {
        let title = if all { "Everything else" } else { "No verdict" };
        let _ = writeln!(out, "\n{title}: {}", rest.len());
        let rows: Vec<[String; 8]> = rest.iter().map(|r| paired_cells(r)).collect();
        out.push_str(&aligned(&rows));
    }
    let undecided = c.undecided();
    if !undecided.is_empty() {
        let _ = writeln!(out, "\n{}", undecided_title(undecided.len()));
        let rows: Vec<[String; 8]> = undecided
            .iter()
            .take(UNDECIDED_SHOWN)
            .map(|r| paired_cells(r))
            .collect();
        out.push_str(&aligned(&rows));
        if let Some(hint) = c.rerun_hint(h.control, UNDECIDED_SHOWN) {
            let _ = writeln!(out, "To decide them, compare again with {hint}");
        }
    }
    if !all {
        for line in collapsed_reasons(c) {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(
            out,
            "{} metric(s) with no change are not listed (--all lists them).",
            c.count(|v| *v == Verdict::NoChange)
        );
    }
    for warning in &c.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    let _ = writeln!(out, "\n{}", paired_counts(c));
    out
}

/// The paired comparison as Markdown for a pull request comment: the changes as a table, the
/// rest collapsed into a `<details>` block.
pub fn paired_markdown(c: &PairedComparison, h: &PairedHeader<'_>, all: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "**fanbench compare-revs**: base `{}` vs new `{}`\n",
        md_escape(h.base),
        md_escape(h.new)
    );
    let _ = writeln!(out, "{}\n", paired_counts(c));
    let table = |out: &mut String, rows: &[&PairedRow]| {
        let _ = writeln!(out, "| {} |", PAIRED_HEADER.join(" | "));
        let _ = writeln!(out, "|---|---|---|--:|--:|--:|--:|---|");
        for row in rows {
            let mut cells = paired_cells(row).map(|cell| md_escape(&cell));
            if matches!(row.verdict, Verdict::Regressed | Verdict::Improved) {
                cells[7] = format!("**{}**", cells[7]);
            }
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
    };
    let (changed, rest) = paired_sections(c, all);
    if changed.is_empty() {
        let _ = writeln!(out, "No metric changed.\n");
    } else {
        table(&mut out, &changed);
        out.push('\n');
    }
    for line in paired_summary(c, h) {
        let _ = writeln!(out, "{}\n", md_escape(&line));
    }
    for warning in &c.warnings {
        let _ = writeln!(out, "> warning: {}\n", md_escape(warning));
    }
    let undecided = c.undecided();
    if !undecided.is_empty() {
        let _ = writeln!(out, "{}\n", md_escape(&undecided_title(undecided.len())));
        let shown: Vec<&PairedRow> = undecided.into_iter().take(UNDECIDED_SHOWN).collect();
        table(&mut out, &shown);
        if let Some(hint) = c.rerun_hint(h.control, UNDECIDED_SHOWN) {
            let _ = writeln!(out, "\nTo decide them, compare again with `{hint}`.");
        }
        out.push('\n');
    }
    if !rest.is_empty() || !all {
        let _ = writeln!(out, "<details><summary>The rest</summary>\n");
        if !rest.is_empty() {
            table(&mut out, &rest);
            out.push('\n');
        }
        if !all {
            for line in collapsed_reasons(c) {
                let _ = writeln!(out, "- {}", md_escape(&line));
            }
            let _ = writeln!(
                out,
                "- {} metric(s) with no change are not listed (`--all` lists them)",
                c.count(|v| *v == Verdict::NoChange)
            );
        }
        let _ = writeln!(out, "\n</details>");
    }
    out
}
