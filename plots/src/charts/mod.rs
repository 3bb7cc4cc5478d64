//! The charts. Each function turns (part of) a results or sweep file into one SVG [`Chart`].
//!
//! Shared conventions: every chart has a title, axis descriptions with units and a legend; a
//! runtime has the same colour everywhere ([`crate::palette`]); invalid results are drawn
//! hollow / dashed and labelled "invalid", never mixed in with valid ones silently.

pub mod batching;
pub mod latency;
pub mod per_message;
pub mod policies;
pub mod soak;
pub mod spectrum;
pub mod sweep;
pub mod syscall_mix;
pub mod timeline;

use plotters::prelude::*;

/// One rendered chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// File name inside the report directory (`latency-fanout-100.svg`).
    pub file_name: String,
    /// Title (also drawn inside the SVG).
    pub title: String,
    /// One or two sentences under the chart in index.html: how to read it.
    pub caption: String,
    /// The SVG document.
    pub svg: String,
}

pub(crate) const FONT: &str = "sans-serif";
pub(crate) const TITLE_SIZE: u32 = 22;
pub(crate) const LABEL_SIZE: u32 = 14;
pub(crate) const DESC_SIZE: u32 = 15;
pub(crate) const GRID_BOLD: RGBColor = RGBColor(0xD4, 0xD4, 0xD4);
pub(crate) const GRID_LIGHT: RGBColor = RGBColor(0xF2, 0xF2, 0xF2);

/// A text style anchored at its bottom centre (for labels above bars and points).
pub(crate) fn label_above(size: u32, colour: RGBColor) -> TextStyle<'static> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    TextStyle {
        font: (FONT, size).into_font(),
        color: colour.to_backend_color(),
        pos: Pos::new(HPos::Center, VPos::Bottom),
    }
}

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mark {
    Line,
    Dashed,
    Filled,
    Hollow,
    Point,
    HollowPoint,
    Ring,
    Whisker,
}

/// Width of the legend column beside a plot.
pub(crate) const LEGEND_WIDTH: u32 = 190;

/// Draws a legend as a column in `area` (beside the plot, so it never hides data).
pub(crate) fn draw_side_legend(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    top: i32,
    items: &[(String, RGBColor, Mark)],
) -> anyhow::Result<()> {
    for (i, (label, colour, mark)) in items.iter().enumerate() {
        let y = top + 22 * i as i32;
        let c = *colour;
        match mark {
            Mark::Line => area.draw(&PathElement::new(vec![(8, y), (30, y)], c.stroke_width(2))),
            Mark::Dashed => area
                .draw(&PathElement::new(vec![(8, y), (15, y)], c.stroke_width(2)))
                .and_then(|_| {
                    area.draw(&PathElement::new(vec![(20, y), (30, y)], c.stroke_width(2)))
                }),
            Mark::Filled => area.draw(&Rectangle::new([(10, y - 6), (28, y + 6)], c.filled())),
            Mark::Hollow => area.draw(&Rectangle::new(
                [(10, y - 6), (28, y + 6)],
                c.stroke_width(2),
            )),
            Mark::Point => area.draw(&Circle::new((19, y), 5, c.filled())),
            Mark::HollowPoint => area.draw(&Circle::new((19, y), 5, c.stroke_width(2))),
            Mark::Ring => area.draw(&Circle::new((19, y), 9, c.stroke_width(2))),
            Mark::Whisker => area.draw(&PathElement::new(vec![(19, y - 7), (19, y + 7)], c)),
        }
        .map_err(plot_err)?;
        area.draw(&Text::new(
            label.clone(),
            (38, y - 7),
            (FONT, 13).into_font(),
        ))
        .map_err(plot_err)?;
    }
    Ok(())
}

/// Converts a plotters error (generic over the backend) into anyhow.
pub(crate) fn plot_err<E: std::fmt::Debug>(err: E) -> anyhow::Error {
    anyhow::anyhow!("drawing chart: {err:?}")
}

/// A file-name-safe form of a scenario name.
pub fn slug(name: &str) -> String {
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if slug.is_empty() {
        "unnamed".to_owned()
    } else {
        slug
    }
}

/// `850 µs`, `1.25 ms`, `2.1 s`.
pub fn fmt_latency_us(us: f64) -> String {
    if !us.is_finite() {
        return "n/a".to_owned();
    }
    if us >= 1_000_000.0 {
        format!("{:.2} s", us / 1_000_000.0)
    } else if us >= 10_000.0 {
        format!("{:.0} ms", us / 1000.0)
    } else if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else if us >= 10.0 {
        format!("{us:.0} µs")
    } else {
        format!("{us:.1} µs")
    }
}

