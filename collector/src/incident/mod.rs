//! Incidents and deployments: alerts become incidents people can work, deployments become
//! data, and the two together feed DORA (`crate::dora`).
//!
//! - `core` (pure): the incident engine. Firing alerts open incidents, one per deduplication
//!   key (the alert's route group key by default), later alerts join, and an incident whose
//!   alerts have all resolved and stayed resolved for `resolve_after` resolves itself. Manual
//!   operations (ack, mitigate, resolve, notes, severity, owner, deployment links) are pure
//!   transitions that return the new record and its timeline entries.
//! - `manager`: the task that owns the engine, persists every change (the record and its
//!   timeline entries in one transaction) before announcing it, and turns incident events into
//!   alerts for the routing tree (`redline_incident` label).
//! - `deployment`, `github`, `time`: validated deployment records from the API, the CLI and
//!   GitHub's `deployment_status` webhook.
//! - `cli`: the same operations from the command line, over the HTTP API.

pub mod cli;
pub mod core;
pub mod deployment;
pub mod dora;
pub mod github;
pub mod manager;
pub mod time;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::notify::LabelSet;

pub type IncidentId = i64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Triggered,
    Acknowledged,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Triggered => "triggered",
            Status::Acknowledged => "acknowledged",
            Status::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "triggered" => Some(Status::Triggered),
            "acknowledged" => Some(Status::Acknowledged),
            "resolved" => Some(Status::Resolved),
            _ => None,
        }
    }
}

/// SEV1 is the worst. Ordered so that `min` is the most severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Severity {
    #[serde(rename = "SEV1")]
    Sev1,
    #[serde(rename = "SEV2")]
    Sev2,
    #[serde(rename = "SEV3")]
    Sev3,
    #[serde(rename = "SEV4")]
    Sev4,
}

impl Severity {
    /// The mapping of an alert's `severity` label (case-insensitive): `critical`, `page`,
    /// `emergency`, `sev1`, `p1` → SEV1; `error`, `high`, `major`, `sev2`, `p2` → SEV2;
    /// `warning`, `warn`, `medium`, `minor`, `sev3`, `p3` → SEV3; anything else, or no label,
    /// → SEV4 (PagerDuty's critical/error/warning/info, and the Prometheus conventions).
    pub fn from_label(value: Option<&str>) -> Severity {
        let v = value.unwrap_or("").trim().to_ascii_lowercase();
        match v.as_str() {
            "critical" | "page" | "emergency" | "sev1" | "p1" => Severity::Sev1,
            "error" | "high" | "major" | "sev2" | "p2" => Severity::Sev2,
            "warning" | "warn" | "medium" | "minor" | "sev3" | "p3" => Severity::Sev3,
            _ => Severity::Sev4,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Sev1 => "SEV1",
            Severity::Sev2 => "SEV2",
            Severity::Sev3 => "SEV3",
            Severity::Sev4 => "SEV4",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        match text.to_ascii_uppercase().as_str() {
            "SEV1" => Some(Severity::Sev1),
            "SEV2" => Some(Severity::Sev2),
            "SEV3" => Some(Severity::Sev3),
            "SEV4" => Some(Severity::Sev4),
            _ => None,
        }
    }
}

/// Where an incident came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Opened by firing alerts.
    Alert,
    /// Reported by a person (`POST /api/v1/incidents`), including imported history.
    User,
}

/// An alert that belongs to an incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberAlert {
    pub labels: LabelSet,
    pub firing: bool,
    #[serde(with = "time::rfc3339")]
    pub starts_at: i64,
    #[serde(default, with = "time::rfc3339_opt")]
    pub ends_at: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    /// Linked automatically: the latest deployment of the service and environment that
    /// finished shortly before the incident opened.
    Suspected,
    /// Linked or confirmed by a person.
    Confirmed,
}

/// A deployment linked to an incident as its (suspected or confirmed) cause. A link removed by
/// hand disappears from the record (the timeline keeps the history).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentLink {
    pub deployment_id: String,
    pub kind: LinkKind,
    #[serde(with = "time::rfc3339")]
    pub linked_at: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: IncidentId,
    /// The deduplication key: alerts with this key join the incident while it is open.
    pub key: String,
    pub source: Source,
    pub status: Status,
    pub severity: Severity,
    pub title: String,
    pub service: String,
    pub environment: String,
    pub hosts: BTreeSet<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(with = "time::rfc3339")]
    pub opened_at: i64,
    #[serde(default, with = "time::rfc3339_opt")]
    pub acknowledged_at: Option<i64>,
    #[serde(default, with = "time::rfc3339_opt")]
    pub mitigated_at: Option<i64>,
    #[serde(default, with = "time::rfc3339_opt")]
    pub resolved_at: Option<i64>,
    /// Member alerts by fingerprint (16 hex digits, as Alertmanager prints them).
    #[serde(default)]
    pub alerts: BTreeMap<String, MemberAlert>,
    /// Since when every member alert has been resolved (auto-resolution counts from here).
    #[serde(default, with = "time::rfc3339_opt")]
    pub quiet_since: Option<i64>,
    #[serde(default)]
    pub deployments: Vec<DeploymentLink>,
}

