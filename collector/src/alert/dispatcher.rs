//! The dispatcher task: the one owner of notification state — alerts as receivers see them,
//! aggregation groups, the notification log and silences.
//!
//! Inputs arrive over one bounded channel as `Command`s: alert transitions from the rule
//! manager (through `alert_events`), alerts posted to `POST /api/v2/alerts`, silence changes
//! and reads from the API, and configuration reloads. The task drives the pure core
//! (`alert::dispatch`) with the time of its `Clock`, and at every due flush persists the
//! notifications and their log entries in one transaction (`Store::enqueue_notifications`)
//! before handing them to the outbox worker (`notify::outbox`), so a notification is either
//! durable or was never decided. At start it restores silences and the notification log from
//! the store; the rule manager re-announces the alerts that fire.
//!
//! Shutdown: when `stop` fires the task returns; the outbox channel closes with it. Anything
//! not yet flushed is decided again after a restart from the re-announced alerts and the
//! persisted log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use super::amconfig::{self, AmConfig, ConfigErrors};
use super::dispatch::{AlertStatus, Dispatch, GroupRoute, IntegrationRef, Policy};
use super::inhibit::Inhibitor;
use super::silence::{GettableSilence, PostableSilence, Silence, SilenceError, SilenceState};
use crate::clock::Clock;
use crate::notify::config::Receiver;
use crate::notify::outbox::OutboxSender;
use crate::notify::{LabelSet, NotifyAlert};
use crate::store::{OutboxRow, SilenceRow, Store};

/// The routing configuration (Alertmanager's YAML) as the dispatcher uses it.
#[derive(Clone, Debug)]
pub struct Routing {
    pub config: AmConfig,
    /// Built once from `config.inhibit_rules`.
    inhibitor: Inhibitor,
    /// The configuration file's text, for `GET /api/v2/status`.
    pub text: String,
}

/// The routing in force when no configuration file is given: every alert goes to the receiver
/// `default`, which has no integrations. Alerts, silences and the API work; nothing is sent.
pub const DEFAULT_ROUTING: &str = "route:\n  receiver: default\nreceivers:\n  - name: default\n";

impl Routing {
    pub fn new(config: AmConfig, text: String) -> Routing {
        Routing {
            inhibitor: config.inhibitor(),
            config,
            text,
        }
    }

    /// Loads the configuration file, or the default routing when there is none.
    pub fn load(path: Option<&std::path::Path>) -> Result<Routing, ConfigErrors> {
        match path {
            Some(path) => {
                let config = amconfig::load(path)?;
                let text = std::fs::read_to_string(path).unwrap_or_default();
                Ok(Routing::new(config, text))
            }
            None => {
                let path = std::path::Path::new("<default routing>");
                let config = amconfig::parse(path, DEFAULT_ROUTING, &|p: &std::path::Path| {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("{} (the default routing reads no files)", p.display()),
                    ))
                })?;
                Ok(Routing::new(config, DEFAULT_ROUTING.to_owned()))
            }
        }
    }

    /// Receivers by name.
    pub fn receivers(&self) -> BTreeMap<String, Receiver> {
        self.config
            .receivers
            .iter()
            .map(|r| (r.name.clone(), r.clone()))
            .collect()
    }

    /// The integration ids of a receiver, in configuration order: `receiver/kind/index`.
    pub fn integrations(&self, receiver: &str) -> Vec<IntegrationRef> {
        let Some(r) = self.config.receiver(receiver) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, w) in r.webhook.iter().enumerate() {
            out.push(IntegrationRef {
                id: format!("{receiver}/webhook/{i}"),
                send_resolved: w.send_resolved,
            });
        }
        for (i, e) in r.email.iter().enumerate() {
            out.push(IntegrationRef {
                id: format!("{receiver}/email/{i}"),
                send_resolved: e.send_resolved,
            });
        }
        out
    }
}

/// The configuration and silences, seen as the core's `Policy`.
struct View<'a> {
    routing: &'a Routing,
    silences: &'a BTreeMap<String, Silence>,
}

