//! Verdicts on interleaved rounds (`fanbench compare-revs`): every (workload, runtime, metric)
//! judged on the paired per-round differences, with the false discovery rate controlled over
//! the whole table and the reference row as a negative control.
//!
//! # Method
//!
//! Round `i` measured the base and the new server back to back on the same placement, so
//! drift of the machine falls on both alike. The sample of a (workload, runtime, metric) is
//! `d_i = ln(new_i / base_i)` over the rounds where both repetitions are valid; its change is
//! the geometric mean ratio `exp(mean d) - 1`.
//!
//! - **Moderated paired t-test.** With the few rounds a compare can afford (7 by default) a
//!   plain paired t-test has few degrees of freedom, and a correction for hundreds of
//!   comparisons asks for a large t. The variance of `d` is therefore shrunk towards the typical
//!   variance of the same metric over every row and workload of the comparison, weighted by
//!   prior degrees of freedom estimated from the spread of those variances (the empirical
//!   Bayes estimator of limma: Smyth 2004, "Linear models and empirical Bayes methods for
//!   assessing differential expression", section 6.2). A row noisier than its peers keeps
//!   most of its own variance; the test has `rounds - 1 + d0` degrees of freedom.
//! - **Counted metrics** (syscalls/msg, SQEs/msg) are counts, but per message they move with
//!   batching and load (how many messages arrive together): their honest noise is the same
//!   paired spread over rounds, which a count's Poisson variance alone would understate many
//!   times over. The variance of each round's log ratio is only floored at the Poisson
//!   variance of its counts (`1/count_base + 1/count_new`), so a ratio of a handful of events
//!   is never taken for an exact one.
//! - **False discovery rate.** Benjamini-Hochberg over every tested row of the table
//!   (q-values); a change counts when `q < alpha` and `|change|` exceeds the threshold.
//! - **Negative control.** The reference row (nats-server) runs the same binary on both
//!   sides, so whatever it shows is the machine. At each (workload, metric) the threshold is
//!   widened by the control's own |change|, and when the control itself passes the test the
//!   other rows get no verdict there ("the machine moved").

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};
use statrs::function::gamma::digamma;

use fanbench_plots::model::{Entry, Headline, ResultsDoc};

use super::metrics::{find, metrics, order, Better, Criteria, Metric, Unit, Verdict};
use crate::results::measured::Measured;

/// One line of a paired comparison.
#[derive(Debug, Clone)]
pub struct PairedRow {
    pub scenario: String,
    pub runtime: String,
    pub metric: &'static str,
    pub unit: Unit,
    /// Rounds the test used (valid on both sides).
    pub rounds: usize,
    /// Median over the rounds used.
    pub base: Option<f64>,
    pub new: Option<f64>,
    /// Geometric mean of new/base over the rounds, minus 1.
    pub change: Option<f64>,
    /// Confidence interval of `change` at 1 - alpha (not adjusted for multiplicity).
    pub interval: Option<(f64, f64)>,
    pub p: Option<f64>,
    /// Benjamini-Hochberg adjusted p-value over the whole table.
    pub q: Option<f64>,
    pub verdict: Verdict,
    /// Why the verdict is what it is.
    pub note: String,
    /// This is the negative control's row.
    pub control: bool,
    /// No verdict yet: beyond the threshold and p < alpha, but not after the correction for
    /// the number of tests (more rounds would decide it).
    pub undecided: bool,
}

/// The whole paired comparison.
#[derive(Debug, Clone, Default)]
pub struct PairedComparison {
    pub rows: Vec<PairedRow>,
    pub warnings: Vec<String>,
    /// (workload, metric, change) where the negative control itself moved.
    pub control_moved: Vec<(String, &'static str, f64)>,
    /// Rows with a p-value (the m of the false discovery rate).
    pub tested: usize,
}

impl PairedComparison {
    pub fn count(&self, pred: impl Fn(&Verdict) -> bool) -> usize {
        self.rows.iter().filter(|r| pred(&r.verdict)).count()
    }

