//! What `compare` compares: the metrics, where their samples come from, and the verdict for
//! every (workload, runtime, metric).

use fanbench_plots::charts::timeline::MIN_WINDOW_S;
use fanbench_plots::model::{Entry, Headline, Repetition, ResultsDoc, Window};

use super::paired::benjamini_hochberg;
use super::stats::{significance, Significance};
use crate::results::measured::Measured;

/// Which direction is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// How a metric's values are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    MsgsPerS,
    Micros,
    PerMsg,
    Bytes,
}

/// One compared metric.
pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
    pub better: Better,
    /// The value in a summary or a repetition, or why it is null there.
    pub value: fn(&Headline) -> Measured<f64>,
    /// The value in one per-second window (given the window's length), when windows have it.
    pub window: Option<fn(&Window, f64) -> Option<f64>>,
    /// A count of events per message (near-exact, Poisson at worst), not a timing.
    pub counted: bool,
}

/// Every metric `compare` reports, in output order.
pub fn metrics() -> Vec<Metric> {
    vec![
        Metric {
            name: "throughput",
            unit: Unit::MsgsPerS,
            better: Better::Higher,
            value: |h| Measured::Value(h.throughput_msgs_per_s),
            counted: false,
            window: Some(|w, length| Some(w.delivered as f64 / length)),
        },
        Metric {
            name: "latency p50",
            unit: Unit::Micros,
            better: Better::Lower,
            value: |h| Measured::from_parts(h.latency_us.map(|p| p.p50), None),
            counted: false,
            window: Some(|w, _| w.latency_p50_us),
        },
        Metric {
            name: "latency p99",
            unit: Unit::Micros,
            better: Better::Lower,
            value: |h| Measured::from_parts(h.latency_us.map(|p| p.p99), None),
            counted: false,
            window: Some(|w, _| w.latency_p99_us),
        },
        Metric {
            name: "latency p99.9",
            unit: Unit::Micros,
            better: Better::Lower,
            value: |h| Measured::from_parts(h.latency_us.map(|p| p.p999), None),
            counted: false,
            window: None,
        },
        Metric {
            name: "latency max",
            unit: Unit::Micros,
            better: Better::Lower,
            value: |h| Measured::from_parts(h.latency_us.map(|p| p.max), None),
            counted: false,
            window: Some(|w, _| w.latency_max_us),
        },
        Metric {
            name: "service latency p99",
            unit: Unit::Micros,
            better: Better::Lower,
            value: |h| Measured::from_parts(h.service_latency_us.map(|p| p.p99), None),
            counted: false,
            window: None,
        },
        Metric {
            name: "syscalls/msg",
            unit: Unit::PerMsg,
            better: Better::Lower,
            value: |h| {
                Measured::from_parts(h.syscalls_per_msg, h.syscalls_per_msg_null_reason.clone())
            },
            counted: true,
            window: None,
        },
        Metric {
            name: "SQEs/msg",
            unit: Unit::PerMsg,
            better: Better::Lower,
            value: |h| Measured::from_parts(h.sqes_per_msg, h.sqes_per_msg_null_reason.clone()),
            counted: true,
            window: None,
        },
        Metric {
            name: "server CPU us/msg",
            unit: Unit::PerMsg,
            better: Better::Lower,
            value: |h| {
                Measured::from_parts(
                    h.server_cpu_us_per_msg,
                    h.server_cpu_us_per_msg_null_reason.clone(),
                )
            },
            counted: false,
            window: None,
        },
        Metric {
            name: "server peak RSS",
            unit: Unit::Bytes,
            better: Better::Lower,
            value: |h| {
                Measured::from_parts(
                    h.server_peak_rss_bytes,
                    h.server_peak_rss_bytes_null_reason.clone(),
                )
            },
            counted: false,
            window: None,
        },
    ]
}

/// The samples the significance test uses: per-second window values pooled over every
/// repetition when there are at least two, else one value per repetition. Returns the samples
/// and what they are ("windows" / "repetitions").
pub fn samples(entry: &Entry, metric: &Metric) -> (Vec<f64>, &'static str) {
    if let Some(window_value) = metric.window {
        let values: Vec<f64> = entry
            .repetitions
            .iter()
            .flat_map(|rep| window_values(rep, window_value))
            .collect();
        if values.len() >= 2 {
            return (values, "windows");
        }
    }
    let values = entry
        .repetitions
        .iter()
        .filter_map(|rep| (metric.value)(&rep.headline).into_value())
        .collect();
    (values, "repetitions")
}

