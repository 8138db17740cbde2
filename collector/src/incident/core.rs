//! The incident engine: pure, no I/O, time passed in.
//!
//! Lifecycle of an alert-opened incident:
//! 1. A firing alert whose fingerprint belongs to no open incident computes its key
//!    (`Engine::key_for`: its route group key, or the configured `group_by` labels). If an open
//!    incident has that key, the alert joins it; otherwise a new incident opens (`triggered`),
//!    with severity, title, service, environment and host taken from the alert, and the latest
//!    successful deployment of the same service and environment that finished within
//!    `suspect_window` before it linked as the suspected cause.
//! 2. Alerts join and resolve; the incident's severity follows its most severe alert until a
//!    person sets it. When every member alert has resolved, `quiet_since` is set; a new firing
//!    alert clears it.
//! 3. `tick` resolves incidents quiet for `resolve_after`. A person can acknowledge, mark
//!    mitigated and resolve at any time; a resolved incident takes no new alerts (a later
//!    firing alert with the same key opens a new incident), but notes and deployment links can
//!    still be added to it (post-mortems happen afterwards).
//! 4. An alert still firing when a person resolved its incident does not reopen anything:
//!    only a new firing episode of it (a new `starts_at`) does.
//!
//! Every change returns the full record, the timeline entries it adds, and whether the
//! routing tree is to hear about it (`Announcement`); the manager persists the first two in
//! one transaction and only then announces.

use std::collections::{BTreeMap, HashMap};

use super::{
    ACTOR_COLLECTOR, DeploymentLink, EntryKind, Incident, IncidentId, LinkKind, MemberAlert,
    Severity, Source, Status, TimelineEntry, environment_of, host_of, service_of,
};
use crate::alert::route::format_label_set;
use crate::notify::{LabelSet, NotifyAlert};

/// The engine's settings (`incidents.*` in the configuration).
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// An incident whose alerts have all been resolved this long resolves itself.
    pub resolve_after_ms: i64,
    /// How long before an incident opens a deployment can have finished to be suspected.
    pub suspect_window_ms: i64,
    /// Deduplicate by these labels instead of the route group key.
    pub group_by: Option<Vec<String>>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            resolve_after_ms: 5 * 60_000,
            suspect_window_ms: 2 * 3_600_000,
            group_by: None,
        }
    }
}

/// What the engine needs to know of a deployment to suspect it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploymentMark {
    pub id: String,
    pub service: String,
    pub environment: String,
    pub version: String,
    pub finished_at: i64,
    pub success: bool,
    /// A rollback restores a known version: it is never the suspected cause.
    pub is_rollback: bool,
}

/// Which incident events the routing tree hears about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Announcement {
    Opened,
    Acknowledged,
    Resolved,
}

impl Announcement {
    pub fn as_str(self) -> &'static str {
        match self {
            Announcement::Opened => "opened",
            Announcement::Acknowledged => "acknowledged",
            Announcement::Resolved => "resolved",
        }
    }
}

/// One change to one incident.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub incident: Incident,
    pub entries: Vec<TimelineEntry>,
    pub announce: Option<Announcement>,
}

/// A manual operation.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Acknowledge,
    /// Mitigated at the given time (default now).
    Mitigate(Option<i64>),
    Resolve,
    Note(String),
    Severity(Severity),
    Owner(Option<String>),
    Title(String),
    /// Link (or confirm a suspected link to) a deployment, known to exist.
    Link(String),
    Unlink(String),
    /// A deployment says it fixes this incident (timeline only).
    FixedBy(DeploymentMark),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// The operation does not apply in the incident's state (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// A field is wrong (HTTP 422).
    #[error("{field}: {problem}")]
    Invalid { field: String, problem: String },
}

fn invalid(field: &str, problem: impl Into<String>) -> OpError {
    OpError::Invalid {
        field: field.to_owned(),
        problem: problem.into(),
    }
}

/// A user-reported (or imported) incident, validated by `Engine::report`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewIncident {
    pub title: String,
    pub service: String,
    pub environment: String,
    pub severity: Option<Severity>,
    pub owner: Option<String>,
    pub hosts: Vec<String>,
    pub opened_at: Option<i64>,
    pub acknowledged_at: Option<i64>,
    pub mitigated_at: Option<i64>,
    pub resolved_at: Option<i64>,
    /// Deployments to link as confirmed causes (known to exist).
    pub deployments: Vec<String>,
    pub note: Option<String>,
}

