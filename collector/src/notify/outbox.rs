//! The outbox worker: delivers persisted notifications, retrying until they succeed or it is
//! time to give up, and records every attempt.
//!
//! Lifecycle: `Outbox::run` loads the pending entries from the store (so a restart resumes
//! them), then takes new entries from the dispatcher over a bounded channel (the dispatcher
//! persisted them before sending; the channel only saves a read). Each integration
//! (`receiver/kind/index`) has its own FIFO queue with at most one attempt in flight, so a
//! receiver that is down delays only its own notifications, and a firing notice is never
//! overtaken by the resolved notice that follows it. A failed attempt is retried after an
//! exponential backoff with full jitter, or after the receiver's `Retry-After` when it sent
//! one; permanent failures (4xx, SMTP 5xx) and entries older than `give_up_after` are marked
//! failed. Every attempt goes to the store and to `/metrics`.
//!
//! Shutdown: when `stop` fires, no new attempt starts; attempts in flight finish (each is
//! bounded by its integration's timeout) and are recorded; the rest stay pending in SQLite.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::store::{AttemptOutcome, DeliveryAttempt, OutboxRow, Store};

/// Why an attempt failed, as the receivers classify it.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryFailure {
    /// Whether trying again later may succeed (network errors, timeouts, 408, 429, 5xx, SMTP
    /// 4xx) or not (other 4xx, SMTP 5xx, a configuration that cannot work).
    pub retryable: bool,
    /// The receiver's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
    pub message: String,
}

pub type DeliveryFuture = Pin<Box<dyn Future<Output = Result<(), DeliveryFailure>> + Send>>;

/// Sends one notification to one integration. Implemented over the configured webhook and
/// email receivers (`notify::Integrations`); by test receivers in tests.
pub trait Deliver: Send + Sync + 'static {
    fn deliver(&self, row: &OutboxRow) -> DeliveryFuture;
}

