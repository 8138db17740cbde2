//! Pure statistics for post-deploy verification: quantiles and medians, Tukey (IQR) outlier
//! removal, the standard normal survival function and the Mann-Whitney U test.
//!
//! The module is self-contained (std only) so that it can be checked against SciPy in
//! isolation: `collector/tests/fixtures/mannwhitney.json`, written by
//! `scripts/gen_mannwhitney_fixtures.py`, holds NumPy's and SciPy's answers for the same inputs,
//! and the unit tests below compare with them.
//!
//! Conventions shared by every function here:
//!
//! - NaN is never a sample. The functions that take raw samples drop it (and the outlier and
//!   median functions drop infinities too, because a quartile of an infinity is meaningless),
//!   so that one broken scrape cannot turn a whole verdict into NaN.
//! - An empty input gives `None` (or an empty vector) rather than a made-up number, so that the
//!   caller can report "too few samples" instead of a pass or a fail.

use std::cmp::Ordering;

/// Returns the `q`-quantile of `sorted` by linear interpolation between order statistics.
///
/// This is NumPy's default ("linear", Hyndman and Fan type 7) method, which is also what
/// `scipy.stats.iqr` uses by default, so the quartiles that decide which samples are outliers
/// are the ones an analyst would get from NumPy. The virtual index is `(n - 1) · q`; the result
/// interpolates between the two neighbouring order statistics exactly as NumPy's `_lerp` does
/// (from the lower one when the weight is below one half, from the upper one otherwise), so the
/// result matches NumPy to the last bit for finite inputs.
///
/// `sorted` must be sorted in ascending order and should hold finite values; this is the
/// caller's duty because sorting here would cost every caller that asks for two quartiles of the
/// same data a second sort. Returns `None` when `sorted` is empty or when `q` is not in
/// `[0, 1]` (NaN included).
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() || !(0.0..=1.0).contains(&q) {
        return None;
    }
    debug_assert!(
        sorted
            .windows(2)
            .all(|w| w[0].partial_cmp(&w[1]) != Some(Ordering::Greater)),
        "quantile needs ascending input"
    );
    let last = sorted.len() - 1;
    let virtual_index = last as f64 * q;
    // `virtual_index` is in [0, last], so the floor is a valid index; the upper neighbour is
    // clipped to the last element as NumPy clips it.
    let lower = (virtual_index.floor() as usize).min(last);
    let upper = (lower + 1).min(last);
    let weight = virtual_index - lower as f64;
    let a = sorted[lower];
    let b = sorted[upper];
    let diff = b - a;
    Some(if weight >= 0.5 {
        b - diff * (1.0 - weight)
    } else {
        a + diff * weight
    })
}

/// Returns the finite values of `values`, sorted ascending.
///
/// `partial_cmp` is a total order on finite numbers and, unlike `total_cmp`, treats `-0.0` and
/// `0.0` as equal, which is what ranking and quantiles need.
fn sorted_finite(values: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
    sorted
}

/// Removes Tukey outliers from `values` and returns the kept values in input order.
///
/// Non-finite values are dropped first. Of the rest, a value `x` is kept when
/// `Q1 - k·IQR <= x <= Q3 + k·IQR`, with the quartiles from [`quantile`] (NumPy's linear
/// method) and `IQR = Q3 - Q1`. Callers use `k = 1.5`, Tukey's inner fences: a latency spike
/// from a single slow request should not decide whether a deployment made things worse, but a
/// shift of the bulk of the distribution should.
///
/// A NaN or negative `k` is treated as 0 (keep only the values between the quartiles), because
/// a NaN fence would silently drop every sample. When the IQR is 0 the fences are the quartiles
/// themselves whatever `k` is, even an infinite one (which would otherwise give `∞ · 0 = NaN`).
/// Input order is kept so that the caller can still pair values with their timestamps.
pub fn remove_outliers(values: &[f64], k: f64) -> Vec<f64> {
    let sorted = sorted_finite(values);
    let (Some(q1), Some(q3)) = (quantile(&sorted, 0.25), quantile(&sorted, 0.75)) else {
        return Vec::new();
    };
    let k = if k.is_nan() { 0.0 } else { k.max(0.0) };
    let iqr = q3 - q1;
    let margin = if iqr == 0.0 { 0.0 } else { k * iqr };
    let (low, high) = (q1 - margin, q3 + margin);
    values
        .iter()
        .copied()
        .filter(|v| v.is_finite() && low <= *v && *v <= high)
        .collect()
}

