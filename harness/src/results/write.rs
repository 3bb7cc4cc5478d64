//! Turning measurements into results: percentiles and serialized histograms, the summary over
//! repetitions (median and min/max), and writing the file atomically.

use std::path::Path;

use anyhow::{bail, Context};
use base64::Engine;
use hdrhistogram::serialization::{Serializer, V2Serializer};
use hdrhistogram::Histogram;

use super::schema::{
    Headline, PercentileRanges, Percentiles, Range, Repetition, ResultsFile, Spread, Summary,
};

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

/// Median (mean of the two middle values for an even count). None when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Min and max. None when empty.
pub fn range(values: &[f64]) -> Option<Range> {
    let min = values.iter().copied().min_by(f64::total_cmp)?;
    let max = values.iter().copied().max_by(f64::total_cmp)?;
    Some(Range { min, max })
}

/// Median and range of one optional metric over repetitions: present only when every
/// repetition has it; otherwise null with the first repetition's reason.
fn optional_stat(
    reps: &[Repetition],
    value: impl Fn(&Headline) -> Option<f64>,
    reason: impl Fn(&Headline) -> Option<String>,
) -> (Option<f64>, Option<String>, Option<Range>) {
    let mut values = Vec::with_capacity(reps.len());
    for rep in reps {
        match value(&rep.headline) {
            Some(v) => values.push(v),
            None => {
                let why = reason(&rep.headline).unwrap_or_else(|| "not measured".into());
                return (None, Some(format!("rep {}: {why}", rep.index)), None);
            }
        }
    }
    (median(&values), None, range(&values))
}

