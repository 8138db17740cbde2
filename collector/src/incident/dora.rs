//! From stored records to the DORA core's events (`crate::dora`), and the trailing figures
//! on `/metrics`.

use super::Incident;
use super::deployment::{Deployment, DeploymentStatus};
use crate::dora::{self, DoraReport, Window};

/// The DORA report over `[from, to)` from stored deployments and incidents. An incident's
/// causes are its deployment links, suspected or confirmed (a link a person removed is gone).
pub fn compute(
    deployments: &[Deployment],
    incidents: &[Incident],
    service: &str,
    environment: &str,
    from: i64,
    to: i64,
    now: i64,
) -> DoraReport {
    let deployments: Vec<dora::Deployment> = deployments.iter().map(event_of_deployment).collect();
    let incidents: Vec<dora::Incident> = incidents.iter().map(event_of_incident).collect();
    dora::compute(
        &deployments,
        &incidents,
        service,
        environment,
        Window { from, to },
        now,
    )
}

fn event_of_deployment(d: &Deployment) -> dora::Deployment {
    dora::Deployment {
        id: d.id.clone(),
        service: d.service.clone(),
        environment: d.environment.clone(),
        version: d.version.clone(),
        status: match d.status {
            DeploymentStatus::Success => dora::DeploymentStatus::Success,
            DeploymentStatus::Failure => dora::DeploymentStatus::Failure,
        },
        started_at: d.started_at,
        finished_at: d.finished_at,
        commits: d
            .commits
            .iter()
            .map(|c| dora::Commit {
                sha: c.sha.clone(),
                committed_at: c.committed_at,
            })
            .collect(),
        rollback_of: d.rollback_of.clone(),
        fixes_incident: d.fixes_incident.map(|id| id.to_string()),
    }
}

fn event_of_incident(i: &Incident) -> dora::Incident {
    dora::Incident {
        id: i.id.to_string(),
        service: i.service.clone(),
        environment: i.environment.clone(),
        opened_at: i.opened_at,
        resolved_at: i.resolved_at,
        caused_by: i
            .deployments
            .iter()
            .map(|l| l.deployment_id.clone())
            .collect(),
    }
}

/// Sets the `redline_dora_*` gauges of one service and environment. Figures without a value
/// (no deployments, nothing recovered) are NaN, which Prometheus shows as such.
pub fn publish_gauges(report: &DoraReport) {
    let labels = [
        ("service", report.service.clone()),
        ("environment", report.environment.clone()),
    ];
    let set = |name: &'static str, value: Option<f64>| {
        metrics::gauge!(name, &labels).set(value.unwrap_or(f64::NAN));
    };
    set(
        "redline_dora_deployments_per_day",
        report.deployment_frequency.per_day,
    );
    set(
        "redline_dora_change_lead_time_median_seconds",
        report.change_lead_time.median_seconds,
    );
    set(
        "redline_dora_change_lead_time_p90_seconds",
        report.change_lead_time.p90_seconds,
    );
    set(
        "redline_dora_change_fail_rate",
        report.change_fail_rate.rate,
    );
    set(
        "redline_dora_failed_deployment_recovery_time_median_seconds",
        report.failed_deployment_recovery_time.median_seconds,
    );
    set(
        "redline_dora_deployment_rework_rate",
        report.deployment_rework_rate.rate,
    );
    set(
        "redline_dora_time_to_restore_median_seconds",
        report.time_to_restore.median_seconds,
    );
}
