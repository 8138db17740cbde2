//! The incident manager: the task that owns the incident engine (`core::Engine`).
//!
//! Inputs, all through one bounded channel (`IncidentHandle`):
//! - alert transitions with their route group key, from the dispatcher (which waits when the
//!   channel is full: nothing is dropped);
//! - manual operations, reports and deployments from the API (each with a reply);
//! - notification outcomes from the outbox worker and anomaly peaks from the detection task
//!   (offered with `try_send`: under overload these timeline notes are dropped and counted
//!   rather than slowing delivery or detection).
//!
//! Every change is saved (record and timeline entries, one transaction) before it is
//! announced. Announcements become alerts with a `redline_incident` label for the routing
//! tree. The dispatcher may itself be waiting on this task's channel, so the manager never
//! waits on the dispatcher's: it queues announcements (bounded) and offers them with
//! `try_send_alerts` on every turn of its loop.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use super::core::{Announcement, Change, DeploymentMark, Engine, NewIncident, Op, OpError, Policy};
use super::deployment::{Deployment, DeploymentStatus};
use super::{ACTOR_COLLECTOR, EntryKind, Incident, IncidentId, TimelineEntry};
use crate::alert::dispatcher::DispatcherHandle;
use crate::clock::Clock;
use crate::model::{Labels, Sample, SeriesSamples};
use crate::notify::{LabelSet, NotifyAlert};
use crate::store::{PutDeployment, Store, StoreError, WriteBatch};

/// The label that marks incident announcements (routes can match on it).
pub const INCIDENT_LABEL: &str = "redline_incident";
/// The event of an announcement: `opened`, `acknowledged`.
pub const INCIDENT_EVENT_LABEL: &str = "redline_incident_event";
/// Announcements waiting for room in the dispatcher's queue; beyond this they are dropped
/// (counted).
const MAX_PENDING_ANNOUNCEMENTS: usize = 10_000;
/// An anomaly peak of one series is noted on an incident at most this often.
const ANOMALY_NOTE_INTERVAL_MS: i64 = 10 * 60_000;
/// Anomaly peaks this long before an incident opens go on its timeline (they are usually what
/// led to it); at most `RECENT_PEAKS` are remembered.
const PEAK_LOOKBACK_MS: i64 = 15 * 60_000;
const RECENT_PEAKS: usize = 4096;
/// DORA gauges on `/metrics` are recomputed this often, over this trailing window.
const DORA_INTERVAL_MS: i64 = 60_000;
const DORA_WINDOW_MS: i64 = 30 * 86_400_000;

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Op(#[from] OpError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the incident manager is shutting down")]
    Stopped,
}

impl ManagerError {
    /// The HTTP status for the API.
    pub fn status(&self) -> u16 {
        match self {
            ManagerError::NotFound(_) => 404,
            ManagerError::Op(OpError::Conflict(_)) => 409,
            ManagerError::Op(OpError::Invalid { .. }) => 422,
            ManagerError::Store(_) | ManagerError::Stopped => 503,
        }
    }
}

/// What recording a deployment did.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DeploymentOutcome {
    pub created: bool,
    /// For a known id: whether the stored record differs from the one sent (which was not
    /// stored: ids are immutable).
    pub differs: bool,
    pub deployment: Deployment,
}

/// A notification outcome, from the outbox worker.
#[derive(Clone, Debug)]
pub struct DeliveryEvent {
    pub integration: String,
    pub delivered: bool,
    pub error: String,
    pub at: i64,
    pub alerts: Vec<LabelSet>,
}

/// A series' anomaly score crossed the detection threshold.
#[derive(Clone, Debug)]
pub struct AnomalyPeak {
    /// The scored series' labels (with `__name__`).
    pub labels: LabelSet,
    pub score: f64,
    pub at: i64,
}

type Reply<T> = oneshot::Sender<Result<T, ManagerError>>;

pub enum Command {
    Alerts(Vec<(String, NotifyAlert)>),
    Op {
        id: IncidentId,
        op: Op,
        actor: String,
        reply: Reply<Incident>,
    },
    Report {
        new: NewIncident,
        actor: String,
        reply: Reply<Incident>,
    },
    Deployment {
        deployment: Deployment,
        reply: Reply<DeploymentOutcome>,
    },
    Delivery(DeliveryEvent),
    Anomaly(AnomalyPeak),
    /// A timeline entry from another task (verification, rollbacks) for any incident.
    Note {
        id: IncidentId,
        entry: TimelineEntry,
    },
}

