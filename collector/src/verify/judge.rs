//! Judging a deployment (pure): one analysis of one indicator from its baseline and analysis
//! samples, and the verdict over the analyses of a run.
//!
//! One analysis: non-finite samples are dropped, then Tukey outliers (beyond `outlier_k` × IQR
//! of the quartiles) of each window. With fewer than `min_samples` left in either window the
//! analysis is **inconclusive**. Otherwise a one-sided Mann-Whitney U test asks whether the
//! analysis window is worse than the baseline (greater for higher-is-worse, smaller for
//! lower-is-worse); the analysis **fails** when the p-value is below `1 − confidence` *and* the
//! median moved the worse way by at least `effect_floor` (relative to the baseline median, or
//! absolute when that median is 0) — a statistically clear but negligible change is not a
//! failure. An absolute `limit` fails the analysis on its own when the analysis median is
//! beyond it (enough analysis samples needed, no baseline needed). Everything else **passes**.
//!
//! The verdict: an indicator that fails `failure_limit` analyses in a row fails the
//! deployment at once. When the analysis window is over, the verdict is `pass` only if every
//! indicator's last analysis passed; any indicator whose last analysis was inconclusive (or
//! that never had one) makes it `inconclusive`.

use super::stats::{self, Alternative};
use super::{Analysis, Direction, Outcome, Summary};

/// The statistical settings of verification.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// E.g. 0.98: fail only when p < 0.02.
    pub confidence: f64,
    /// Smallest relative change of the median that can fail an analysis, e.g. 0.1 (10 %).
    pub effect_floor: f64,
    /// Fewer samples than this in either window (after outlier removal) is inconclusive.
    pub min_samples: usize,
    /// Tukey's k for outliers (1.5).
    pub outlier_k: f64,
    /// Consecutive failed analyses of one indicator that fail the deployment.
    pub failure_limit: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            confidence: 0.98,
            effect_floor: 0.1,
            min_samples: 5,
            outlier_k: 1.5,
            failure_limit: 3,
        }
    }
}

/// What is being judged.
#[derive(Clone, Debug, PartialEq)]
pub struct IndicatorSpec {
    pub name: String,
    pub query: String,
    pub direction: Direction,
    /// An absolute limit in the worse direction (e.g. an error rate of 0.05).
    pub limit: Option<f64>,
}

pub fn summary(raw: &[f64], kept: &[f64]) -> Summary {
    let finite = kept.iter().copied().filter(|v| v.is_finite());
    let (mut min, mut max, mut sum, mut n) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0usize);
    for v in finite {
        min = min.min(v);
        max = max.max(v);
        sum += v;
        n += 1;
    }
    Summary {
        raw_count: raw.len(),
        count: n,
        median: stats::median(kept),
        mean: (n > 0).then(|| sum / n as f64),
        min: (n > 0).then_some(min),
        max: (n > 0).then_some(max),
    }
}

/// The worse-way change of the median: relative to the baseline median, absolute when that
/// median is 0.
fn effect(direction: Direction, baseline: f64, analysis: f64) -> f64 {
    let worse = match direction {
        Direction::HigherIsWorse => analysis - baseline,
        Direction::LowerIsWorse => baseline - analysis,
    };
    if baseline == 0.0 {
        worse
    } else {
        worse / baseline.abs()
    }
}