fn window_values(rep: &Repetition, value: fn(&Window, f64) -> Option<f64>) -> Vec<f64> {
    rep.windows
        .iter()
        .filter_map(|w| {
            let length = rep.window_length(w);
            if length < MIN_WINDOW_S {
                return None;
            }
            value(w, length)
        })
        .collect()
}

/// The outcome for one (workload, runtime, metric).
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Improved,
    Regressed,
    NoChange,
    /// One side is invalid: shown, never judged.
    Excluded(String),
    /// The pair exists on one side only.
    OnlyIn(&'static str),
    /// The metric is null on a side.
    NotMeasured(String),
    /// No verdict: the negative control moved (the machine, not the code).
    Refused(String),
}

impl Verdict {
    pub fn label(&self) -> String {
        match self {
            Verdict::Improved => "improved".into(),
            Verdict::Regressed => "regressed".into(),
            Verdict::NoChange => "no change".into(),
            Verdict::Excluded(_) => "excluded (invalid)".into(),
            Verdict::OnlyIn(side) => format!("only in {side}"),
            Verdict::NotMeasured(_) => "n/a".into(),
            Verdict::Refused(_) => "no verdict".into(),
        }
    }
}

/// One line of the comparison.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: String,
    pub runtime: String,
    pub metric: &'static str,
    pub unit: Unit,
    pub base: Option<f64>,
    pub new: Option<f64>,
    /// (new - base) / base.
    pub change: Option<f64>,
    pub verdict: Verdict,
    /// The test that decided, its p-value, or why none ran.
    pub note: String,
    /// The test's p-value, before the correction for the number of comparisons.
    pub p: Option<f64>,
}

/// The whole comparison.
#[derive(Debug, Clone, Default)]
pub struct Comparison {
    pub rows: Vec<Row>,
    pub warnings: Vec<String>,
}

impl Comparison {
    pub fn count(&self, pred: impl Fn(&Verdict) -> bool) -> usize {
        self.rows.iter().filter(|r| pred(&r.verdict)).count()
    }
}

/// Settings of the verdict.
#[derive(Debug, Clone, Copy)]
pub struct Criteria {
    /// Smallest |change| that counts, in percent.
    pub threshold_pct: f64,
    /// Significance level.
    pub alpha: f64,
}

fn relative_change(base: f64, new: f64) -> Option<f64> {
    if base == new {
        Some(0.0)
    } else if base == 0.0 {
        None
    } else {
        Some((new - base) / base.abs())
    }
}

fn judge(metric: &Metric, base: &Entry, new: &Entry, criteria: Criteria) -> Row {
    let bh = &base.summary.headline;
    let nh = &new.summary.headline;
    let (base_value, new_value) = ((metric.value)(bh), (metric.value)(nh));
    let (b, n) = (base_value.value().copied(), new_value.value().copied());
    let mut row = Row {
        scenario: new.scenario.clone(),
        runtime: new.runtime.clone(),
        metric: metric.name,
        unit: metric.unit,
        base: b,
        new: n,
        change: None,
        verdict: Verdict::NoChange,
        note: String::new(),
        p: None,
    };
    let (Some(b), Some(n)) = (b, n) else {
        let reason = match (base_value.null_reason(), new_value.null_reason()) {
            (Some(why), _) => format!("base: {why}"),
            (None, why) => format!("new: {}", why.unwrap_or_default()),
        };
        row.note = reason.clone();
        row.verdict = Verdict::NotMeasured(reason);
        return row;
    };
    row.change = relative_change(b, n);
    if !base.valid || !new.valid {
        let side = match (base.valid, new.valid) {
            (false, false) => "both runs invalid",
            (false, true) => "base run invalid",
            _ => "new run invalid",
        };
        row.note = side.to_string();
        row.verdict = Verdict::Excluded(side.to_string());
        return row;
    }
    let beyond = match row.change {
        Some(c) => c.abs() * 100.0 > criteria.threshold_pct,
        None => true, // from exactly 0 to something else
    };
    let (base_samples, kind) = samples(base, metric);
    let (new_samples, _) = samples(new, metric);
    let Significance {
        significant,
        p,
        method,
    } = significance(&base_samples, &new_samples, criteria.alpha, kind);
    let p_text = p
        .map(|p| format!(", p={}", format_p(p)))
        .unwrap_or_default();
    row.note = format!("{method}{p_text}");
    row.p = p;
    if !beyond {
        row.note = format!("within ±{}%; {}", criteria.threshold_pct, row.note);
        return row;
    }
    if !significant {
        row.note = format!("not significant; {}", row.note);
        return row;
    }
    let worse = match metric.better {
        Better::Higher => n < b,
        Better::Lower => n > b,
    };
    row.verdict = if worse {
        Verdict::Regressed
    } else {
        Verdict::Improved
    };
    row
}

