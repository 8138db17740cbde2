//! Performance tiers (elite, high, medium, low) for the DORA metrics, from a named, versioned
//! table of the Accelerate State of DevOps report. `dora::compute` calls `TierTable`'s methods
//! to put a tier beside each raw figure; the raw figure is always reported too, because a tier
//! is a coarse, survey-derived label and the number is what an operator can check.
//!
//! The report's tables describe clusters of survey answers, not thresholds, so turning them
//! into a classifier needs a rule, and this module states it once for every metric:
//!
//! - The table is read as a list of bounds, best tier first; a value gets the best tier whose
//!   bound it meets, and `Low` when it meets none.
//! - A value exactly on a bound gets the better tier (`>=` for frequencies, `<=` for durations
//!   and rates), so "less than one day" is read as "at most one day".
//! - A month is 30 days and a week is 7 days.
//! - A metric that is `None` (nothing to measure) has no tier: `dora::compute` maps over the
//!   `Option`, never classifies a stand-in 0.

use serde::Serialize;

/// A performance tier, serialised in lower case (`"elite"`, `"high"`, `"medium"`, `"low"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Elite,
    High,
    Medium,
    Low,
}

const HOUR_SECONDS: f64 = 3600.0;
const DAY_SECONDS: f64 = 24.0 * HOUR_SECONDS;
const WEEK_SECONDS: f64 = 7.0 * DAY_SECONDS;
const MONTH_SECONDS: f64 = 30.0 * DAY_SECONDS;

/// The bounds of one report's table, best tier first: `[elite, high, medium]`; anything that
/// meets none of them is `Low`. Keeping the table as data (rather than as `if` chains) lets a
/// newer report be added beside this one and selected by name without touching the maths.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TierTable {
    /// The report the bounds come from, copied into every `DoraReport` as `tier_table`.
    pub name: &'static str,
    /// Lower bounds (inclusive) of successful deployments per day.
    pub deployment_frequency_per_day: [f64; 3],
    /// Upper bounds (inclusive) of the median change lead time, in seconds.
    pub change_lead_time_seconds: [f64; 3],
    /// Upper bounds (inclusive) of the change fail rate, as a fraction in [0, 1].
    pub change_fail_rate: [f64; 3],
    /// Upper bounds (inclusive) of the median failed deployment recovery time, in seconds.
    pub failed_deployment_recovery_seconds: [f64; 3],
}

/// The software delivery performance levels of the 2023 Accelerate State of DevOps report
/// (DORA, Google Cloud), the first report to name "failed deployment recovery time". Its
/// table, row by row, with how each cell becomes a bound:
///
/// | Level  | Deployment frequency                     | Change lead time              | Change failure rate | Failed deployment recovery time   |
/// |--------|------------------------------------------|-------------------------------|---------------------|-----------------------------------|
/// | Elite  | On demand                                | Less than one day             | 5%                  | Less than one hour                |
/// | High   | Between once per day and once per week   | Between one day and one week  | 10%                 | Less than one day                 |
/// | Medium | Between once per week and once per month | Between one week and one month| 15%                 | Between one day and one week      |
/// | Low    | Between once per week and once per month | Between one week and one month| 64%                 | Between one month and six months  |
///
/// The 2023 low row repeats the medium row's frequency and lead time (the clusters overlap on
/// those two measures), so low is simply "below medium" here. The failure rates are the
/// clusters' typical values, not ranges; we use each as the upper bound of its tier. The
/// report gives no tier for deployment rework rate (introduced in 2024) or for the
/// incident-based time to restore (which 2023 replaced), so `DoraReport` has no tier for them.
pub const STATE_OF_DEVOPS_2023: TierTable = TierTable {
    name: "State of DevOps 2023",
    deployment_frequency_per_day: [
        // Elite, "On demand": at least once per day (multiple deploys per day in earlier
        // reports' wording).
        1.0,
        // High, "Between once per day and once per week": at least once per week.
        1.0 / 7.0,
        // Medium, "Between once per week and once per month": at least once per 30 days.
        1.0 / 30.0,
    ],
    change_lead_time_seconds: [
        // Elite, "Less than one day".
        DAY_SECONDS,
        // High, "Between one day and one week".
        WEEK_SECONDS,
        // Medium, "Between one week and one month".
        MONTH_SECONDS,
    ],
    change_fail_rate: [
        // Elite, "5%".
        0.05, // High, "10%".
        0.10, // Medium, "15%" (low, "64%", is everything above).
        0.15,
    ],
    failed_deployment_recovery_seconds: [
        // Elite, "Less than one hour".
        HOUR_SECONDS,
        // High, "Less than one day".
        DAY_SECONDS,
        // Medium, "Between one day and one week" (low, "Between one month and six months",
        // is everything above; the table leaves one week to one month unassigned and we give
        // it to low).
        WEEK_SECONDS,
    ],
};

const TIERS: [Tier; 3] = [Tier::Elite, Tier::High, Tier::Medium];

