//! The comparison as a terminal table or as Markdown (for a pull request comment).

use std::fmt::Write as _;

use fanbench_plots::charts::{fmt_latency_us, fmt_sig3};

use super::metrics::{Comparison, Row, Unit, Verdict};

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

fn md_escape(text: &str) -> String {
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
