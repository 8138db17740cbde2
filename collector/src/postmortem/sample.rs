//! Sample inputs for tests and for the accessibility check (`collector/tests/postmortem_a11y.rs`):
//! a rich post-mortem with every section filled, and a bare one with nothing but an open
//! incident. Not part of the API.

use std::collections::{BTreeMap, BTreeSet};

use super::{Chart, Input, Lead, LinkedDeployment};
use crate::incident::deployment::{Commit, Deployment, DeploymentStatus};
use crate::incident::{
    ACTOR_COLLECTOR, DeploymentLink, EntryKind, Incident, LinkKind, MemberAlert, Severity, Source,
    Status, TimelineEntry,
};
use crate::notify::LabelSet;
use crate::verify::{Analysis, Direction, Outcome, Summary};

/// 2026-03-14T09:00:00Z, when the sample incident is detected.
pub const DETECTED: i64 = 1_773_478_800_000;
const MINUTE: i64 = 60_000;

fn labels(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn at(minutes: f64) -> i64 {
    DETECTED + (minutes * MINUTE as f64) as i64
}

fn summary(median: f64, count: usize) -> Summary {
    Summary {
        raw_count: count + 2,
        count,
        median: Some(median),
        mean: Some(median * 1.05),
        min: Some(median * 0.6),
        max: Some(median * 1.8),
    }
}

/// An incident opened by an alert, acknowledged, mitigated and resolved; a suspected
/// deployment with two commits and three verification analyses ending in a failure; a
/// rollback deployment on the timeline; three leads; a chart of 120 points. Texts include
/// characters that need escaping (`|`, `<`, newlines, a URL in a note).
pub fn sample_input() -> Input {
    let alert_labels = labels(&[
        ("alertname", "HighErrorRate"),
        ("environment", "prod"),
        ("service", "checkout"),
        ("severity", "critical"),
    ]);
    let fingerprint = "9f3c2a7d41b08e65".to_owned();
    let incident = Incident {
        id: 42,
        key: "{}:{alertname=\"HighErrorRate\", service=\"checkout\"}".to_owned(),
        source: Source::Alert,
        status: Status::Resolved,
        severity: Severity::Sev2,
        title: "Checkout error rate above 5% | payments <prod>".to_owned(),
        service: "checkout".to_owned(),
        environment: "prod".to_owned(),
        hosts: BTreeSet::from(["checkout-1".to_owned(), "checkout-2".to_owned()]),
        owner: Some("alice".to_owned()),
        opened_at: DETECTED,
        acknowledged_at: Some(at(3.0)),
        mitigated_at: Some(at(14.0)),
        resolved_at: Some(at(31.0)),
        alerts: BTreeMap::from([(
            fingerprint.clone(),
            MemberAlert {
                labels: alert_labels,
                firing: false,
                starts_at: at(-2.0),
                ends_at: Some(at(16.0)),
            },
        )]),
        quiet_since: Some(at(16.0)),
        deployments: vec![DeploymentLink {
            deployment_id: "d-1042".to_owned(),
            kind: LinkKind::Suspected,
            linked_at: DETECTED,
        }],
    };
    let entry = |id: i64, minutes: f64, actor: &str, kind: EntryKind, message: &str| {
        let mut e = TimelineEntry::new(at(minutes), actor, kind, message);
        e.id = id;
        e
    };
    let timeline = vec![
        entry(
            101,
            -2.0,
            ACTOR_COLLECTOR,
            EntryKind::AlertFiring,
            "alert HighErrorRate{environment=\"prod\", service=\"checkout\"} firing",
        )
        .with_ref("alert", fingerprint.clone()),
        entry(
            102,
            -1.5,
            ACTOR_COLLECTOR,
            EntryKind::AnomalyPeak,
            "anomaly score 0.98 on http_server_errors_total{service=\"checkout\"}",
        )
        .with_ref("metric", "http_server_errors_total"),
        entry(
            103,
            0.0,
            ACTOR_COLLECTOR,
            EntryKind::Opened,
            "SEV2 incident opened by alert HighErrorRate{environment=\"prod\", service=\"checkout\"}",
        )
        .with_ref("alert", fingerprint.clone()),
        entry(
            104,
            0.0,
            ACTOR_COLLECTOR,
            EntryKind::DeploymentSuspected,
            "deployment d-1042 (v2.14.0) of checkout prod, finished 300 s before, is the suspected cause",
        )
        .with_ref("deployment", "d-1042"),
        entry(
            105,
            0.1,
            "integration:oncall/webhook/0",
            EntryKind::NotificationSent,
            "notified oncall by webhook",
        ),
        entry(
            106,
            3.0,
            "user:alice",
            EntryKind::Acknowledged,
            "acknowledged by user:alice",
        ),
        entry(
            107,
            6.0,
            "user:alice",
            EntryKind::Note,
            "Rolling back d-1042 per https://runbooks.example.com/checkout#rollback | step 3\n\
             <b>not</b> retrying the payment queue yet",
        ),
        entry(
            108,
            12.0,
            ACTOR_COLLECTOR,
            EntryKind::Deployment,
            "deployment d-1043 (v2.13.2) of checkout prod finished: success",
        )
        .with_ref("deployment", "d-1043"),
        entry(
            109,
            14.0,
            "user:alice",
            EntryKind::Mitigated,
            "marked mitigated by user:alice",
        ),
        entry(
            110,
            16.0,
            ACTOR_COLLECTOR,
            EntryKind::AlertResolved,
            "alert HighErrorRate{environment=\"prod\", service=\"checkout\"} resolved",
        )
        .with_ref("alert", fingerprint),
        entry(
            111,
            31.0,
            ACTOR_COLLECTOR,
            EntryKind::Resolved,
            "resolved automatically: every alert resolved 900 s ago",
        ),
    ];
    let query = "sum(rate(http_server_errors_total{service=\"checkout\"}[1m])) / sum(rate(http_server_requests_total{service=\"checkout\"}[1m]))";
    let analysis = |seq: u32, minutes: f64, outcome: Outcome, failures: u32, reason: &str| {
        let (p, effect, median) = match outcome {
            Outcome::Inconclusive => (None, None, None),
            _ => (Some(0.0004), Some(17.5), Some(0.074)),
        };
        Analysis {
            deployment_id: "d-1042".to_owned(),
            indicator: "error_ratio".to_owned(),
            query: query.to_owned(),
            direction: Direction::HigherIsWorse,
            at: at(minutes),
            sequence: seq,
            baseline: summary(0.004, 30),
            analysis: match median {
                Some(m) => summary(m, 6),
                None => Summary {
                    raw_count: 2,
                    count: 2,
                    ..Summary::default()
                },
            },
            p_value: p,
            effect,
            outcome,
            consecutive_failures: failures,
            reason: reason.to_owned(),
        }
    };
    let deployment = Deployment {
        id: "d-1042".to_owned(),
        service: "checkout".to_owned(),
        environment: "prod".to_owned(),
        version: "v2.14.0".to_owned(),
        status: DeploymentStatus::Success,
        started_at: at(-8.0),
        finished_at: at(-5.0),
        commits: vec![
            Commit {
                sha: "4f9c1e2ab7d3".to_owned(),
                committed_at: at(-30.0),
            },
            Commit {
                sha: "a81b77c0de55".to_owned(),
                committed_at: at(-20.0),
            },
        ],
        rollback_of: None,
        fixes_incident: None,
        source: "github".to_owned(),
    };
    let deployments = vec![LinkedDeployment {
        deployment,
        link: LinkKind::Suspected,
        analyses: vec![
            analysis(
                1,
                -4.0,
                Outcome::Inconclusive,
                0,
                "too few samples in the analysis window (2 < 5)",
            ),
            analysis(
                2,
                -2.0,
                Outcome::Fail,
                1,
                "error_ratio rose from 0.004 to 0.074 (p = 0.0004)",
            ),
            analysis(
                3,
                0.0,
                Outcome::Fail,
                2,
                "error_ratio rose from 0.004 to 0.074 (p = 0.0004); 2 failures in a row",
            ),
        ],
        verdict: Some(Outcome::Fail),
    }];
    let leads = vec![
        Lead {
            series: labels(&[
                ("__name__", "http_server_errors_total"),
                ("service", "checkout"),
            ]),
            first_anomalous_at: at(-2.5),
            peak_score: 0.98,
        },
        Lead {
            series: labels(&[
                ("__name__", "http_server_request_duration_seconds_p99"),
                ("service", "checkout"),
            ]),
            first_anomalous_at: at(-1.8),
            peak_score: 0.91,
        },
        Lead {
            series: labels(&[
                ("__name__", "process_cpu_utilization"),
                ("host_name", "checkout-1"),
            ]),
            first_anomalous_at: at(-1.0),
            peak_score: 0.74,
        },
    ];
    // 120 points, every 30 s from 20 minutes before detection: a quiet baseline, the error
    // ratio climbing from the impact start, falling after the rollback.
    let points = (0..120)
        .map(|n| {
            let t = at(-20.0 + f64::from(n) * 0.5);
            let minutes = (t - DETECTED) as f64 / MINUTE as f64;
            let wobble = 0.06 * ((f64::from(n) * 1.7).sin() + 0.5 * (f64::from(n) * 0.37).cos());
            let value = if minutes < -2.5 {
                0.4 + wobble
            } else if minutes < 0.0 {
                0.4 + (minutes + 2.5) * 2.6 + wobble
            } else if minutes < 12.0 {
                7.0 + 0.6 * (minutes * 0.8).sin() + wobble
            } else if minutes < 15.0 {
                7.0 - (minutes - 12.0) * 2.1 + wobble
            } else {
                0.45 + wobble
            };
            (t, (value * 1000.0).round() / 1000.0)
        })
        .collect();
    Input {
        incident,
        timeline,
        deployments,
        leads,
        chart: Some(Chart {
            title: "Error ratio of checkout in prod".to_owned(),
            unit: "%".to_owned(),
            points,
        }),
        impact_start: Some(at(-2.5)),
        recovery_seconds: Some(17.0 * 60.0),
        generated_at: at(60.0),
    }
}

/// An open incident reported by a person, with no timeline beyond its opening, no deployment,
/// no leads, no chart and no impact start.
pub fn sample_input_bare() -> Input {
    let incident = Incident {
        id: 7,
        key: "user:7".to_owned(),
        source: Source::User,
        status: Status::Triggered,
        severity: Severity::Sev4,
        title: String::new(),
        service: String::new(),
        environment: String::new(),
        hosts: BTreeSet::new(),
        owner: None,
        opened_at: DETECTED,
        acknowledged_at: None,
        mitigated_at: None,
        resolved_at: None,
        alerts: BTreeMap::new(),
        quiet_since: None,
        deployments: Vec::new(),
    };
    let mut opened = TimelineEntry::new(
        DETECTED,
        "user:bob",
        EntryKind::Opened,
        "SEV4 incident reported by user:bob",
    );
    opened.id = 1;
    Input {
        incident,
        timeline: vec![opened],
        deployments: Vec::new(),
        leads: Vec::new(),
        chart: None,
        impact_start: None,
        recovery_seconds: None,
        generated_at: DETECTED + 5 * MINUTE,
    }
}