fn format_p(p: f64) -> String {
    if p < 0.0001 {
        "<0.0001".into()
    } else {
        format!("{p:.4}")
    }
}

pub(super) fn order<'a>(base: &'a ResultsDoc, new: &'a ResultsDoc) -> Vec<(&'a str, &'a str)> {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for doc in [new, base] {
        for scenario in doc.scenarios() {
            for entry in doc.entries_of(scenario) {
                let pair = (entry.scenario.as_str(), entry.runtime.as_str());
                if !pairs.contains(&pair) {
                    pairs.push(pair);
                }
            }
        }
    }
    // Group by scenario in first-seen order, keeping runtime order within a scenario.
    let mut scenarios: Vec<&str> = Vec::new();
    for (s, _) in &pairs {
        if !scenarios.contains(s) {
            scenarios.push(s);
        }
    }
    scenarios
        .iter()
        .flat_map(|s| pairs.iter().filter(move |(ps, _)| ps == s).copied())
        .collect()
}

pub(super) fn find<'a>(doc: &'a ResultsDoc, scenario: &str, runtime: &str) -> Option<&'a Entry> {
    doc.results
        .iter()
        .find(|e| e.scenario == scenario && e.runtime == runtime)
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

/// Warns when a summary value is not the median of its repetitions (the file was edited, or a
/// writer is broken): verdicts are tested on the repetitions and windows, not the summary.
fn consistency_warnings(label: &str, doc: &ResultsDoc, metrics: &[Metric]) -> Vec<String> {
    let mut warnings = Vec::new();
    for entry in &doc.results {
        if entry.repetitions.is_empty() {
            warnings.push(format!(
                "{label}: {} / {} has no repetitions; only its summary can be shown, no test can run",
                entry.scenario, entry.runtime
            ));
            continue;
        }
        for metric in metrics {
            let Some(summary) = (metric.value)(&entry.summary.headline).into_value() else {
                continue;
            };
            let mut reps: Vec<f64> = entry
                .repetitions
                .iter()
                .filter_map(|r| (metric.value)(&r.headline).into_value())
                .collect();
            if reps.len() != entry.repetitions.len() {
                continue;
            }
            if let Some(m) = median(&mut reps) {
                let tolerance = 1e-6 * m.abs().max(1e-9);
                if (m - summary).abs() > tolerance {
                    warnings.push(format!(
                        "{label}: {} / {}: summary {} is {summary} but the median of its \
                         repetitions is {m}; the file was edited or is inconsistent (the tests \
                         use the repetitions and their windows)",
                        entry.scenario, entry.runtime, metric.name
                    ));
                }
            }
        }
    }
    warnings
}

