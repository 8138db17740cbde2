#![forbid(unsafe_code)]
//! redline-collector: receives OTLP, stores it durably in SQLite and serves it back in the
//! shapes Prometheus and Jaeger clients speak.
//!
//! Modules in reading order:
//! - `model`: labels, matchers, samples, spans and logs, the vocabulary of the rest.
//! - `store`: the only module with SQL. Writes are committed by one writer thread (group
//!   commit); reads use the shared in-memory index and head plus read-only connections.
//! - `receiver`: OTLP over gRPC and HTTP; `receiver::convert` is the pure translation of OTLP
//!   into store batches (Prometheus' OTLP naming rules).
//! - `query`: PromQL (Prometheus 2.x semantics): plan the selectors, fetch them from the store,
//!   then evaluate purely over the fetched data.
//! - `api`: the HTTP API (Prometheus- and Jaeger-shaped reads), `/metrics`, health.
//! - `config`: the typed, validated configuration.
//! - `telemetry`: the collector's own metrics, logs and spans.
//!
//! Data flow: receiver → convert → store.write (acknowledged after commit) → query/api reads.
//!
//! Lifecycle: `bind` opens the store and binds every listener (so port 0 works and errors
//! surface before anything runs); `Collector::run` serves until the shutdown future completes,
//! then stops the listeners (in-flight requests finish and are acknowledged after their
//! commit), stops maintenance, and closes the store, which flushes its head into chunks.

pub mod alert;
pub mod api;
pub mod clock;
pub mod config;
pub mod model;
pub mod notify;
pub mod query;
pub mod receiver;
pub mod rules;
pub mod store;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use config::Config;
use store::Store;

/// A collector whose store is open and whose listeners are bound.
pub struct Collector {
    config: Config,
    store: Store,
    otlp_grpc: TcpListener,
    otlp_http: TcpListener,
    http: TcpListener,
    /// Reload requests (SIGHUP in `main`, `POST /-/reload`), served by the rule manager. The
    /// receiver moves into the manager in `run`.
    reload_tx: tokio::sync::mpsc::Sender<alert::manager::ReloadRequest>,
    reload_rx: tokio::sync::mpsc::Receiver<alert::manager::ReloadRequest>,
}

/// Asks a running collector to reload its rule files; cheap to clone.
#[derive(Clone)]
pub struct Reloader(tokio::sync::mpsc::Sender<alert::manager::ReloadRequest>);

impl Reloader {
    /// Reloads and returns the load errors (empty when every rule loaded).
    pub async fn reload(&self) -> anyhow::Result<Vec<String>> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.0
            .send(alert::manager::ReloadRequest { reply })
            .await
            .map_err(|_| anyhow::anyhow!("the collector is shutting down"))?;
        Ok(rx.await?)
    }
}

/// Opens the store and binds all listeners.
pub async fn bind(config: Config) -> anyhow::Result<Collector> {
    // One rustls crypto provider for the process (ring), for webhook and SMTP clients and any
    // HTTP client built with defaults; an error means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = Store::open(&config.store_options())
        .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
    let bind = |addr: SocketAddr, what: &'static str| async move {
        TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the {what} listener on {addr}"))
    };
    let otlp_grpc = bind(config.otlp_grpc_listen, "OTLP/gRPC").await?;
    let otlp_http = bind(config.otlp_http_listen, "OTLP/HTTP").await?;
    let http = bind(config.http_listen, "HTTP API").await?;
    let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(4);
    Ok(Collector {
        config,
        store,
        otlp_grpc,
        otlp_http,
        http,
        reload_tx,
        reload_rx,
    })
}

/// Binds and runs until `shutdown` completes.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    bind(config).await?.run(shutdown).await
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    // Err means the sender is gone, which also means stop.
    let _ = stop.wait_for(|s| *s).await;
}

impl Collector {
    pub fn otlp_grpc_addr(&self) -> SocketAddr {
        self.otlp_grpc
            .local_addr()
            .unwrap_or(self.config.otlp_grpc_listen)
    }

    pub fn otlp_http_addr(&self) -> SocketAddr {
        self.otlp_http
            .local_addr()
            .unwrap_or(self.config.otlp_http_listen)
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr().unwrap_or(self.config.http_listen)
    }

    /// A handle that reloads the rule files of this collector once it runs.
    pub fn reloader(&self) -> Reloader {
        Reloader(self.reload_tx.clone())
    }

