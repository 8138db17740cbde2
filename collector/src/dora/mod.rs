//! The DORA metrics, computed purely from deployments and incidents. The API handler for
//! `GET /api/v1/dora` and the `/metrics` exporter load the events of a service from the store
//! and call `compute` with the window they want and the current time as `now`; nothing here
//! does I/O or reads the clock, so a report can be recomputed by hand from its inputs.
//!
//! # Definitions
//!
//! All figures are for one service and one environment over a window `[from, to)` of Unix
//! milliseconds; durations in the report are seconds. Events are first filtered:
//!
//! - Only deployments and incidents whose `service` and `environment` equal the requested ones
//!   count. An incident of another service that names one of our deployments as cause is
//!   ignored: the link is recorded on the incident, and the incident belongs to its service.
//! - Nothing after `now` is known yet: a deployment with `finished_at > now` is ignored
//!   entirely (including as a rollback or as an earlier carrier of commits); an incident with
//!   `opened_at > now` is ignored entirely; a `resolved_at > now` is treated as not resolved.
//! - Deployments are ordered by `(finished_at, id)`; "earlier" and "later" below refer to that
//!   order, which is total because ids are unique.
//!
//! A *successful deployment in the window* has `status == Success` and `from <= finished_at <
//! to`. Deployments with `status == Failure` never count as deployments in any figure (not in
//! the frequency, not in a denominator, not as carriers of commits); they count only as a
//! rollback attempt that marks their target failed (below).
//!
//! - **Deployment frequency**: the number of successful deployments in the window, and that
//!   number divided by the window length in days (`(to - from) / 86 400 000`, fractional). The
//!   per-day figure is `None` only for a window of no length (`to <= from`); a window of some
//!   length with no deployments has a real frequency of 0 per day.
//! - **Change lead time**: for each successful deployment in the window, each commit (by sha)
//!   that no earlier successful deployment of the same service and environment contained
//!   (earlier ones before `from` included, which is why all history is passed in) gives one
//!   lead time, `finished_at - committed_at`. A sha listed twice in one deployment counts once.
//!   Reported: the number of lead times, their median and their 90th percentile by nearest
//!   rank (the `ceil(0.9 n)`-th smallest). Lead times are taken as given: a commit stamped
//!   after its deployment finished (clock skew) gives a negative lead time rather than being
//!   silently dropped or clamped.
//! - **Change fail rate**: a successful deployment in the window *failed* if at least one
//!   known incident names it in `caused_by`, or at least one later known deployment (of any
//!   status) names it in `rollback_of`. Failure is a property of the deployment, so a rollback
//!   or incident after `to` (but not after `now`) still marks it failed. Rate = failed /
//!   successful deployments in the window; `None` when there are none.
//! - **Failed deployment recovery time**: for each failed deployment in the window,
//!   `recovered_at - finished_at`, where `recovered_at` is the earlier of whichever exist:
//!   the `finished_at` of the first later *successful* deployment whose `rollback_of` names it;
//!   the latest `resolved_at` of the incidents naming it as cause, once all of them are
//!   resolved (by `now`). Reported: the median over recovered ones, and the numbers of
//!   recovered and not-yet-recovered failed deployments. A failed deployment with neither is
//!   not yet recovered and is not in the median.
//! - **Deployment rework rate**: successful deployments in the window with `fixes_incident`
//!   set, divided by successful deployments in the window; `None` when there are none.
//! - **Time to restore** (incident-based, as older DORA reports and Four Keys define it): over
//!   known incidents with `from <= opened_at < to`, the median of `resolved_at - opened_at`
//!   for those resolved by `now`, and the number still unresolved.
//!
//! Differences of timestamps saturate at the `i64` bounds instead of overflowing, so absurd
//! inputs give absurd figures rather than a panic.
//!
//! Medians of an even count are the mean of the two middle values. An empty set gives `None`
//! (JSON `null`), never 0. Each figure that has a DORA tier gets one from the table in
//! [`tiers`] (its name is in the report as `tier_table`), computed from the median for the
//! durations, and `None` when the figure is `None`.
//!
//! # Cost
//!
//! `compute` filters the inputs once, sorts the matching deployments once and indexes
//! rollbacks and incident links in hash maps, so it runs in O(n log n) for n events: cheap
//! enough for the `/metrics` exporter to call it per service and environment on each scrape
//! (see `service_environments`).

pub mod tiers;

use std::collections::{HashMap, HashSet};

use serde::Serialize;

pub use tiers::{STATE_OF_DEVOPS_2023, Tier, TierTable};

const DAY_MS: f64 = 86_400_000.0;

/// Whether a deployment completed. Only `Success` deployments ship changes; a `Failure` one
/// (the pipeline failed, nothing or a partial change reached the environment) is kept for the
/// record but is not a deployment for any DORA figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentStatus {
    Success,
    Failure,
}

/// A commit shipped by a deployment, identified by its sha.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub sha: String,
    /// Unix milliseconds.
    pub committed_at: i64,
}

/// A deployment as CI/CD reported it to `POST /api/v1/deployments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// Unique across all deployments.
    pub id: String,
    pub service: String,
    pub environment: String,
    pub version: String,
    pub status: DeploymentStatus,
    /// Unix milliseconds.
    pub started_at: i64,
    /// Unix milliseconds; the instant the deployment counts at.
    pub finished_at: i64,
    /// The commits this deployment ships (all of them, not only new ones: deciding which are
    /// new is this module's job).
    pub commits: Vec<Commit>,
    /// The id of the deployment this one rolls back, if it is a rollback.
    pub rollback_of: Option<String>,
    /// The id of the incident this deployment was made to fix, if any (rework).
    pub fixes_incident: Option<String>,
}

/// An incident and the deployments linked to it as its cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub id: String,
    pub service: String,
    pub environment: String,
    /// Unix milliseconds.
    pub opened_at: i64,
    /// Unix milliseconds; `None` while open.
    pub resolved_at: Option<i64>,
    /// Ids of the deployments linked to this incident as cause, suspected or confirmed. A
    /// removed link is simply absent.
    pub caused_by: Vec<String>,
}