    /// The undecided rows, most significant first.
    pub fn undecided(&self) -> Vec<&PairedRow> {
        let mut rows: Vec<&PairedRow> = self.rows.iter().filter(|r| r.undecided).collect();
        rows.sort_by(|a, b| a.p.unwrap_or(1.0).total_cmp(&b.p.unwrap_or(1.0)));
        rows
    }

    /// Options that measure the `limit` most significant undecided rows again with more
    /// rounds (twice as many as they had, at least 8), and the control.
    pub fn rerun_hint(&self, control: Option<&str>, limit: usize) -> Option<String> {
        let undecided: Vec<&PairedRow> = self.undecided().into_iter().take(limit).collect();
        if undecided.is_empty() {
            return None;
        }
        let mut workloads: Vec<&str> = Vec::new();
        let mut runtimes: Vec<&str> = Vec::new();
        let rounds = undecided
            .iter()
            .map(|r| 2 * r.rounds)
            .max()
            .unwrap_or(0)
            .max(8);
        for row in &undecided {
            if !workloads.contains(&row.scenario.as_str()) {
                workloads.push(&row.scenario);
            }
            if !runtimes.contains(&row.runtime.as_str()) {
                runtimes.push(&row.runtime);
            }
        }
        if let Some(control) = control.filter(|c| !runtimes.contains(c)) {
            runtimes.push(control);
        }
        Some(format!(
            "--rounds {rounds} --workloads {} --runtimes {}",
            workloads.join(","),
            runtimes.join(",")
        ))
    }
}

/// The rounds of one (workload, runtime, metric) that both sides measured validly.
#[derive(Debug, Default)]
struct Rounds {
    base: Vec<f64>,
    new: Vec<f64>,
    /// ln(new / base) per round.
    log_ratios: Vec<f64>,
    /// Poisson variance of each log ratio (counted metrics), else 0.
    count_variance: Vec<f64>,
    invalid: usize,
    zero_on_one_side: usize,
    null_reason: Option<String>,
}

/// Events behind a per-message value in one repetition: value x messages in the window.
fn events(h: &Headline, window_s: Option<f64>, per_msg: f64) -> Option<f64> {
    let window_s = window_s?;
    let count = per_msg * h.throughput_msgs_per_s * window_s;
    (count > 0.0).then_some(count)
}

fn rounds_of(metric: &Metric, base: &Entry, new: &Entry) -> Rounds {
    let mut rounds = Rounds::default();
    for b in &base.repetitions {
        let Some(n) = new.repetitions.iter().find(|n| n.index == b.index) else {
            continue;
        };
        if !b.valid || !n.valid {
            rounds.invalid += 1;
            continue;
        }
        let (bv, nv) = ((metric.value)(&b.headline), (metric.value)(&n.headline));
        let (bx, nx) = match (&bv, &nv) {
            (Measured::Value(bx), Measured::Value(nx)) => (*bx, *nx),
            _ => {
                let why = match (bv.null_reason(), nv.null_reason()) {
                    (Some(why), _) => format!("base: {why}"),
                    (None, why) => format!("new: {}", why.unwrap_or("not measured")),
                };
                rounds.null_reason.get_or_insert(why);
                continue;
            }
        };
        let ratio = if bx == nx {
            0.0
        } else if bx > 0.0 && nx > 0.0 && bx.is_finite() && nx.is_finite() {
            (nx / bx).ln()
        } else {
            rounds.zero_on_one_side += 1;
            continue;
        };
        let count_variance = if metric.counted && bx > 0.0 && nx > 0.0 {
            match (
                events(&b.headline, b.window_s, bx),
                events(&n.headline, n.window_s, nx),
            ) {
                (Some(cb), Some(cn)) => 1.0 / cb + 1.0 / cn,
                _ => 0.0,
            }
        } else {
            0.0
        };
        rounds.base.push(bx);
        rounds.new.push(nx);
        rounds.log_ratios.push(ratio);
        rounds.count_variance.push(count_variance);
    }
    rounds
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

fn sample_variance(xs: &[f64]) -> f64 {
    let m = mean(xs);
    xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() as f64 - 1.0)
}

fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The trigamma function (derivative of digamma), x > 0: recurrence up to x >= 6, then the
/// asymptotic series.
pub fn trigamma(mut x: f64) -> f64 {
    let mut acc = 0.0;
    while x < 6.0 {
        acc += 1.0 / (x * x);
        x += 1.0;
    }
    let x2 = 1.0 / (x * x);
    acc + 1.0 / x
        + x2 / 2.0
        + (1.0 / x) * x2 * (1.0 / 6.0 - x2 * (1.0 / 30.0 - x2 * (1.0 / 42.0 - x2 / 30.0)))
}

/// x with trigamma(x) = y (y > 0), by bisection on the decreasing function in log space.
fn trigamma_inverse(y: f64) -> f64 {
    let (mut lo, mut hi) = (1e-8_f64.ln(), 1e8_f64.ln());
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if trigamma(mid.exp()) > y {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    ((lo + hi) / 2.0).exp()
}

/// The prior of the variances of one metric: `s0²` and its degrees of freedom `d0`
/// (infinite: the variances are as alike as sampling alone makes them; 0: no prior).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prior {
    pub variance: f64,
    pub df: f64,
}

/// Smyth's moment estimator of the prior from sample variances with their degrees of
/// freedom. Fewer than three positive variances give no prior.
pub fn estimate_prior(variances: &[(f64, f64)]) -> Prior {
    let usable: Vec<(f64, f64)> = variances
        .iter()
        .copied()
        .filter(|(s2, df)| *s2 > 0.0 && s2.is_finite() && *df > 0.0)
        .collect();
    if usable.len() < 3 {
        return Prior {
            variance: 0.0,
            df: 0.0,
        };
    }
    let n = usable.len() as f64;
    let e: Vec<f64> = usable
        .iter()
        .map(|(s2, df)| s2.ln() - digamma(df / 2.0) + (df / 2.0).ln())
        .collect();
    let e_mean = mean(&e);
    let spread = e.iter().map(|x| (x - e_mean).powi(2)).sum::<f64>() / (n - 1.0)
        - usable.iter().map(|(_, df)| trigamma(df / 2.0)).sum::<f64>() / n;
    if spread <= 0.0 {
        return Prior {
            variance: e_mean.exp(),
            df: f64::INFINITY,
        };
    }
    let df = 2.0 * trigamma_inverse(spread);
    Prior {
        variance: (e_mean + digamma(df / 2.0) - (df / 2.0).ln()).exp(),
        df,
    }
}

/// The moderated paired test of one row's log ratios: (mean, p, half-width of the interval at
/// 1 - alpha, degrees of freedom). None below two rounds.
fn moderated_test(
    log_ratios: &[f64],
    count_variance: &[f64],
    prior: Prior,
    alpha: f64,
) -> Option<(f64, f64, f64, f64)> {
    let n = log_ratios.len();
    if n < 2 {
        return None;
    }
    let d = mean(log_ratios);
    let own_df = (n - 1) as f64;
    let own = sample_variance(log_ratios);
    let shrunk = if prior.df.is_infinite() {
        prior.variance
    } else {
        (prior.df * prior.variance + own_df * own) / (prior.df + own_df)
    };
    let variance = shrunk.max(mean(count_variance));
    let df = own_df + prior.df;
    if variance <= 0.0 {
        let p = if d == 0.0 { 1.0 } else { 0.0 };
        return Some((d, p, 0.0, df));
    }
    let se = (variance / n as f64).sqrt();
    let t = d / se;
    let (p, crit) = if df.is_finite() {
        let dist = StudentsT::new(0.0, 1.0, df).ok()?;
        (
            2.0 * (1.0 - dist.cdf(t.abs())),
            dist.inverse_cdf(1.0 - alpha / 2.0),
        )
    } else {
        let dist = Normal::new(0.0, 1.0).ok()?;
        (
            2.0 * (1.0 - dist.cdf(t.abs())),
            dist.inverse_cdf(1.0 - alpha / 2.0),
        )
    };
    Some((d, p.clamp(0.0, 1.0), crit * se, df))
}

/// Benjamini-Hochberg adjusted p-values (q-values), in the input's order.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut idx: Vec<usize> = (0..m).collect();
    idx.sort_by(|a, b| p[*b].total_cmp(&p[*a]));
    let mut q = vec![1.0; m];
    let mut running = 1.0_f64;
    for (k, &i) in idx.iter().enumerate() {
        let rank = (m - k) as f64;
        running = running.min(p[i] * m as f64 / rank);
        q[i] = running.min(1.0);
    }
    q
}

