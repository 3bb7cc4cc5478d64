//! Significance tests for `fanbench compare`.
//!
//! # Which test, and why
//!
//! A change counts only when it is beyond the noise threshold *and* statistically significant.
//! The samples are per-second window values (throughput, window p50 / p99 / max latency)
//! pooled over every repetition where the results have them, else one value per repetition.
//!
//! - **Welch's t-test on log values** is the primary test. Benchmark effects are
//!   multiplicative (a 20 % slower server), latencies are right-skewed, and the log transform
//!   turns both into a shift of roughly symmetric data; Welch's variant does not assume equal
//!   variances (a regressed server is usually noisier too). Unlike a rank test it can reach
//!   significance with the few samples a `--quick` run has (two windows of two seconds):
//!   hyperfine's `welch_ttest.py` makes the same choice for few runs. Values that are zero or
//!   negative (e.g. 0 SQEs per message on epoll) are tested untransformed.
//! - **Mann-Whitney U** (two-sided; exact distribution for small samples without ties, else
//!   the normal approximation with tie and continuity corrections) must agree when both sides
//!   have at least [`RANK_TEST_MIN_N`] samples. It is robust to a single outlier window that
//!   could dominate a t-test; below that size a rank test cannot reach p < 0.05 at all
//!   (3 vs 3 samples: smallest two-sided p = 0.1), so it is not required there.
//!
//! Per-second windows of one run are not independent (a slow second is often followed by
//! another), so these p-values are somewhat optimistic; the threshold guards against
//! flagging small, "significant" drifts.

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// Sample size (per side) from which the rank test must agree.
pub const RANK_TEST_MIN_N: usize = 8;

/// A two-sided test's outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestResult {
    /// t for Welch, U of the first sample for Mann-Whitney.
    pub statistic: f64,
    /// Two-sided p-value.
    pub p: f64,
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample variance (n - 1).
fn variance(xs: &[f64]) -> f64 {
    let m = mean(xs);
    xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() as f64 - 1.0)
}

/// Welch's unequal-variance t-test of `a` against `b` (t > 0 when b's mean is larger), with
/// its Welch-Satterthwaite degrees of freedom. None with fewer than two samples on a side.
pub fn welch_t_test(a: &[f64], b: &[f64]) -> Option<(TestResult, f64)> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (va, vb) = (variance(a) / na, variance(b) / nb);
    let diff = mean(b) - mean(a);
    let se2 = va + vb;
    if se2 == 0.0 {
        // Both samples constant: the difference is certain, or there is none.
        let p = if diff == 0.0 { 1.0 } else { 0.0 };
        let t = if diff == 0.0 {
            0.0
        } else {
            diff.signum() * f64::INFINITY
        };
        return Some((TestResult { statistic: t, p }, na + nb - 2.0));
    }
    let t = diff / se2.sqrt();
    let df = se2 * se2 / (va * va / (na - 1.0) + vb * vb / (nb - 1.0));
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    let p = (2.0 * (1.0 - dist.cdf(t.abs()))).clamp(0.0, 1.0);
    Some((TestResult { statistic: t, p }, df))
}

/// Ranks (1-based, ties get their average rank) of `a` followed by `b`, and the tie groups'
/// sizes.
fn ranks(a: &[f64], b: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let mut all: Vec<(f64, usize)> = a.iter().chain(b).copied().zip(0..).collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut ranks = vec![0.0; all.len()];
    let mut ties = Vec::new();
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for item in &all[i..=j] {
            ranks[item.1] = rank;
        }
        if j > i {
            ties.push(j - i + 1);
        }
        i = j + 1;
    }
    (ranks, ties)
}

/// Number of ways to choose `m` of `n` ranks 1..=n for each rank sum (index = sum).
fn rank_sum_counts(m: usize, n: usize) -> Vec<f64> {
    let max_sum = (n * (n + 1)) / 2;
    // counts[k][s]: subsets of size k with sum s, over the ranks seen so far.
    let mut counts = vec![vec![0.0_f64; max_sum + 1]; m + 1];
    counts[0][0] = 1.0;
    for rank in 1..=n {
        for k in (1..=m.min(rank)).rev() {
            for s in (rank..=max_sum).rev() {
                counts[k][s] += counts[k - 1][s - rank];
            }
        }
    }
    counts.swap_remove(m)
}