/// `950`, `12.5k`, `1.20M`.
pub fn fmt_rate(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".to_owned();
    }
    let abs = value.abs();
    if abs >= 1e6 {
        format!("{:.2}M", value / 1e6)
    } else if abs >= 1e5 {
        format!("{:.0}k", value / 1e3)
    } else if abs >= 1e3 {
        let k = format!("{:.1}", value / 1e3);
        format!("{}k", k.trim_end_matches(".0"))
    } else {
        format!("{value:.0}")
    }
}

/// A short number for bar labels: 3 significant digits.
pub fn fmt_sig3(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".to_owned();
    }
    let abs = value.abs();
    if abs == 0.0 {
        "0".to_owned()
    } else if abs >= 100.0 {
        format!("{value:.0}")
    } else if abs >= 10.0 {
        format!("{value:.1}")
    } else if abs >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

/// An axis tick label: up to 3 significant digits, no trailing zeros (`0.5`, `12`, `2.25`).
pub fn fmt_axis(value: f64) -> String {
    let text = fmt_sig3(value);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// A log axis range that starts and ends on powers of ten, so it always has labelled ticks.
pub(crate) fn decade_range(min: f64, max: f64) -> (f64, f64) {
    let min = if min.is_finite() && min > 0.0 {
        min
    } else {
        1.0
    };
    let max = if max.is_finite() && max > min {
        max
    } else {
        min * 10.0
    };
    let lo = 10f64.powf(min.log10().floor());
    let mut hi = 10f64.powf(max.log10().ceil());
    if hi <= lo {
        hi = lo * 10.0;
    }
    (lo, hi)
}

/// A linear axis range from 0 to a little above `max` (room for value labels).
pub(crate) fn zero_based_range(max: f64) -> f64 {
    if max.is_finite() && max > 0.0 {
        max * 1.18
    } else {
        1.0
    }
}

/// A category label formatter for an f64 axis whose integer points are category centres.
pub(crate) fn category_label(names: &[String], x: f64) -> String {
    let index = x.round();
    if (x - index).abs() > 1e-6 || index < 0.0 {
        return String::new();
    }
    names.get(index as usize).cloned().unwrap_or_default()
}

/// Renders into an SVG string with a white background; `draw` does the rest.
pub(crate) fn render_svg(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend, plotters::coord::Shift>) -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        draw(&root)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Draws a centred message in an area that has nothing to plot.
pub(crate) fn draw_empty_note(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    title: &str,
    note: &str,
) -> anyhow::Result<()> {
    let (w, h) = area.dim_in_pixel();
    area.draw(&Text::new(
        title.to_owned(),
        (20, 20),
        (FONT, TITLE_SIZE).into_font().style(FontStyle::Bold),
    ))
    .map_err(plot_err)?;
    area.draw(&Text::new(
        note.to_owned(),
        (w as i32 / 10, h as i32 / 2),
        (FONT, DESC_SIZE)
            .into_font()
            .color(&RGBColor(0x60, 0x60, 0x60)),
    ))
    .map_err(plot_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_formatting_picks_a_readable_unit() {
        assert_eq!(fmt_latency_us(850.0), "850 µs");
        assert_eq!(fmt_latency_us(1250.0), "1.25 ms");
        assert_eq!(fmt_latency_us(25_000.0), "25 ms");
        assert_eq!(fmt_latency_us(2_100_000.0), "2.10 s");
    }

    #[test]
    fn rates_keep_three_significant_digits() {
        assert_eq!(fmt_rate(12_500.0), "12.5k");
        assert_eq!(fmt_rate(50_000.0), "50k");
        assert_eq!(fmt_rate(250_000.0), "250k");
        assert_eq!(fmt_rate(1_250.0), "1.2k");
        assert_eq!(fmt_rate(2_500_000.0), "2.50M");
    }

    #[test]
    fn axis_labels_drop_trailing_zeros() {
        assert_eq!(fmt_axis(0.5), "0.5");
        assert_eq!(fmt_axis(2.0), "2");
        assert_eq!(fmt_axis(150.0), "150");
        assert_eq!(fmt_axis(0.125), "0.125");
    }

    #[test]
    fn decade_range_always_contains_a_power_of_ten_tick() {
        assert_eq!(decade_range(40.0, 90.0), (10.0, 100.0));
        assert_eq!(decade_range(120.0, 35_000.0), (100.0, 100_000.0));
        assert_eq!(decade_range(100.0, 100.0), (100.0, 1000.0));
    }

    #[test]
    fn slug_keeps_names_file_safe() {
        assert_eq!(slug("fanout-100"), "fanout-100");
        assert_eq!(slug("../x y"), "___x_y");
    }
}