/// Returns the median of the finite values of `values`, or `None` when there are none.
///
/// For an even count it is the midpoint of the two middle values, as `numpy.median` computes
/// it; the midpoint is taken as `a/2 + b/2` so that two huge values of the same sign cannot
/// overflow to infinity. Non-finite values are dropped for the same reason as in
/// [`remove_outliers`]: one NaN must not make the summary of a whole window NaN.
pub fn median(values: &[f64]) -> Option<f64> {
    let sorted = sorted_finite(values);
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let mid = n / 2;
    Some(if n % 2 == 1 {
        sorted[mid]
    } else {
        sorted[mid - 1] / 2.0 + sorted[mid] / 2.0
    })
}

/// `1 / sqrt(2π)`, the standard normal density at 0.
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Below this `z` the upper tail comes from the power series, at and above it from the
/// continued fraction. At 2 the series loses at most `log10(0.5 / sf(2)) ≈ 1.3` digits to
/// cancellation in `1/2 − …`, and the continued fraction converges in about 110 terms (it needs
/// about 50 at 3 and 400 at 1, so the limit trades the two costs). Measured against mpmath at
/// 40 digits, the worst relative error of [`normal_sf`] for `sf ≥ 1e-300` is about 1e-14
/// (with the limit at 3 it was 2e-13, from the cancellation).
const SERIES_LIMIT: f64 = 2.0;

/// A cap on continued-fraction terms, several times what the slowest case ([`SERIES_LIMIT`])
/// needs, so that the loop is visibly bounded.
const MAX_TERMS: u32 = 600;

/// Returns `exp(-z²/2)` to nearly full relative precision even in the far tail.
///
/// Computing `z * z` rounds it, and at `z = 37` an absolute error of one ulp of `z²` is a
/// relative error of about 3e-13 in the exponential. Splitting `z = h + l` with `h` a multiple
/// of 1/16 makes `h²/2` exact, and `(z - h)(z + h)/2` is small, so only a tiny absolute error
/// is left (the same trick as in W. J. Cody's `CALERF`).
fn gaussian_factor(z: f64) -> f64 {
    let h = (z * 16.0).trunc() / 16.0;
    let rest = (z - h) * (z + h) / 2.0;
    (-(h * h) / 2.0).exp() * (-rest).exp()
}

/// Returns `Q(z) = P(Z > z)` for `z >= 0`.
///
/// Below [`SERIES_LIMIT`] it uses `Q(z) = 1/2 − φ(z) · Σ z^(2n+1) / (2n+1)!!`, a series of
/// positive terms that converges for every `z`. From there on it uses Laplace's continued
/// fraction for the Mills ratio, `Q(z) = φ(z) / (z + 1/(z + 2/(z + 3/(z + …))))`, evaluated by
/// the modified Lentz method; it has no cancellation, so the relative error stays near machine
/// precision until `φ(z)` underflows (beyond `z ≈ 38`, where `Q(z) < 1e-300`).
fn upper_tail(z: f64) -> f64 {
    let density = FRAC_1_SQRT_2PI * gaussian_factor(z);
    if z < SERIES_LIMIT {
        let z2 = z * z;
        let mut term = z;
        let mut sum = z;
        let mut n = 0.0;
        while term > sum * f64::EPSILON * 0.25 {
            n += 1.0;
            term *= z2 / (2.0 * n + 1.0);
            sum += term;
        }
        0.5 - density * sum
    } else {
        const TINY: f64 = 1e-300;
        let mut f = z;
        let mut c = z;
        let mut d = 0.0;
        for j in 1..=MAX_TERMS {
            let a = f64::from(j);
            d = z + a * d;
            if d == 0.0 {
                d = TINY;
            }
            c = z + a / c;
            if c == 0.0 {
                c = TINY;
            }
            d = 1.0 / d;
            let delta = c * d;
            f *= delta;
            if (delta - 1.0).abs() <= f64::EPSILON * 0.5 {
                break;
            }
        }
        density / f
    }
}