impl Incident {
    pub fn is_open(&self) -> bool {
        self.status != Status::Resolved
    }

    pub fn firing_alerts(&self) -> usize {
        self.alerts.values().filter(|a| a.firing).count()
    }
}

/// Who did something.
pub const ACTOR_COLLECTOR: &str = "collector";

/// What a timeline entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Opened,
    AlertFiring,
    AlertResolved,
    Acknowledged,
    Mitigated,
    Resolved,
    SeverityChanged,
    OwnerChanged,
    TitleChanged,
    Note,
    DeploymentSuspected,
    DeploymentLinked,
    DeploymentUnlinked,
    /// A deployment of the incident's service and environment finished while it was open, or
    /// a deployment says it fixes the incident.
    Deployment,
    NotificationSent,
    NotificationFailed,
    AnomalyPeak,
    /// A post-deploy verification analysis or verdict.
    Verification,
    /// A rollback decision, approval or result.
    Rollback,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Opened => "opened",
            EntryKind::AlertFiring => "alert_firing",
            EntryKind::AlertResolved => "alert_resolved",
            EntryKind::Acknowledged => "acknowledged",
            EntryKind::Mitigated => "mitigated",
            EntryKind::Resolved => "resolved",
            EntryKind::SeverityChanged => "severity_changed",
            EntryKind::OwnerChanged => "owner_changed",
            EntryKind::TitleChanged => "title_changed",
            EntryKind::Note => "note",
            EntryKind::DeploymentSuspected => "deployment_suspected",
            EntryKind::DeploymentLinked => "deployment_linked",
            EntryKind::DeploymentUnlinked => "deployment_unlinked",
            EntryKind::Deployment => "deployment",
            EntryKind::NotificationSent => "notification_sent",
            EntryKind::NotificationFailed => "notification_failed",
            EntryKind::AnomalyPeak => "anomaly_peak",
            EntryKind::Verification => "verification",
            EntryKind::Rollback => "rollback",
        }
    }

    pub fn parse(text: &str) -> Option<EntryKind> {
        ALL_KINDS.iter().copied().find(|k| k.as_str() == text)
    }
}

const ALL_KINDS: [EntryKind; 19] = [
    EntryKind::Opened,
    EntryKind::AlertFiring,
    EntryKind::AlertResolved,
    EntryKind::Acknowledged,
    EntryKind::Mitigated,
    EntryKind::Resolved,
    EntryKind::SeverityChanged,
    EntryKind::OwnerChanged,
    EntryKind::TitleChanged,
    EntryKind::Note,
    EntryKind::DeploymentSuspected,
    EntryKind::DeploymentLinked,
    EntryKind::DeploymentUnlinked,
    EntryKind::Deployment,
    EntryKind::NotificationSent,
    EntryKind::NotificationFailed,
    EntryKind::AnomalyPeak,
    EntryKind::Verification,
    EntryKind::Rollback,
];

/// One line of an incident's append-only timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// Assigned by the store (increasing); 0 before it is stored.
    #[serde(default)]
    pub id: i64,
    #[serde(with = "time::rfc3339")]
    pub at: i64,
    /// `collector`, `user:<name>`, `integration:<receiver/kind/index>`, `api`.
    pub actor: String,
    pub kind: EntryKind,
    pub message: String,
    /// References: `alert` (fingerprint), `deployment`, `integration`, `metric`, …
    #[serde(default)]
    pub refs: BTreeMap<String, String>,
}

impl TimelineEntry {
    pub fn new(at: i64, actor: &str, kind: EntryKind, message: impl Into<String>) -> Self {
        TimelineEntry {
            id: 0,
            at,
            actor: actor.to_owned(),
            kind,
            message: message.into(),
            refs: BTreeMap::new(),
        }
    }

    pub fn with_ref(mut self, name: &str, value: impl Into<String>) -> Self {
        self.refs.insert(name.to_owned(), value.into());
        self
    }
}

/// The service an alert's labels name: `service`, then `service_name` (OpenTelemetry's
/// `service.name`), then `job`.
pub fn service_of(labels: &LabelSet) -> String {
    first_label(labels, &["service", "service_name", "job"])
}

/// The environment: `environment`, `env`, `deployment_environment_name`,
/// `deployment_environment` (OpenTelemetry's attribute, old and new).
pub fn environment_of(labels: &LabelSet) -> String {
    first_label(
        labels,
        &[
            "environment",
            "env",
            "deployment_environment_name",
            "deployment_environment",
        ],
    )
}

/// The host: `host_name` (OpenTelemetry's `host.name`), `host`, then `instance`.
pub fn host_of(labels: &LabelSet) -> Option<String> {
    let h = first_label(labels, &["host_name", "host", "instance"]);
    (!h.is_empty()).then_some(h)
}

fn first_label(labels: &LabelSet, names: &[&str]) -> String {
    names
        .iter()
        .filter_map(|n| labels.get(*n))
        .find(|v| !v.is_empty())
        .cloned()
        .unwrap_or_default()
}
