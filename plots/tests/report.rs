//! The report writer on a fixture that follows results/README.md (schema v1).

use std::path::{Path, PathBuf};

use fanbench_plots::{write_report, Inputs};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn out_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn report_writes_every_chart_and_an_index_that_inlines_them() {
    let inputs = Inputs::load(&fixture("results.json")).expect("fixture loads");
    let dir = out_dir("report-every-chart");
    let report = write_report(&inputs, &dir).expect("report is written");
    let names: Vec<String> = report
        .charts
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for scenario in ["seed-5x5", "fanout-100", "slow-subscriber"] {
        for prefix in ["latency", "spectrum", "timeline", "syscall-mix"] {
            let name = format!("{prefix}-{scenario}.svg");
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
    }
    assert!(names.contains(&"syscalls-per-msg.svg".to_owned()));
    assert!(names.contains(&"cpu-per-msg.svg".to_owned()));
    let html = std::fs::read_to_string(&report.index).expect("index.html exists");
    assert_eq!(
        html.matches("<svg").count(),
        report.charts.len(),
        "every chart is inlined"
    );
    for path in &report.charts {
        let svg = std::fs::read_to_string(path).expect("chart file exists");
        assert!(
            svg.contains("<svg") && svg.contains("</svg>"),
            "{} is an SVG",
            path.display()
        );
    }
}