/// Longest note, title or owner accepted.
pub const MAX_TEXT: usize = 16 * 1024;
/// How far in the future a client's clock may be.
const CLOCK_SKEW_MS: i64 = 5 * 60_000;

pub struct Engine {
    policy: Policy,
    open: BTreeMap<IncidentId, Incident>,
    by_key: HashMap<String, IncidentId>,
    by_fingerprint: HashMap<String, IncidentId>,
    next_id: IncidentId,
    /// Finished deployments of the last `suspect_window` (oldest first).
    deployments: Vec<DeploymentMark>,
    /// Alerts still firing when a person resolved their incident: fingerprint → `starts_at`
    /// of that firing episode, which must not open a new incident.
    hand_closed: HashMap<String, i64>,
    /// Whether a person set the severity (it then no longer follows the alerts).
    severity_pinned: std::collections::HashSet<IncidentId>,
}

fn fingerprint_hex(labels: &LabelSet) -> String {
    format!("{:016x}", crate::notify::fingerprint(labels))
}

fn alert_name(labels: &LabelSet) -> String {
    let name = labels.get("alertname").cloned().unwrap_or_default();
    let rest: LabelSet = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    format!("{name}{}", format_label_set(&rest))
}

impl Engine {
    /// `open` are the incidents not resolved (loaded from the store at start), `next_id` the
    /// first unused id, `deployments` the recently finished ones.
    pub fn new(
        policy: Policy,
        next_id: IncidentId,
        open: Vec<Incident>,
        deployments: Vec<DeploymentMark>,
    ) -> Engine {
        let mut engine = Engine {
            policy,
            open: BTreeMap::new(),
            by_key: HashMap::new(),
            by_fingerprint: HashMap::new(),
            next_id: next_id.max(1),
            deployments: Vec::new(),
            hand_closed: HashMap::new(),
            severity_pinned: Default::default(),
        };
        for incident in open.into_iter().filter(Incident::is_open) {
            engine.next_id = engine.next_id.max(incident.id + 1);
            engine.index(incident);
        }
        for d in deployments {
            engine.remember(d);
        }
        engine
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn open_incident(&self, id: IncidentId) -> Option<&Incident> {
        self.open.get(&id)
    }

    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    fn index(&mut self, incident: Incident) {
        if incident.source == Source::Alert {
            self.by_key.insert(incident.key.clone(), incident.id);
        }
        for fp in incident.alerts.keys() {
            self.by_fingerprint.insert(fp.clone(), incident.id);
        }
        self.open.insert(incident.id, incident);
    }

    fn unindex(&mut self, id: IncidentId) {
        if let Some(incident) = self.open.remove(&id) {
            if self.by_key.get(&incident.key) == Some(&id) {
                self.by_key.remove(&incident.key);
            }
            for fp in incident.alerts.keys() {
                if self.by_fingerprint.get(fp) == Some(&id) {
                    self.by_fingerprint.remove(fp);
                }
            }
        }
        self.severity_pinned.remove(&id);
    }

    /// Keeps or drops the record in the open index after a change.
    fn store(&mut self, incident: &Incident) {
        if incident.is_open() {
            self.index(incident.clone());
        } else {
            // Alerts still firing at a manual resolution must not reopen it at once.
            for (fp, a) in &incident.alerts {
                if a.firing {
                    self.hand_closed.insert(fp.clone(), a.starts_at);
                }
            }
            self.unindex(incident.id);
        }
    }

    /// The deduplication key of an alert routed with `route_group_key`.
    pub fn key_for(&self, route_group_key: &str, labels: &LabelSet) -> String {
        match &self.policy.group_by {
            Some(names) => {
                let picked: LabelSet = names
                    .iter()
                    .filter_map(|n| labels.get(n).map(|v| (n.clone(), v.clone())))
                    .collect();
                format!("by:{}", format_label_set(&picked))
            }
            None => route_group_key.to_owned(),
        }
    }

    /// Remembers a finished deployment (for suspicion) and forgets those too old to matter.
    pub fn remember(&mut self, mark: DeploymentMark) {
        let pos = self
            .deployments
            .partition_point(|d| d.finished_at <= mark.finished_at);
        self.deployments.insert(pos, mark);
        if self.deployments.len() > 10_000 {
            self.deployments.remove(0);
        }
    }

    fn prune_deployments(&mut self, now: i64) {
        let cutoff = now - self.policy.suspect_window_ms;
        let keep_from = self.deployments.partition_point(|d| d.finished_at < cutoff);
        self.deployments.drain(..keep_from);
    }

    /// The deployment to suspect for an incident of `service`/`environment` opened at `at`,
    /// among `candidates`: the latest successful one that finished within the window before,
    /// rollbacks excepted (they restore a version that ran before).
    pub fn suspect<'a>(
        &self,
        candidates: impl IntoIterator<Item = &'a DeploymentMark>,
        service: &str,
        environment: &str,
        at: i64,
    ) -> Option<DeploymentMark> {
        if service.is_empty() {
            return None;
        }
        candidates
            .into_iter()
            .filter(|d| {
                d.success
                    && !d.is_rollback
                    && d.service == service
                    && d.environment == environment
                    && d.finished_at <= at
                    && d.finished_at >= at - self.policy.suspect_window_ms
            })
            .max_by(|a, b| (a.finished_at, &a.id).cmp(&(b.finished_at, &b.id)))
            .cloned()
    }