/// A cheap, cloneable handle to the manager.
#[derive(Clone)]
pub struct IncidentHandle {
    tx: mpsc::Sender<Command>,
}

impl IncidentHandle {
    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, ManagerError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| ManagerError::Stopped)?;
        rx.await.map_err(|_| ManagerError::Stopped)?
    }

    /// Alert transitions with their route group keys; waits for room.
    pub async fn alerts(&self, alerts: Vec<(String, NotifyAlert)>) {
        if !alerts.is_empty() && self.tx.send(Command::Alerts(alerts)).await.is_err() {
            tracing::debug!("incident manager stopped; alert transitions not recorded");
        }
    }

    pub async fn op(
        &self,
        id: IncidentId,
        op: Op,
        actor: String,
    ) -> Result<Incident, ManagerError> {
        self.ask(|reply| Command::Op {
            id,
            op,
            actor,
            reply,
        })
        .await
    }

    pub async fn report(&self, new: NewIncident, actor: String) -> Result<Incident, ManagerError> {
        self.ask(|reply| Command::Report { new, actor, reply })
            .await
    }

    pub async fn deployment(
        &self,
        deployment: Deployment,
    ) -> Result<DeploymentOutcome, ManagerError> {
        self.ask(|reply| Command::Deployment { deployment, reply })
            .await
    }

    /// Adds a timeline entry to an incident (open or resolved); waits for room.
    pub async fn note(&self, id: IncidentId, entry: TimelineEntry) {
        if self.tx.send(Command::Note { id, entry }).await.is_err() {
            tracing::debug!("incident manager stopped; timeline note not recorded");
        }
    }

    /// Offers a notification outcome; dropped (counted) when the manager is busy.
    pub fn delivery(&self, event: DeliveryEvent) {
        if self.tx.try_send(Command::Delivery(event)).is_err() {
            metrics::counter!("redline_collector_incident_notes_dropped_total", "kind" => "notification")
                .increment(1);
        }
    }

    /// Offers an anomaly peak; dropped (counted) when the manager is busy.
    pub fn anomaly(&self, peak: AnomalyPeak) {
        if self.tx.try_send(Command::Anomaly(peak)).is_err() {
            metrics::counter!("redline_collector_incident_notes_dropped_total", "kind" => "anomaly")
                .increment(1);
        }
    }
}

pub struct Manager {
    store: Store,
    engine: Engine,
    clock: Clock,
    commands: mpsc::Receiver<Command>,
    dispatcher: Option<DispatcherHandle>,
    external_url: String,
    pending: VecDeque<NotifyAlert>,
    /// (incident, series) → when its last anomaly peak was noted.
    anomaly_noted: HashMap<(IncidentId, String), i64>,
    /// Whether incidents or deployments changed since the DORA gauges were computed.
    dora_dirty: bool,
    /// The latest anomaly peaks, oldest first, for incidents that open after them.
    recent_peaks: VecDeque<AnomalyPeak>,
    /// Told when an open incident gets linked to a deployment (a rollback trigger).
    verifier: Option<crate::verify::task::VerifierHandle>,
}

impl Manager {
    /// Loads open incidents and recent deployments from the store.
    pub async fn new(
        store: Store,
        policy: Policy,
        clock: Clock,
        dispatcher: Option<DispatcherHandle>,
        external_url: String,
        capacity: usize,
    ) -> Result<(Manager, IncidentHandle), StoreError> {
        let (open, max_id) = store.load_open_incidents().await?;
        let now = clock.now_ms();
        let recent = store
            .deployments(
                None,
                None,
                Some(now - policy.suspect_window_ms),
                None,
                10_000,
            )
            .await?
            .iter()
            .map(mark)
            .collect();
        let engine = Engine::new(policy, max_id + 1, open, recent);
        let (tx, commands) = mpsc::channel(capacity.max(1));
        Ok((
            Manager {
                store,
                engine,
                clock,
                commands,
                dispatcher,
                external_url,
                pending: VecDeque::new(),
                anomaly_noted: HashMap::new(),
                dora_dirty: false,
                recent_peaks: VecDeque::new(),
                verifier: None,
            },
            IncidentHandle { tx },
        ))
    }

    pub fn set_verifier(&mut self, verifier: crate::verify::task::VerifierHandle) {
        self.verifier = Some(verifier);
    }