impl Policy for View<'_> {
    fn routes(&self, labels: &LabelSet) -> Vec<GroupRoute> {
        self.routing
            .config
            .route
            .matching_routes(labels)
            .into_iter()
            .map(|node| GroupRoute {
                route_key: node.key.clone(),
                route_id: node.id.clone(),
                receiver: node.opts.receiver.clone(),
                group_by: if node.opts.group_by_all {
                    None
                } else {
                    Some(node.opts.group_by.iter().cloned().collect())
                },
                group_wait_ms: node.opts.group_wait.as_millis() as i64,
                group_interval_ms: node.opts.group_interval.as_millis() as i64,
                repeat_interval_ms: node.opts.repeat_interval.as_millis() as i64,
            })
            .collect()
    }

    fn integrations(&self, receiver: &str) -> Vec<IntegrationRef> {
        self.routing.integrations(receiver)
    }

    fn route_muted(&self, route_id: &str, now_ms: i64) -> bool {
        self.routing
            .config
            .route
            .by_id(route_id)
            .is_some_and(|node| self.routing.config.route_muted(node, now_ms))
    }

    fn silenced_by(&self, labels: &LabelSet, now_ms: i64) -> Vec<String> {
        self.silences
            .values()
            .filter(|s| s.mutes(labels, now_ms))
            .map(|s| s.id.clone())
            .collect()
    }

    fn inhibited(&self, labels: &LabelSet, firing: &mut dyn Iterator<Item = &LabelSet>) -> bool {
        self.routing.inhibitor.is_inhibited(labels, firing)
    }
}

/// Errors the dispatcher answers API calls with.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("{0}")]
    InvalidSilence(#[from] SilenceError),
    #[error("silence {0} not found")]
    SilenceNotFound(String),
    #[error("silence {0} is already expired")]
    SilenceExpired(String),
    #[error("storing failed (retry later): {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("the dispatcher is shutting down")]
    Closed,
}

/// An alert with its current status, for `GET /api/v2/alerts`.
#[derive(Clone, Debug)]
pub struct AlertView {
    pub alert: NotifyAlert,
    pub status: AlertStatus,
    pub now_ms: i64,
}

/// Requests to the dispatcher task. Each carries the reply channel its sender awaits.
pub enum Command {
    /// New or updated alerts (rule transitions, `POST /api/v2/alerts`).
    Alerts(Vec<NotifyAlert>),
    ListAlerts(oneshot::Sender<Vec<AlertView>>),
    /// A silence built from its body (matchers compiled) by the sender, not yet checked
    /// against the time or the existing silences.
    PutSilence(Box<Silence>, oneshot::Sender<Result<String, DispatchError>>),
    ExpireSilence(String, oneshot::Sender<Result<(), DispatchError>>),
    ListSilences(oneshot::Sender<Vec<GettableSilence>>),
    Reload(Box<Routing>),
}

/// A cheap, cloneable handle to the dispatcher task.
#[derive(Clone)]
pub struct DispatcherHandle {
    tx: mpsc::Sender<Command>,
    resolve_timeout: Duration,
    clock: Clock,
}