/// Returns the standard normal survival function `P(Z > z)`, SciPy's `norm.sf(z)` or
/// `special.ndtr(-z)`.
///
/// The relative error is about 1e-14 at worst for results of at least 1e-300 (measured against
/// mpmath; SciPy's own `ndtr` is off by up to 2e-13 far in the tail, so the fixture test allows
/// 1e-12), far inside the 1e-9 that matters for a p-value compared with a confidence level;
/// results below about 1e-300 lose precision gradually as they become subnormal. `+∞` gives 0,
/// `−∞` gives 1 and NaN gives NaN. For negative `z` it is `1 − Q(|z|)`, which is at least 1/2
/// and so has no cancellation problem.
pub fn normal_sf(z: f64) -> f64 {
    if z.is_nan() {
        f64::NAN
    } else if z == f64::INFINITY {
        0.0
    } else if z == f64::NEG_INFINITY {
        1.0
    } else if z >= 0.0 {
        upper_tail(z)
    } else {
        1.0 - upper_tail(-z)
    }
}

/// The result of [`mann_whitney_u`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// The U statistic of the first sample, `R1 − n1(n1 + 1)/2` with `R1` the sum of its
    /// average ranks, whatever the alternative: this is what `scipy.stats.mannwhitneyu`
    /// reports as `statistic`.
    pub u: f64,
    /// The asymptotic p-value with tie correction and continuity correction, in `[0, 1]`.
    pub p_value: f64,
    /// The continuity-corrected standard score that the p-value comes from:
    /// `p_value = normal_sf(z)` for a one-sided alternative and `min(1, 2 · normal_sf(z))`
    /// for the two-sided one. It is `(U' − n1·n2/2 − 1/2) / σ`, where `U'` is the U of the
    /// first sample for [`Alternative::Greater`], of the second sample for
    /// [`Alternative::Less`] and the larger of the two for [`Alternative::TwoSided`]; so a
    /// large positive `z` is evidence for the alternative in every case. When every value is
    /// tied (`σ = 0`) it is 0 (see [`mann_whitney_u`]).
    pub z: f64,
}

/// The alternative hypothesis of a Mann-Whitney U test, named as SciPy names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alternative {
    /// The two distributions differ (`alternative="two-sided"`).
    TwoSided,
    /// The first sample is stochastically greater than the second (`alternative="greater"`).
    Greater,
    /// The first sample is stochastically less than the second (`alternative="less"`).
    Less,
}

