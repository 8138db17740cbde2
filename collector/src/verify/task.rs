//! The verifier: the task that owns post-deploy verification runs and rollback execution.
//!
//! Lifecycle of a run: a deployment recorded through the API (`VerifierHandle::deployment`)
//! whose service has indicators, finished successfully and recently (within the analysis
//! window), starts a run. Every `interval` until `finished_at + analysis_window` each indicator
//! is queried over the baseline window before the deployment started and over the analysis
//! window so far, and judged (`judge`). Each analysis and the verdict are saved (with the
//! deployment's timeline) before anything acts on them, and noted on the timelines of the
//! incidents linked to the deployment. Runs survive a restart (they are reloaded and resume).
//!
//! A `fail` verdict, or an incident linked to a deployment that finished within
//! `incident_window`, asks the rollback guards (`rollback::decide`); an `inconclusive` verdict
//! asks them too and is paused. Hooks run in their own tasks (exec) or through the
//! notification outbox (webhooks); when the exec hooks succeed, the rollback is recorded as a
//! deployment with `rollback_of` set, so DORA sees the recovery without special cases.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use super::Analysis;
use super::hooks::{self, HookContext, HookResult};
use super::judge::{self, Verdict};
use super::rollback::{self, Block, Decision, RollbackRecord, State, Trigger};
use crate::alert::dispatcher::DispatcherHandle;
use crate::clock::Clock;
use crate::config::VerificationConfig;
use crate::incident::deployment::{Deployment, DeploymentStatus};
use crate::incident::manager::IncidentHandle;
use crate::incident::{ACTOR_COLLECTOR, EntryKind, TimelineEntry};
use crate::notify::outbox::OutboxSender;
use crate::notify::{LabelSet, Notification, NotifyAlert};
use crate::query::{Engine, Value};
use crate::store::{OutboxEntry, OutboxRow, Store, StoreError};

/// Verifications running at once, at most (each queries its indicators every `interval`).
const MAX_RUNS: usize = 1000;

/// The label of rollback announcements.
pub const ROLLBACK_LABEL: &str = "redline_rollback";

/// The state of one deployment's verification, saved after every analysis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerificationRecord {
    pub deployment: Deployment,
    pub verdict: Verdict,
    pub indicators: Vec<String>,
    #[serde(with = "crate::incident::time::rfc3339")]
    pub next_at: i64,
    pub sequence: u32,
    /// The latest analysis of each indicator.
    pub last: BTreeMap<String, Analysis>,
}

impl VerificationRecord {
    pub fn verdict_name(&self) -> &'static str {
        match self.verdict {
            Verdict::Running => "running",
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the verifier is shutting down")]
    Stopped,
}

impl VerifyError {
    pub fn status(&self) -> u16 {
        match self {
            VerifyError::NotFound(_) => 404,
            VerifyError::Conflict(_) => 409,
            VerifyError::Store(_) | VerifyError::Stopped => 503,
        }
    }
}

type Reply<T> = oneshot::Sender<Result<T, VerifyError>>;

pub enum Command {
    Deployment(Deployment),
    IncidentLinked {
        incident_id: i64,
        deployment_id: String,
    },
    Approve {
        id: i64,
        actor: String,
        reply: Reply<RollbackRecord>,
    },
    Block {
        block: Option<Block>,
        reply: Reply<()>,
    },
    HooksDone {
        id: i64,
        results: Vec<HookResult>,
        started: i64,
        ended: i64,
    },
}

#[derive(Clone)]
pub struct VerifierHandle {
    tx: mpsc::Sender<Command>,
}

impl VerifierHandle {
    /// A deployment was recorded (waits for room).
    pub async fn deployment(&self, d: Deployment) {
        if self.tx.send(Command::Deployment(d)).await.is_err() {
            tracing::debug!("verifier stopped; deployment not verified");
        }
    }

    /// An incident was linked to a deployment; offered without waiting (counted when dropped).
    pub fn incident_linked(&self, incident_id: i64, deployment_id: String) {
        if self
            .tx
            .try_send(Command::IncidentLinked {
                incident_id,
                deployment_id,
            })
            .is_err()
        {
            metrics::counter!("redline_collector_rollback_triggers_dropped_total").increment(1);
        }
    }

