//! A tolerant reader for `results.json` and `sweep.json` (results/README.md documents both).
//!
//! These types deliberately mirror only the fields the views need. Unknown fields are ignored
//! and optional fields default, so a file written by any commit with the same
//! `schema_version` loads; a file with a different major version is refused with a clear
//! error instead of being half-understood.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use serde::Deserialize;

/// The results schema version these readers understand.
pub const SUPPORTED_SCHEMA_VERSION: u32 = 1;

/// One `results.json`: provenance and one [`Entry`] per (scenario, runtime).
#[derive(Debug, Clone, Deserialize)]
pub struct ResultsDoc {
    pub schema_version: u32,
    #[serde(default)]
    pub run_id: String,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub git: Git,
    #[serde(default)]
    pub host: Host,
    #[serde(default)]
    pub toolchain: Toolchain,
    #[serde(default)]
    pub runtimes: Vec<RuntimeInfo>,
    #[serde(default)]
    pub results: Vec<Entry>,
    #[serde(default)]
    pub skipped: Vec<Skipped>,
    /// bench-all's batching comparison (one workload, every row, each window).
    #[serde(default)]
    pub batching: Vec<Entry>,
    /// bench-all's uring submission-policy comparison.
    #[serde(default)]
    pub policies: Vec<Entry>,
    /// True when the run did not finish (interrupted or killed).
    #[serde(default)]
    pub partial: bool,
    #[serde(default)]
    pub interrupted_by: Option<String>,
    /// Pairs whose measurement failed (most often: the server died).
    #[serde(default)]
    pub failed: Vec<Failed>,
}