    /// An alert transition (firing or resolved) routed with `route_group_key`.
    pub fn alert(
        &mut self,
        route_group_key: &str,
        alert: &NotifyAlert,
        now: i64,
    ) -> Option<Change> {
        // Redline's own announcements (incidents, rollbacks) are not incidents.
        if alert.labels.contains_key(super::manager::INCIDENT_LABEL)
            || alert
                .labels
                .contains_key(crate::verify::task::ROLLBACK_LABEL)
        {
            return None;
        }
        let fp = fingerprint_hex(&alert.labels);
        let firing = !alert.resolved_at(now);
        if let Some(&id) = self.by_fingerprint.get(&fp) {
            return self.update_member(id, &fp, alert, firing, now);
        }
        if !firing {
            self.hand_closed.remove(&fp);
            return None;
        }
        if self.hand_closed.get(&fp) == Some(&alert.starts_at_ms) {
            return None;
        }
        self.hand_closed.remove(&fp);
        let key = self.key_for(route_group_key, &alert.labels);
        if let Some(&id) = self.by_key.get(&key) {
            return self.update_member(id, &fp, alert, true, now);
        }
        Some(self.open_from_alert(key, fp, alert, now))
    }

    fn open_from_alert(
        &mut self,
        key: String,
        fp: String,
        alert: &NotifyAlert,
        now: i64,
    ) -> Change {
        self.prune_deployments(now);
        let id = self.next_id;
        self.next_id += 1;
        let labels = &alert.labels;
        let service = service_of(labels);
        let environment = environment_of(labels);
        let title = alert
            .annotations
            .get("summary")
            .filter(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| labels.get("alertname").cloned().unwrap_or_default());
        let mut incident = Incident {
            id,
            key,
            source: Source::Alert,
            status: Status::Triggered,
            severity: Severity::from_label(labels.get("severity").map(String::as_str)),
            title,
            service,
            environment,
            hosts: host_of(labels).into_iter().collect(),
            owner: None,
            opened_at: now,
            acknowledged_at: None,
            mitigated_at: None,
            resolved_at: None,
            alerts: BTreeMap::new(),
            quiet_since: None,
            deployments: Vec::new(),
        };
        let mut entries = vec![
            TimelineEntry::new(
                now,
                ACTOR_COLLECTOR,
                EntryKind::Opened,
                format!(
                    "{} incident opened by alert {}",
                    incident.severity.as_str(),
                    alert_name(labels)
                ),
            )
            .with_ref("alert", fp.clone()),
        ];
        entries.push(
            TimelineEntry::new(
                alert.starts_at_ms.min(now),
                ACTOR_COLLECTOR,
                EntryKind::AlertFiring,
                format!("alert {} firing", alert_name(labels)),
            )
            .with_ref("alert", fp.clone()),
        );
        incident.alerts.insert(
            fp,
            MemberAlert {
                labels: labels.clone(),
                firing: true,
                starts_at: alert.starts_at_ms,
                ends_at: None,
            },
        );
        let suspect = self.suspect(
            &self.deployments,
            &incident.service,
            &incident.environment,
            now,
        );
        if let Some(d) = suspect {
            entries.push(suspect_entry(&d, now));
            incident.deployments.push(DeploymentLink {
                deployment_id: d.id.clone(),
                kind: LinkKind::Suspected,
                linked_at: now,
            });
        }
        self.index(incident.clone());
        Change {
            incident,
            entries,
            announce: Some(Announcement::Opened),
        }
    }

