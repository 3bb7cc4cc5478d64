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

/// A sweep.json built from the results fixture: three steps per runtime, p99 doubling.
fn sweep_fixture(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(fixture("results.json")).expect("fixture");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let entries: Vec<&serde_json::Value> = doc["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|e| e["scenario"] == "fanout-100")
        .collect();
    let sweeps: Vec<serde_json::Value> = entries
        .iter()
        .map(|entry| {
            let steps: Vec<serde_json::Value> = (0..3)
                .map(|i| {
                    let mut result = (*entry).clone();
                    let p99 = result["summary"]["latency_us"]["p99"]
                        .as_f64()
                        .expect("p99");
                    result["summary"]["latency_us"]["p99"] =
                        serde_json::json!(p99 * 4f64.powi(i) * 5.0);
                    serde_json::json!({
                        "rate_per_publisher": 500.0 * 2f64.powi(i),
                        "offered_msgs_per_s": 50_000.0 * 2f64.powi(i),
                        "sustained": i < 2,
                        "unsustained_reasons": [],
                        "result": result,
                    })
                })
                .collect();
            serde_json::json!({
                "scenario": "fanout-100",
                "runtime": entry["runtime"],
                "steps": steps,
                "max_sustainable_msgs_per_s": 100_000.0,
                "max_sustainable_null_reason": null,
                "stop_reason": "step 2: p99 over the SLO",
            })
        })
        .collect();
    let sweep = serde_json::json!({
        "schema_version": 1, "kind": "sweep", "run_id": doc["run_id"], "started_at": doc["started_at"],
        "finished_at": null, "command": [], "git": doc["git"], "host": doc["host"],
        "toolchain": doc["toolchain"], "slo_p99_us": 10_000.0, "step_factor": 2.0, "sweeps": sweeps,
    });
    std::fs::create_dir_all(dir).expect("dir");
    std::fs::copy(fixture("results.json"), dir.join("results.json")).expect("copy");
    let path = dir.join("sweep.json");
    std::fs::write(&path, sweep.to_string()).expect("write sweep");
    path
}

#[test]
fn run_directory_with_a_sweep_gets_the_headline_chart_and_sweep_table() {
    let dir = out_dir("report-with-sweep");
    sweep_fixture(&dir);
    let inputs = Inputs::load(&dir).expect("directory loads");
    assert!(inputs.results.is_some() && inputs.sweep.is_some());
    let report = write_report(&inputs, &dir).expect("report is written");
    assert!(dir.join("sweep-fanout-100.svg").is_file());
    let html = std::fs::read_to_string(&report.index).expect("index.html");
    let sweep_at = html
        .find("Max sustainable throughput")
        .expect("sweep section");
    let first_scenario = html.find("id=\"scenario-").expect("scenario section");
    assert!(sweep_at < first_scenario, "the headline sweep comes first");
    let svg = std::fs::read_to_string(dir.join("sweep-fanout-100.svg")).expect("svg");
    for runtime in ["uring", "tokio", "nats-server"] {
        assert!(
            svg.contains(&format!("{runtime}: max 100k msg/s")),
            "legend names {runtime}"
        );
    }
}

#[test]
fn sweep_file_alone_renders() {
    let dir = out_dir("report-sweep-only");
    let path = sweep_fixture(&dir);
    std::fs::remove_file(dir.join("results.json")).expect("remove results");
    let inputs = Inputs::load(&path).expect("sweep loads");
    assert!(inputs.results.is_none());
    let report = write_report(&inputs, &dir).expect("written");
    assert_eq!(report.charts.len(), 1);
}

#[test]
fn invalid_result_is_marked_in_every_view() {
    let inputs = Inputs::load(&fixture("results.json")).expect("fixture loads");
    let dir = out_dir("report-invalid-marking");
    write_report(&inputs, &dir).expect("written");
    let latency = std::fs::read_to_string(dir.join("latency-fanout-100.svg")).expect("svg");
    assert!(latency.contains("tokio-mt (invalid)") && latency.contains("INVALID"));
    let spectrum = std::fs::read_to_string(dir.join("spectrum-fanout-100.svg")).expect("svg");
    assert!(spectrum.contains("tokio-mt (invalid)"));
    let timeline = std::fs::read_to_string(dir.join("timeline-fanout-100.svg")).expect("svg");
    assert!(timeline.contains("tokio-mt (invalid)"));
    let html = std::fs::read_to_string(dir.join("index.html")).expect("html");
    assert!(html.contains("tokio-mt is invalid: rep 0: healthy subscribers lost"));
    // Valid results of the same scenario are not marked.
    assert!(!latency.contains("uring (invalid)"));
}

#[test]
fn unreadable_input_is_an_error_not_a_panic() {
    let dir = out_dir("report-bad-input");
    std::fs::create_dir_all(&dir).expect("dir");
    let bad = dir.join("results.json");
    std::fs::write(
        &bad,
        "{\"schema_version\": 1, \"results\": [{\"scenario\": 3}]}",
    )
    .expect("write");
    assert!(Inputs::load(&bad).is_err());
    assert!(Inputs::load(&dir.join("missing.json")).is_err());
    let empty = out_dir("report-empty-dir");
    std::fs::create_dir_all(&empty).expect("dir");
    let err = Inputs::load(&empty).expect_err("nothing to render");
    assert!(format!("{err:#}").contains("no results.json or sweep.json"));
}

/// A result whose repetitions delivered nothing has no latency (null with a reason): the
/// report says so in the table and the chart instead of drawing a 0 or failing.
#[test]
fn result_without_latency_is_shown_as_not_measured() {
    let text = std::fs::read_to_string(fixture("results.json")).expect("fixture");
    let mut doc: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let reason = "rep 0: no messages were delivered in the window";
    let result = doc["results"]
        .as_array_mut()
        .expect("results")
        .iter_mut()
        .find(|r| r["scenario"] == "fanout-100" && r["runtime"] == "tokio")
        .expect("fanout-100 on tokio in the fixture");
    result["summary"]["latency_us"] = serde_json::Value::Null;
    result["summary"]["latency_us_null_reason"] = reason.into();
    for rep in result["repetitions"].as_array_mut().expect("reps") {
        rep["latency_us"] = serde_json::Value::Null;
        rep["latency_us_null_reason"] = "no messages were delivered in the window".into();
    }
    let dir = out_dir("report-no-latency");
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("results.json");
    std::fs::write(&path, doc.to_string()).expect("write");
    let inputs = Inputs::load(&path).expect("a null latency is valid input");
    write_report(&inputs, &dir).expect("written");
    let latency = std::fs::read_to_string(dir.join("latency-fanout-100.svg")).expect("svg");
    assert!(latency.contains("no latency: nothing delivered"));
    let html = std::fs::read_to_string(dir.join("index.html")).expect("html");
    assert!(html.contains(reason), "the table gives the reason");
}
