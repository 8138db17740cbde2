//! The store: the only module that speaks SQL. It keeps metrics, spans and logs in one SQLite
//! file (WAL mode) and answers the reads of the query and API layers.
//!
//! ## Layout of samples
//! Samples are not stored one row each. An accepted write becomes one row of the `wal` table
//! (per group commit, Gorilla-encoded per series) and is appended to the in-memory *head*, one
//! growing run of samples per series. Every `head_flush_interval` (and at shutdown) the writer
//! folds the head into one compressed row of `chunks` per series and deletes the `wal` rows it
//! covered, in one transaction. At start the head is rebuilt by replaying `wal`. This is the
//! Prometheus TSDB design (WAL + head + blocks) on SQLite: one insert per commit on the hot
//! path, a few bits per sample at rest.
//!
//! ## Ownership
//! One writer thread owns the write connection, the head and the series index; `Store` handles
//! send it `Command`s over a bounded channel and await a oneshot reply, which it sends only
//! after the transaction committed (**acknowledged means committed**). Readers share the index
//! and head through an `RwLock` the writer holds only while applying a committed batch, and
//! read chunks, spans and logs through a small pool of read-only connections.

mod chunk;
mod forward;
mod incidents;
mod notify;
mod schema;
mod verify;
mod writer;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use crate::alert::state::{Alert, State};
use crate::model::{Labels, LogRecord, Matcher, MetricMeta, Sample, SeriesSamples, SpanRecord};

pub use forward::{
    AckOutcome, ForwardPayload, ForwardQueue, PurgedQueue, QueuedPayload, SampleEncoder,
};
pub use incidents::{IncidentFilter, PutDeployment};
pub use notify::{
    AttemptOutcome, DeliveryAttempt, NotificationLogEntry, OutboxEntry, OutboxRow, SilenceRow,
};
pub use writer::WriteOutcome;

/// Chunk compression, exposed for benchmarks.
pub fn encode_chunk(samples: &[Sample]) -> Vec<u8> {
    chunk::encode(samples)
}

/// Chunk decompression, exposed for benchmarks.
pub fn decode_chunk(bytes: &[u8]) -> Result<Vec<Sample>, StoreError> {
    chunk::decode(bytes).map_err(|source| StoreError::Corrupt {
        series_id: -1,
        source,
    })
}

/// Errors of the store. `is_retryable` tells the receiver whether the client should retry.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("database error during {stage}: {source}")]
    Sqlite {
        stage: &'static str,
        source: rusqlite::Error,
    },
    #[error("the store is shutting down")]
    Closed,
    #[error("commit failed: {0}")]
    Commit(String),
    /// A group commit of writes failed (each write of the group gets a copy). `error_type` is
    /// the original error's `error_type()`, e.g. `full` when the disk or `store.max_size` is
    /// full.
    #[error("commit failed: {message}")]
    WriteFailed {
        error_type: &'static str,
        message: String,
    },
    #[error("corrupt chunk of series {series_id}: {source}")]
    Corrupt {
        series_id: i64,
        source: chunk::ChunkError,
    },
    #[error("query would touch {found} series, more than the limit of {limit}")]
    TooManySeries { found: usize, limit: usize },
    #[error("query would load more than the limit of {limit} samples")]
    TooManySamples { limit: usize },
    #[error("blocking task failed: {0}")]
    Join(String),
    #[error("unreadable stored record: {0}")]
    CorruptRecord(String),
    /// The database file failed SQLite's structural check at open (or SQLite refused to read it
    /// as a database). The collector must not start on it: writing to a damaged b-tree can
    /// spread the damage, and queries would answer from it silently.
    #[error(
        "database {path} is damaged; SQLite reports: {report}. Stop the collector, move the file \
         (with its -wal and -shm files) aside or restore it from a backup, then start again"
    )]
    Damaged { path: PathBuf, report: String },
}

impl StoreError {
    /// Whether a client that sent the write should retry it later. Database errors (disk full,
    /// the `store.max_size` budget reached, locked, I/O) are transient from the client's point
    /// of view: its data must not be lost, so it keeps it and retries.
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            StoreError::TooManySeries { .. }
                | StoreError::TooManySamples { .. }
                | StoreError::Damaged { .. }
        )
    }

    /// A short, closed name of the failure for the `error_type` label of
    /// `redline_collector_store_errors_total`: `full` (disk full or `store.max_size` reached),
    /// `io`, `busy`, `corrupt` or `other`.
    pub fn error_type(&self) -> &'static str {
        let code = match self {
            StoreError::Open { source, .. } | StoreError::Sqlite { source, .. } => {
                source.sqlite_error_code()
            }
            StoreError::Corrupt { .. } | StoreError::CorruptRecord(_) => {
                return "corrupt";
            }
            StoreError::Damaged { .. } => return "corrupt",
            StoreError::WriteFailed { error_type, .. } => return error_type,
            _ => None,
        };
        match code {
            Some(rusqlite::ErrorCode::DiskFull) => "full",
            Some(rusqlite::ErrorCode::SystemIoFailure) => "io",
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => "busy",
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
                "corrupt"
            }
            _ => "other",
        }
    }
}

