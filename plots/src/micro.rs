//! Micro costs (`micro.json`, written by `fanbench micro`): what the runtime itself costs per
//! operation. A tolerant model of the file, its two charts and its section of index.html.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context};
use plotters::prelude::*;
use serde::Deserialize;

use crate::charts::{
    category_label, fmt_latency_us, plot_err, render_svg, zero_based_range, Chart, FONT, GRID_BOLD,
    GRID_LIGHT, TITLE_SIZE,
};
use crate::html::escape;
use crate::model::ResultsDoc;
use crate::palette::runtime_colour;

/// The file name `fanbench micro` gives its output.
pub const MICRO_FILE: &str = "micro.json";
/// The micro.json schema versions this crate reads.
const SCHEMA_VERSION: u32 = 1;
/// File names of the two micro charts.
pub const COSTS_CHART: &str = "micro-costs.svg";
pub const LATENESS_CHART: &str = "micro-timer-lateness.svg";

/// micro.json, the parts the report reads.
#[derive(Debug, Clone, Deserialize)]
pub struct MicroDoc {
    pub schema_version: u32,
    #[serde(default)]
    pub run_id: String,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub settings: serde_json::Value,
    #[serde(default)]
    pub operations: Vec<Operation>,
    #[serde(default)]
    pub runtimes: Vec<String>,
    #[serde(default)]
    pub entries: Vec<MicroEntry>,
    #[serde(default)]
    pub timer_lateness: Vec<LatenessEntry>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Operation {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub element: String,
    #[serde(default)]
    pub elements_per_iteration: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MicroEntry {
    pub operation: String,
    pub runtime: String,
    #[serde(default)]
    pub reference: bool,
    pub estimate: Option<Estimate>,
    #[serde(default)]
    pub absent_reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Estimate {
    pub per_element_ns: f64,
    pub per_element_ci_ns: [f64; 2],
    #[serde(default)]
    pub confidence_level: f64,
    #[serde(default)]
    pub samples: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LatenessEntry {
    pub runtime: String,
    pub lateness: Option<Lateness>,
    #[serde(default)]
    pub absent_reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Lateness {
    pub sleeps: usize,
    pub requested_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    #[serde(default)]
    pub early: usize,
}

impl MicroDoc {
    /// Reads and checks a micro.json.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Parses micro.json text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let doc: MicroDoc = serde_json::from_str(text).context("not a fanbench micro.json file")?;
        if doc.schema_version != SCHEMA_VERSION {
            bail!(
                "micro.json schema version {} (this build reads {SCHEMA_VERSION})",
                doc.schema_version
            );
        }
        Ok(doc)
    }

    fn entries_of(&self, operation: &str) -> Vec<&MicroEntry> {
        self.entries
            .iter()
            .filter(|e| e.operation == operation)
            .collect()
    }
}

/// A unit for a panel whose largest value is `max_ns`: (divisor, name).
fn unit_for(max_ns: f64) -> (f64, &'static str) {
    if max_ns >= 1e6 {
        (1e6, "ms")
    } else if max_ns >= 1e3 {
        (1e3, "µs")
    } else {
        (1.0, "ns")
    }
}

/// Short text for an absent cell in a chart (the full reason is in the table).
fn short_reason(reason: Option<&str>) -> String {
    let reason = reason.unwrap_or("unknown");
    let first = reason
        .split([':', ';', '('])
        .next()
        .unwrap_or(reason)
        .trim();
    let mut text: String = first.chars().take(34).collect();
    if text.len() < first.len() {
        text.push('…');
    }
    format!("n/a: {text}")
}

/// A text style anchored at its left middle (labels right of a horizontal bar).
fn label_right(size: u32, colour: RGBColor) -> TextStyle<'static> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    TextStyle {
        font: (FONT, size).into_font(),
        color: colour.to_backend_color(),
        pos: Pos::new(HPos::Left, VPos::Center),
    }
}

/// One horizontal bar per benchmark with its confidence interval, in its panel's unit.
struct Bar {
    label: String,
    colour: RGBColor,
    /// (value, interval) in nanoseconds, or the reason there is none.
    value: Result<(f64, [f64; 2]), String>,
    hatched: bool,
}

/// The micro-costs chart: one panel per operation, one bar per row with its interval.
pub fn costs_chart(doc: &MicroDoc) -> anyhow::Result<Chart> {
    let operations: Vec<&Operation> = doc
        .operations
        .iter()
        .filter(|op| !doc.entries_of(&op.name).is_empty())
        .collect();
    let widest = operations
        .iter()
        .map(|op| doc.entries_of(&op.name).len())
        .max()
        .unwrap_or(1);
    let columns = operations.len().clamp(1, 3);
    let rows = operations.len().div_ceil(columns).max(1);
    let panel_height = 96 + 22 * widest as u32;
    let title = "Micro costs: time per operation on each runtime".to_owned();
    let size = (1400, 50 + panel_height * rows as u32);
    let svg = render_svg(size, |root| {
        let titled = root.titled(&title, (FONT, TITLE_SIZE)).map_err(plot_err)?;
        let panels = titled.split_evenly((rows, columns));
        for (panel, op) in panels.iter().zip(&operations) {
            let bars: Vec<Bar> = doc
                .entries_of(&op.name)
                .into_iter()
                .map(|e| Bar {
                    label: e.runtime.clone(),
                    // tokio's own code is drawn as a lighter tokio bar.
                    colour: runtime_colour(if e.reference { "tokio" } else { &e.runtime }),
                    value: match &e.estimate {
                        Some(est) => Ok((est.per_element_ns, est.per_element_ci_ns)),
                        None => Err(short_reason(e.absent_reason.as_deref())),
                    },
                    hatched: e.reference,
                })
                .collect();
            let max_ns = bars
                .iter()
                .filter_map(|b| b.value.as_ref().ok())
                .map(|(v, ci)| v.max(ci[1]))
                .fold(0.0_f64, f64::max);
            let (div, unit) = unit_for(max_ns);
            let caption = format!("{} (per {})", op.name, op.element);
            draw_bars(
                panel,
                &caption,
                &bars,
                div,
                &format!("{unit} per operation"),
            )?;
        }
        Ok(())
    })?;
    Ok(Chart {
        file_name: COSTS_CHART.to_owned(),
        title,
        caption: "Criterion's estimate of the time one operation takes (slope of time over \
                  iterations where criterion sampled linearly, else the mean), divided by the \
                  operations in one iteration; the black whisker is its confidence interval. \
                  Each panel has its own unit. tokio-reference (lighter bar) is tokio's own \
                  bench code on a plain 4-worker Tokio runtime, beside the trait version on the \
                  tokio row. n/a: no result, with the reason in the table below. Lower is better."
            .to_owned(),
        svg,
    })
}

fn draw_bars(
    panel: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    caption: &str,
    bars: &[Bar],
    div: f64,
    x_desc: &str,
) -> anyhow::Result<()> {
    let count = bars.len().max(1);
    // The first bar on top: bar i is drawn at y = count - 1 - i.
    let names: Vec<String> = bars.iter().rev().map(|b| b.label.clone()).collect();
    let max = bars
        .iter()
        .filter_map(|b| b.value.as_ref().ok())
        .map(|(v, ci)| v.max(ci[1]) / div)
        .fold(0.0_f64, f64::max);
    // Room right of the longest bar for its value label.
    let x_max = zero_based_range(max) * 1.25;
    let mut chart = ChartBuilder::on(panel)
        .caption(caption, (FONT, 15))
        .margin(8)
        .margin_right(14)
        .x_label_area_size(36)
        .y_label_area_size(120)
        .build_cartesian_2d(0.0..x_max, -0.5..(count as f64 - 0.5))
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .bold_line_style(GRID_BOLD)
        .light_line_style(GRID_LIGHT)
        .disable_y_mesh()
        .y_labels(count)
        .y_label_formatter(&|y| category_label(&names, *y))
        .x_labels(5)
        .x_label_formatter(&|x| crate::charts::fmt_axis(*x))
        .x_desc(x_desc)
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .draw()
        .map_err(plot_err)?;
    for (i, bar) in bars.iter().enumerate() {
        let y = (count - 1 - i) as f64;
        let (value, ci) = match &bar.value {
            Ok((v, ci)) => (v / div, [ci[0] / div, ci[1] / div]),
            Err(reason) => {
                chart
                    .draw_series(std::iter::once(Text::new(
                        reason.clone(),
                        (0.0, y),
                        label_right(11, RGBColor(0x70, 0x70, 0x70)),
                    )))
                    .map_err(plot_err)?;
                continue;
            }
        };
        let style = if bar.hatched {
            bar.colour.mix(0.45).filled()
        } else {
            bar.colour.filled()
        };
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(0.0, y - 0.34), (value, y + 0.34)],
                style,
            )))
            .map_err(plot_err)?;
        chart
            .draw_series([
                PathElement::new(vec![(ci[0], y), (ci[1], y)], BLACK.stroke_width(1)),
                PathElement::new(
                    vec![(ci[0], y - 0.2), (ci[0], y + 0.2)],
                    BLACK.stroke_width(1),
                ),
                PathElement::new(
                    vec![(ci[1], y - 0.2), (ci[1], y + 0.2)],
                    BLACK.stroke_width(1),
                ),
            ])
            .map_err(plot_err)?;
        chart
            .draw_series(std::iter::once(Text::new(
                fmt_ns(value * div),
                (value.max(ci[1]) + x_max * 0.01, y),
                label_right(11, BLACK),
            )))
            .map_err(plot_err)?;
    }
    Ok(())
}