/// Runs the Mann-Whitney U test of `x` against `y`.
///
/// It follows `scipy.stats.mannwhitneyu(x, y, alternative=…, method="asymptotic",
/// use_continuity=True)`: values are ranked together with average ranks for ties, the variance
/// of U carries the tie correction `n1·n2/12 · ((n + 1) − Σ(t³ − t) / (n(n − 1)))`, and 1/2 is
/// subtracted from `U' − n1·n2/2` before dividing by the standard deviation (see
/// [`MannWhitney::z`]). The asymptotic method is used at every sample size, not only where
/// SciPy's `method="auto"` would choose it, because verification windows have heavy ties (the
/// exact distribution assumes none) and the answer must not change method with the count.
///
/// NaN values are ignored, as with SciPy's `nan_policy="omit"`; infinities are ranked as the
/// extremes they are. Returns `None` when either sample has no value left.
///
/// When every value of both samples is the same, the variance is 0 and the test has no
/// information. This function then returns `p_value = 1.0` (and `z = 0.0`) for every
/// alternative, a defined "no evidence of a difference" that can never fail a deployment.
/// SciPy 1.17 gets `p = 1.0` too here (its `z` is `−∞`, as it subtracts the continuity
/// correction from `U' − n1·n2/2 = 0`); older SciPy releases returned NaN.
pub fn mann_whitney_u(x: &[f64], y: &[f64], alternative: Alternative) -> Option<MannWhitney> {
    let mut pooled: Vec<(f64, bool)> = x
        .iter()
        .map(|&v| (v, true))
        .chain(y.iter().map(|&v| (v, false)))
        .filter(|(v, _)| !v.is_nan())
        .collect();
    let n1 = pooled.iter().filter(|(_, first)| *first).count();
    let n2 = pooled.len() - n1;
    if n1 == 0 || n2 == 0 {
        return None;
    }
    pooled.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal));

    // Ranks are averages of consecutive integers, so twice a rank is an integer: summing twice
    // the ranks in u128 keeps R1, U and the tie term exact at any sample size.
    let mut twice_rank_sum: u128 = 0;
    let mut tie_term: u128 = 0;
    let mut start = 0;
    while start < pooled.len() {
        let value = pooled[start].0;
        let end = start
            + pooled[start..]
                .iter()
                .take_while(|(v, _)| *v == value)
                .count();
        // The group holds ranks start+1 ..= end; each gets their average.
        let twice_rank = (start + 1 + end) as u128;
        let in_first = pooled[start..end].iter().filter(|(_, f)| *f).count() as u128;
        twice_rank_sum += twice_rank * in_first;
        let t = (end - start) as u128;
        tie_term += t * t * t - t;
        start = end;
    }

    let (n1w, n2w) = (n1 as u128, n2 as u128);
    let twice_u1 = twice_rank_sum - n1w * (n1w + 1);
    let twice_u2 = 2 * n1w * n2w - twice_u1;
    let u1 = twice_u1 as f64 / 2.0;
    let u2 = twice_u2 as f64 / 2.0;
    let (u, factor) = match alternative {
        Alternative::Greater => (u1, 1.0),
        Alternative::Less => (u2, 1.0),
        Alternative::TwoSided => (u1.max(u2), 2.0),
    };

    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let n = n1f + n2f;
    let mean = n1f * n2f / 2.0;
    let variance = n1f * n2f / 12.0 * ((n + 1.0) - tie_term as f64 / (n * (n - 1.0)));
    if variance <= 0.0 {
        // Every value is tied: see the doc comment for why this is p = 1.
        return Some(MannWhitney {
            u: u1,
            p_value: 1.0,
            z: 0.0,
        });
    }
    let z = (u - mean - 0.5) / variance.sqrt();
    let p_value = (normal_sf(z) * factor).clamp(0.0, 1.0);
    Some(MannWhitney { u: u1, p_value, z })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde::Deserialize;

    const FIXTURES: &str = include_str!("../../tests/fixtures/mannwhitney.json");

    #[derive(Deserialize)]
    struct Fixtures {
        mann_whitney: Vec<MwCase>,
        outliers: Vec<OutlierCase>,
        normal_sf: Vec<SfCase>,
    }

    #[derive(Deserialize)]
    struct MwCase {
        name: String,
        x: Vec<f64>,
        y: Vec<f64>,
        results: Vec<MwResult>,
    }

    #[derive(Deserialize)]
    struct MwResult {
        alternative: String,
        u: f64,
        p_value: f64,
        /// `None` where SciPy's z is not finite (every value tied).
        z: Option<f64>,
    }

    #[derive(Deserialize)]
    struct OutlierCase {
        name: String,
        values: Vec<f64>,
        k: f64,
        q1: f64,
        q3: f64,
        kept: Vec<f64>,
        kept_median: Option<f64>,
        quantiles: Vec<(f64, f64)>,
    }

    #[derive(Deserialize)]
    struct SfCase {
        z: f64,
        sf: f64,
    }

    fn fixtures() -> Fixtures {
        serde_json::from_str(FIXTURES).unwrap()
    }

    /// Relative deviation of `ours` from `scipy`, with absolute deviation for values below
    /// 1e-300 where the reference itself is subnormal or zero.
    fn deviation(ours: f64, scipy: f64) -> f64 {
        if ours == scipy {
            0.0
        } else if scipy.abs() < 1e-300 {
            (ours - scipy).abs()
        } else {
            ((ours - scipy) / scipy).abs()
        }
    }

    fn alternative(name: &str) -> Alternative {
        match name {
            "two-sided" => Alternative::TwoSided,
            "greater" => Alternative::Greater,
            "less" => Alternative::Less,
            other => panic!("unknown alternative {other}"),
        }
    }

    fn close(ours: f64, scipy: f64) -> bool {
        (ours - scipy).abs() <= 1e-12 || deviation(ours, scipy) <= 1e-9
    }

    #[test]
    fn mann_whitney_matches_scipy() {
        let fixtures = fixtures();
        assert!(fixtures.mann_whitney.len() >= 40);
        let mut worst = 0.0_f64;
        for case in &fixtures.mann_whitney {
            for expected in &case.results {
                let got =
                    mann_whitney_u(&case.x, &case.y, alternative(&expected.alternative)).unwrap();
                let label = format!("{} ({})", case.name, expected.alternative);
                assert_eq!(got.u, expected.u, "U of {label}");
                assert!(
                    close(got.p_value, expected.p_value),
                    "p of {label}: {} vs SciPy {}",
                    got.p_value,
                    expected.p_value
                );
                worst = worst.max(deviation(got.p_value, expected.p_value));
                match expected.z {
                    Some(z) => assert!(close(got.z, z), "z of {label}: {} vs {z}", got.z),
                    // Every value tied: our documented z, where SciPy's is -inf.
                    None => assert_eq!(got.z, 0.0, "z of {label}"),
                }
            }
        }
        println!("largest relative p-value deviation from SciPy: {worst:e}");
    }

    #[test]
    fn normal_sf_matches_scipy() {
        let fixtures = fixtures();
        let mut worst = 0.0_f64;
        for case in &fixtures.normal_sf {
            let got = normal_sf(case.z);
            let dev = deviation(got, case.sf);
            assert!(
                dev <= 1e-12,
                "sf({}) = {got:e}, SciPy {:e}",
                case.z,
                case.sf
            );
            worst = worst.max(dev);
        }
        println!("largest relative normal_sf deviation from SciPy: {worst:e}");
    }

    /// The quartiles match NumPy bit for bit (a Python replica of [`quantile`] agrees exactly
    /// with every fixture), but serde_json's default float parser, without the
    /// `float_roundtrip` feature, reads a few of the 17-digit expected values one ulp off, so
    /// the comparison allows 1e-12.
    #[test]
    fn outliers_and_quantiles_match_numpy() {
        let mut worst = 0.0_f64;
        for case in fixtures().outliers {
            let sorted = sorted_finite(&case.values);
            let name = &case.name;
            let q1 = quantile(&sorted, 0.25).unwrap();
            let q3 = quantile(&sorted, 0.75).unwrap();
            assert!(
                (q1 - case.q1).abs() <= 1e-12,
                "q1 of {name}: {q1} vs {}",
                case.q1
            );
            assert!(
                (q3 - case.q3).abs() <= 1e-12,
                "q3 of {name}: {q3} vs {}",
                case.q3
            );
            for (q, expected) in &case.quantiles {
                let got = quantile(&sorted, *q).unwrap();
                assert!(
                    (got - expected).abs() <= 1e-12,
                    "q{q} of {name}: {got} vs {expected}"
                );
            }
            worst = worst.max((q1 - case.q1).abs()).max((q3 - case.q3).abs());
            let kept = remove_outliers(&case.values, case.k);
            assert_eq!(kept, case.kept, "kept values of {name}");
            match (median(&kept), case.kept_median) {
                (Some(got), Some(expected)) => {
                    assert!((got - expected).abs() <= 1e-12, "median of {name}")
                }
                (got, expected) => assert_eq!(got, expected, "median of {name}"),
            }
        }
        println!("largest absolute quartile deviation from NumPy: {worst:e}");
    }

    #[test]
    fn empty_inputs_give_none() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, f64::INFINITY]), None);
        assert!(remove_outliers(&[], 1.5).is_empty());
        assert!(remove_outliers(&[f64::NAN], 1.5).is_empty());
        assert_eq!(mann_whitney_u(&[], &[1.0], Alternative::TwoSided), None);
        assert_eq!(mann_whitney_u(&[1.0], &[], Alternative::Less), None);
        assert_eq!(
            mann_whitney_u(&[f64::NAN], &[1.0], Alternative::Greater),
            None
        );
    }

    #[test]
    fn quantile_rejects_q_outside_unit_interval() {
        assert_eq!(quantile(&[1.0, 2.0], -0.1), None);
        assert_eq!(quantile(&[1.0, 2.0], 1.1), None);
        assert_eq!(quantile(&[1.0, 2.0], f64::NAN), None);
        assert_eq!(quantile(&[1.0, 2.0], 0.0), Some(1.0));
        assert_eq!(quantile(&[1.0, 2.0], 1.0), Some(2.0));
        assert_eq!(quantile(&[7.0], 0.3), Some(7.0));
    }

    #[test]
    fn remove_outliers_keeps_input_order_and_handles_odd_k() {
        let values = [5.0, 1.0, 100.0, 3.0, f64::NAN, 2.0, 4.0];
        assert_eq!(remove_outliers(&values, 1.5), vec![5.0, 1.0, 3.0, 2.0, 4.0]);
        // NaN or negative k means fences at the quartiles (Q1 = 2.25, Q3 = 4.75).
        assert_eq!(remove_outliers(&values, f64::NAN), vec![3.0, 4.0]);
        assert_eq!(remove_outliers(&values, -1.0), vec![3.0, 4.0]);
        assert_eq!(
            remove_outliers(&values, f64::INFINITY),
            vec![5.0, 1.0, 100.0, 3.0, 2.0, 4.0]
        );
        // IQR 0 with an infinite k keeps exactly the values equal to the quartiles.
        assert_eq!(
            remove_outliers(&[1.0, 1.0, 1.0, 1.0, 9.0], f64::INFINITY),
            vec![1.0, 1.0, 1.0, 1.0]
        );
    }

    #[test]
    fn median_avoids_overflow_and_treats_signed_zeros_alike() {
        assert_eq!(median(&[f64::MAX, f64::MAX]), Some(f64::MAX));
        assert_eq!(median(&[3.0, f64::NAN, 1.0, 2.0]), Some(2.0));
        assert_eq!(
            mann_whitney_u(&[-0.0, -0.0], &[0.0], Alternative::TwoSided).map(|r| r.p_value),
            Some(1.0)
        );
    }

    #[test]
    fn all_ties_give_p_one_for_every_alternative() {
        for alternative in [
            Alternative::TwoSided,
            Alternative::Greater,
            Alternative::Less,
        ] {
            let r = mann_whitney_u(&[4.0; 5], &[4.0; 3], alternative).unwrap();
            assert_eq!(
                r,
                MannWhitney {
                    u: 7.5,
                    p_value: 1.0,
                    z: 0.0
                }
            );
        }
    }

    #[test]
    fn infinities_rank_as_extremes_and_nan_is_ignored() {
        let with_inf = mann_whitney_u(
            &[f64::INFINITY, 10.0, f64::NAN],
            &[1.0, f64::NEG_INFINITY],
            Alternative::Greater,
        )
        .unwrap();
        let finite = mann_whitney_u(&[1e9, 10.0], &[1.0, -1e9], Alternative::Greater).unwrap();
        assert_eq!(with_inf, finite);
        assert_eq!(with_inf.u, 4.0);
    }

    #[test]
    fn normal_sf_edges() {
        assert_eq!(normal_sf(f64::INFINITY), 0.0);
        assert_eq!(normal_sf(f64::NEG_INFINITY), 1.0);
        assert!(normal_sf(f64::NAN).is_nan());
        assert_eq!(normal_sf(0.0), 0.5);
        assert_eq!(normal_sf(100.0), 0.0);
        assert_eq!(normal_sf(-100.0), 1.0);
        // Continuity of the switch between the series and the continued fraction.
        let below = normal_sf(SERIES_LIMIT.next_down());
        let at = normal_sf(SERIES_LIMIT);
        assert!(((below - at) / at).abs() < 1e-13);
    }
}