fn sql(stage: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { stage, source }
}

/// Store settings, validated by `config`.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Directory holding `redline.db`; created if missing.
    pub data_dir: PathBuf,
    /// How long samples, spans and logs are kept.
    pub retention: Duration,
    /// How often the head is folded into compressed chunks.
    pub head_flush_interval: Duration,
    /// Capacity of the writer's command channel (writes waiting for a commit).
    pub write_queue: usize,
    /// The durable forward queues to fill (`store::forward`); empty when nothing is forwarded.
    pub forward: Vec<ForwardQueue>,
    /// Most bytes the database file may hold (`store.max_size`); `None` for no bound. Enforced
    /// by SQLite's `max_page_count` on the write connection, so reaching it fails a commit with
    /// SQLITE_FULL exactly as a full disk does, and ingest is answered as retryable.
    pub max_size: Option<u64>,
    /// Cardinality limits applied when a sample would create a new series.
    pub series_limits: SeriesLimits,
}

/// Cardinality limits: beyond them, samples of new series are refused (a partial success
/// naming the limit) while existing series keep being written.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeriesLimits {
    /// Series in the store.
    pub max_series: usize,
    /// Series with one `host_name` value (one agent).
    pub max_series_per_host: usize,
}

impl Default for SeriesLimits {
    fn default() -> Self {
        SeriesLimits {
            max_series: 2_000_000,
            max_series_per_host: 50_000,
        }
    }
}

impl StoreOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        StoreOptions {
            data_dir: data_dir.into(),
            retention: Duration::from_secs(15 * 24 * 3600),
            head_flush_interval: Duration::from_secs(30 * 60),
            write_queue: 256,
            forward: Vec::new(),
            max_size: None,
            series_limits: SeriesLimits::default(),
        }
    }
}

/// One write: everything one OTLP request (or one rule group evaluation) carried, committed
/// together.
#[derive(Debug, Default)]
pub struct WriteBatch {
    pub series: Vec<SeriesSamples>,
    pub metadata: Vec<MetricMeta>,
    pub spans: Vec<SpanRecord>,
    pub logs: Vec<LogRecord>,
    /// Alert state of rules whose alerts changed, each replacing what was stored for its rule.
    pub alert_state: Vec<RuleAlertState>,
    /// Alerts that resolved, for the history.
    pub resolved_alerts: Vec<(String, Alert)>,
    /// Payloads for the forward queues (the OTLP request as received), enqueued in the same
    /// transaction; payloads for targets that are not configured are ignored.
    pub forward: Vec<ForwardPayload>,
}

/// The persisted alerts of one rule, keyed by `rule_key` (`file;group;rule name;occurrence`).
#[derive(Debug, Clone)]
pub struct RuleAlertState {
    pub rule_key: String,
    pub alerts: Vec<Alert>,
}

/// A resolved alert from the history.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertHistoryEntry {
    pub rule_key: String,
    pub labels: Labels,
    pub annotations: std::collections::BTreeMap<String, String>,
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: i64,
}

impl WriteBatch {
    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }
}

/// Messages to the writer thread. Each carries the reply channel its sender awaits.
enum Command {
    Write(
        WriteBatch,
        oneshot::Sender<Result<WriteOutcome, StoreError>>,
    ),
    /// Fold the head into chunks now (tests, benchmarks, shutdown).
    Flush(oneshot::Sender<Result<(), StoreError>>),
    /// Delete data older than the cutoff (ms since the epoch).
    Retain(i64, oneshot::Sender<Result<RetentionOutcome, StoreError>>),
    /// Flush and stop; the thread exits after replying.
    Close(oneshot::Sender<Result<(), StoreError>>),
    /// Run a small write (notification state) on the write connection. The closure, built
    /// only inside this module, sends its own reply.
    Exec(Box<dyn FnOnce(&mut Connection) + Send>),
    /// From now on, hand committed samples of matching series and summaries of committed
    /// spans to this tap (replacing any earlier one).
    Tap(CommitTap),
    /// From now on, apply these cardinality limits to new series (a configuration reload).
    SetSeriesLimits(SeriesLimits),
    /// Delete these delivered rows of a forward queue (target, row ids).
    ForwardAck(
        String,
        Vec<i64>,
        oneshot::Sender<Result<AckOutcome, StoreError>>,
    ),
}

/// Picks the series whose committed samples the tap receives.
pub type SeriesFilter = Arc<dyn Fn(&Labels) -> bool + Send + Sync>;

