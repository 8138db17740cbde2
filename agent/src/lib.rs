//! `redline-agent`: runs on every host, collects host metrics, relays local applications'
//! OTLP, and ships everything over OTLP to `redline-collector` (or any OTLP peer).
//!
//! # Data flow
//!
//! ```text
//! tick ─> collect::CollectTask ──(HostCollector on the blocking pool)──┐
//!              │ latest rendering (watch)                               │ offer_host (evicts old host batches when full)
//!              v                                                        v
//!         telemetry::serve (/metrics)              export::Exporter: Spool (disk) ─> next_batch (merge) ─> deliver ─> Client (gRPC | HTTP, TLS, token)
//!                                                                       ^        ^ ack once delivered          (retry, backoff, jitter)
//! apps ─> relay::grpc (4317) / relay::http (4318) ─ decode ─ offer_relay┘ (answer only once fsync'ed; 503/UNAVAILABLE if it cannot be)
//! ```
//!
//! # Modules, in reading order
//!
//! - [`config`]: YAML → validated [`Config`]; every setting has a default.
//! - [`credentials`]: bearer tokens and TLS material read from files (at start and reload).
//! - [`collect`]: one file per metric family (pure parsers over procfs text) and the task that
//!   owns the [`collect::HostCollector`].
//! - [`export`]: the spool's owner task, the on-disk spool (also the batcher), the OTLP
//!   clients and the retry policy.
//! - [`listen`]: TLS and bearer tokens on the agent's own listeners.
//! - [`relay`]: OTLP/gRPC and OTLP/HTTP receivers for local applications.
//! - [`exposition`]: OTLP metrics → Prometheus text with Prometheus' OTLP naming.
//! - [`telemetry`]: the agent's own metrics and the `/metrics` endpoint.
//! - [`systemd`]: readiness, stopping and watchdog notifications for a `Type=notify` unit.
//!
//! # Tasks, channels, shutdown, reload
//!
//! Each piece of mutable state has one owning task: the collect task owns the collector, the
//! exporter task owns the spool. They talk over a bounded `mpsc` of [`export::Command`] (a
//! closed enum); relay handlers get their answer over a `oneshot`. Self metrics are atomics
//! behind pre-registered handles. [`Agent::run`] shuts down in one order: stop the inputs
//! (collect task, relay servers: no new data), then send the drain deadline to the exporter,
//! which delivers what is spooled until the deadline and leaves the rest on disk, then stop
//! `/metrics`. The whole shutdown is bounded by `exporter.drain_timeout` (plus a second).
//!
//! [`Agent::reloader`] hands out a [`Reloader`]; `main` calls it on SIGHUP. The reload task
//! (spawned by [`Agent::run`], ended with it) re-reads the configuration file when the agent
//! was started from one ([`Agent::reload_config_from`]; [`reload`] says what applies live and
//! what waits for a restart), re-reads the token and certificate files, and publishes a new
//! export client, new listener credentials and new host-metrics settings through `watch`
//! channels; the spool and the connections in progress are untouched. A file that fails to
//! load keeps what was in force and says why.

pub mod collect;
pub mod config;
pub mod credentials;
pub mod export;
pub mod exposition;
pub mod listen;
pub mod relay;
pub mod reload;
pub mod systemd;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::{AbortHandle, JoinHandle};

pub use config::Config;

use export::spool::{Recovery, Spool};

/// Installs ring as the process's rustls provider, for the few places that use the default
/// (reqwest, tonic). Idempotent: an error only means a provider is installed already (ring,
/// since the workspace builds rustls with ring alone).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Reads the configuration again: the file the agent started from, with the same
/// command-line overrides. The error names the file and the problem.
pub type ConfigSource = Arc<dyn Fn() -> Result<Config, String> + Send + Sync>;

/// Asks a running agent to re-read its configuration, token and certificate files (what
/// SIGHUP does).
/// Cheap to clone; a request made before the agent runs is served when it starts.
#[derive(Debug, Clone)]
pub struct Reloader(Arc<Notify>);

impl Reloader {
    pub fn reload(&self) {
        // One stored permit: several requests before the reload task wakes are one reload.
        self.0.notify_one();
    }
}

/// An agent whose listeners are bound (so port 0 resolves) and whose spool is open and locked,
/// but which does not run yet.
pub struct Agent {
    config: Config,
    /// Where a reload reads the configuration again; `None` re-reads only the token and
    /// certificate files the configuration in force names.
    source: Option<ConfigSource>,
    /// Opened and `flock`ed by [`bind`]; [`Agent::run`] moves it into the exporter task, which
    /// holds it (and the lock) until it returns.
    spool: Spool,
    /// What opening the spool found (counted and logged once the exporter starts).
    recovery: Recovery,
    /// Notified by every [`Reloader`]; the reload task spawned by [`Agent::run`] waits on it
    /// and ends with the run.
    reload: Arc<Notify>,
    metrics_listener: TcpListener,
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    metrics_addr: SocketAddr,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("config", &self.config)
            .field("reloads_config_file", &self.source.is_some())
            .field("metrics_addr", &self.metrics_addr)
            .field("grpc_addr", &self.grpc_addr)
            .field("http_addr", &self.http_addr)
            .finish_non_exhaustive()
    }
}

