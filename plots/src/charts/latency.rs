//! p50 and p99 latency per runtime for one scenario: a pair of bars per runtime (log axis),
//! whiskers spanning the repetitions' min..max.

use plotters::prelude::*;

use super::{
    category_label, decade_range, draw_side_legend, fmt_latency_us, label_above, plot_err,
    render_svg, slug, Chart, Mark, DESC_SIZE, FONT, LABEL_SIZE, LEGEND_WIDTH, TITLE_SIZE,
};
use crate::model::{Entry, ResultsDoc};
use crate::palette::runtime_colour;

const INVALID_RED: RGBColor = RGBColor(0xC0, 0x00, 0x00);
const LEGEND_GREY: RGBColor = RGBColor(0x55, 0x55, 0x55);

struct Bar {
    median: f64,
    min: f64,
    max: f64,
}

/// `None` when the summary has no latency (nothing delivered in some repetition).
fn bar(entry: &Entry, pick: fn(&crate::model::Percentiles) -> f64) -> Option<Bar> {
    let median = pick(entry.summary.headline.latency_us.as_ref()?);
    let reps = entry
        .repetitions
        .iter()
        .filter_map(|r| r.headline.latency_us.as_ref().map(pick));
    let (min, max) = reps.fold((median, median), |(lo, hi), v| (lo.min(v), hi.max(v)));
    Some(Bar { median, min, max })
}

/// The p50/p99 chart of `scenario`.
pub fn chart(doc: &ResultsDoc, scenario: &str) -> anyhow::Result<Chart> {
    let entries = doc.entries_of(scenario);
    let title = format!("{scenario}: latency p50 and p99 per runtime");
    let names: Vec<String> = entries
        .iter()
        .map(|e| {
            if e.valid {
                e.runtime.clone()
            } else {
                format!("{} (invalid)", e.runtime)
            }
        })
        .collect();
    let bars: Vec<Option<(Bar, Bar)>> = entries
        .iter()
        .map(|e| Some((bar(e, |p| p.p50)?, bar(e, |p| p.p99)?)))
        .collect();
    let lowest = bars
        .iter()
        .flatten()
        .map(|(p50, _)| p50.min)
        .fold(f64::INFINITY, f64::min);
    let highest = bars
        .iter()
        .flatten()
        .map(|(_, p99)| p99.max)
        .fold(0.0_f64, f64::max);
    let (lowest, highest) = if lowest.is_finite() {
        (lowest, highest)
    } else {
        (1.0, 1000.0) // No row has a latency: an empty plot with a sensible axis.
    };
    let (lo, hi) = decade_range(lowest, highest * 1.5);
    let count = entries.len().max(1);
    let width = (260 + 150 * count as u32).max(760) + LEGEND_WIDTH;

    let svg = render_svg((width, 480), |root| {
        let (plot_area, legend_area) = root.split_horizontally(width - LEGEND_WIDTH);
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(&title, (FONT, TITLE_SIZE))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(84)
            .build_cartesian_2d(-0.5..(count as f64 - 0.5), (lo..hi).log_scale())
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .bold_line_style(super::GRID_BOLD)
            .light_line_style(super::GRID_LIGHT)
            .disable_x_mesh()
            .x_labels(count)
            .x_label_formatter(&|x| category_label(&names, *x))
            .y_label_formatter(&|y| fmt_latency_us(*y))
            .x_desc("runtime")
            .y_desc("latency from intended send time (log scale)")
            .label_style((FONT, LABEL_SIZE))
            .axis_desc_style((FONT, DESC_SIZE))
            .draw()
            .map_err(plot_err)?;

        for (i, (entry, bars)) in entries.iter().zip(&bars).enumerate() {
            let x = i as f64;
            let colour = runtime_colour(&entry.runtime);
            let Some((p50, p99)) = bars else {
                // Nothing delivered in some repetition: no latency to draw, and said so.
                chart
                    .draw_series(std::iter::once(Text::new(
                        "no latency: nothing delivered",
                        (x, lo * 1.3),
                        label_above(12, INVALID_RED),
                    )))
                    .map_err(plot_err)?;
                continue;
            };
            for (bar, left, right, light) in [
                (p50, x - 0.36, x - 0.01, false),
                (p99, x + 0.01, x + 0.36, true),
            ] {
                let style = if !entry.valid {
                    colour.stroke_width(2)
                } else if light {
                    colour.mix(0.45).filled()
                } else {
                    colour.filled()
                };
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(left, lo), (right, bar.median.max(lo))],
                        style,
                    )))
                    .map_err(plot_err)?;
                let centre = (left + right) / 2.0;
                if bar.max > bar.min {
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            vec![(centre, bar.min.max(lo)), (centre, bar.max)],
                            BLACK.stroke_width(1),
                        )))
                        .map_err(plot_err)?;
                    for y in [bar.min.max(lo), bar.max] {
                        chart
                            .draw_series(std::iter::once(PathElement::new(
                                vec![(centre - 0.05, y), (centre + 0.05, y)],
                                BLACK.stroke_width(1),
                            )))
                            .map_err(plot_err)?;
                    }
                }
                chart
                    .draw_series(std::iter::once(Text::new(
                        fmt_latency_us(bar.median),
                        (centre, bar.max.max(bar.median) * 1.06),
                        label_above(12, BLACK),
                    )))
                    .map_err(plot_err)?;
            }
            if !entry.valid {
                chart
                    .draw_series(std::iter::once(Text::new(
                        "INVALID",
                        (x, p99.max.max(p99.median) * 1.45),
                        label_above(14, INVALID_RED),
                    )))
                    .map_err(plot_err)?;
            }
        }

        // Legend beside the plot (never over a bar): the encoding, not the runtimes (those
        // are the x categories, in their colours).
        let mut items = vec![
            ("p50 (solid bar)".to_owned(), LEGEND_GREY, Mark::Filled),
            (
                "p99 (light bar)".to_owned(),
                RGBColor(0xB2, 0xB2, 0xB2),
                Mark::Filled,
            ),
            ("min..max over reps".to_owned(), BLACK, Mark::Whisker),
        ];
        if entries.iter().any(|e| !e.valid) {
            items.push(("invalid run (hollow)".to_owned(), INVALID_RED, Mark::Hollow));
        }
        draw_side_legend(&legend_area, 70, &items)?;
        Ok(())
    })?;

    Ok(Chart {
        file_name: format!("latency-{}.svg", slug(scenario)),
        title,
        caption: "Median over repetitions of p50 (solid) and p99 (light) latency, measured from \
                  each message's intended send time, so queueing caused by a stalled server is \
                  included. Whiskers span the repetitions. Lower is better."
            .to_owned(),
        svg,
    })
}
