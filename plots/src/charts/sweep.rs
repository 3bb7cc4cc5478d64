//! The headline chart: p99 latency against offered load, one line per runtime, from a sweep
//! (`fanbench sweep`), with the SLO and each runtime's max sustainable throughput.

use plotters::prelude::*;

use super::{
    decade_range, draw_side_legend, fmt_latency_us, fmt_rate, plot_err, render_svg, slug, Chart,
    Mark, DESC_SIZE, FONT, LABEL_SIZE, TITLE_SIZE,
};
use crate::model::{Sweep, SweepDoc, SweepStep};
use crate::palette::runtime_colour;

const SWEEP_LEGEND_WIDTH: u32 = 290;
const SLO_RED: RGBColor = RGBColor(0xC0, 0x00, 0x00);

/// Scenario names in the order they first appear in the sweep file.
pub fn scenarios(doc: &SweepDoc) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for sweep in &doc.sweeps {
        if !names.contains(&sweep.scenario.as_str()) {
            names.push(&sweep.scenario);
        }
    }
    names
}

/// `50k`, or `≥ 50k` when the sweep stopped while still sustained (a lower bound).
pub fn max_label(sweep: &Sweep) -> Option<String> {
    let max = sweep.max_sustainable_msgs_per_s?;
    let bound = sweep.steps.last().is_some_and(|s| s.sustained);
    Some(format!(
        "{}{}",
        if bound { "≥ " } else { "" },
        fmt_rate(max)
    ))
}

fn legend_label(sweep: &Sweep) -> String {
    match max_label(sweep) {
        Some(max) => format!("{}: max {max} msg/s", sweep.runtime),
        None => format!("{}: no sustainable step", sweep.runtime),
    }
}

/// The latency-vs-load chart of one scenario of a sweep file.
pub fn chart(doc: &SweepDoc, scenario: &str) -> anyhow::Result<Chart> {
    let title = format!(
        "{scenario}: p99 latency vs offered load (SLO {})",
        fmt_latency_us(doc.slo_p99_us)
    );
    let sweeps: Vec<&Sweep> = doc
        .sweeps
        .iter()
        .filter(|s| s.scenario == scenario)
        .collect();
    // Steps without a latency (nothing delivered) have no point on a latency chart.
    let points = sweeps.iter().flat_map(|s| &s.steps);
    let (x_max, y_min, y_max) = points.fold(
        (1.0_f64, doc.slo_p99_us, doc.slo_p99_us),
        |(xm, lo, hi), step| match step_p99(step) {
            Some(p99) => (xm.max(step.offered_msgs_per_s), lo.min(p99), hi.max(p99)),
            None => (xm.max(step.offered_msgs_per_s), lo, hi),
        },
    );
    let (y_lo, y_hi) = decade_range(y_min, y_max * 1.5);
    let x_hi = x_max * 1.08;

    let svg = render_svg((1000 + SWEEP_LEGEND_WIDTH, 560), |root| {
        let (plot_area, legend_area) = root.split_horizontally(1000);
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(&title, (FONT, TITLE_SIZE))
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(84)
            .build_cartesian_2d(0.0..x_hi, (y_lo..y_hi).log_scale())
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .bold_line_style(super::GRID_BOLD)
            .light_line_style(super::GRID_LIGHT)
            .x_label_formatter(&|x| fmt_rate(*x))
            .y_label_formatter(&|y| fmt_latency_us(*y))
            .x_desc("offered load: deliveries / s (publishers x rate x subscribers)")
            .y_desc("p99 latency from intended send time (log)")
            .label_style((FONT, LABEL_SIZE))
            .axis_desc_style((FONT, DESC_SIZE))
            .draw()
            .map_err(plot_err)?;

        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, doc.slo_p99_us), (x_hi, doc.slo_p99_us)],
                10,
                6,
                SLO_RED.stroke_width(2),
            ))
            .map_err(plot_err)?;
        let mut items: Vec<(String, RGBColor, Mark)> = vec![(
            format!("SLO: p99 {}", fmt_latency_us(doc.slo_p99_us)),
            SLO_RED,
            Mark::Dashed,
        )];

        for sweep in &sweeps {
            let colour = runtime_colour(&sweep.runtime);
            let measured: Vec<(&SweepStep, (f64, f64))> = sweep
                .steps
                .iter()
                .filter_map(|s| Some((s, (s.offered_msgs_per_s, step_p99(s)?))))
                .collect();
            let line: Vec<(f64, f64)> = measured.iter().map(|(_, point)| *point).collect();
            chart
                .draw_series(LineSeries::new(
                    line.iter().copied(),
                    colour.stroke_width(2),
                ))
                .map_err(plot_err)?;
            items.push((legend_label(sweep), colour, Mark::Line));
            for (step, point) in &measured {
                let style = if step.sustained {
                    colour.filled()
                } else {
                    colour.stroke_width(2)
                };
                chart
                    .draw_series(std::iter::once(Circle::new(*point, 5, style)))
                    .map_err(plot_err)?;
            }
            if let Some(max) = sweep.max_sustainable_msgs_per_s {
                // A ring around the max sustainable step.
                if let Some(p99) = sweep
                    .steps
                    .iter()
                    .find(|s| s.offered_msgs_per_s == max)
                    .and_then(step_p99)
                {
                    chart
                        .draw_series(std::iter::once(Circle::new(
                            (max, p99),
                            10,
                            colour.stroke_width(2),
                        )))
                        .map_err(plot_err)?;
                }
            }
        }
        let grey = RGBColor(0x40, 0x40, 0x40);
        items.push(("step sustained".into(), grey, Mark::Point));
        items.push(("step not sustained".into(), grey, Mark::HollowPoint));
        items.push(("max sustainable step".into(), grey, Mark::Ring));
        draw_side_legend(&legend_area, 60, &items)?;
        Ok(())
    })?;

    Ok(Chart {
        file_name: format!("sweep-{}.svg", slug(scenario)),
        title,
        caption: "Offered load rises step by step until p99 passes the SLO, messages are lost \
                  or the run becomes invalid. Filled points met every condition; the largest \
                  such offered load is the runtime's max sustainable throughput. Further right \
                  before the line crosses the SLO is better."
            .to_owned(),
        svg,
    })
}

/// A step's summary p99, if it has a latency at all.
fn step_p99(step: &SweepStep) -> Option<f64> {
    step.result.summary.headline.latency_us.map(|l| l.p99)
}
