//! Charts (SVG) and the HTML report from fanbench results JSON.
//!
//! This crate reads only JSON (`results.json`, `sweep.json`; results/README.md documents both)
//! through its own tolerant types in [`model`], so a results file from any commit renders.
//! [`write_report`] writes one SVG per chart and a self-contained `index.html` with all of
//! them inlined, a summary table, the environment and the method.

#![forbid(unsafe_code)]

pub mod charts;
pub mod hist;
mod html;
pub mod micro;
pub mod model;
pub mod palette;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use charts::per_message::Metric;
pub use charts::Chart;
pub use model::{ResultsDoc, SweepDoc};

/// The file name `fanbench bench-all` gives a run's results.
pub const RESULTS_FILE: &str = "results.json";
/// The file name `fanbench sweep` gives its output.
pub const SWEEP_FILE: &str = "sweep.json";
/// The report's HTML file.
pub const INDEX_FILE: &str = "index.html";

/// What a report is built from: a results file, a sweep file, or both (one run directory).
#[derive(Debug, Clone)]
pub struct Inputs {
    pub results: Option<(PathBuf, ResultsDoc)>,
    pub sweep: Option<(PathBuf, SweepDoc)>,
    /// `micro.json` of the same run directory (`fanbench micro`), if there is one.
    pub micro: Option<(PathBuf, micro::MicroDoc)>,
}

impl Inputs {
    /// Loads a run from a `results.json`, a `sweep.json`, a `micro.json`, or a directory
    /// holding any of them. A file's siblings of the other kinds (same directory) are loaded too.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let dir = if path.is_dir() {
            path.to_path_buf()
        } else {
            path.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        let (results_path, sweep_path) = if path.is_dir() {
            (dir.join(RESULTS_FILE), dir.join(SWEEP_FILE))
        } else if !path.exists() {
            bail!("{} does not exist", path.display());
        } else if path.file_name() == Some(std::ffi::OsStr::new(micro::MICRO_FILE)) {
            (dir.join(RESULTS_FILE), dir.join(SWEEP_FILE))
        } else if is_sweep_file(path)? {
            (dir.join(RESULTS_FILE), path.to_path_buf())
        } else {
            (path.to_path_buf(), dir.join(SWEEP_FILE))
        };
        let results = if results_path.is_file() {
            Some((results_path.clone(), ResultsDoc::load(&results_path)?))
        } else {
            None
        };
        let sweep = if sweep_path.is_file() {
            Some((sweep_path.clone(), SweepDoc::load(&sweep_path)?))
        } else {
            None
        };
        let micro_path = dir.join(micro::MICRO_FILE);
        let micro = if micro_path.is_file() {
            Some((micro_path.clone(), micro::MicroDoc::load(&micro_path)?))
        } else {
            None
        };
        if results.is_none() && sweep.is_none() && micro.is_none() {
            bail!(
                "no {RESULTS_FILE} or {SWEEP_FILE} (nor {}) found at {}",
                micro::MICRO_FILE,
                path.display()
            );
        }
        Ok(Self {
            results,
            sweep,
            micro,
        })
    }

    /// The directory the inputs live in (where the report goes by default).
    pub fn dir(&self) -> PathBuf {
        self.results
            .as_ref()
            .map(|(p, _)| p)
            .or(self.sweep.as_ref().map(|(p, _)| p))
            .or(self.micro.as_ref().map(|(p, _)| p))
            .and_then(|p| p.parent())
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }
}

fn is_sweep_file(path: &Path) -> anyhow::Result<bool> {
    #[derive(serde::Deserialize)]
    struct Kind {
        #[serde(default)]
        kind: Option<String>,
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let kind: Kind = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a fanbench JSON file", path.display()))?;
    Ok(kind.kind.as_deref() == Some("sweep"))
}

/// Renders every chart the inputs support.
pub fn build_charts(
    results: Option<&ResultsDoc>,
    sweep: Option<&SweepDoc>,
) -> anyhow::Result<Vec<Chart>> {
    let mut out = Vec::new();
    if let Some(sweep) = sweep {
        for scenario in charts::sweep::scenarios(sweep) {
            out.push(
                charts::sweep::chart(sweep, scenario)
                    .with_context(|| format!("sweep chart of {scenario}"))?,
            );
        }
    }
    if let Some(doc) = results {
        for scenario in doc.scenarios() {
            let context = || format!("charts of scenario {scenario}");
            out.push(charts::latency::chart(doc, scenario).with_context(context)?);
            out.push(charts::spectrum::chart(doc, scenario).with_context(context)?);
            out.push(charts::timeline::chart(doc, scenario).with_context(context)?);
            out.push(charts::syscall_mix::chart(doc, scenario).with_context(context)?);
        }
        if !doc.results.is_empty() {
            out.push(charts::per_message::chart(doc, Metric::Syscalls)?);
            out.push(charts::per_message::chart(doc, Metric::ServerCpu)?);
        }
        if !doc.batching.is_empty() {
            out.push(charts::batching::chart(doc).context("batching chart")?);
        }
        if !doc.policies.is_empty() {
            out.push(charts::policies::chart(doc).context("policies chart")?);
        }
    }
    Ok(out)
}

/// What [`write_report`] wrote.
#[derive(Debug, Clone)]
pub struct Report {
    pub index: PathBuf,
    pub charts: Vec<PathBuf>,
}

/// Writes every chart as SVG and `index.html` into `out_dir` (created if missing).
pub fn write_report(inputs: &Inputs, out_dir: &Path) -> anyhow::Result<Report> {
    let results = inputs.results.as_ref().map(|(_, d)| d);
    let sweep = inputs.sweep.as_ref().map(|(_, d)| d);
    let micro = inputs.micro.as_ref().map(|(_, d)| d);
    let mut charts = build_charts(results, sweep)?;
    if let Some(doc) = micro {
        charts.extend(micro::charts(doc)?);
    }
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("creating report directory {}", out_dir.display()))?;
    let mut written = Vec::new();
    for chart in &charts {
        let path = out_dir.join(&chart.file_name);
        std::fs::write(&path, &chart.svg).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    let index = out_dir.join(INDEX_FILE);
    std::fs::write(&index, html::index(results, sweep, micro, &charts))
        .with_context(|| format!("writing {}", index.display()))?;
    Ok(Report {
        index,
        charts: written,
    })
}

/// Writes a soak run's chart (`soak.svg`) and page (`index.html`) beside its `soak.json`;
/// returns the page's path.
pub fn write_soak_report(soak_json: &Path) -> anyhow::Result<PathBuf> {
    let text = std::fs::read_to_string(soak_json)
        .with_context(|| format!("reading {}", soak_json.display()))?;
    let doc: charts::soak::SoakDoc = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a soak file", soak_json.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", soak_json.display()))?;
    let chart = charts::soak::chart(&doc)?;
    let dir = soak_json.parent().unwrap_or(Path::new("."));
    let svg = dir.join(&chart.file_name);
    std::fs::write(&svg, &chart.svg).with_context(|| format!("writing {}", svg.display()))?;
    let index = dir.join(INDEX_FILE);
    std::fs::write(&index, html::soak_index(&value, &chart))
        .with_context(|| format!("writing {}", index.display()))?;
    Ok(index)
}