    /// A handle to the store, for in-process tests and benchmarks.
    pub fn store(&self) -> Store {
        self.store.clone()
    }

    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let metrics = telemetry::metrics_handle();
        let ingest = receiver::Ingest::new(
            self.store.clone(),
            receiver::ReceiverLimits {
                max_body_bytes: self.config.max_request_bytes,
            },
        );
        let ready = Arc::new(AtomicBool::new(true));
        let engine = query::Engine::new(self.store.clone(), self.config.query.clone());
        let rules_status = alert::manager::SharedStatus::default();
        // Alert transitions for notification and incident handling. Until those consumers
        // exist, a task counts and logs them; the channel is bounded and the manager counts
        // what it could not hand over.
        let (events_tx, mut events_rx) =
            tokio::sync::mpsc::channel::<alert::manager::AlertEvent>(1024);
        let events = tokio::spawn(async move {
            while let Some(event) = events_rx.recv().await {
                tracing::info!(rule = %event.rule_key, transition = ?transition_name(&event.transition), "alert transition");
            }
        });
        let api = api::Api {
            store: self.store.clone(),
            engine: engine.clone(),
            metrics: metrics.clone(),
            ready: ready.clone(),
            rules: rules_status.clone(),
            reloader: Reloader(self.reload_tx.clone()),
        };
        let manager = alert::manager::Manager::new(
            self.store.clone(),
            engine,
            self.config.rules.clone(),
            rules_status,
            events_tx,
        );
        tracing::info!(
            otlp_grpc = %self.otlp_grpc_addr(),
            otlp_http = %self.otlp_http_addr(),
            http = %self.http_addr(),
            data_dir = %self.config.data_dir.display(),
            "listening"
        );

        // Every server and the maintenance task watch this; `true` means stop.
        let (stop_tx, stop_rx) = watch::channel(false);
        let grpc = tokio::spawn(
            tonic::transport::Server::builder()
                .add_routes(ingest.grpc_router())
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(self.otlp_grpc),
                    stopped(stop_rx.clone()),
                ),
        );
        let otlp_http = tokio::spawn(
            axum::serve(self.otlp_http, ingest.http_router())
                .with_graceful_shutdown(stopped(stop_rx.clone()))
                .into_future(),
        );
        let http = tokio::spawn(
            axum::serve(self.http, api::router(api))
                .with_graceful_shutdown(stopped(stop_rx.clone()))
                .into_future(),
        );
        let manager = tokio::spawn(manager.run(self.reload_rx, stop_rx.clone()));
        let maintenance = tokio::spawn(maintain(
            self.store.clone(),
            self.config.clone(),
            metrics,
            stop_rx.clone(),
        ));

        shutdown.await;
        tracing::info!("shutting down: stopping listeners");
        ready.store(false, Ordering::Relaxed);
        let _ = stop_tx.send(true);
        let drain = async {
            let (g, o, h, m) = tokio::join!(grpc, otlp_http, http, maintenance);
            if let Ok(Err(e)) = g {
                tracing::warn!(error = %e, "OTLP/gRPC server ended with an error");
            }
            for (what, r) in [("OTLP/HTTP", o), ("HTTP API", h)] {
                if let Ok(Err(e)) = r {
                    tracing::warn!(error = %e, "{what} server ended with an error");
                }
            }
            let _ = m;
            // The manager finishes its groups' current evaluations; then the event consumer
            // drains what they handed over.
            let _ = manager.await;
            let _ = events.await;
        };
        if tokio::time::timeout(Duration::from_secs(30), drain)
            .await
            .is_err()
        {
            tracing::warn!("listeners did not drain within 30s; closing the store anyway");
        }
        self.store.close().await.context("closing the store")?;
        tracing::info!("stopped");
        Ok(())
    }
}

fn transition_name(t: &alert::state::Transition) -> &'static str {
    match t {
        alert::state::Transition::Pending(_) => "pending",
        alert::state::Transition::Fired(_) => "firing",
        alert::state::Transition::Resolved(_) => "resolved",
        alert::state::Transition::Cancelled(_) => "cancelled",
    }
}

/// Periodic upkeep: folds the head into chunks, enforces retention, renders histogram upkeep.
async fn maintain(
    store: Store,
    config: Config,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    stop: watch::Receiver<bool>,
) {
    let mut flush = tokio::time::interval(config.head_flush_interval);
    let retention_every =
        (config.retention / 10).clamp(Duration::from_secs(60), Duration::from_secs(3600));
    let mut retention = tokio::time::interval(retention_every);
    let mut upkeep = tokio::time::interval(Duration::from_secs(5));
    for i in [&mut flush, &mut retention, &mut upkeep] {
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i.reset();
    }
    let stop = stopped(stop);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = flush.tick() => {
                if let Err(e) = store.flush().await {
                    tracing::error!(error = %e, "head flush failed");
                }
            }
            _ = retention.tick() => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                let cutoff = now.saturating_sub(config.retention).as_millis() as i64;
                match store.retain(cutoff).await {
                    Ok(out) => tracing::debug!(?out, "retention pass"),
                    Err(e) => tracing::error!(error = %e, "retention pass failed"),
                }
            }
            _ = upkeep.tick() => metrics.run_upkeep(),
        }
    }
}