/// The receiving end of committed data for derived series (anomaly scores, span metrics). The
/// writer sends with `try_send`: a full channel drops that commit's copy (counted in
/// `redline_collector_derive_dropped_total`), it never slows ingest.
pub struct CommitTap {
    pub filter: SeriesFilter,
    pub tx: mpsc::Sender<Committed>,
}

/// What one group commit stored, as far as a tap asked for it.
#[derive(Debug, Default)]
pub struct Committed {
    /// Accepted samples of the series the filter picked, in time order per series.
    pub series: Vec<(Arc<Labels>, Vec<Sample>)>,
    pub spans: Vec<SpanSummary>,
}

/// The parts of a span that span metrics need.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanSummary {
    pub service: String,
    pub name: String,
    pub kind: i32,
    pub status_code: i32,
    pub start_ns: i64,
    pub end_ns: i64,
}

/// What a retention pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub chunks: usize,
    pub series: usize,
    pub spans: usize,
    pub logs: usize,
    pub alert_history: usize,
}

/// Hash maps keyed by our own ids and label sets: foldhash is several times faster than SipHash
/// on these small keys, and the keys are not attacker-chosen in a way that matters (series ids
/// are ours; a label-flooding client hits the cardinality limit long before hash collisions).
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The in-memory state shared between the writer and readers.
#[derive(Default)]
struct Shared {
    /// Series id → labels, for every series in the `series` table.
    labels: FastMap<i64, Arc<Labels>>,
    /// Label name → value → series ids (sorted), the inverted index selectors use.
    postings: FastMap<String, FastMap<String, BTreeSet<i64>>>,
    /// Samples of each series not yet folded into a chunk, in timestamp order.
    head: FastMap<i64, Vec<Sample>>,
    metadata: FastMap<String, MetricMeta>,
}

impl Shared {
    fn add_series(&mut self, id: i64, labels: Arc<Labels>) {
        for (name, value) in labels.iter() {
            self.postings
                .entry(name.to_owned())
                .or_default()
                .entry(value.to_owned())
                .or_default()
                .insert(id);
        }
        self.labels.insert(id, labels);
    }

    fn remove_series(&mut self, id: i64) {
        if let Some(labels) = self.labels.remove(&id) {
            for (name, value) in labels.iter() {
                if let Some(values) = self.postings.get_mut(name) {
                    if let Some(ids) = values.get_mut(value) {
                        ids.remove(&id);
                        if ids.is_empty() {
                            values.remove(value);
                        }
                    }
                    if values.is_empty() {
                        self.postings.remove(name);
                    }
                }
            }
        }
        self.head.remove(&id);
    }

    /// Ids of the series matching every matcher, in id order.
    fn select(&self, matchers: &[Matcher]) -> Vec<i64> {
        // Start from the smallest posting list of an equality matcher on a non-empty value;
        // without one, every series is a candidate.
        let mut candidates: Option<BTreeSet<i64>> = None;
        for m in matchers {
            if let crate::model::MatchOp::Equal = m.op
                && !m.value.is_empty()
            {
                let ids = self
                    .postings
                    .get(&m.name)
                    .and_then(|v| v.get(&m.value))
                    .cloned()
                    .unwrap_or_default();
                candidates = Some(match candidates {
                    None => ids,
                    Some(c) => c.intersection(&ids).copied().collect(),
                });
            }
        }
        let candidates: Vec<i64> = match candidates {
            Some(c) => c.into_iter().collect(),
            None => {
                let mut all: Vec<i64> = self.labels.keys().copied().collect();
                all.sort_unstable();
                all
            }
        };
        candidates
            .into_iter()
            .filter(|id| {
                self.labels.get(id).is_some_and(|labels| {
                    matchers
                        .iter()
                        .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
                })
            })
            .collect()
    }
}

/// Runs `PRAGMA quick_check` and refuses a damaged database.
///
/// `quick_check` rather than `integrity_check`: it reads every page and verifies the b-tree
/// structure, cell bounds, record formats and the free list, which is what a torn write or a
/// bad sector damages; `integrity_check` also cross-checks every index against its table,
/// which costs three to four times as long (on a 125 MB store, warm cache: 0.3-0.4 s against
/// 1.2-1.4 s; about 30 s against 2 min at 10 GB) for damage our writes cannot cause short of
/// an SQLite bug.
fn check_integrity(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    // quick_check answers one row "ok", or up to 100 rows describing problems.
    let report: Vec<String> = conn
        .prepare("PRAGMA quick_check")
        .and_then(|mut stmt| {
            stmt.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| damaged_or(path, "integrity check", e))?;
    if report.len() != 1 || report[0] != "ok" {
        // Rows may hold several lines, the first naming the schema ("*** in database main
        // ***"); one line per problem reads better in a log.
        let problems: Vec<&str> = report
            .iter()
            .flat_map(|row| row.lines())
            .filter(|line| !line.starts_with("***") && !line.trim().is_empty())
            .collect();
        let mut text = problems
            .iter()
            .take(5)
            .copied()
            .collect::<Vec<_>>()
            .join("; ");
        if problems.len() > 5 {
            text.push_str(&format!("; … ({} problems in all)", problems.len()));
        }
        return Err(StoreError::Damaged {
            path: path.to_owned(),
            report: text,
        });
    }
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "database passed its integrity check (quick_check)"
    );
    Ok(())
}