fn format_p(p: f64) -> String {
    if p < 0.0001 {
        "<0.0001".into()
    } else {
        format!("{p:.4}")
    }
}

/// Runs the moderated test on one row's rounds, or says why it cannot.
fn test_row(row: &mut PairedRow, rounds: &Rounds, prior: Prior, alpha: f64) {
    if rounds.log_ratios.is_empty() {
        let why = if let Some(why) = &rounds.null_reason {
            why.clone()
        } else if rounds.invalid > 0 {
            format!("{} round(s) invalid on a side", rounds.invalid)
        } else if rounds.zero_on_one_side > 0 {
            "zero on one side only".to_string()
        } else {
            "no round on both sides".to_string()
        };
        row.note = why.clone();
        row.verdict = if rounds.invalid > 0 && rounds.null_reason.is_none() {
            Verdict::Excluded(why)
        } else {
            Verdict::NotMeasured(why)
        };
        return;
    }
    let n = rounds.log_ratios.len();
    row.change = Some(mean(&rounds.log_ratios).exp() - 1.0);
    match moderated_test(&rounds.log_ratios, &rounds.count_variance, prior, alpha) {
        Some((d, p, half, df)) => {
            row.p = Some(p);
            row.interval = Some(((d - half).exp() - 1.0, (d + half).exp() - 1.0));
            row.note = if df.is_finite() {
                format!("{n} rounds, df {df:.1}")
            } else {
                format!("{n} rounds, pooled variance")
            };
        }
        None => row.note = format!("not testable: {n} round(s) on both sides (needs 2)"),
    }
    if rounds.invalid > 0 {
        row.note
            .push_str(&format!("; {} invalid round(s) left out", rounds.invalid));
    }
}

