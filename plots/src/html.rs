//! The self-contained `index.html`: every chart inlined, a summary table per scenario, the
//! environment and the method. No external resources, so the file can be mailed or archived.

use std::fmt::Write as _;

use crate::charts::{fmt_latency_us, fmt_rate, fmt_sig3, Chart};
use crate::micro::MicroDoc;
use crate::model::{Entry, Percentiles, ResultsDoc, SweepDoc};
use crate::palette::{css, runtime_colour};

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

pub(crate) const STYLE: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1400px; padding: 0 24px 48px; color: #1d1d1f; line-height: 1.45; }
h1 { margin-bottom: 4px; } h2 { margin-top: 40px; border-bottom: 2px solid #ddd; padding-bottom: 4px; } h3 { margin-top: 28px; }
.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 12px 0; font-size: 13px; }
.scroll { overflow-x: auto; }
th, td { border: 1px solid #d0d0d0; padding: 4px 10px; text-align: right; white-space: nowrap; }
th { background: #f2f2f2; } td.l, th.l { text-align: left; white-space: normal; }
tr.invalid td { background: #fff0f0; color: #8a0000; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
.na { color: #888; cursor: help; border-bottom: 1px dotted #888; }
.banner { background: #fff0f0; border: 1px solid #e0a0a0; padding: 10px 14px; border-radius: 4px; }
figure { margin: 18px 0 30px; } figure svg { max-width: 100%; height: auto; border: 1px solid #e4e4e4; }
figcaption { color: #444; font-size: 14px; max-width: 980px; margin-top: 4px; }
ul.notes { font-size: 13px; color: #555; }
code { background: #f4f4f4; padding: 0 3px; }
"#;

fn strip_xml_declaration(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(start) => &svg[start..],
        None => svg,
    }
}

pub(crate) fn figure(out: &mut String, chart: &Chart) {
    let _ = writeln!(
        out,
        "<figure id=\"{id}\">{svg}<figcaption><b>{title}.</b> {caption} \
         (<a href=\"{file}\">{file}</a>)</figcaption></figure>",
        id = escape(chart.file_name.trim_end_matches(".svg")),
        svg = strip_xml_declaration(&chart.svg),
        title = escape(&chart.title),
        caption = escape(&chart.caption),
        file = escape(&chart.file_name),
    );
}

/// A cell for an optional metric: the value, or "n/a" with the reason as a tooltip (the reason
/// also goes into `notes`, shown under the table).
fn optional_cell(
    value: Option<f64>,
    reason: Option<&str>,
    format: fn(f64) -> String,
    notes: &mut Vec<String>,
) -> String {
    match value {
        Some(v) => format!("<td>{}</td>", escape(&format(v))),
        None => {
            let reason = reason.unwrap_or("not recorded");
            if !notes.iter().any(|n| n == reason) {
                notes.push(reason.to_owned());
            }
            let index = notes.iter().position(|n| n == reason).map_or(0, |i| i + 1);
            format!(
                "<td><span class=\"na\" title=\"{}\">n/a [{index}]</span></td>",
                escape(reason)
            )
        }
    }
}

fn runtime_cell(name: &str) -> String {
    format!(
        "<td class=\"l\" style=\"white-space:nowrap\"><span class=\"swatch\" style=\"background:{}\"></span>{}</td>",
        css(runtime_colour(name)),
        escape(name)
    )
}

fn summary_table(out: &mut String, entries: &[&Entry]) {
    let mut notes: Vec<String> = Vec::new();
    out.push_str(
        "<div class=\"scroll\"><table><tr><th class=\"l\">runtime</th><th class=\"l\">valid</th>\
         <th>throughput (msg/s)</th><th>delivered / expected</th><th>lost</th>\
         <th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th>\
         <th>syscalls / msg</th><th>SQEs / msg</th><th>CPU µs / msg</th><th>x floor</th>\
         <th title=\"server CPU per message with the syscall tracepoints attached over without them, median of the repetitions\">tracepoint cost</th>\
         <th>peak RSS (MiB)</th>\
         <th>reps (valid)</th></tr>\n",
    );
    let floor = entries
        .iter()
        .find(|e| e.runtime == crate::model::FLOOR_ROW && e.valid)
        .and_then(|e| e.summary.headline.server_cpu_us_per_msg)
        .filter(|v| *v > 0.0);
    for entry in entries {
        let h = &entry.summary.headline;
        let lat = h.latency_us.as_ref();
        let reason = h.latency_us_null_reason.as_deref();
        let validity = if entry.valid {
            "yes"
        } else {
            "<b>INVALID</b> (below)"
        };
        let _ = write!(
            out,
            "<tr{class}>{runtime}<td class=\"l\">{validity}</td><td>{tp}</td><td>{del} / {exp}</td><td>{lost}</td>",
            class = if entry.valid { "" } else { " class=\"invalid\"" },
            runtime = runtime_cell(&entry.runtime),
            tp = escape(&fmt_rate(h.throughput_msgs_per_s)),
            del = h.delivered,
            exp = h.expected,
            lost = h.lost,
        );
        for pick in [
            |p: &Percentiles| p.p50,
            |p: &Percentiles| p.p90,
            |p: &Percentiles| p.p99,
            |p: &Percentiles| p.p999,
            |p: &Percentiles| p.max,
        ] {
            out.push_str(&optional_cell(
                lat.map(pick),
                reason,
                fmt_latency_us,
                &mut notes,
            ));
        }
        out.push_str(&optional_cell(
            h.syscalls_per_msg,
            h.syscalls_per_msg_null_reason.as_deref(),
            fmt_sig3,
            &mut notes,
        ));
        out.push_str(&optional_cell(
            h.sqes_per_msg,
            h.sqes_per_msg_null_reason.as_deref(),
            fmt_sig3,
            &mut notes,
        ));
        out.push_str(&optional_cell(
            h.server_cpu_us_per_msg,
            h.server_cpu_us_per_msg_null_reason.as_deref(),
            fmt_sig3,
            &mut notes,
        ));
        let multiple = match (floor, h.server_cpu_us_per_msg) {
            (Some(f), Some(v)) => format!("{:.2}x", v / f),
            _ => "–".to_owned(),
        };
        let _ = write!(out, "<td>{multiple}</td>");
        let cost = entry
            .tracepoint_cost()
            .map_or_else(|| "–".to_owned(), |c| format!("{:+.0}%", c * 100.0));
        let _ = write!(out, "<td>{cost}</td>");
        out.push_str(&optional_cell(
            h.server_peak_rss_bytes,
            h.server_peak_rss_bytes_null_reason.as_deref(),
            |b| format!("{:.1}", b / (1024.0 * 1024.0)),
            &mut notes,
        ));
        let _ = writeln!(
            out,
            "<td>{} ({})</td></tr>",
            entry.summary.repetitions, entry.summary.valid_repetitions
        );
        if !entry.valid {
            let _ = writeln!(
                out,
                "<tr class=\"invalid\"><td class=\"l\" colspan=\"16\">{} is invalid: {}</td></tr>",
                escape(&entry.runtime),
                escape(&entry.invalid_reasons.join("; "))
            );
        }
    }
    out.push_str("</table></div>\n");
    if !notes.is_empty() {
        out.push_str("<ul class=\"notes\">");
        for (i, note) in notes.iter().enumerate() {
            let _ = write!(out, "<li>[{}] not measured: {}</li>", i + 1, escape(note));
        }
        out.push_str("</ul>\n");
    }
}

fn scenario_line(entry: &Entry) -> String {
    let Some(c) = &entry.scenario_config else {
        return String::new();
    };
    let mut line = format!(
        "{} publisher(s) x {} subscribers each, {} msg/s per publisher ({} deliveries/s offered), \
         {} B payload",
        c.publishers,
        c.subscribers_per_publisher,
        fmt_sig3(c.rate_per_publisher),
        fmt_rate(c.offered_deliveries_per_s()),
        c.payload_bytes
    );
    if let (Some(d), Some(w), Some(r)) = (c.duration_s, c.warmup_s, c.repetitions) {
        let _ = write!(
            line,
            "; {r} repetition(s) of {d} s measured after {w} s warm-up"
        );
    }
    if c.slow_subscribers > 0 {
        let _ = write!(line, "; {} slow subscriber(s)", c.slow_subscribers);
    }
    if !c.description.is_empty() {
        line = format!("{}. As run: {line}", c.description.trim_end_matches('.'));
    }
    line
}

fn environment(out: &mut String, doc: &ResultsDoc) {
    out.push_str("<h2 id=\"environment\">Environment</h2>\n<table>\n");
    let host = &doc.host;
    let mut row = |k: &str, v: String| {
        let _ = writeln!(
            out,
            "<tr><th class=\"l\">{}</th><td class=\"l\">{}</td></tr>",
            escape(k),
            escape(&v)
        );
    };
    let unknown = || "unknown".to_owned();
    row("run id", doc.run_id.clone());
    row(
        "started / finished",
        format!(
            "{} / {}",
            doc.started_at.clone().unwrap_or_else(unknown),
            doc.finished_at.clone().unwrap_or_else(unknown)
        ),
    );
    row("command", doc.command.join(" "));
    row(
        "git commit",
        match (&doc.git.commit, doc.git.dirty) {
            (Some(c), Some(true)) => format!("{c} (with uncommitted changes)"),
            (Some(c), _) => c.clone(),
            (None, _) => format!(
                "unknown: {}",
                doc.git.null_reason.clone().unwrap_or_default()
            ),
        },
    );
    row("host", host.hostname.clone().unwrap_or_else(unknown));
    row(
        "kernel",
        format!(
            "{} {}",
            host.kernel.clone().unwrap_or_else(unknown),
            host.kernel_version.clone().unwrap_or_default()
        ),
    );
    row("CPU", host.cpu.clone().unwrap_or_else(unknown));
    row("cores", host.cores.map_or_else(unknown, |c| c.to_string()));
    row(
        "memory",
        host.memory_bytes.map_or_else(unknown, |m| {
            format!("{:.1} GiB", m as f64 / (1u64 << 30) as f64)
        }),
    );
    row("rustc", doc.toolchain.rustc.clone().unwrap_or_else(unknown));
    row(
        "fanbench",
        doc.toolchain.fanbench.clone().unwrap_or_else(unknown),
    );
    out.push_str("</table>\n");

    if !doc.runtimes.is_empty() {
        out.push_str(
            "<h3>Runtime rows</h3><table><tr><th class=\"l\">runtime</th><th class=\"l\">kind</th>\
             <th class=\"l\">versions</th><th class=\"l\">available</th><th class=\"l\">server CPUs / load generator CPUs</th></tr>\n",
        );
        for rt in &doc.runtimes {
            let versions: Vec<String> = rt
                .versions
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let pinning = doc
                .results
                .iter()
                .find(|e| e.runtime == rt.name)
                .and_then(|e| e.runtime_config.as_ref())
                .map(|c| {
                    format!(
                        "{} / {:?}",
                        c.server_cpus
                            .as_ref()
                            .map_or("unknown".to_owned(), |s| format!("{s:?}")),
                        c.client_cpus
                    )
                })
                .unwrap_or_default();
            let available = if rt.available {
                "yes".to_owned()
            } else {
                format!("no: {}", rt.unavailable_reason.clone().unwrap_or_default())
            };
            let _ = writeln!(
                out,
                "<tr>{}<td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
                runtime_cell(&rt.name),
                escape(rt.kind.as_deref().unwrap_or("")),
                escape(&versions.join(", ")),
                escape(&available),
                escape(&pinning)
            );
        }
        out.push_str("</table>\n");
    }
    if !doc.skipped.is_empty() {
        out.push_str("<h3>Not measured</h3><ul>\n");
        for s in &doc.skipped {
            let _ = writeln!(
                out,
                "<li><b>{}</b>{}: {}</li>",
                escape(&s.runtime),
                s.scenario
                    .as_deref()
                    .map(|sc| format!(" on {}", escape(sc)))
                    .unwrap_or_default(),
                escape(&s.reason)
            );
        }
        out.push_str("</ul>\n");
    }
}

fn method(out: &mut String, doc: Option<&ResultsDoc>) {
    let syscall_method = doc
        .and_then(|d| {
            d.results
                .iter()
                .flat_map(|e| &e.repetitions)
                .find_map(|r| r.server.as_ref()?.syscalls.as_ref()?.method.clone())
        })
        .unwrap_or_else(|| "not recorded in this file".to_owned());
    let _ = write!(
        out,
        "<h2 id=\"method\">Method</h2>\n\
<ul>\n\
<li><b>Open loop.</b> Publisher <i>k</i> sends message <i>n</i> at <code>start + n / rate</code> whatever happened before, so a stalled server cannot slow the load down and hide its own latency (no coordinated omission). Server and load generator are pinned to disjoint CPUs.</li>\n\
<li><b>Latency</b> is receive time minus the message's <i>intended</i> send time (includes queueing); <b>service latency</b> uses the actual send time; <b>pacing lag</b> is the load generator's own error. All are recorded in HdrHistograms (1 µs .. 60 s, 3 significant digits) and merged across threads.</li>\n\
<li>A <b>delivered message</b> is one <code>MSG</code> received by one subscriber. <b>Throughput</b> is delivered messages per second in the measured window (warm-up excluded). <b>Per message</b> figures divide by delivered messages to healthy subscribers.</li>\n\
<li><b>Server CPU</b> is the server process's user + sys time (all threads) in the window. <b>Syscalls</b>: {method}.</li>\n\
<li><b>Summary</b> values are medians over repetitions (counts are totals); whiskers show the repetitions' range.</li>\n\
<li>A run is <b>invalid</b> when the load generator fell behind its schedule or saturated its CPU, or a healthy subscriber lost a message. Invalid runs are kept and shown (hollow bars, dashed lines, red table rows) but are not comparable numbers.</li>\n\
<li>A metric that could not be measured is shown as n/a with the reason; nothing is estimated or zero-filled.</li>\n\
</ul>\n",
        method = escape(&syscall_method)
    );
}

fn sweep_section(out: &mut String, sweep: &SweepDoc, charts: &[Chart]) {
    let _ = writeln!(
        out,
        "<h2 id=\"sweep\">Max sustainable throughput (sweep)</h2>\n<p>SLO: p99 ≤ {}, no message lost, run valid.</p>",
        escape(&fmt_latency_us(sweep.slo_p99_us))
    );
    if sweep.partial {
        let _ = writeln!(
            out,
            "<div class=\"banner\"><b>Partial sweep</b>: interrupted by {}; the rows below are \
             what was measured before it.</div>",
            escape(sweep.interrupted_by.as_deref().unwrap_or("a signal"))
        );
    }
    out.push_str(
        "<table><tr><th class=\"l\">scenario</th><th class=\"l\">runtime</th><th>max sustainable (deliveries/s)</th>\
         <th>steps</th><th class=\"l\">ended by</th><th class=\"l\" style=\"min-width:40em\">stopped because</th></tr>\n",
    );
    for s in &sweep.sweeps {
        let max = match crate::charts::sweep::max_label(s) {
            Some(m) => escape(&m),
            None => format!(
                "<span class=\"na\" title=\"{}\">none</span>",
                escape(
                    s.max_sustainable_null_reason
                        .as_deref()
                        .unwrap_or("no step met the SLO")
                )
            ),
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"l\">{}</td>{}<td>{max}</td><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
            escape(&s.scenario),
            runtime_cell(&s.runtime),
            s.steps.len(),
            escape(s.ended_by.as_deref().unwrap_or("not recorded")),
            escape(s.stop_reason.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</table>\n");
    for chart in charts.iter().filter(|c| c.file_name.starts_with("sweep-")) {
        figure(out, chart);
    }
}

/// A partial run (interrupted or killed) and the pairs that failed, before anything else.
fn run_state_banner(out: &mut String, doc: &ResultsDoc) {
    if doc.partial {
        let _ = writeln!(
            out,
            "<div class=\"banner\"><b>Partial run</b>: {}; the pairs it did not measure are \
             listed under Environment (<code>fanbench bench-all --resume DIR</code> completes it).</div>",
            match &doc.interrupted_by {
                Some(signal) => format!("interrupted by {}", escape(signal)),
                None => "the run did not finish (killed, or still running)".to_owned(),
            }
        );
    }
    if !doc.failed.is_empty() {
        out.push_str("<div class=\"banner\"><b>Failed measurements</b> (no result recorded):<ul>");
        for f in &doc.failed {
            let _ = write!(
                out,
                "<li>{} on {}: {}{}</li>",
                escape(&f.runtime),
                escape(&f.scenario),
                escape(f.server_exit.as_deref().map_or(f.reason.as_str(), |e| e)),
                f.server_log_tail
                    .as_deref()
                    .filter(|t| !t.trim().is_empty())
                    .map(|t| format!("<pre>{}</pre>", escape(t)))
                    .unwrap_or_default()
            );
        }
        out.push_str("</ul></div>\n");
    }
}

/// Builds index.html from the documents and their already-rendered charts.
pub fn index(
    results: Option<&ResultsDoc>,
    sweep: Option<&SweepDoc>,
    micro: Option<&MicroDoc>,
    charts: &[Chart],
) -> String {
    let run_id = results
        .map(|d| d.run_id.as_str())
        .or(sweep.map(|s| s.run_id.as_str()))
        .or(micro.map(|m| m.run_id.as_str()))
        .unwrap_or("");
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>fanbench {id}</title><style>{STYLE}</style></head><body>\n\
         <h1>fanbench results</h1>\n",
        id = escape(run_id)
    );
    let git = results.map(|d| &d.git).or(sweep.map(|s| &s.git));
    let _ = writeln!(
        out,
        "<p class=\"meta\">Run <code>{}</code>, commit <code>{}</code>{}, started {}. \
         <a href=\"#environment\">Environment</a> · <a href=\"#method\">Method</a></p>",
        escape(run_id),
        escape(git.and_then(|g| g.commit.as_deref()).unwrap_or("unknown")),
        if git.and_then(|g| g.dirty) == Some(true) {
            " (dirty)"
        } else {
            ""
        },
        escape(
            results
                .and_then(|d| d.started_at.as_deref())
                .or(sweep.and_then(|s| s.started_at.as_deref()))
                .unwrap_or("unknown")
        )
    );

    if let Some(doc) = results {
        run_state_banner(&mut out, doc);
        let invalid: Vec<&Entry> = doc.results.iter().filter(|e| !e.valid).collect();
        if !invalid.is_empty() {
            out.push_str("<div class=\"banner\"><b>Invalid results in this run</b> (shown, but their numbers are not comparable):<ul>");
            for e in invalid {
                let _ = write!(
                    out,
                    "<li>{} on {}: {}</li>",
                    escape(&e.runtime),
                    escape(&e.scenario),
                    escape(&e.invalid_reasons.join("; "))
                );
            }
            out.push_str("</ul></div>\n");
        }
        out.push_str("<p>Scenarios: ");
        let links: Vec<String> = doc
            .scenarios()
            .iter()
            .map(|s| format!("<a href=\"#scenario-{0}\">{0}</a>", escape(s)))
            .collect();
        out.push_str(&links.join(" · "));
        out.push_str(" · <a href=\"#costs\">cost per message</a>");
        if micro.is_some() {
            out.push_str(" · <a href=\"#micro\">micro costs</a>");
        }
        out.push_str("</p>\n");
    }
    if let Some(sweep) = sweep {
        sweep_section(&mut out, sweep, charts);
    }
    if let Some(doc) = results {
        for scenario in doc.scenarios() {
            let entries = doc.entries_of(scenario);
            let _ = writeln!(out, "<h2 id=\"scenario-{0}\">{0}</h2>", escape(scenario));
            if let Some(first) = entries.first() {
                let _ = writeln!(out, "<p>{}</p>", escape(&scenario_line(first)));
            }
            summary_table(&mut out, &entries);
            let slug = crate::charts::slug(scenario);
            for prefix in ["latency", "spectrum", "timeline", "syscall-mix"] {
                let name = format!("{prefix}-{slug}.svg");
                if let Some(chart) = charts.iter().find(|c| c.file_name == name) {
                    figure(&mut out, chart);
                }
            }
        }
        out.push_str("<h2 id=\"costs\">Cost per delivered message</h2>\n");
        for name in ["syscalls-per-msg.svg", "cpu-per-msg.svg"] {
            if let Some(chart) = charts.iter().find(|c| c.file_name == name) {
                figure(&mut out, chart);
            }
        }
        environment(&mut out, doc);
    } else if let Some(sweep) = sweep {
        let host = &sweep.host;
        let _ = writeln!(
            out,
            "<h2 id=\"environment\">Environment</h2>\n<p>Command <code>{}</code> on {} ({} cores), kernel {}.</p>",
            escape(&sweep.command.join(" ")),
            escape(host.cpu.as_deref().unwrap_or("unknown CPU")),
            host.cores.map_or_else(|| "?".to_owned(), |c| c.to_string()),
            escape(host.kernel.as_deref().unwrap_or("unknown"))
        );
    }
    if let Some(micro) = micro {
        crate::micro::section(&mut out, micro, charts, results);
    }
    method(&mut out, results);
    out.push_str("</body></html>\n");
    out
}

/// The page of a soak run (`fanbench soak`): the chart and each row's start-vs-end figures
/// (`summary` of each row in soak.json, read loosely so any commit's file renders).
pub fn soak_index(doc: &serde_json::Value, chart: &Chart) -> String {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "null".to_owned(),
        serde_json::Value::Number(n) => n
            .as_f64()
            .map_or_else(|| n.to_string(), |f| format!("{f:.1}")),
        other => other.to_string(),
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>fanbench soak {id}</title><style>{STYLE}</style></head><body>\n\
         <h1>fanbench soak</h1>\n<p class=\"meta\">Run <code>{id}</code>, workload <b>{sc}</b>, \
         {secs} s of load per row, command <code>{cmd}</code>.</p>\n",
        id = escape(doc["run_id"].as_str().unwrap_or("")),
        sc = escape(doc["scenario"].as_str().unwrap_or("")),
        secs = text(&doc["load_s"]),
        cmd = escape(
            &doc["command"]
                .as_array()
                .map(|a| a
                    .iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(" "))
                .unwrap_or_default()
        ),
    );
    if doc["partial"].as_bool() == Some(true) {
        out.push_str("<div class=\"banner\"><b>Partial run</b>: it was stopped before every row was soaked.</div>\n");
    }
    figure(&mut out, chart);
    out.push_str(
        "<p>Flat means: a least-squares line through the samples of the last half of the \
         window rises by less than 1 MiB (RSS) and less than one descriptor over that half \
         (results/README.md, <code>soak.json</code>).</p>\n",
    );
    out.push_str(
        "<table><tr><th>runtime</th><th>RSS first minute (MiB, median)</th><th>RSS last minute</th>\
         <th>RSS growth (MiB)</th><th>RSS slope, last half (KiB/s)</th><th>RSS</th>\
         <th>descriptors first</th><th>last</th><th>max</th><th>descriptors</th>\
         <th>p99 first minute (µs, median)</th><th>p99 last minute</th><th>delivered</th><th>lost</th></tr>\n",
    );
    for row in doc["rows"].as_array().into_iter().flatten() {
        let s = &row["summary"];
        let mib = |v: &serde_json::Value| {
            v.as_f64()
                .map_or_else(|| "null".to_owned(), |b| format!("{:.1}", b / 1048576.0))
        };
        // Files written before the verdict existed have no `rss_flat`: shown as unknown.
        let verdict = |v: &serde_json::Value| match v.as_bool() {
            Some(true) => "flat",
            Some(false) => "<b>growing</b>",
            None => "unknown",
        };
        let kib_s = |v: &serde_json::Value| {
            v.as_f64()
                .map_or_else(|| "null".to_owned(), |b| format!("{:.2}", b / 1024.0))
        };
        let _ = writeln!(
            out,
            "<tr>{}<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            runtime_cell(row["runtime"].as_str().unwrap_or("")),
            mib(&s["rss_first_minute_bytes"]),
            mib(&s["rss_last_minute_bytes"]),
            mib(&s["rss_growth_bytes"]),
            kib_s(&s["rss_slope_bytes_per_s"]),
            verdict(&s["rss_flat"]),
            text(&s["fds_first"]),
            text(&s["fds_last"]),
            text(&s["fds_max"]),
            verdict(&s["fds_flat"]),
            text(&s["p99_first_minute_us"]),
            text(&s["p99_last_minute_us"]),
            text(&row["delivered"]),
            text(&row["lost"]),
        );
    }
    out.push_str("</table>\n</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