    fn update_member(
        &mut self,
        id: IncidentId,
        fp: &str,
        alert: &NotifyAlert,
        firing: bool,
        now: i64,
    ) -> Option<Change> {
        let pinned = self.severity_pinned.contains(&id);
        let incident = self.open.get_mut(&id)?;
        let mut entries = Vec::new();
        let name = alert_name(&alert.labels);
        match incident.alerts.get_mut(fp) {
            Some(member) if member.firing == firing && member.starts_at == alert.starts_at_ms => {
                // A re-announcement: nothing new.
                return None;
            }
            Some(member) => {
                member.firing = firing;
                member.starts_at = alert.starts_at_ms;
                member.ends_at = if firing { None } else { alert.ends_at_ms };
            }
            None if !firing => return None,
            None => {
                incident.alerts.insert(
                    fp.to_owned(),
                    MemberAlert {
                        labels: alert.labels.clone(),
                        firing: true,
                        starts_at: alert.starts_at_ms,
                        ends_at: None,
                    },
                );
                if let Some(h) = host_of(&alert.labels) {
                    incident.hosts.insert(h);
                }
            }
        }
        let at = if firing {
            alert.starts_at_ms.min(now)
        } else {
            alert.ends_at_ms.unwrap_or(now).min(now)
        };
        let (kind, verb) = if firing {
            (EntryKind::AlertFiring, "firing")
        } else {
            (EntryKind::AlertResolved, "resolved")
        };
        entries.push(
            TimelineEntry::new(at, ACTOR_COLLECTOR, kind, format!("alert {name} {verb}"))
                .with_ref("alert", fp),
        );
        if firing {
            incident.quiet_since = None;
            let severity = Severity::from_label(alert.labels.get("severity").map(String::as_str));
            if !pinned && severity < incident.severity {
                entries.push(TimelineEntry::new(
                    now,
                    ACTOR_COLLECTOR,
                    EntryKind::SeverityChanged,
                    format!(
                        "severity raised from {} to {} by alert {name}",
                        incident.severity.as_str(),
                        severity.as_str()
                    ),
                ));
                incident.severity = severity;
            }
        } else if incident.firing_alerts() == 0 {
            incident.quiet_since = Some(now);
        }
        let incident = incident.clone();
        self.index(incident.clone());
        Some(Change {
            incident,
            entries,
            announce: None,
        })
    }

    /// When `tick` next has something to do.
    pub fn next_due(&self) -> Option<i64> {
        self.open
            .values()
            .filter(|i| i.source == Source::Alert)
            .filter_map(|i| i.quiet_since)
            .map(|q| q + self.policy.resolve_after_ms)
            .min()
    }

    /// Resolves the incidents whose alerts have all stayed resolved for `resolve_after`.
    pub fn tick(&mut self, now: i64) -> Vec<Change> {
        let due: Vec<IncidentId> = self
            .open
            .values()
            .filter(|i| i.source == Source::Alert)
            .filter(|i| {
                i.quiet_since
                    .is_some_and(|q| q + self.policy.resolve_after_ms <= now)
            })
            .map(|i| i.id)
            .collect();
        let mut changes = Vec::new();
        for id in due {
            let Some(mut incident) = self.open.get(&id).cloned() else {
                continue;
            };
            incident.status = Status::Resolved;
            incident.resolved_at = Some(now);
            let entry = TimelineEntry::new(
                now,
                ACTOR_COLLECTOR,
                EntryKind::Resolved,
                format!(
                    "resolved automatically: every alert resolved {} s ago",
                    self.policy.resolve_after_ms / 1000
                ),
            );
            self.store(&incident);
            changes.push(Change {
                incident,
                entries: vec![entry],
                announce: Some(Announcement::Resolved),
            });
        }
        changes
    }