/// Summary over repetitions (see results/README.md): medians, totals for counts, min/max.
pub fn summarize(reps: &[Repetition]) -> anyhow::Result<Summary> {
    if reps.is_empty() {
        bail!("no repetitions to summarize");
    }
    let collect = |f: &dyn Fn(&Headline) -> f64| -> Vec<f64> {
        reps.iter().map(|r| f(&r.headline)).collect()
    };
    let stat = |f: &dyn Fn(&Headline) -> f64| -> (f64, Range) {
        let values = collect(f);
        // Non-empty (checked above), so both are Some.
        let med = median(&values).unwrap_or(f64::NAN);
        let rng = range(&values).unwrap_or(Range {
            min: f64::NAN,
            max: f64::NAN,
        });
        (med, rng)
    };
    // A percentile set is summarized only when every repetition has one (the same rule as the
    // optional metrics): otherwise null, with the first repetition's reason.
    type Pick = fn(&Headline) -> (Option<&Percentiles>, Option<&String>);
    let percentiles = |pick: Pick| -> (
        Option<Percentiles>,
        Option<String>,
        Option<PercentileRanges>,
    ) {
        let mut sets = Vec::with_capacity(reps.len());
        for rep in reps {
            match pick(&rep.headline) {
                (Some(p), _) => sets.push(*p),
                (None, why) => {
                    let why = why.cloned().unwrap_or_else(|| "not measured".into());
                    return (None, Some(format!("rep {}: {why}", rep.index)), None);
                }
            }
        }
        let stat = |f: fn(&Percentiles) -> f64| -> (f64, Range) {
            let values: Vec<f64> = sets.iter().map(f).collect();
            // Non-empty (checked above), so both are Some.
            let med = median(&values).unwrap_or(f64::NAN);
            let rng = range(&values).unwrap_or(Range {
                min: f64::NAN,
                max: f64::NAN,
            });
            (med, rng)
        };
        let (p50, r50) = stat(|p| p.p50);
        let (p90, r90) = stat(|p| p.p90);
        let (p99, r99) = stat(|p| p.p99);
        let (p999, r999) = stat(|p| p.p999);
        let (max, rmax) = stat(|p| p.max);
        let (mean, rmean) = stat(|p| p.mean);
        let count = sets.iter().map(|p| p.count).sum();
        (
            Some(Percentiles {
                p50,
                p90,
                p99,
                p999,
                max,
                mean,
                count,
            }),
            None,
            Some(PercentileRanges {
                p50: r50,
                p90: r90,
                p99: r99,
                p999: r999,
                max: rmax,
                mean: rmean,
            }),
        )
    };
    let (throughput, throughput_range) = stat(&|h| h.throughput_msgs_per_s);
    let (latency, latency_reason, latency_ranges) =
        percentiles(|h| (h.latency_us.as_ref(), h.latency_us_null_reason.as_ref()));
    let (service, service_reason, service_ranges) = percentiles(|h| {
        (
            h.service_latency_us.as_ref(),
            h.service_latency_us_null_reason.as_ref(),
        )
    });
    let (pacing, pacing_reason, pacing_ranges) = percentiles(|h| {
        (
            h.pacing_lag_us.as_ref(),
            h.pacing_lag_us_null_reason.as_ref(),
        )
    });
    let (syscalls, syscalls_reason, syscalls_range) = optional_stat(
        reps,
        |h| h.syscalls_per_msg,
        |h| h.syscalls_per_msg_null_reason.clone(),
    );
    let (sqes, sqes_reason, sqes_range) = optional_stat(
        reps,
        |h| h.sqes_per_msg,
        |h| h.sqes_per_msg_null_reason.clone(),
    );
    let (cpu, cpu_reason, cpu_range) = optional_stat(
        reps,
        |h| h.server_cpu_us_per_msg,
        |h| h.server_cpu_us_per_msg_null_reason.clone(),
    );
    let (rss, rss_reason, rss_range) = optional_stat(
        reps,
        |h| h.server_peak_rss_bytes.map(|b| b as f64),
        |h| h.server_peak_rss_bytes_null_reason.clone(),
    );
    let total = |f: fn(&Headline) -> u64| reps.iter().map(|r| f(&r.headline)).sum();
    Ok(Summary {
        repetitions: u32::try_from(reps.len()).unwrap_or(u32::MAX),
        valid_repetitions: u32::try_from(reps.iter().filter(|r| r.valid).count())
            .unwrap_or(u32::MAX),
        headline: Headline {
            throughput_msgs_per_s: throughput,
            latency_us: latency,
            latency_us_null_reason: latency_reason,
            service_latency_us: service,
            service_latency_us_null_reason: service_reason,
            pacing_lag_us: pacing,
            pacing_lag_us_null_reason: pacing_reason,
            delivered: total(|h| h.delivered),
            expected: total(|h| h.expected),
            lost: total(|h| h.lost),
            syscalls_per_msg: syscalls,
            syscalls_per_msg_null_reason: syscalls_reason,
            sqes_per_msg: sqes,
            sqes_per_msg_null_reason: sqes_reason,
            server_cpu_us_per_msg: cpu,
            server_cpu_us_per_msg_null_reason: cpu_reason,
            // The median of byte counts is a whole number or a half; round to bytes.
            server_peak_rss_bytes: rss.map(|b| b.round() as u64),
            server_peak_rss_bytes_null_reason: rss_reason,
        },
        spread: Spread {
            throughput_msgs_per_s: throughput_range,
            latency_us: latency_ranges,
            service_latency_us: service_ranges,
            pacing_lag_us: pacing_ranges,
            syscalls_per_msg: syscalls_range,
            sqes_per_msg: sqes_range,
            server_cpu_us_per_msg: cpu_range,
            server_peak_rss_bytes: rss_range,
        },
    })
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
    use crate::results::schema::*;
    use std::collections::BTreeMap;

    fn pct(v: f64) -> Percentiles {
        Percentiles {
            p50: v,
            p90: v * 2.0,
            p99: v * 3.0,
            p999: v * 4.0,
            max: v * 5.0,
            mean: v,
            count: 100,
        }
    }

    fn rep(index: u32, throughput: f64, latency: f64, syscalls: Option<f64>) -> Repetition {
        let mut hist = Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3).expect("bounds");
        hist.record(12_345).expect("record");
        let encoded = serialize_histogram(&hist).expect("serialize");
        Repetition {
            index,
            started_at: "2026-01-01T00:00:00.000Z".into(),
            valid: index != 1,
            invalid_reasons: if index == 1 {
                vec!["healthy subscribers lost 3 messages".into()]
            } else {
                vec![]
            },
            window_s: 5.0,
            headline: Headline {
                throughput_msgs_per_s: throughput,
                latency_us: Some(pct(latency)),
                latency_us_null_reason: None,
                service_latency_us: Some(pct(latency / 2.0)),
                service_latency_us_null_reason: None,
                pacing_lag_us: Some(pct(1.0)),
                pacing_lag_us_null_reason: None,
                delivered: 1000,
                expected: 1000 + u64::from(index == 1) * 3,
                lost: u64::from(index == 1) * 3,
                syscalls_per_msg: syscalls,
                syscalls_per_msg_null_reason: syscalls
                    .is_none()
                    .then(|| "perf_event_open: EACCES".to_string()),
                sqes_per_msg: Some(0.0),
                sqes_per_msg_null_reason: None,
                server_cpu_us_per_msg: Some(latency / 10.0),
                server_cpu_us_per_msg_null_reason: None,
                server_peak_rss_bytes: Some(1_000_000 + u64::from(index)),
                server_peak_rss_bytes_null_reason: None,
            },
            sent: 200,
            duplicates: 0,
            reordered: 0,
            histograms: Histograms {
                unit: "ns".into(),
                latency: encoded.clone(),
                service_latency: encoded.clone(),
                pacing_lag: encoded,
            },
            windows: vec![WindowStats {
                second: 0,
                length_s: 1.0,
                sent: 40,
                expected: 200,
                delivered: 200,
                latency_p50_us: Some(12.0),
                latency_p99_us: Some(30.0),
                latency_max_us: None,
            }],
            slow_subscribers: SlowSubscribers {
                count: 0,
                read_bytes_per_s: 0,
                bytes_read: 0,
                bytes_drained_at_end: 0,
                messages: 0,
                messages_in_window: 0,
                cut_as_slow_consumer: 0,
                closed_by_server: 0,
                max_latency_us: None,
            },
            load_generator: LoadGenerator {
                cpus: vec![1],
                behind_schedule: false,
                max_pacing_lag_us: 20.0,
                pacer_priority: "SCHED_FIFO 1".into(),
                cpu_user_s: 0.1,
                cpu_sys_s: 0.2,
                utilisation: 0.06,
                busiest_thread_utilisation: Some(0.04),
                busiest_thread: Some("fanbench-sub-0".into()),
                busiest_thread_null_reason: None,
                saturated: false,
                subscribers_with_loss: 0,
                grace_s: 0.01,
            },
            server: ServerMetrics {
                pid: Some(42),
                cpu_user_s: Some(0.01),
                cpu_sys_s: Some(0.02),
                cpu_null_reason: None,
                cpu_task_clock_s: None,
                cpu_task_clock_null_reason: Some("no perf".into()),
                peak_rss_scope: Some("window".into()),
                syscalls: Syscalls {
                    total: Some(1234),
                    null_reason: None,
                    breakdown: BTreeMap::from([
                        ("writev".to_string(), 1000),
                        ("other".to_string(), 234),
                    ]),
                    breakdown_null_reason: None,
                    threads_at_start: Some(3),
                    threads_at_end: Some(3),
                    method: "test".into(),
                },
                sqes: Some(0),
                sqes_null_reason: None,
            },
            errors: vec![],
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn range_is_min_and_max() {
        assert_eq!(
            range(&[3.0, -1.0, 2.0]),
            Some(Range {
                min: -1.0,
                max: 3.0
            })
        );
        assert_eq!(range(&[]), None);
    }

    #[test]
    fn summary_takes_medians_totals_counts_and_spreads() {
        let reps = vec![
            rep(0, 100.0, 10.0, Some(1.5)),
            rep(1, 300.0, 30.0, Some(2.5)),
            rep(2, 200.0, 20.0, Some(1.0)),
        ];
        let s = summarize(&reps).expect("summary");
        assert_eq!(s.repetitions, 3);
        assert_eq!(s.valid_repetitions, 2);
        assert_eq!(s.headline.throughput_msgs_per_s, 200.0);
        assert_eq!(
            s.spread.throughput_msgs_per_s,
            Range {
                min: 100.0,
                max: 300.0
            }
        );
        assert_eq!(s.headline.latency_us.expect("latency").p99, 60.0);
        assert_eq!(
            s.spread.latency_us.expect("latency spread").p99,
            Range {
                min: 30.0,
                max: 90.0
            }
        );
        assert_eq!(s.headline.latency_us.expect("latency").count, 300);
        assert_eq!(
            s.headline.lost, 3,
            "loss is summed, never hidden by a median"
        );
        assert_eq!(s.headline.expected, 3003);
        assert_eq!(s.headline.syscalls_per_msg, Some(1.5));
        assert_eq!(s.headline.server_peak_rss_bytes, Some(1_000_001));
    }

    #[test]
    fn summary_metric_is_null_with_reason_when_any_repetition_lacks_it() {
        let reps = vec![rep(0, 1.0, 1.0, Some(1.0)), rep(1, 1.0, 1.0, None)];
        let s = summarize(&reps).expect("summary");
        assert_eq!(s.headline.syscalls_per_msg, None);
        let reason = s.headline.syscalls_per_msg_null_reason.expect("reason");
        assert!(
            reason.contains("rep 1") && reason.contains("EACCES"),
            "{reason}"
        );
        assert_eq!(s.spread.syscalls_per_msg, None);
    }

    #[test]
    fn latency_of_a_repetition_without_deliveries_is_null_never_zero() {
        let empty = Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3).expect("bounds");
        assert_eq!(percentiles_us_from_ns(&empty), None);
        let mut nothing = rep(1, 0.0, 0.0, Some(1.0));
        nothing.headline.latency_us = None;
        nothing.headline.latency_us_null_reason = Some("no messages were delivered".into());
        let reps = vec![
            rep(0, 10.0, 5.0, Some(1.0)),
            nothing,
            rep(2, 10.0, 5.0, Some(1.0)),
        ];
        let s = summarize(&reps).expect("summary");
        assert_eq!(
            s.headline.latency_us, None,
            "a median over a 0 would hide the outage"
        );
        assert_eq!(s.spread.latency_us, None);
        let reason = s.headline.latency_us_null_reason.expect("reason");
        assert!(reason.starts_with("rep 1: no messages"), "{reason}");
        // The other percentile sets are still summarized.
        assert!(s.headline.service_latency_us.is_some());
    }

    #[test]
    fn summary_of_nothing_is_an_error() {
        assert!(summarize(&[]).is_err());
    }

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
                },
                valid: false,
                invalid_reasons: vec!["rep 1: x".into()],
                repetitions: reps,
                summary,
                server_stats: Some(serde_json::json!({"enters": 5})),
                server_stats_null_reason: None,
            }],
            skipped: vec![Skipped {
                scenario: None,
                runtime: "nats-server".into(),
                reason: "not installed".into(),
            }],
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
