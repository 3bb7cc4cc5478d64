//! The batching comparison: server CPU per delivered message and p99 latency against the
//! broker's batching window (`--coalesce-us`), one line per runtime, from the `batching` array
//! of a bench-all results file. It shows the latency-for-CPU trade of the one batching policy
//! every row runs.

use plotters::prelude::*;

use super::{
    draw_side_legend, fmt_latency_us, plot_err, render_svg, Chart, Mark, DESC_SIZE, FONT,
    LABEL_SIZE, LEGEND_WIDTH, TITLE_SIZE,
};
use crate::model::{Entry, ResultsDoc};
use crate::palette::runtime_colour;

/// One point: (window µs, CPU/msg µs, p99 µs, valid).
type Point = (f64, Option<f64>, Option<f64>, bool);
/// One runtime's points.
type Line = (String, Vec<Point>);
/// Picks a panel's value from a point.
type Pick = fn(&Point) -> Option<f64>;

fn lines(doc: &ResultsDoc) -> Vec<Line> {
    let mut out: Vec<Line> = Vec::new();
    for entry in &doc.batching {
        let Some(w) = entry.scenario_config.as_ref().and_then(|c| c.coalesce_us) else {
            continue;
        };
        let point = (
            w as f64,
            entry.summary.headline.server_cpu_us_per_msg,
            entry.summary.headline.latency_us.map(|l| l.p99),
            entry.valid,
        );
        match out.iter_mut().find(|(name, _)| *name == entry.runtime) {
            Some((_, points)) => points.push(point),
            None => out.push((entry.runtime.clone(), vec![point])),
        }
    }
    for (_, points) in &mut out {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

fn scenario_name(doc: &ResultsDoc) -> String {
    doc.batching
        .first()
        .map_or_else(String::new, |e: &Entry| e.scenario.clone())
}

/// The batching chart: two panels (CPU/msg, p99) against the window.
pub fn chart(doc: &ResultsDoc) -> anyhow::Result<Chart> {
    let scenario = scenario_name(doc);
    let title = format!("{scenario}: CPU per message and p99 latency vs batching window");
    let lines = lines(doc);
    let x_max = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .fold(1000.0_f64, f64::max);
    let cpu_max = lines
        .iter()
        .flat_map(|(_, p)| p.iter().filter_map(|q| q.1))
        .fold(0.0_f64, f64::max)
        .max(0.1);
    let p99_max = lines
        .iter()
        .flat_map(|(_, p)| p.iter().filter_map(|q| q.2))
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let x_hi = x_max * 1.08;

    let svg = render_svg((1300 + LEGEND_WIDTH, 560), |root| {
        let (plots, legend_area) = root.split_horizontally(1300);
        let (title_area, panels) = plots.split_vertically(40);
        title_area
            .titled(&title, (FONT, TITLE_SIZE))
            .map_err(plot_err)?;
        let (left, right) = panels.split_horizontally(650);
        let panels: [(&_, &str, f64, Pick); 2] = [
            (
                &left,
                "server CPU per delivered message (µs)",
                cpu_max,
                |q| q.1,
            ),
            (
                &right,
                "p99 latency from intended send time",
                p99_max,
                |q| q.2,
            ),
        ];
        for (area, y_desc, y_max, pick) in panels {
            let mut chart = ChartBuilder::on(area)
                .margin(14)
                .x_label_area_size(48)
                .y_label_area_size(84)
                .build_cartesian_2d(0.0..x_hi, 0.0..y_max * 1.15)
                .map_err(plot_err)?;
            let is_latency = y_desc.starts_with("p99");
            chart
                .configure_mesh()
                .bold_line_style(super::GRID_BOLD)
                .light_line_style(super::GRID_LIGHT)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_label_formatter(&|y| {
                    if is_latency {
                        fmt_latency_us(*y)
                    } else {
                        format!("{y:.2}")
                    }
                })
                .x_desc("batching window (µs; 0 = off)")
                .y_desc(y_desc)
                .label_style((FONT, LABEL_SIZE))
                .axis_desc_style((FONT, DESC_SIZE))
                .draw()
                .map_err(plot_err)?;
            for (runtime, points) in &lines {
                let colour = runtime_colour(runtime);
                let measured: Vec<(f64, f64, bool)> = points
                    .iter()
                    .filter_map(|q| Some((q.0, pick(q)?, q.3)))
                    .collect();
                chart
                    .draw_series(LineSeries::new(
                        measured.iter().map(|(x, y, _)| (*x, *y)),
                        colour.stroke_width(2),
                    ))
                    .map_err(plot_err)?;
                for (x, y, valid) in &measured {
                    let style = if *valid {
                        colour.filled()
                    } else {
                        colour.stroke_width(2)
                    };
                    chart
                        .draw_series(std::iter::once(Circle::new((*x, *y), 5, style)))
                        .map_err(plot_err)?;
                }
            }
        }
        let mut items: Vec<(String, RGBColor, Mark)> = lines
            .iter()
            .map(|(runtime, _)| (runtime.clone(), runtime_colour(runtime), Mark::Line))
            .collect();
        let grey = RGBColor(0x40, 0x40, 0x40);
        items.push(("valid".into(), grey, Mark::Point));
        items.push(("invalid".into(), grey, Mark::HollowPoint));
        draw_side_legend(&legend_area, 60, &items)?;
        Ok(())
    })?;

    Ok(Chart {
        file_name: "batching.svg".to_owned(),
        title,
        caption: "The same workload on every row at each batching window (fanbench serve \
                  --coalesce-us: a busy connection's next write waits for the window to end, \
                  so it carries more messages). Left: server CPU per delivered message, lower \
                  is cheaper; right: p99 latency, lower is better. One repetition per point; \
                  hollow points are invalid runs."
            .to_owned(),
        svg,
    })
}