    /// Applies a manual operation to `current` (the stored record, or the open one).
    pub fn apply(
        &mut self,
        current: Incident,
        op: Op,
        actor: &str,
        now: i64,
    ) -> Result<Change, OpError> {
        // The engine's copy of an open incident is the authority.
        let mut incident = self.open.get(&current.id).cloned().unwrap_or(current);
        let id = incident.id;
        let mut announce = None;
        let entry = match op {
            Op::Acknowledge => {
                match incident.status {
                    Status::Resolved => {
                        return Err(OpError::Conflict(format!("incident {id} is resolved")));
                    }
                    Status::Acknowledged => return Ok(unchanged(incident)),
                    Status::Triggered => {}
                }
                incident.status = Status::Acknowledged;
                incident.acknowledged_at = Some(now);
                announce = Some(Announcement::Acknowledged);
                TimelineEntry::new(
                    now,
                    actor,
                    EntryKind::Acknowledged,
                    format!("acknowledged by {actor}"),
                )
            }
            Op::Mitigate(at) => {
                if incident.status == Status::Resolved {
                    return Err(OpError::Conflict(format!("incident {id} is resolved")));
                }
                if incident.mitigated_at.is_some() {
                    return Ok(unchanged(incident));
                }
                let at = at.unwrap_or(now);
                if at < incident.opened_at || at > now + CLOCK_SKEW_MS {
                    return Err(invalid(
                        "mitigated_at",
                        "must lie between the incident's opening and now",
                    ));
                }
                incident.mitigated_at = Some(at);
                TimelineEntry::new(
                    at,
                    actor,
                    EntryKind::Mitigated,
                    format!("marked mitigated by {actor}"),
                )
            }
            Op::Resolve => {
                if incident.status == Status::Resolved {
                    return Ok(unchanged(incident));
                }
                incident.status = Status::Resolved;
                incident.resolved_at = Some(now);
                announce = Some(Announcement::Resolved);
                let firing = incident.firing_alerts();
                let message = if firing > 0 {
                    format!("resolved by {actor} while {firing} of its alerts still fire")
                } else {
                    format!("resolved by {actor}")
                };
                TimelineEntry::new(now, actor, EntryKind::Resolved, message)
            }
            Op::Note(text) => {
                check_text("note", &text, true)?;
                TimelineEntry::new(now, actor, EntryKind::Note, text)
            }
            Op::Severity(severity) => {
                if severity == incident.severity {
                    self.severity_pinned.insert(id);
                    return Ok(unchanged(incident));
                }
                let entry = TimelineEntry::new(
                    now,
                    actor,
                    EntryKind::SeverityChanged,
                    format!(
                        "severity changed from {} to {} by {actor}",
                        incident.severity.as_str(),
                        severity.as_str()
                    ),
                );
                incident.severity = severity;
                self.severity_pinned.insert(id);
                entry
            }
            Op::Owner(owner) => {
                if let Some(o) = &owner {
                    check_text("owner", o, true)?;
                }
                if owner == incident.owner {
                    return Ok(unchanged(incident));
                }
                let message = match &owner {
                    Some(o) => format!("owner set to {o} by {actor}"),
                    None => format!("owner cleared by {actor}"),
                };
                incident.owner = owner;
                TimelineEntry::new(now, actor, EntryKind::OwnerChanged, message)
            }
            Op::Title(title) => {
                check_text("title", &title, true)?;
                if title == incident.title {
                    return Ok(unchanged(incident));
                }
                let message = format!("title changed from {:?} by {actor}", incident.title);
                incident.title = title;
                TimelineEntry::new(now, actor, EntryKind::TitleChanged, message)
            }
            Op::Link(deployment) => {
                match incident
                    .deployments
                    .iter_mut()
                    .find(|l| l.deployment_id == deployment)
                {
                    Some(link) if link.kind == LinkKind::Confirmed => {
                        return Ok(unchanged(incident));
                    }
                    Some(link) => {
                        link.kind = LinkKind::Confirmed;
                        link.linked_at = now;
                    }
                    None => incident.deployments.push(DeploymentLink {
                        deployment_id: deployment.clone(),
                        kind: LinkKind::Confirmed,
                        linked_at: now,
                    }),
                }
                TimelineEntry::new(
                    now,
                    actor,
                    EntryKind::DeploymentLinked,
                    format!("deployment {deployment} linked as a cause by {actor}"),
                )
                .with_ref("deployment", deployment)
            }
            Op::Unlink(deployment) => {
                let before = incident.deployments.len();
                incident
                    .deployments
                    .retain(|l| l.deployment_id != deployment);
                if incident.deployments.len() == before {
                    return Err(invalid(
                        "deployment",
                        format!("deployment {deployment} is not linked to incident {id}"),
                    ));
                }
                TimelineEntry::new(
                    now,
                    actor,
                    EntryKind::DeploymentUnlinked,
                    format!("deployment {deployment} unlinked by {actor}"),
                )
                .with_ref("deployment", deployment)
            }
            Op::FixedBy(d) => TimelineEntry::new(
                d.finished_at,
                actor,
                EntryKind::Deployment,
                format!(
                    "deployment {} of {} {} ({}) fixes this incident",
                    d.id, d.service, d.environment, d.version
                ),
            )
            .with_ref("deployment", d.id.clone()),
        };
        self.store(&incident);
        Ok(Change {
            incident,
            entries: vec![entry],
            announce,
        })
    }