/// One analysis. `previous_failures` are the indicator's consecutive failures before this one.
#[allow(clippy::too_many_arguments)]
pub fn analyse(
    deployment_id: &str,
    indicator: &IndicatorSpec,
    settings: &Settings,
    baseline: &[f64],
    analysis: &[f64],
    at: i64,
    sequence: u32,
    previous_failures: u32,
) -> Analysis {
    let clean = |v: &[f64]| -> Vec<f64> {
        let finite: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        stats::remove_outliers(&finite, settings.outlier_k)
    };
    let kept_baseline = clean(baseline);
    let kept_analysis = clean(analysis);
    let base_summary = summary(baseline, &kept_baseline);
    let analysis_summary = summary(analysis, &kept_analysis);
    let mut out = Analysis {
        deployment_id: deployment_id.to_owned(),
        indicator: indicator.name.clone(),
        query: indicator.query.clone(),
        direction: indicator.direction,
        at,
        sequence,
        baseline: base_summary,
        analysis: analysis_summary,
        p_value: None,
        effect: None,
        outcome: Outcome::Inconclusive,
        consecutive_failures: 0,
        reason: String::new(),
    };
    let enough_analysis = kept_analysis.len() >= settings.min_samples;
    let beyond_limit = match (indicator.limit, out.analysis.median) {
        (Some(limit), Some(m)) if enough_analysis => match indicator.direction {
            Direction::HigherIsWorse => m > limit,
            Direction::LowerIsWorse => m < limit,
        },
        _ => false,
    };
    if beyond_limit {
        out.outcome = Outcome::Fail;
        out.reason = format!(
            "median {} is beyond the limit {}",
            fmt(out.analysis.median),
            fmt(indicator.limit)
        );
    } else if !enough_analysis || kept_baseline.len() < settings.min_samples {
        out.outcome = Outcome::Inconclusive;
        out.reason = format!(
            "too few samples: {} baseline, {} analysis (at least {} each)",
            kept_baseline.len(),
            kept_analysis.len(),
            settings.min_samples
        );
    } else {
        let alternative = match indicator.direction {
            Direction::HigherIsWorse => Alternative::Greater,
            Direction::LowerIsWorse => Alternative::Less,
        };
        let test = stats::mann_whitney_u(&kept_analysis, &kept_baseline, alternative);
        let p = test.map(|t| t.p_value);
        let e = match (out.baseline.median, out.analysis.median) {
            (Some(b), Some(a)) => Some(effect(indicator.direction, b, a)),
            _ => None,
        };
        out.p_value = p;
        out.effect = e;
        let alpha = 1.0 - settings.confidence;
        match (p, e) {
            (Some(p), Some(e)) if p < alpha && e >= settings.effect_floor => {
                out.outcome = Outcome::Fail;
                out.reason = format!(
                    "worse than the baseline: p = {p:.4} < {alpha:.4}, median moved {:.1} % the worse way",
                    e * 100.0
                );
            }
            (Some(p), Some(e)) => {
                out.outcome = Outcome::Pass;
                out.reason = if p < alpha {
                    format!(
                        "a significant change (p = {p:.4}) smaller than the effect floor ({:.1} % < {:.1} %)",
                        e * 100.0,
                        settings.effect_floor * 100.0
                    )
                } else {
                    format!("no significant degradation (p = {p:.4})")
                };
            }
            _ => {
                out.outcome = Outcome::Inconclusive;
                out.reason = "the test could not be computed".to_owned();
            }
        }
    }
    out.consecutive_failures = if out.outcome == Outcome::Fail {
        previous_failures + 1
    } else {
        0
    };
    out
}

fn fmt(v: Option<f64>) -> String {
    v.map_or_else(|| "none".to_owned(), |v| format!("{v}"))
}

/// The verdict over a run of analyses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The analysis window is not over and nothing has failed yet.
    Running,
    Pass,
    Fail,
    Inconclusive,
}

