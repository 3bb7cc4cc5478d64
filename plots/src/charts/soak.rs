//! The soak chart: server RSS, open descriptors and per-second latency over a long run, one
//! line per runtime, from a `soak.json` (`fanbench soak`). Flat lines are the claim; a slope
//! is a leak or a drift.

use plotters::prelude::*;
use serde::Deserialize;

use super::{
    draw_side_legend, fmt_latency_us, plot_err, render_svg, Chart, Mark, DESC_SIZE, FONT,
    LABEL_SIZE, LEGEND_WIDTH, TITLE_SIZE,
};
use crate::palette::runtime_colour;

/// The file name `fanbench soak` gives its output.
pub const SOAK_FILE: &str = "soak.json";

/// A tolerant reader of `soak.json` (results/README.md documents it).
#[derive(Debug, Clone, Deserialize)]
pub struct SoakDoc {
    #[serde(default)]
    pub run_id: String,
    #[serde(default)]
    pub scenario: String,
    #[serde(default)]
    pub rows: Vec<SoakRow>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SoakRow {
    pub runtime: String,
    #[serde(default)]
    pub samples: Vec<SoakSample>,
    #[serde(default)]
    pub windows: Vec<SoakWindow>,
}

/// One sample of the server process, `t_s` seconds after the load started.
#[derive(Debug, Clone, Deserialize)]
pub struct SoakSample {
    pub t_s: f64,
    pub rss_bytes: Option<u64>,
    pub fds: Option<u64>,
}

/// One second of the measured window.
#[derive(Debug, Clone, Deserialize)]
pub struct SoakWindow {
    /// Seconds after the load started (warm-up included).
    pub t_s: f64,
    pub latency_p50_us: Option<f64>,
    pub latency_p99_us: Option<f64>,
}

/// Picks one panel's series of a row: (seconds, value).
type Series = fn(&SoakRow) -> Vec<(f64, f64)>;

fn rss_mib(row: &SoakRow) -> Vec<(f64, f64)> {
    row.samples
        .iter()
        .filter_map(|s| Some((s.t_s, s.rss_bytes? as f64 / (1024.0 * 1024.0))))
        .collect()
}

fn fds(row: &SoakRow) -> Vec<(f64, f64)> {
    row.samples
        .iter()
        .filter_map(|s| Some((s.t_s, s.fds? as f64)))
        .collect()
}

fn p99(row: &SoakRow) -> Vec<(f64, f64)> {
    row.windows
        .iter()
        .filter_map(|w| Some((w.t_s, w.latency_p99_us?)))
        .collect()
}

/// Three panels over time: RSS (MiB), open descriptors, p99 latency per second.
pub fn chart(doc: &SoakDoc) -> anyhow::Result<Chart> {
    let title = format!(
        "{}: server RSS, descriptors and p99 latency over a soak",
        doc.scenario
    );
    let t_max = doc
        .rows
        .iter()
        .flat_map(|r| r.samples.iter().map(|s| s.t_s))
        .fold(1.0_f64, f64::max);
    let panels: [(&str, Series); 3] = [
        ("server RSS (MiB)", rss_mib),
        ("server open descriptors", fds),
        ("p99 latency per second", p99),
    ];
    let svg = render_svg((1100 + LEGEND_WIDTH, 900), |root| {
        let (plots, legend_area) = root.split_horizontally(1100);
        let (title_area, rest) = plots.split_vertically(40);
        title_area
            .titled(&title, (FONT, TITLE_SIZE))
            .map_err(plot_err)?;
        let areas = rest.split_evenly((3, 1));
        for ((y_desc, series), area) in panels.iter().zip(areas.iter()) {
            let y_max = doc
                .rows
                .iter()
                .flat_map(|r| series(r).into_iter().map(|p| p.1))
                .fold(0.0_f64, f64::max)
                .max(1.0);
            let is_latency = y_desc.starts_with("p99");
            let mut chart = ChartBuilder::on(area)
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(84)
                .build_cartesian_2d(0.0..t_max * 1.02, 0.0..y_max * 1.15)
                .map_err(plot_err)?;
            chart
                .configure_mesh()
                .bold_line_style(super::GRID_BOLD)
                .light_line_style(super::GRID_LIGHT)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_label_formatter(&|y| {
                    if is_latency {
                        fmt_latency_us(*y)
                    } else {
                        format!("{y:.0}")
                    }
                })
                .x_desc("seconds since the load started")
                .y_desc(*y_desc)
                .label_style((FONT, LABEL_SIZE))
                .axis_desc_style((FONT, DESC_SIZE))
                .draw()
                .map_err(plot_err)?;
            for row in &doc.rows {
                chart
                    .draw_series(LineSeries::new(
                        series(row),
                        runtime_colour(&row.runtime).stroke_width(2),
                    ))
                    .map_err(plot_err)?;
            }
        }
        let items: Vec<(String, RGBColor, Mark)> = doc
            .rows
            .iter()
            .map(|r| (r.runtime.clone(), runtime_colour(&r.runtime), Mark::Line))
            .collect();
        draw_side_legend(&legend_area, 60, &items)?;
        Ok(())
    })?;
    Ok(Chart {
        file_name: "soak.svg".to_owned(),
        title,
        caption: "One server per row held under the same load for the whole run. Top: the \
                  server's resident memory (VmRSS, sampled every second); middle: its open \
                  descriptors (/proc/PID/fd); bottom: p99 latency from the intended send time, \
                  per second of the measured window. Flat is the claim; a slope is a leak or \
                  a drift: the table below gives each row's verdict (a line fitted through \
                  the last half of the window rises by less than 1 MiB, and by less than one \
                  descriptor)."
            .to_owned(),
        svg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_soak_file_renders_one_line_per_row() {
        let doc: SoakDoc = serde_json::from_str(
            r#"{"run_id":"r","scenario":"fanout-100","rows":[
                {"runtime":"uring","samples":[{"t_s":0,"rss_bytes":1048576,"fds":10},{"t_s":1,"rss_bytes":2097152,"fds":110}],
                 "windows":[{"t_s":1.0,"latency_p50_us":100,"latency_p99_us":900}]},
                {"runtime":"tokio","samples":[{"t_s":0,"rss_bytes":null,"fds":null}],"windows":[]}]}"#,
        )
        .expect("parse");
        let chart = chart(&doc).expect("chart");
        assert!(chart.svg.contains("server RSS (MiB)"));
        assert!(chart.svg.contains("uring") && chart.svg.contains("tokio"));
        assert_eq!(chart.file_name, "soak.svg");
    }
}