    pub async fn approve(&self, id: i64, actor: String) -> Result<RollbackRecord, VerifyError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Approve {
                id,
                actor,
                reply: tx,
            })
            .await
            .map_err(|_| VerifyError::Stopped)?;
        rx.await.map_err(|_| VerifyError::Stopped)?
    }

    pub async fn block(&self, block: Option<Block>) -> Result<(), VerifyError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Block { block, reply: tx })
            .await
            .map_err(|_| VerifyError::Stopped)?;
        rx.await.map_err(|_| VerifyError::Stopped)?
    }
}

pub struct Verifier {
    store: Store,
    engine: Engine,
    clock: Clock,
    config: VerificationConfig,
    commands: mpsc::Receiver<Command>,
    own: mpsc::Sender<Command>,
    runs: BTreeMap<String, VerificationRecord>,
    /// Rollbacks awaiting approval: id → expiry.
    awaiting: BTreeMap<i64, i64>,
    incidents: Option<IncidentHandle>,
    dispatcher: Option<DispatcherHandle>,
    outbox: Option<OutboxSender>,
    external_url: String,
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

/// Every finite sample of every series of a range or instant result.
fn samples_of(value: Value) -> Vec<f64> {
    match value {
        Value::Matrix(series) => series
            .into_iter()
            .flat_map(|(_, s)| s.into_iter().map(|s| s.value))
            .filter(|v| v.is_finite())
            .collect(),
        Value::Vector(v) => v
            .into_iter()
            .map(|(_, s)| s.value)
            .filter(|v| v.is_finite())
            .collect(),
        Value::Scalar(s) => vec![s.value]
            .into_iter()
            .filter(|v| v.is_finite())
            .collect(),
        Value::String(..) => Vec::new(),
    }
}

/// A window's statistics for a timeline reference: `n=…, median=…, mean=…`.
fn stats_ref(s: &super::Summary) -> String {
    format!(
        "n={} (of {}), median={}, mean={}",
        s.count,
        s.raw_count,
        opt_ref(s.median),
        opt_ref(s.mean)
    )
}

fn opt_ref(v: Option<f64>) -> String {
    v.map_or_else(|| "none".to_owned(), |v| format!("{v:.6}"))
}

/// The receiver name of a service's rollback webhooks in the integrations.
pub fn webhook_receiver(service: &str, environment: Option<&str>) -> String {
    format!("rollback:{service}:{}", environment.unwrap_or("*"))
}

impl Verifier {
    pub fn new(
        store: Store,
        engine: Engine,
        clock: Clock,
        config: VerificationConfig,
        external_url: String,
        capacity: usize,
    ) -> (Verifier, VerifierHandle) {
        let (tx, commands) = mpsc::channel(capacity.max(1));
        (
            Verifier {
                store,
                engine,
                clock,
                config,
                commands,
                own: tx.clone(),
                runs: BTreeMap::new(),
                awaiting: BTreeMap::new(),
                incidents: None,
                dispatcher: None,
                outbox: None,
                external_url,
            },
            VerifierHandle { tx },
        )
    }

    pub fn connect(
        &mut self,
        incidents: IncidentHandle,
        dispatcher: DispatcherHandle,
        outbox: OutboxSender,
    ) {
        self.incidents = Some(incidents);
        self.dispatcher = Some(dispatcher);
        self.outbox = Some(outbox);
    }

    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        match self.store.running_verifications().await {
            Ok(runs) => {
                for r in runs {
                    self.runs.insert(r.deployment.id.clone(), r);
                }
            }
            Err(e) => tracing::error!(error = %e, "could not load running verifications"),
        }
        match self.store.rollbacks(None, 1000).await {
            Ok(list) => {
                for r in list
                    .into_iter()
                    .filter(|r| r.state == State::AwaitingApproval)
                {
                    self.awaiting.insert(r.id, r.expires_at.unwrap_or(i64::MAX));
                }
            }
            Err(e) => tracing::error!(error = %e, "could not load rollbacks"),
        }
        loop {
            if *stop.borrow() {
                break;
            }
            let now = self.clock.now_ms();
            self.analyse_due(now).await;
            self.expire_approvals(now).await;
            let wake = self
                .runs
                .values()
                .map(|r| r.next_at)
                .chain(self.awaiting.values().copied())
                .min()
                .unwrap_or(now + 60_000)
                .max(now + 1);
            let sleep = tokio::time::sleep_until(self.clock.instant_at(wake));
            tokio::select! {
                _ = stop.changed() => {}
                command = self.commands.recv() => match command {
                    Some(c) => self.handle(c).await,
                    None => break,
                },
                _ = sleep => {}
            }
        }
        tracing::debug!("verifier stopped");
    }