impl DispatcherHandle {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, DispatchError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| DispatchError::Closed)?;
        rx.await.map_err(|_| DispatchError::Closed)
    }

    /// Hands alerts to the dispatcher; waits while its queue is full (back-pressure on the
    /// sender rather than a drop).
    pub async fn send_alerts(&self, alerts: Vec<NotifyAlert>) -> Result<(), DispatchError> {
        self.tx
            .send(Command::Alerts(alerts))
            .await
            .map_err(|_| DispatchError::Closed)
    }

    pub async fn alerts(&self) -> Result<Vec<AlertView>, DispatchError> {
        self.ask(Command::ListAlerts).await
    }

    /// Creates a silence (or replaces the one with the body's id); returns its id.
    /// Creates or updates a silence. Its regex matchers are compiled here, on a blocking
    /// thread: a pattern can take a tenth of a second or more to compile (or to be refused
    /// at the regex crate's size limit), and the dispatcher task, which every alert and
    /// notification waits on, must not spend that.
    pub async fn put_silence(&self, body: PostableSilence) -> Result<String, DispatchError> {
        let silence = tokio::task::spawn_blocking(move || Silence::from_stored(&body, 0))
            .await
            .map_err(|_| DispatchError::Closed)??;
        self.ask(|tx| Command::PutSilence(Box::new(silence), tx))
            .await?
    }

    pub async fn expire_silence(&self, id: String) -> Result<(), DispatchError> {
        self.ask(|tx| Command::ExpireSilence(id, tx)).await?
    }

    pub async fn silences(&self) -> Result<Vec<GettableSilence>, DispatchError> {
        self.ask(Command::ListSilences).await
    }

    pub async fn reload(&self, routing: Routing) -> Result<(), DispatchError> {
        self.tx
            .send(Command::Reload(Box::new(routing)))
            .await
            .map_err(|_| DispatchError::Closed)
    }

    /// Hands alerts over only if the queue has room; gives them back otherwise. For senders
    /// that the dispatcher itself may be waiting on (the incident manager), which must never
    /// block on it.
    pub fn try_send_alerts(&self, alerts: Vec<NotifyAlert>) -> Result<(), Vec<NotifyAlert>> {
        match self.tx.try_send(Command::Alerts(alerts)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(Command::Alerts(a)))
            | Err(mpsc::error::TrySendError::Closed(Command::Alerts(a))) => Err(a),
            Err(_) => Err(Vec::new()),
        }
    }

    /// `resolve_timeout` of the configuration in force at start, for alerts posted without an
    /// end.
    pub fn resolve_timeout(&self) -> Duration {
        self.resolve_timeout
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

pub struct Dispatcher {
    store: Store,
    routing: Arc<Routing>,
    clock: Clock,
    core: Dispatch,
    silences: BTreeMap<String, Silence>,
    /// Commands from the handles; every handle is held by the API, the alert-event bridge and
    /// the reloader, and the channel closes when they are all gone.
    commands: mpsc::Receiver<Command>,
    /// New outbox entries to the outbox worker, which ends when this sender is dropped.
    outbox: OutboxSender,
    /// How long expired silences and notification-log entries are kept in memory (the store
    /// keeps them as long).
    retention_ms: i64,
    /// The incident manager hears every alert transition (with its route group key).
    incidents: Option<crate::incident::manager::IncidentHandle>,
}

impl Dispatcher {
    /// `capacity` bounds the command channel.
    pub fn new(
        store: Store,
        routing: Routing,
        external_url: String,
        clock: Clock,
        outbox: OutboxSender,
        capacity: usize,
        retention: Duration,
    ) -> (Dispatcher, DispatcherHandle) {
        let (tx, commands) = mpsc::channel(capacity.max(1));
        let handle = DispatcherHandle {
            tx,
            resolve_timeout: routing.config.global.resolve_timeout,
            clock,
        };
        (
            Dispatcher {
                store,
                routing: Arc::new(routing),
                clock,
                core: Dispatch::new(external_url),
                silences: BTreeMap::new(),
                commands,
                outbox,
                retention_ms: retention.as_millis() as i64,
                incidents: None,
            },
            handle,
        )
    }

    /// Makes every alert transition reach the incident manager too.
    pub fn set_incidents(&mut self, incidents: crate::incident::manager::IncidentHandle) {
        self.incidents = Some(incidents);
    }

    /// Loads silences and the notification log, then serves until `stop` fires.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        match self.store.load_silences().await {
            Ok(rows) => {
                for row in rows {
                    match serde_json::from_str::<PostableSilence>(&row.body)
                        .map_err(|e| e.to_string())
                        .and_then(|body| {
                            Silence::from_stored(&body, row.updated_at).map_err(|e| e.to_string())
                        }) {
                        Ok(silence) => {
                            self.silences.insert(silence.id.clone(), silence);
                        }
                        Err(e) => {
                            tracing::error!(id = %row.id, error = %e, "skipping an unreadable stored silence")
                        }
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "could not load silences"),
        }
        match self.store.load_notification_log().await {
            Ok(entries) => self.core.restore_log(entries),
            Err(e) => tracing::error!(error = %e, "could not load the notification log"),
        }
        let mut last_tick = self.clock.now_ms();
        let mut last_prune = last_tick;
        loop {
            if *stop.borrow() {
                break;
            }
            let now = self.clock.now_ms();
            if now - last_prune >= 3_600_000 {
                last_prune = now;
                let cutoff = now - self.retention_ms;
                self.silences.retain(|_, s| s.ends_at_ms >= cutoff);
                self.core.prune_log(cutoff);
            }
            self.on_silences_ended(last_tick, now);
            last_tick = now;
            self.flush(now).await;
            self.publish_sizes(now);
            let wake = self.next_wake(now);
            let sleep = match wake {
                Some(at) => tokio::time::sleep_until(self.clock.instant_at(at)),
                None => tokio::time::sleep(Duration::from_secs(60)),
            };
            tokio::select! {
                _ = stop.changed() => {}
                command = self.commands.recv() => match command {
                    Some(command) => self.handle(command).await,
                    None => break,
                },
                _ = sleep => {}
            }
        }
        // Take what was handed over before the stop and flush what is due, so the last
        // transitions are decided (and persisted) rather than dropped.
        while let Ok(command) = self.commands.try_recv() {
            self.handle(command).await;
        }
        self.flush(self.clock.now_ms()).await;
        tracing::debug!("dispatcher stopped");
    }

    /// The next group flush or silence boundary.
    fn next_wake(&self, now: i64) -> Option<i64> {
        let silence_edges = self
            .silences
            .values()
            .flat_map(|s| [s.starts_at_ms, s.ends_at_ms])
            .filter(|t| *t > now);
        self.core.next_due().into_iter().chain(silence_edges).min()
    }

    /// Silences that ended in `(from, to]`: the groups of the firing alerts they muted flush
    /// at once, so receivers hear that those alerts still fire.
    fn on_silences_ended(&mut self, from: i64, to: i64) {
        let ended: Vec<Silence> = self
            .silences
            .values()
            .filter(|s| s.ends_at_ms > from && s.ends_at_ms <= to)
            .cloned()
            .collect();
        for silence in ended {
            let touched = self.core.flush_now_where(
                |labels| silence.matchers.iter().all(|m| m.matches(labels)),
                to,
            );
            if touched > 0 {
                metrics::counter!("redline_collector_silences_expired_while_firing_total")
                    .increment(1);
                tracing::warn!(
                    silence = %silence.id,
                    groups = touched,
                    "silence ended while its alerts still fire; notifying now"
                );
            }
        }
    }

    fn view(&self) -> View<'_> {
        View {
            routing: &self.routing,
            silences: &self.silences,
        }
    }

    async fn handle(&mut self, command: Command) {
        let now = self.clock.now_ms();
        match command {
            Command::Alerts(alerts) => {
                let routing = self.routing.clone();
                let view = View {
                    routing: &routing,
                    silences: &self.silences,
                };
                let mut keyed = Vec::new();
                // Incident announcements go through the tree only when a route asks for them
                // (a matcher on `redline_incident`): otherwise they would fall to the root
                // receiver and double every page.
                let incidents_routed = routing
                    .config
                    .route
                    .routes_on_label(crate::incident::manager::INCIDENT_LABEL);
                for alert in alerts {
                    if alert
                        .labels
                        .contains_key(crate::incident::manager::INCIDENT_LABEL)
                    {
                        if incidents_routed {
                            self.core.insert(alert, &view, now);
                        }
                        continue;
                    }
                    if self.incidents.is_some() {
                        // The incident's default key: the group key of the first route the
                        // alert takes.
                        let key = routing
                            .config
                            .route
                            .matching_routes(&alert.labels)
                            .first()
                            .map(|node| node.group_key(&alert.labels))
                            .unwrap_or_default();
                        keyed.push((key, alert.clone()));
                    }
                    self.core.insert(alert, &view, now);
                }
                if let Some(incidents) = &self.incidents {
                    incidents.alerts(keyed).await;
                }
            }
            Command::ListAlerts(reply) => {
                let views = self
                    .core
                    .alerts(&self.view(), now)
                    .into_iter()
                    .map(|(alert, status)| AlertView {
                        alert,
                        status,
                        now_ms: now,
                    })
                    .collect();
                let _ = reply.send(views);
            }
            Command::PutSilence(silence, reply) => {
                let _ = reply.send(self.put_silence(*silence, now).await);
            }
            Command::ExpireSilence(id, reply) => {
                let _ = reply.send(self.expire_silence(&id, now).await);
            }
            Command::ListSilences(reply) => {
                let mut list: Vec<GettableSilence> =
                    self.silences.values().map(|s| s.to_gettable(now)).collect();
                // Alertmanager lists active, then pending, then expired silences.
                list.sort_by_key(|s| match s.status.state {
                    SilenceState::Active => 0,
                    SilenceState::Pending => 1,
                    SilenceState::Expired => 2,
                });
                let _ = reply.send(list);
            }
            Command::Reload(routing) => {
                self.routing = Arc::new(*routing);
                let routing = self.routing.clone();
                let view = View {
                    routing: &routing,
                    silences: &self.silences,
                };
                self.core.reroute(&view, now);
                tracing::info!("notification routing reloaded");
            }
        }
    }

    async fn put_silence(
        &mut self,
        mut silence: Silence,
        now: i64,
    ) -> Result<String, DispatchError> {
        silence.accept_at(now)?;
        if !silence.id.is_empty() {
            match self.silences.get(&silence.id) {
                None => return Err(DispatchError::SilenceNotFound(silence.id)),
                Some(old) if old.state(now) == SilenceState::Expired => {
                    return Err(DispatchError::SilenceExpired(silence.id));
                }
                Some(_) => {}
            }
        } else {
            silence.id = new_silence_id(&silence, now);
        }
        self.persist_silence(&silence).await?;
        let id = silence.id.clone();
        self.silences.insert(id.clone(), silence);
        Ok(id)
    }

    async fn expire_silence(&mut self, id: &str, now: i64) -> Result<(), DispatchError> {
        let Some(old) = self.silences.get(id) else {
            return Err(DispatchError::SilenceNotFound(id.to_owned()));
        };
        if old.state(now) == SilenceState::Expired {
            return Err(DispatchError::SilenceExpired(id.to_owned()));
        }
        let mut silence = old.clone();
        // Alertmanager: a pending silence expires by starting and ending now.
        if silence.starts_at_ms > now {
            silence.starts_at_ms = now;
        }
        silence.ends_at_ms = now;
        silence.updated_at_ms = now;
        self.persist_silence(&silence).await?;
        let ended_at = now;
        self.silences.insert(id.to_owned(), silence);
        // The run loop sees the silence end at `now` (after its last tick) and notifies the
        // groups it muted, as for a silence reaching its end.
        let _ = ended_at;
        Ok(())
    }

    async fn persist_silence(&self, silence: &Silence) -> Result<(), DispatchError> {
        let gettable = silence.to_gettable(silence.updated_at_ms);
        let body = PostableSilence {
            id: silence.id.clone(),
            matchers: gettable.matchers,
            starts_at: gettable.starts_at,
            ends_at: gettable.ends_at,
            created_by: gettable.created_by,
            comment: gettable.comment,
        };
        let body = serde_json::to_string(&body)
            .map_err(|e| DispatchError::Store(crate::store::StoreError::Commit(e.to_string())))?;
        self.store
            .put_silence(SilenceRow {
                id: silence.id.clone(),
                body,
                ends_at: silence.ends_at_ms,
                updated_at: silence.updated_at_ms,
            })
            .await?;
        Ok(())
    }

    async fn flush(&mut self, now: i64) {
        // Most wake-ups are commands; only look at the groups when one is due.
        if self.core.next_due().is_none_or(|due| due > now) {
            return;
        }
        let routing = self.routing.clone();
        let view = View {
            routing: &routing,
            silences: &self.silences,
        };
        let outgoing = self.core.flush_due(&view, now);
        if outgoing.is_empty() {
            return;
        }
        let (entries, log): (Vec<_>, Vec<_>) =
            outgoing.into_iter().map(|o| (o.entry, o.log)).unzip();
        let entries: Vec<_> = entries.into_iter().flatten().collect();
        match self.store.enqueue_notifications(entries.clone(), log).await {
            Ok(ids) => {
                for (entry, id) in entries.into_iter().zip(ids) {
                    if self
                        .outbox
                        .send(OutboxRow::enqueued(id, entry))
                        .await
                        .is_err()
                    {
                        // The worker is gone (shutdown); the entry is in SQLite and is
                        // delivered after the restart.
                        break;
                    }
                }
            }
            Err(e) => {
                // Not durable, so not decided: put the alerts back so the next flush (or the
                // next start) decides again. The in-memory log already moved on, which at
                // worst delays these alerts to the next repeat; count it loudly.
                metrics::counter!("redline_collector_notifications_dropped_total", "reason" => "store")
                    .increment(entries.len() as u64);
                tracing::error!(error = %e, notifications = entries.len(), "could not persist notifications");
                for entry in entries {
                    for alert in entry.notification.alerts {
                        self.core.insert(alert, &view, now);
                    }
                }
            }
        }
    }

    fn publish_sizes(&self, now: i64) {
        let (alerts, groups) = self.core.sizes();
        metrics::gauge!("redline_collector_dispatch_alerts").set(alerts as f64);
        metrics::gauge!("redline_collector_dispatch_groups").set(groups as f64);
        let active = self
            .silences
            .values()
            .filter(|s| s.state(now) == SilenceState::Active)
            .count();
        metrics::gauge!("redline_collector_silences_active").set(active as f64);
    }
}

