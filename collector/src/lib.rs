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
//! - `rules`: rule files in Prometheus' format, their templates and unit tests.
//! - `alert`: the rule manager and alert state machine; Alertmanager's routing, silences and
//!   inhibition; the notification dispatcher.
//! - `notify`: notifications as receivers get them, webhooks, email, the durable outbox.
//! - `detect`, `derive`: streaming anomaly detection, and the task that writes anomaly scores,
//!   span metrics and forecasts back as series.
//! - `incident`: incidents opened by alerts or people, their timelines, deployments; `dora`:
//!   the DORA metrics over them, as pure functions.
//! - `clock`: wall-clock time through tokio's clock, for the schedulers.
//! - `api`: the HTTP API (Prometheus- and Jaeger-shaped reads, Alertmanager's API v2),
//!   `/metrics`, health.
//! - `forward`: forwarding to existing engines — received OTLP to an upstream OTLP endpoint,
//!   committed samples to Prometheus remote_write receivers — from durable queues in SQLite.
//! - `config`: the typed, validated configuration; `reload`: applying a reloaded one to the
//!   running tasks (SIGHUP, `POST /-/reload`).
//! - `telemetry`: the collector's own metrics, logs and spans.
//! - `systemd`: readiness, stopping and watchdog notifications for a `Type=notify` unit.
//!
//! Data flow: receiver → convert → store.write (acknowledged after commit) → query/api reads;
//! committed writes → rule groups → alert transitions → dispatcher (route, group, silence,
//! inhibit) → outbox in SQLite → outbox worker → webhook / email; dispatcher → incident
//! manager (open, join, resolve; saved before announced) → incident announcements back to the
//! dispatcher when a route asks for them.
//!
//! Lifecycle: `bind` opens the store and binds every listener (so port 0 works and errors
//! surface before anything runs); `Collector::run` serves until the shutdown future completes,
//! then stops the listeners (in-flight requests finish and are acknowledged after their
//! commit), stops maintenance, and closes the store, which flushes its head into chunks.

pub mod alert;
pub mod api;
pub mod clock;
pub mod config;
pub mod derive;
pub mod detect;
pub mod dora;
pub mod forward;
#[doc(hidden)]
pub mod fuzzing;
pub mod incident;
pub mod listen;
pub mod model;
pub mod notify;
pub mod postmortem;
pub mod query;
pub mod receiver;
pub mod regex_limits;
pub mod reload;
pub mod rules;
pub mod store;
pub mod systemd;
pub mod telemetry;
pub mod verify;

use std::collections::BTreeMap;
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
    /// The notification routing loaded at bind; moves into the dispatcher in `run`.
    routing: alert::dispatcher::Routing,
    store: Store,
    otlp_grpc: TcpListener,
    otlp_http: TcpListener,
    http: TcpListener,
    /// Reload requests (SIGHUP in `main`, `POST /-/reload`), served by the rule manager. The
    /// receiver moves into the manager in `run`.
    reload_tx: tokio::sync::mpsc::Sender<alert::manager::ReloadRequest>,
    reload_rx: tokio::sync::mpsc::Receiver<alert::manager::ReloadRequest>,
    notify_parts: Arc<std::sync::Mutex<Option<NotifyParts>>>,
    /// The GitHub webhook secret read at bind.
    github_secret: Option<Arc<Vec<u8>>>,
    /// Tokens and TLS of the listeners, loaded at bind.
    security: listen::Security,
    /// The configuration in force, shared by every `Reloader`.
    running: Arc<tokio::sync::Mutex<Config>>,
    /// Where a reload reads the configuration again; `None` reloads with the one in force.
    config_source: Option<reload::ConfigSource>,
    /// The settings the running tasks follow through `watch` channels.
    live: reload::LiveSettings,
}

pub use reload::Reloader;

#[derive(Clone)]
pub(crate) struct NotifyParts {
    dispatcher: alert::dispatcher::DispatcherHandle,
    integrations: Arc<notify::integrations::Integrations>,
    /// Receivers that are not in the routing file: the rollback webhooks.
    extra_receivers: BTreeMap<String, notify::config::Receiver>,
}