    async fn handle(&mut self, command: Command) {
        let now = self.clock.now_ms();
        match command {
            Command::Deployment(d) => self.start(d, now).await,
            Command::IncidentLinked {
                incident_id,
                deployment_id,
            } => {
                let Ok(Some(d)) = self.store.deployment(deployment_id).await else {
                    return;
                };
                // What already happened to the deployment (its verdict, rollbacks) belongs to
                // the incident's story too.
                if let (Some(incidents), Ok(entries)) = (
                    &self.incidents,
                    self.store.deployment_timeline(d.id.clone()).await,
                ) {
                    for e in entries
                        .into_iter()
                        .filter(|e| e.kind == EntryKind::Rollback || e.refs.contains_key("verdict"))
                    {
                        incidents.note(incident_id, e).await;
                    }
                }
                if now - d.finished_at > ms(self.config.incident_window) {
                    return;
                }
                self.consider(
                    &d,
                    Trigger::Incident { incident_id },
                    Some(incident_id),
                    now,
                )
                .await;
            }
            Command::Approve { id, actor, reply } => {
                let _ = reply.send(self.approve(id, &actor, now).await);
            }
            Command::Block { block, reply } => {
                let result = self.store.set_rollback_block(block.clone()).await;
                if result.is_ok() {
                    match &block {
                        Some(b) => {
                            tracing::warn!(until = %crate::incident::time::format(b.until), reason = %b.reason, by = %b.by, "rollbacks blocked")
                        }
                        None => tracing::info!("rollback block lifted"),
                    }
                }
                let _ = reply.send(result.map_err(VerifyError::from));
            }
            Command::HooksDone {
                id,
                results,
                started,
                ended,
            } => self.hooks_done(id, results, started, ended).await,
        }
    }

    /// Starts verifying a recorded deployment, if its service has indicators.
    async fn start(&mut self, d: Deployment, now: i64) {
        let Some(svc) = self.config.for_service(&d.service, &d.environment) else {
            return;
        };
        if svc.indicators.is_empty()
            || d.status != DeploymentStatus::Success
            || self.runs.contains_key(&d.id)
            || now - d.finished_at > ms(self.config.analysis_window)
        {
            return;
        }
        if self.runs.len() >= MAX_RUNS {
            metrics::counter!("redline_collector_verifications_dropped_total").increment(1);
            tracing::warn!(deployment = %d.id, "too many verifications at once; this deployment is not verified");
            return;
        }
        let record = VerificationRecord {
            indicators: svc.indicators.iter().map(|i| i.name.clone()).collect(),
            deployment: d,
            verdict: Verdict::Running,
            next_at: now + ms(self.config.interval),
            sequence: 0,
            last: BTreeMap::new(),
        };
        let entry = TimelineEntry::new(
            now,
            ACTOR_COLLECTOR,
            EntryKind::Verification,
            format!(
                "verification started: {} indicators, analysis window {} s",
                record.indicators.len(),
                self.config.analysis_window.as_secs()
            ),
        );
        if let Err(e) = self
            .store
            .save_verification(record.clone(), Vec::new(), vec![entry])
            .await
        {
            tracing::error!(error = %e, deployment = %record.deployment.id, "verification not started");
            return;
        }
        self.runs.insert(record.deployment.id.clone(), record);
    }