fn environment_warnings(base: &ResultsDoc, new: &ResultsDoc) -> Vec<String> {
    let mut warnings = Vec::new();
    let (bh, nh) = (&base.host, &new.host);
    if bh.cpu != nh.cpu || bh.cores != nh.cores {
        warnings.push(format!(
            "the runs are from different machines ({:?} x{:?} vs {:?} x{:?}): differences may \
             be the hardware's",
            bh.cpu.as_deref().unwrap_or("?"),
            bh.cores,
            nh.cpu.as_deref().unwrap_or("?"),
            nh.cores
        ));
    }
    if bh.kernel != nh.kernel {
        warnings.push(format!(
            "different kernels: {} vs {}",
            bh.kernel.as_deref().unwrap_or("?"),
            nh.kernel.as_deref().unwrap_or("?")
        ));
    }
    for (scenario, runtime) in order(base, new) {
        let (Some(b), Some(n)) = (find(base, scenario, runtime), find(new, scenario, runtime))
        else {
            continue;
        };
        let (Some(bc), Some(nc)) = (&b.scenario_config, &n.scenario_config) else {
            continue;
        };
        let load = |c: &fanbench_plots::model::ScenarioConfig| {
            (
                c.publishers,
                c.subscribers_per_publisher,
                c.rate_per_publisher,
                c.payload_bytes,
            )
        };
        if load(bc) != load(nc) {
            warnings.push(format!(
                "{scenario} / {runtime}: the workloads differ (base {} pub x {} sub at {} msg/s, \
                 {} B; new {} x {} at {} msg/s, {} B): this compares different loads",
                bc.publishers,
                bc.subscribers_per_publisher,
                bc.rate_per_publisher,
                bc.payload_bytes,
                nc.publishers,
                nc.subscribers_per_publisher,
                nc.rate_per_publisher,
                nc.payload_bytes
            ));
        }
    }
    warnings
}

/// Benjamini-Hochberg over every tested row: a change stands only when its q-value is below
/// `alpha` (hundreds of tests at p < 0.05 would otherwise yield false verdicts by chance).
fn correct_for_multiplicity(comparison: &mut Comparison, alpha: f64) {
    let tested: Vec<usize> = (0..comparison.rows.len())
        .filter(|&i| comparison.rows[i].p.is_some())
        .collect();
    let ps: Vec<f64> = tested
        .iter()
        .filter_map(|&i| comparison.rows[i].p)
        .collect();
    let m = ps.len();
    for (&i, q) in tested.iter().zip(benjamini_hochberg(&ps)) {
        let row = &mut comparison.rows[i];
        row.note = format!("{}, q={} ({m} tests)", row.note, format_p(q));
        if matches!(row.verdict, Verdict::Improved | Verdict::Regressed) && q >= alpha {
            row.verdict = Verdict::NoChange;
            row.note = format!(
                "not significant after the correction for {m} tests; {}",
                row.note
            );
        }
    }
}

/// Compares every (workload, runtime, metric) of `base` and `new`.
pub fn compare(base: &ResultsDoc, new: &ResultsDoc, criteria: Criteria) -> Comparison {
    let metrics = metrics();
    let mut comparison = Comparison::default();
    comparison.warnings.extend(environment_warnings(base, new));
    comparison
        .warnings
        .extend(consistency_warnings("base", base, &metrics));
    comparison
        .warnings
        .extend(consistency_warnings("new", new, &metrics));
    for (scenario, runtime) in order(base, new) {
        match (find(base, scenario, runtime), find(new, scenario, runtime)) {
            (Some(b), Some(n)) => {
                for metric in &metrics {
                    comparison.rows.push(judge(metric, b, n, criteria));
                }
            }
            (b, _) => {
                let side = if b.is_some() { "base" } else { "new" };
                comparison.rows.push(Row {
                    scenario: scenario.to_string(),
                    runtime: runtime.to_string(),
                    metric: "-",
                    unit: Unit::PerMsg,
                    base: None,
                    new: None,
                    change: None,
                    verdict: Verdict::OnlyIn(side),
                    note: format!("measured in the {side} run only"),
                    p: None,
                });
            }
        }
    }
    correct_for_multiplicity(&mut comparison, criteria.alpha);
    let untested = comparison
        .rows
        .iter()
        .filter(|r| {
            r.verdict == Verdict::NoChange && r.note.starts_with("not significant; not testable")
        })
        .count();
    if untested > 0 {
        comparison.warnings.push(format!(
            "{untested} change(s) beyond ±{}% could not be tested: fewer than 2 samples per side \
             (one repetition with a single 1 s window, as in bench-all --quick, gives one). \
             Rerun both sides with longer windows (--duration 3s) or --reps 2 for a verdict",
            criteria.threshold_pct
        ));
    }
    comparison
}
