//! Cost per delivered message (syscalls, server CPU): one panel per scenario, one bar per
//! runtime, each panel with its own linear axis (scenarios differ by orders of magnitude).

use plotters::prelude::*;

use super::{
    category_label, fmt_sig3, plot_err, render_svg, zero_based_range, Chart, FONT, TITLE_SIZE,
};
use crate::model::{Entry, Headline, ResultsDoc};
use crate::palette::runtime_colour;

/// Which per-message cost to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Syscalls,
    ServerCpu,
}

impl Metric {
    fn value(self, h: &Headline) -> Option<f64> {
        match self {
            Metric::Syscalls => h.syscalls_per_msg,
            Metric::ServerCpu => h.server_cpu_us_per_msg,
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            Metric::Syscalls => "syscalls-per-msg.svg",
            Metric::ServerCpu => "cpu-per-msg.svg",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Metric::Syscalls => "Server syscalls per delivered message",
            Metric::ServerCpu => "Server CPU time per delivered message",
        }
    }

    fn y_desc(self) -> &'static str {
        match self {
            Metric::Syscalls => "syscalls / message",
            Metric::ServerCpu => "CPU µs / message",
        }
    }

    fn caption(self) -> &'static str {
        match self {
            Metric::Syscalls => {
                "raw_syscalls:sys_enter events on every server thread in the measured window, \
                 divided by messages delivered to healthy subscribers (median over repetitions). \
                 Below 1 means writes are coalesced across messages. Hollow bars are invalid \
                 runs; n/a means the count could not be taken (reason in the table). Lower is \
                 better."
            }
            Metric::ServerCpu => {
                "Server process CPU (user + sys, all threads) in the measured window divided by \
                 delivered messages (median over repetitions); \"x floor\" is the multiple of \
                 the floor row's (a minimal raw io_uring fan-out server: what this job costs \
                 here at the least) in the same workload. Hollow bars are invalid runs; n/a \
                 means it could not be measured (reason in the table). Lower is better."
            }
        }
    }
}

fn rep_range(entry: &Entry, metric: Metric) -> Option<(f64, f64)> {
    let values: Vec<f64> = entry
        .repetitions
        .iter()
        .filter_map(|r| metric.value(&r.headline))
        .collect();
    if values.len() < 2 {
        return None;
    }
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(0.0_f64, f64::max);
    Some((lo, hi))
}

/// A text style anchored at its left middle (value labels right of a horizontal bar).
fn label_right(size: u32, colour: RGBColor) -> TextStyle<'static> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    TextStyle {
        font: (FONT, size).into_font(),
        color: colour.to_backend_color(),
        pos: Pos::new(HPos::Left, VPos::Center),
    }
}

/// The per-message chart of `metric` over every scenario: horizontal bars, so runtime names
/// of any length stay readable.
/// The floor row's CPU per message among `entries` (one scenario), if it ran validly.
fn floor_cpu(entries: &[&crate::model::Entry]) -> Option<f64> {
    entries
        .iter()
        .find(|e| e.runtime == crate::model::FLOOR_ROW && e.valid)
        .and_then(|e| e.summary.headline.server_cpu_us_per_msg)
        .filter(|v| *v > 0.0)
}

pub fn chart(doc: &ResultsDoc, metric: Metric) -> anyhow::Result<Chart> {
    let scenarios = doc.scenarios();
    let widest = scenarios
        .iter()
        .map(|s| doc.entries_of(s).len())
        .max()
        .unwrap_or(1);
    let columns = scenarios.len().clamp(1, 3);
    let rows = scenarios.len().div_ceil(columns).max(1);
    let title = metric.title().to_owned();
    let panel_height = 90 + 26 * widest as u32;
    let size = (1200, 50 + panel_height * rows as u32);

    let svg = render_svg(size, |root| {
        let titled = root.titled(&title, (FONT, TITLE_SIZE)).map_err(plot_err)?;
        let panels = titled.split_evenly((rows, columns));
        for (panel, scenario) in panels.iter().zip(&scenarios) {
            let entries = doc.entries_of(scenario);
            let count = entries.len().max(1);
            // The first runtime on top: row i is drawn at y = count - 1 - i.
            let names: Vec<String> = entries
                .iter()
                .rev()
                .map(|e| {
                    if e.valid {
                        e.runtime.clone()
                    } else {
                        format!("{} (invalid)", e.runtime)
                    }
                })
                .collect();
            let max = entries
                .iter()
                .filter_map(|e| {
                    let median = metric.value(&e.summary.headline)?;
                    Some(rep_range(e, metric).map_or(median, |(_, hi)| hi.max(median)))
                })
                .fold(0.0_f64, f64::max);
            // Room right of the longest bar for its value label.
            let x_max = zero_based_range(max) * 1.1;
            let mut chart = ChartBuilder::on(panel)
                .caption(*scenario, (FONT, 17))
                .margin(10)
                .margin_right(16)
                .x_label_area_size(40)
                .y_label_area_size(118)
                .build_cartesian_2d(0.0..x_max, -0.5..(count as f64 - 0.5))
                .map_err(plot_err)?;
            chart
                .configure_mesh()
                .bold_line_style(super::GRID_BOLD)
                .light_line_style(super::GRID_LIGHT)
                .disable_y_mesh()
                .y_labels(count)
                .y_label_formatter(&|y| category_label(&names, *y))
                .x_labels(5)
                .x_label_formatter(&|x| super::fmt_axis(*x))
                .x_desc(metric.y_desc())
                .label_style((FONT, 12))
                .axis_desc_style((FONT, 13))
                .draw()
                .map_err(plot_err)?;
            for (i, entry) in entries.iter().enumerate() {
                let y = (count - 1 - i) as f64;
                let colour = runtime_colour(&entry.runtime);
                let Some(value) = metric.value(&entry.summary.headline) else {
                    chart
                        .draw_series(std::iter::once(Text::new(
                            "n/a (see table)",
                            (0.0, y),
                            label_right(12, RGBColor(0x70, 0x70, 0x70)),
                        )))
                        .map_err(plot_err)?;
                    continue;
                };
                let style = if entry.valid {
                    colour.filled()
                } else {
                    colour.stroke_width(2)
                };
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(0.0, y - 0.34), (value, y + 0.34)],
                        style,
                    )))
                    .map_err(plot_err)?;
                if let Some((lo, hi)) = rep_range(entry, metric) {
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            vec![(lo, y), (hi, y)],
                            BLACK.stroke_width(1),
                        )))
                        .map_err(plot_err)?;
                }
                let mut label = fmt_sig3(value);
                if let (Metric::ServerCpu, Some(floor)) = (metric, floor_cpu(&entries)) {
                    if entry.runtime != crate::model::FLOOR_ROW {
                        label.push_str(&format!(" = {:.2}x floor", value / floor));
                    }
                }
                if !entry.valid {
                    label.push_str(" (invalid)");
                }
                let end = rep_range(entry, metric).map_or(value, |(_, hi)| hi.max(value));
                chart
                    .draw_series(std::iter::once(Text::new(
                        label,
                        (end + x_max * 0.01, y),
                        label_right(12, BLACK),
                    )))
                    .map_err(plot_err)?;
            }
        }
        Ok(())
    })?;

    Ok(Chart {
        file_name: metric.file_name().to_owned(),
        title,
        caption: metric.caption().to_owned(),
        svg,
    })
}