/// Maps SQLite's "this is not a database" and "malformed" errors at open to `Damaged`, which
/// tells the operator what to do; any other error keeps its stage.
fn damaged_or(path: &Path, stage: &'static str, source: rusqlite::Error) -> StoreError {
    match source.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
            StoreError::Damaged {
                path: path.to_owned(),
                report: source.to_string(),
            }
        }
        _ => StoreError::Sqlite { stage, source },
    }
}

/// Bounds the database file to `max_size` bytes through `max_page_count`, a setting of the
/// write connection (readers never add pages). SQLite never lowers the bound below the pages
/// the file already has: a store above its budget keeps serving reads and takes writes only
/// into free pages (those retention frees) until it is back under.
fn set_max_size(conn: &Connection, max_size: u64) -> Result<(), StoreError> {
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .map_err(sql("max size"))?;
    let pages = (max_size / page_size.max(1) as u64).max(1) as i64;
    let effective: i64 = conn
        .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
            r.get(0)
        })
        .map_err(sql("max size"))?;
    if effective > pages {
        tracing::warn!(
            max_size,
            size = effective.saturating_mul(page_size),
            "the database is already larger than store.max_size: writes fail until retention frees pages"
        );
    }
    Ok(())
}

/// A pool of read-only connections; readers take one, use it in a blocking task, return it.
struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = match self.idle.lock().map(|mut idle| idle.pop()) {
            Ok(Some(conn)) => conn,
            _ => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|source| StoreError::Open {
                    path: self.path.clone(),
                    source,
                })?;
                conn.busy_timeout(Duration::from_secs(10))
                    .map_err(sql("configure reader"))?;
                conn
            }
        };
        let out = f(&conn);
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < 8
        {
            idle.push(conn);
        }
        out
    }
}

/// A cheap, cloneable handle to the store.
#[derive(Clone)]
pub struct Store {
    commands: mpsc::Sender<Command>,
    /// Subscribed to by rule groups; the writer sends on its clone.
    written: tokio::sync::broadcast::Sender<Arc<Vec<String>>>,
    shared: Arc<RwLock<Shared>>,
    readers: Arc<ReadPool>,
    path: PathBuf,
    /// Forwarders subscribe to it; the writer sends the newest enqueued forward row id.
    forward_enqueued: tokio::sync::watch::Sender<i64>,
    /// `StoreOptions::max_size`, for `/metrics`.
    max_size: Option<u64>,
}

/// One series and its samples in a time range.
#[derive(Clone, Debug)]
pub struct SeriesData {
    pub labels: Arc<Labels>,
    pub samples: Vec<Sample>,
}

/// Filters of a log search; every field is optional.
#[derive(Clone, Debug, Default)]
pub struct LogQuery {
    pub service: Option<String>,
    pub min_severity: Option<i32>,
    pub start_ns: Option<i64>,
    pub end_ns: Option<i64>,
    pub trace_id: Option<String>,
    pub contains: Option<String>,
    pub limit: usize,
}

/// Filters of a trace search.
#[derive(Clone, Debug)]
pub struct TraceQuery {
    pub service: String,
    pub operation: Option<String>,
    pub start_ns: i64,
    pub end_ns: i64,
    pub limit: usize,
}