/// The best tier whose lower bound `value` reaches (higher is better).
fn at_least(value: f64, bounds: &[f64; 3]) -> Tier {
    TIERS
        .iter()
        .zip(bounds)
        .find(|(_, bound)| value >= **bound)
        .map_or(Tier::Low, |(tier, _)| *tier)
}

/// The best tier whose upper bound `value` stays within (lower is better).
fn at_most(value: f64, bounds: &[f64; 3]) -> Tier {
    TIERS
        .iter()
        .zip(bounds)
        .find(|(_, bound)| value <= **bound)
        .map_or(Tier::Low, |(tier, _)| *tier)
}

impl TierTable {
    /// The tier of a deployment frequency given in successful deployments per day.
    pub fn deployment_frequency(&self, per_day: f64) -> Tier {
        at_least(per_day, &self.deployment_frequency_per_day)
    }

    /// The tier of a median change lead time given in seconds.
    pub fn change_lead_time(&self, median_seconds: f64) -> Tier {
        at_most(median_seconds, &self.change_lead_time_seconds)
    }

    /// The tier of a change fail rate given as a fraction in [0, 1].
    pub fn change_fail_rate(&self, rate: f64) -> Tier {
        at_most(rate, &self.change_fail_rate)
    }

    /// The tier of a median failed deployment recovery time given in seconds.
    pub fn failed_deployment_recovery_time(&self, median_seconds: f64) -> Tier {
        at_most(median_seconds, &self.failed_deployment_recovery_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: TierTable = STATE_OF_DEVOPS_2023;

    // Deployment frequency: elite >= 1/day, high >= 1/7, medium >= 1/30, else low. Values on
    // a bound take the better tier.
    #[test]
    fn deployment_frequency_bounds() {
        assert_eq!(T.deployment_frequency(3.0), Tier::Elite);
        assert_eq!(T.deployment_frequency(1.0), Tier::Elite);
        assert_eq!(T.deployment_frequency(0.99), Tier::High);
        assert_eq!(T.deployment_frequency(1.0 / 7.0), Tier::High);
        assert_eq!(T.deployment_frequency(0.14), Tier::Medium);
        assert_eq!(T.deployment_frequency(1.0 / 30.0), Tier::Medium);
        assert_eq!(T.deployment_frequency(0.03), Tier::Low);
        assert_eq!(T.deployment_frequency(0.0), Tier::Low);
    }

    // Lead time: elite <= 86 400 s, high <= 604 800 s, medium <= 2 592 000 s, else low.
    #[test]
    fn change_lead_time_bounds() {
        assert_eq!(T.change_lead_time(0.0), Tier::Elite);
        assert_eq!(T.change_lead_time(86_400.0), Tier::Elite);
        assert_eq!(T.change_lead_time(86_401.0), Tier::High);
        assert_eq!(T.change_lead_time(604_800.0), Tier::High);
        assert_eq!(T.change_lead_time(604_801.0), Tier::Medium);
        assert_eq!(T.change_lead_time(2_592_000.0), Tier::Medium);
        assert_eq!(T.change_lead_time(2_592_001.0), Tier::Low);
    }

    // Fail rate: elite <= 5 %, high <= 10 %, medium <= 15 %, else low. 1/20 is the same
    // double as 0.05 (both are the nearest double to 1/20), so it lands on the bound.
    #[test]
    fn change_fail_rate_bounds() {
        assert_eq!(T.change_fail_rate(0.0), Tier::Elite);
        assert_eq!(T.change_fail_rate(1.0 / 20.0), Tier::Elite);
        assert_eq!(T.change_fail_rate(0.06), Tier::High);
        assert_eq!(T.change_fail_rate(0.10), Tier::High);
        assert_eq!(T.change_fail_rate(0.15), Tier::Medium);
        assert_eq!(T.change_fail_rate(0.16), Tier::Low);
        assert_eq!(T.change_fail_rate(1.0), Tier::Low);
    }

    // Recovery: elite <= 3 600 s, high <= 86 400 s, medium <= 604 800 s, else low.
    #[test]
    fn failed_deployment_recovery_time_bounds() {
        assert_eq!(T.failed_deployment_recovery_time(3_600.0), Tier::Elite);
        assert_eq!(T.failed_deployment_recovery_time(3_601.0), Tier::High);
        assert_eq!(T.failed_deployment_recovery_time(86_400.0), Tier::High);
        assert_eq!(T.failed_deployment_recovery_time(86_401.0), Tier::Medium);
        assert_eq!(T.failed_deployment_recovery_time(604_800.0), Tier::Medium);
        assert_eq!(T.failed_deployment_recovery_time(604_801.0), Tier::Low);
    }

    #[test]
    fn tiers_serialise_in_lower_case() {
        let json = serde_json::to_string(&[Tier::Elite, Tier::High, Tier::Medium, Tier::Low])
            .unwrap_or_default();
        assert_eq!(json, r#"["elite","high","medium","low"]"#);
    }
}