async fn listen(addr: SocketAddr, what: &str) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let l = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for {what}"))?;
    let local = l.local_addr()?;
    Ok((l, local))
}

/// Validates `config`, opens the spool (`exporter.queue.directory`, locked for the agent's
/// lifetime) and binds the `/metrics`, OTLP/gRPC and OTLP/HTTP listeners.
pub async fn bind(config: Config) -> anyhow::Result<Agent> {
    install_crypto_provider();
    config.validate()?;
    let queue = config.exporter.queue.clone();
    let (spool, recovery) = tokio::task::spawn_blocking(move || Spool::open(&queue))
        .await
        .context("opening the spool")?
        .with_context(|| {
            format!(
                "cannot open the export spool (exporter.queue.directory {})",
                config.exporter.queue.directory.display()
            )
        })?;
    let (metrics_listener, metrics_addr) = listen(config.telemetry.listen, "/metrics").await?;
    let (grpc_listener, grpc_addr) =
        listen(config.relay.grpc_listen, "the OTLP/gRPC relay").await?;
    let (http_listener, http_addr) =
        listen(config.relay.http_listen, "the OTLP/HTTP relay").await?;
    Ok(Agent {
        config,
        source: None,
        spool,
        recovery,
        reload: Arc::new(Notify::new()),
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
    /// Makes reloads read the configuration again through `source`.
    pub fn reload_config_from(&mut self, source: ConfigSource) {
        self.source = Some(source);
    }

    /// A handle that makes the running agent reload.
    pub fn reloader(&self) -> Reloader {
        Reloader(self.reload.clone())
    }

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
            source,
            spool,
            recovery,
            reload,
            metrics_listener,
            grpc_listener,
            http_listener,
            metrics_addr,
            grpc_addr,
            http_addr,
        } = self;
        let telemetry = telemetry::Telemetry::new();
        let creds = credentials::ExportCredentials::load(&config.exporter)?;
        let client = export::client::Client::new(&config.exporter, &creds)?;
        // The reload task holds the sender; every delivery attempt reads the newest client.
        let (client_tx, client_rx) = watch::channel(client);
        let (queue, exporter) = export::Exporter::new(
            &config.exporter,
            spool,
            &recovery,
            client_rx,
            telemetry.clone(),
        );
        // Listener credentials: the reload task holds the senders; gates and TLS acceptors
        // read the newest value per request / connection.
        let (relay_tx, relay_rx) = watch::channel(credentials::ListenerCredentials::load(
            "relay",
            config.relay.tls.as_ref(),
            config.relay.token_file.as_deref(),
        )?);
        let (metrics_tx, metrics_rx) = watch::channel(credentials::ListenerCredentials::load(
            "telemetry",
            config.telemetry.tls.as_ref(),
            config.telemetry.token_file.as_deref(),
        )?);
        let (host_metrics_tx, host_metrics_rx) = watch::channel(config.host_metrics.clone());
        let reload_task = tokio::spawn(reload_loop(
            reload,
            source,
            config.clone(),
            Reloadable {
                client: client_tx,
                relay: relay_tx,
                metrics: metrics_tx,
                host_metrics: host_metrics_tx,
            },
            telemetry.clone(),
        ));
        use telemetry::Listener as L;
        let gate = |rx: &watch::Receiver<_>, which| {
            listen::Gate::new(rx.clone(), which, telemetry.clone())
        };
        let metrics_gate = gate(&metrics_rx, L::Metrics);
        let grpc_gate = gate(&relay_rx, L::RelayGrpc);
        let http_gate = gate(&relay_rx, L::RelayHttp);
        let metrics_in =
            listen::Incoming::new(metrics_listener, &metrics_rx, L::Metrics, telemetry.clone());
        let grpc_in =
            listen::Incoming::new(grpc_listener, &relay_rx, L::RelayGrpc, telemetry.clone());
        let http_in =
            listen::Incoming::new(http_listener, &relay_rx, L::RelayHttp, telemetry.clone());
        let collector = collect::HostCollector::new(&config.host_metrics);

        // `stop` tells the inputs to stop; `close` hands the exporter its drain deadline;
        // `metrics_stop` ends /metrics last.
        let (stop_tx, stop_rx) = watch::channel(false);
        let (close_tx, close_rx) = oneshot::channel();
        let (metrics_stop_tx, metrics_stop_rx) = watch::channel(false);
        let (expo_tx, expo_rx) = watch::channel::<Arc<str>>(Arc::from(""));

        let exporter_task = tokio::spawn(exporter.run(close_rx));
        // Pings systemd's watchdog while the exporter's loop answers; aborted when shutdown
        // starts (systemd stops enforcing the watchdog at STOPPING=1).
        let watchdog_task = tokio::spawn(systemd::watchdog(queue.clone()));
        let metrics_task = spawn_server(telemetry::serve(
            metrics_in,
            telemetry.clone(),
            expo_rx,
            metrics_gate,
            wait_true(metrics_stop_rx),
        ));
        let collect_task = tokio::spawn(
            collect::CollectTask {
                collector,
                interval: config.host_metrics.interval,
                settings: host_metrics_rx,
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
            grpc_gate,
            http_gate,
        });
        let grpc_task = spawn_server(relay::grpc::serve(
            grpc_in,
            relay_state.clone(),
            wait_true(stop_rx.clone()),
        ));
        let http_task = spawn_server(relay::http::serve(http_in, relay_state, wait_true(stop_rx)));
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
        watchdog_task.abort();
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

        // 2. Deliver from the spool until the deadline; the rest stays on disk.
        let _ = close_tx.send(deadline);
        let exporter_abort = exporter_task.abort_handle();
        if tokio::time::timeout_at(deadline + GRACE, exporter_task)
            .await
            .is_err()
        {
            // Aborting drops the spool (and its lock); everything spooled stays on disk.
            tracing::warn!("exporter did not stop in time; aborting it");
            exporter_abort.abort();
        }
        reload_task.abort();

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

/// The senders a reload publishes to.
struct Reloadable {
    /// The export client; receivers: the exporter and its delivery in flight.
    client: watch::Sender<export::client::Client>,
    /// Relay listeners' token and TLS; receivers: their gates and TLS accept tasks.
    relay: listen::CredentialsTx,
    /// `/metrics` listener's token and TLS.
    metrics: listen::CredentialsTx,
    /// `host_metrics`; the receiver: the collect task.
    host_metrics: watch::Sender<config::HostMetricsConfig>,
}

/// Serves reload requests until aborted: re-reads the configuration file (when there is one)
/// and every token and certificate file, and publishes what loaded; what fails to load keeps
/// its previous value (and is logged).
async fn reload_loop(
    reload: Arc<Notify>,
    source: Option<ConfigSource>,
    mut running: Config,
    to: Reloadable,
    telemetry: Arc<telemetry::Telemetry>,
) {
    loop {
        reload.notified().await;
        let fresh = match &source {
            None => running.clone(),
            Some(source) => match source() {
                Ok(fresh) => fresh,
                Err(e) => {
                    tracing::error!(error = %e, "reload: the configuration file did not load; everything in force stays");
                    telemetry.reload(false).increment(1);
                    continue;
                }
            },
        };
        for w in &fresh.warnings {
            tracing::warn!("{w}");
        }
        let changes = reload::changes(&running, &fresh);
        let mut next = reload::apply(&running, &fresh);
        let mut ok = true;
        let client = credentials::ExportCredentials::load(&next.exporter)
            .map_err(|e| anyhow::anyhow!("{}: {e}", e.key()))
            .and_then(|creds| export::client::Client::new(&next.exporter, &creds));
        match client {
            Ok(c) => {
                to.client.send_replace(c);
            }
            Err(e) => {
                ok = false;
                tracing::error!(error = %format!("{e:#}"), "reload: keeping the previous exporter settings and credentials");
                let keep = running.exporter.clone();
                next.exporter.endpoint = keep.endpoint;
                next.exporter.protocol = keep.protocol;
                next.exporter.timeout = keep.timeout;
                next.exporter.token_file = keep.token_file;
                next.exporter.tls = keep.tls;
            }
        }
        if !publish_listener("relay", &next.relay.tls, &next.relay.token_file, &to.relay) {
            ok = false;
            next.relay.tls = running.relay.tls.clone();
            next.relay.token_file = running.relay.token_file.clone();
        }
        if !publish_listener(
            "telemetry",
            &next.telemetry.tls,
            &next.telemetry.token_file,
            &to.metrics,
        ) {
            ok = false;
            next.telemetry.tls = running.telemetry.tls.clone();
            next.telemetry.token_file = running.telemetry.token_file.clone();
        }
        // Sent only when it changed: the collect task rebuilds its collector on every value.
        to.host_metrics.send_if_modified(|current| {
            let changed = *current != next.host_metrics;
            if changed {
                *current = next.host_metrics.clone();
            }
            changed
        });
        running = next;
        telemetry.reload(ok).increment(1);
        if ok {
            tracing::info!(applied = ?changes.applied, "reloaded configuration, tokens and certificates");
        }
        if !changes.restart_required.is_empty() {
            tracing::warn!(
                settings = ?changes.restart_required,
                "configuration changes take effect only after a restart; the running values stay"
            );
        }
    }
}

/// Loads a listener's token and TLS files and publishes them; `false` (logged) when a file did
/// not load, in which case the listener keeps its credentials.
fn publish_listener(
    section: &'static str,
    tls: &Option<config::ServerTlsConfig>,
    token_file: &Option<std::path::PathBuf>,
    to: &listen::CredentialsTx,
) -> bool {
    match credentials::ListenerCredentials::load(section, tls.as_ref(), token_file.as_deref()) {
        Ok(c) => {
            to.send_replace(c);
            true
        }
        Err(e) => {
            tracing::error!(key = e.key(), error = %e, "reload: keeping the previous {section} credentials");
            false
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
