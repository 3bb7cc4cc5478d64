//! Throughput and p99 latency over time for one scenario: per-second windows of every
//! repetition, back to back, one line per runtime (top: throughput, bottom: p99).

use plotters::prelude::*;

use super::{
    decade_range, draw_side_legend, fmt_latency_us, fmt_rate, plot_err, render_svg, slug,
    zero_based_range, Chart, Mark, DESC_SIZE, FONT, LABEL_SIZE, LEGEND_WIDTH, TITLE_SIZE,
};
use crate::model::{Entry, ResultsDoc};
use crate::palette::runtime_colour;

/// Windows shorter than this (a sliver of a final second) are not drawn: their rate is noise.
pub const MIN_WINDOW_S: f64 = 0.2;

pub(crate) struct Series {
    pub label: String,
    pub colour: RGBColor,
    pub valid: bool,
    /// (seconds since the first window, delivered messages per second)
    pub throughput: Vec<(f64, f64)>,
    /// (seconds since the first window, p99 latency in us)
    pub p99: Vec<(f64, f64)>,
    /// Where each repetition after the first starts.
    pub boundaries: Vec<f64>,
}

pub(crate) fn series(entry: &Entry) -> Series {
    let mut label = entry.runtime.clone();
    if !entry.valid {
        label.push_str(" (invalid)");
    }
    let mut throughput = Vec::new();
    let mut p99 = Vec::new();
    let mut boundaries = Vec::new();
    let mut offset = 0.0;
    for (i, rep) in entry.repetitions.iter().enumerate() {
        if i > 0 {
            boundaries.push(offset);
        }
        for window in &rep.windows {
            let length = rep.window_length(window);
            if length < MIN_WINDOW_S {
                continue;
            }
            let x = offset + f64::from(window.second) + length / 2.0;
            throughput.push((x, window.delivered as f64 / length));
            if let Some(value) = window.latency_p99_us {
                p99.push((x, value));
            }
        }
        let observed = rep
            .windows
            .iter()
            .map(|w| f64::from(w.second) + 1.0)
            .fold(0.0, f64::max);
        offset += rep.window_s.unwrap_or(observed);
    }
    Series {
        label,
        colour: runtime_colour(&entry.runtime),
        valid: entry.valid,
        throughput,
        p99,
        boundaries,
    }
}