    /// A deployment finished: a mark on the timeline of every open incident of its service
    /// and environment.
    pub fn deployment(&mut self, mark: DeploymentMark, now: i64) -> Vec<Change> {
        let changes = self
            .open
            .values()
            .filter(|i| i.service == mark.service && i.environment == mark.environment)
            .filter(|_| !mark.service.is_empty())
            .map(|i| Change {
                incident: i.clone(),
                entries: vec![
                    TimelineEntry::new(
                        mark.finished_at,
                        ACTOR_COLLECTOR,
                        EntryKind::Deployment,
                        format!(
                            "deployment {} ({}) of {} {} finished: {}",
                            mark.id,
                            mark.version,
                            mark.service,
                            mark.environment,
                            if mark.success { "success" } else { "failure" }
                        ),
                    )
                    .with_ref("deployment", mark.id.clone()),
                ],
                announce: None,
            })
            .collect();
        if mark.finished_at >= now - self.policy.suspect_window_ms {
            self.remember(mark);
        }
        changes
    }

    /// Adds a timeline entry to an open incident (notifications, anomaly peaks).
    pub fn annotate(&self, id: IncidentId, entry: TimelineEntry) -> Option<Change> {
        self.open.get(&id).map(|i| Change {
            incident: i.clone(),
            entries: vec![entry],
            announce: None,
        })
    }

