//! Turning measurements into results: percentiles and serialized histograms, and writing and
//! reading the file atomically. The summary over repetitions is in [`super::summary`].

use std::path::Path;

use anyhow::{bail, Context};
use base64::Engine;
use hdrhistogram::serialization::{Serializer, V2Serializer};
use hdrhistogram::Histogram;

use super::schema::{Percentiles, ResultsFile};

/// Percentiles in microseconds of a histogram recorded in nanoseconds; `None` for an empty
/// histogram (no sample, so no percentile: never reported as 0).
pub fn percentiles_us_from_ns(h: &Histogram<u64>) -> Option<Percentiles> {
    let us = |ns: u64| ns as f64 / 1000.0;
    if h.is_empty() {
        return None;
    }
    Some(Percentiles {
        p50: us(h.value_at_quantile(0.50)),
        p90: us(h.value_at_quantile(0.90)),
        p99: us(h.value_at_quantile(0.99)),
        p999: us(h.value_at_quantile(0.999)),
        max: us(h.max()),
        mean: h.mean() / 1000.0,
        count: h.len(),
    })
}

/// V2 serialization (uncompressed), base64 with the standard alphabet.
pub fn serialize_histogram(h: &Histogram<u64>) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut bytes)
        .map_err(|e| anyhow::anyhow!("serializing a histogram: {e:?}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Inverse of [`serialize_histogram`] (for readers of results files; used by the tests).
#[cfg_attr(not(test), allow(dead_code))]
pub fn deserialize_histogram(text: &str) -> anyhow::Result<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .context("histogram is not valid base64")?;
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| anyhow::anyhow!("histogram is not a valid V2 serialization: {e:?}"))
}