/// A new silence id: a UUID-shaped string (version 4 layout) from random bits, as Alertmanager
/// uses UUIDs.
fn new_silence_id(silence: &Silence, now: i64) -> String {
    let a: u64 = rand::random();
    let b: u64 = rand::random::<u64>() ^ (now as u64) ^ silence.matchers.len() as u64;
    let a = (a & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::StoreOptions;

    /// A silence whose regex takes long to compile does not hold up the dispatcher: it keeps
    /// answering while the matchers compile, and the silence is stored once they have.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn silence_regexes_compile_off_the_dispatcher_task() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreOptions::new(dir.path())).unwrap();
        let (outbox, _outbox_rx) = mpsc::channel(16);
        let (dispatcher, handle) = Dispatcher::new(
            store,
            Routing::load(None).unwrap(),
            "http://redline.example".to_owned(),
            Clock::new(),
            outbox,
            16,
            Duration::from_secs(3600),
        );
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(dispatcher.run(stopped));

        // Unicode classes: hundreds of milliseconds to compile in a debug build.
        let body: PostableSilence = serde_json::from_value(serde_json::json!({
            "matchers": [{"name": "job", "value": r"\w{1,100}z\w{1,100}", "isRegex": true}],
            "startsAt": "2000-01-01T00:00:00Z",
            "endsAt": "2999-01-01T00:00:00Z",
            "createdBy": "test",
            "comment": "slow to compile",
        }))
        .unwrap();
        let put = tokio::spawn({
            let handle = handle.clone();
            async move { handle.put_silence(body).await }
        });
        // Time for the request to reach the dispatcher, were it sent before compiling.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let while_compiling = handle.silences().await.unwrap();
        assert!(
            !put.is_finished(),
            "the silence was stored before the probe was answered"
        );
        assert!(while_compiling.is_empty());

        let id = put.await.unwrap().unwrap();
        let listed = handle.silences().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, id);
        stop.send(true).unwrap();
        task.await.unwrap();
    }
}