/// A half-open window `[from, to)` of Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub from: i64,
    pub to: i64,
}

impl Window {
    pub fn contains(&self, t: i64) -> bool {
        self.from <= t && t < self.to
    }

    /// The window's length in days, fractional; 0 for an empty or inverted window.
    pub fn days(&self) -> f64 {
        self.to.saturating_sub(self.from).max(0) as f64 / DAY_MS
    }
}

/// The DORA report for one service and environment over one window: the `GET /api/v1/dora`
/// body. Every rate carries the counts it was divided from and every median the number of
/// values behind it, so a reader can check the figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DoraReport {
    pub service: String,
    pub environment: String,
    pub window: Window,
    /// The `now` the report was computed at (Unix milliseconds): events after it were unknown.
    pub now: i64,
    /// The name of the tier table every `tier` field comes from.
    pub tier_table: &'static str,
    pub deployment_frequency: DeploymentFrequency,
    pub change_lead_time: ChangeLeadTime,
    pub change_fail_rate: ChangeFailRate,
    pub failed_deployment_recovery_time: RecoveryTime,
    pub deployment_rework_rate: ReworkRate,
    pub time_to_restore: TimeToRestore,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeploymentFrequency {
    pub successful_deployments: u64,
    /// The window's length in days, the divisor of `per_day`.
    pub window_days: f64,
    pub per_day: Option<f64>,
    pub tier: Option<Tier>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeLeadTime {
    /// The number of lead times (new commits) the median and p90 are taken over.
    pub changes: u64,
    pub median_seconds: Option<f64>,
    pub p90_seconds: Option<f64>,
    /// From the median.
    pub tier: Option<Tier>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeFailRate {
    pub failed_deployments: u64,
    pub successful_deployments: u64,
    pub rate: Option<f64>,
    pub tier: Option<Tier>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecoveryTime {
    /// Failed deployments in the window that have recovered (the median's values).
    pub recovered: u64,
    /// Failed deployments in the window not recovered by `now`.
    pub not_recovered: u64,
    pub median_seconds: Option<f64>,
    /// From the median.
    pub tier: Option<Tier>,
}

/// No tier: the 2023 table has none for rework.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReworkRate {
    pub rework_deployments: u64,
    pub successful_deployments: u64,
    pub rate: Option<f64>,
}

/// No tier: the 2023 table replaced time to restore with failed deployment recovery time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeToRestore {
    /// Incidents opened in the window and resolved by `now` (the median's values).
    pub resolved_incidents: u64,
    pub unresolved_incidents: u64,
    pub median_seconds: Option<f64>,
}

/// Computes the DORA report of `service` in `environment` over `window`, knowing only what had
/// happened by `now`. See the module documentation for the exact definitions.
pub fn compute(
    deployments: &[Deployment],
    incidents: &[Incident],
    service: &str,
    environment: &str,
    window: Window,
    now: i64,
) -> DoraReport {
    compute_with(
        &STATE_OF_DEVOPS_2023,
        deployments,
        incidents,
        service,
        environment,
        window,
        now,
    )
}

/// `compute` with an explicit tier table, for when a newer report's table is added.
pub fn compute_with(
    table: &TierTable,
    deployments: &[Deployment],
    incidents: &[Incident],
    service: &str,
    environment: &str,
    window: Window,
    now: i64,
) -> DoraReport {
    // The known deployments of this service and environment in (finished_at, id) order, so
    // "earlier" and "later" are index comparisons from here on.
    let mut deps: Vec<&Deployment> = deployments
        .iter()
        .filter(|d| d.service == service && d.environment == environment && d.finished_at <= now)
        .collect();
    deps.sort_unstable_by(|a, b| (a.finished_at, &a.id).cmp(&(b.finished_at, &b.id)));
    let incs: Vec<&Incident> = incidents
        .iter()
        .filter(|i| i.service == service && i.environment == environment && i.opened_at <= now)
        .collect();

    // Rolled-back id → indices (ascending) of the deployments naming it in `rollback_of`.
    let mut rollbacks: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, d) in deps.iter().enumerate() {
        if let Some(target) = &d.rollback_of {
            rollbacks.entry(target.as_str()).or_default().push(i);
        }
    }
    // Deployment id → the incidents naming it as cause.
    let mut causes: HashMap<&str, Vec<&Incident>> = HashMap::new();
    for inc in &incs {
        for id in &inc.caused_by {
            causes.entry(id.as_str()).or_default().push(inc);
        }
    }
    let resolution = |inc: &Incident| inc.resolved_at.filter(|&r| r <= now);

    let mut successful = 0u64;
    let mut failed = 0u64;
    let mut rework = 0u64;
    let mut not_recovered = 0u64;
    let mut lead_ms: Vec<i64> = Vec::new();
    let mut recovery_ms: Vec<i64> = Vec::new();
    // Shas shipped by a successful deployment so far, in deployment order.
    let mut shipped: HashSet<&str> = HashSet::new();
    for (i, d) in deps.iter().enumerate() {
        if d.finished_at >= window.to {
            // Later deployments can only ship commits later, and they are handled below
            // through the maps, so the walk can stop.
            break;
        }
        if d.status != DeploymentStatus::Success {
            continue;
        }
        let in_window = window.contains(d.finished_at);
        for c in &d.commits {
            if shipped.insert(c.sha.as_str()) && in_window {
                lead_ms.push(d.finished_at.saturating_sub(c.committed_at));
            }
        }
        if !in_window {
            continue;
        }
        successful += 1;
        if d.fixes_incident.is_some() {
            rework += 1;
        }

        let later_rollbacks: &[usize] = rollbacks.get(d.id.as_str()).map_or(&[], |v| v.as_slice());
        let mut later_rollbacks = later_rollbacks.iter().copied().filter(|&j| j > i);
        let rolled_back = later_rollbacks.clone().next().is_some();
        let linked = causes.get(d.id.as_str()).map_or(&[][..], |v| v.as_slice());
        if !rolled_back && linked.is_empty() {
            continue;
        }
        failed += 1;

        let by_rollback = later_rollbacks
            .find(|&j| deps[j].status == DeploymentStatus::Success)
            .map(|j| deps[j].finished_at);
        // The latest resolution, if every linked incident is resolved.
        let by_incidents = if linked.is_empty() {
            None
        } else {
            linked
                .iter()
                .map(|inc| resolution(inc))
                .try_fold(i64::MIN, |latest, r| r.map(|r| latest.max(r)))
        };
        let recovered_at = match (by_rollback, by_incidents) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match recovered_at {
            Some(at) => recovery_ms.push(at.saturating_sub(d.finished_at)),
            None => not_recovered += 1,
        }
    }

    let mut restore_ms: Vec<i64> = Vec::new();
    let mut unresolved = 0u64;
    for inc in incs.iter().filter(|i| window.contains(i.opened_at)) {
        match resolution(inc) {
            Some(r) => restore_ms.push(r.saturating_sub(inc.opened_at)),
            None => unresolved += 1,
        }
    }

    lead_ms.sort_unstable();
    recovery_ms.sort_unstable();
    restore_ms.sort_unstable();

    let per_day = (window.to > window.from).then(|| successful as f64 / window.days());
    let lead_median = median_seconds(&lead_ms);
    let fail_rate = ratio(failed, successful);
    let recovery_median = median_seconds(&recovery_ms);

    DoraReport {
        service: service.to_owned(),
        environment: environment.to_owned(),
        window,
        now,
        tier_table: table.name,
        deployment_frequency: DeploymentFrequency {
            successful_deployments: successful,
            window_days: window.days(),
            per_day,
            tier: per_day.map(|v| table.deployment_frequency(v)),
        },
        change_lead_time: ChangeLeadTime {
            changes: lead_ms.len() as u64,
            median_seconds: lead_median,
            p90_seconds: p90_seconds(&lead_ms),
            tier: lead_median.map(|v| table.change_lead_time(v)),
        },
        change_fail_rate: ChangeFailRate {
            failed_deployments: failed,
            successful_deployments: successful,
            rate: fail_rate,
            tier: fail_rate.map(|v| table.change_fail_rate(v)),
        },
        failed_deployment_recovery_time: RecoveryTime {
            recovered: recovery_ms.len() as u64,
            not_recovered,
            median_seconds: recovery_median,
            tier: recovery_median.map(|v| table.failed_deployment_recovery_time(v)),
        },
        deployment_rework_rate: ReworkRate {
            rework_deployments: rework,
            successful_deployments: successful,
            rate: ratio(rework, successful),
        },
        time_to_restore: TimeToRestore {
            resolved_incidents: restore_ms.len() as u64,
            unresolved_incidents: unresolved,
            median_seconds: median_seconds(&restore_ms),
        },
    }
}