/// The timeline chart of `scenario`.
pub fn chart(doc: &ResultsDoc, scenario: &str) -> anyhow::Result<Chart> {
    let title = format!("{scenario}: throughput and p99 latency per second");
    let all: Vec<Series> = doc.entries_of(scenario).into_iter().map(series).collect();
    let x_max = all
        .iter()
        .flat_map(|s| s.throughput.iter().chain(&s.p99))
        .map(|(x, _)| x + 0.5)
        .fold(1.0_f64, f64::max);
    let tp_max = all
        .iter()
        .flat_map(|s| &s.throughput)
        .map(|(_, y)| *y)
        .fold(0.0_f64, f64::max);
    let (p_lo, p_hi) = decade_range(
        all.iter()
            .flat_map(|s| &s.p99)
            .map(|(_, y)| *y)
            .fold(f64::INFINITY, f64::min),
        all.iter()
            .flat_map(|s| &s.p99)
            .map(|(_, y)| *y)
            .fold(0.0_f64, f64::max),
    );
    let boundaries: Vec<f64> = all
        .iter()
        .max_by_key(|s| s.boundaries.len())
        .map(|s| s.boundaries.clone())
        .unwrap_or_default();

    let svg = render_svg((1000 + LEGEND_WIDTH, 720), |root| {
        let titled = root.titled(&title, (FONT, TITLE_SIZE)).map_err(plot_err)?;
        let (plots, legend_area) = titled.split_horizontally(1000);
        let (top, bottom) = plots.split_vertically(330);

        let mut upper = ChartBuilder::on(&top)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(84)
            .build_cartesian_2d(0.0..x_max, 0.0..zero_based_range(tp_max))
            .map_err(plot_err)?;
        upper
            .configure_mesh()
            .bold_line_style(super::GRID_BOLD)
            .light_line_style(super::GRID_LIGHT)
            .y_label_formatter(&|y| fmt_rate(*y))
            .x_desc("seconds into the measured windows (repetitions back to back)")
            .y_desc("delivered messages / s")
            .label_style((FONT, LABEL_SIZE))
            .axis_desc_style((FONT, DESC_SIZE))
            .draw()
            .map_err(plot_err)?;
        let mut lower = ChartBuilder::on(&bottom)
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(84)
            .build_cartesian_2d(0.0..x_max, (p_lo..p_hi).log_scale())
            .map_err(plot_err)?;
        lower
            .configure_mesh()
            .bold_line_style(super::GRID_BOLD)
            .light_line_style(super::GRID_LIGHT)
            .y_label_formatter(&|y| fmt_latency_us(*y))
            .x_desc("seconds into the measured windows (repetitions back to back)")
            .y_desc("p99 latency in the second (log)")
            .label_style((FONT, LABEL_SIZE))
            .axis_desc_style((FONT, DESC_SIZE))
            .draw()
            .map_err(plot_err)?;

        let grey = RGBColor(0x99, 0x99, 0x99);
        for x in &boundaries {
            upper
                .draw_series(DashedLineSeries::new(
                    vec![(*x, 0.0), (*x, zero_based_range(tp_max))],
                    4,
                    4,
                    grey.stroke_width(1),
                ))
                .map_err(plot_err)?;
            lower
                .draw_series(DashedLineSeries::new(
                    vec![(*x, p_lo), (*x, p_hi)],
                    4,
                    4,
                    grey.stroke_width(1),
                ))
                .map_err(plot_err)?;
        }

        for s in &all {
            let colour = s.colour;
            let style = colour.stroke_width(2);
            if s.valid {
                upper.draw_series(LineSeries::new(s.throughput.iter().copied(), style))
            } else {
                upper.draw_series(DashedLineSeries::new(
                    s.throughput.iter().copied(),
                    8,
                    5,
                    style,
                ))
            }
            .map_err(plot_err)?;
            upper
                .draw_series(
                    s.throughput
                        .iter()
                        .map(|p| Circle::new(*p, 3, colour.filled())),
                )
                .map_err(plot_err)?;
            if s.valid {
                lower.draw_series(LineSeries::new(s.p99.iter().copied(), style))
            } else {
                lower.draw_series(DashedLineSeries::new(s.p99.iter().copied(), 8, 5, style))
            }
            .map_err(plot_err)?;
            lower
                .draw_series(s.p99.iter().map(|p| Circle::new(*p, 3, colour.filled())))
                .map_err(plot_err)?;
        }
        let items: Vec<(String, RGBColor, Mark)> = all
            .iter()
            .map(|s| {
                let mark = if s.valid { Mark::Line } else { Mark::Dashed };
                (s.label.clone(), s.colour, mark)
            })
            .collect();
        draw_side_legend(&legend_area, 30, &items)
    })?;

    let mut caption = "Each point is one second of a measured window; repetitions follow each \
                       other (grey dashed lines). Throughput should be flat at the offered \
                       rate; dips or p99 spikes show stalls. Dashed lines are invalid runs."
        .to_owned();
    if all.iter().all(|s| s.throughput.is_empty()) {
        caption.push_str(" No per-second windows were recorded.");
    } else if all.iter().all(|s| s.throughput.len() <= 1) {
        caption.push_str(
            " This run has a single window per runtime (e.g. bench-all --quick), so there is no \
             trend to see; longer windows (--duration) give one point per second.",
        );
    }
    Ok(Chart {
        file_name: format!("timeline-{}.svg", slug(scenario)),
        title,
        caption,
        svg,
    })
}