/// The timer-lateness chart: how late a 1 ms sleep woke, p50 bar with a p90..p99 whisker.
pub fn lateness_chart(doc: &MicroDoc) -> anyhow::Result<Chart> {
    let entries = &doc.timer_lateness;
    let count = entries.len().max(1);
    let names: Vec<String> = entries.iter().rev().map(|e| e.runtime.clone()).collect();
    let max_us = entries
        .iter()
        .filter_map(|e| e.lateness.as_ref())
        .map(|l| l.p99_us.max(l.p50_us))
        .fold(0.0_f64, f64::max);
    let x_max = zero_based_range(max_us) * 1.45;
    let title = "Timer lateness: how late a 1 ms sleep wakes".to_owned();
    let svg = render_svg((1100, 110 + 30 * count as u32), |root| {
        let titled = root.titled(&title, (FONT, TITLE_SIZE)).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&titled)
            .margin(10)
            .margin_right(20)
            .x_label_area_size(40)
            .y_label_area_size(130)
            .build_cartesian_2d(0.0..x_max, -0.5..(count as f64 - 0.5))
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .bold_line_style(GRID_BOLD)
            .light_line_style(GRID_LIGHT)
            .disable_y_mesh()
            .y_labels(count)
            .y_label_formatter(&|y| category_label(&names, *y))
            .x_labels(6)
            .x_label_formatter(&|x| crate::charts::fmt_axis(*x))
            .x_desc("µs after the requested 1 ms (bar: p50; whisker: p90 to p99)")
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .draw()
            .map_err(plot_err)?;
        for (i, entry) in entries.iter().enumerate() {
            let y = (count - 1 - i) as f64;
            let Some(l) = &entry.lateness else {
                chart
                    .draw_series(std::iter::once(Text::new(
                        short_reason(entry.absent_reason.as_deref()),
                        (0.0, y),
                        label_right(11, RGBColor(0x70, 0x70, 0x70)),
                    )))
                    .map_err(plot_err)?;
                continue;
            };
            let colour = runtime_colour(&entry.runtime);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, y - 0.32), (l.p50_us.max(0.0), y + 0.32)],
                    colour.filled(),
                )))
                .map_err(plot_err)?;
            chart
                .draw_series([
                    PathElement::new(vec![(l.p90_us, y), (l.p99_us, y)], BLACK.stroke_width(1)),
                    PathElement::new(vec![(l.p90_us, y - 0.2), (l.p90_us, y + 0.2)], BLACK),
                    PathElement::new(vec![(l.p99_us, y - 0.2), (l.p99_us, y + 0.2)], BLACK),
                ])
                .map_err(plot_err)?;
            let label = format!(
                "p50 {} · p99 {} · max {} ({} sleeps)",
                fmt_latency_us(l.p50_us),
                fmt_latency_us(l.p99_us),
                fmt_latency_us(l.max_us),
                l.sleeps
            );
            chart
                .draw_series(std::iter::once(Text::new(
                    label,
                    (l.p99_us.max(l.p50_us) + x_max * 0.01, y),
                    label_right(11, BLACK),
                )))
                .map_err(plot_err)?;
        }
        Ok(())
    })?;
    Ok(Chart {
        file_name: LATENESS_CHART.to_owned(),
        title,
        caption: "Each runtime sleeps 1 ms many times in a row on one thread; lateness is the \
                  time the sleep took minus 1 ms (a distribution, not a mean). A timer wheel \
                  with 1 ms ticks rounds every deadline up to the next tick, so its p50 sits \
                  near a whole extra millisecond. Lower is better."
            .to_owned(),
        svg,
    })
}