impl Store {
    /// Opens (creating if needed) the database under `options.data_dir`, migrates it, rebuilds
    /// the head from the `wal` table and starts the writer thread.
    pub fn open(options: &StoreOptions) -> Result<Store, StoreError> {
        std::fs::create_dir_all(&options.data_dir).map_err(|e| StoreError::Open {
            path: options.data_dir.clone(),
            source: rusqlite::Error::InvalidPath(PathBuf::from(e.to_string())),
        })?;
        let path = options.data_dir.join("redline.db");
        let mut conn = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        // A damaged file can already fail here (SQLITE_NOTADB when the header is overwritten):
        // it gets the same refusal as a failed check.
        schema::configure(&conn).map_err(|e| damaged_or(&path, "configure", e))?;
        check_integrity(&conn, &path)?;
        schema::migrate(&mut conn).map_err(|e| damaged_or(&path, "migrate", e))?;
        if let Some(max_size) = options.max_size {
            set_max_size(&conn, max_size)?;
        }
        let shared = Arc::new(RwLock::new(Shared::default()));
        let (written, _) = tokio::sync::broadcast::channel(64);
        let (forward_enqueued, _) = tokio::sync::watch::channel(0);
        let forward =
            forward::ForwardState::load(&conn, &options.forward, forward_enqueued.clone())?;
        let state = writer::Writer::load(conn, shared.clone(), options, written.clone(), forward)?;
        let (tx, rx) = mpsc::channel(options.write_queue.max(1));
        std::thread::Builder::new()
            .name("redline-store-writer".into())
            .spawn(move || state.run(rx))
            .map_err(|e| StoreError::Join(e.to_string()))?;
        Ok(Store {
            commands: tx,
            written,
            shared,
            readers: Arc::new(ReadPool {
                path: path.clone(),
                idle: Mutex::new(Vec::new()),
            }),
            path,
            forward_enqueued,
            max_size: options.max_size,
        })
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Command,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Commits a batch; returns once it is durable.
    pub async fn write(&self, batch: WriteBatch) -> Result<WriteOutcome, StoreError> {
        self.call(|tx| Command::Write(batch, tx)).await
    }

    /// Metric names that received samples, one message per commit, sent after the commit.
    pub fn subscribe_writes(&self) -> tokio::sync::broadcast::Receiver<Arc<Vec<String>>> {
        self.written.subscribe()
    }

    /// Folds the head into chunks now.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.call(Command::Flush).await
    }

    /// Deletes data older than `cutoff_ms`.
    pub async fn retain(&self, cutoff_ms: i64) -> Result<RetentionOutcome, StoreError> {
        self.call(|tx| Command::Retain(cutoff_ms, tx)).await
    }

