//! The writer thread: sole owner of the write connection, the series-id assignment and the
//! last accepted timestamp of every series. It receives `Command`s from `Store` handles,
//! commits writes in groups (every write waiting in the channel joins one transaction, which
//! amortises the fsync), then publishes the committed data to the shared head and replies.
//!
//! Lifecycle: started by `Store::open`, it runs until it receives `Close` (after flushing the
//! head) or until every `Store` handle is dropped (without a flush: the `wal` rows keep the
//! data, and the next start replays them).

use std::sync::{Arc, RwLock};
use std::time::Instant;

use rusqlite::{Connection, params};
use tokio::sync::{mpsc, oneshot};

use super::{
    Command, FastMap, RetentionOutcome, Shared, StoreError, StoreOptions, WriteBatch, chunk,
    optional_i64, sql,
};
use crate::model::{Labels, MetricKind, MetricMeta, Sample, Temporality};

/// Writes waiting in the channel join the current group commit up to this many samples.
const GROUP_COMMIT_SAMPLES: usize = 200_000;
/// The head is flushed early once the un-flushed `wal` rows exceed this many bytes, which bounds
/// both replay time at start and head memory.
const WAL_FLUSH_BYTES: usize = 64 << 20;

/// What happened to the samples of one write.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteOutcome {
    pub samples_accepted: usize,
    /// Samples equal to one already stored (a retried delivery): not stored again, not an error.
    pub samples_duplicate: usize,
    /// Samples refused: older than the newest sample of their series, or a different value at
    /// the same timestamp. Reported to the client as a partial success.
    pub samples_rejected: usize,
    pub rejection: Option<String>,
    pub spans: usize,
    pub logs: usize,
}

/// Samples of one group commit that were not stored, by why; counted after the commit.
#[derive(Default)]
struct SampleCounts {
    duplicate: usize,
    out_of_order: usize,
    duplicate_timestamp: usize,
}

/// The last accepted sample of a series: its timestamp, and its value bits when known (after a
/// restart only the timestamp of the last chunk is known).
#[derive(Clone, Copy)]
struct Last {
    timestamp_ms: i64,
    value_bits: Option<u64>,
}

/// The label that names the host a series comes from, for the per-host series limit.
const HOST_LABEL: &str = "host_name";

pub(super) struct Writer {
    conn: Connection,
    /// After each commit, the metric names that received samples, for rule groups that
    /// re-evaluate promptly on new data. A broadcast channel: bounded, and a slow receiver
    /// only lags (and then evaluates everything) instead of blocking ingest.
    written: tokio::sync::broadcast::Sender<Arc<Vec<String>>>,
    shared: Arc<RwLock<Shared>>,
    ids: FastMap<Arc<Labels>, i64>,
    last: FastMap<i64, Last>,
    metadata: FastMap<String, MetricMeta>,
    next_id: i64,
    wal_bytes: usize,
    /// Where committed data for derived series goes (`Store::tap_commits`); the derive task
    /// holds the receiver and the tap ends when it is dropped.
    tap: Option<super::CommitTap>,
    /// The tap filter's answer per series id, so each series is matched once, not at every
    /// commit (ids are never reused). Cleared when the tap changes.
    tap_picks: FastMap<i64, bool>,
    /// The forward queues' sizes and bounds; payloads are enqueued inside `commit`.
    forward: super::forward::ForwardState,
    /// The cardinality limits (`limits.max_series`, `limits.max_series_per_host`).
    series_limits: super::SeriesLimits,
    /// Series per `host_name` label value, for the per-host limit; kept in step with `ids`.
    per_host: FastMap<String, usize>,
}