/// Both micro charts.
pub fn charts(doc: &MicroDoc) -> anyhow::Result<Vec<Chart>> {
    let mut out = Vec::new();
    if !doc.entries.is_empty() {
        out.push(costs_chart(doc).context("micro-costs chart")?);
    }
    if !doc.timer_lateness.is_empty() {
        out.push(lateness_chart(doc).context("timer-lateness chart")?);
    }
    Ok(out)
}

/// The fan-out workload whose server CPU per message the micro costs are set beside: the
/// same shape as `publish_fanout_100` (one publisher, 100 subscribers).
pub const FANOUT_SCENARIO: &str = "fanout-100";

/// Per row: the broker's hot path per delivery (micro) beside the server CPU per delivered
/// message of [`FANOUT_SCENARIO`] (results), and the share of the second the first explains.
fn beside_fanout(out: &mut String, doc: &MicroDoc, results: &ResultsDoc) {
    let entries = results.entries_of(FANOUT_SCENARIO);
    if entries.is_empty() {
        return;
    }
    let per_delivery = |runtime: &str| {
        doc.entries
            .iter()
            .find(|e| e.operation == "publish_fanout_100" && e.runtime == runtime)
            .and_then(|e| e.estimate.as_ref())
            .map(|est| est.per_element_ns / 100.0)
    };
    let cell_ns = |runtime: &str, op: &str| {
        doc.entries
            .iter()
            .find(|e| e.operation == op && e.runtime == runtime)
            .and_then(|e| e.estimate.as_ref())
            .map_or_else(|| "n/a".to_owned(), |est| fmt_ns(est.per_element_ns))
    };
    let _ = writeln!(
        out,
        "<h3>Beside the fan-out results ({FANOUT_SCENARIO})</h3>\n<p>The broker's publish path \
         without I/O, per delivery (<code>publish_fanout_100</code> / 100: parse, look up, queue, \
         wake and poll the writer task), against the server CPU per delivered message the same \
         row spent in the {FANOUT_SCENARIO} workload (median over repetitions). The rest of \
         the CPU is the sends and the rest of the I/O path, which the round trip and the \
         coalescing of sends change.</p>"
    );
    out.push_str(
        "<div class=\"scroll\"><table><tr><th class=\"l\">runtime</th><th>hot path per \
         delivery</th><th>server CPU per message</th><th>hot path share</th><th>tcp round \
         trip</th><th>wake_remote</th></tr>\n",
    );
    for entry in entries {
        let hot = per_delivery(&entry.runtime);
        let cpu_ns = entry
            .summary
            .headline
            .server_cpu_us_per_msg
            .map(|us| us * 1000.0);
        let share = match (hot, cpu_ns) {
            (Some(h), Some(c)) if c > 0.0 => format!("{:.0} %", 100.0 * h / c),
            _ => "n/a".to_owned(),
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&entry.runtime),
            hot.map_or_else(|| "n/a".to_owned(), fmt_ns),
            cpu_ns.map_or_else(|| "n/a".to_owned(), fmt_ns),
            share,
            cell_ns(&entry.runtime, "tcp_round_trip_128"),
            cell_ns(&entry.runtime, "wake_remote"),
        );
    }
    out.push_str("</table></div>\n");
}

