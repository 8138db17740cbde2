//! The durable forward queues: one per forwarding target (`forward_queue.target`), each a run
//! of encoded payloads (an OTLP export request, or a slice of a remote_write `WriteRequest`)
//! oldest first.
//!
//! Payloads are enqueued by the writer thread inside the same transaction as the data they
//! carry (`WriteBatch::forward` for OTLP requests, `ForwardQueue::samples` for the samples the
//! commit accepted), so an acknowledged write is both stored and queued, and a crash loses
//! neither. The queue is bounded by bytes: when a commit would pass `max_bytes`, the oldest
//! rows of that target are deleted in the same transaction and counted in
//! `redline_collector_forward_dropped_total{reason="queue_full"}`.
//!
//! The forwarders (`crate::forward`) read the oldest rows through the read-only pool and
//! delete delivered (or permanently refused) rows with `Store::forward_ack`, which runs on the
//! writer thread: the writer is the only owner of each queue's byte and row count, so the
//! bound holds without a second writer.

use std::sync::Arc;

use rusqlite::{Connection, Transaction, params};

use super::{Command, FastMap, Store, StoreError, sql};
use crate::model::{Labels, Sample};

/// Turns the samples one commit accepted into payloads for one target. Pure and cheap to
/// call; it runs on the writer thread, inside the commit.
pub type SampleEncoder = Arc<dyn Fn(&[(&Labels, &[Sample])]) -> Vec<ForwardPayload> + Send + Sync>;

/// A forwarding target's queue, as configured.
#[derive(Clone)]
pub struct ForwardQueue {
    /// `otlp` or `remote_write:<name>`.
    pub target: String,
    /// The queue's bound; the oldest rows go when a commit would pass it.
    pub max_bytes: u64,
    /// For remote_write targets: encodes every commit's accepted samples.
    pub samples: Option<SampleEncoder>,
}

impl std::fmt::Debug for ForwardQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardQueue")
            .field("target", &self.target)
            .field("max_bytes", &self.max_bytes)
            .field("samples", &self.samples.is_some())
            .finish()
    }
}

/// One payload to enqueue.
#[derive(Clone, Debug, PartialEq)]
pub struct ForwardPayload {
    pub target: String,
    /// `metrics`, `traces`, `logs` (OTLP) or `samples` (remote_write).
    pub signal: &'static str,
    /// Data points, spans, log records or samples it carries, for the counters.
    pub items: u64,
    pub bytes: Vec<u8>,
}

/// A queued payload as a forwarder reads it back.
#[derive(Clone, Debug, PartialEq)]
pub struct QueuedPayload {
    pub id: i64,
    pub signal: String,
    pub items: u64,
    pub bytes: Vec<u8>,
    pub enqueued_ms: i64,
}

/// What a forwarder's acknowledgement removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AckOutcome {
    pub rows: u64,
    pub bytes: u64,
}

/// The writer's view of one queue: its configuration and size.
struct QueueState {
    spec: ForwardQueue,
    bytes: u64,
    rows: u64,
    /// Whether the queue is dropping (logged once per episode; reset when it drains to half).
    dropping: bool,
}

/// The writer thread's forward state. Lives in `Writer`; nothing else touches it.
pub(super) struct ForwardState {
    queues: Vec<QueueState>,
    /// Tells the forwarders that rows were enqueued (the newest id); they hold receivers from
    /// `Store::forward_watch`. A watch channel: never blocks, never loses the latest value.
    enqueued: tokio::sync::watch::Sender<i64>,
}