/// Largest combined sample size for the exact distribution.
const EXACT_MAX_N: usize = 50;

/// Two-sided Mann-Whitney U test. None when a side is empty.
pub fn mann_whitney_u(a: &[f64], b: &[f64]) -> Option<TestResult> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let (n1, n2) = (a.len(), b.len());
    let (ranks, ties) = ranks(a, b);
    let rank_sum_a: f64 = ranks[..n1].iter().sum();
    let u = rank_sum_a - (n1 * (n1 + 1)) as f64 / 2.0;
    let big_n = n1 + n2;

    if ties.is_empty() && big_n <= EXACT_MAX_N {
        let counts = rank_sum_counts(n1, big_n);
        let total: f64 = counts.iter().sum();
        let offset = n1 * (n1 + 1) / 2;
        let u_index = u.round() as usize;
        let below: f64 = counts[offset..=offset + u_index].iter().sum();
        let above: f64 = counts[offset + u_index..].iter().sum();
        let p = (2.0 * below.min(above) / total).min(1.0);
        return Some(TestResult { statistic: u, p });
    }

    let (f1, f2, fnn) = (n1 as f64, n2 as f64, big_n as f64);
    let mu = f1 * f2 / 2.0;
    let tie_term: f64 = ties.iter().map(|&t| (t * t * t - t) as f64).sum::<f64>();
    let sigma2 = f1 * f2 / 12.0 * ((fnn + 1.0) - tie_term / (fnn * (fnn - 1.0)));
    if sigma2 <= 0.0 {
        return Some(TestResult {
            statistic: u,
            p: 1.0,
        });
    }
    let z = ((u - mu).abs() - 0.5).max(0.0) / sigma2.sqrt();
    let normal = Normal::new(0.0, 1.0).ok()?;
    let p = (2.0 * (1.0 - normal.cdf(z))).clamp(0.0, 1.0);
    Some(TestResult { statistic: u, p })
}

/// The decision `compare` makes for one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Significance {
    pub significant: bool,
    /// The deciding p-value (the larger one when both tests ran).
    pub p: Option<f64>,
    /// E.g. "Welch t (log), 4 vs 4 windows" or why no test ran.
    pub method: String,
}