/// The "Micro costs" section of index.html: the charts, every figure in a table (with the
/// reason wherever there is none), and the micro costs beside the fan-out results.
pub fn section(out: &mut String, doc: &MicroDoc, charts: &[Chart], results: Option<&ResultsDoc>) {
    out.push_str("<h2 id=\"micro\">Micro costs: what the runtime itself costs</h2>\n");
    let _ = writeln!(
        out,
        "<p>From <code>micro.json</code> (<code>fanbench micro</code>, run {}): criterion \
         benchmarks of single runtime operations, the same code on every row. {}</p>",
        escape(&doc.run_id),
        escape(&settings_line(&doc.settings))
    );
    for name in [COSTS_CHART, LATENESS_CHART] {
        if let Some(chart) = charts.iter().find(|c| c.file_name == name) {
            crate::html::figure(out, chart);
        }
    }
    out.push_str(
        "<div class=\"scroll\"><table><tr><th class=\"l\">operation</th><th class=\"l\">what it \
         measures</th>",
    );
    let runtimes = runtime_columns(doc);
    for r in &runtimes {
        let _ = write!(out, "<th>{}</th>", escape(r));
    }
    out.push_str("</tr>\n");
    for op in &doc.operations {
        let _ = write!(
            out,
            "<tr><td class=\"l\"><code>{}</code></td><td class=\"l\">{} (per {})</td>",
            escape(&op.name),
            escape(&op.description),
            escape(&op.element)
        );
        for r in &runtimes {
            let cell = doc
                .entries
                .iter()
                .find(|e| e.operation == op.name && &e.runtime == r);
            match cell {
                Some(MicroEntry {
                    estimate: Some(est),
                    ..
                }) => {
                    let _ = write!(
                        out,
                        "<td title=\"{:.0}% interval, {} samples\">{}<br><small>{} – {}</small></td>",
                        est.confidence_level * 100.0,
                        est.samples,
                        fmt_ns(est.per_element_ns),
                        fmt_ns(est.per_element_ci_ns[0]),
                        fmt_ns(est.per_element_ci_ns[1])
                    );
                }
                Some(e) => {
                    let _ = write!(
                        out,
                        "<td><span class=\"na\" title=\"{}\">n/a</span></td>",
                        escape(e.absent_reason.as_deref().unwrap_or("unknown"))
                    );
                }
                None => out.push_str("<td></td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table></div>\n");
    if let Some(results) = results {
        beside_fanout(out, doc, results);
    }
}

/// How the suite was run, in words (fields missing from an older file are left out).
fn settings_line(settings: &serde_json::Value) -> String {
    let num = |k: &str| settings.get(k).and_then(serde_json::Value::as_f64);
    let mut parts = Vec::new();
    if let Some(budget) = settings.get("budget").and_then(serde_json::Value::as_str) {
        parts.push(format!("Budget {budget}"));
    }
    if let (Some(w), Some(m)) = (num("warm_up_s"), num("measurement_s")) {
        parts.push(format!("{w} s warm-up + {m} s measurement per benchmark"));
    }
    if let Some(n) = num("sample_size") {
        parts.push(format!("{n} samples"));
    }
    if let (Some(c), Some(p)) = (num("cpu"), num("peer_cpu")) {
        parts.push(format!(
            "benchmark thread on CPU {c}, wake_remote's peer on CPU {p}"
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{}.", parts.join("; "))
    }
}

/// The table's columns: the rows in micro.json's order, then any reference entry.
fn runtime_columns(doc: &MicroDoc) -> Vec<String> {
    let mut cols = doc.runtimes.clone();
    for e in &doc.entries {
        if !cols.contains(&e.runtime) {
            cols.push(e.runtime.clone());
        }
    }
    cols
}

/// `12.3 ns`, `4.56 µs`, `1.23 ms`.
pub fn fmt_ns(ns: f64) -> String {
    if !ns.is_finite() {
        "n/a".to_owned()
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{
      "schema_version": 1, "kind": "micro", "run_id": "r1", "settings": {"budget": "quick", "warm_up_s": 0.05, "measurement_s": 0.1, "sample_size": 10},
      "operations": [
        {"name": "spawn_many", "description": "d", "element": "task", "elements_per_iteration": 10000},
        {"name": "tcp_round_trip_128", "description": "d", "element": "128 B", "elements_per_iteration": 1}
      ],
      "runtimes": ["tokio", "threads"],
      "entries": [
        {"operation": "spawn_many", "runtime": "tokio", "reference": false,
         "estimate": {"per_element_ns": 55.0, "per_element_ci_ns": [50.0, 60.0], "confidence_level": 0.95, "samples": 10}},
        {"operation": "spawn_many", "runtime": "tokio-reference", "reference": true,
         "estimate": {"per_element_ns": 95.0, "per_element_ci_ns": [90.0, 99.0], "confidence_level": 0.95, "samples": 10}},
        {"operation": "tcp_round_trip_128", "runtime": "threads", "estimate": null,
         "absent_reason": "blocking I/O: <no>"}
      ],
      "timer_lateness": [
        {"runtime": "tokio", "lateness": {"sleeps": 50, "requested_us": 1000.0, "min_us": 1.0,
         "p50_us": 1100.0, "p90_us": 1200.0, "p99_us": 1500.0, "max_us": 3000.0, "mean_us": 1150.0, "early": 0}},
        {"runtime": "threads", "lateness": null, "absent_reason": "did not start"}
      ]
    }"#;

    #[test]
    fn charts_and_section_show_every_figure_and_every_reason() {
        let doc = MicroDoc::parse(DOC).expect("parse");
        let charts = charts(&doc).expect("charts");
        assert_eq!(charts.len(), 2);
        assert!(charts[0].svg.contains("spawn_many"));
        assert!(charts[0].svg.contains("n/a: blocking I/O"));
        assert!(charts[1].svg.contains("p50 1.10 ms"));
        let mut html = String::new();
        section(&mut html, &doc, &charts, None);
        assert!(html.contains("55.0 ns"));
        assert!(html.contains("tokio-reference"));
        assert!(
            html.contains("blocking I/O: &lt;no&gt;"),
            "reason is escaped"
        );
        assert!(html.contains("micro-costs.svg"));
        assert!(
            html.contains("Budget quick; 0.05 s warm-up + 0.1 s measurement"),
            "{html}"
        );
    }

    /// The fan-out table pairs each row's hot path per delivery with its server CPU per
    /// message from results.json; a row micro did not measure shows n/a, not a guess.
    #[test]
    fn micro_costs_are_set_beside_the_fanout_cpu_per_message() {
        let mut doc = MicroDoc::parse(DOC).expect("parse");
        doc.entries.push(MicroEntry {
            operation: "publish_fanout_100".into(),
            runtime: "tokio".into(),
            reference: false,
            estimate: Some(Estimate {
                per_element_ns: 45_000.0,
                per_element_ci_ns: [40_000.0, 50_000.0],
                confidence_level: 0.95,
                samples: 10,
            }),
            absent_reason: None,
        });
        let results = ResultsDoc::parse(include_str!("../tests/fixtures/results.json"))
            .expect("fixture parses");
        let cpu_us = results
            .entries_of(FANOUT_SCENARIO)
            .into_iter()
            .find(|e| e.runtime == "tokio")
            .and_then(|e| e.summary.headline.server_cpu_us_per_msg)
            .expect("fixture has tokio's CPU per message");
        let mut html = String::new();
        section(&mut html, &doc, &[], Some(&results));
        let row = html
            .lines()
            .find(|l| l.starts_with("<tr><td class=\"l\">tokio</td>"))
            .expect("a tokio row in the fan-out table");
        assert!(row.contains("450.0 ns"), "{row}");
        let share = format!("{:.0} %", 100.0 * 450.0 / (cpu_us * 1000.0));
        assert!(row.contains(&share), "{row} lacks {share}");
        let uring = html
            .lines()
            .find(|l| l.starts_with("<tr><td class=\"l\">uring</td>"))
            .expect("a uring row");
        assert!(uring.contains("<td>n/a</td>"), "{uring}");
    }

    #[test]
    fn another_schema_version_is_refused() {
        let err = MicroDoc::parse(r#"{"schema_version": 2}"#).unwrap_err();
        assert!(format!("{err:#}").contains("schema version 2"), "{err:#}");
        assert!(MicroDoc::parse("garbage").is_err());
    }

    #[test]
    fn units_follow_the_largest_value() {
        assert_eq!(unit_for(999.0).1, "ns");
        assert_eq!(unit_for(1_500.0).1, "µs");
        assert_eq!(unit_for(2e6).1, "ms");
        assert_eq!(fmt_ns(1234.0), "1.23 µs");
    }
}
