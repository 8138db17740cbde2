//! Schema migrations. Each entry of `MIGRATIONS` moves the database from `user_version` i to
//! i + 1 inside one transaction, so a crash mid-migration leaves the previous version intact.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: series index, metric metadata, write-ahead batches, compressed chunks, spans, logs.
    r#"
    -- Uniqueness of label sets is enforced by the writer's in-memory index (the only writer),
    -- so the label text carries no index of its own: that would store every label set twice.
    CREATE TABLE series (
        id      INTEGER PRIMARY KEY,
        labels  TEXT NOT NULL,  -- canonical JSON form of the sorted label set
        metric  TEXT NOT NULL
    );
    CREATE TABLE metric_meta (
        name        TEXT PRIMARY KEY,
        otel_name   TEXT NOT NULL,
        kind        TEXT NOT NULL,
        temporality TEXT NOT NULL,
        unit        TEXT NOT NULL,
        help        TEXT NOT NULL
    );
    -- Acknowledged samples not yet folded into chunks: one row per group commit. Replayed into
    -- the in-memory head at start, deleted when the head is flushed into chunks.
    CREATE TABLE wal (
        id    INTEGER PRIMARY KEY,
        data  BLOB NOT NULL
    );
    -- One Gorilla-compressed run of samples of one series. WITHOUT ROWID: the primary key is the
    -- only index, which keeps per-chunk overhead to a few bytes.
    CREATE TABLE chunks (
        series_id  INTEGER NOT NULL,
        max_t      INTEGER NOT NULL,
        min_t      INTEGER NOT NULL,
        count      INTEGER NOT NULL,
        data       BLOB NOT NULL,
        PRIMARY KEY (series_id, max_t)
    ) WITHOUT ROWID;
    CREATE TABLE spans (
        trace_id        TEXT NOT NULL,
        span_id         TEXT NOT NULL,
        parent_span_id  TEXT NOT NULL,
        service         TEXT NOT NULL,
        name            TEXT NOT NULL,
        kind            INTEGER NOT NULL,
        start_ns        INTEGER NOT NULL,
        end_ns          INTEGER NOT NULL,
        status_code     INTEGER NOT NULL,
        status_message  TEXT NOT NULL,
        attributes      TEXT NOT NULL,
        resource        TEXT NOT NULL,
        events          TEXT NOT NULL,
        links           TEXT NOT NULL,
        scope           TEXT NOT NULL,
        PRIMARY KEY (trace_id, span_id)
    );
    CREATE INDEX spans_by_service ON spans (service, start_ns);
    CREATE INDEX spans_by_start ON spans (start_ns);
    CREATE TABLE span_operations (
        service  TEXT NOT NULL,
        name     TEXT NOT NULL,
        kind     INTEGER NOT NULL,
        PRIMARY KEY (service, name, kind)
    ) WITHOUT ROWID;
    CREATE TABLE logs (
        id               INTEGER PRIMARY KEY,
        time_ns          INTEGER NOT NULL,
        observed_ns      INTEGER NOT NULL,
        service          TEXT NOT NULL,
        severity_number  INTEGER NOT NULL,
        severity_text    TEXT NOT NULL,
        body             TEXT NOT NULL,
        attributes       TEXT NOT NULL,
        resource         TEXT NOT NULL,
        trace_id         TEXT NOT NULL,
        span_id          TEXT NOT NULL
    );
    CREATE INDEX logs_by_time ON logs (time_ns);
    CREATE INDEX logs_by_service ON logs (service, time_ns);
    CREATE INDEX logs_by_trace ON logs (trace_id) WHERE trace_id != '';
    "#,
    // 2: alert state (so a restart resumes `for` timers and firing alerts) and alert history.
    r#"
    CREATE TABLE alert_state (
        rule_key           TEXT NOT NULL,  -- file;group;rule name;occurrence
        labels             TEXT NOT NULL,  -- canonical form of the alert's labels
        state              TEXT NOT NULL,
        value              REAL NOT NULL,
        active_at          INTEGER NOT NULL,
        fired_at           INTEGER,
        resolved_at        INTEGER,
        keep_firing_since  INTEGER,
        last_seen          INTEGER NOT NULL,
        annotations        TEXT NOT NULL,  -- JSON object
        PRIMARY KEY (rule_key, labels)
    ) WITHOUT ROWID;
    CREATE TABLE alert_history (
        id           INTEGER PRIMARY KEY,
        rule_key     TEXT NOT NULL,
        alertname    TEXT NOT NULL,
        labels       TEXT NOT NULL,
        annotations  TEXT NOT NULL,
        active_at    INTEGER NOT NULL,
        fired_at     INTEGER,
        resolved_at  INTEGER NOT NULL
    );
    CREATE INDEX alert_history_by_time ON alert_history (resolved_at);
    "#,
    // 3: notifications: silences, the notification log (what each receiver integration was
    // last told about each alert group) and the durable outbox with every delivery attempt.
    r#"
    CREATE TABLE silences (
        id          TEXT PRIMARY KEY,
        body        TEXT NOT NULL,     -- JSON, Alertmanager's gettableSilence shape
        ends_at     INTEGER NOT NULL,  -- ms; expired silences are deleted after retention
        updated_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE notification_log (
        group_key    TEXT NOT NULL,
        integration  TEXT NOT NULL,    -- receiver/kind/index
        firing       TEXT NOT NULL,    -- JSON array of alert fingerprints
        resolved     TEXT NOT NULL,
        sent_at      INTEGER NOT NULL,
        PRIMARY KEY (group_key, integration)
    ) WITHOUT ROWID;
    CREATE TABLE outbox (
        id               INTEGER PRIMARY KEY,
        integration      TEXT NOT NULL,
        idempotency_key  TEXT NOT NULL UNIQUE,
        notification     TEXT NOT NULL,   -- JSON of notify::Notification
        created_at       INTEGER NOT NULL,
        next_attempt_at  INTEGER NOT NULL,
        attempts         INTEGER NOT NULL DEFAULT 0,
        status           TEXT NOT NULL,   -- pending | delivered | failed
        last_error       TEXT NOT NULL DEFAULT '',
        finished_at      INTEGER
    );
    CREATE INDEX outbox_pending ON outbox (status, id);
    CREATE TABLE delivery_attempts (
        id           INTEGER PRIMARY KEY,
        outbox_id    INTEGER NOT NULL,
        at           INTEGER NOT NULL,
        duration_ms  INTEGER NOT NULL,
        outcome      TEXT NOT NULL,       -- delivered | retry | failed
        error        TEXT NOT NULL
    );
    CREATE INDEX delivery_attempts_by_outbox ON delivery_attempts (outbox_id);
    "#,
    // 4: incidents, their append-only timelines, deployments. Records the store does not
    // interpret are JSON (`body`); the columns are what queries filter on.
    r#"
    CREATE TABLE incidents (
        id           INTEGER PRIMARY KEY,
        status       TEXT NOT NULL,     -- triggered | acknowledged | resolved
        service      TEXT NOT NULL,
        environment  TEXT NOT NULL,
        opened_at    INTEGER NOT NULL,
        resolved_at  INTEGER,
        body         TEXT NOT NULL      -- JSON of incident::Incident
    );
    CREATE INDEX incidents_by_opened ON incidents (opened_at);
    CREATE INDEX incidents_by_service ON incidents (service, environment, opened_at);
    CREATE INDEX incidents_open ON incidents (status) WHERE status <> 'resolved';
    -- Append-only: rows are inserted, never updated or deleted.
    CREATE TABLE incident_timeline (
        id           INTEGER PRIMARY KEY,
        incident_id  INTEGER NOT NULL REFERENCES incidents (id),
        at           INTEGER NOT NULL,
        actor        TEXT NOT NULL,
        kind         TEXT NOT NULL,
        message      TEXT NOT NULL,
        refs         TEXT NOT NULL      -- JSON object
    );
    CREATE INDEX incident_timeline_by_incident ON incident_timeline (incident_id, at, id);
    CREATE TABLE deployments (
        id           TEXT PRIMARY KEY,
        service      TEXT NOT NULL,
        environment  TEXT NOT NULL,
        status       TEXT NOT NULL,     -- success | failure
        finished_at  INTEGER NOT NULL,
        body         TEXT NOT NULL      -- JSON of incident::deployment::Deployment
    );
    CREATE INDEX deployments_by_service ON deployments (service, environment, finished_at);
    CREATE INDEX deployments_by_finish ON deployments (finished_at);
    "#,
    // 5: post-deploy verification (state per deployment, every analysis, the deployment's
    // append-only timeline), rollbacks, and settings changed at run time (the rollback block).
    r#"
    CREATE TABLE verifications (
        deployment_id  TEXT PRIMARY KEY,
        verdict        TEXT NOT NULL,   -- running | pass | fail | inconclusive
        finished_at    INTEGER NOT NULL,
        body           TEXT NOT NULL    -- JSON of verify::task::VerificationRecord
    );
    CREATE TABLE deployment_analyses (
        id             INTEGER PRIMARY KEY,
        deployment_id  TEXT NOT NULL,
        at             INTEGER NOT NULL,
        body           TEXT NOT NULL    -- JSON of verify::Analysis
    );
    CREATE INDEX deployment_analyses_by_deployment ON deployment_analyses (deployment_id, at);
    CREATE TABLE deployment_timeline (
        id             INTEGER PRIMARY KEY,
        deployment_id  TEXT NOT NULL,
        at             INTEGER NOT NULL,
        actor          TEXT NOT NULL,
        kind           TEXT NOT NULL,
        message        TEXT NOT NULL,
        refs           TEXT NOT NULL
    );
    CREATE INDEX deployment_timeline_by_deployment ON deployment_timeline (deployment_id, at, id);
    CREATE TABLE rollbacks (
        id             INTEGER PRIMARY KEY,
        deployment_id  TEXT NOT NULL,
        service        TEXT NOT NULL,
        environment    TEXT NOT NULL,
        state          TEXT NOT NULL,
        created_at     INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL,
        body           TEXT NOT NULL    -- JSON of verify::rollback::RollbackRecord
    );
    CREATE INDEX rollbacks_by_service ON rollbacks (service, id);
    CREATE TABLE settings (
        key    TEXT PRIMARY KEY,
        value  TEXT NOT NULL
    );
    "#,
    // 6: the durable forward queues (see `store::forward`): payloads for upstream OTLP
    // endpoints and remote_write receivers, enqueued in the transaction that stores the data,
    // deleted once delivered. Forwarders read each target's rows oldest first.
    r#"
    CREATE TABLE forward_queue (
        id           INTEGER PRIMARY KEY,
        target       TEXT NOT NULL,     -- otlp | remote_write:<name>
        signal       TEXT NOT NULL,     -- metrics | traces | logs | samples
        items        INTEGER NOT NULL,  -- points, spans, log records or samples it carries
        bytes        BLOB NOT NULL,     -- protobuf: an OTLP export request or a WriteRequest
        enqueued_ms  INTEGER NOT NULL
    );
    CREATE INDEX forward_queue_by_target ON forward_queue (target, id);
    "#,
];

/// Brings the schema up to date. Returns the version reached.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<usize> {
    let current: usize =
        conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(MIGRATIONS.len())
}

/// Connection settings shared by the writer and the readers. WAL mode lets readers run while
/// the single writer commits; `synchronous=FULL` makes a commit durable before we acknowledge.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // Incremental auto-vacuum lets the writer hand pages freed by a head flush (the deleted
    // `wal` rows) back to the file system. It only takes effect on a new database, before the
    // first table is created, which is when `configure` runs first.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(())
}
