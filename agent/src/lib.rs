//! `redline-agent`: runs on every host, collects host metrics, relays local applications'
//! OTLP, and ships everything over OTLP to `redline-collector` (or any OTLP peer).
//!
//! # Data flow
//!
//! ```text
//! tick ─> collect::CollectTask ──(HostCollector on the blocking pool)──┐
//!              │ latest rendering (watch)                               │ offer_host (evicts old host batches when full)
//!              v                                                        v
//!         telemetry::serve (/metrics)              export::Exporter: Queue ─> pop_batch (merge) ─> deliver ─> Client (gRPC | HTTP)
//!                                                                       ^                              (retry, backoff, jitter)
//! apps ─> relay::grpc (4317) / relay::http (4318) ─ decode ─ offer_relay┘ (answer only once queued; 503/UNAVAILABLE when full)
//! ```
//!
//! # Modules, in reading order
//!
//! - [`config`]: YAML → validated [`Config`]; every setting has a default.
//! - [`collect`]: one file per metric family (pure parsers over procfs text) and the task that
//!   owns the [`collect::HostCollector`].
//! - [`export`]: the queue's owner task, the batcher, the OTLP clients and the retry policy.
//! - [`relay`]: OTLP/gRPC and OTLP/HTTP receivers for local applications.
//! - [`exposition`]: OTLP metrics → Prometheus text with Prometheus' OTLP naming.
//! - [`telemetry`]: the agent's own metrics and the `/metrics` endpoint.
//!
//! # Tasks, channels, shutdown
//!
//! Each piece of mutable state has one owning task: the collect task owns the collector, the
//! exporter task owns the queue. They talk over a bounded `mpsc` of [`export::Command`] (a closed
//! enum); relay handlers get their answer over a `oneshot`. Self metrics are atomics behind
//! pre-registered handles. [`Agent::run`] shuts down in one order: stop the inputs (collect
//! task, relay servers: no new data), then send the drain deadline to the exporter, which
//! delivers what is queued until the deadline and counts the rest as dropped, then stop
//! `/metrics`. The whole shutdown is bounded by `exporter.drain_timeout` (plus a second).
//!
//! # Seams for later work
//!
//! An on-disk spool replaces [`export::queue::Queue`] behind the same five calls; batches whose
//! delivery exhausts its retries go to the spool instead of being dropped (see [`export`]).
//! TLS plugs into [`export::client::Client::new`] (and the relay listeners).

pub mod collect;
pub mod config;
pub mod export;
pub mod exposition;
pub mod relay;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::{AbortHandle, JoinHandle};

pub use config::Config;

/// An agent whose listeners are bound (so port 0 resolves) but which does not run yet.
#[derive(Debug)]
pub struct Agent {
    config: Config,
    metrics_listener: TcpListener,
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    metrics_addr: SocketAddr,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
}

async fn listen(addr: SocketAddr, what: &str) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let l = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for {what}"))?;
    let local = l.local_addr()?;
    Ok((l, local))
}

/// Validates `config` and binds the `/metrics`, OTLP/gRPC and OTLP/HTTP listeners.
pub async fn bind(config: Config) -> anyhow::Result<Agent> {
    config.validate()?;
    let (metrics_listener, metrics_addr) = listen(config.telemetry.listen, "/metrics").await?;
    let (grpc_listener, grpc_addr) =
        listen(config.relay.grpc_listen, "the OTLP/gRPC relay").await?;
    let (http_listener, http_addr) =
        listen(config.relay.http_listen, "the OTLP/HTTP relay").await?;
    Ok(Agent {
        config,
        metrics_listener,
        grpc_listener,
        http_listener,
        metrics_addr,
        grpc_addr,
        http_addr,
    })
}

/// Binds and runs until `shutdown` resolves (see [`Agent::run`]).
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    bind(config).await?.run(shutdown).await
}