    /// Serves until `stop` fires, then takes what was already queued and offers the last
    /// announcements for up to a second.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut next_dora = self.clock.now_ms();
        let mut last_dora = i64::MIN / 2;
        loop {
            if *stop.borrow() {
                break;
            }
            let now = self.clock.now_ms();
            let due = self.engine.tick(now);
            self.commit(due).await;
            // Every minute (the trailing window moves), and within a second of a change.
            if now >= next_dora || (self.dora_dirty && now >= last_dora + 1000) {
                next_dora = now + DORA_INTERVAL_MS;
                last_dora = now;
                self.dora_dirty = false;
                self.publish_dora(now).await;
            }
            self.offer_announcements();
            metrics::gauge!("redline_collector_incidents_open")
                .set(self.engine.open_count() as f64);
            let mut wake = next_dora;
            if let Some(at) = self.engine.next_due() {
                wake = wake.min(at);
            }
            if !self.pending.is_empty() {
                wake = wake.min(now + 20);
            }
            if self.dora_dirty {
                wake = wake.min(last_dora + 1000);
            }
            let sleep = tokio::time::sleep_until(self.clock.instant_at(wake.max(now)));
            tokio::select! {
                _ = stop.changed() => {}
                command = self.commands.recv() => match command {
                    Some(command) => self.handle(command).await,
                    None => break,
                },
                _ = sleep => {}
            }
        }
        while let Ok(command) = self.commands.try_recv() {
            self.handle(command).await;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while !self.pending.is_empty() && tokio::time::Instant::now() < deadline {
            self.offer_announcements();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::debug!("incident manager stopped");
    }

    async fn handle(&mut self, command: Command) {
        let now = self.clock.now_ms();
        match command {
            Command::Alerts(alerts) => {
                let mut changes: Vec<Change> = alerts
                    .iter()
                    .filter_map(|(key, alert)| self.engine.alert(key, alert, now))
                    .collect();
                for change in &mut changes {
                    if change.announce == Some(Announcement::Opened) {
                        self.attach_recent_peaks(change);
                    }
                }
                self.commit(changes).await;
            }
            Command::Op {
                id,
                op,
                actor,
                reply,
            } => {
                let result = self.op(id, op, &actor, now).await;
                let _ = reply.send(result);
            }
            Command::Report { new, actor, reply } => {
                let result = self.report(new, &actor, now).await;
                let _ = reply.send(result);
            }
            Command::Deployment { deployment, reply } => {
                let result = self.deployment(deployment, now).await;
                let _ = reply.send(result);
            }
            Command::Delivery(event) => self.delivery(event).await,
            Command::Anomaly(peak) => self.anomaly(peak).await,
            Command::Note { id, entry } => {
                let change = match self.current(id).await {
                    Ok(incident) => Change {
                        incident,
                        entries: vec![entry],
                        announce: None,
                    },
                    Err(e) => {
                        tracing::warn!(incident = id, error = %e, "timeline note for an unknown incident");
                        return;
                    }
                };
                self.commit(vec![change]).await;
            }
        }
    }

    async fn current(&self, id: IncidentId) -> Result<Incident, ManagerError> {
        if let Some(i) = self.engine.open_incident(id) {
            return Ok(i.clone());
        }
        self.store
            .incident(id)
            .await?
            .ok_or_else(|| ManagerError::NotFound(format!("no incident {id}")))
    }

    async fn op(
        &mut self,
        id: IncidentId,
        op: Op,
        actor: &str,
        now: i64,
    ) -> Result<Incident, ManagerError> {
        let current = self.current(id).await?;
        if let Op::Link(d) = &op
            && self.store.deployment(d.clone()).await?.is_none()
        {
            return Err(ManagerError::NotFound(format!("no deployment {d}")));
        }
        let change = self.engine.apply(current, op, actor, now)?;
        let incident = change.incident.clone();
        self.save(vec![change]).await?;
        Ok(incident)
    }

    async fn report(
        &mut self,
        new: NewIncident,
        actor: &str,
        now: i64,
    ) -> Result<Incident, ManagerError> {
        for d in &new.deployments {
            if self.store.deployment(d.clone()).await?.is_none() {
                return Err(OpError::Invalid {
                    field: "deployments".into(),
                    problem: format!("no deployment {d}"),
                }
                .into());
            }
        }
        let opened_at = new.opened_at.unwrap_or(now);
        let window = self.engine.policy().suspect_window_ms;
        let suspect = if new.deployments.is_empty() && !new.service.is_empty() {
            let candidates: Vec<DeploymentMark> = self
                .store
                .deployments(
                    Some(new.service.clone()),
                    Some(new.environment.clone()),
                    Some(opened_at - window),
                    Some(opened_at + 1),
                    10_000,
                )
                .await?
                .iter()
                .map(mark)
                .collect();
            self.engine
                .suspect(&candidates, &new.service, &new.environment, opened_at)
        } else {
            None
        };
        let change = self.engine.report(new, suspect, actor, now)?;
        let incident = change.incident.clone();
        self.save(vec![change]).await?;
        Ok(incident)
    }

    async fn deployment(
        &mut self,
        deployment: Deployment,
        now: i64,
    ) -> Result<DeploymentOutcome, ManagerError> {
        if let Some(r) = &deployment.rollback_of
            && self.store.deployment(r.clone()).await?.is_none()
        {
            return Err(OpError::Invalid {
                field: "rollback_of".into(),
                problem: format!("no deployment {r}"),
            }
            .into());
        }
        let fixes = match deployment.fixes_incident {
            Some(id) => Some(self.current(id).await.map_err(|e| match e {
                ManagerError::NotFound(_) => ManagerError::Op(OpError::Invalid {
                    field: "fixes_incident".into(),
                    problem: format!("no incident {id}"),
                }),
                other => other,
            })?),
            None => None,
        };
        match self.store.put_deployment(deployment.clone()).await? {
            PutDeployment::Exists { stored, same } => {
                if !same {
                    tracing::warn!(id = %deployment.id, "a deployment was sent again with different content; the first record stands");
                }
                return Ok(DeploymentOutcome {
                    created: false,
                    differs: !same,
                    deployment: *stored,
                });
            }
            PutDeployment::Created => {}
        }
        metrics::counter!("redline_collector_deployments_total", "status" => deployment.status.as_str())
            .increment(1);
        self.write_deployment_series(&deployment).await;
        self.dora_dirty = true;
        let m = mark(&deployment);
        let mut changes = self.engine.deployment(m.clone(), now);
        if let Some(incident) = fixes
            && let Ok(change) = self
                .engine
                .apply(incident, Op::FixedBy(m), ACTOR_COLLECTOR, now)
        {
            changes.push(change);
        }
        self.commit(changes).await;
        Ok(DeploymentOutcome {
            created: true,
            differs: false,
            deployment,
        })
    }

    /// `deployment_info{service, environment, version, deployment_id, status} 1` at the
    /// deployment's finish, so queries and rules see deployments.
    async fn write_deployment_series(&self, d: &Deployment) {
        let labels = [
            ("__name__", "deployment_info"),
            ("service", d.service.as_str()),
            ("environment", d.environment.as_str()),
            ("version", d.version.as_str()),
            ("deployment_id", d.id.as_str()),
            ("status", d.status.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let batch = WriteBatch {
            series: vec![SeriesSamples {
                labels: Labels::new(labels),
                samples: vec![Sample {
                    timestamp_ms: d.finished_at,
                    value: 1.0,
                }],
            }],
            ..WriteBatch::default()
        };
        if let Err(e) = self.store.write(batch).await {
            tracing::warn!(error = %e, id = %d.id, "deployment_info sample not written");
        }
    }

    async fn delivery(&mut self, event: DeliveryEvent) {
        let mut ids: Vec<IncidentId> = Vec::new();
        let mut fps = Vec::new();
        for labels in &event.alerts {
            if let Some(id) = labels.get(INCIDENT_LABEL).and_then(|v| v.parse().ok()) {
                ids.push(id);
            } else {
                fps.push(format!("{:016x}", crate::notify::fingerprint(labels)));
            }
        }
        ids.extend(
            self.engine
                .incidents_of_alerts(fps.iter().map(String::as_str)),
        );
        ids.sort_unstable();
        ids.dedup();
        let actor = format!("integration:{}", event.integration);
        let (kind, message) = if event.delivered {
            (
                EntryKind::NotificationSent,
                format!("notification delivered by {}", event.integration),
            )
        } else {
            (
                EntryKind::NotificationFailed,
                format!(
                    "notification through {} failed: {}",
                    event.integration, event.error
                ),
            )
        };
        let changes = ids
            .into_iter()
            .filter_map(|id| {
                let entry = TimelineEntry::new(event.at, &actor, kind, message.clone())
                    .with_ref("integration", event.integration.clone());
                self.engine.annotate(id, entry)
            })
            .collect();
        self.commit(changes).await;
    }

    /// Puts the anomaly peaks that preceded a new incident, of series that concern it, on its
    /// timeline.
    fn attach_recent_peaks(&mut self, change: &mut Change) {
        let incident = &change.incident;
        let from = incident.opened_at - PEAK_LOOKBACK_MS;
        for peak in &self.recent_peaks {
            if peak.at < from || peak.at > incident.opened_at {
                continue;
            }
            if !super::core::concerns(incident, &peak.labels) {
                continue;
            }
            let series = crate::alert::route::format_label_set(&peak.labels);
            let key = (incident.id, series.clone());
            if self
                .anomaly_noted
                .get(&key)
                .is_some_and(|t| peak.at - t < ANOMALY_NOTE_INTERVAL_MS)
            {
                continue;
            }
            self.anomaly_noted.insert(key, peak.at);
            change.entries.push(peak_entry(peak, &series));
        }
        change.entries.sort_by_key(|e| e.at);
    }

    async fn anomaly(&mut self, peak: AnomalyPeak) {
        if self.recent_peaks.len() >= RECENT_PEAKS {
            self.recent_peaks.pop_front();
        }
        self.recent_peaks.push_back(peak.clone());
        let series = crate::alert::route::format_label_set(&peak.labels);
        let mut changes = Vec::new();
        for id in self.engine.incidents_of_series(&peak.labels) {
            let key = (id, series.clone());
            if self
                .anomaly_noted
                .get(&key)
                .is_some_and(|t| peak.at - t < ANOMALY_NOTE_INTERVAL_MS)
            {
                continue;
            }
            self.anomaly_noted.insert(key, peak.at);
            changes.extend(self.engine.annotate(id, peak_entry(&peak, &series)));
        }
        if self.anomaly_noted.len() > 100_000 {
            let cutoff = peak.at - ANOMALY_NOTE_INTERVAL_MS;
            self.anomaly_noted.retain(|_, t| *t >= cutoff);
        }
        self.commit(changes).await;
    }

    /// Saves changes whose cause has no caller to tell (alerts, ticks, notes); a failure is
    /// logged and counted. The engine keeps the new state, so the record is saved whole with
    /// the incident's next change.
    async fn commit(&mut self, changes: Vec<Change>) {
        if let Err(e) = self.save(changes).await {
            metrics::counter!("redline_collector_incident_store_errors_total").increment(1);
            tracing::error!(error = %e, "incident changes not saved");
        }
    }

    async fn save(&mut self, changes: Vec<Change>) -> Result<(), StoreError> {
        let changes: Vec<Change> = changes
            .into_iter()
            .filter(|c| !c.entries.is_empty() || c.announce.is_some())
            .collect();
        if changes.is_empty() {
            return Ok(());
        }
        let rows = changes
            .iter()
            .map(|c| (c.incident.clone(), c.entries.clone()))
            .collect();
        self.store.save_incidents(rows).await?;
        self.dora_dirty = true;
        if let Some(verifier) = &self.verifier {
            for change in changes.iter().filter(|c| c.incident.is_open()) {
                for e in &change.entries {
                    if matches!(
                        e.kind,
                        EntryKind::DeploymentSuspected | EntryKind::DeploymentLinked
                    ) && let Some(d) = e.refs.get("deployment")
                    {
                        verifier.incident_linked(change.incident.id, d.clone());
                    }
                }
            }
        }
        for change in &changes {
            if let Some(event) = change.announce {
                metrics::counter!("redline_collector_incident_events_total", "event" => event.as_str())
                    .increment(1);
                tracing::info!(
                    incident = change.incident.id,
                    event = event.as_str(),
                    title = %change.incident.title,
                    "incident {}",
                    event.as_str()
                );
                self.announce(&change.incident, event);
            }
        }
        Ok(())
    }

    fn announce(&mut self, incident: &Incident, event: Announcement) {
        if self.dispatcher.is_none() {
            return;
        }
        for alert in announcement_alerts(incident, event, &self.external_url) {
            if self.pending.len() >= MAX_PENDING_ANNOUNCEMENTS {
                metrics::counter!("redline_collector_incident_announcements_dropped_total")
                    .increment(1);
                continue;
            }
            self.pending.push_back(alert);
        }
        self.offer_announcements();
    }

    fn offer_announcements(&mut self) {
        let Some(dispatcher) = &self.dispatcher else {
            self.pending.clear();
            return;
        };
        if self.pending.is_empty() {
            return;
        }
        let batch: Vec<NotifyAlert> = self.pending.drain(..).collect();
        if let Err(back) = dispatcher.try_send_alerts(batch) {
            for alert in back.into_iter().rev() {
                self.pending.push_front(alert);
            }
        }
    }

    async fn publish_dora(&self, now: i64) {
        let pairs = match self.store.dora_pairs(now - DORA_WINDOW_MS).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "DORA figures not computed");
                return;
            }
        };
        for (service, environment) in pairs {
            let Ok((deployments, incidents)) = self
                .store
                .dora_events(service.clone(), environment.clone())
                .await
            else {
                continue;
            };
            let report = crate::incident::dora::compute(
                &deployments,
                &incidents,
                &service,
                &environment,
                now - DORA_WINDOW_MS,
                now,
                now,
            );
            crate::incident::dora::publish_gauges(&report);
        }
    }
}

