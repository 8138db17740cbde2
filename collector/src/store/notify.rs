//! Notification state in SQLite: silences, the notification log and the delivery outbox.
//!
//! Called by the alert dispatcher (`alert::dispatcher`), which persists a notification and the
//! log entry saying it was sent in one transaction before any delivery is attempted, and by the
//! outbox worker (`notify::outbox`), which records every attempt. All writes run on the
//! writer thread's connection (`Store::exec`), between group commits of samples; reads use the
//! read-only pool. Bodies the store does not interpret (silences, notifications) are JSON.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError, sql};
use crate::notify::Notification;

/// A silence as stored: its id, its JSON body (Alertmanager's `gettableSilence`), and the
/// fields the store filters on.
#[derive(Clone, Debug, PartialEq)]
pub struct SilenceRow {
    pub id: String,
    pub body: String,
    pub ends_at: i64,
    pub updated_at: i64,
}

/// What one receiver integration was last told about one alert group.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct NotificationLogEntry {
    pub group_key: String,
    /// `receiver/kind/index`, e.g. `ops/webhook/0`.
    pub integration: String,
    pub firing: Vec<u64>,
    pub resolved: Vec<u64>,
    pub sent_at: i64,
}

/// A notification to enqueue for one integration.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEntry {
    pub integration: String,
    /// Stays the same across retries, so receivers can drop duplicates.
    pub idempotency_key: String,
    pub notification: Notification,
    pub created_at: i64,
}

/// A pending notification as the outbox worker reads it back.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub integration: String,
    pub idempotency_key: String,
    pub notification: Notification,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub attempts: i64,
}

impl OutboxRow {
    /// The row of an entry just enqueued with `id`: due now, never attempted.
    pub fn enqueued(id: i64, entry: OutboxEntry) -> OutboxRow {
        OutboxRow {
            id,
            integration: entry.integration,
            idempotency_key: entry.idempotency_key,
            notification: entry.notification,
            created_at: entry.created_at,
            next_attempt_at: entry.created_at,
            attempts: 0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered,
    /// Failed, will be tried again at `next_attempt_at`.
    Retry,
    /// Failed for good (permanent error, or retried for too long).
    Failed,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Retry => "retry",
            AttemptOutcome::Failed => "failed",
        }
    }

    fn parse(s: &str) -> AttemptOutcome {
        match s {
            "delivered" => AttemptOutcome::Delivered,
            "retry" => AttemptOutcome::Retry,
            _ => AttemptOutcome::Failed,
        }
    }
}

/// One delivery attempt of an outbox entry.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryAttempt {
    pub outbox_id: i64,
    pub integration: String,
    pub at: i64,
    pub duration_ms: i64,
    pub outcome: AttemptOutcome,
    pub error: String,
    /// For `Retry`: when to try again.
    pub next_attempt_at: Option<i64>,
}

fn fingerprints(list: &[u64]) -> String {
    // Hex strings: JSON numbers above 2^53 lose precision in some readers.
    let hex: Vec<String> = list.iter().map(|f| format!("{f:016x}")).collect();
    serde_json::to_string(&hex).unwrap_or_else(|_| "[]".to_owned())
}

fn parse_fingerprints(text: &str) -> Vec<u64> {
    serde_json::from_str::<Vec<String>>(text)
        .unwrap_or_default()
        .iter()
        .filter_map(|h| u64::from_str_radix(h, 16).ok())
        .collect()
}

fn encode_err(stage: &'static str) -> impl FnOnce(serde_json::Error) -> StoreError {
    move |e| StoreError::Commit(format!("{stage}: {e}"))
}

impl Store {
    /// Creates or replaces a silence.
    pub async fn put_silence(&self, row: SilenceRow) -> Result<(), StoreError> {
        self.exec(move |conn| {
            conn.execute(
                "INSERT INTO silences (id, body, ends_at, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET body = ?2, ends_at = ?3, updated_at = ?4",
                params![row.id, row.body, row.ends_at, row.updated_at],
            )
            .map_err(sql("put silence"))?;
            Ok(())
        })
        .await
    }

    /// Every stored silence, oldest update first.
    pub async fn load_silences(&self) -> Result<Vec<SilenceRow>, StoreError> {
        self.blocking(|store| {
            store.readers.with(|conn| {
                let mut stmt = conn
                    .prepare(
                        "SELECT id, body, ends_at, updated_at FROM silences ORDER BY updated_at",
                    )
                    .map_err(sql("load silences"))?;
                let rows = stmt
                    .query_map([], |r| {
                        Ok(SilenceRow {
                            id: r.get(0)?,
                            body: r.get(1)?,
                            ends_at: r.get(2)?,
                            updated_at: r.get(3)?,
                        })
                    })
                    .map_err(sql("load silences"))?;
                rows.collect::<Result<_, _>>().map_err(sql("load silences"))
            })
        })
        .await
    }