/// Resolves when the watched flag becomes `true` (or its sender is gone).
async fn wait_true(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

/// Extra time granted after the drain deadline for tasks to notice it and return.
const GRACE: Duration = Duration::from_secs(1);

impl Agent {
    /// Address of the `/metrics` endpoint.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// Address of the OTLP/gRPC relay.
    pub fn otlp_grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// Address of the OTLP/HTTP relay.
    pub fn otlp_http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Runs every component until `shutdown` resolves, then shuts down in order (inputs, export
    /// drain, `/metrics`). Returns an error if a server failed while running.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Agent {
            config,
            metrics_listener,
            grpc_listener,
            http_listener,
            metrics_addr,
            grpc_addr,
            http_addr,
        } = self;
        let telemetry = telemetry::Telemetry::new();
        let (queue, exporter) = export::Exporter::new(&config.exporter, telemetry.clone())?;
        let collector = collect::HostCollector::new(&config.host_metrics);

        // `stop` tells the inputs to stop; `close` hands the exporter its drain deadline;
        // `metrics_stop` ends /metrics last.
        let (stop_tx, stop_rx) = watch::channel(false);
        let (close_tx, close_rx) = oneshot::channel();
        let (metrics_stop_tx, metrics_stop_rx) = watch::channel(false);
        let (expo_tx, expo_rx) = watch::channel::<Arc<str>>(Arc::from(""));

        let exporter_task = tokio::spawn(exporter.run(close_rx));
        let metrics_task = spawn_server(telemetry::serve(
            metrics_listener,
            telemetry.clone(),
            expo_rx,
            wait_true(metrics_stop_rx),
        ));
        let collect_task = tokio::spawn(
            collect::CollectTask {
                collector,
                interval: config.host_metrics.interval,
                queue: queue.clone(),
                telemetry: telemetry.clone(),
                exposition: expo_tx,
            }
            .run(stop_rx.clone()),
        );
        let relay_state = Arc::new(relay::RelayState {
            queue,
            telemetry,
            max_request_bytes: config.relay.max_request_bytes,
        });
        let grpc_task = spawn_server(relay::grpc::serve(
            grpc_listener,
            relay_state.clone(),
            wait_true(stop_rx.clone()),
        ));
        let http_task = spawn_server(relay::http::serve(
            http_listener,
            relay_state,
            wait_true(stop_rx),
        ));
        // Servers by name; `None` once one has ended.
        let mut servers: [Server; 3] = [
            ("OTLP/gRPC relay", Some(grpc_task)),
            ("OTLP/HTTP relay", Some(http_task)),
            ("/metrics server", Some(metrics_task)),
        ];

        tracing::info!(
            metrics = %metrics_addr,
            otlp_grpc = %grpc_addr,
            otlp_http = %http_addr,
            collector = %config.exporter.endpoint(),
            protocol = ?config.exporter.protocol,
            interval = ?config.host_metrics.interval,
            "redline-agent running"
        );

        // Run until asked to stop, or until a server dies on its own.
        let mut failure: Option<anyhow::Error> = None;
        tokio::select! {
            () = shutdown => tracing::info!("shutting down"),
            (i, r) = first_to_end(&mut servers) => {
                failure = Some(anyhow::anyhow!("{} stopped: {}", servers[i].0, describe(r)));
                servers[i].1 = None;
            }
        }
        if let Some(e) = &failure {
            tracing::error!(error = %e, "shutting down after a component failed");
        }

        // 1. Stop the inputs, bounded by the drain deadline.
        let deadline = tokio::time::Instant::now() + config.exporter.drain_timeout;
        stop_tx.send_replace(true);
        let [grpc, http, metrics] = servers;
        // Each input: its name, the handle that stops the real task, and a task that awaits
        // it and logs how it ended.
        let mut inputs: Vec<(&str, AbortHandle, JoinHandle<()>)> = Vec::with_capacity(3);
        inputs.push(("host collection", collect_task.abort_handle(), collect_task));
        for (name, task) in [grpc, http] {
            if let Some(t) = task {
                let inner = t.abort_handle();
                let watcher = tokio::spawn(async move { log_join(name, t.await) });
                inputs.push((name, inner, watcher));
            }
        }
        for (name, inner, mut task) in inputs {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                tracing::warn!(
                    component = name,
                    "did not stop before the drain deadline; aborting it"
                );
                inner.abort();
                task.abort();
            }
        }

        // 2. Drain the export queue until the deadline.
        let _ = close_tx.send(deadline);
        if tokio::time::timeout_at(deadline + GRACE, exporter_task)
            .await
            .is_err()
        {
            tracing::warn!("exporter did not stop in time");
        }

        // 3. Stop /metrics.
        metrics_stop_tx.send_replace(true);
        if let (_, Some(t)) = metrics {
            let _ = tokio::time::timeout(GRACE, t).await;
        }
        tracing::info!("redline-agent stopped");
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// A running server task, by name; `None` once it has ended.
type Server = (&'static str, Option<JoinHandle<anyhow::Result<()>>>);

/// Completes when the first still-running server ends, with its index and result.
async fn first_to_end(
    servers: &mut [Server],
) -> (usize, Result<anyhow::Result<()>, tokio::task::JoinError>) {
    std::future::poll_fn(|cx| {
        for (i, (_, task)) in servers.iter_mut().enumerate() {
            if let Some(t) = task
                && let std::task::Poll::Ready(r) = std::pin::Pin::new(t).poll(cx)
            {
                return std::task::Poll::Ready((i, r));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Spawns a server future, erasing its error type.
fn spawn_server<E>(
    server: impl Future<Output = Result<(), E>> + Send + 'static,
) -> JoinHandle<anyhow::Result<()>>
where
    E: std::error::Error + Send + Sync + 'static,
{
    tokio::spawn(async move { server.await.map_err(anyhow::Error::from) })
}

fn describe(r: Result<anyhow::Result<()>, tokio::task::JoinError>) -> String {
    match r {
        Ok(Ok(())) => "exited".to_string(),
        Ok(Err(e)) => format!("{e:#}"),
        Err(e) => format!("task failed: {e}"),
    }
}

fn log_join(name: &str, r: Result<anyhow::Result<()>, tokio::task::JoinError>) {
    if let Ok(Ok(())) = r {
        return;
    }
    tracing::warn!(component = name, result = %describe(r), "stopped with an error");
}