fn peak_entry(peak: &AnomalyPeak, series: &str) -> TimelineEntry {
    let metric = peak
        .labels
        .get("metric")
        .or_else(|| peak.labels.get("__name__"))
        .cloned()
        .unwrap_or_default();
    TimelineEntry::new(
        peak.at,
        ACTOR_COLLECTOR,
        EntryKind::AnomalyPeak,
        format!("anomaly score {:.2} on {series}", peak.score),
    )
    .with_ref("metric", metric)
    .with_ref("score", format!("{:.3}", peak.score))
}

/// What a finished deployment is to the engine.
pub fn mark(d: &Deployment) -> DeploymentMark {
    DeploymentMark {
        id: d.id.clone(),
        service: d.service.clone(),
        environment: d.environment.clone(),
        version: d.version.clone(),
        finished_at: d.finished_at,
        success: d.status == DeploymentStatus::Success,
        is_rollback: d.rollback_of.is_some(),
    }
}

/// The alerts that tell the routing tree about an incident event. `opened` and
/// `acknowledged` are firing alerts of their own (so each makes its group notify); at
/// resolution both end, which sends the resolved notice.
pub fn announcement_alerts(
    incident: &Incident,
    event: Announcement,
    external_url: &str,
) -> Vec<NotifyAlert> {
    let url = format!(
        "{}/api/v1/incidents/{}",
        external_url.trim_end_matches('/'),
        incident.id
    );
    let make = |name: &str, starts_at: i64, ends_at: Option<i64>| {
        let mut labels = LabelSet::new();
        labels.insert("alertname".into(), "RedlineIncident".into());
        labels.insert(INCIDENT_LABEL.into(), incident.id.to_string());
        labels.insert(INCIDENT_EVENT_LABEL.into(), name.into());
        labels.insert("severity".into(), incident.severity.as_str().into());
        if !incident.service.is_empty() {
            labels.insert("service".into(), incident.service.clone());
        }
        if !incident.environment.is_empty() {
            labels.insert("environment".into(), incident.environment.clone());
        }
        let mut annotations = LabelSet::new();
        annotations.insert("summary".into(), incident.title.clone());
        annotations.insert(
            "description".into(),
            format!(
                "Incident {} ({}) {}: {}",
                incident.id,
                incident.severity.as_str(),
                incident.status.as_str(),
                incident.title
            ),
        );
        annotations.insert("incident_url".into(), url.clone());
        NotifyAlert {
            labels,
            annotations,
            starts_at_ms: starts_at,
            ends_at_ms: ends_at,
            generator_url: url.clone(),
        }
    };
    match event {
        Announcement::Opened => vec![make("opened", incident.opened_at, None)],
        Announcement::Acknowledged => vec![make(
            "acknowledged",
            incident.acknowledged_at.unwrap_or(incident.opened_at),
            None,
        )],
        Announcement::Resolved => {
            let end = incident.resolved_at;
            let mut out = vec![make("opened", incident.opened_at, end)];
            if let Some(a) = incident.acknowledged_at {
                out.push(make("acknowledged", a, end));
            }
            out
        }
    }
}