    /// Persists notifications and the log entries that say they were sent, in one transaction,
    /// and returns the outbox ids in the order of `entries`. Once this returns, the
    /// notifications will be delivered (or given up on) even across restarts.
    pub async fn enqueue_notifications(
        &self,
        entries: Vec<OutboxEntry>,
        log: Vec<NotificationLogEntry>,
    ) -> Result<Vec<i64>, StoreError> {
        let encoded: Vec<(OutboxEntry, String)> = entries
            .into_iter()
            .map(|e| {
                let json = serde_json::to_string(&e.notification)
                    .map_err(encode_err("encode notification"))?;
                Ok((e, json))
            })
            .collect::<Result<_, StoreError>>()?;
        self.exec(move |conn| enqueue(conn, &encoded, &log)).await
    }

    /// The notification log, as the dispatcher loads it at start.
    pub async fn load_notification_log(&self) -> Result<Vec<NotificationLogEntry>, StoreError> {
        self.blocking(|store| {
            store.readers.with(|conn| {
                let mut stmt = conn
                    .prepare(
                        "SELECT group_key, integration, firing, resolved, sent_at
                         FROM notification_log",
                    )
                    .map_err(sql("load notification log"))?;
                let rows = stmt
                    .query_map([], |r| {
                        Ok(NotificationLogEntry {
                            group_key: r.get(0)?,
                            integration: r.get(1)?,
                            firing: parse_fingerprints(&r.get::<_, String>(2)?),
                            resolved: parse_fingerprints(&r.get::<_, String>(3)?),
                            sent_at: r.get(4)?,
                        })
                    })
                    .map_err(sql("load notification log"))?;
                rows.collect::<Result<_, _>>()
                    .map_err(sql("load notification log"))
            })
        })
        .await
    }

    /// Every outbox entry not yet delivered or given up on, oldest first.
    pub async fn pending_notifications(&self) -> Result<Vec<OutboxRow>, StoreError> {
        self.blocking(|store| {
            store.readers.with(|conn| {
                let mut stmt = conn
                    .prepare(
                        "SELECT id, integration, idempotency_key, notification, created_at,
                                next_attempt_at, attempts
                         FROM outbox WHERE status = 'pending' ORDER BY id",
                    )
                    .map_err(sql("load outbox"))?;
                let mut rows = stmt.query([]).map_err(sql("load outbox"))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next().map_err(sql("load outbox"))? {
                    let id: i64 = r.get(0).map_err(sql("load outbox"))?;
                    let json: String = r.get(3).map_err(sql("load outbox"))?;
                    let Ok(notification) = serde_json::from_str::<Notification>(&json) else {
                        tracing::error!(outbox_id = id, "skipping an unreadable outbox entry");
                        continue;
                    };
                    out.push(OutboxRow {
                        id,
                        integration: r.get(1).map_err(sql("load outbox"))?,
                        idempotency_key: r.get(2).map_err(sql("load outbox"))?,
                        notification,
                        created_at: r.get(4).map_err(sql("load outbox"))?,
                        next_attempt_at: r.get(5).map_err(sql("load outbox"))?,
                        attempts: r.get(6).map_err(sql("load outbox"))?,
                    });
                }
                Ok(out)
            })
        })
        .await
    }