/// Writes `file` as pretty JSON to `path` atomically (temporary file + rename), creating the
/// directory if needed.
pub fn write_results(path: &Path, file: &ResultsFile) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let json = serde_json::to_vec_pretty(file).context("serializing results")?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, json).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// Reads and version-checks a results file (for readers such as `compare`; used by the tests).
#[cfg_attr(not(test), allow(dead_code))]
pub fn read_results(path: &Path) -> anyhow::Result<ResultsFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let version = value.get("schema_version").and_then(|v| v.as_u64());
    if version != Some(u64::from(super::schema::SCHEMA_VERSION)) {
        bail!(
            "{} has schema_version {version:?}; this build reads {}",
            path.display(),
            super::schema::SCHEMA_VERSION
        );
    }
    serde_json::from_value(value).with_context(|| format!("decoding {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixture::rep;
    use crate::results::schema::*;
    use crate::results::summary::summarize;
    use std::collections::BTreeMap;

    #[test]
    fn histogram_round_trips_through_base64_v2() {
        let mut h = Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3).expect("bounds");
        for v in [1_000u64, 50_000, 2_000_000, 500_000_000] {
            h.record(v).expect("record");
        }
        let back = deserialize_histogram(&serialize_histogram(&h).expect("ser")).expect("de");
        assert_eq!(back.len(), 4);
        assert_eq!(back.max(), h.max());
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
    }

    #[test]
    fn percentiles_convert_ns_to_us() {
        let mut h = Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3).expect("bounds");
        h.record(500_000_000).expect("record"); // 500 ms
        let p = percentiles_us_from_ns(&h).expect("one sample");
        assert!((p.max - 500_000.0).abs() / 500_000.0 < 0.001, "{p:?}");
        assert_eq!(p.count, 1);
    }

    #[test]
    fn results_file_round_trips_through_json_and_checks_its_version() {
        let reps = vec![rep(0, 10.0, 1.0, Some(1.0)), rep(1, 12.0, 2.0, Some(1.2))];
        let summary = summarize(&reps).expect("summary");
        let scenario = Scenario {
            name: "s".into(),
            description: String::new(),
            publishers: 1,
            subscribers_per_publisher: 10,
            rate_per_publisher: 200.0,
            payload_bytes: 64,
            duration_s: 5.0,
            warmup_s: 1.0,
            repetitions: 2,
            slow_subscribers: 0,
            slow_read_bytes_per_s: 0,
            coalesce_us: Some(250),
        };
        let file = ResultsFile {
            schema_version: SCHEMA_VERSION,
            run_id: "id".into(),
            started_at: "2026-01-01T00:00:00.000Z".into(),
            finished_at: None,
            command: vec!["fanbench".into(), "run".into()],
            git: GitInfo {
                commit: Some("abc".into()),
                dirty: Some(false),
                null_reason: None,
            },
            host: HostInfo {
                hostname: None,
                kernel: "6.18".into(),
                kernel_version: None,
                cpu: "cpu".into(),
                cores: 2,
                memory_bytes: 1 << 30,
            },
            toolchain: Toolchain {
                rustc: None,
                fanbench: "0.1.0".into(),
            },
            runtimes: vec![RuntimeInfo {
                name: "tokio-mt".into(),
                kind: RuntimeKind::Fanbench,
                versions: BTreeMap::from([("tokio".to_string(), "1.45.0".to_string())]),
                available: true,
                unavailable_reason: None,
            }],
            results: vec![ScenarioResult {
                scenario: "s".into(),
                runtime: "tokio-mt".into(),
                scenario_config: scenario,
                runtime_config: RuntimeConfig {
                    name: "tokio-mt".into(),
                    kind: RuntimeKind::Fanbench,
                    command: vec!["fanbench".into(), "serve".into()],
                    env: BTreeMap::new(),
                    target: "127.0.0.1:4222".into(),
                    server_cpus: Some(vec![0]),
                    client_cpus: vec![1],
                    server_pid: Some(42),
                    uring_policy: None,
                    cpus_used: Some(vec![0]),
                },
                valid: false,
                invalid_reasons: vec!["rep 1: x".into()],
                repetitions: reps,
                summary,
                server_stats: Measured::Value(serde_json::json!({"enters": 5})),
            }],
            skipped: vec![Skipped {
                scenario: None,
                runtime: "nats-server".into(),
                reason: "not installed".into(),
            }],
            calibration: None,
            batching: Vec::new(),
            policies: Vec::new(),
            partial: true,
            interrupted_by: Some("SIGTERM".into()),
            failed: vec![Failed {
                scenario: "fanout-100".into(),
                runtime: "tokio".into(),
                reason: "repetition 0 of fanout-100: the server died (signal: 9 (SIGKILL))".into(),
                server_exit: Some("signal: 9 (SIGKILL)".into()),
                server_exit_code: None,
                server_signal: Some(9),
                server_log_tail: Some("listening".into()),
                repetitions_completed: 1,
            }],
            agents: None,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/results.json");
        write_results(&path, &file).expect("write");
        let back = read_results(&path).expect("read");
        assert_eq!(back, file);

        // The contract's field names are where readers expect them.
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        let result = &json["results"][0];
        for key in [
            "throughput_msgs_per_s",
            "latency_us",
            "service_latency_us",
            "pacing_lag_us",
            "delivered",
            "expected",
            "lost",
            "syscalls_per_msg",
            "sqes_per_msg",
            "server_cpu_us_per_msg",
            "server_peak_rss_bytes",
        ] {
            assert!(result["summary"].get(key).is_some(), "summary.{key}");
            assert!(
                result["repetitions"][0].get(key).is_some(),
                "repetitions[0].{key}"
            );
        }
        assert!(result["summary"]["latency_us"]["p999"].is_number());
        assert!(json["git"]["dirty"].is_boolean());

        let mut wrong = json.clone();
        wrong["schema_version"] = serde_json::json!(999);
        std::fs::write(&path, wrong.to_string()).expect("write");
        assert!(read_results(&path).is_err());
    }
}
