//! Forwarding to existing engines: every OTLP request the collector receives to an upstream
//! OTLP endpoint (an OpenTelemetry Collector gateway, Tempo, a vendor), and every sample it
//! commits to Prometheus remote_write 1.0 receivers (VictoriaMetrics, Mimir, Thanos,
//! Prometheus), with nothing acknowledged lost to an upstream outage or a restart.
//!
//! ## Durability
//! The data and its forward payloads are committed in one transaction (`store::forward`): the
//! receiver attaches the OTLP request to its `WriteBatch` (`otlp::*_payload`), and the store's
//! writer encodes the samples it accepted for each remote_write target
//! (`remote_write::encode`, handed to the store by `queues`). So an acknowledged export is
//! stored and queued, or neither. Each target has its own queue in SQLite, bounded by bytes;
//! when full, its oldest rows are dropped and counted.
//!
//! ## Delivery
//! One `Forwarder` task per target owns that target's sending: it reads the oldest rows,
//! joins them into one request (payloads of one signal concatenate into a valid protobuf
//! message), sends it, and on success deletes the rows through the store. A retryable failure
//! (the OTLP spec's gRPC codes and HTTP statuses; remote_write's 5xx and 429) waits the
//! server's `RetryInfo`/`Retry-After` or an exponential backoff with full jitter, then sends
//! the same rows again; a permanent one drops them (counted with the reason). Delivery is at
//! least once: rows sent but not yet deleted when the process dies are sent again after the
//! restart (receivers keep identical samples once; spans are keyed by id).
//!
//! ## Lifecycle
//! `spawn` starts the tasks in `Collector::run`; they stop at the shutdown signal, after the
//! attempt in flight (bounded by the target's timeout) has finished and been recorded, and
//! before the store closes. What is still queued stays in SQLite for the next start.

pub mod config;
pub mod otlp;
pub mod remote_write;
pub mod retry;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::store::{ForwardQueue, QueuedPayload, Store};
use config::ForwardConfig;

/// An OTLP batch stays below this size: the default gRPC receive limit of most OTLP servers is
/// 4 MiB. A single larger queued request is still sent alone.
const OTLP_BATCH_BYTES: u64 = 3 << 20;
/// A remote_write batch stays below this size (before compression).
const REMOTE_WRITE_BATCH_BYTES: u64 = 16 << 20;
/// How often an idle forwarder looks at its queue even without a wake-up from the store.
const IDLE_POLL: Duration = Duration::from_secs(5);

/// The queues the store fills for `config`: one per target, remote_write targets with the
/// encoder of their samples. `external_labels` (`rules.external_labels`) are added to every
/// remote-written series that lacks them, as Prometheus does, so the series of collectors
/// that shard a fleet stay apart in the shared store.
pub fn queues(
    config: &ForwardConfig,
    external_labels: &std::collections::BTreeMap<String, String>,
) -> Vec<ForwardQueue> {
    let external: Arc<Vec<(String, String)>> = Arc::new(
        external_labels
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    let mut out = Vec::new();
    if let Some(otlp) = &config.otlp {
        out.push(ForwardQueue {
            target: config::OTLP_TARGET.to_owned(),
            max_bytes: otlp.queue_max_bytes,
            samples: None,
        });
    }
    for rw in &config.remote_write {
        let target = rw.target();
        let max = rw.max_samples_per_send;
        let name = target.clone();
        let external = external.clone();
        out.push(ForwardQueue {
            target,
            max_bytes: rw.queue_max_bytes,
            samples: Some(Arc::new(move |series| {
                remote_write::encode(&name, max, &external, series)
            })),
        });
    }
    out
}

/// A delivered batch: items sent, and how many of them the upstream refused (OTLP partial
/// success; not retried).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    pub items: u64,
    pub rejected: u64,
}

/// A failed attempt, and whether to try the same batch again.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub retryable: bool,
    /// The server's `RetryInfo` / `Retry-After`.
    pub server_delay: Option<Duration>,
    /// A short label for `redline_collector_forward_failed_total{reason}`.
    pub reason: &'static str,
    pub message: String,
}