impl Writer {
    /// Loads the series index and metadata, and replays un-flushed `wal` rows into the head.
    pub(super) fn load(
        conn: Connection,
        shared: Arc<RwLock<Shared>>,
        options: &StoreOptions,
        written: tokio::sync::broadcast::Sender<Arc<Vec<String>>>,
        forward: super::forward::ForwardState,
    ) -> Result<Writer, StoreError> {
        let mut writer = Writer {
            forward,
            conn,
            written,
            shared,
            ids: FastMap::default(),
            last: FastMap::default(),
            metadata: FastMap::default(),
            next_id: 1,
            wal_bytes: 0,
            tap: None,
            tap_picks: FastMap::default(),
            series_limits: options.series_limits,
            per_host: FastMap::default(),
        };
        let started = Instant::now();
        let mut guard = writer.shared.write().map_err(|_| StoreError::Closed)?;
        {
            let mut stmt = writer
                .conn
                .prepare("SELECT id, labels FROM series")
                .map_err(sql("load series"))?;
            let mut rows = stmt.query([]).map_err(sql("load series"))?;
            while let Some(row) = rows.next().map_err(sql("load series"))? {
                let id: i64 = row.get(0).map_err(sql("load series"))?;
                let text: String = row.get(1).map_err(sql("load series"))?;
                let Some(labels) = Labels::parse_canonical(&text) else {
                    tracing::warn!(series_id = id, "skipping series with unreadable labels");
                    continue;
                };
                let labels = Arc::new(labels);
                if let Some(host) = labels.get(HOST_LABEL) {
                    *writer.per_host.entry(host.to_owned()).or_default() += 1;
                }
                writer.ids.insert(labels.clone(), id);
                guard.add_series(id, labels);
                writer.next_id = writer.next_id.max(id + 1);
            }
        }
        {
            let mut stmt = writer
                .conn
                .prepare("SELECT series_id, MAX(max_t) FROM chunks GROUP BY series_id")
                .map_err(sql("load last"))?;
            let mut rows = stmt.query([]).map_err(sql("load last"))?;
            while let Some(row) = rows.next().map_err(sql("load last"))? {
                let id: i64 = row.get(0).map_err(sql("load last"))?;
                let t: i64 = row.get(1).map_err(sql("load last"))?;
                writer.last.insert(
                    id,
                    Last {
                        timestamp_ms: t,
                        value_bits: None,
                    },
                );
            }
        }
        {
            let mut stmt = writer
                .conn
                .prepare("SELECT name, otel_name, kind, temporality, unit, help FROM metric_meta")
                .map_err(sql("load metadata"))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(MetricMeta {
                        name: r.get(0)?,
                        otel_name: r.get(1)?,
                        kind: kind_from_str(&r.get::<_, String>(2)?),
                        temporality: temporality_from_str(&r.get::<_, String>(3)?),
                        unit: r.get(4)?,
                        help: r.get(5)?,
                    })
                })
                .map_err(sql("load metadata"))?;
            for meta in rows {
                let meta = meta.map_err(sql("load metadata"))?;
                writer.metadata.insert(meta.name.clone(), meta);
            }
            guard.metadata = writer.metadata.clone();
        }
        let mut replayed = 0usize;
        {
            let mut stmt = writer
                .conn
                .prepare("SELECT data FROM wal ORDER BY id")
                .map_err(sql("replay wal"))?;
            let mut rows = stmt.query([]).map_err(sql("replay wal"))?;
            while let Some(row) = rows.next().map_err(sql("replay wal"))? {
                let data: Vec<u8> = row.get(0).map_err(sql("replay wal"))?;
                writer.wal_bytes += data.len();
                for (id, samples) in decode_wal(&data)? {
                    replayed += samples.len();
                    if let Some(s) = samples.last() {
                        writer.last.insert(
                            id,
                            Last {
                                timestamp_ms: s.timestamp_ms,
                                value_bits: Some(s.value.to_bits()),
                            },
                        );
                    }
                    guard.head.entry(id).or_default().extend(samples);
                }
            }
        }
        drop(guard);
        let _ = optional_i64(&writer.conn, "SELECT MAX(id) FROM wal")?;
        tracing::info!(
            series = writer.ids.len(),
            replayed_samples = replayed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "store loaded"
        );
        Ok(writer)
    }

    pub(super) fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        while let Some(command) = commands.blocking_recv() {
            match command {
                Command::Write(batch, reply) => {
                    let mut group = vec![(batch, reply)];
                    let mut samples = group[0].0.sample_count();
                    let mut pending = None;
                    while samples < GROUP_COMMIT_SAMPLES {
                        match commands.try_recv() {
                            Ok(Command::Write(batch, reply)) => {
                                samples += batch.sample_count();
                                group.push((batch, reply));
                            }
                            Ok(other) => {
                                pending = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.write_group(group);
                    if self.wal_bytes > WAL_FLUSH_BYTES
                        && let Err(e) = self.flush()
                    {
                        tracing::error!(error = %e, "head flush failed");
                    }
                    if let Some(command) = pending
                        && self.handle_other(command)
                    {
                        return;
                    }
                }
                other => {
                    if self.handle_other(other) {
                        return;
                    }
                }
            }
        }
        tracing::debug!("store writer stopped: all handles dropped");
    }

    /// Handles a non-write command; returns true when the thread must stop.
    fn handle_other(&mut self, command: Command) -> bool {
        match command {
            Command::Write(batch, reply) => {
                self.write_group(vec![(batch, reply)]);
                false
            }
            Command::Flush(reply) => {
                let _ = reply.send(self.flush());
                false
            }
            Command::Retain(cutoff, reply) => {
                let _ = reply.send(self.retain(cutoff));
                false
            }
            Command::Close(reply) => {
                // A flush that fails (a full disk or `store.max_size`: chunks of single-sample
                // series take more room than their `wal` rows) loses nothing: the `wal` rows
                // stay committed and the next start replays them. So closing still succeeds;
                // the failure is logged and counted (`flush`).
                if let Err(e) = self.flush() {
                    tracing::warn!(error = %e, "head not flushed at close; the next start replays it from the wal table");
                }
                let _ = reply.send(Ok(()));
                true
            }
            Command::Exec(f) => {
                f(&mut self.conn);
                false
            }
            Command::Tap(tap) => {
                self.tap = Some(tap);
                self.tap_picks.clear();
                false
            }
            Command::SetSeriesLimits(limits) => {
                self.series_limits = limits;
                false
            }
            Command::ForwardAck(target, ids, reply) => {
                let _ = reply.send(self.forward.ack(&mut self.conn, &target, &ids));
                false
            }
        }
    }

    fn write_group(
        &mut self,
        group: Vec<(
            WriteBatch,
            oneshot::Sender<Result<WriteOutcome, StoreError>>,
        )>,
    ) {
        let started = Instant::now();
        let (batches, replies): (Vec<WriteBatch>, Vec<_>) = group.into_iter().unzip();
        metrics::histogram!("redline_collector_store_group_commit_writes")
            .record(batches.len() as f64);

        match self.commit(batches) {
            Ok(outcomes) => {
                metrics::histogram!("redline_collector_store_commit_duration_seconds")
                    .record(started.elapsed().as_secs_f64());
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                // Nothing of the group is acknowledged and nothing in memory changed (see
                // `commit`), so every client keeps its data and retries; once space returns
                // (retention, a larger `store.max_size`, a freed disk) the same writes succeed.
                let error_type = e.error_type();
                metrics::counter!("redline_collector_store_errors_total", "stage" => "commit", "error_type" => error_type)
                    .increment(1);
                tracing::error!(error = %e, error_type, "store commit failed; writes answered as retryable");
                let message = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(StoreError::WriteFailed {
                        error_type,
                        message: message.clone(),
                    }));
                }
            }
        }
    }

    /// Validates, commits and publishes a group of batches. Nothing in memory changes unless
    /// the transaction committed.
    fn commit(&mut self, batches: Vec<WriteBatch>) -> Result<Vec<WriteOutcome>, StoreError> {
        let mut outcomes = Vec::with_capacity(batches.len());
        // Counted only once the transaction committed: a failed commit is answered as
        // retryable and the same samples come again, so counting now would count them twice.
        let mut counts = SampleCounts::default();
        // Tentative state of this group: new series, last samples and accepted samples.
        let mut new_series: Vec<(i64, Arc<Labels>)> = Vec::new();
        let mut new_ids: FastMap<Arc<Labels>, i64> = FastMap::default();
        // New series per host in this group, on top of `self.per_host`.
        let mut new_per_host: FastMap<String, usize> = FastMap::default();
        let mut last: FastMap<i64, Last> = FastMap::default();
        // (series id, sample) in acceptance order; grouped by id below.
        let mut accepted: Vec<(i64, Sample)> = Vec::new();
        let mut new_meta: Vec<MetricMeta> = Vec::new();
        let mut next_id = self.next_id;
        let mut spans = Vec::new();
        let mut duplicate_spans: Vec<usize> = Vec::new();
        let mut logs = Vec::new();
        let mut alert_state = Vec::new();
        let mut resolved_alerts = Vec::new();
        let mut written_names: std::collections::BTreeSet<String> =
            std::collections::BTreeSet::new();
        // Forwarding: the payloads the batches carry, and the labels of series with accepted
        // samples when a remote_write queue wants them.
        let mut forward_payloads = Vec::new();
        let wants_samples = self.forward.wants_samples();
        let mut accepted_labels: FastMap<i64, Arc<Labels>> = FastMap::default();
        for batch in batches {
            let mut outcome = WriteOutcome {
                spans: batch.spans.len(),
                logs: batch.logs.len(),
                ..WriteOutcome::default()
            };
            for meta in batch.metadata {
                if self.metadata.get(&meta.name) != Some(&meta)
                    && !new_meta.iter().any(|m| m == &meta)
                {
                    new_meta.push(meta);
                }
            }
            for mut series in batch.series {
                series.samples.sort_by_key(|s| s.timestamp_ms);
                let labels = Arc::new(series.labels);
                let known = self
                    .ids
                    .get(&labels)
                    .or_else(|| new_ids.get(&labels))
                    .copied();
                if known.is_none()
                    && let Some(limit) =
                        self.series_limit_hit(&labels, new_ids.len(), &new_per_host)
                {
                    outcome.samples_rejected += series.samples.len();
                    outcome.rejection.get_or_insert_with(|| match limit {
                        "max_series" => format!(
                            "series limit reached: the store holds {} series (limits.max_series); new series such as {labels} are refused",
                            self.series_limits.max_series
                        ),
                        _ => format!(
                            "per-host series limit reached: host {:?} has {} series (limits.max_series_per_host); new series such as {labels} are refused",
                            labels.get(HOST_LABEL).unwrap_or_default(),
                            self.series_limits.max_series_per_host
                        ),
                    });
                    metrics::counter!("redline_collector_limit_exceeded_total", "limit" => limit)
                        .increment(series.samples.len() as u64);
                    continue;
                }
                let id = known.unwrap_or(next_id);
                let mut prev = last.get(&id).or_else(|| self.last.get(&id)).copied();
                let mut kept = 0usize;
                for s in series.samples {
                    match prev {
                        // A sample the head already holds (same timestamp and value) is a
                        // retried delivery, not an out-of-order one: a client whose
                        // acknowledgement was lost sends the whole export again, older
                        // samples included. The head covers everything since the last flush,
                        // also after a restart (it is rebuilt from `wal`).
                        Some(p) if s.timestamp_ms < p.timestamp_ms && self.head_holds(id, &s) => {
                            outcome.samples_duplicate += 1;
                            counts.duplicate += 1;
                        }
                        Some(p) if s.timestamp_ms < p.timestamp_ms => {
                            outcome.samples_rejected += 1;
                            outcome.rejection.get_or_insert_with(|| {
                                format!(
                                    "out-of-order sample for series {labels}: timestamp {} is older than the newest stored, {}",
                                    s.timestamp_ms, p.timestamp_ms
                                )
                            });
                            counts.out_of_order += 1;
                        }
                        Some(p) if s.timestamp_ms == p.timestamp_ms => {
                            if p.value_bits.is_none_or(|b| b == s.value.to_bits()) {
                                outcome.samples_duplicate += 1;
                                counts.duplicate += 1;
                            } else {
                                outcome.samples_rejected += 1;
                                outcome.rejection.get_or_insert_with(|| {
                                    format!(
                                        "duplicate timestamp {} with a different value for series {labels}",
                                        s.timestamp_ms
                                    )
                                });
                                counts.duplicate_timestamp += 1;
                            }
                        }
                        _ => {
                            accepted.push((id, s));
                            prev = Some(Last {
                                timestamp_ms: s.timestamp_ms,
                                value_bits: Some(s.value.to_bits()),
                            });
                            kept += 1;
                        }
                    }
                }
                outcome.samples_accepted += kept;
                // Collected whether or not anyone listens yet: a rule group that subscribes
                // while this commit is in flight must still hear of it.
                if kept > 0 && !written_names.contains(labels.metric_name()) {
                    written_names.insert(labels.metric_name().to_owned());
                }
                if let Some(p) = prev {
                    last.insert(id, p);
                }
                if wants_samples && kept > 0 {
                    accepted_labels.insert(id, labels.clone());
                }
                if known.is_none() && kept > 0 {
                    if let Some(host) = labels.get(HOST_LABEL) {
                        *new_per_host.entry(host.to_owned()).or_default() += 1;
                    }
                    new_ids.insert(labels.clone(), id);
                    new_series.push((id, labels));
                    next_id += 1;
                }
            }
            spans.extend(batch.spans);
            logs.extend(batch.logs);
            alert_state.extend(batch.alert_state);
            resolved_alerts.extend(batch.resolved_alerts);
            forward_payloads.extend(
                batch
                    .forward
                    .into_iter()
                    .filter(|p| self.forward.is_configured(&p.target)),
            );
            outcomes.push(outcome);
        }

        // A stable sort keeps each series' samples in acceptance order, which is time order.
        accepted.sort_by_key(|(id, _)| *id);
        let grouped: Vec<(i64, Vec<Sample>)> = accepted
            .chunk_by(|a, b| a.0 == b.0)
            .map(|run| (run[0].0, run.iter().map(|(_, s)| *s).collect()))
            .collect();
        let mut wal = Vec::with_capacity(accepted.len() * 24);
        for (id, samples) in &grouped {
            encode_wal_entry(&mut wal, *id, samples);
        }

        let tx = self.conn.transaction().map_err(sql("begin"))?;
        {
            let mut insert_series = tx
                .prepare_cached("INSERT INTO series (id, labels, metric) VALUES (?1, ?2, ?3)")
                .map_err(sql("insert series"))?;
            for (id, labels) in &new_series {
                insert_series
                    .execute(params![id, labels.to_string(), labels.metric_name()])
                    .map_err(sql("insert series"))?;
            }
            let mut upsert_meta = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO metric_meta (name, otel_name, kind, temporality, unit, help)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(sql("insert metadata"))?;
            for m in &new_meta {
                upsert_meta
                    .execute(params![
                        m.name,
                        m.otel_name,
                        kind_to_str(m.kind),
                        m.temporality.as_str(),
                        m.unit,
                        m.help
                    ])
                    .map_err(sql("insert metadata"))?;
            }
            if !wal.is_empty() {
                tx.prepare_cached("INSERT INTO wal (data) VALUES (?1)")
                    .and_then(|mut s| s.execute([&wal]))
                    .map_err(sql("insert wal"))?;
            }
        }
        // Acknowledged means stored and queued for forwarding: the payloads join this
        // transaction. Only samples the store accepted are forwarded, so an upstream with the
        // same ordering rules (Prometheus) never refuses a whole request for one of them.
        let forward_plan = {
            let samples: Vec<(&Labels, &[Sample])> = if accepted_labels.is_empty() {
                Vec::new()
            } else {
                grouped
                    .iter()
                    .filter_map(|(id, s)| {
                        accepted_labels.get(id).map(|l| (l.as_ref(), s.as_slice()))
                    })
                    .collect()
            };
            self.forward
                .enqueue(&tx, forward_payloads, &samples, now_ms())?
        };
        {
            let mut insert_span = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO spans (trace_id, span_id, parent_span_id, service, name, kind,
                        start_ns, end_ns, status_code, status_message, attributes, resource, events, links, scope)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                )
                .map_err(sql("insert span"))?;
            let mut insert_op = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO span_operations (service, name, kind) VALUES (?1, ?2, ?3)",
                )
                .map_err(sql("insert span"))?;
            let mut ops_seen = std::collections::HashSet::new();
            for (i, s) in spans.iter().enumerate() {
                let inserted = insert_span
                    .execute(params![
                        s.trace_id,
                        s.span_id,
                        s.parent_span_id,
                        s.service,
                        s.name,
                        s.kind,
                        s.start_ns,
                        s.end_ns,
                        s.status_code,
                        s.status_message,
                        s.attributes,
                        s.resource,
                        s.events,
                        s.links,
                        s.scope
                    ])
                    .map_err(sql("insert span"))?;
                // A span delivered again (a client's retry) is ignored by the primary key; it
                // must not count twice in span metrics either.
                if inserted == 0 {
                    duplicate_spans.push(i);
                }
                if ops_seen.insert((s.service.as_str(), s.name.as_str(), s.kind)) {
                    insert_op
                        .execute(params![s.service, s.name, s.kind])
                        .map_err(sql("insert span"))?;
                }
            }
            let mut insert_log = tx
                .prepare_cached(
                    "INSERT INTO logs (time_ns, observed_ns, service, severity_number, severity_text, body,
                        attributes, resource, trace_id, span_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(sql("insert log"))?;
            for l in &logs {
                insert_log
                    .execute(params![
                        l.time_ns,
                        l.observed_ns,
                        l.service,
                        l.severity_number,
                        l.severity_text,
                        l.body,
                        l.attributes,
                        l.resource,
                        l.trace_id,
                        l.span_id
                    ])
                    .map_err(sql("insert log"))?;
            }
        }
        {
            let mut delete = tx
                .prepare_cached("DELETE FROM alert_state WHERE rule_key = ?1")
                .map_err(sql("alert state"))?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO alert_state (rule_key, labels, state, value, active_at, fired_at,
                        resolved_at, keep_firing_since, last_seen, annotations)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(sql("alert state"))?;
            for rule in &alert_state {
                delete
                    .execute([&rule.rule_key])
                    .map_err(sql("alert state"))?;
                for a in &rule.alerts {
                    insert
                        .execute(params![
                            rule.rule_key,
                            a.labels.to_string(),
                            a.state.as_str(),
                            a.value,
                            a.active_at,
                            a.fired_at,
                            a.resolved_at,
                            a.keep_firing_since,
                            a.last_seen,
                            serde_json::to_string(&a.annotations).unwrap_or_else(|_| "{}".into())
                        ])
                        .map_err(sql("alert state"))?;
                }
            }
            let mut history = tx
                .prepare_cached(
                    "INSERT INTO alert_history (rule_key, alertname, labels, annotations, active_at, fired_at, resolved_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(sql("alert history"))?;
            for (rule_key, a) in &resolved_alerts {
                history
                    .execute(params![
                        rule_key,
                        a.labels.get("alertname").unwrap_or(""),
                        a.labels.to_string(),
                        serde_json::to_string(&a.annotations).unwrap_or_else(|_| "{}".into()),
                        a.active_at,
                        a.fired_at,
                        a.resolved_at.unwrap_or(a.last_seen)
                    ])
                    .map_err(sql("alert history"))?;
            }
        }
        tx.commit().map_err(sql("commit"))?;

        // Committed: publish.
        self.forward.apply(forward_plan);
        self.wal_bytes += wal.len();
        self.next_id = next_id;
        for (host, n) in new_per_host {
            *self.per_host.entry(host).or_default() += n;
        }
        let stored = accepted.len();
        {
            let mut shared = self.shared.write().map_err(|_| StoreError::Closed)?;
            for (id, labels) in &new_series {
                shared.add_series(*id, labels.clone());
            }
            for (id, samples) in &grouped {
                shared
                    .head
                    .entry(*id)
                    .or_default()
                    .extend_from_slice(samples);
            }
            for m in &new_meta {
                shared.metadata.insert(m.name.clone(), m.clone());
            }
        }
        if !duplicate_spans.is_empty() {
            let mut i = 0;
            spans.retain(|_| {
                let keep = duplicate_spans.binary_search(&i).is_err();
                i += 1;
                keep
            });
        }
        self.send_to_tap(&grouped, &spans);
        for (id, labels) in new_series {
            self.ids.insert(labels, id);
        }
        self.last.extend(last);
        for m in new_meta {
            self.metadata.insert(m.name.clone(), m);
        }
        if !written_names.is_empty() {
            let _ = self
                .written
                .send(Arc::new(written_names.into_iter().collect()));
        }
        metrics::counter!("redline_collector_samples_stored_total").increment(stored as u64);
        metrics::counter!("redline_collector_samples_duplicate_total")
            .increment(counts.duplicate as u64);
        metrics::counter!("redline_collector_samples_rejected_total", "reason" => "out_of_order")
            .increment(counts.out_of_order as u64);
        metrics::counter!("redline_collector_samples_rejected_total", "reason" => "duplicate_timestamp")
            .increment(counts.duplicate_timestamp as u64);
        metrics::counter!("redline_collector_spans_stored_total").increment(spans.len() as u64);
        metrics::counter!("redline_collector_logs_stored_total").increment(logs.len() as u64);
        metrics::gauge!("redline_collector_store_series").set(self.ids.len() as f64);
        Ok(outcomes)
    }

    /// Whether the head holds exactly this sample of series `id` (same timestamp, same value
    /// bits). Only asked for samples older than the series' newest, which are rare.
    fn head_holds(&self, id: i64, sample: &Sample) -> bool {
        let Ok(shared) = self.shared.read() else {
            return false;
        };
        let Some(samples) = shared.head.get(&id) else {
            return false;
        };
        samples
            .binary_search_by_key(&sample.timestamp_ms, |s| s.timestamp_ms)
            .is_ok_and(|i| samples[i].value.to_bits() == sample.value.to_bits())
    }

    /// Hands the tap its copy of a commit: samples of the series its filter picks, and span
    /// summaries. Never blocks: a full channel drops the copy, a closed one removes the tap.
    fn send_to_tap(&mut self, grouped: &[(i64, Vec<Sample>)], spans: &[crate::model::SpanRecord]) {
        let Some(tap) = &self.tap else { return };
        let mut committed = super::Committed::default();
        {
            let Ok(shared) = self.shared.read() else {
                return;
            };
            for (id, samples) in grouped {
                // The series index already holds this commit's new series.
                let Some(labels) = shared.labels.get(id) else {
                    continue;
                };
                let picked = *self
                    .tap_picks
                    .entry(*id)
                    .or_insert_with(|| (tap.filter)(labels));
                if picked {
                    committed.series.push((labels.clone(), samples.clone()));
                }
            }
        }
        committed.spans = spans
            .iter()
            .map(|s| super::SpanSummary {
                service: s.service.clone(),
                name: s.name.clone(),
                kind: s.kind,
                status_code: s.status_code,
                start_ns: s.start_ns,
                end_ns: s.end_ns,
            })
            .collect();
        if committed.series.is_empty() && committed.spans.is_empty() {
            return;
        }
        match tap.tx.try_send(committed) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("redline_collector_derive_dropped_total", "reason" => "queue_full")
                    .increment(1);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.tap = None,
        }
    }

    /// Folds every head series into one chunk row and empties the `wal` table, atomically. A
    /// failed flush changes nothing (the head and the `wal` rows stay) and is counted; the next
    /// one retries.
    fn flush(&mut self) -> Result<(), StoreError> {
        let result = self.flush_head();
        if let Err(e) = &result {
            metrics::counter!("redline_collector_store_errors_total", "stage" => "flush", "error_type" => e.error_type())
                .increment(1);
        }
        result
    }

    fn flush_head(&mut self) -> Result<(), StoreError> {
        let started = Instant::now();
        let snapshot: Vec<(i64, Vec<Sample>)> = {
            let shared = self.shared.read().map_err(|_| StoreError::Closed)?;
            shared
                .head
                .iter()
                .filter(|(_, s)| !s.is_empty())
                .map(|(id, s)| (*id, s.clone()))
                .collect()
        };
        let tx = self.conn.transaction().map_err(sql("flush"))?;
        {
            // Delete first: the pages of the `wal` rows are then free for the chunks within
            // this transaction, so a flush fits even when the store is at `store.max_size` or
            // the disk is full (chunks take less room than the `wal` rows they replace).
            tx.execute("DELETE FROM wal", []).map_err(sql("flush"))?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO chunks (series_id, max_t, min_t, count, data) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(sql("flush"))?;
            for (id, samples) in &snapshot {
                let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
                    continue;
                };
                insert
                    .execute(params![
                        id,
                        last.timestamp_ms,
                        first.timestamp_ms,
                        samples.len() as i64,
                        chunk::encode(samples)
                    ])
                    .map_err(sql("flush"))?;
            }
        }
        tx.commit().map_err(sql("flush"))?;
        {
            let mut shared = self.shared.write().map_err(|_| StoreError::Closed)?;
            // Only the writer appends to the head, so nothing arrived since the snapshot.
            shared.head.clear();
        }
        self.wal_bytes = 0;
        // Give the pages of the deleted `wal` rows back, then fold the WAL file into the database.
        // `incremental_vacuum` frees one page per step: step it to the end.
        if let Ok(mut stmt) = self.conn.prepare("PRAGMA incremental_vacuum") {
            let _ = stmt.query([]).and_then(|mut rows| {
                while rows.next()?.is_some() {}
                Ok(())
            });
        }
        let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
        metrics::counter!("redline_collector_store_flushes_total").increment(1);
        tracing::debug!(
            series = snapshot.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "head flushed into chunks"
        );
        Ok(())
    }

    /// Which cardinality limit a new series would break, if any: `max_series` counts every
    /// series, `max_series_per_host` those with the same `host_name` (one agent's host).
    fn series_limit_hit(
        &self,
        labels: &Labels,
        new_in_group: usize,
        new_per_host: &FastMap<String, usize>,
    ) -> Option<&'static str> {
        if self.ids.len() + new_in_group >= self.series_limits.max_series {
            return Some("max_series");
        }
        let host = labels.get(HOST_LABEL)?;
        let existing = self.per_host.get(host).copied().unwrap_or(0)
            + new_per_host.get(host).copied().unwrap_or(0);
        (existing >= self.series_limits.max_series_per_host).then_some("max_series_per_host")
    }

    /// Deletes chunks, spans and logs older than the cutoff, and series left without data.
    fn retain(&mut self, cutoff_ms: i64) -> Result<RetentionOutcome, StoreError> {
        let cutoff_ns = cutoff_ms.saturating_mul(1_000_000);
        let head_ids: std::collections::HashSet<i64> = {
            let shared = self.shared.read().map_err(|_| StoreError::Closed)?;
            shared
                .head
                .iter()
                .filter(|(_, s)| !s.is_empty())
                .map(|(id, _)| *id)
                .collect()
        };
        let dead: Vec<i64> = self
            .last
            .iter()
            .filter(|(id, l)| l.timestamp_ms < cutoff_ms && !head_ids.contains(id))
            .map(|(id, _)| *id)
            .collect();
        let tx = self.conn.transaction().map_err(sql("retention"))?;
        let mut outcome = RetentionOutcome {
            chunks: tx
                .execute("DELETE FROM chunks WHERE max_t < ?1", [cutoff_ms])
                .map_err(sql("retention"))?,
            spans: tx
                .execute("DELETE FROM spans WHERE start_ns < ?1", [cutoff_ns])
                .map_err(sql("retention"))?,
            logs: tx
                .execute("DELETE FROM logs WHERE time_ns < ?1", [cutoff_ns])
                .map_err(sql("retention"))?,
            alert_history: tx
                .execute(
                    "DELETE FROM alert_history WHERE resolved_at < ?1",
                    [cutoff_ms],
                )
                .map_err(sql("retention"))?,
            series: 0,
        };
        {
            let mut delete = tx
                .prepare_cached("DELETE FROM series WHERE id = ?1")
                .map_err(sql("retention"))?;
            for id in &dead {
                outcome.series += delete.execute([id]).map_err(sql("retention"))?;
            }
        }
        tx.commit().map_err(sql("retention"))?;
        {
            let mut shared = self.shared.write().map_err(|_| StoreError::Closed)?;
            for id in &dead {
                shared.remove_series(*id);
            }
        }
        let per_host = &mut self.per_host;
        self.ids.retain(|labels, id| {
            let keep = !dead.contains(id);
            if !keep
                && let Some(host) = labels.get(HOST_LABEL)
                && let Some(n) = per_host.get_mut(host)
            {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    per_host.remove(host);
                }
            }
            keep
        });
        for id in &dead {
            self.last.remove(id);
            self.tap_picks.remove(id);
        }
        metrics::counter!("redline_collector_store_retention_deleted_total", "kind" => "chunks")
            .increment(outcome.chunks as u64);
        Ok(outcome)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(data: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *data.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

fn encode_wal_entry(out: &mut Vec<u8>, id: i64, samples: &[Sample]) {
    let encoded = chunk::encode(samples);
    put_varint(out, id as u64);
    put_varint(out, encoded.len() as u64);
    out.extend_from_slice(&encoded);
}

fn decode_wal(data: &[u8]) -> Result<Vec<(i64, Vec<Sample>)>, StoreError> {
    let mut out = Vec::new();
    let mut pos = 0;
    let corrupt = |id| StoreError::Corrupt {
        series_id: id,
        source: chunk::ChunkError::BadHeader,
    };
    while pos < data.len() {
        let id = get_varint(data, &mut pos).ok_or_else(|| corrupt(-1))? as i64;
        let len = get_varint(data, &mut pos).ok_or_else(|| corrupt(id))? as usize;
        let end = pos
            .checked_add(len)
            .filter(|e| *e <= data.len())
            .ok_or_else(|| corrupt(id))?;
        let samples = chunk::decode(&data[pos..end]).map_err(|source| StoreError::Corrupt {
            series_id: id,
            source,
        })?;
        pos = end;
        out.push((id, samples));
    }
    Ok(out)
}

fn kind_to_str(kind: MetricKind) -> &'static str {
    match kind {
        MetricKind::Gauge => "gauge",
        MetricKind::Counter => "counter",
        MetricKind::UpDownCounter => "updowncounter",
        MetricKind::Histogram => "histogram",
        MetricKind::Summary => "summary",
    }
}

fn kind_from_str(s: &str) -> MetricKind {
    match s {
        "counter" => MetricKind::Counter,
        "updowncounter" => MetricKind::UpDownCounter,
        "histogram" => MetricKind::Histogram,
        "summary" => MetricKind::Summary,
        _ => MetricKind::Gauge,
    }
}

fn temporality_from_str(s: &str) -> Temporality {
    match s {
        "cumulative" => Temporality::Cumulative,
        "delta" => Temporality::Delta,
        _ => Temporality::Unspecified,
    }
}