/// A (scenario, runtime) pair whose measurement failed.
#[derive(Debug, Clone, Deserialize)]
pub struct Failed {
    pub scenario: String,
    pub runtime: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub server_exit: Option<String>,
    #[serde(default)]
    pub server_log_tail: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Git {
    #[serde(default)]
    pub commit: Option<String>,
    #[serde(default)]
    pub dirty: Option<bool>,
    #[serde(default)]
    pub null_reason: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Host {
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub kernel: Option<String>,
    #[serde(default)]
    pub kernel_version: Option<String>,
    #[serde(default)]
    pub cpu: Option<String>,
    #[serde(default)]
    pub cores: Option<u32>,
    #[serde(default)]
    pub memory_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Toolchain {
    #[serde(default)]
    pub rustc: Option<String>,
    #[serde(default)]
    pub fanbench: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RuntimeInfo {
    pub name: String,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub versions: BTreeMap<String, String>,
    #[serde(default = "default_true")]
    pub available: bool,
    #[serde(default)]
    pub unavailable_reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Skipped {
    #[serde(default)]
    pub scenario: Option<String>,
    pub runtime: String,
    #[serde(default)]
    pub reason: String,
}

/// All repetitions of one scenario on one runtime.
#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    pub scenario: String,
    pub runtime: String,
    #[serde(default)]
    pub scenario_config: Option<ScenarioConfig>,
    #[serde(default)]
    pub runtime_config: Option<RuntimeConfig>,
    pub valid: bool,
    #[serde(default)]
    pub invalid_reasons: Vec<String>,
    #[serde(default)]
    pub repetitions: Vec<Repetition>,
    pub summary: Summary,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ScenarioConfig {
    #[serde(default)]
    pub description: String,
    pub publishers: u32,
    pub subscribers_per_publisher: u32,
    pub rate_per_publisher: f64,
    pub payload_bytes: u64,
    #[serde(default)]
    pub duration_s: Option<f64>,
    #[serde(default)]
    pub warmup_s: Option<f64>,
    #[serde(default)]
    pub repetitions: Option<u32>,
    #[serde(default)]
    pub slow_subscribers: u32,
    /// The broker's batching window in µs (absent in files from before it was recorded).
    #[serde(default)]
    pub coalesce_us: Option<u64>,
}

impl ScenarioConfig {
    /// Deliveries per second the load generator offers: publishers x rate x subscribers.
    pub fn offered_deliveries_per_s(&self) -> f64 {
        f64::from(self.publishers)
            * self.rate_per_publisher
            * f64::from(self.subscribers_per_publisher)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RuntimeConfig {
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub server_cpus: Option<Vec<usize>>,
    #[serde(default)]
    pub client_cpus: Vec<usize>,
    /// The uring row's submission policy (absent for other rows and in early files).
    #[serde(default)]
    pub uring_policy: Option<String>,
    /// Every CPU the server used (its set plus an SQPOLL thread's CPU outside it).
    #[serde(default)]
    pub cpus_used: Option<Vec<usize>>,
}

/// The headline numbers, shared by repetitions and summaries (results/README.md).
#[derive(Debug, Clone, Deserialize)]
pub struct Headline {
    pub throughput_msgs_per_s: f64,
    /// Null when nothing was delivered (an empty histogram has no percentiles).
    #[serde(default)]
    pub latency_us: Option<Percentiles>,
    #[serde(default)]
    pub latency_us_null_reason: Option<String>,
    #[serde(default)]
    pub service_latency_us: Option<Percentiles>,
    #[serde(default)]
    pub pacing_lag_us: Option<Percentiles>,
    #[serde(default)]
    pub delivered: u64,
    #[serde(default)]
    pub expected: u64,
    #[serde(default)]
    pub lost: u64,
    #[serde(default)]
    pub syscalls_per_msg: Option<f64>,
    #[serde(default)]
    pub syscalls_per_msg_null_reason: Option<String>,
    #[serde(default)]
    pub sqes_per_msg: Option<f64>,
    #[serde(default)]
    pub sqes_per_msg_null_reason: Option<String>,
    #[serde(default)]
    pub server_cpu_us_per_msg: Option<f64>,
    #[serde(default)]
    pub server_cpu_us_per_msg_null_reason: Option<String>,
    #[serde(default)]
    pub server_peak_rss_bytes: Option<f64>,
    #[serde(default)]
    pub server_peak_rss_bytes_null_reason: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
    #[serde(default)]
    pub count: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Summary {
    #[serde(default)]
    pub repetitions: u32,
    #[serde(default)]
    pub valid_repetitions: u32,
    #[serde(flatten)]
    pub headline: Headline,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Repetition {
    #[serde(default)]
    pub index: u32,
    #[serde(default = "default_true")]
    pub valid: bool,
    #[serde(default)]
    pub invalid_reasons: Vec<String>,
    #[serde(default)]
    pub window_s: Option<f64>,
    #[serde(flatten)]
    pub headline: Headline,
    #[serde(default)]
    pub histograms: Option<Histograms>,
    #[serde(default)]
    pub windows: Vec<Window>,
    #[serde(default)]
    pub server: Option<ServerMetrics>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Histograms {
    pub unit: String,
    pub latency: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Window {
    pub second: u32,
    /// Length of this window (1 s except a shorter last one); absent in early files.
    #[serde(default)]
    pub length_s: Option<f64>,
    #[serde(default)]
    pub sent: u64,
    #[serde(default)]
    pub expected: Option<u64>,
    pub delivered: u64,
    #[serde(default)]
    pub latency_p50_us: Option<f64>,
    #[serde(default)]
    pub latency_p99_us: Option<f64>,
    #[serde(default)]
    pub latency_max_us: Option<f64>,
}

impl Repetition {
    /// The length of window `window` of this repetition: its `length_s`, else derived from
    /// the repetition's `window_s` (1 s, or less for a final partial second).
    pub fn window_length(&self, window: &Window) -> f64 {
        if let Some(length) = window.length_s {
            return length;
        }
        match self.window_s {
            Some(total) => (total - f64::from(window.second)).clamp(0.0, 1.0),
            None => 1.0,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ServerMetrics {
    #[serde(default)]
    pub syscalls: Option<Syscalls>,
    /// Which seconds fed which metric (absent in files from before the window was cut).
    #[serde(default)]
    pub counting: Option<Counting>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Counting {
    #[serde(default)]
    pub cpu_with_tracepoints: bool,
    /// Server CPU per message in the counted seconds, tracepoints attached.
    #[serde(default)]
    pub counted_cpu_us_per_msg: Option<f64>,
}

impl Entry {
    /// What the syscall tracepoints add to this row's server CPU per message: the median over
    /// repetitions of (CPU/msg in the counted seconds / CPU/msg in the uncounted ones) - 1.
    /// None when no repetition was cut into both parts.
    pub fn tracepoint_cost(&self) -> Option<f64> {
        let mut ratios: Vec<f64> = self
            .repetitions
            .iter()
            .filter_map(|r| {
                let counted = r
                    .server
                    .as_ref()?
                    .counting
                    .as_ref()?
                    .counted_cpu_us_per_msg?;
                let uncounted = r.headline.server_cpu_us_per_msg?;
                (uncounted > 0.0).then(|| counted / uncounted - 1.0)
            })
            .collect();
        if ratios.is_empty() {
            return None;
        }
        ratios.sort_by(f64::total_cmp);
        let n = ratios.len();
        Some(if n % 2 == 1 {
            ratios[n / 2]
        } else {
            (ratios[n / 2 - 1] + ratios[n / 2]) / 2.0
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Syscalls {
    #[serde(default)]
    pub total: Option<u64>,
    #[serde(default)]
    pub null_reason: Option<String>,
    #[serde(default)]
    pub breakdown: BTreeMap<String, u64>,
    #[serde(default)]
    pub breakdown_null_reason: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
}

/// The name of the physical-floor row (a minimal raw io_uring server, no runtime): other rows'
/// CPU per message is shown as a multiple of its.
pub const FLOOR_ROW: &str = "floor";

/// One `sweep.json`, written by `fanbench sweep` (results/README.md, "Sweeps").
#[derive(Debug, Clone, Deserialize)]
pub struct SweepDoc {
    pub schema_version: u32,
    #[serde(default)]
    pub run_id: String,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub git: Git,
    #[serde(default)]
    pub host: Host,
    pub slo_p99_us: f64,
    /// A signal stopped the sweep before every row was swept.
    #[serde(default)]
    pub partial: bool,
    #[serde(default)]
    pub interrupted_by: Option<String>,
    #[serde(default)]
    pub sweeps: Vec<Sweep>,
}

/// One runtime's sweep of one scenario: offered load rising step by step.
#[derive(Debug, Clone, Deserialize)]
pub struct Sweep {
    pub scenario: String,
    pub runtime: String,
    #[serde(default)]
    pub steps: Vec<SweepStep>,
    #[serde(default)]
    pub max_sustainable_msgs_per_s: Option<f64>,
    #[serde(default)]
    pub max_sustainable_null_reason: Option<String>,
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// What ended the sweep in one word (`server-saturated`, `instrument-limited`, ...);
    /// absent in sweeps written before it was recorded.
    #[serde(default)]
    pub ended_by: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SweepStep {
    pub offered_msgs_per_s: f64,
    /// Whether this step met every condition (p99 within the SLO, no loss, valid).
    pub sustained: bool,
    pub result: Entry,
}

fn default_true() -> bool {
    true
}

fn check_version(version: u32, path: &Path) -> anyhow::Result<()> {
    if version != SUPPORTED_SCHEMA_VERSION {
        bail!(
            "{} has schema_version {version}, but this fanbench reads version \
             {SUPPORTED_SCHEMA_VERSION} (see results/README.md)",
            path.display()
        );
    }
    Ok(())
}

impl ResultsDoc {
    /// Reads and checks a `results.json`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading results file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("parsing results file {}", path.display()))
    }

    /// Parses a `results.json` held in memory.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let probe: VersionProbe =
            serde_json::from_str(text).context("not a fanbench results file")?;
        if probe.kind.as_deref() == Some("sweep") {
            bail!("this is a sweep file (sweep.json), not a results file");
        }
        check_version(probe.schema_version, Path::new("the results file"))?;
        let doc: Self = serde_json::from_str(text)?;
        Ok(doc)
    }

    /// Scenario names in the order they first appear.
    pub fn scenarios(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for entry in &self.results {
            if !names.contains(&entry.scenario.as_str()) {
                names.push(&entry.scenario);
            }
        }
        names
    }

    /// The entries of one scenario, in [`runtime_order`](Self::runtime_order).
    pub fn entries_of(&self, scenario: &str) -> Vec<&Entry> {
        let order = self.runtime_order();
        let mut entries: Vec<&Entry> = self
            .results
            .iter()
            .filter(|e| e.scenario == scenario)
            .collect();
        entries.sort_by_key(|e| order.iter().position(|r| *r == e.runtime));
        entries
    }

    /// Runtimes in a stable order: as listed in `runtimes[]`, then the rest as they appear.
    pub fn runtime_order(&self) -> Vec<String> {
        let mut order: Vec<String> = self.runtimes.iter().map(|r| r.name.clone()).collect();
        for entry in &self.results {
            if !order.contains(&entry.runtime) {
                order.push(entry.runtime.clone());
            }
        }
        order
    }
}

impl SweepDoc {
    /// Reads and checks a `sweep.json`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading sweep file {}", path.display()))?;
        let probe: VersionProbe = serde_json::from_str(&text)
            .with_context(|| format!("parsing sweep file {}", path.display()))?;
        if probe.kind.as_deref() != Some("sweep") {
            bail!(
                "{} is not a sweep file (no \"kind\": \"sweep\")",
                path.display()
            );
        }
        check_version(probe.schema_version, path)?;
        serde_json::from_str(&text)
            .with_context(|| format!("parsing sweep file {}", path.display()))
    }
}

#[derive(Deserialize)]
struct VersionProbe {
    schema_version: u32,
    #[serde(default)]
    kind: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracepoint_cost_is_the_median_ratio_of_counted_to_uncounted_cpu() {
        let rep = |cpu: f64, counted: Option<f64>| {
            serde_json::json!({
                "throughput_msgs_per_s": 1.0,
                "server_cpu_us_per_msg": cpu,
                "server": {"counting": {"counted_cpu_us_per_msg": counted}}
            })
        };
        let entry = |reps: Vec<serde_json::Value>| -> Entry {
            serde_json::from_value(serde_json::json!({
                "scenario": "s", "runtime": "r", "valid": true,
                "repetitions": reps,
                "summary": {"throughput_msgs_per_s": 1.0}
            }))
            .expect("entry")
        };
        let cost = entry(vec![
            rep(1.0, Some(1.3)),
            rep(2.0, Some(2.2)),
            rep(1.0, Some(1.2)),
        ])
        .tracepoint_cost()
        .expect("cost");
        assert!((cost - 0.2).abs() < 1e-9, "{cost}");
        assert_eq!(entry(vec![rep(1.0, None)]).tracepoint_cost(), None);
        assert_eq!(entry(Vec::new()).tracepoint_cost(), None);
    }

    const MINIMAL: &str = r#"{
        "schema_version": 1,
        "results": [{
            "scenario": "s", "runtime": "r", "valid": true, "some_future_field": [1, 2],
            "summary": {
                "throughput_msgs_per_s": 10.0,
                "latency_us": {"p50": 1, "p90": 2, "p99": 3, "p999": 4, "max": 5, "mean": 1.5}
            }
        }]
    }"#;

    #[test]
    fn minimal_file_with_unknown_fields_loads_and_missing_optionals_are_none() {
        let doc = ResultsDoc::parse(MINIMAL).expect("minimal file parses");
        let entry = &doc.results[0];
        assert_eq!(entry.summary.headline.latency_us.expect("latency").p99, 3.0);
        assert!(entry.summary.headline.syscalls_per_msg.is_none());
        assert!(entry.repetitions.is_empty());
    }

    #[test]
    fn other_schema_version_is_refused_with_the_version_in_the_message() {
        let text = MINIMAL.replace("\"schema_version\": 1", "\"schema_version\": 7");
        let err = ResultsDoc::parse(&text).expect_err("version 7 is refused");
        assert!(format!("{err:#}").contains("schema_version 7"), "{err:#}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(ResultsDoc::parse("{\"schema_version\": \"x\"}").is_err());
        assert!(ResultsDoc::parse("not json").is_err());
    }
}