impl SendError {
    fn permanent(message: String) -> SendError {
        SendError {
            retryable: false,
            server_delay: None,
            reason: "encode",
            message,
        }
    }

    /// A request that got no answer (connect, TLS, timeout, reset): always retried.
    fn network(e: reqwest::Error) -> SendError {
        let reason = if e.is_timeout() {
            "timeout"
        } else if e.is_connect() {
            "connect"
        } else {
            "network"
        };
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        SendError {
            retryable: true,
            server_delay: None,
            reason,
            message,
        }
    }
}

fn status_reason(status: u16) -> &'static str {
    match status {
        429 => "http_429",
        400..=499 => "http_4xx",
        _ => "http_5xx",
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

/// An HTTP client with the process's rustls provider (ring), trusting `ca_pem` or the
/// system's roots, not following redirects (a POST body must not wander).
fn http_client(ca_pem: Option<Vec<u8>>) -> Result<reqwest::Client, String> {
    let tls = crate::notify::webhook::rustls_client_config(&crate::notify::config::TlsConfig {
        ca_pem,
        ..Default::default()
    })?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

enum Sink {
    Otlp(otlp::Client),
    RemoteWrite(remote_write::Client),
}

/// The task that owns one target's delivery.
pub struct Forwarder {
    target: String,
    store: Store,
    sink: Sink,
    backoff: config::Backoff,
    max_items: u64,
    max_bytes: u64,
}

/// Builds a forwarder per configured target. Fails on a client that cannot be built (a bad
/// endpoint or CA), before anything runs.
pub fn forwarders(store: &Store, config: &ForwardConfig) -> Result<Vec<Forwarder>, String> {
    let mut out = Vec::new();
    if let Some(o) = &config.otlp {
        out.push(Forwarder {
            target: config::OTLP_TARGET.to_owned(),
            store: store.clone(),
            backoff: o.backoff,
            max_items: u64::MAX,
            max_bytes: OTLP_BATCH_BYTES,
            sink: Sink::Otlp(
                otlp::Client::new(o.clone()).map_err(|e| format!("forward.otlp: {e}"))?,
            ),
        });
    }
    for (i, rw) in config.remote_write.iter().enumerate() {
        out.push(Forwarder {
            target: rw.target(),
            store: store.clone(),
            backoff: rw.backoff,
            max_items: rw.max_samples_per_send as u64,
            max_bytes: REMOTE_WRITE_BATCH_BYTES,
            sink: Sink::RemoteWrite(
                remote_write::Client::new(rw.clone())
                    .map_err(|e| format!("forward.remote_write[{i}]: {e}"))?,
            ),
        });
    }
    Ok(out)
}

/// Deletes the queues of targets no longer configured (counted as dropped, reason
/// `unconfigured`), then starts one task per target. The handles finish after `stop`.
pub async fn spawn(
    store: &Store,
    config: &ForwardConfig,
    stop: watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, String> {
    let forwarders = forwarders(store, config)?;
    let keep = queues(config, &Default::default())
        .into_iter()
        .map(|q| q.target)
        .collect();
    match store.forward_purge(keep).await {
        Ok(purged) => {
            for p in purged {
                tracing::warn!(target = %p.target, rows = p.rows, items = p.items, "dropping the forward queue of a target no longer configured");
                metrics::counter!("redline_collector_forward_dropped_total", "target" => p.target, "reason" => "unconfigured")
                    .increment(p.items);
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot purge forward queues of removed targets"),
    }
    for f in &forwarders {
        // An empty acknowledgement makes the writer publish the queue's gauges again: the
        // store was opened (and first published them) before `/metrics`' recorder existed.
        let _ = store.forward_ack(&f.target, Vec::new()).await;
    }
    Ok(forwarders
        .into_iter()
        .map(|f| tokio::spawn(f.run(stop.clone())))
        .collect())
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

impl Forwarder {
    /// Sends the queue's oldest rows until `stop`; see the module documentation.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        let mut enqueued = self.store.forward_watch();
        let stop_fut = stopped(stop.clone());
        tokio::pin!(stop_fut);
        let mut attempt: u32 = 0;
        // Logged once per outage: the first failure, then the recovery.
        let mut failing = false;
        loop {
            if *stop.borrow() {
                return;
            }
            enqueued.borrow_and_update();
            let rows = match self
                .store
                .forward_read(&self.target, self.max_items, self.max_bytes)
                .await
            {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(target = %self.target, error = %e, "cannot read the forward queue");
                    tokio::select! {
                        _ = &mut stop_fut => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            if rows.is_empty() {
                tokio::select! {
                    _ = &mut stop_fut => return,
                    _ = enqueued.changed() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                }
                continue;
            }
            let batch = Batch::of(rows);
            let started = Instant::now();
            // Not cancelled by `stop`: the attempt is bounded by the target's timeout, and
            // finishing it lets a delivered batch be deleted instead of sent again.
            let result = match &self.sink {
                Sink::Otlp(c) => c.send(&batch.signal, &batch.body, batch.items).await,
                Sink::RemoteWrite(c) => c.send(&batch.body, batch.items).await,
            };
            metrics::histogram!("redline_collector_forward_send_duration_seconds", "target" => self.target.clone())
                .record(started.elapsed().as_secs_f64());
            match result {
                Ok(sent) => {
                    if failing {
                        failing = false;
                        tracing::info!(target = %self.target, "forwarding recovered");
                    }
                    attempt = 0;
                    metrics::counter!("redline_collector_forward_sent_total", "target" => self.target.clone(), "signal" => batch.signal.clone())
                        .increment(sent.items - sent.rejected.min(sent.items));
                    if sent.rejected > 0 {
                        metrics::counter!("redline_collector_forward_rejected_total", "target" => self.target.clone(), "signal" => batch.signal.clone())
                            .increment(sent.rejected);
                    }
                    self.ack(&batch).await;
                }
                Err(e) if e.retryable => {
                    metrics::counter!("redline_collector_forward_failed_total", "target" => self.target.clone(), "reason" => e.reason)
                        .increment(1);
                    metrics::counter!("redline_collector_forward_retries_total", "target" => self.target.clone())
                        .increment(1);
                    if !failing {
                        failing = true;
                        tracing::warn!(target = %self.target, error = %e, "forwarding failed; retrying with backoff, the queue keeps the data");
                    }
                    let delay = retry::delay(
                        &self.backoff,
                        attempt,
                        e.server_delay,
                        rand::random::<f64>(),
                    );
                    attempt = attempt.saturating_add(1);
                    tokio::select! {
                        _ = &mut stop_fut => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                Err(e) => {
                    metrics::counter!("redline_collector_forward_failed_total", "target" => self.target.clone(), "reason" => e.reason)
                        .increment(1);
                    metrics::counter!("redline_collector_forward_dropped_total", "target" => self.target.clone(), "reason" => "rejected")
                        .increment(batch.items);
                    tracing::warn!(target = %self.target, error = %e, items = batch.items, "upstream refused a batch permanently; dropped");
                    attempt = 0;
                    self.ack(&batch).await;
                }
            }
        }
    }

    async fn ack(&self, batch: &Batch) {
        if let Err(e) = self
            .store
            .forward_ack(&self.target, batch.ids.clone())
            .await
        {
            // The rows stay queued and are sent again: at least once, never lost.
            tracing::error!(target = %self.target, error = %e, "cannot delete delivered rows from the forward queue; they will be sent again");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Rows joined into one request: the leading run of one signal.
struct Batch {
    ids: Vec<i64>,
    signal: String,
    items: u64,
    body: Vec<u8>,
}

impl Batch {
    fn of(rows: Vec<QueuedPayload>) -> Batch {
        let signal = rows.first().map(|r| r.signal.clone()).unwrap_or_default();
        let mut batch = Batch {
            ids: Vec::with_capacity(rows.len()),
            signal,
            items: 0,
            body: Vec::new(),
        };
        for row in rows {
            if row.signal != batch.signal {
                break;
            }
            batch.ids.push(row.id);
            batch.items += row.items;
            batch.body.extend_from_slice(&row.bytes);
        }
        batch
    }
}
