//! The submission-policy comparison of the `uring` row: for each load, one bar per policy, in
//! four panels: server CPU per message, p99 latency, `io_uring_enter` calls per message and
//! SQEs per enter. From the `policies` array of a bench-all results file.

use plotters::prelude::*;

use super::{
    draw_side_legend, fmt_latency_us, fmt_rate, plot_err, render_svg, Chart, Mark, DESC_SIZE, FONT,
    LABEL_SIZE, LEGEND_WIDTH, TITLE_SIZE,
};
use crate::model::{Entry, ResultsDoc};

const POLICY_COLOURS: [RGBColor; 4] = [
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xCC, 0x79, 0xA7),
];

/// The policy label of an entry: its recorded policy, with the SQPOLL thread's placement.
fn policy_label(entry: &Entry) -> String {
    let config = entry.runtime_config.as_ref();
    let policy = config
        .and_then(|c| c.uring_policy.clone())
        .unwrap_or_else(|| "default".to_owned());
    if policy != "sqpoll" {
        return policy;
    }
    let cpus_used = config
        .and_then(|c| c.cpus_used.as_ref())
        .map_or(0, Vec::len);
    let server_cpus = config
        .and_then(|c| c.server_cpus.as_ref())
        .map_or(0, Vec::len);
    if cpus_used > server_cpus {
        "sqpoll (own CPU)".to_owned()
    } else {
        "sqpoll (shared CPU)".to_owned()
    }
}

/// The load label of an entry: workload, payload and offered deliveries per second.
fn load_label(entry: &Entry) -> String {
    match &entry.scenario_config {
        Some(c) => format!(
            "{} B, {}/s",
            c.payload_bytes,
            fmt_rate(c.offered_deliveries_per_s())
        ),
        None => entry.scenario.clone(),
    }
}

/// `io_uring_enter` calls per delivered message: the measured syscalls per message times the
/// enters' share of them (the first repetition's breakdown).
fn enters_per_msg(entry: &Entry) -> Option<f64> {
    let per_msg = entry.summary.headline.syscalls_per_msg?;
    let calls = entry
        .repetitions
        .first()?
        .server
        .as_ref()?
        .syscalls
        .as_ref()?;
    let total = calls.total? as f64;
    let enters = *calls.breakdown.get("io_uring_enter")? as f64;
    (total > 0.0).then(|| per_msg * enters / total)
}

fn sqes_per_enter(entry: &Entry) -> Option<f64> {
    let enters = enters_per_msg(entry)?;
    let sqes = entry.summary.headline.sqes_per_msg?;
    (enters > 0.0).then(|| sqes / enters)
}

type Pick = fn(&Entry) -> Option<f64>;

/// The policies chart.
pub fn chart(doc: &ResultsDoc) -> anyhow::Result<Chart> {
    let title = "uring: submission policies side by side".to_owned();
    let mut loads: Vec<String> = Vec::new();
    let mut policies: Vec<String> = Vec::new();
    for e in &doc.policies {
        let (l, p) = (load_label(e), policy_label(e));
        if !loads.contains(&l) {
            loads.push(l);
        }
        if !policies.contains(&p) {
            policies.push(p);
        }
    }
    let cell = |load: &str, policy: &str| {
        doc.policies
            .iter()
            .find(|e| load_label(e) == load && policy_label(e) == policy)
    };
    let panels: [(&str, Pick, bool); 4] = [
        (
            "server CPU per message (µs)",
            |e| e.summary.headline.server_cpu_us_per_msg,
            false,
        ),
        (
            "p99 latency",
            |e| e.summary.headline.latency_us.map(|l| l.p99),
            true,
        ),
        ("io_uring_enter calls per message", enters_per_msg, false),
        ("SQEs per io_uring_enter", sqes_per_enter, false),
    ];

    let svg = render_svg((1300 + LEGEND_WIDTH, 900), |root| {
        let (plots, legend_area) = root.split_horizontally(1300);
        let (title_area, grid) = plots.split_vertically(40);
        title_area
            .titled(&title, (FONT, TITLE_SIZE))
            .map_err(plot_err)?;
        let areas = grid.split_evenly((2, 2));
        for (area, (y_desc, pick, latency)) in areas.iter().zip(panels) {
            let y_max = doc
                .policies
                .iter()
                .filter_map(pick)
                .fold(0.0_f64, f64::max)
                .max(1e-3)
                * 1.2;
            let n = loads.len().max(1);
            let mut chart = ChartBuilder::on(area)
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(76)
                .build_cartesian_2d(0.0..n as f64, 0.0..y_max)
                .map_err(plot_err)?;
            let load_names = loads.clone();
            chart
                .configure_mesh()
                .disable_x_mesh()
                .bold_line_style(super::GRID_BOLD)
                .light_line_style(super::GRID_LIGHT)
                .x_labels(n * 2 + 1)
                .x_label_formatter(&|x| {
                    let i = (*x - 0.5).round();
                    if (x - 0.5 - i).abs() < 1e-6 && i >= 0.0 {
                        load_names.get(i as usize).cloned().unwrap_or_default()
                    } else {
                        String::new()
                    }
                })
                .y_label_formatter(&|y| {
                    if latency {
                        fmt_latency_us(*y)
                    } else {
                        format!("{y:.3}")
                    }
                })
                .x_desc("load (payload, offered deliveries/s)")
                .y_desc(y_desc)
                .label_style((FONT, LABEL_SIZE))
                .axis_desc_style((FONT, DESC_SIZE))
                .draw()
                .map_err(plot_err)?;
            let width = 0.8 / policies.len().max(1) as f64;
            for (li, load) in loads.iter().enumerate() {
                for (pi, policy) in policies.iter().enumerate() {
                    let Some(entry) = cell(load, policy) else {
                        continue;
                    };
                    let Some(value) = pick(entry) else {
                        continue;
                    };
                    let colour = POLICY_COLOURS[pi % POLICY_COLOURS.len()];
                    let x0 = li as f64 + 0.1 + pi as f64 * width;
                    let style = if entry.valid {
                        colour.filled()
                    } else {
                        colour.stroke_width(2)
                    };
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(x0, 0.0), (x0 + width * 0.9, value)],
                            style,
                        )))
                        .map_err(plot_err)?;
                }
            }
        }
        let mut items: Vec<(String, RGBColor, Mark)> = policies
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (
                    p.clone(),
                    POLICY_COLOURS[i % POLICY_COLOURS.len()],
                    Mark::Filled,
                )
            })
            .collect();
        let grey = RGBColor(0x40, 0x40, 0x40);
        items.push(("invalid run".into(), grey, Mark::Hollow));
        draw_side_legend(&legend_area, 60, &items)?;
        Ok(())
    })?;

    Ok(Chart {
        file_name: "policies.svg".to_owned(),
        title,
        caption: "The uring row under each submission policy (eager: submit every tick; \
                  adaptive: busy-poll small batches while completions arrive; sqpoll: a kernel \
                  submission thread, on the server's CPU or on one of its own, which then \
                  counts as a server CPU, and submits without an enter). Lower is better in the \
                  first three panels; more SQEs \
                  per enter means fewer system calls for the same work. One repetition per \
                  bar; hollow bars are invalid runs."
            .to_owned(),
        svg,
    })
}