/// The distinct (service, environment) pairs of the given events, sorted: what the `/metrics`
/// exporter iterates over, calling `compute` once per pair.
pub fn service_environments<'a>(
    deployments: &'a [Deployment],
    incidents: &'a [Incident],
) -> Vec<(&'a str, &'a str)> {
    let mut pairs: Vec<(&str, &str)> = deployments
        .iter()
        .map(|d| (d.service.as_str(), d.environment.as_str()))
        .chain(
            incidents
                .iter()
                .map(|i| (i.service.as_str(), i.environment.as_str())),
        )
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// The median of ascending milliseconds, in seconds; the mean of the two middle values for an
/// even count, `None` for none.
fn median_seconds(sorted_ms: &[i64]) -> Option<f64> {
    let n = sorted_ms.len();
    if n == 0 {
        return None;
    }
    let mid = n / 2;
    let ms = if n % 2 == 1 {
        sorted_ms[mid] as f64
    } else {
        // Added as floats so two large values cannot overflow.
        (sorted_ms[mid - 1] as f64 + sorted_ms[mid] as f64) / 2.0
    };
    Some(ms / 1000.0)
}

/// The 90th percentile of ascending milliseconds by nearest rank, in seconds: the
/// `ceil(0.9 n)`-th smallest value, computed in integers (`(9n + 9) / 10`) so no rounding of
/// `0.9 * n` can pick the wrong rank.
fn p90_seconds(sorted_ms: &[i64]) -> Option<f64> {
    let n = sorted_ms.len();
    if n == 0 {
        return None;
    }
    let rank = (9 * n).div_ceil(10);
    sorted_ms.get(rank - 1).map(|&ms| ms as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    //! Every expected figure below is worked out by hand in the comment above its test. Times
    //! are written in days (D), hours (H) and minutes (M) of Unix milliseconds; unless a test
    //! says otherwise the window is [10D, 20D) (10 days), `now` is 30D, and events are of
    //! service "api" in environment "prod".

    use super::*;

    const M: i64 = 60_000;
    const H: i64 = 60 * M;
    const D: i64 = 24 * H;
    const W: Window = Window {
        from: 10 * D,
        to: 20 * D,
    };
    const NOW: i64 = 30 * D;

    fn dep(id: &str, finished_at: i64) -> Deployment {
        Deployment {
            id: id.to_owned(),
            service: "api".to_owned(),
            environment: "prod".to_owned(),
            version: format!("v-{id}"),
            status: DeploymentStatus::Success,
            started_at: finished_at - 10 * M,
            finished_at,
            commits: Vec::new(),
            rollback_of: None,
            fixes_incident: None,
        }
    }

    impl Deployment {
        fn commits(mut self, commits: &[(&str, i64)]) -> Self {
            self.commits = commits
                .iter()
                .map(|&(sha, committed_at)| Commit {
                    sha: sha.to_owned(),
                    committed_at,
                })
                .collect();
            self
        }
        fn failure(mut self) -> Self {
            self.status = DeploymentStatus::Failure;
            self
        }
        fn rollback_of(mut self, id: &str) -> Self {
            self.rollback_of = Some(id.to_owned());
            self
        }
        fn fixes(mut self, incident: &str) -> Self {
            self.fixes_incident = Some(incident.to_owned());
            self
        }
        fn at(mut self, service: &str, environment: &str) -> Self {
            self.service = service.to_owned();
            self.environment = environment.to_owned();
            self
        }
    }

    fn inc(id: &str, opened_at: i64, resolved_at: Option<i64>, caused_by: &[&str]) -> Incident {
        Incident {
            id: id.to_owned(),
            service: "api".to_owned(),
            environment: "prod".to_owned(),
            opened_at,
            resolved_at,
            caused_by: caused_by.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn run(deployments: &[Deployment], incidents: &[Incident]) -> DoraReport {
        compute(deployments, incidents, "api", "prod", W, NOW)
    }

    fn no_lead_time() -> ChangeLeadTime {
        ChangeLeadTime {
            changes: 0,
            median_seconds: None,
            p90_seconds: None,
            tier: None,
        }
    }

    fn no_recovery() -> RecoveryTime {
        RecoveryTime {
            recovered: 0,
            not_recovered: 0,
            median_seconds: None,
            tier: None,
        }
    }

    fn no_restore() -> TimeToRestore {
        TimeToRestore {
            resolved_incidents: 0,
            unresolved_incidents: 0,
            median_seconds: None,
        }
    }

    // Median: [] → None; [1 s] → 1; [1, 4] → (1 + 4) / 2 = 2.5; [1, 2, 9] → 2;
    // [1, 2, 3, 100] → (2 + 3) / 2 = 2.5. Unsorted input is the caller's bug, so inputs here
    // are ascending as `compute` passes them.
    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median_seconds(&[]), None);
        assert_eq!(median_seconds(&[1000]), Some(1.0));
        assert_eq!(median_seconds(&[1000, 4000]), Some(2.5));
        assert_eq!(median_seconds(&[1000, 2000, 9000]), Some(2.0));
        assert_eq!(median_seconds(&[1000, 2000, 3000, 100_000]), Some(2.5));
    }

    // p90 by nearest rank is the ceil(0.9 n)-th smallest: n = 1 → rank 1; n = 5 → ceil(4.5) =
    // 5; n = 10 → 9; n = 11 → ceil(9.9) = 10; n = 20 → 18. With values 1..=n seconds the
    // answer is the rank itself.
    #[test]
    fn p90_is_nearest_rank() {
        let secs = |n: i64| (1..=n).map(|s| s * 1000).collect::<Vec<_>>();
        assert_eq!(p90_seconds(&[]), None);
        assert_eq!(p90_seconds(&secs(1)), Some(1.0));
        assert_eq!(p90_seconds(&secs(5)), Some(5.0));
        assert_eq!(p90_seconds(&secs(10)), Some(9.0));
        assert_eq!(p90_seconds(&secs(11)), Some(10.0));
        assert_eq!(p90_seconds(&secs(20)), Some(18.0));
    }

    // One deployment at 11D with ten new commits made 1H..10H before it (listed out of
    // order). Lead times 1H..10H: n = 10, median = (5H + 6H) / 2 = 5.5H = 19 800 s; p90 is
    // the 9th smallest, 9H = 32 400 s. Median 5.5H <= 1 day → elite.
    #[test]
    fn lead_time_median_and_p90_through_compute() {
        let commits: Vec<(String, i64)> = [3, 10, 1, 7, 2, 9, 4, 8, 6, 5]
            .iter()
            .map(|h| (format!("c{h}"), 11 * D - h * H))
            .collect();
        let commits: Vec<(&str, i64)> = commits.iter().map(|(s, t)| (s.as_str(), *t)).collect();
        let r = run(&[dep("d1", 11 * D).commits(&commits)], &[]);
        assert_eq!(
            r.change_lead_time,
            ChangeLeadTime {
                changes: 10,
                median_seconds: Some(19_800.0),
                p90_seconds: Some(32_400.0),
                tier: Some(Tier::Elite),
            }
        );
    }

    // A window of some length with no event in it. The deployment at 5D and the incident
    // opened at 5D are before the window and change nothing in it. Every count is 0, every
    // median and rate None with no tier; the one figure that is not None is the frequency,
    // 0 deployments / 10 days = 0 per day, which is a measurement (tier low), not a gap.
    #[test]
    fn window_without_events() {
        let r = run(
            &[dep("old", 5 * D).commits(&[("c", 4 * D)])],
            &[inc("i", 5 * D, Some(6 * D), &["old"])],
        );
        assert_eq!(
            r.deployment_frequency,
            DeploymentFrequency {
                successful_deployments: 0,
                window_days: 10.0,
                per_day: Some(0.0),
                tier: Some(Tier::Low),
            }
        );
        assert_eq!(r.change_lead_time, no_lead_time());
        assert_eq!(
            r.change_fail_rate,
            ChangeFailRate {
                failed_deployments: 0,
                successful_deployments: 0,
                rate: None,
                tier: None,
            }
        );
        assert_eq!(r.failed_deployment_recovery_time, no_recovery());
        assert_eq!(
            r.deployment_rework_rate,
            ReworkRate {
                rework_deployments: 0,
                successful_deployments: 0,
                rate: None,
            }
        );
        assert_eq!(r.time_to_restore, no_restore());
    }

    // An empty window [10D, 10D) contains nothing, not even the deployment and incident at
    // exactly 10D; its length is 0 days, so even the frequency is None. An inverted window
    // [20D, 10D) is treated the same. All counts 0, all figures and tiers None.
    #[test]
    fn empty_window_is_all_none() {
        let deps = [dep("d", 10 * D).commits(&[("c", 9 * D)])];
        let incs = [inc("i", 10 * D, Some(11 * D), &["d"])];
        for window in [
            Window {
                from: 10 * D,
                to: 10 * D,
            },
            Window {
                from: 20 * D,
                to: 10 * D,
            },
        ] {
            let r = compute(&deps, &incs, "api", "prod", window, NOW);
            assert_eq!(
                r.deployment_frequency,
                DeploymentFrequency {
                    successful_deployments: 0,
                    window_days: 0.0,
                    per_day: None,
                    tier: None,
                }
            );
            assert_eq!(r.change_lead_time, no_lead_time());
            assert_eq!(r.change_fail_rate.rate, None);
            assert_eq!(r.change_fail_rate.tier, None);
            assert_eq!(r.change_fail_rate.successful_deployments, 0);
            assert_eq!(r.failed_deployment_recovery_time, no_recovery());
            assert_eq!(r.deployment_rework_rate.rate, None);
            assert_eq!(r.time_to_restore, no_restore());
        }
    }

    // The window is half-open: "from" at exactly 10D counts, "to" at exactly 20D does not.
    // 1 deployment / 10 days = 0.1 per day, below 1/7 → medium.
    #[test]
    fn window_is_half_open() {
        let r = run(&[dep("at-from", 10 * D), dep("at-to", 20 * D)], &[]);
        assert_eq!(
            r.deployment_frequency,
            DeploymentFrequency {
                successful_deployments: 1,
                window_days: 10.0,
                per_day: Some(0.1),
                tier: Some(Tier::Medium),
            }
        );
    }

    // a (success, 11D, c1 made 11D-2H), b (failure, 12D, c2 made 12D-5H), c (success, 13D,
    // c2 again and c3 made 13D-1H); incident i (12D+1H → 12D+2H) blames b.
    // - Frequency: a and c only → 2, 2 / 10 = 0.2 per day (>= 1/7) → high.
    // - Lead time: b shipped nothing, so c2 is new in c: 13D - (12D - 5H) = 29H. Lead times
    //   {1H (c3), 2H (c1), 29H (c2)}: median 2H = 7 200 s; p90 rank ceil(2.7) = 3 → 29H =
    //   104 400 s; elite.
    // - Fail rate: b is not a successful deployment, so i marks nothing: 0 / 2 = 0 → elite.
    // - Time to restore: i opened in the window, 1H = 3 600 s.
    #[test]
    fn failure_status_is_not_a_deployment() {
        let r = run(
            &[
                dep("a", 11 * D).commits(&[("c1", 11 * D - 2 * H)]),
                dep("b", 12 * D)
                    .failure()
                    .commits(&[("c2", 12 * D - 5 * H)]),
                dep("c", 13 * D).commits(&[("c2", 12 * D - 5 * H), ("c3", 13 * D - H)]),
            ],
            &[inc("i", 12 * D + H, Some(12 * D + 2 * H), &["b"])],
        );
        assert_eq!(r.deployment_frequency.successful_deployments, 2);
        assert_eq!(r.deployment_frequency.per_day, Some(0.2));
        assert_eq!(r.deployment_frequency.tier, Some(Tier::High));
        assert_eq!(
            r.change_lead_time,
            ChangeLeadTime {
                changes: 3,
                median_seconds: Some(7_200.0),
                p90_seconds: Some(104_400.0),
                tier: Some(Tier::Elite),
            }
        );
        assert_eq!(
            r.change_fail_rate,
            ChangeFailRate {
                failed_deployments: 0,
                successful_deployments: 2,
                rate: Some(0.0),
                tier: Some(Tier::Elite),
            }
        );
        assert_eq!(r.failed_deployment_recovery_time, no_recovery());
        assert_eq!(
            r.time_to_restore,
            TimeToRestore {
                resolved_incidents: 1,
                unresolved_incidents: 0,
                median_seconds: Some(3_600.0),
            }
        );
    }

    // Only api/prod counts. web/prod deployed s1 at 10D+12H, then api/prod's a (11D) ships s1
    // made 10D: for api/prod it is new, lead time 1D = 86 400 s. web/prod's rollback of a,
    // api/staging's rollback of a, web/prod's incident blaming a, and api/staging's incident
    // are all ignored: 1 successful deployment, 0 failed, no incidents.
    #[test]
    fn other_services_and_environments_are_ignored() {
        let r = run(
            &[
                dep("w1", 10 * D + 12 * H)
                    .at("web", "prod")
                    .commits(&[("s1", 10 * D)]),
                dep("a", 11 * D).commits(&[("s1", 10 * D)]),
                dep("w2", 12 * D).at("web", "prod").rollback_of("a"),
                dep("s2", 12 * D).at("api", "staging").rollback_of("a"),
            ],
            &[
                Incident {
                    service: "web".to_owned(),
                    ..inc("iw", 11 * D + H, Some(11 * D + 2 * H), &["a"])
                },
                Incident {
                    environment: "staging".to_owned(),
                    ..inc("is", 11 * D + H, None, &["a"])
                },
            ],
        );
        assert_eq!(r.deployment_frequency.successful_deployments, 1);
        assert_eq!(r.change_lead_time.changes, 1);
        assert_eq!(r.change_lead_time.median_seconds, Some(86_400.0));
        assert_eq!(r.change_fail_rate.failed_deployments, 0);
        assert_eq!(r.change_fail_rate.rate, Some(0.0));
        assert_eq!(r.failed_deployment_recovery_time, no_recovery());
        assert_eq!(r.time_to_restore, no_restore());
    }

    // now = 15D, window [10D, 20D).
    // - a (11D, c1 made 10D+12H) and c (12D) are known; b (16D) finished after now: ignored.
    //   2 deployments / 10 days = 0.2 per day. Lead time: c1 only, 12H = 43 200 s.
    // - c's rollback r finishes at 16D, after now: unknown, so c has not failed.
    // - Incident i1 (opened 13D, resolved 16D) blames a: a failed, but the resolution is after
    //   now, so i1 is unresolved and a not recovered. Fail rate 1 / 2 = 0.5 → low.
    // - Incident i2 opened at 16D (after now) blames c: ignored, so not in time to restore.
    // - Time to restore: i1 unresolved → 0 resolved, 1 unresolved, median None.
    #[test]
    fn events_after_now_are_ignored() {
        let now = 15 * D;
        let r = compute(
            &[
                dep("a", 11 * D).commits(&[("c1", 10 * D + 12 * H)]),
                dep("b", 16 * D).commits(&[("c2", 14 * D)]),
                dep("c", 12 * D),
                dep("r", 16 * D).rollback_of("c"),
            ],
            &[
                inc("i1", 13 * D, Some(16 * D), &["a"]),
                inc("i2", 16 * D, None, &["c"]),
            ],
            "api",
            "prod",
            W,
            now,
        );
        assert_eq!(r.now, now);
        assert_eq!(r.deployment_frequency.successful_deployments, 2);
        assert_eq!(r.deployment_frequency.per_day, Some(0.2));
        assert_eq!(r.change_lead_time.changes, 1);
        assert_eq!(r.change_lead_time.median_seconds, Some(43_200.0));
        assert_eq!(
            r.change_fail_rate,
            ChangeFailRate {
                failed_deployments: 1,
                successful_deployments: 2,
                rate: Some(0.5),
                tier: Some(Tier::Low),
            }
        );
        assert_eq!(
            r.failed_deployment_recovery_time,
            RecoveryTime {
                recovered: 0,
                not_recovered: 1,
                median_seconds: None,
                tier: None,
            }
        );
        assert_eq!(
            r.time_to_restore,
            TimeToRestore {
                resolved_incidents: 0,
                unresolved_incidents: 1,
                median_seconds: None,
            }
        );
    }

    // d1 (11D, c1 made 11D-1H), d2 (12D, c2 made 12D-2H), d3 (12D+30M) rolls back d2 by
    // redeploying c1, d4 (12D+1H) rolls back d3 by redeploying c1 and c2.
    // - Frequency: 4 successful deployments, 0.4 per day → high.
    // - Lead time: c1 at d1 (1H), c2 at d2 (2H); d3 and d4 ship nothing new. n = 2: median
    //   (1H + 2H) / 2 = 1.5H = 5 400 s; p90 rank ceil(1.8) = 2 → 2H = 7 200 s.
    // - Failed: d2 (rolled back by d3) and d3 (rolled back by d4); d1 and d4 not. 2 / 4 = 0.5
    //   → low.
    // - Recovery: d2 at d3, 30M; d3 at d4, 30M. Median 1 800 s → elite.
    #[test]
    fn rollback_of_a_rollback() {
        let r = run(
            &[
                dep("d1", 11 * D).commits(&[("c1", 11 * D - H)]),
                dep("d2", 12 * D).commits(&[("c2", 12 * D - 2 * H)]),
                dep("d3", 12 * D + 30 * M)
                    .rollback_of("d2")
                    .commits(&[("c1", 11 * D - H)]),
                dep("d4", 12 * D + H)
                    .rollback_of("d3")
                    .commits(&[("c1", 11 * D - H), ("c2", 12 * D - 2 * H)]),
            ],
            &[],
        );
        assert_eq!(r.deployment_frequency.successful_deployments, 4);
        assert_eq!(r.deployment_frequency.tier, Some(Tier::High));
        assert_eq!(
            r.change_lead_time,
            ChangeLeadTime {
                changes: 2,
                median_seconds: Some(5_400.0),
                p90_seconds: Some(7_200.0),
                tier: Some(Tier::Elite),
            }
        );
        assert_eq!(
            r.change_fail_rate,
            ChangeFailRate {
                failed_deployments: 2,
                successful_deployments: 4,
                rate: Some(0.5),
                tier: Some(Tier::Low),
            }
        );
        assert_eq!(
            r.failed_deployment_recovery_time,
            RecoveryTime {
                recovered: 2,
                not_recovered: 0,
                median_seconds: Some(1_800.0),
                tier: Some(Tier::Elite),
            }
        );
    }

    // A deployment that names a deployment finishing after it in `rollback_of` is not a
    // rollback of it (rollbacks come later): x (13D) names y (14D); y has not failed.
    // Neither has x. 0 / 2.
    #[test]
    fn a_rollback_must_come_later() {
        let r = run(&[dep("x", 13 * D).rollback_of("y"), dep("y", 14 * D)], &[]);
        assert_eq!(r.change_fail_rate.failed_deployments, 0);
        assert_eq!(r.change_fail_rate.successful_deployments, 2);
    }

    // e0 (5D, before the window) ships "old" made 4D.
    // d1 (11D) ships old (not new: e0 shipped it) and a made 10D → a: 1D.
    // d2 (12D) ships b made 11D, listed twice → counted once: 1D.
    // d4 (13D) ships b again (not new; counted for d2 at 1D, not for d4 at 2D) and c made
    // 12D+18H → 6H.
    // ty and tx both finish at 14D and ship t made 13D; the tie goes to the smaller id (tx,
    // although listed second) and t counts once: 1D.
    // Lead times {6H, 1D, 1D, 1D} = {21 600, 86 400, 86 400, 86 400} s: n = 4, median
    // (86 400 + 86 400) / 2 = 86 400 → elite (on the 1-day bound); p90 rank ceil(3.6) = 4 →
    // 86 400.
    #[test]
    fn commit_in_two_deployments_counts_once_for_the_earlier() {
        let r = run(
            &[
                dep("ty", 14 * D).commits(&[("t", 13 * D)]),
                dep("d4", 13 * D).commits(&[("b", 11 * D), ("c", 12 * D + 18 * H)]),
                dep("e0", 5 * D).commits(&[("old", 4 * D)]),
                dep("d1", 11 * D).commits(&[("old", 4 * D), ("a", 10 * D)]),
                dep("d2", 12 * D).commits(&[("b", 11 * D), ("b", 11 * D)]),
                dep("tx", 14 * D).commits(&[("t", 13 * D)]),
            ],
            &[],
        );
        assert_eq!(
            r.change_lead_time,
            ChangeLeadTime {
                changes: 4,
                median_seconds: Some(86_400.0),
                p90_seconds: Some(86_400.0),
                tier: Some(Tier::Elite),
            }
        );
    }

    // d1 (11D) and d2 (11D+2H) are both blamed by incident i (opened 11D+3H, resolved
    // 11D+5H); d3 (12D) is healthy.
    // - Fail rate: d1 and d2 failed, 2 / 3.
    // - Recovery uses i's resolution for each: d1 5H = 18 000 s, d2 3H = 10 800 s; median
    //   (10 800 + 18 000) / 2 = 14 400 s (4H) → high.
    // - Time to restore: i took 2H = 7 200 s.
    #[test]
    fn incident_linked_to_two_deployments() {
        let r = run(
            &[
                dep("d1", 11 * D),
                dep("d2", 11 * D + 2 * H),
                dep("d3", 12 * D),
            ],
            &[inc(
                "i",
                11 * D + 3 * H,
                Some(11 * D + 5 * H),
                &["d1", "d2"],
            )],
        );
        assert_eq!(
            r.change_fail_rate,
            ChangeFailRate {
                failed_deployments: 2,
                successful_deployments: 3,
                rate: Some(2.0 / 3.0),
                tier: Some(Tier::Low),
            }
        );
        assert_eq!(
            r.failed_deployment_recovery_time,
            RecoveryTime {
                recovered: 2,
                not_recovered: 0,
                median_seconds: Some(14_400.0),
                tier: Some(Tier::High),
            }
        );
        assert_eq!(
            r.time_to_restore,
            TimeToRestore {
                resolved_incidents: 1,
                unresolved_incidents: 0,
                median_seconds: Some(7_200.0),
            }
        );
    }

    // d1 (11D) blamed by i1 (11D+1H → 11D+2H): recovered after 2H = 7 200 s.
    // d2 (12D) blamed by i2 (opened 12D+1H, open) and i3 (12D+1H → 12D+3H): not all its
    // incidents are resolved, so not recovered.
    // d3 (13D) rolled back by r (failure, 13D+1H): failed, but a failed rollback does not
    // recover it, and r is not a deployment.
    // - Fail rate 3 / 3 = 1 → low.
    // - Recovery: recovered 1, not recovered 2, median 7 200 s (only d1) → high.
    // - Time to restore: i1 1H, i3 2H → median 5 400 s; i2 unresolved.
    #[test]
    fn unrecovered_failures_are_counted_but_not_in_the_median() {
        let r = run(
            &[
                dep("d1", 11 * D),
                dep("d2", 12 * D),
                dep("d3", 13 * D),
                dep("r", 13 * D + H).failure().rollback_of("d3"),
            ],
            &[
                inc("i1", 11 * D + H, Some(11 * D + 2 * H), &["d1"]),
                inc("i2", 12 * D + H, None, &["d2"]),
                inc("i3", 12 * D + H, Some(12 * D + 3 * H), &["d2"]),
            ],
        );
        assert_eq!(
            r.change_fail_rate,
            ChangeFailRate {
                failed_deployments: 3,
                successful_deployments: 3,
                rate: Some(1.0),
                tier: Some(Tier::Low),
            }
        );
        assert_eq!(
            r.failed_deployment_recovery_time,
            RecoveryTime {
                recovered: 1,
                not_recovered: 2,
                median_seconds: Some(7_200.0),
                tier: Some(Tier::High),
            }
        );
        assert_eq!(
            r.time_to_restore,
            TimeToRestore {
                resolved_incidents: 2,
                unresolved_incidents: 1,
                median_seconds: Some(5_400.0),
            }
        );
    }

    // d1 finishes at 19D+23H, in the window; its rollback r at 20D+1H, after the window end
    // but before now. Failure is a property of d1, so d1 failed: 1 / 1 (r is outside the
    // window, so not in the denominator). Recovered by r after 2H = 7 200 s.
    #[test]
    fn rollback_after_the_window_still_marks_failed() {
        let r = run(
            &[
                dep("d1", 19 * D + 23 * H),
                dep("r", 20 * D + H).rollback_of("d1"),
            ],
            &[],
        );
        assert_eq!(
            r.change_fail_rate,
            ChangeFailRate {
                failed_deployments: 1,
                successful_deployments: 1,
                rate: Some(1.0),
                tier: Some(Tier::Low),
            }
        );
        assert_eq!(
            r.failed_deployment_recovery_time,
            RecoveryTime {
                recovered: 1,
                not_recovered: 0,
                median_seconds: Some(7_200.0),
                tier: Some(Tier::High),
            }
        );
    }

    // d1 (11D): incident i1 resolved at 11D+20M, rollback r1 at 11D+1H → the earlier, 20M =
    // 1 200 s.
    // d2 (12D): incident i2 still open, rollback r2 at 12D+40M → only the rollback counts,
    // 40M = 2 400 s.
    // d3 (13D): rollback r3 failed at 13D+1H, rollback r3b succeeded at 13D+2H, incident i3
    // resolved at 13D+3H → the first successful rollback, 2H = 7 200 s.
    // - Successful deployments: d1, r1, d2, r2, d3, r3b = 6; failed d1, d2, d3 = 3 → 0.5.
    // - Recovery {1 200, 2 400, 7 200}: median 2 400 s → elite (<= 1H).
    #[test]
    fn recovery_is_the_earlier_of_rollback_and_incidents() {
        let r = run(
            &[
                dep("d1", 11 * D),
                dep("r1", 11 * D + H).rollback_of("d1"),
                dep("d2", 12 * D),
                dep("r2", 12 * D + 40 * M).rollback_of("d2"),
                dep("d3", 13 * D),
                dep("r3", 13 * D + H).failure().rollback_of("d3"),
                dep("r3b", 13 * D + 2 * H).rollback_of("d3"),
            ],
            &[
                inc("i1", 11 * D + 10 * M, Some(11 * D + 20 * M), &["d1"]),
                inc("i2", 12 * D + 10 * M, None, &["d2"]),
                inc("i3", 13 * D + 10 * M, Some(13 * D + 3 * H), &["d3"]),
            ],
        );
        assert_eq!(
            r.change_fail_rate,
            ChangeFailRate {
                failed_deployments: 3,
                successful_deployments: 6,
                rate: Some(0.5),
                tier: Some(Tier::Low),
            }
        );
        assert_eq!(
            r.failed_deployment_recovery_time,
            RecoveryTime {
                recovered: 3,
                not_recovered: 0,
                median_seconds: Some(2_400.0),
                tier: Some(Tier::Elite),
            }
        );
    }

    // d1 (11D) fixes incident i0; d2 (12D) does not; d3 (13D, failure) fixes one but is not
    // a deployment; d4 (14D) does not; d5 (21D, after the window) fixes one. 1 / 3.
    #[test]
    fn rework_rate() {
        let r = run(
            &[
                dep("d1", 11 * D).fixes("i0"),
                dep("d2", 12 * D),
                dep("d3", 13 * D).failure().fixes("i0"),
                dep("d4", 14 * D),
                dep("d5", 21 * D).fixes("i9"),
            ],
            &[],
        );
        assert_eq!(
            r.deployment_rework_rate,
            ReworkRate {
                rework_deployments: 1,
                successful_deployments: 3,
                rate: Some(1.0 / 3.0),
            }
        );
    }

    // Incidents by opening time: i1 opened 9D (before the window): out. i2 opened 10D, took
    // 1H = 3 600 s. i3 opened 19D, resolved 21D (after the window, before now): 2D = 172 800
    // s. i4 opened 20D (window end, exclusive): out. i5 opened 15D, open: unresolved. i6 of
    // staging: out. Median (3 600 + 172 800) / 2 = 88 200 s; 1 unresolved.
    #[test]
    fn time_to_restore() {
        let r = run(
            &[],
            &[
                inc("i1", 9 * D, Some(10 * D + H), &[]),
                inc("i2", 10 * D, Some(10 * D + H), &[]),
                inc("i3", 19 * D, Some(21 * D), &[]),
                inc("i4", 20 * D, Some(20 * D + H), &[]),
                inc("i5", 15 * D, None, &[]),
                Incident {
                    environment: "staging".to_owned(),
                    ..inc("i6", 15 * D, Some(15 * D + H), &[])
                },
            ],
        );
        assert_eq!(
            r.time_to_restore,
            TimeToRestore {
                resolved_incidents: 2,
                unresolved_incidents: 1,
                median_seconds: Some(88_200.0),
            }
        );
    }

    // The JSON body of GET /api/v1/dora: absent figures are null (not 0, not missing), tiers
    // are lower-case strings, and the tier table is named. One deployment d at 11D with a
    // commit made 11D-1H: 0.1 per day (medium), lead time 3 600 s (elite), fail rate 0
    // (elite), no recovery, rework 0, no incidents.
    #[test]
    fn report_serialises_with_nulls_and_tiers() {
        let r = run(&[dep("d", 11 * D).commits(&[("c", 11 * D - H)])], &[]);
        let json = serde_json::to_value(&r).unwrap();
        let expected = serde_json::json!({
            "service": "api",
            "environment": "prod",
            "window": { "from": 10 * D, "to": 20 * D },
            "now": NOW,
            "tier_table": "State of DevOps 2023",
            "deployment_frequency": {
                "successful_deployments": 1,
                "window_days": 10.0,
                "per_day": 0.1,
                "tier": "medium"
            },
            "change_lead_time": {
                "changes": 1,
                "median_seconds": 3600.0,
                "p90_seconds": 3600.0,
                "tier": "elite"
            },
            "change_fail_rate": {
                "failed_deployments": 0,
                "successful_deployments": 1,
                "rate": 0.0,
                "tier": "elite"
            },
            "failed_deployment_recovery_time": {
                "recovered": 0,
                "not_recovered": 0,
                "median_seconds": null,
                "tier": null
            },
            "deployment_rework_rate": {
                "rework_deployments": 0,
                "successful_deployments": 1,
                "rate": 0.0
            },
            "time_to_restore": {
                "resolved_incidents": 0,
                "unresolved_incidents": 0,
                "median_seconds": null
            }
        });
        assert_eq!(json, expected);
    }

    // Input order does not matter: the same events reversed give the same report (the
    // rollback-of-a-rollback scenario, where order decides "earlier").
    #[test]
    fn input_order_does_not_matter() {
        let deps = vec![
            dep("d1", 11 * D).commits(&[("c1", 11 * D - H)]),
            dep("d2", 12 * D).commits(&[("c2", 12 * D - 2 * H)]),
            dep("d3", 12 * D + 30 * M)
                .rollback_of("d2")
                .commits(&[("c1", 11 * D - H)]),
            dep("d4", 12 * D + H).rollback_of("d3"),
        ];
        let incs = vec![
            inc("i1", 12 * D + M, Some(12 * D + 2 * M), &["d2"]),
            inc("i2", 13 * D, None, &["d4"]),
        ];
        let mut reversed_deps = deps.clone();
        reversed_deps.reverse();
        let mut reversed_incs = incs.clone();
        reversed_incs.reverse();
        assert_eq!(run(&deps, &incs), run(&reversed_deps, &reversed_incs));
    }

    #[test]
    fn service_environments_lists_each_pair_once() {
        let deps = [
            dep("a", D),
            dep("b", D).at("web", "prod"),
            dep("c", D),
            dep("d", D).at("api", "staging"),
        ];
        let incs = [Incident {
            service: "db".to_owned(),
            ..inc("i", D, None, &[])
        }];
        assert_eq!(
            service_environments(&deps, &incs),
            vec![
                ("api", "prod"),
                ("api", "staging"),
                ("db", "prod"),
                ("web", "prod"),
            ]
        );
    }
}