/// The rollback webhooks as receivers of their own, so they are delivered through the same
/// outbox (persistence, retries, signing) as notifications.
fn rollback_receivers(
    config: &config::VerificationConfig,
) -> BTreeMap<String, notify::config::Receiver> {
    config
        .services
        .iter()
        .filter(|s| !s.webhook_hooks.is_empty())
        .map(|s| {
            let name = verify::task::webhook_receiver(&s.service, s.environment.as_deref());
            (
                name.clone(),
                notify::config::Receiver {
                    name,
                    email: Vec::new(),
                    webhook: s.webhook_hooks.clone(),
                },
            )
        })
        .collect()
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
    let routing = alert::dispatcher::Routing::load(config.notify.config_file.as_deref())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let github_secret = config
        .incidents
        .read_github_secret()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .map(Arc::new);
    let security = listen::Security::load(&config.security).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(4);
    Ok(Collector {
        running: Arc::new(tokio::sync::Mutex::new(config.clone())),
        config_source: None,
        live: reload::LiveSettings::new(&config),
        security,
        github_secret,
        routing,
        config,
        store,
        otlp_grpc,
        otlp_http,
        http,
        reload_tx,
        reload_rx,
        notify_parts: Arc::default(),
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

    /// Makes reloads read the configuration again through `source` (the file the collector
    /// was started from, with the command-line overrides). Without it a reload re-reads the
    /// rule, routing, token and certificate files named by the configuration in force.
    pub fn reload_config_from(&mut self, source: reload::ConfigSource) {
        self.config_source = Some(source);
    }

    /// A handle that reloads this collector once it runs.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            source: self.config_source.clone(),
            running: self.running.clone(),
            rules: self.reload_tx.clone(),
            notify: self.notify_parts.clone(),
            security: self.security.clone(),
            live: self.live.clone(),
            store: self.store.clone(),
        }
    }

    /// The URL scheme of a listener (`https` when it speaks TLS).
    pub fn scheme(&self, listener: config::ListenerName) -> &'static str {
        self.security.scheme(listener)
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
        reload::set_reload_metrics(true, Some(false));
        let ingest = receiver::Ingest::new(
            self.store.clone(),
            receiver::ReceiverLimits {
                max_body_bytes: self.config.max_request_bytes,
                max_concurrent_requests: self.config.max_concurrent_requests,
                ingest: self.config.ingest_limits,
            },
        );
        let ingest = ingest
            .forward_otlp(self.config.forward.otlp.is_some())
            .with_live_limits(self.live.ingest_limits.subscribe());
        let ready = Arc::new(AtomicBool::new(true));
        let engine =
            query::Engine::with_live_limits(self.store.clone(), self.live.query_limits.subscribe());
        let rules_status = alert::manager::SharedStatus::default();
        // Notifications: rule transitions → dispatcher (routing, grouping, silences) →
        // outbox in SQLite → outbox worker → receivers. Each channel is bounded; the senders
        // wait when a stage is behind rather than drop a page.
        let clock = clock::Clock::new();
        let extra_receivers = rollback_receivers(&self.config.verification);
        let mut receivers = self.routing.receivers();
        receivers.extend(extra_receivers.clone());
        let (integrations, problems) =
            notify::integrations::Integrations::new(&receivers, Some(notify::template::renderer()));
        for problem in problems {
            tracing::error!(problem = %problem, "integration cannot deliver");
        }
        let integrations = Arc::new(integrations);
        let (mut outbox, outbox_tx) = notify::outbox::Outbox::new(
            self.store.clone(),
            integrations.clone(),
            notify::outbox::RetryPolicy {
                initial_backoff: self.config.notify.initial_backoff,
                max_backoff: self.config.notify.max_backoff,
                give_up_after: self.config.notify.give_up_after,
            },
            clock,
            1024,
        );
        let notify_config_text = Arc::new(self.routing.text.clone());
        let verifier_outbox = outbox_tx.clone();
        let (mut dispatcher, dispatch) = alert::dispatcher::Dispatcher::new(
            self.store.clone(),
            self.routing.clone(),
            self.config.rules.external_url.clone(),
            clock,
            outbox_tx,
            1024,
            self.config.notify.retention,
        );
        // Incidents: the dispatcher hands every alert transition (with its route group key)
        // to the incident manager, which announces incident events back through the
        // dispatcher; the outbox and the detection task add notes to the timelines.
        let (mut incident_manager, incidents) = incident::manager::Manager::new(
            self.store.clone(),
            incident::core::Policy {
                resolve_after_ms: self.config.incidents.resolve_after.as_millis() as i64,
                suspect_window_ms: self.config.incidents.suspect_window.as_millis() as i64,
                group_by: self.config.incidents.group_by.clone(),
            },
            clock,
            Some(dispatch.clone()),
            self.config.rules.external_url.clone(),
            1024,
        )
        .await
        .context("loading open incidents")?;
        dispatcher.set_incidents(incidents.clone());
        outbox.set_incidents(incidents.clone());
        // Verification: deployments recorded through the API start runs; failed verdicts and
        // incidents linked to recent deployments go to the rollback guards.
        let (mut verifier, verifier_handle) = verify::task::Verifier::new(
            self.store.clone(),
            engine.clone(),
            clock,
            self.config.verification.clone(),
            self.config.rules.external_url.clone(),
            256,
        );
        verifier.connect(incidents.clone(), dispatch.clone(), verifier_outbox);
        incident_manager.set_verifier(verifier_handle.clone());
        if let Ok(mut parts) = self.notify_parts.lock() {
            *parts = Some(NotifyParts {
                dispatcher: dispatch.clone(),
                integrations,
                extra_receivers,
            });
        }
        let (events_tx, mut events_rx) =
            tokio::sync::mpsc::channel::<alert::manager::AlertEvent>(1024);
        let events = {
            let dispatch = dispatch.clone();
            tokio::spawn(async move {
                // Transitions that arrive together (one evaluation, an alert storm) go to the
                // dispatcher as one batch, so it does its per-command work once.
                let mut events = Vec::with_capacity(64);
                while events_rx.recv_many(&mut events, 1024).await > 0 {
                    let alerts: Vec<notify::NotifyAlert> = events
                        .drain(..)
                        .filter_map(|event| {
                            tracing::debug!(rule = %event.rule_key, transition = ?transition_name(&event.transition), "alert transition");
                            notify_alert(&event)
                        })
                        .collect();
                    let n = alerts.len() as u64;
                    if n > 0 && dispatch.send_alerts(alerts).await.is_err() {
                        metrics::counter!("redline_collector_alert_events_dropped_total")
                            .increment(n);
                    }
                }
            })
        };
        let api = api::Api {
            store: self.store.clone(),
            engine: engine.clone(),
            metrics: metrics.clone(),
            ready: ready.clone(),
            rules: rules_status.clone(),
            reloader: self.reloader(),
            dispatcher: dispatch,
            notify_config_text,
            started_ms: clock.now_ms(),
            incidents: Some(incidents.clone()),
            github_secret: self.github_secret.clone(),
            verifier: Some(verifier_handle),
            anomaly_threshold: self.config.detect.threshold,
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
        // Forwarding: one task per upstream target, reading its durable queue.
        let forwarders = forward::spawn(&self.store, &self.config.forward, stop_rx.clone())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let [grpc_tls, otlp_http_tls, http_tls] = self.security.tls.clone();
        let tokens = self.security.tokens.clone();
        let grpc_incoming =
            listen::Incoming::spawn(self.otlp_grpc, "otlp_grpc", grpc_tls, stop_rx.clone())?;
        let otlp_http_incoming =
            listen::Incoming::spawn(self.otlp_http, "otlp_http", otlp_http_tls, stop_rx.clone())?;
        let http_incoming = listen::Incoming::spawn(self.http, "http", http_tls, stop_rx.clone())?;
        let grpc = tokio::spawn(
            tonic::transport::Server::builder()
                .layer(tonic::service::InterceptorLayer::new(listen::grpc_auth(
                    tokens.clone(),
                )))
                .add_routes(ingest.grpc_router())
                .serve_with_incoming_shutdown(
                    grpc_incoming.into_stream(),
                    stopped(stop_rx.clone()),
                ),
        );
        let otlp_http = tokio::spawn(
            axum::serve(
                otlp_http_incoming,
                ingest.clone().with_tokens(tokens.clone()).http_router(),
            )
            .with_graceful_shutdown(stopped(stop_rx.clone()))
            .into_future(),
        );
        let http = tokio::spawn(
            axum::serve(
                http_incoming,
                api::router(api)
                    .layer(axum::middleware::from_fn_with_state(
                        Arc::new(tokio::sync::Semaphore::new(
                            self.config.api_max_concurrent_requests,
                        )),
                        listen::api_concurrency,
                    ))
                    .layer(axum::middleware::from_fn_with_state(
                        tokens,
                        listen::api_auth,
                    )),
            )
            .with_graceful_shutdown(stopped(stop_rx.clone()))
            .into_future(),
        );
        let manager = tokio::spawn(manager.run(self.reload_rx, stop_rx.clone()));
        // The dispatcher stops after the alert events are drained (below), not with the
        // listeners, so the last evaluations' transitions reach it.
        let (dispatch_stop_tx, dispatch_stop_rx) = watch::channel(false);
        let dispatcher = tokio::spawn(dispatcher.run(dispatch_stop_rx));
        let (incident_stop_tx, incident_stop_rx) = watch::channel(false);
        let incident_manager = tokio::spawn(incident_manager.run(incident_stop_rx));
        let verifier = tokio::spawn(verifier.run(stop_rx.clone()));
        let derive = if self.config.detect.enabled {
            match derive::Derive::new(self.store.clone(), self.config.detect.clone(), clock) {
                Ok(mut d) => {
                    d.set_incidents(incidents.clone());
                    Some(tokio::spawn(d.run(stop_rx.clone())))
                }
                Err(e) => {
                    tracing::error!(error = %e, "derived series disabled");
                    None
                }
            }
        } else {
            None
        };
        let outbox = tokio::spawn(outbox.run(stop_rx.clone()));
        let maintenance = tokio::spawn(maintain(
            self.store.clone(),
            self.config.clone(),
            self.live.retention.subscribe(),
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
            let _ = verifier.await;
            // The incident manager records the last transitions and offers its last
            // announcements while the dispatcher still runs.
            let _ = incident_stop_tx.send(true);
            let _ = incident_manager.await;
            let _ = dispatch_stop_tx.send(true);
            // The dispatcher stops at the same signal; what it enqueued is in SQLite. The
            // outbox worker finishes its attempts in flight (each bounded by its timeout).
            let _ = dispatcher.await;
            let _ = outbox.await;
            if let Some(derive) = derive {
                let _ = derive.await;
            }
            // Forwarders finish the attempt in flight; the rest stays queued in SQLite.
            for f in forwarders {
                let _ = f.await;
            }
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

/// The alert a transition hands to notification: firing and resolved alerts; pending and
/// cancelled ones are nobody's business yet. Starts are `active_at`, as Prometheus sends them.
fn notify_alert(event: &alert::manager::AlertEvent) -> Option<notify::NotifyAlert> {
    let (alert, ends_at_ms) = match &event.transition {
        alert::state::Transition::Fired(a) => (a, None),
        alert::state::Transition::Resolved(a) => (a, Some(a.resolved_at.unwrap_or(a.last_seen))),
        _ => return None,
    };
    Some(notify::NotifyAlert {
        labels: alert
            .labels
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        annotations: alert.annotations.clone(),
        starts_at_ms: alert.active_at,
        ends_at_ms,
        generator_url: event.generator_url.clone(),
    })
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
/// `retention` follows configuration reloads; the pass interval stays as set at start.
async fn maintain(
    store: Store,
    config: Config,
    retention_setting: watch::Receiver<Duration>,
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
                let keep = *retention_setting.borrow();
                let cutoff = now.saturating_sub(keep).as_millis() as i64;
                match store.retain(cutoff).await {
                    Ok(out) => tracing::debug!(?out, "retention pass"),
                    Err(e) => tracing::error!(error = %e, "retention pass failed"),
                }
                let notify_cutoff = now.saturating_sub(config.notify.retention).as_millis() as i64;
                match store.prune_notifications(notify_cutoff).await {
                    Ok(removed) => tracing::debug!(removed, "notification retention pass"),
                    Err(e) => tracing::error!(error = %e, "notification retention pass failed"),
                }
            }
            _ = upkeep.tick() => metrics.run_upkeep(),
        }
    }
}