    /// Open incidents that have any of these alerts (by fingerprint hex).
    pub fn incidents_of_alerts<'a>(
        &self,
        fingerprints: impl IntoIterator<Item = &'a str>,
    ) -> Vec<IncidentId> {
        let mut ids: Vec<IncidentId> = fingerprints
            .into_iter()
            .filter_map(|fp| self.by_fingerprint.get(fp).copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Open incidents a series with these labels concerns: same host, or same service (and
    /// environment, when both name one).
    pub fn incidents_of_series(&self, labels: &LabelSet) -> Vec<IncidentId> {
        self.open
            .values()
            .filter(|i| concerns(i, labels))
            .map(|i| i.id)
            .collect()
    }

    /// A user-reported or imported incident. `suspect` is the deployment to suspect when no
    /// deployment is named (the caller looks it up around `opened_at`).
    pub fn report(
        &mut self,
        new: NewIncident,
        suspect: Option<DeploymentMark>,
        actor: &str,
        now: i64,
    ) -> Result<Change, OpError> {
        check_text("title", &new.title, true)?;
        check_text("service", &new.service, false)?;
        check_text("environment", &new.environment, false)?;
        if let Some(o) = &new.owner {
            check_text("owner", o, true)?;
        }
        if let Some(n) = &new.note {
            check_text("note", n, true)?;
        }
        let opened_at = new.opened_at.unwrap_or(now);
        let times = [
            ("opened_at", Some(opened_at)),
            ("acknowledged_at", new.acknowledged_at),
            ("mitigated_at", new.mitigated_at),
            ("resolved_at", new.resolved_at),
        ];
        for (field, t) in times {
            if t.is_some_and(|t| t > now + CLOCK_SKEW_MS) {
                return Err(invalid(field, "is in the future"));
            }
            if t.is_some_and(|t| t < opened_at) {
                return Err(invalid(field, "is before opened_at"));
            }
        }
        if let (Some(a), Some(r)) = (new.acknowledged_at, new.resolved_at)
            && a > r
        {
            return Err(invalid("acknowledged_at", "is after resolved_at"));
        }
        if let (Some(m), Some(r)) = (new.mitigated_at, new.resolved_at)
            && m > r
        {
            return Err(invalid("mitigated_at", "is after resolved_at"));
        }
        let id = self.next_id;
        self.next_id += 1;
        let status = match (new.resolved_at, new.acknowledged_at) {
            (Some(_), _) => Status::Resolved,
            (None, Some(_)) => Status::Acknowledged,
            (None, None) => Status::Triggered,
        };
        let severity = new.severity.unwrap_or(Severity::Sev3);
        let mut incident = Incident {
            id,
            key: format!("user:{id}"),
            source: Source::User,
            status,
            severity,
            title: new.title,
            service: new.service,
            environment: new.environment,
            hosts: new.hosts.into_iter().filter(|h| !h.is_empty()).collect(),
            owner: new.owner,
            opened_at,
            acknowledged_at: new.acknowledged_at,
            mitigated_at: new.mitigated_at,
            resolved_at: new.resolved_at,
            alerts: BTreeMap::new(),
            quiet_since: None,
            deployments: Vec::new(),
        };
        let mut entries = vec![TimelineEntry::new(
            opened_at,
            actor,
            EntryKind::Opened,
            format!("{} incident reported by {actor}", severity.as_str()),
        )];
        if let Some(t) = incident.acknowledged_at {
            entries.push(TimelineEntry::new(
                t,
                actor,
                EntryKind::Acknowledged,
                "acknowledged",
            ));
        }
        if let Some(t) = incident.mitigated_at {
            entries.push(TimelineEntry::new(
                t,
                actor,
                EntryKind::Mitigated,
                "mitigated",
            ));
        }
        if let Some(note) = new.note {
            entries.push(TimelineEntry::new(now, actor, EntryKind::Note, note));
        }
        for d in new.deployments {
            if incident.deployments.iter().any(|l| l.deployment_id == d) {
                continue;
            }
            entries.push(
                TimelineEntry::new(
                    now,
                    actor,
                    EntryKind::DeploymentLinked,
                    format!("deployment {d} linked as a cause by {actor}"),
                )
                .with_ref("deployment", d.clone()),
            );
            incident.deployments.push(DeploymentLink {
                deployment_id: d,
                kind: LinkKind::Confirmed,
                linked_at: now,
            });
        }
        if incident.deployments.is_empty()
            && let Some(d) = suspect
        {
            entries.push(suspect_entry(&d, opened_at));
            incident.deployments.push(DeploymentLink {
                deployment_id: d.id,
                kind: LinkKind::Suspected,
                linked_at: now,
            });
        }
        if let Some(t) = incident.resolved_at {
            entries.push(TimelineEntry::new(
                t,
                actor,
                EntryKind::Resolved,
                "resolved",
            ));
        }
        entries.sort_by_key(|e| e.at);
        let announce = incident.is_open().then_some(Announcement::Opened);
        self.store(&incident);
        Ok(Change {
            incident,
            entries,
            announce,
        })
    }
}

/// Whether a series with these labels concerns the incident: same host, or same service (and
/// environment, when both name one).
pub fn concerns(incident: &Incident, labels: &LabelSet) -> bool {
    let same_host = host_of(labels).is_some_and(|h| incident.hosts.contains(&h));
    let service = service_of(labels);
    let environment = environment_of(labels);
    let same_service = !service.is_empty()
        && incident.service == service
        && (environment.is_empty()
            || incident.environment.is_empty()
            || incident.environment == environment);
    same_host || same_service
}

fn suspect_entry(d: &DeploymentMark, at: i64) -> TimelineEntry {
    TimelineEntry::new(
        at,
        ACTOR_COLLECTOR,
        EntryKind::DeploymentSuspected,
        format!(
            "deployment {} ({}) of {} {}, finished {} s before, is the suspected cause",
            d.id,
            d.version,
            d.service,
            d.environment,
            (at - d.finished_at) / 1000
        ),
    )
    .with_ref("deployment", d.id.clone())
}

fn unchanged(incident: Incident) -> Change {
    Change {
        incident,
        entries: Vec::new(),
        announce: None,
    }
}

fn check_text(field: &str, value: &str, required: bool) -> Result<(), OpError> {
    if required && value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.len() > MAX_TEXT {
        return Err(invalid(
            field,
            format!("is {} bytes long; the limit is {MAX_TEXT}", value.len()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