    /// Round-trips a no-op through the writer thread. It answers only after the writer has
    /// handled everything queued before it, so a wedged writer (or a queue that never drains)
    /// never answers: the systemd watchdog (`crate::systemd::watchdog`) pings only after it
    /// does. Cheap: no SQL, no lock.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.exec(|_| Ok(())).await
    }

    /// Flushes the head and stops the writer. Later writes fail with `Closed`.
    pub async fn close(&self) -> Result<(), StoreError> {
        self.call(Command::Close).await
    }

    /// Taps committed data: after each commit, samples of the series `filter` picks and every
    /// span's summary arrive on the returned channel (bounded by `capacity`; when it is full a
    /// commit's copy is dropped and counted, ingest never waits).
    pub async fn tap_commits(
        &self,
        filter: SeriesFilter,
        capacity: usize,
    ) -> Result<mpsc::Receiver<Committed>, StoreError> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        self.commands
            .send(Command::Tap(CommitTap { filter, tx }))
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(rx)
    }

    /// Changes the cardinality limits for the commits that follow (a configuration reload).
    /// Lowering a limit below the series already stored refuses new series only; nothing
    /// stored is removed.
    pub async fn set_series_limits(&self, limits: SeriesLimits) -> Result<(), StoreError> {
        self.commands
            .send(Command::SetSeriesLimits(limits))
            .await
            .map_err(|_| StoreError::Closed)
    }

    /// Runs `f` on the writer's connection, between group commits, and returns its result.
    async fn exec<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        let command = Command::Exec(Box::new(move |conn| {
            let _ = tx.send(f(conn));
        }));
        self.commands
            .send(command)
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Join(e.to_string()))?
    }

    /// Label sets of the series matching all matchers.
    pub fn series(&self, matchers: &[Matcher]) -> Vec<Arc<Labels>> {
        let Ok(shared) = self.shared.read() else {
            return Vec::new();
        };
        shared
            .select(matchers)
            .into_iter()
            .filter_map(|id| shared.labels.get(&id).cloned())
            .collect()
    }

    /// Label names of the matching series (all series without matchers), sorted.
    pub fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        let Ok(shared) = self.shared.read() else {
            return Vec::new();
        };
        if matchers.is_empty() {
            let mut names: Vec<String> = shared.postings.keys().cloned().collect();
            names.sort();
            return names;
        }
        let mut names = BTreeSet::new();
        for id in shared.select(matchers) {
            if let Some(labels) = shared.labels.get(&id) {
                names.extend(labels.iter().map(|(n, _)| n.to_owned()));
            }
        }
        names.into_iter().collect()
    }

    /// Values of one label among the matching series, sorted.
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        let Ok(shared) = self.shared.read() else {
            return Vec::new();
        };
        if matchers.is_empty() {
            let mut values: Vec<String> = shared
                .postings
                .get(name)
                .map(|v| v.keys().cloned().collect())
                .unwrap_or_default();
            values.sort();
            return values;
        }
        let mut values = BTreeSet::new();
        for id in shared.select(matchers) {
            if let Some(v) = shared.labels.get(&id).and_then(|l| l.get(name)) {
                values.insert(v.to_owned());
            }
        }
        values.into_iter().collect()
    }

    /// Metadata of metric families, keyed by translated name.
    pub fn metadata(&self) -> Vec<MetricMeta> {
        let Ok(shared) = self.shared.read() else {
            return Vec::new();
        };
        let mut out: Vec<MetricMeta> = shared.metadata.values().cloned().collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Samples with `start_ms <= t <= end_ms` of every series matching all matchers, refusing
    /// when more than `max_series` series match or more than `max_samples` samples would load.
    pub async fn select(
        &self,
        matchers: Vec<Matcher>,
        start_ms: i64,
        end_ms: i64,
        max_series: usize,
        max_samples: usize,
    ) -> Result<Vec<SeriesData>, StoreError> {
        self.blocking(move |store| {
            store.select_blocking(&matchers, start_ms, end_ms, max_series, max_samples)
        })
        .await
    }

    fn select_blocking(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        max_series: usize,
        max_samples: usize,
    ) -> Result<Vec<SeriesData>, StoreError> {
        // Copy what we need from the head under the read lock, then read chunks without it.
        let selected: Vec<(i64, Arc<Labels>, Vec<Sample>)> = {
            let shared = self.shared.read().map_err(|_| StoreError::Closed)?;
            let ids = shared.select(matchers);
            if ids.len() > max_series {
                return Err(StoreError::TooManySeries {
                    found: ids.len(),
                    limit: max_series,
                });
            }
            ids.into_iter()
                .filter_map(|id| {
                    let labels = shared.labels.get(&id)?.clone();
                    let head: Vec<Sample> = shared
                        .head
                        .get(&id)
                        .map(|h| in_range(h, start_ms, end_ms).to_vec())
                        .unwrap_or_default();
                    Some((id, labels, head))
                })
                .collect()
        };
        let mut loaded = 0usize;
        self.readers.with(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT data FROM chunks WHERE series_id = ?1 AND max_t >= ?2 AND min_t <= ?3 ORDER BY max_t",
                )
                .map_err(sql("select chunks"))?;
            let mut out = Vec::with_capacity(selected.len());
            for (id, labels, head) in selected {
                let mut samples = Vec::new();
                let mut rows = stmt
                    .query(params![id, start_ms, end_ms])
                    .map_err(sql("select chunks"))?;
                while let Some(row) = rows.next().map_err(sql("select chunks"))? {
                    let data: Vec<u8> = row.get(0).map_err(sql("select chunks"))?;
                    let decoded = chunk::decode(&data).map_err(|source| StoreError::Corrupt {
                        series_id: id,
                        source,
                    })?;
                    samples.extend_from_slice(in_range(&decoded, start_ms, end_ms));
                }
                samples.extend(head);
                // A flush between copying the head and reading chunks can show a sample twice.
                samples.dedup_by_key(|s| s.timestamp_ms);
                loaded += samples.len();
                if loaded > max_samples {
                    return Err(StoreError::TooManySamples { limit: max_samples });
                }
                if !samples.is_empty() {
                    out.push(SeriesData { labels, samples });
                }
            }
            Ok(out)
        })
    }

    /// Distinct services that sent spans.
    pub async fn span_services(&self) -> Result<Vec<String>, StoreError> {
        self.blocking(|store| {
            store.readers.with(|conn| {
                let mut stmt = conn
                    .prepare_cached("SELECT DISTINCT service FROM span_operations ORDER BY service")
                    .map_err(sql("services"))?;
                let rows = stmt
                    .query_map([], |r| r.get::<_, String>(0))
                    .map_err(sql("services"))?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql("services"))
            })
        })
        .await
    }

    /// Operations (span names and kinds) of one service.
    pub async fn span_operations(&self, service: String) -> Result<Vec<(String, i32)>, StoreError> {
        self.blocking(move |store| {
            store.readers.with(|conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT name, kind FROM span_operations WHERE service = ?1 ORDER BY name",
                    )
                    .map_err(sql("operations"))?;
                let rows = stmt
                    .query_map([&service], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(sql("operations"))?;
                rows.collect::<Result<Vec<_>, _>>()
                    .map_err(sql("operations"))
            })
        })
        .await
    }

    /// Whole traces (all their spans) of the most recent traces matching the query.
    pub async fn find_traces(&self, query: TraceQuery) -> Result<Vec<Vec<SpanRecord>>, StoreError> {
        self.blocking(move |store| {
            store.readers.with(|conn| {
                let ids: Vec<String> = {
                    let mut stmt = conn
                        .prepare_cached(
                            "SELECT trace_id FROM spans
                             WHERE service = ?1 AND start_ns >= ?2 AND start_ns <= ?3
                               AND (?4 IS NULL OR name = ?4)
                             GROUP BY trace_id ORDER BY MAX(start_ns) DESC LIMIT ?5",
                        )
                        .map_err(sql("find traces"))?;
                    let rows = stmt
                        .query_map(
                            params![
                                query.service,
                                query.start_ns,
                                query.end_ns,
                                query.operation,
                                query.limit as i64
                            ],
                            |r| r.get(0),
                        )
                        .map_err(sql("find traces"))?;
                    rows.collect::<Result<_, _>>().map_err(sql("find traces"))?
                };
                ids.iter().map(|id| trace_spans(conn, id)).collect()
            })
        })
        .await
    }

    /// All spans of one trace (empty when unknown).
    pub async fn trace(&self, trace_id: String) -> Result<Vec<SpanRecord>, StoreError> {
        self.blocking(move |store| store.readers.with(|conn| trace_spans(conn, &trace_id)))
            .await
    }

    /// Log records matching the query, newest first.
    pub async fn logs(&self, query: LogQuery) -> Result<Vec<LogRecord>, StoreError> {
        self.blocking(move |store| {
            store.readers.with(|conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT time_ns, observed_ns, service, severity_number, severity_text, body,
                                attributes, resource, trace_id, span_id
                         FROM logs
                         WHERE (?1 IS NULL OR service = ?1)
                           AND (?2 IS NULL OR severity_number >= ?2)
                           AND (?3 IS NULL OR time_ns >= ?3)
                           AND (?4 IS NULL OR time_ns <= ?4)
                           AND (?5 IS NULL OR trace_id = ?5)
                           AND (?6 IS NULL OR instr(body, ?6) > 0)
                         ORDER BY time_ns DESC LIMIT ?7",
                    )
                    .map_err(sql("logs"))?;
                let rows = stmt
                    .query_map(
                        params![
                            query.service,
                            query.min_severity,
                            query.start_ns,
                            query.end_ns,
                            query.trace_id,
                            query.contains,
                            query.limit as i64
                        ],
                        |r| {
                            Ok(LogRecord {
                                time_ns: r.get(0)?,
                                observed_ns: r.get(1)?,
                                service: r.get(2)?,
                                severity_number: r.get(3)?,
                                severity_text: r.get(4)?,
                                body: r.get(5)?,
                                attributes: r.get(6)?,
                                resource: r.get(7)?,
                                trace_id: r.get(8)?,
                                span_id: r.get(9)?,
                            })
                        },
                    )
                    .map_err(sql("logs"))?;
                rows.collect::<Result<_, _>>().map_err(sql("logs"))
            })
        })
        .await
    }

    /// The persisted alert state of every rule, as the last evaluation left it.
    pub async fn load_alert_state(&self) -> Result<Vec<RuleAlertState>, StoreError> {
        self.blocking(|store| {
            store.readers.with(|conn| {
                let mut stmt = conn
                    .prepare(
                        "SELECT rule_key, labels, state, value, active_at, fired_at, resolved_at,
                                keep_firing_since, last_seen, annotations
                         FROM alert_state ORDER BY rule_key",
                    )
                    .map_err(sql("load alerts"))?;
                let mut rows = stmt.query([]).map_err(sql("load alerts"))?;
                let mut out: Vec<RuleAlertState> = Vec::new();
                while let Some(r) = rows.next().map_err(sql("load alerts"))? {
                    let rule_key: String = r.get(0).map_err(sql("load alerts"))?;
                    let labels: String = r.get(1).map_err(sql("load alerts"))?;
                    let state: String = r.get(2).map_err(sql("load alerts"))?;
                    let annotations: String = r.get(9).map_err(sql("load alerts"))?;
                    let (Some(labels), Some(state)) =
                        (Labels::parse_canonical(&labels), State::parse(&state))
                    else {
                        tracing::warn!(rule_key, "skipping unreadable persisted alert");
                        continue;
                    };
                    let alert = Alert {
                        labels,
                        annotations: serde_json::from_str(&annotations).unwrap_or_default(),
                        state,
                        value: r.get(3).map_err(sql("load alerts"))?,
                        active_at: r.get(4).map_err(sql("load alerts"))?,
                        fired_at: r.get(5).map_err(sql("load alerts"))?,
                        resolved_at: r.get(6).map_err(sql("load alerts"))?,
                        keep_firing_since: r.get(7).map_err(sql("load alerts"))?,
                        last_seen: r.get(8).map_err(sql("load alerts"))?,
                    };
                    match out.last_mut() {
                        Some(last) if last.rule_key == rule_key => last.alerts.push(alert),
                        _ => out.push(RuleAlertState {
                            rule_key,
                            alerts: vec![alert],
                        }),
                    }
                }
                Ok(out)
            })
        })
        .await
    }

    /// Resolved alerts with `resolved_at >= since_ms`, newest first.
    pub async fn alert_history(
        &self,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<AlertHistoryEntry>, StoreError> {
        self.blocking(move |store| {
            store.readers.with(|conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT rule_key, labels, annotations, active_at, fired_at, resolved_at
                         FROM alert_history WHERE resolved_at >= ?1 ORDER BY resolved_at DESC LIMIT ?2",
                    )
                    .map_err(sql("alert history"))?;
                let rows = stmt
                    .query_map(params![since_ms, limit as i64], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, Option<i64>>(4)?,
                            r.get::<_, i64>(5)?,
                        ))
                    })
                    .map_err(sql("alert history"))?;
                let mut out = Vec::new();
                for row in rows {
                    let (rule_key, labels, annotations, active_at, fired_at, resolved_at) =
                        row.map_err(sql("alert history"))?;
                    let Some(labels) = Labels::parse_canonical(&labels) else {
                        continue;
                    };
                    out.push(AlertHistoryEntry {
                        rule_key,
                        labels,
                        annotations: serde_json::from_str(&annotations).unwrap_or_default(),
                        active_at,
                        fired_at,
                        resolved_at,
                    });
                }
                Ok(out)
            })
        })
        .await
    }

    /// Size of the database on disk in bytes (main file plus its WAL).
    pub fn disk_bytes(&self) -> u64 {
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        size(&self.path) + size(Path::new(&wal))
    }

    /// Bytes used by sample data (chunk and pending wal rows), and the samples they hold.
    pub async fn sample_footprint(&self) -> Result<(u64, u64), StoreError> {
        self.blocking(|store| {
            store.readers.with(|conn| {
                let chunks: (i64, i64) = conn
                    .query_row(
                        "SELECT COALESCE(SUM(length(data) + 24), 0), COALESCE(SUM(count), 0) FROM chunks",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .map_err(sql("footprint"))?;
                Ok((chunks.0 as u64, chunks.1 as u64))
            })
        })
        .await
    }

    /// Bytes of the database file in use: its pages minus those on the free list. This is
    /// what `store.max_size` bounds (free pages are reused before the file grows).
    pub async fn used_bytes(&self) -> Result<u64, StoreError> {
        self.blocking(|store| {
            store.readers.with(|conn| {
                conn.query_row(
                    "SELECT page_count - freelist_count, page_size
                     FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()",
                    [],
                    |r| Ok(r.get::<_, i64>(0)?.max(0) as u64 * r.get::<_, i64>(1)?.max(0) as u64),
                )
                .map_err(sql("used bytes"))
            })
        })
        .await
    }

    /// The bound on the database file's size in bytes (`store.max_size`), if any.
    pub fn max_size(&self) -> Option<u64> {
        self.max_size
    }

    /// Pages on the database's free list (space the file holds but does not use).
    pub async fn free_pages(&self) -> Result<i64, StoreError> {
        self.blocking(|store| {
            store.readers.with(|conn| {
                conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))
                    .map_err(sql("freelist"))
            })
        })
        .await
    }

    /// Number of series in the index.
    pub fn series_count(&self) -> usize {
        self.shared.read().map(|s| s.labels.len()).unwrap_or(0)
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The sub-slice of timestamp-sorted samples within `[start, end]`.
fn in_range(samples: &[Sample], start: i64, end: i64) -> &[Sample] {
    let lo = samples.partition_point(|s| s.timestamp_ms < start);
    let hi = samples.partition_point(|s| s.timestamp_ms <= end);
    &samples[lo..hi.max(lo)]
}

fn trace_spans(conn: &Connection, trace_id: &str) -> Result<Vec<SpanRecord>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT trace_id, span_id, parent_span_id, service, name, kind, start_ns, end_ns,
                    status_code, status_message, attributes, resource, events, links, scope
             FROM spans WHERE trace_id = ?1 ORDER BY start_ns",
        )
        .map_err(sql("trace"))?;
    let rows = stmt
        .query_map([trace_id], |r| {
            Ok(SpanRecord {
                trace_id: r.get(0)?,
                span_id: r.get(1)?,
                parent_span_id: r.get(2)?,
                service: r.get(3)?,
                name: r.get(4)?,
                kind: r.get(5)?,
                start_ns: r.get(6)?,
                end_ns: r.get(7)?,
                status_code: r.get(8)?,
                status_message: r.get(9)?,
                attributes: r.get(10)?,
                resource: r.get(11)?,
                events: r.get(12)?,
                links: r.get(13)?,
                scope: r.get(14)?,
            })
        })
        .map_err(sql("trace"))?;
    rows.collect::<Result<_, _>>().map_err(sql("trace"))
}

/// Reads a metadata value; used by the writer at load.
fn optional_i64(conn: &Connection, query: &str) -> Result<Option<i64>, StoreError> {
    conn.query_row(query, [], |r| r.get::<_, Option<i64>>(0))
        .optional()
        .map(Option::flatten)
        .map_err(sql("load"))
}

#[cfg(test)]
mod tests;