    async fn analyse_due(&mut self, now: i64) {
        let due: Vec<String> = self
            .runs
            .values()
            .filter(|r| r.next_at <= now)
            .map(|r| r.deployment.id.clone())
            .collect();
        for id in due {
            self.analyse(&id, now).await;
        }
    }

    /// One round of analyses of one run.
    async fn analyse(&mut self, id: &str, now: i64) {
        let Some(mut record) = self.runs.get(id).cloned() else {
            return;
        };
        let d = record.deployment.clone();
        let Some(svc) = self.config.for_service(&d.service, &d.environment).cloned() else {
            self.runs.remove(id);
            return;
        };
        let settings = &self.config.settings;
        let step = ms(self.config.step).max(1);
        let baseline = (
            d.started_at - ms(self.config.baseline_window),
            d.started_at - 1,
        );
        let end = now.min(d.finished_at + ms(self.config.analysis_window));
        let over = now >= d.finished_at + ms(self.config.analysis_window);
        record.sequence += 1;
        let mut analyses = Vec::new();
        for indicator in &svc.indicators {
            let fetch = |from: i64, to: i64| {
                let engine = self.engine.clone();
                let query = indicator.query.clone();
                async move {
                    if to <= from {
                        return Ok(Vec::new());
                    }
                    engine.range(&query, from, to, step).await.map(samples_of)
                }
            };
            let previous = record
                .last
                .get(&indicator.name)
                .map_or(0, |a| a.consecutive_failures);
            let a = match (
                fetch(baseline.0, baseline.1).await,
                fetch(d.finished_at, end).await,
            ) {
                (Ok(b), Ok(x)) => judge::analyse(
                    &d.id,
                    indicator,
                    settings,
                    &b,
                    &x,
                    now,
                    record.sequence,
                    previous,
                ),
                (Err(e), _) | (_, Err(e)) => {
                    let mut a = judge::analyse(
                        &d.id,
                        indicator,
                        settings,
                        &[],
                        &[],
                        now,
                        record.sequence,
                        previous,
                    );
                    a.reason = format!("the query failed: {e}");
                    a
                }
            };
            record.last.insert(indicator.name.clone(), a.clone());
            analyses.push(a);
        }
        let last: Vec<Analysis> = record.last.values().cloned().collect();
        record.verdict = judge::verdict(&record.indicators, &last, settings, over);
        record.next_at = (now + ms(self.config.interval))
            .min(d.finished_at + ms(self.config.analysis_window))
            .max(now + 1);
        let mut entries: Vec<TimelineEntry> = analyses
            .iter()
            .map(|a| {
                TimelineEntry::new(
                    a.at,
                    ACTOR_COLLECTOR,
                    EntryKind::Verification,
                    format!(
                        "analysis {} of {}: {} ({})",
                        a.sequence,
                        a.indicator,
                        match a.outcome {
                            super::Outcome::Pass => "pass",
                            super::Outcome::Fail => "fail",
                            super::Outcome::Inconclusive => "inconclusive",
                        },
                        a.reason
                    ),
                )
                .with_ref("deployment", d.id.clone())
                .with_ref("indicator", a.indicator.clone())
                .with_ref("baseline", stats_ref(&a.baseline))
                .with_ref("analysis", stats_ref(&a.analysis))
                .with_ref("p_value", opt_ref(a.p_value))
                .with_ref("effect", opt_ref(a.effect))
            })
            .collect();
        let finished = record.verdict != Verdict::Running;
        if finished {
            entries.push(
                TimelineEntry::new(
                    now,
                    ACTOR_COLLECTOR,
                    EntryKind::Verification,
                    format!("verification verdict: {}", record.verdict_name()),
                )
                .with_ref("deployment", d.id.clone())
                .with_ref("verdict", record.verdict_name()),
            );
        }
        if let Err(e) = self
            .store
            .save_verification(record.clone(), analyses, entries.clone())
            .await
        {
            tracing::error!(error = %e, deployment = %d.id, "verification analysis not saved");
            record.next_at = now + ms(self.config.interval);
            self.runs.insert(id.to_owned(), record);
            return;
        }
        metrics::counter!("redline_collector_verification_analyses_total")
            .increment(svc.indicators.len() as u64);
        self.note_incidents(&d, &entries).await;
        if finished {
            self.runs.remove(id);
            metrics::counter!("redline_collector_verification_verdicts_total", "verdict" => record.verdict_name())
                .increment(1);
            tracing::info!(deployment = %d.id, verdict = record.verdict_name(), "verification finished");
            let summary = record
                .last
                .values()
                .filter(|a| a.outcome != super::Outcome::Pass)
                .map(|a| format!("{}: {}", a.indicator, a.reason))
                .collect::<Vec<_>>()
                .join("; ");
            match record.verdict {
                Verdict::Fail => {
                    self.consider(&d, Trigger::VerificationFailed { summary }, None, now)
                        .await
                }
                Verdict::Inconclusive => {
                    self.consider(&d, Trigger::VerificationInconclusive { summary }, None, now)
                        .await
                }
                _ => {}
            }
        } else {
            self.runs.insert(id.to_owned(), record);
        }
    }