/// What a commit's transaction did to one queue, applied after it committed.
pub(super) struct QueueDelta {
    index: usize,
    added_bytes: u64,
    added_rows: u64,
    dropped_bytes: u64,
    dropped_rows: u64,
    dropped_items: u64,
    enqueued: Vec<(&'static str, u64)>,
}

pub(super) struct ForwardPlan {
    deltas: Vec<QueueDelta>,
    last_id: i64,
}

impl ForwardState {
    /// Loads the size of each configured queue. Rows of targets no longer configured stay
    /// until `Store::forward_purge` (the collector calls it at start); opening the store from
    /// a command-line tool must not delete them.
    pub(super) fn load(
        conn: &Connection,
        specs: &[ForwardQueue],
        enqueued: tokio::sync::watch::Sender<i64>,
    ) -> Result<ForwardState, StoreError> {
        let mut sizes: FastMap<String, (u64, u64)> = FastMap::default();
        let mut stmt = conn
            .prepare(
                "SELECT target, COALESCE(SUM(length(bytes)), 0), COUNT(*) FROM forward_queue GROUP BY target",
            )
            .map_err(sql("load forward queues"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(sql("load forward queues"))?;
        for row in rows {
            let (target, bytes, count) = row.map_err(sql("load forward queues"))?;
            sizes.insert(target, (bytes.max(0) as u64, count.max(0) as u64));
        }
        let queues: Vec<QueueState> = specs
            .iter()
            .map(|spec| {
                let (bytes, rows) = sizes.get(&spec.target).copied().unwrap_or((0, 0));
                QueueState {
                    spec: spec.clone(),
                    bytes,
                    rows,
                    dropping: false,
                }
            })
            .collect();
        let state = ForwardState { queues, enqueued };
        for q in &state.queues {
            Self::publish(q);
            if q.rows > 0 {
                tracing::info!(target = %q.spec.target, rows = q.rows, bytes = q.bytes, "forward queue resumes with queued data");
            }
        }
        Ok(state)
    }

    /// Whether any queue wants the samples of each commit.
    pub(super) fn wants_samples(&self) -> bool {
        self.queues.iter().any(|q| q.spec.samples.is_some())
    }

    pub(super) fn is_configured(&self, target: &str) -> bool {
        self.queues.iter().any(|q| q.spec.target == target)
    }

    fn publish(q: &QueueState) {
        metrics::gauge!("redline_collector_forward_queue_bytes", "target" => q.spec.target.clone())
            .set(q.bytes as f64);
        metrics::gauge!("redline_collector_forward_queue_rows", "target" => q.spec.target.clone())
            .set(q.rows as f64);
    }

    /// Inside the commit's transaction: encodes the accepted samples for the queues that want
    /// them, inserts every payload, and trims each queue back under its bound (oldest first).
    /// Nothing in memory changes here; `apply` does that once the transaction committed.
    pub(super) fn enqueue(
        &self,
        tx: &Transaction<'_>,
        mut payloads: Vec<ForwardPayload>,
        samples: &[(&Labels, &[Sample])],
        now_ms: i64,
    ) -> Result<ForwardPlan, StoreError> {
        if !samples.is_empty() {
            for q in &self.queues {
                if let Some(encode) = &q.spec.samples {
                    payloads.extend(encode(samples));
                }
            }
        }
        let mut plan = ForwardPlan {
            deltas: Vec::new(),
            last_id: 0,
        };
        if payloads.is_empty() {
            return Ok(plan);
        }
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO forward_queue (target, signal, items, bytes, enqueued_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(sql("enqueue forward"))?;
        for p in payloads {
            let Some(index) = self.queues.iter().position(|q| q.spec.target == p.target) else {
                continue;
            };
            insert
                .execute(params![p.target, p.signal, p.items as i64, p.bytes, now_ms])
                .map_err(sql("enqueue forward"))?;
            plan.last_id = tx.last_insert_rowid();
            let delta = match plan.deltas.iter_mut().find(|d| d.index == index) {
                Some(d) => d,
                None => {
                    plan.deltas.push(QueueDelta {
                        index,
                        added_bytes: 0,
                        added_rows: 0,
                        dropped_bytes: 0,
                        dropped_rows: 0,
                        dropped_items: 0,
                        enqueued: Vec::new(),
                    });
                    let last = plan.deltas.len() - 1;
                    &mut plan.deltas[last]
                }
            };
            delta.added_bytes += p.bytes.len() as u64;
            delta.added_rows += 1;
            match delta.enqueued.iter_mut().find(|(s, _)| *s == p.signal) {
                Some((_, n)) => *n += p.items,
                None => delta.enqueued.push((p.signal, p.items)),
            }
        }
        for delta in &mut plan.deltas {
            let q = &self.queues[delta.index];
            let total = q.bytes + delta.added_bytes;
            if total <= q.spec.max_bytes {
                continue;
            }
            // Free the oldest rows until the queue fits again.
            let excess = total - q.spec.max_bytes;
            let mut oldest = tx
                .prepare_cached(
                    "SELECT id, length(bytes), items FROM forward_queue WHERE target = ?1 ORDER BY id",
                )
                .map_err(sql("trim forward queue"))?;
            let mut rows = oldest
                .query([&q.spec.target])
                .map_err(sql("trim forward queue"))?;
            let mut up_to = None;
            while delta.dropped_bytes < excess {
                let Some(row) = rows.next().map_err(sql("trim forward queue"))? else {
                    break;
                };
                let id: i64 = row.get(0).map_err(sql("trim forward queue"))?;
                let len: i64 = row.get(1).map_err(sql("trim forward queue"))?;
                let items: i64 = row.get(2).map_err(sql("trim forward queue"))?;
                delta.dropped_bytes += len.max(0) as u64;
                delta.dropped_items += items.max(0) as u64;
                delta.dropped_rows += 1;
                up_to = Some(id);
            }
            drop(rows);
            if let Some(id) = up_to {
                tx.prepare_cached("DELETE FROM forward_queue WHERE target = ?1 AND id <= ?2")
                    .and_then(|mut s| s.execute(params![q.spec.target, id]))
                    .map_err(sql("trim forward queue"))?;
            }
        }
        Ok(plan)
    }

    /// After the commit: the new sizes, the counters, and a wake-up for the forwarders.
    pub(super) fn apply(&mut self, plan: ForwardPlan) {
        for d in plan.deltas {
            let q = &mut self.queues[d.index];
            q.bytes = (q.bytes + d.added_bytes).saturating_sub(d.dropped_bytes);
            q.rows = (q.rows + d.added_rows).saturating_sub(d.dropped_rows);
            for (signal, items) in d.enqueued {
                metrics::counter!("redline_collector_forward_enqueued_total", "target" => q.spec.target.clone(), "signal" => signal)
                    .increment(items);
            }
            if d.dropped_rows > 0 {
                metrics::counter!("redline_collector_forward_dropped_total", "target" => q.spec.target.clone(), "reason" => "queue_full")
                    .increment(d.dropped_items);
                if !q.dropping {
                    q.dropping = true;
                    tracing::warn!(
                        target = %q.spec.target,
                        max_bytes = q.spec.max_bytes,
                        "forward queue full: dropping the oldest queued data until the upstream catches up (counted in redline_collector_forward_dropped_total)"
                    );
                }
            }
            Self::publish(q);
        }
        if plan.last_id > 0 {
            self.enqueued.send_replace(plan.last_id);
        }
    }

    /// Deletes delivered or refused rows of `target` (a forwarder's acknowledgement).
    pub(super) fn ack(
        &mut self,
        conn: &mut Connection,
        target: &str,
        ids: &[i64],
    ) -> Result<AckOutcome, StoreError> {
        let tx = conn.transaction().map_err(sql("ack forward"))?;
        let mut outcome = AckOutcome::default();
        {
            let mut delete = tx
                .prepare_cached(
                    "DELETE FROM forward_queue WHERE id = ?1 AND target = ?2 RETURNING length(bytes)",
                )
                .map_err(sql("ack forward"))?;
            for id in ids {
                // A row trimmed while it was in flight is simply gone.
                let mut rows = delete
                    .query(params![id, target])
                    .map_err(sql("ack forward"))?;
                while let Some(row) = rows.next().map_err(sql("ack forward"))? {
                    let len: i64 = row.get(0).map_err(sql("ack forward"))?;
                    outcome.rows += 1;
                    outcome.bytes += len.max(0) as u64;
                }
            }
        }
        tx.commit().map_err(sql("ack forward"))?;
        if let Some(q) = self.queues.iter_mut().find(|q| q.spec.target == target) {
            q.bytes = q.bytes.saturating_sub(outcome.bytes);
            q.rows = q.rows.saturating_sub(outcome.rows);
            if q.dropping && q.bytes <= q.spec.max_bytes / 2 {
                q.dropping = false;
                tracing::info!(target = %q.spec.target, "forward queue below half full again: no longer dropping");
            }
            Self::publish(q);
        }
        Ok(outcome)
    }
}

/// Per target, what `Store::forward_purge` removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurgedQueue {
    pub target: String,
    pub rows: u64,
    pub items: u64,
}

impl Store {
    /// The oldest payloads queued for `target`: at least one row when any is queued, then
    /// more while they stay within `max_items` and `max_bytes`.
    pub async fn forward_read(
        &self,
        target: &str,
        max_items: u64,
        max_bytes: u64,
    ) -> Result<Vec<QueuedPayload>, StoreError> {
        let target = target.to_owned();
        self.blocking(move |store| {
            store.readers.with(|conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT id, signal, items, bytes, enqueued_ms FROM forward_queue
                         WHERE target = ?1 ORDER BY id LIMIT 4096",
                    )
                    .map_err(sql("read forward queue"))?;
                let mut rows = stmt.query([&target]).map_err(sql("read forward queue"))?;
                let mut out: Vec<QueuedPayload> = Vec::new();
                let (mut items, mut bytes) = (0u64, 0u64);
                while let Some(row) = rows.next().map_err(sql("read forward queue"))? {
                    let p = QueuedPayload {
                        id: row.get(0).map_err(sql("read forward queue"))?,
                        signal: row.get(1).map_err(sql("read forward queue"))?,
                        items: row
                            .get::<_, i64>(2)
                            .map_err(sql("read forward queue"))?
                            .max(0) as u64,
                        bytes: row.get(3).map_err(sql("read forward queue"))?,
                        enqueued_ms: row.get(4).map_err(sql("read forward queue"))?,
                    };
                    if !out.is_empty()
                        && (items + p.items > max_items || bytes + p.bytes.len() as u64 > max_bytes)
                    {
                        break;
                    }
                    items += p.items;
                    bytes += p.bytes.len() as u64;
                    out.push(p);
                }
                Ok(out)
            })
        })
        .await
    }

