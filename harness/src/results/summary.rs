//! The summary of a (scenario, runtime) over its repetitions (results/README.md): the median
//! of every headline value, min and max as its spread, totals for counts.
//!
//! A metric is summarized only when every repetition measured it: a median over the
//! repetitions that did would hide the ones that did not (a 0 would hide an outage), so it is
//! null with the first missing repetition's reason instead.

use anyhow::bail;

use super::schema::{
    Headline, Measured, PercentileRanges, Percentiles, Range, Repetition, Spread, Summary,
};

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

/// Median and range of a non-empty set of values.
fn median_and_range(values: &[f64]) -> (f64, Range) {
    // Callers pass one value per repetition, and there is at least one repetition.
    let med = median(values).unwrap_or(f64::NAN);
    let rng = range(values).unwrap_or(Range {
        min: f64::NAN,
        max: f64::NAN,
    });
    (med, rng)
}

/// Every repetition's value of one metric, or the first missing one's reason.
fn every_repetition<T: Copy>(
    reps: &[Repetition],
    pick: fn(&Headline) -> &Measured<T>,
) -> Result<Vec<T>, String> {
    reps.iter()
        .map(|rep| match pick(&rep.headline) {
            Measured::Value(v) => Ok(*v),
            Measured::Null(why) => Err(format!("rep {}: {why}", rep.index)),
        })
        .collect()
}

/// Median and range of one scalar metric over repetitions.
fn scalar(
    reps: &[Repetition],
    pick: fn(&Headline) -> &Measured<f64>,
) -> (Measured<f64>, Option<Range>) {
    match every_repetition(reps, pick) {
        Ok(values) => {
            let (med, rng) = median_and_range(&values);
            (Measured::Value(med), Some(rng))
        }
        Err(why) => (Measured::Null(why), None),
    }
}

/// Median and range of every percentile of one percentile set over repetitions; counts are
/// summed.
fn percentiles(
    reps: &[Repetition],
    pick: fn(&Headline) -> &Measured<Percentiles>,
) -> (Measured<Percentiles>, Option<PercentileRanges>) {
    let sets = match every_repetition(reps, pick) {
        Ok(sets) => sets,
        Err(why) => return (Measured::Null(why), None),
    };
    let stat =
        |f: fn(&Percentiles) -> f64| median_and_range(&sets.iter().map(f).collect::<Vec<f64>>());
    let (p50, r50) = stat(|p| p.p50);
    let (p90, r90) = stat(|p| p.p90);
    let (p99, r99) = stat(|p| p.p99);
    let (p999, r999) = stat(|p| p.p999);
    let (max, rmax) = stat(|p| p.max);
    let (mean, rmean) = stat(|p| p.mean);
    let count = sets.iter().map(|p| p.count).sum();
    (
        Measured::Value(Percentiles {
            p50,
            p90,
            p99,
            p999,
            max,
            mean,
            count,
        }),
        Some(PercentileRanges {
            p50: r50,
            p90: r90,
            p99: r99,
            p999: r999,
            max: rmax,
            mean: rmean,
        }),
    )
}

/// Summary over repetitions (see results/README.md): medians, totals for counts, min/max.
pub fn summarize(reps: &[Repetition]) -> anyhow::Result<Summary> {
    if reps.is_empty() {
        bail!("no repetitions to summarize");
    }
    let throughput: Vec<f64> = reps
        .iter()
        .map(|r| r.headline.throughput_msgs_per_s)
        .collect();
    let (throughput, throughput_range) = median_and_range(&throughput);
    let (latency, latency_ranges) = percentiles(reps, |h| &h.latency_us);
    let (service, service_ranges) = percentiles(reps, |h| &h.service_latency_us);
    let (pacing, pacing_ranges) = percentiles(reps, |h| &h.pacing_lag_us);
    let (syscalls, syscalls_range) = scalar(reps, |h| &h.syscalls_per_msg);
    let (sqes, sqes_range) = scalar(reps, |h| &h.sqes_per_msg);
    let (cpu, cpu_range) = scalar(reps, |h| &h.server_cpu_us_per_msg);
    let (rss, rss_range) = match every_repetition(reps, |h| &h.server_peak_rss_bytes) {
        Ok(bytes) => {
            let (med, rng) =
                median_and_range(&bytes.iter().map(|&b| b as f64).collect::<Vec<f64>>());
            // The median of byte counts is a whole number or a half; round to bytes.
            (Measured::Value(med.round() as u64), Some(rng))
        }
        Err(why) => (Measured::Null(why), None),
    };
    let total = |f: fn(&Headline) -> u64| reps.iter().map(|r| f(&r.headline)).sum();
    Ok(Summary {
        repetitions: u32::try_from(reps.len()).unwrap_or(u32::MAX),
        valid_repetitions: u32::try_from(reps.iter().filter(|r| r.valid).count())
            .unwrap_or(u32::MAX),
        headline: Headline {
            throughput_msgs_per_s: throughput,
            latency_us: latency,
            service_latency_us: service,
            pacing_lag_us: pacing,
            delivered: total(|h| h.delivered),
            expected: total(|h| h.expected),
            lost: total(|h| h.lost),
            syscalls_per_msg: syscalls,
            sqes_per_msg: sqes,
            server_cpu_us_per_msg: cpu,
            server_peak_rss_bytes: rss,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixture::rep;
    use crate::results::write::percentiles_us_from_ns;
    use hdrhistogram::Histogram;

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
        assert_eq!(s.headline.latency_us.value().expect("latency").p99, 60.0);
        assert_eq!(
            s.spread.latency_us.expect("latency spread").p99,
            Range {
                min: 30.0,
                max: 90.0
            }
        );
        assert_eq!(s.headline.latency_us.value().expect("latency").count, 300);
        assert_eq!(
            s.headline.lost, 3,
            "loss is summed, never hidden by a median"
        );
        assert_eq!(s.headline.expected, 3003);
        assert_eq!(s.headline.syscalls_per_msg, Measured::Value(1.5));
        assert_eq!(s.headline.server_peak_rss_bytes, Measured::Value(1_000_001));
    }

    #[test]
    fn summary_metric_is_null_with_reason_when_any_repetition_lacks_it() {
        let reps = vec![rep(0, 1.0, 1.0, Some(1.0)), rep(1, 1.0, 1.0, None)];
        let s = summarize(&reps).expect("summary");
        assert_eq!(s.headline.syscalls_per_msg.value(), None);
        let reason = s.headline.syscalls_per_msg.null_reason().expect("reason");
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
        nothing.headline.latency_us = Measured::null("no messages were delivered");
        let reps = vec![
            rep(0, 10.0, 5.0, Some(1.0)),
            nothing,
            rep(2, 10.0, 5.0, Some(1.0)),
        ];
        let s = summarize(&reps).expect("summary");
        assert_eq!(
            s.headline.latency_us.value(),
            None,
            "a median over a 0 would hide the outage"
        );
        assert_eq!(s.spread.latency_us, None);
        let reason = s.headline.latency_us.null_reason().expect("reason");
        assert!(reason.starts_with("rep 1: no messages"), "{reason}");
        // The other percentile sets are still summarized.
        assert!(s.headline.service_latency_us.value().is_some());
    }

    #[test]
    fn summary_of_nothing_is_an_error() {
        assert!(summarize(&[]).is_err());
    }
}