    /// Records one delivery attempt and moves its outbox entry on, in one transaction.
    pub async fn record_delivery_attempt(
        &self,
        attempt: DeliveryAttempt,
    ) -> Result<(), StoreError> {
        self.exec(move |conn| {
            let tx = conn.transaction().map_err(sql("record attempt"))?;
            tx.execute(
                "INSERT INTO delivery_attempts (outbox_id, at, duration_ms, outcome, error)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    attempt.outbox_id,
                    attempt.at,
                    attempt.duration_ms,
                    attempt.outcome.as_str(),
                    attempt.error
                ],
            )
            .map_err(sql("record attempt"))?;
            let (status, finished) = match attempt.outcome {
                AttemptOutcome::Retry => ("pending", None),
                AttemptOutcome::Delivered => ("delivered", Some(attempt.at)),
                AttemptOutcome::Failed => ("failed", Some(attempt.at)),
            };
            tx.execute(
                "UPDATE outbox SET attempts = attempts + 1, status = ?2, last_error = ?3,
                        next_attempt_at = ?4, finished_at = ?5
                 WHERE id = ?1",
                params![
                    attempt.outbox_id,
                    status,
                    attempt.error,
                    attempt.next_attempt_at.unwrap_or(attempt.at),
                    finished
                ],
            )
            .map_err(sql("record attempt"))?;
            tx.commit().map_err(sql("record attempt"))
        })
        .await
    }

    /// Delivery attempts, newest first, optionally of one outbox entry.
    pub async fn delivery_attempts(
        &self,
        outbox_id: Option<i64>,
        limit: usize,
    ) -> Result<Vec<DeliveryAttempt>, StoreError> {
        self.blocking(move |store| {
            store.readers.with(|conn| {
                let mut stmt = conn
                    .prepare(
                        "SELECT a.outbox_id, o.integration, a.at, a.duration_ms, a.outcome,
                                a.error
                         FROM delivery_attempts a JOIN outbox o ON o.id = a.outbox_id
                         WHERE ?1 IS NULL OR a.outbox_id = ?1
                         ORDER BY a.id DESC LIMIT ?2",
                    )
                    .map_err(sql("delivery attempts"))?;
                let rows = stmt
                    .query_map(params![outbox_id, limit as i64], |r| {
                        Ok(DeliveryAttempt {
                            outbox_id: r.get(0)?,
                            integration: r.get(1)?,
                            at: r.get(2)?,
                            duration_ms: r.get(3)?,
                            outcome: AttemptOutcome::parse(&r.get::<_, String>(4)?),
                            error: r.get(5)?,
                            next_attempt_at: None,
                        })
                    })
                    .map_err(sql("delivery attempts"))?;
                rows.collect::<Result<_, _>>()
                    .map_err(sql("delivery attempts"))
            })
        })
        .await
    }

    /// The status of one outbox entry (`pending`, `delivered`, `failed`), if it exists.
    pub async fn notification_status(&self, outbox_id: i64) -> Result<Option<String>, StoreError> {
        self.blocking(move |store| {
            store.readers.with(|conn| {
                conn.query_row(
                    "SELECT status FROM outbox WHERE id = ?1",
                    [outbox_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql("outbox status"))
            })
        })
        .await
    }

    /// Deletes finished outbox entries and their attempts, silences and notification log
    /// entries that ended before `cutoff_ms`.
    pub async fn prune_notifications(&self, cutoff_ms: i64) -> Result<usize, StoreError> {
        self.exec(move |conn| {
            let tx = conn.transaction().map_err(sql("prune notifications"))?;
            let mut removed = tx
                .execute(
                    "DELETE FROM delivery_attempts WHERE outbox_id IN
                       (SELECT id FROM outbox WHERE status != 'pending' AND finished_at < ?1)",
                    [cutoff_ms],
                )
                .map_err(sql("prune notifications"))?;
            for stmt in [
                "DELETE FROM outbox WHERE status != 'pending' AND finished_at < ?1",
                "DELETE FROM silences WHERE ends_at < ?1",
                "DELETE FROM notification_log WHERE sent_at < ?1",
            ] {
                removed += tx
                    .execute(stmt, [cutoff_ms])
                    .map_err(sql("prune notifications"))?;
            }
            tx.commit().map_err(sql("prune notifications"))?;
            Ok(removed)
        })
        .await
    }
}

fn enqueue(
    conn: &mut Connection,
    entries: &[(OutboxEntry, String)],
    log: &[NotificationLogEntry],
) -> Result<Vec<i64>, StoreError> {
    let tx = conn.transaction().map_err(sql("enqueue notifications"))?;
    let mut ids = Vec::with_capacity(entries.len());
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO outbox (integration, idempotency_key, notification, created_at,
                                     next_attempt_at, status)
                 VALUES (?1, ?2, ?3, ?4, ?4, 'pending')
                 ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .map_err(sql("enqueue notifications"))?;
        for (entry, json) in entries {
            insert
                .execute(params![
                    entry.integration,
                    entry.idempotency_key,
                    json,
                    entry.created_at
                ])
                .map_err(sql("enqueue notifications"))?;
            let id: i64 = tx
                .query_row(
                    "SELECT id FROM outbox WHERE idempotency_key = ?1",
                    [&entry.idempotency_key],
                    |r| r.get(0),
                )
                .map_err(sql("enqueue notifications"))?;
            ids.push(id);
        }
        let mut log_stmt = tx
            .prepare_cached(
                "INSERT INTO notification_log (group_key, integration, firing, resolved, sent_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (group_key, integration) DO UPDATE
                   SET firing = ?3, resolved = ?4, sent_at = ?5",
            )
            .map_err(sql("enqueue notifications"))?;
        for entry in log {
            log_stmt
                .execute(params![
                    entry.group_key,
                    entry.integration,
                    fingerprints(&entry.firing),
                    fingerprints(&entry.resolved),
                    entry.sent_at
                ])
                .map_err(sql("enqueue notifications"))?;
        }
    }
    tx.commit().map_err(sql("enqueue notifications"))?;
    Ok(ids)
}