/// Retry timing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// An entry still undelivered this long after it was created is marked failed.
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            give_up_after: Duration::from_secs(3600),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempts + 1`: the receiver's `Retry-After` when given (capped
    /// at `give_up_after`), else a uniformly random delay up to `initial * 2^attempts`, capped
    /// at `max_backoff` ("full jitter", so many collectors do not retry in step).
    pub fn delay(&self, attempts: i64, retry_after: Option<Duration>, jitter: f64) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.give_up_after);
        }
        let exp = 2u32.saturating_pow(attempts.clamp(0, 30) as u32);
        let ceiling = self
            .initial_backoff
            .saturating_mul(exp)
            .min(self.max_backoff);
        // At least a tenth of the ceiling, so a retry never spins.
        ceiling.mul_f64(jitter.clamp(0.1, 1.0))
    }
}

/// A finished attempt: the task id and what the task returned.
type Attempted = (
    tokio::task::Id,
    (OutboxRow, Result<(), DeliveryFailure>, i64, i64),
);

/// The worker's handle to send newly enqueued entries.
pub type OutboxSender = mpsc::Sender<OutboxRow>;

pub struct Outbox {
    store: Store,
    deliver: Arc<dyn Deliver>,
    policy: RetryPolicy,
    clock: Clock,
    /// New entries from the dispatcher; closes when the dispatcher ends.
    incoming: mpsc::Receiver<OutboxRow>,
    /// Told of every final outcome, for incident timelines.
    incidents: Option<crate::incident::manager::IncidentHandle>,
}

/// The kind of an integration id (`receiver/kind/index`) and its receiver, for metric labels.
fn integration_labels(id: &str) -> (String, String) {
    let mut parts = id.rsplitn(3, '/');
    let _index = parts.next();
    let kind = parts.next().unwrap_or("unknown").to_owned();
    let receiver = parts.next().unwrap_or("unknown").to_owned();
    (receiver, kind)
}

fn jitter() -> f64 {
    rand::random::<f64>()
}

impl Outbox {
    /// `capacity` bounds the channel from the dispatcher.
    pub fn new(
        store: Store,
        deliver: Arc<dyn Deliver>,
        policy: RetryPolicy,
        clock: Clock,
        capacity: usize,
    ) -> (Outbox, OutboxSender) {
        let (tx, incoming) = mpsc::channel(capacity.max(1));
        (
            Outbox {
                store,
                deliver,
                policy,
                clock,
                incoming,
                incidents: None,
            },
            tx,
        )
    }

    /// Tells the incident manager of every delivered and failed notification.
    pub fn set_incidents(&mut self, incidents: crate::incident::manager::IncidentHandle) {
        self.incidents = Some(incidents);
    }

    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut queues: BTreeMap<String, VecDeque<OutboxRow>> = BTreeMap::new();
        match self.store.pending_notifications().await {
            Ok(rows) => {
                if !rows.is_empty() {
                    tracing::info!(pending = rows.len(), "resuming pending notifications");
                }
                for row in rows {
                    queues
                        .entry(row.integration.clone())
                        .or_default()
                        .push_back(row);
                }
            }
            Err(e) => tracing::error!(error = %e, "could not load pending notifications"),
        }
        let mut in_flight: JoinSet<(OutboxRow, Result<(), DeliveryFailure>, i64, i64)> =
            JoinSet::new();
        // Integrations with an attempt in flight, by the attempt's task id, so a task that
        // panics still frees its integration (and its row fails instead of stalling the queue).
        let mut busy: HashMap<tokio::task::Id, OutboxRow> = HashMap::new();
        let mut incoming_open = true;
        loop {
            if *stop.borrow() {
                break;
            }
            // Start every due head of an idle queue.
            let now = self.clock.now_ms();
            let mut next_wake: Option<i64> = None;
            for (integration, queue) in &queues {
                if busy.values().any(|r| &r.integration == integration) {
                    continue;
                }
                let Some(head) = queue.front() else { continue };
                if head.next_attempt_at <= now {
                    let row = head.clone();
                    let deliver = self.deliver.clone();
                    let clock = self.clock;
                    let task_row = row.clone();
                    let handle = in_flight.spawn(async move {
                        let row = task_row;
                        let started = clock.now_ms();
                        let result = deliver.deliver(&row).await;
                        let ended = clock.now_ms();
                        (row, result, started, ended)
                    });
                    busy.insert(handle.id(), row);
                } else {
                    next_wake = Some(
                        next_wake.map_or(head.next_attempt_at, |w| w.min(head.next_attempt_at)),
                    );
                }
            }
            let pending: usize = queues.values().map(VecDeque::len).sum();
            metrics::gauge!("redline_collector_notifications_pending").set(pending as f64);
            let sleep = match next_wake {
                Some(at) => tokio::time::sleep_until(self.clock.instant_at(at)),
                None => tokio::time::sleep(Duration::from_secs(3600)),
            };
            tokio::select! {
                _ = stop.changed() => {}
                row = self.incoming.recv(), if incoming_open => match row {
                    // A row committed just before the start-up load is both loaded and sent:
                    // keep one.
                    Some(row) if queues
                        .get(&row.integration)
                        .is_some_and(|q| q.iter().any(|r| r.id == row.id)) => {}
                    Some(row) => queues.entry(row.integration.clone()).or_default().push_back(row),
                    None => incoming_open = false,
                },
                Some(done) = in_flight.join_next_with_id(), if !in_flight.is_empty() => {
                    self.joined(&mut queues, &mut busy, done).await;
                }
                _ = sleep => {}
            }
        }
        // Let attempts in flight finish and record them; each is bounded by its timeout.
        while let Some(done) = in_flight.join_next_with_id().await {
            self.joined(&mut queues, &mut busy, done).await;
        }
        tracing::debug!("outbox worker stopped");
    }

    /// Handles a finished attempt task: its outcome, or, if it panicked, a permanent failure of
    /// its row.
    async fn joined(
        &self,
        queues: &mut BTreeMap<String, VecDeque<OutboxRow>>,
        busy: &mut HashMap<tokio::task::Id, OutboxRow>,
        done: Result<Attempted, tokio::task::JoinError>,
    ) {
        match done {
            Ok((id, (row, result, started, ended))) => {
                busy.remove(&id);
                self.finish(queues, row, result, started, ended).await;
            }
            Err(e) => {
                let Some(row) = busy.remove(&e.id()) else {
                    return;
                };
                let now = self.clock.now_ms();
                let failure = DeliveryFailure {
                    retryable: false,
                    retry_after: None,
                    message: format!("the delivery task failed: {e}"),
                };
                self.finish(queues, row, Err(failure), now, now).await;
            }
        }
    }

    async fn finish(
        &self,
        queues: &mut BTreeMap<String, VecDeque<OutboxRow>>,
        row: OutboxRow,
        result: Result<(), DeliveryFailure>,
        started: i64,
        ended: i64,
    ) {
        let (receiver, kind) = integration_labels(&row.integration);
        let attempts = row.attempts + 1;
        let (outcome, error, next) = match result {
            Ok(()) => (AttemptOutcome::Delivered, String::new(), None),
            Err(failure) => {
                let give_up_at = row.created_at + self.policy.give_up_after.as_millis() as i64;
                let delay = self
                    .policy
                    .delay(row.attempts, failure.retry_after, jitter());
                let next_at = ended + delay.as_millis() as i64;
                if failure.retryable && next_at < give_up_at {
                    (AttemptOutcome::Retry, failure.message, Some(next_at))
                } else {
                    let why = if failure.retryable {
                        format!("gave up after {attempts} attempts: {}", failure.message)
                    } else {
                        failure.message
                    };
                    tracing::error!(
                        integration = %row.integration,
                        group_key = %row.notification.group_key,
                        error = %why,
                        "notification failed for good"
                    );
                    (AttemptOutcome::Failed, why, None)
                }
            }
        };
        if outcome == AttemptOutcome::Retry {
            tracing::warn!(integration = %row.integration, attempts, error = %error, "notification attempt failed; will retry");
        }
        metrics::counter!(
            "redline_collector_notification_attempts_total",
            "receiver" => receiver.clone(),
            "integration" => kind.clone(),
            "outcome" => outcome.as_str()
        )
        .increment(1);
        metrics::histogram!(
            "redline_collector_notification_attempt_duration_seconds",
            "integration" => kind.clone()
        )
        .record((ended - started).max(0) as f64 / 1000.0);
        if outcome != AttemptOutcome::Retry {
            metrics::counter!(
                "redline_collector_notifications_total",
                "receiver" => receiver,
                "integration" => kind,
                "outcome" => outcome.as_str()
            )
            .increment(1);
        }
        if outcome != AttemptOutcome::Retry
            && let Some(incidents) = &self.incidents
        {
            incidents.delivery(crate::incident::manager::DeliveryEvent {
                integration: row.integration.clone(),
                delivered: outcome == AttemptOutcome::Delivered,
                error: error.clone(),
                at: ended,
                alerts: row
                    .notification
                    .alerts
                    .iter()
                    .map(|a| a.labels.clone())
                    .collect(),
            });
        }
        let attempt = DeliveryAttempt {
            outbox_id: row.id,
            integration: row.integration.clone(),
            at: started,
            duration_ms: (ended - started).max(0),
            outcome,
            error,
            next_attempt_at: next,
        };
        if let Err(e) = self.store.record_delivery_attempt(attempt).await {
            // The attempt is not recorded; the entry stays pending in SQLite and is tried
            // again after a restart. Receivers drop the duplicate by its idempotency key.
            tracing::error!(error = %e, outbox_id = row.id, "could not record a delivery attempt");
        }
        let Some(queue) = queues.get_mut(&row.integration) else {
            return;
        };
        match next {
            Some(next_at) => {
                if let Some(head) = queue.front_mut()
                    && head.id == row.id
                {
                    head.attempts = attempts;
                    head.next_attempt_at = next_at;
                }
            }
            None => {
                if queue.front().is_some_and(|h| h.id == row.id) {
                    queue.pop_front();
                }
                if queue.is_empty() {
                    queues.remove(&row.integration);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_honours_retry_after() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(0, None, 1.0), Duration::from_secs(1));
        assert_eq!(p.delay(3, None, 1.0), Duration::from_secs(8));
        assert_eq!(p.delay(20, None, 1.0), Duration::from_secs(60));
        assert_eq!(p.delay(3, None, 0.5), Duration::from_secs(4));
        assert_eq!(p.delay(3, None, 0.0), Duration::from_millis(800));
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(120)), 0.3),
            Duration::from_secs(120)
        );
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(86_400)), 0.3),
            p.give_up_after
        );
        assert!((0.0..1.0).contains(&jitter()));
    }

    #[test]
    fn integration_ids_split_into_metric_labels() {
        assert_eq!(
            integration_labels("ops/webhook/0"),
            ("ops".to_owned(), "webhook".to_owned())
        );
        assert_eq!(
            integration_labels("team/a/email/1"),
            ("team/a".to_owned(), "email".to_owned())
        );
    }
}

#[cfg(test)]
mod delivery_tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;

    use super::*;
    use crate::notify::{LabelSet, Notification};
    use crate::store::{OutboxEntry, StoreOptions};

    /// A receiver that is down until `up_at_ms` (answers retryable failures), then records
    /// what it receives.
    struct FlakyReceiver {
        clock: Clock,
        up_at_ms: i64,
        received: Mutex<Vec<String>>,
        attempts: Mutex<usize>,
    }

    impl Deliver for FlakyReceiver {
        fn deliver(&self, row: &OutboxRow) -> DeliveryFuture {
            *self.attempts.lock().unwrap() += 1;
            let result = if self.clock.now_ms() < self.up_at_ms {
                Err(DeliveryFailure {
                    retryable: true,
                    retry_after: None,
                    message: "connection refused".into(),
                })
            } else if row.integration.contains("broken") {
                Err(DeliveryFailure {
                    retryable: false,
                    retry_after: None,
                    message: "400 Bad Request".into(),
                })
            } else {
                self.received
                    .lock()
                    .unwrap()
                    .push(row.idempotency_key.clone());
                Ok(())
            };
            Box::pin(async move { result })
        }
    }

    fn entry(integration: &str, key: &str, now: i64) -> OutboxEntry {
        OutboxEntry {
            integration: integration.into(),
            idempotency_key: key.into(),
            notification: Notification {
                receiver: "ops".into(),
                group_key: "{}:{}".into(),
                group_labels: LabelSet::new(),
                alerts: vec![],
                now_ms: now,
                external_url: String::new(),
                raw_body: None,
            },
            created_at: now,
        }
    }

    /// Time scaled 1:200 (the store's writer thread does not take part in tokio's paused
    /// time): 1.5 s of outage stands for five minutes, backoff caps at 300 ms for 60 s.
    fn scaled_policy() -> RetryPolicy {
        RetryPolicy {
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(300),
            give_up_after: Duration::from_secs(18),
        }
    }

    #[tokio::test]
    async fn issue_4_receiver_down_for_five_minutes_gets_every_notification_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreOptions::new(dir.path())).unwrap();
        let clock = Clock::new();
        let t0 = clock.now_ms();
        let receiver = Arc::new(FlakyReceiver {
            clock,
            up_at_ms: t0 + 1500,
            received: Mutex::new(Vec::new()),
            attempts: Mutex::new(0),
        });
        // Two entries persisted before the worker starts (as after a restart), three sent
        // while it runs, one to an integration that fails permanently.
        let ids = store
            .enqueue_notifications(
                vec![
                    entry("ops/webhook/0", "n1", t0),
                    entry("ops/webhook/0", "n2", t0),
                ],
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(ids.len(), 2);
        let (outbox, tx) = Outbox::new(store.clone(), receiver.clone(), scaled_policy(), clock, 16);
        let (stop_tx, stop_rx) = watch::channel(false);
        let worker = tokio::spawn(outbox.run(stop_rx));
        for key in ["n3", "n4", "n5"] {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let integration = if key == "n5" {
                "ops/broken/0"
            } else {
                "ops/webhook/0"
            };
            let now = clock.now_ms();
            let ids = store
                .enqueue_notifications(vec![entry(integration, key, now)], vec![])
                .await
                .unwrap();
            let row = store
                .pending_notifications()
                .await
                .unwrap()
                .into_iter()
                .find(|r| r.id == ids[0])
                .unwrap();
            tx.send(row).await.unwrap();
        }
        // Down for "five minutes", then every retry succeeds within the backoff cap.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while receiver.received.lock().unwrap().len() < 4 && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // And the permanently failing one is given up on (after its retries while "down").
        while !store.pending_notifications().await.unwrap().is_empty()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            *receiver.received.lock().unwrap(),
            vec!["n1", "n2", "n3", "n4"],
            "each notification once, in order"
        );
        assert!(*receiver.attempts.lock().unwrap() > 5, "retried while down");
        assert!(store.pending_notifications().await.unwrap().is_empty());
        let attempts = store.delivery_attempts(None, 1000).await.unwrap();
        let delivered = attempts
            .iter()
            .filter(|a| a.outcome == AttemptOutcome::Delivered)
            .count();
        let failed: Vec<_> = attempts
            .iter()
            .filter(|a| a.outcome == AttemptOutcome::Failed)
            .collect();
        assert_eq!(delivered, 4);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].integration, "ops/broken/0");
        assert!(
            attempts
                .iter()
                .any(|a| a.outcome == AttemptOutcome::Retry && a.error == "connection refused")
        );
        stop_tx.send(true).unwrap();
        worker.await.unwrap();
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn gives_up_after_the_configured_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreOptions::new(dir.path())).unwrap();
        let clock = Clock::new();
        let t0 = clock.now_ms();
        let receiver = Arc::new(FlakyReceiver {
            clock,
            up_at_ms: i64::MAX,
            received: Mutex::new(Vec::new()),
            attempts: Mutex::new(0),
        });
        store
            .enqueue_notifications(vec![entry("ops/webhook/0", "n1", t0)], vec![])
            .await
            .unwrap();
        let policy = RetryPolicy {
            give_up_after: Duration::from_millis(500),
            ..scaled_policy()
        };
        let (outbox, _tx) = Outbox::new(store.clone(), receiver.clone(), policy, clock, 4);
        let (stop_tx, stop_rx) = watch::channel(false);
        let worker = tokio::spawn(outbox.run(stop_rx));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !store.pending_notifications().await.unwrap().is_empty()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let attempts = store.delivery_attempts(None, 1000).await.unwrap();
        assert_eq!(attempts[0].outcome, AttemptOutcome::Failed);
        assert!(
            attempts[0].error.starts_with("gave up after"),
            "{}",
            attempts[0].error
        );
        // No retry is scheduled past the give-up time; an attempt may start a little late on a
        // loaded machine, hence the slack.
        assert!(attempts.iter().all(|a| a.at <= t0 + 500 + 1000));
        stop_tx.send(true).unwrap();
        worker.await.unwrap();
        store.close().await.unwrap();
    }
}

#[cfg(test)]
mod panic_tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;

    use super::*;
    use crate::notify::{LabelSet, Notification};
    use crate::store::{OutboxEntry, StoreOptions};

    /// Panics on the first notification, delivers the rest.
    struct PanicsOnce(Mutex<Vec<String>>);

    impl Deliver for PanicsOnce {
        fn deliver(&self, row: &OutboxRow) -> DeliveryFuture {
            let key = row.idempotency_key.clone();
            let seen = self.0.lock().unwrap().len();
            self.0.lock().unwrap().push(key.clone());
            Box::pin(async move {
                assert!(seen > 0, "a receiver bug");
                Ok(())
            })
        }
    }

    #[tokio::test]
    async fn a_panicking_delivery_fails_its_row_and_the_queue_moves_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreOptions::new(dir.path())).unwrap();
        let clock = Clock::new();
        let entry = |key: &str| OutboxEntry {
            integration: "ops/webhook/0".into(),
            idempotency_key: key.into(),
            notification: Notification {
                receiver: "ops".into(),
                group_key: "{}:{}".into(),
                group_labels: LabelSet::new(),
                alerts: vec![],
                now_ms: 0,
                external_url: String::new(),
                raw_body: None,
            },
            created_at: clock.now_ms(),
        };
        store
            .enqueue_notifications(vec![entry("first"), entry("second")], vec![])
            .await
            .unwrap();
        let receiver = Arc::new(PanicsOnce(Mutex::new(Vec::new())));
        let (outbox, _tx) = Outbox::new(
            store.clone(),
            receiver.clone(),
            RetryPolicy::default(),
            clock,
            4,
        );
        let (stop_tx, stop_rx) = watch::channel(false);
        let worker = tokio::spawn(outbox.run(stop_rx));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !store.pending_notifications().await.unwrap().is_empty()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let attempts = store.delivery_attempts(None, 10).await.unwrap();
        let outcomes: Vec<AttemptOutcome> = attempts.iter().rev().map(|a| a.outcome).collect();
        assert_eq!(
            outcomes,
            vec![AttemptOutcome::Failed, AttemptOutcome::Delivered]
        );
        assert!(
            attempts[1].error.contains("the delivery task failed"),
            "{}",
            attempts[1].error
        );
        stop_tx.send(true).unwrap();
        worker.await.unwrap();
        store.close().await.unwrap();
    }
}