/// The verdict of one tested row, given its workload's negative control (if measured).
fn judge_row(
    mut row: PairedRow,
    control: Option<&PairedRow>,
    better: Better,
    criteria: Criteria,
) -> PairedRow {
    let (Some(_), Some(change)) = (row.p, row.change) else {
        return row;
    };
    let significant = |r: &PairedRow, threshold: f64| match (r.q, r.change) {
        (Some(q), Some(c)) => q < criteria.alpha && c.abs() * 100.0 > threshold,
        _ => false,
    };
    let control_change = control.and_then(|c| c.change);
    let control_moved = control.is_some_and(|c| significant(c, criteria.threshold_pct));
    let q_text = format!(", q={}", format_p(row.q.unwrap_or(1.0)));
    if row.control {
        if control_moved {
            row.verdict = Verdict::Refused(
                "negative control moved: the same server on both sides, so this is the machine"
                    .into(),
            );
        }
        row.note = format!("{}{q_text}; negative control", row.note);
        return row;
    }
    let widening = control_change.map_or(0.0, f64::abs);
    let threshold = criteria.threshold_pct + 100.0 * widening;
    let widened = if widening > 0.0 {
        format!(
            "; threshold {threshold:.1}% (control moved {:.1}%)",
            100.0 * widening
        )
    } else {
        String::new()
    };
    row.note = format!("{}{q_text}{widened}", row.note);
    if control_moved {
        row.verdict = Verdict::Refused(format!(
            "the negative control moved {:+.1}% here",
            100.0 * control_change.unwrap_or(0.0)
        ));
    } else if significant(&row, threshold) {
        let worse = match better {
            Better::Higher => change < 0.0,
            Better::Lower => change > 0.0,
        };
        row.verdict = if worse {
            Verdict::Regressed
        } else {
            Verdict::Improved
        };
    } else {
        row.undecided =
            row.p.is_some_and(|p| p < criteria.alpha) && change.abs() * 100.0 > threshold;
    }
    row
}