    /// Deletes delivered (or permanently refused) rows of `target`, and publishes the queue's
    /// gauges (also with no ids).
    pub async fn forward_ack(&self, target: &str, ids: Vec<i64>) -> Result<AckOutcome, StoreError> {
        let target = target.to_owned();
        self.call(|tx| Command::ForwardAck(target, ids, tx)).await
    }

    /// Wakes up when rows are enqueued (the value is the newest row id).
    pub fn forward_watch(&self) -> tokio::sync::watch::Receiver<i64> {
        self.forward_enqueued.subscribe()
    }

    /// Deletes the queues of every target not in `keep` (targets removed from the
    /// configuration): what was queued for them has nowhere to go.
    pub async fn forward_purge(&self, keep: Vec<String>) -> Result<Vec<PurgedQueue>, StoreError> {
        self.exec(move |conn| {
            let tx = conn.transaction().map_err(sql("purge forward queues"))?;
            let mut purged = Vec::new();
            {
                let mut stmt = tx
                    .prepare(
                        "SELECT target, COUNT(*), COALESCE(SUM(items), 0) FROM forward_queue GROUP BY target",
                    )
                    .map_err(sql("purge forward queues"))?;
                let rows = stmt
                    .query_map([], |r| {
                        Ok(PurgedQueue {
                            target: r.get(0)?,
                            rows: r.get::<_, i64>(1)?.max(0) as u64,
                            items: r.get::<_, i64>(2)?.max(0) as u64,
                        })
                    })
                    .map_err(sql("purge forward queues"))?;
                for row in rows {
                    let row = row.map_err(sql("purge forward queues"))?;
                    if !keep.contains(&row.target) {
                        purged.push(row);
                    }
                }
                for p in &purged {
                    tx.execute("DELETE FROM forward_queue WHERE target = ?1", [&p.target])
                        .map_err(sql("purge forward queues"))?;
                }
            }
            tx.commit().map_err(sql("purge forward queues"))?;
            Ok(purged)
        })
        .await
    }
}