/// Tests whether `base` and `new` differ at level `alpha` (see the module docs).
pub fn significance(base: &[f64], new: &[f64], alpha: f64, unit: &str) -> Significance {
    let sizes = format!("{} vs {} {unit}", base.len(), new.len());
    let positive = base.iter().chain(new).all(|v| *v > 0.0 && v.is_finite());
    let (a, b): (Vec<f64>, Vec<f64>) = if positive {
        (
            base.iter().map(|v| v.ln()).collect(),
            new.iter().map(|v| v.ln()).collect(),
        )
    } else {
        (base.to_vec(), new.to_vec())
    };
    let Some((welch, _df)) = welch_t_test(&a, &b) else {
        return Significance {
            significant: false,
            p: None,
            method: format!("not testable: {sizes} (needs 2 per side)"),
        };
    };
    let transform = if positive { " (log)" } else { "" };
    if base.len() >= RANK_TEST_MIN_N && new.len() >= RANK_TEST_MIN_N {
        if let Some(rank) = mann_whitney_u(base, new) {
            let p = welch.p.max(rank.p);
            return Significance {
                significant: p < alpha,
                p: Some(p),
                method: format!("Welch t{transform} + Mann-Whitney U, {sizes}"),
            };
        }
    }
    Significance {
        significant: welch.p < alpha,
        p: Some(welch.p),
        method: format!("Welch t{transform}, {sizes}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn welch_matches_hand_computed_statistic_and_t_table() {
        // Means 3 and 8, variances 2.5 each: se^2 = 0.5 + 0.5, t = 5, df = 8.
        let (r, df) = welch_t_test(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0])
            .expect("testable");
        assert!(close(r.statistic, 5.0, 1e-12), "t = {}", r.statistic);
        assert!(close(df, 8.0, 1e-9), "df = {df}");
        // t table: two-sided p = 0.001 at t = 5.041 (df 8), so p is just above 0.001.
        assert!(r.p > 0.001 && r.p < 0.0012, "p = {}", r.p);
    }

    #[test]
    fn welch_with_unequal_variances_uses_satterthwaite_df() {
        let a = [0.0, 1.0, 2.0]; // mean 1, var 1, var/n = 1/3
        let b = [10.0, 14.0, 12.0, 16.0, 8.0]; // mean 12, var 10, var/n = 2
        let (r, df) = welch_t_test(&a, &b).expect("testable");
        let se2: f64 = 1.0 / 3.0 + 2.0;
        assert!(close(r.statistic, 11.0 / se2.sqrt(), 1e-12));
        let expected_df = se2 * se2 / ((1.0_f64 / 3.0).powi(2) / 2.0 + 4.0 / 4.0);
        assert!(close(df, expected_df, 1e-12), "df {df} vs {expected_df}");
    }

    #[test]
    fn welch_identical_samples_give_p_one_and_constant_different_samples_p_zero() {
        let a = [5.0, 6.0, 7.0];
        assert_eq!(welch_t_test(&a, &a).expect("testable").0.p, 1.0);
        assert_eq!(
            welch_t_test(&[2.0, 2.0], &[3.0, 3.0])
                .expect("testable")
                .0
                .p,
            0.0
        );
        assert_eq!(
            welch_t_test(&[2.0, 2.0], &[2.0, 2.0])
                .expect("testable")
                .0
                .p,
            1.0
        );
        assert!(welch_t_test(&[1.0], &[2.0, 3.0]).is_none());
    }

    #[test]
    fn mann_whitney_exact_p_values_match_the_enumerated_distribution() {
        // Complete separation, 3 vs 3: 1 of C(6,3) = 20 arrangements per tail.
        let r = mann_whitney_u(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).expect("testable");
        assert_eq!(r.statistic, 0.0);
        assert!(close(r.p, 0.1, 1e-12), "p = {}", r.p);
        // 5 vs 5: 2 / C(10,5) = 2 / 252.
        let r = mann_whitney_u(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0])
            .expect("testable");
        assert!(close(r.p, 2.0 / 252.0, 1e-12), "p = {}", r.p);
        // Interleaved 3 vs 3: U = 3, P(U <= 3) = 7/20, two-sided 0.7.
        let r = mann_whitney_u(&[1.0, 3.0, 5.0], &[2.0, 4.0, 6.0]).expect("testable");
        assert_eq!(r.statistic, 3.0);
        assert!(close(r.p, 0.7, 1e-12), "p = {}", r.p);
    }

    #[test]
    fn mann_whitney_with_ties_uses_average_ranks_and_is_symmetric() {
        let a = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0, 5.0, 5.0, 6.0];
        let b = [4.0, 5.0, 5.0, 6.0, 6.0, 7.0, 7.0, 8.0, 8.0, 9.0];
        let ab = mann_whitney_u(&a, &b).expect("testable");
        let ba = mann_whitney_u(&b, &a).expect("testable");
        assert!(close(ab.p, ba.p, 1e-12));
        assert!(
            close(ab.statistic + ba.statistic, 100.0, 1e-9),
            "U1 + U2 = n1 n2"
        );
        assert!(ab.p < 0.01, "clearly shifted samples: p = {}", ab.p);
        let same = mann_whitney_u(&[3.0; 6], &[3.0; 6]).expect("testable");
        assert_eq!(same.p, 1.0);
    }

    #[test]
    fn significance_flags_a_clear_shift_and_not_noise_or_tiny_samples() {
        let base = [50_000.0, 50_100.0, 49_900.0];
        let cut = [35_000.0, 35_100.0, 34_900.0];
        assert!(significance(&base, &cut, 0.05, "windows").significant);
        let noisy = [49_000.0, 51_200.0, 50_300.0];
        assert!(!significance(&base, &noisy, 0.05, "windows").significant);
        let single = significance(&[1.0], &[2.0], 0.05, "repetitions");
        assert!(!single.significant && single.p.is_none());
        assert!(single.method.contains("not testable"));
    }

    #[test]
    fn significance_with_many_samples_needs_the_rank_test_too() {
        // One huge outlier drives the means apart but the ranks barely move.
        let base: Vec<f64> = (0..10).map(|i| 100.0 + f64::from(i)).collect();
        let mut new: Vec<f64> = (0..10).map(|i| 100.5 + f64::from(i)).collect();
        new[9] = 1e9;
        let s = significance(&base, &new, 0.05, "windows");
        assert!(s.method.contains("Mann-Whitney"), "{}", s.method);
        assert!(!s.significant, "p = {:?}", s.p);
    }
}