/// Compares two interleaved runs, pairing repetitions by index (round). `control` names the
/// negative-control row (the same server on both sides), if there is one.
pub fn compare_paired(
    base: &ResultsDoc,
    new: &ResultsDoc,
    control: Option<&str>,
    criteria: Criteria,
) -> PairedComparison {
    let metrics = metrics();
    let mut out = PairedComparison::default();
    // Pass 1: rounds and raw statistics per row.
    let mut staged: Vec<(PairedRow, Rounds)> = Vec::new();
    let mut one_sided = Vec::new();
    for (scenario, runtime) in order(base, new) {
        let (b, n) = (find(base, scenario, runtime), find(new, scenario, runtime));
        let (Some(b), Some(n)) = (b, n) else {
            let side = if b.is_some() { "base" } else { "new" };
            one_sided.push(PairedRow {
                scenario: scenario.to_string(),
                runtime: runtime.to_string(),
                metric: "-",
                unit: Unit::PerMsg,
                rounds: 0,
                base: None,
                new: None,
                change: None,
                interval: None,
                p: None,
                q: None,
                verdict: Verdict::OnlyIn(side),
                note: format!("measured on the {side} side only"),
                control: Some(runtime) == control,
                undecided: false,
            });
            continue;
        };
        for metric in &metrics {
            let rounds = rounds_of(metric, b, n);
            let row = PairedRow {
                scenario: scenario.to_string(),
                runtime: runtime.to_string(),
                metric: metric.name,
                unit: metric.unit,
                rounds: rounds.log_ratios.len(),
                base: median(&rounds.base),
                new: median(&rounds.new),
                change: None,
                interval: None,
                p: None,
                q: None,
                verdict: Verdict::NoChange,
                note: String::new(),
                control: Some(runtime) == control,
                undecided: false,
            };
            staged.push((row, rounds));
        }
    }
    // Pass 2: the prior of each metric's variance, over every row of the table.
    let priors: Vec<(&'static str, Prior)> = metrics
        .iter()
        .map(|m| {
            let variances: Vec<(f64, f64)> = staged
                .iter()
                .filter(|(row, r)| row.metric == m.name && r.log_ratios.len() >= 2)
                .map(|(_, r)| {
                    (
                        sample_variance(&r.log_ratios),
                        (r.log_ratios.len() - 1) as f64,
                    )
                })
                .collect();
            (m.name, estimate_prior(&variances))
        })
        .collect();
    let prior_of = |name: &str| {
        priors
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| *p)
            .unwrap_or(Prior {
                variance: 0.0,
                df: 0.0,
            })
    };
    // Pass 3: the tests.
    for (row, rounds) in &mut staged {
        test_row(row, rounds, prior_of(row.metric), criteria.alpha);
    }
    // Pass 4: false discovery rate over the whole table.
    let tested: Vec<usize> = (0..staged.len())
        .filter(|&i| staged[i].0.p.is_some())
        .collect();
    let ps: Vec<f64> = tested.iter().filter_map(|&i| staged[i].0.p).collect();
    for (&i, q) in tested.iter().zip(benjamini_hochberg(&ps)) {
        staged[i].0.q = Some(q);
    }
    out.tested = tested.len();
    // Pass 5: verdicts, each beside its workload's control.
    let mut judged = Vec::with_capacity(staged.len());
    for (row, _) in &staged {
        let control = staged
            .iter()
            .map(|(r, _)| r)
            .find(|r| r.control && r.scenario == row.scenario && r.metric == row.metric);
        let better = metrics
            .iter()
            .find(|m| m.name == row.metric)
            .map_or(Better::Lower, |m| m.better);
        let row = judge_row(row.clone(), control, better, criteria);
        if row.control && matches!(row.verdict, Verdict::Refused(_)) {
            out.control_moved
                .push((row.scenario.clone(), row.metric, row.change.unwrap_or(0.0)));
        }
        judged.push(row);
    }
    out.rows.extend(judged);
    out.rows.extend(one_sided);
    if control.is_none_or(|c| !out.rows.iter().any(|r| r.runtime == c)) {
        out.warnings.push(
            "no negative control (nats-server was not measured): machine drift that the \
             interleaving did not cancel cannot be told from a change"
                .into(),
        );
    }
    let invalid_rounds = staged
        .iter()
        .filter(|(row, r)| row.metric == "throughput" && r.invalid > 0)
        .count();
    if invalid_rounds > 0 {
        out.warnings.push(format!(
            "{invalid_rounds} (workload, runtime) pair(s) had invalid rounds, left out of their tests"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn trigamma_matches_known_values() {
        // trigamma(1) = pi^2 / 6, trigamma(0.5) = pi^2 / 2.
        let pi2 = std::f64::consts::PI.powi(2);
        assert!(close(trigamma(1.0), pi2 / 6.0, 1e-9), "{}", trigamma(1.0));
        assert!(close(trigamma(0.5), pi2 / 2.0, 1e-9), "{}", trigamma(0.5));
        assert!(close(trigamma_inverse(trigamma(3.7)), 3.7, 1e-6));
    }

    #[test]
    fn benjamini_hochberg_matches_the_step_up_procedure() {
        // m = 4: sorted p 0.01, 0.02, 0.03, 0.5 -> 0.04, 0.04, 0.04, 0.5.
        let q = benjamini_hochberg(&[0.03, 0.5, 0.01, 0.02]);
        for (got, want) in q.iter().zip([0.04, 0.5, 0.04, 0.04]) {
            assert!(close(*got, want, 1e-12), "{q:?}");
        }
    }

    #[test]
    fn prior_of_alike_variances_is_strong_and_of_scattered_ones_weak() {
        let alike: Vec<(f64, f64)> = (0..40)
            .map(|i| (0.01 * (1.0 + 0.01 * f64::from(i % 3)), 2.0))
            .collect();
        let strong = estimate_prior(&alike);
        assert!(strong.df > 20.0, "{strong:?}");
        // Alike sample variances are alike beyond chance: the prior is the pooled variance,
        // corrected for the bias of a log of chi-square variates with 2 df.
        assert!(
            strong.variance > 0.0101 && strong.variance < 0.02,
            "{strong:?}"
        );
        let scattered: Vec<(f64, f64)> = (0..40).map(|i| (10f64.powi(i % 5 - 4), 2.0)).collect();
        let weak = estimate_prior(&scattered);
        assert!(weak.df < 2.0, "{weak:?}");
        assert_eq!(estimate_prior(&[(0.1, 2.0)]).df, 0.0);
    }

    /// A deterministic normal generator (xorshift64* and Box-Muller), so the tests are
    /// repeatable.
    struct Noise(u64);

    impl Noise {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
            ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }

        fn normal(&mut self) -> f64 {
            let (u, v) = (self.uniform(), self.uniform());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
    }

    /// Round-to-round spread (coefficient of variation) of each metric, as a noisy shared
    /// machine shows it.
    fn spread(metric: &str) -> f64 {
        match metric {
            "throughput" => 0.005,
            "latency p50" => 0.05,
            "latency p99" | "service latency p99" => 0.10,
            "latency p99.9" => 0.20,
            "latency max" => 0.30,
            "syscalls/msg" => 0.02,
            "SQEs/msg" => 0.01,
            "server CPU us/msg" => 0.03,
            _ => 0.01,
        }
    }

    fn scale_metric(h: &mut Headline, metric: &str, f: f64) {
        let scale = |v: &mut Option<f64>| {
            if let Some(x) = v {
                *x *= f;
            }
        };
        match metric {
            "throughput" => h.throughput_msgs_per_s *= f,
            "latency p50" => h.latency_us.iter_mut().for_each(|p| p.p50 *= f),
            "latency p99" => h.latency_us.iter_mut().for_each(|p| p.p99 *= f),
            "latency p99.9" => h.latency_us.iter_mut().for_each(|p| p.p999 *= f),
            "latency max" => h.latency_us.iter_mut().for_each(|p| p.max *= f),
            "service latency p99" => h.service_latency_us.iter_mut().for_each(|p| p.p99 *= f),
            "syscalls/msg" => scale(&mut h.syscalls_per_msg),
            "SQEs/msg" => scale(&mut h.sqes_per_msg),
            "server CPU us/msg" => scale(&mut h.server_cpu_us_per_msg),
            "server peak RSS" => scale(&mut h.server_peak_rss_bytes),
            other => panic!("unknown metric {other}"),
        }
    }

    /// Base and new runs of `rounds` rounds from the fixture's values: every metric of every
    /// repetition gets its own noise, each round a machine drift shared by both sides of the
    /// round (what interleaving cancels), and `effect` multiplies the new side's values of
    /// the (workload, runtime, metric) it names.
    fn interleaved_pair(
        seed: u64,
        rounds: u32,
        effect: &dyn Fn(&str, &str, &str) -> f64,
    ) -> (ResultsDoc, ResultsDoc) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../plots/tests/fixtures/results.json");
        let template = ResultsDoc::load(&path).expect("fixture");
        let mut noise = Noise(seed);
        let (mut base, mut new) = (template.clone(), template.clone());
        let names: Vec<&str> = metrics().iter().map(|m| m.name).collect();
        for i in 0..template.results.len() {
            let first = template.results[i].repetitions[0].clone();
            let (mut b_reps, mut n_reps) = (Vec::new(), Vec::new());
            for round in 0..rounds {
                let (mut b, mut n) = (first.clone(), first.clone());
                b.index = round;
                n.index = round;
                b.valid = true;
                n.valid = true;
                for name in &names {
                    let drift = (0.2 * noise.normal()).exp();
                    let cv = spread(name);
                    scale_metric(&mut b.headline, name, drift * (cv * noise.normal()).exp());
                    let entry = &template.results[i];
                    let f = effect(&entry.scenario, &entry.runtime, name);
                    scale_metric(
                        &mut n.headline,
                        name,
                        f * drift * (cv * noise.normal()).exp(),
                    );
                }
                b_reps.push(b);
                n_reps.push(n);
            }
            for (doc, reps) in [(&mut base, b_reps), (&mut new, n_reps)] {
                doc.results[i].repetitions = reps;
                doc.results[i].valid = true;
            }
        }
        (base, new)
    }

    /// A seed with the rounds of an older default and with today's.
    fn both_round_counts(seed: u64) -> [(u64, u32); 2] {
        [(seed, 3), (seed, crate::compare_revs::DEFAULT_ROUNDS)]
    }

    fn criteria() -> Criteria {
        Criteria {
            threshold_pct: 5.0,
            alpha: 0.05,
        }
    }

    fn flagged(c: &PairedComparison) -> Vec<(String, String, &'static str, Verdict)> {
        c.rows
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Improved | Verdict::Regressed))
            .map(|r| {
                (
                    r.scenario.clone(),
                    r.runtime.clone(),
                    r.metric,
                    r.verdict.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn a_row_made_20_percent_worse_in_cpu_and_syscalls_is_exactly_what_is_flagged() {
        let worse = |s: &str, r: &str, m: &str| {
            let hit = s == "fanout-100"
                && r == "uring"
                && matches!(m, "server CPU us/msg" | "syscalls/msg");
            if hit {
                1.2
            } else {
                1.0
            }
        };
        for (seed, rounds) in [1, 2, 3, 4, 5].into_iter().flat_map(both_round_counts) {
            let (base, new) = interleaved_pair(seed, rounds, &worse);
            let c = compare_paired(&base, &new, Some("nats-server"), criteria());
            let mut got = flagged(&c);
            got.sort_by(|a, b| a.2.cmp(b.2));
            let want = vec![
                (
                    "fanout-100".to_string(),
                    "uring".to_string(),
                    "server CPU us/msg",
                    Verdict::Regressed,
                ),
                (
                    "fanout-100".to_string(),
                    "uring".to_string(),
                    "syscalls/msg",
                    Verdict::Regressed,
                ),
            ];
            assert_eq!(got, want, "seed {seed}, {rounds} rounds");
            assert!(
                c.control_moved.is_empty(),
                "seed {seed}, {rounds} rounds: {:?}",
                c.control_moved
            );
        }
    }

    #[test]
    fn an_a_a_comparison_with_machine_drift_flags_nothing() {
        for (seed, rounds) in (10..20).flat_map(both_round_counts) {
            let (base, new) = interleaved_pair(seed, rounds, &|_, _, _| 1.0);
            let c = compare_paired(&base, &new, Some("nats-server"), criteria());
            assert!(
                flagged(&c).is_empty(),
                "seed {seed}, {rounds} rounds: {:?}",
                flagged(&c)
            );
            assert!(c.tested > 100, "{}", c.tested);
        }
    }

    #[test]
    fn when_the_negative_control_moves_its_workload_gets_no_verdict() {
        // The machine slowed every server's CPU/msg 30% at slow-subscriber on the new side
        // only: the control shows it, so no row there may claim a regression.
        let machine = |s: &str, _: &str, m: &str| {
            if s == "slow-subscriber" && m == "server CPU us/msg" {
                1.3
            } else {
                1.0
            }
        };
        let (base, new) = interleaved_pair(7, 3, &machine);
        let c = compare_paired(&base, &new, Some("nats-server"), criteria());
        assert_eq!(c.control_moved.len(), 1, "{:?}", c.control_moved);
        assert!(flagged(&c).is_empty(), "{:?}", flagged(&c));
        let refused = c
            .rows
            .iter()
            .filter(|r| r.scenario == "slow-subscriber" && r.metric == "server CPU us/msg")
            .all(|r| matches!(r.verdict, Verdict::Refused(_)));
        assert!(refused);
    }

    #[test]
    fn undecided_rows_are_listed_with_the_options_that_measure_them_again() {
        // A 10% change in a noisy metric over 3 rounds: beyond the threshold, rarely
        // significant after the correction.
        let row = |s: &str, r: &str, p: f64, undecided: bool| PairedRow {
            scenario: s.into(),
            runtime: r.into(),
            metric: "latency p99",
            unit: Unit::Micros,
            rounds: 3,
            base: Some(100.0),
            new: Some(110.0),
            change: Some(0.1),
            interval: None,
            p: Some(p),
            q: Some(0.5),
            verdict: Verdict::NoChange,
            note: String::new(),
            control: false,
            undecided,
        };
        let c = PairedComparison {
            rows: vec![
                row("fanout-100", "tokio", 0.02, true),
                row("seed-5x5", "uring", 0.001, true),
                row("seed-5x5", "tokio", 0.3, false),
            ],
            ..Default::default()
        };
        let undecided = c.undecided();
        assert_eq!(undecided.len(), 2);
        assert_eq!(undecided[0].runtime, "uring", "most significant first");
        assert_eq!(
            c.rerun_hint(Some("nats-server"), 10).as_deref(),
            Some("--rounds 8 --workloads seed-5x5,fanout-100 --runtimes uring,tokio,nats-server")
        );
        assert_eq!(
            c.rerun_hint(None, 1).as_deref(),
            Some("--rounds 8 --workloads seed-5x5 --runtimes uring")
        );
        assert_eq!(
            PairedComparison::default().rerun_hint(Some("nats-server"), 10),
            None
        );
        let mut seven = c.clone();
        seven.rows[1].rounds = 7;
        assert_eq!(
            seven.rerun_hint(None, 1).as_deref(),
            Some("--rounds 14 --workloads seed-5x5 --runtimes uring")
        );
    }

    #[test]
    fn one_round_cannot_be_tested_and_says_so() {
        let (base, new) = interleaved_pair(3, 1, &|_, _, _| 2.0);
        let c = compare_paired(&base, &new, Some("nats-server"), criteria());
        assert!(flagged(&c).is_empty());
        assert!(c.rows.iter().any(|r| r.note.contains("not testable")));
    }
}