/// The verdict from every indicator's analyses so far (in time order), with `over` saying
/// whether the analysis window has ended. `indicators` names every configured indicator, so
/// one that never produced an analysis counts as inconclusive.
pub fn verdict(
    indicators: &[String],
    analyses: &[Analysis],
    settings: &Settings,
    over: bool,
) -> Verdict {
    if analyses
        .iter()
        .any(|a| a.consecutive_failures >= settings.failure_limit.max(1))
    {
        return Verdict::Fail;
    }
    if !over {
        return Verdict::Running;
    }
    let mut all_pass = true;
    for name in indicators {
        let last = analyses.iter().rev().find(|a| &a.indicator == name);
        match last.map(|a| a.outcome) {
            Some(Outcome::Pass) => {}
            // A failure streak shorter than the limit at the end: not enough to fail, not a
            // pass either.
            Some(Outcome::Fail) | Some(Outcome::Inconclusive) | None => all_pass = false,
        }
    }
    if all_pass && !indicators.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Inconclusive
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(direction: Direction, limit: Option<f64>) -> IndicatorSpec {
        IndicatorSpec {
            name: "errors".into(),
            query: "rate(errors[1m])".into(),
            direction,
            limit,
        }
    }

    fn around(center: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| center + (i % 7) as f64 * 0.01 * center.abs().max(1.0))
            .collect()
    }

    #[test]
    fn a_clear_degradation_fails_and_streaks_count() {
        let s = Settings::default();
        let a = analyse(
            "d",
            &spec(Direction::HigherIsWorse, None),
            &s,
            &around(1.0, 30),
            &around(2.0, 20),
            0,
            1,
            0,
        );
        assert_eq!(a.outcome, Outcome::Fail, "{}", a.reason);
        assert!(a.p_value.is_some_and(|p| p < 0.02));
        assert!(a.effect.is_some_and(|e| e > 0.9));
        assert_eq!(a.consecutive_failures, 1);
        let b = analyse(
            "d",
            &spec(Direction::HigherIsWorse, None),
            &s,
            &around(1.0, 30),
            &around(2.0, 20),
            0,
            2,
            1,
        );
        assert_eq!(b.consecutive_failures, 2);
        // The same change is an improvement when lower is worse.
        let c = analyse(
            "d",
            &spec(Direction::LowerIsWorse, None),
            &s,
            &around(1.0, 30),
            &around(2.0, 20),
            0,
            1,
            0,
        );
        assert_eq!(c.outcome, Outcome::Pass);
        assert_eq!(c.consecutive_failures, 0);
    }

    #[test]
    fn a_tiny_but_significant_change_passes_under_the_effect_floor() {
        let s = Settings::default();
        let a = analyse(
            "d",
            &spec(Direction::HigherIsWorse, None),
            &s,
            &around(100.0, 40),
            &around(102.0, 40),
            0,
            1,
            0,
        );
        assert_eq!(a.outcome, Outcome::Pass, "{}", a.reason);
        assert!(a.p_value.is_some_and(|p| p < 0.02), "{:?}", a.p_value);
    }

    #[test]
    fn too_few_samples_or_no_data_is_inconclusive() {
        let s = Settings::default();
        let a = analyse(
            "d",
            &spec(Direction::HigherIsWorse, None),
            &s,
            &[],
            &around(2.0, 20),
            0,
            1,
            0,
        );
        assert_eq!(a.outcome, Outcome::Inconclusive);
        let a = analyse(
            "d",
            &spec(Direction::HigherIsWorse, None),
            &s,
            &around(1.0, 30),
            &[1.0, f64::NAN, 2.0],
            0,
            1,
            2,
        );
        assert_eq!(a.outcome, Outcome::Inconclusive);
        assert_eq!(
            a.consecutive_failures, 0,
            "an inconclusive analysis breaks a streak"
        );
    }

    #[test]
    fn outliers_do_not_decide() {
        let s = Settings::default();
        let mut analysis = around(1.0, 30);
        analysis[3] = 1e6;
        let a = analyse(
            "d",
            &spec(Direction::HigherIsWorse, None),
            &s,
            &around(1.0, 30),
            &analysis,
            0,
            1,
            0,
        );
        assert_eq!(a.outcome, Outcome::Pass, "{}", a.reason);
        assert_eq!(a.analysis.raw_count, 30);
        assert_eq!(a.analysis.count, 29);
    }

    #[test]
    fn an_absolute_limit_fails_without_a_baseline() {
        let s = Settings::default();
        let a = analyse(
            "d",
            &spec(Direction::HigherIsWorse, Some(0.05)),
            &s,
            &[],
            &around(0.2, 10),
            0,
            1,
            0,
        );
        assert_eq!(a.outcome, Outcome::Fail, "{}", a.reason);
        let a = analyse(
            "d",
            &spec(Direction::LowerIsWorse, Some(0.5)),
            &s,
            &[],
            &around(0.9, 10),
            0,
            1,
            0,
        );
        assert_eq!(a.outcome, Outcome::Inconclusive);
    }

    #[test]
    fn verdicts() {
        let s = Settings {
            failure_limit: 2,
            ..Settings::default()
        };
        let names = vec!["errors".to_owned(), "latency".to_owned()];
        let mk = |name: &str, outcome: Outcome, streak: u32| Analysis {
            indicator: name.into(),
            outcome,
            consecutive_failures: streak,
            ..analyse(
                "d",
                &spec(Direction::HigherIsWorse, None),
                &s,
                &[],
                &[],
                0,
                1,
                0,
            )
        };
        assert_eq!(verdict(&names, &[], &s, false), Verdict::Running);
        assert_eq!(verdict(&names, &[], &s, true), Verdict::Inconclusive);
        let run = [
            mk("errors", Outcome::Fail, 1),
            mk("latency", Outcome::Pass, 0),
        ];
        assert_eq!(verdict(&names, &run, &s, false), Verdict::Running);
        let run = [
            mk("errors", Outcome::Fail, 1),
            mk("errors", Outcome::Fail, 2),
        ];
        assert_eq!(verdict(&names, &run, &s, false), Verdict::Fail);
        let run = [
            mk("errors", Outcome::Pass, 0),
            mk("latency", Outcome::Pass, 0),
        ];
        assert_eq!(verdict(&names, &run, &s, true), Verdict::Pass);
        let run = [
            mk("errors", Outcome::Pass, 0),
            mk("latency", Outcome::Inconclusive, 0),
        ];
        assert_eq!(verdict(&names, &run, &s, true), Verdict::Inconclusive);
        let run = [mk("errors", Outcome::Pass, 0)];
        assert_eq!(
            verdict(&names, &run, &s, true),
            Verdict::Inconclusive,
            "latency never analysed"
        );
    }
}
