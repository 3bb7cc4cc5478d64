//! `fanbench report PATH`: the charts (SVG) and a self-contained `index.html` for a run, from
//! its JSON alone (`fanbench-plots`), so a results file from any commit renders.

use std::path::{Path, PathBuf};

use anyhow::Context;
use fanbench_plots::{write_report, Inputs, Report};

/// Options of `fanbench report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// A results.json, a sweep.json, or a run directory holding either (a file's sibling of
    /// the other kind is included).
    pub path: PathBuf,
    /// Directory for the charts and index.html (default: beside the input).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Renders the run at `path` into `out` (default: the run's directory).
pub fn render(path: &Path, out: Option<&Path>) -> anyhow::Result<Report> {
    let inputs = Inputs::load(path)?;
    let out_dir = out.map(Path::to_path_buf).unwrap_or_else(|| inputs.dir());
    write_report(&inputs, &out_dir)
        .with_context(|| format!("writing the report into {}", out_dir.display()))
}

/// `fanbench report`.
pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let report = render(&args.path, args.out.as_deref())?;
    for chart in &report.charts {
        println!("{}", chart.display());
    }
    println!("{}", report.index.display());
    eprintln!(
        "fanbench: {} charts and {}",
        report.charts.len(),
        report.index.display()
    );
    Ok(())
}
