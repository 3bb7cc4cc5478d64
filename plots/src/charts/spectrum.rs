//! The latency percentile spectrum of one scenario, as HdrHistogram plots it: x is the
//! percentile on a log axis of 1 / (1 - q) (so 90%, 99%, 99.9%, ... are evenly spaced), y the
//! latency; one line per runtime, from the repetitions' merged histograms.

use plotters::prelude::*;

use super::{
    decade_range, draw_side_legend, fmt_latency_us, plot_err, render_svg, slug, Chart, Mark,
    DESC_SIZE, FONT, LABEL_SIZE, LEGEND_WIDTH, TITLE_SIZE,
};
use crate::hist::merged_latency;
use crate::model::{Entry, ResultsDoc};
use crate::palette::runtime_colour;

/// One runtime's curve: (1 / (1 - q), latency in us), x increasing.
struct Curve {
    label: String,
    colour: RGBColor,
    valid: bool,
    points: Vec<(f64, f64)>,
    /// True when the curve comes from the summary percentiles (no usable histograms).
    coarse: bool,
}

fn curve(entry: &Entry) -> Curve {
    let colour = runtime_colour(&entry.runtime);
    let mut label = entry.runtime.clone();
    if !entry.valid {
        label.push_str(" (invalid)");
    }
    match merged_latency(entry) {
        Ok(decoded) if !decoded.histogram.is_empty() => {
            let count = decoded.histogram.len() as f64;
            let x_max = count.max(1.0);
            let mut points: Vec<(f64, f64)> = Vec::new();
            for step in decoded.histogram.iter_quantiles(5) {
                let q = step.quantile_iterated_to();
                let x = if q >= 1.0 {
                    x_max
                } else {
                    (1.0 / (1.0 - q)).min(x_max)
                };
                let y = step.value_iterated_to() as f64 * decoded.to_us;
                if points.last().is_some_and(|(last_x, _)| x <= *last_x) {
                    if let Some(last) = points.last_mut() {
                        last.1 = last.1.max(y);
                    }
                    continue;
                }
                points.push((x, y));
            }
            Curve {
                label,
                colour,
                valid: entry.valid,
                points,
                coarse: false,
            }
        }
        _ => {
            let Some(p) = &entry.summary.headline.latency_us else {
                label.push_str(" (no latency: nothing delivered)");
                return Curve {
                    label,
                    colour,
                    valid: entry.valid,
                    points: Vec::new(),
                    coarse: true,
                };
            };
            let x_max = (p.count as f64).max(10_000.0);
            let points = vec![
                (2.0, p.p50),
                (10.0, p.p90),
                (100.0, p.p99),
                (1000.0, p.p999),
                (x_max, p.max),
            ];
            label.push_str(" (summary only)");
            Curve {
                label,
                colour,
                valid: entry.valid,
                points,
                coarse: true,
            }
        }
    }
}

/// `90%`, `99.9%` for x = 1 / (1 - q).
fn percentile_label(x: f64) -> String {
    if x <= 1.0 {
        return "0%".to_owned();
    }
    let nines = x.log10();
    if (nines - nines.round()).abs() > 1e-9 {
        return String::new();
    }
    let q = 100.0 * (1.0 - 1.0 / x);
    let decimals = (nines.round() as usize).saturating_sub(2);
    format!("{q:.decimals$}%")
}

/// The spectrum chart of `scenario`.
pub fn chart(doc: &ResultsDoc, scenario: &str) -> anyhow::Result<Chart> {
    let title = format!("{scenario}: latency by percentile");
    let curves: Vec<Curve> = doc.entries_of(scenario).into_iter().map(curve).collect();
    let all = curves.iter().flat_map(|c| c.points.iter());
    let (x_max, y_min, y_max) = all.fold(
        (10.0_f64, f64::INFINITY, 0.0_f64),
        |(xm, lo, hi), (x, y)| (xm.max(*x), lo.min(*y), hi.max(*y)),
    );
    let (_, x_hi) = decade_range(1.0, x_max);
    let (y_lo, y_hi) = decade_range(y_min, y_max);

    let svg = render_svg((960 + LEGEND_WIDTH, 540), |root| {
        let (plot_area, legend_area) = root.split_horizontally(960);
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(&title, (FONT, TITLE_SIZE))
            .margin(14)
            .margin_right(48)
            .x_label_area_size(48)
            .y_label_area_size(84)
            .build_cartesian_2d((1.0..x_hi).log_scale(), (y_lo..y_hi).log_scale())
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .bold_line_style(super::GRID_BOLD)
            .light_line_style(super::GRID_LIGHT)
            .x_labels(12)
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|y| fmt_latency_us(*y))
            .x_desc("percentile (log scale of 1/(1-q): each step is one more nine)")
            .y_desc("latency from intended send time (log scale)")
            .label_style((FONT, LABEL_SIZE))
            .axis_desc_style((FONT, DESC_SIZE))
            .draw()
            .map_err(plot_err)?;
        for curve in &curves {
            let colour = curve.colour;
            let style = colour.stroke_width(if curve.coarse { 1 } else { 2 });
            if curve.valid {
                chart.draw_series(LineSeries::new(curve.points.iter().copied(), style))
            } else {
                chart.draw_series(DashedLineSeries::new(
                    curve.points.iter().copied(),
                    8,
                    5,
                    style,
                ))
            }
            .map_err(plot_err)?;
        }
        let items: Vec<(String, RGBColor, Mark)> = curves
            .iter()
            .map(|c| {
                let mark = if c.valid { Mark::Line } else { Mark::Dashed };
                (c.label.clone(), c.colour, mark)
            })
            .collect();
        draw_side_legend(&legend_area, 60, &items)
    })?;

    Ok(Chart {
        file_name: format!("spectrum-{}.svg", slug(scenario)),
        title,
        caption: "Latency at every percentile, from the HdrHistograms of all repetitions merged \
                  (exact combined percentiles). The right end of each line is the maximum. \
                  Dashed lines are invalid runs. Lower is better; a line that turns up early \
                  has a heavy tail."
            .to_owned(),
        svg,
    })
}

#[cfg(test)]
mod tests {
    use super::percentile_label;

    #[test]
    fn percentile_labels_count_the_nines() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(100.0), "99%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(100_000.0), "99.999%");
        assert_eq!(percentile_label(20.0), "");
    }
}