    /// Puts entries on the timelines of the incidents linked to a deployment.
    async fn note_incidents(&self, d: &Deployment, entries: &[TimelineEntry]) {
        let Some(incidents) = &self.incidents else {
            return;
        };
        let Ok((_, linked)) = self
            .store
            .dora_events(d.service.clone(), d.environment.clone())
            .await
        else {
            return;
        };
        for incident in linked
            .iter()
            .filter(|i| i.deployments.iter().any(|l| l.deployment_id == d.id))
        {
            for e in entries {
                incidents.note(incident.id, e.clone()).await;
            }
        }
    }

    async fn previous_version(&self, d: &Deployment) -> Option<String> {
        self.store
            .deployments(
                Some(d.service.clone()),
                Some(d.environment.clone()),
                None,
                Some(d.finished_at),
                10_000,
            )
            .await
            .ok()?
            .into_iter()
            .rev()
            .find(|p| p.id != d.id && p.status == DeploymentStatus::Success)
            .map(|p| p.version)
    }

    /// Asks the guards about rolling `d` back after `trigger`, and acts on the answer.
    async fn consider(
        &mut self,
        d: &Deployment,
        trigger: Trigger,
        incident_id: Option<i64>,
        now: i64,
    ) {
        let Some(svc) = self.config.for_service(&d.service, &d.environment).cloned() else {
            return;
        };
        let past: Vec<rollback::PastRollback> =
            match self.store.rollbacks(Some(d.service.clone()), 1000).await {
                Ok(list) => list.iter().map(RollbackRecord::past).collect(),
                Err(e) => {
                    tracing::error!(error = %e, "rollback history unavailable; not deciding");
                    return;
                }
            };
        let block = self.store.rollback_block().await.ok().flatten();
        let candidate = rollback::Candidate {
            deployment_id: &d.id,
            service: &d.service,
            environment: &d.environment,
            is_rollback: d.rollback_of.is_some(),
        };
        let decision = rollback::decide(
            &svc.rollback,
            &trigger,
            &candidate,
            &past,
            block.as_ref(),
            now,
        );
        let (state, reason, expires_at) = match &decision {
            Decision::Nothing => return,
            Decision::Record { state, reason } => (*state, reason.clone(), None),
            Decision::AwaitApproval { expires_at } => (
                State::AwaitingApproval,
                format!("{}; waiting for approval", trigger.reason()),
                Some(*expires_at),
            ),
            Decision::Execute => (State::Running, trigger.reason(), None),
        };
        let record = RollbackRecord {
            id: 0,
            deployment_id: d.id.clone(),
            service: d.service.clone(),
            environment: d.environment.clone(),
            version: d.version.clone(),
            previous_version: self.previous_version(d).await,
            incident_id,
            trigger,
            reason,
            mode: svc.rollback.mode,
            state,
            created_at: now,
            updated_at: now,
            expires_at,
            approved_by: None,
            hooks: Vec::new(),
            rollback_deployment_id: None,
        };
        let record = match self.store.save_rollback(record).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, deployment = %d.id, "rollback decision not saved; nothing done");
                return;
            }
        };
        metrics::counter!("redline_collector_rollbacks_total", "state" => record.state.as_str())
            .increment(1);
        tracing::warn!(rollback = record.id, deployment = %d.id, state = record.state.as_str(), reason = %record.reason, "rollback decision");
        self.record_event(
            &record,
            d,
            format!(
                "rollback {}: {} ({})",
                record.id,
                record.state.as_str(),
                record.reason
            ),
        )
        .await;
        match record.state {
            State::AwaitingApproval => {
                self.awaiting
                    .insert(record.id, record.expires_at.unwrap_or(i64::MAX));
                self.announce(&record, None, now);
            }
            State::Paused => self.announce(&record, None, now),
            State::Running => self.execute(record, now).await,
            _ => {}
        }
    }

    /// Puts a rollback event on the deployment's and the linked incidents' timelines.
    async fn record_event(&self, record: &RollbackRecord, d: &Deployment, message: String) {
        let entry = TimelineEntry::new(
            self.clock.now_ms(),
            ACTOR_COLLECTOR,
            EntryKind::Rollback,
            message,
        )
        .with_ref("rollback", record.id.to_string())
        .with_ref("deployment", d.id.clone())
        .with_ref("state", record.state.as_str());
        if let Err(e) = self
            .store
            .append_deployment_timeline(d.id.clone(), vec![entry.clone()])
            .await
        {
            tracing::warn!(error = %e, "deployment timeline entry not saved");
        }
        self.note_incidents(d, &[entry]).await;
    }

    /// Tells people through the routing tree (approval needed, paused, done).
    ///
    /// Each state is an alert of its own (so each notifies); it ends when the rollback leaves
    /// that state (`previous` is resolved here) or an hour after, for final states.
    fn announce(&self, record: &RollbackRecord, previous: Option<State>, now: i64) {
        let Some(dispatcher) = &self.dispatcher else {
            return;
        };
        let mut alerts = Vec::new();
        if let Some(previous) = previous {
            let mut old = record.clone();
            old.state = previous;
            alerts.push(self.rollback_alert(&old, now, Some(now)));
        }
        let ends_at = match record.state {
            State::AwaitingApproval => record.expires_at,
            State::Running => None,
            _ => Some(now + 3_600_000),
        };
        alerts.push(self.rollback_alert(record, now, ends_at));
        if dispatcher.try_send_alerts(alerts).is_err() {
            metrics::counter!("redline_collector_rollback_announcements_dropped_total")
                .increment(1);
        }
    }

    fn rollback_alert(
        &self,
        record: &RollbackRecord,
        now: i64,
        ends_at: Option<i64>,
    ) -> NotifyAlert {
        let mut labels = LabelSet::new();
        labels.insert("alertname".into(), "RedlineRollback".into());
        labels.insert(ROLLBACK_LABEL.into(), record.id.to_string());
        labels.insert(
            "redline_rollback_state".into(),
            record.state.as_str().into(),
        );
        labels.insert("service".into(), record.service.clone());
        labels.insert("environment".into(), record.environment.clone());
        let url = format!(
            "{}/api/v1/rollbacks/{}",
            self.external_url.trim_end_matches('/'),
            record.id
        );
        let mut annotations = LabelSet::new();
        annotations.insert(
            "summary".into(),
            format!(
                "Rollback {} of {} {} ({}): {}",
                record.id,
                record.service,
                record.environment,
                record.deployment_id,
                record.state.as_str()
            ),
        );
        annotations.insert("description".into(), record.reason.clone());
        if record.state == State::AwaitingApproval {
            annotations.insert(
                "approve".into(),
                format!(
                    "POST {url}/approve, or: redline-collector rollback approve {}",
                    record.id
                ),
            );
        }
        NotifyAlert {
            labels,
            annotations,
            starts_at_ms: record.created_at.min(now),
            ends_at_ms: ends_at,
            generator_url: url,
        }
    }

    async fn approve(
        &mut self,
        id: i64,
        actor: &str,
        now: i64,
    ) -> Result<RollbackRecord, VerifyError> {
        let mut record = self
            .store
            .rollback(id)
            .await?
            .ok_or_else(|| VerifyError::NotFound(format!("no rollback {id}")))?;
        let svc = self
            .config
            .for_service(&record.service, &record.environment)
            .cloned()
            .ok_or_else(|| {
                VerifyError::Conflict(format!(
                    "service {} has no rollback configuration any more",
                    record.service
                ))
            })?;
        let past: Vec<rollback::PastRollback> = self
            .store
            .rollbacks(Some(record.service.clone()), 1000)
            .await?
            .iter()
            .filter(|r| r.id != id)
            .map(RollbackRecord::past)
            .collect();
        let block = self.store.rollback_block().await?;
        rollback::approve(
            &svc.rollback,
            &record.service,
            record.state,
            record.expires_at,
            &past,
            block.as_ref(),
            now,
        )
        .map_err(VerifyError::Conflict)?;
        record.state = State::Running;
        record.approved_by = Some(actor.to_owned());
        record.updated_at = now;
        let record = self.store.save_rollback(record).await?;
        self.awaiting.remove(&id);
        self.announce(&record, Some(State::AwaitingApproval), now);
        if let Ok(Some(d)) = self.store.deployment(record.deployment_id.clone()).await {
            self.record_event(
                &record,
                &d,
                format!("rollback {} approved by {actor}", record.id),
            )
            .await;
        }
        self.execute(record.clone(), now).await;
        Ok(record)
    }

    async fn expire_approvals(&mut self, now: i64) {
        let expired: Vec<i64> = self
            .awaiting
            .iter()
            .filter(|(_, e)| **e <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.awaiting.remove(&id);
            let Ok(Some(mut record)) = self.store.rollback(id).await else {
                continue;
            };
            if record.state != State::AwaitingApproval {
                continue;
            }
            record.state = State::Expired;
            record.updated_at = now;
            if let Ok(record) = self.store.save_rollback(record).await
                && let Ok(Some(d)) = self.store.deployment(record.deployment_id.clone()).await
            {
                self.record_event(
                    &record,
                    &d,
                    format!("rollback {} expired without approval", record.id),
                )
                .await;
                self.announce(&record, Some(State::AwaitingApproval), now);
            }
        }
    }

    /// Runs the hooks of a rollback in the state `Running`: webhooks are enqueued in the
    /// outbox now; exec hooks run in a task that reports back with `HooksDone`.
    async fn execute(&mut self, record: RollbackRecord, now: i64) {
        let Some(svc) = self
            .config
            .for_service(&record.service, &record.environment)
            .cloned()
        else {
            return;
        };
        let ctx = HookContext {
            rollback_id: record.id,
            service: record.service.clone(),
            environment: record.environment.clone(),
            deployment_id: record.deployment_id.clone(),
            version: record.version.clone(),
            previous_version: record.previous_version.clone(),
            incident_id: record.incident_id,
            reason: record.reason.clone(),
            mode: record.mode.as_str().to_owned(),
        };
        let mut enqueued = Vec::new();
        if !svc.webhook_hooks.is_empty() {
            let receiver = webhook_receiver(&svc.service, svc.environment.as_deref());
            let entries: Vec<OutboxEntry> = (0..svc.webhook_hooks.len())
                .map(|i| OutboxEntry {
                    integration: format!("{receiver}/webhook/{i}"),
                    idempotency_key: format!("rollback-{}-webhook-{i}", record.id),
                    notification: Notification {
                        receiver: receiver.clone(),
                        group_key: format!("rollback/{}", record.id),
                        group_labels: LabelSet::new(),
                        alerts: Vec::new(),
                        now_ms: now,
                        external_url: self.external_url.clone(),
                        raw_body: Some(ctx.json()),
                    },
                    created_at: now,
                })
                .collect();
            match self
                .store
                .enqueue_notifications(entries.clone(), Vec::new())
                .await
            {
                Ok(ids) => {
                    for (entry, id) in entries.into_iter().zip(ids) {
                        enqueued.push(HookResult {
                            kind: "webhook".into(),
                            target: entry.integration.clone(),
                            ok: true,
                            exit_status: None,
                            timed_out: false,
                            duration_ms: 0,
                            output: format!("queued for delivery (outbox {id})"),
                            error: String::new(),
                        });
                        if let Some(outbox) = &self.outbox {
                            let _ = outbox.send(OutboxRow::enqueued(id, entry)).await;
                        }
                    }
                }
                Err(e) => enqueued.push(HookResult {
                    kind: "webhook".into(),
                    target: receiver,
                    ok: false,
                    exit_status: None,
                    timed_out: false,
                    duration_ms: 0,
                    output: String::new(),
                    error: format!("could not enqueue: {e}"),
                }),
            }
        }
        let exec_hooks = svc.exec_hooks.clone();
        let own = self.own.clone();
        let id = record.id;
        let started = now;
        let clock = self.clock;
        tokio::spawn(async move {
            let mut results = enqueued;
            for hook in &exec_hooks {
                results.push(hooks::run_exec(hook, &ctx).await);
            }
            let _ = own
                .send(Command::HooksDone {
                    id,
                    results,
                    started,
                    ended: clock.now_ms(),
                })
                .await;
        });
    }

    async fn hooks_done(&mut self, id: i64, results: Vec<HookResult>, started: i64, ended: i64) {
        let Ok(Some(mut record)) = self.store.rollback(id).await else {
            return;
        };
        let ok = !results.is_empty() && results.iter().all(|r| r.ok);
        let ran_exec = results.iter().any(|r| r.kind == "exec");
        record.hooks = results;
        record.state = if ok { State::Succeeded } else { State::Failed };
        record.updated_at = ended;
        let Ok(Some(d)) = self.store.deployment(record.deployment_id.clone()).await else {
            return;
        };
        // Exec hooks roll back themselves: record the rollback as a deployment, unless the
        // pipeline already reported one. Webhook-only rollbacks are done by whoever receives
        // the webhook, which reports its deployment (with `rollback_of`) itself.
        if ok
            && ran_exec
            && let Some(incidents) = &self.incidents
        {
            let rollback_deployment = Deployment {
                id: format!("rollback-{}", record.id),
                service: record.service.clone(),
                environment: record.environment.clone(),
                version: record.previous_version.clone().unwrap_or_default(),
                status: DeploymentStatus::Success,
                started_at: started,
                finished_at: ended.max(started),
                commits: Vec::new(),
                rollback_of: Some(record.deployment_id.clone()),
                fixes_incident: None,
                source: "redline-rollback".to_owned(),
            };
            match incidents.deployment(rollback_deployment).await {
                Ok(outcome) => record.rollback_deployment_id = Some(outcome.deployment.id),
                Err(e) => tracing::error!(error = %e, "the rollback deployment was not recorded"),
            }
        }
        let record = match self.store.save_rollback(record).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, rollback = id, "rollback result not saved");
                return;
            }
        };
        metrics::counter!("redline_collector_rollbacks_total", "state" => record.state.as_str())
            .increment(1);
        let detail = record
            .hooks
            .iter()
            .map(|h| {
                if h.ok {
                    format!("{} {} ok", h.kind, h.target)
                } else {
                    format!("{} {} failed: {}", h.kind, h.target, h.error)
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        self.record_event(
            &record,
            &d,
            format!("rollback {} {}: {detail}", record.id, record.state.as_str()),
        )
        .await;
        self.announce(&record, Some(State::Running), ended);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_of_every_series_are_pooled() {
        use crate::model::{Labels, Sample};
        use std::sync::Arc;
        let l = Arc::new(Labels::new(vec![("a".into(), "1".into())]));
        let m = Value::Matrix(vec![
            (
                l.clone(),
                vec![
                    Sample {
                        timestamp_ms: 1,
                        value: 1.0,
                    },
                    Sample {
                        timestamp_ms: 2,
                        value: f64::NAN,
                    },
                ],
            ),
            (
                l,
                vec![Sample {
                    timestamp_ms: 1,
                    value: 3.0,
                }],
            ),
        ]);
        assert_eq!(samples_of(m), vec![1.0, 3.0]);
    }
}
