//! Reloading a running collector (SIGHUP, `systemctl reload`, `POST /-/reload`), as
//! Prometheus and Alertmanager do: new settings without a restart, without dropping data or
//! alert state.
//!
//! A reload re-reads the configuration file the collector was started from (with the same
//! command-line overrides) and validates it as `validate` does. A file that does not load
//! changes nothing: the error is reported and everything in force stays. Otherwise
//! [`changes`] compares it with the configuration in force, and the settings fall into two
//! kinds:
//!
//! - Applied now: `retention`, `notify.config_file` (and the routing file
//!   itself, which is re-read on every reload), the rule settings but `rules.external_url`
//!   (and the rule files themselves), the token files, the certificate files and which
//!   listeners ask for client certificates, and the limits that are checked per request or
//!   per new series (`limits.max_series_per_request`, the label limits, `limits.max_future`,
//!   `limits.max_series`, `limits.max_series_per_host` and the `limits.query_*` limits).
//! - Fixed until a restart: the listen addresses, `data_dir`, the store settings, the limits
//!   sized into a listener when it starts (body size, requests in progress), which listeners
//!   speak TLS, telemetry, the notification retry and retention settings, and the detection, incident, verification and forwarding
//!   settings, whose tasks own state built from them. A reload that finds one of these
//!   changed keeps the running value, logs a warning naming it, and sets
//!   `redline_collector_config_restart_required` to 1 until the collector restarts.
//!
//! Lifecycle: one [`Reloader`] per collector, cloned into the SIGHUP task and the API. A
//! reload holds the configuration in force (an async mutex) from start to end, so reloads that
//! arrive together run one after the other. Each part is handed its new settings through what
//! its owning task already reads: `watch` channels for the per-request limits and the
//! retention, a writer command for the cardinality limits, the rule manager's reload request
//! (whose groups hand their alerts over to the new groups), the dispatcher's reload command.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use redline_common::reload::Changes;
use redline_common::reload::changed;

use crate::config::{Config, QueryLimits};
use crate::receiver::limits::IngestLimits;

/// Reads the configuration again: the file the collector started from with the same
/// command-line overrides applied. The error names the file and the problem.
pub type ConfigSource = Arc<dyn Fn() -> Result<Config, String> + Send + Sync>;

/// The senders of the settings the running tasks read through `watch` channels.
#[derive(Clone)]
pub(crate) struct LiveSettings {
    pub ingest_limits: Arc<watch::Sender<IngestLimits>>,
    pub query_limits: Arc<watch::Sender<QueryLimits>>,
    /// `retention`: how long samples, spans and logs are kept.
    pub retention: Arc<watch::Sender<Duration>>,
}

impl LiveSettings {
    pub fn new(config: &Config) -> LiveSettings {
        LiveSettings {
            ingest_limits: Arc::new(watch::channel(config.ingest_limits).0),
            query_limits: Arc::new(watch::channel(config.query.clone()).0),
            retention: Arc::new(watch::channel(config.retention).0),
        }
    }
}

/// A value's `Debug` form, to compare sections that hold parsed matchers, regexes and
/// durations, which do not all implement `PartialEq`. Their `Debug` output is deterministic
/// (no hash maps), so equal text means equal settings.
fn debug_text<T: std::fmt::Debug>(value: &T) -> String {
    format!("{value:?}")
}

/// Compares the configuration in force with a freshly loaded one. Pure.
pub fn changes(running: &Config, fresh: &Config) -> Changes {
    let tls_files = |c: &Config| {
        c.security
            .tls
            .as_ref()
            .map(|t| (t.files.clone(), t.client_auth_listeners.clone()))
    };
    let tls_listeners = |c: &Config| c.security.tls.as_ref().map(|t| t.listeners.clone());
    let applied = redline_common::compare!(running, fresh;
        "retention" => |c| c.retention,
        "notify.config_file" => |c| &c.notify.config_file,
        "rules.paths" => |c| (&c.rules.paths, c.rules.default_paths),
        "rules.evaluation_interval" => |c| c.rules.evaluation_interval,
        "rules.evaluate_on_write_debounce" => |c| c.rules.debounce,
        "rules.external_labels" => |c| &c.rules.external_labels,
        "limits.max_series_per_request" => |c| c.ingest_limits.max_series_per_request,
        "limits.max_labels_per_series" => |c| c.ingest_limits.max_labels_per_series,
        "limits.max_label_name_length" => |c| c.ingest_limits.max_label_name_length,
        "limits.max_label_value_length" => |c| c.ingest_limits.max_label_value_length,
        "limits.max_future" => |c| c.ingest_limits.max_future,
        "limits.max_series" => |c| c.series_limits.max_series,
        "limits.max_series_per_host" => |c| c.series_limits.max_series_per_host,
        "limits.query_max_series" => |c| c.query.max_series,
        "limits.query_max_samples" => |c| c.query.max_samples,
        "limits.query_timeout" => |c| c.query.timeout,
        "auth" => |c| &c.security.tokens,
        "tls" => |c| tls_files(c),
    );
    let restart_required = redline_common::compare!(running, fresh;
        "data_dir" => |c| &c.data_dir,
        "listen.otlp_grpc" => |c| c.otlp_grpc_listen,
        "listen.otlp_http" => |c| c.otlp_http_listen,
        "listen.http" => |c| c.http_listen,
        "limits.max_request_bytes" => |c| c.max_request_bytes,
        "limits.max_concurrent_requests" => |c| c.max_concurrent_requests,
        "limits.api_max_concurrent_requests" => |c| c.api_max_concurrent_requests,
        "store.head_flush_interval" => |c| c.head_flush_interval,
        "store.write_queue" => |c| c.write_queue,
        "store.max_size" => |c| c.store_max_size,
        "telemetry.log_format" => |c| c.log_format,
        "telemetry.otlp_traces_endpoint" => |c| &c.otlp_traces_endpoint,
        "rules.external_url" => |c| &c.rules.external_url,
        "notify.initial_backoff" => |c| c.notify.initial_backoff,
        "notify.max_backoff" => |c| c.notify.max_backoff,
        "notify.retention" => |c| c.notify.retention,
        "notify.give_up_after" => |c| c.notify.give_up_after,
        "detect" => |c| debug_text(&c.detect),
        "incidents" => |c| debug_text(&c.incidents),
        "verification" => |c| debug_text(&c.verification),
        "forward" => |c| debug_text(&c.forward),
        "tls.listeners" => |c| tls_listeners(c),
    );
    Changes {
        applied: changed(applied),
        restart_required: changed(restart_required),
    }
}

/// `running` with the settings of `fresh` that a reload applies; the others keep their
/// running values. Pure.
pub fn apply(running: &Config, fresh: &Config) -> Config {
    let mut next = running.clone();
    next.retention = fresh.retention;
    next.notify.config_file = fresh.notify.config_file.clone();
    let external_url = std::mem::take(&mut next.rules.external_url);
    next.rules = fresh.rules.clone();
    next.rules.external_url = external_url;
    next.ingest_limits = fresh.ingest_limits;
    next.series_limits = fresh.series_limits;
    next.query = fresh.query.clone();
    next.security.tokens = fresh.security.tokens.clone();
    // Files and client certificates apply to the listeners that speak TLS now; which
    // listeners those are stays as it is.
    if let (Some(tls), Some(wanted)) = (&mut next.security.tls, &fresh.security.tls) {
        tls.files = wanted.files.clone();
        tls.client_auth_listeners = wanted
            .client_auth_listeners
            .iter()
            .copied()
            .filter(|l| tls.listeners.contains(l))
            .collect();
    }
    next
}

/// What one reload did.
#[derive(Debug, Default)]
pub struct ReloadOutcome {
    /// Problems: a configuration that did not load, rules that did not load, a routing file,
    /// token or certificate file that could not be used (each keeps what was in force).
    pub errors: Vec<String>,
    pub changes: Changes,
}

impl ReloadOutcome {
    /// The reload's result for people: `POST /-/reload`'s body and the log.
    pub fn report(&self) -> String {
        let mut out = String::new();
        if self.errors.is_empty() {
            out.push_str("reloaded\n");
        } else {
            out.push_str("reloaded with errors (what failed keeps the settings in force):\n");
            for e in &self.errors {
                out.push_str(e);
                out.push('\n');
            }
        }
        if !self.changes.applied.is_empty() {
            out.push_str(&format!("applied: {}\n", self.changes.applied.join(", ")));
        }
        if !self.changes.restart_required.is_empty() {
            out.push_str(&format!(
                "changed, in force after a restart: {}\n",
                self.changes.restart_required.join(", ")
            ));
        }
        out
    }
}

/// Asks a running collector to reload; cheap to clone.
#[derive(Clone)]
pub struct Reloader {
    pub(crate) source: Option<ConfigSource>,
    /// The configuration in force. Held for the whole of a reload, so reloads do not
    /// interleave.
    pub(crate) running: Arc<tokio::sync::Mutex<Config>>,
    pub(crate) rules: tokio::sync::mpsc::Sender<crate::alert::manager::ReloadRequest>,
    /// Set by `Collector::run` once the dispatcher and the integrations exist.
    pub(crate) notify: Arc<std::sync::Mutex<Option<crate::NotifyParts>>>,
    /// Token files and certificates.
    pub(crate) security: crate::listen::Security,
    pub(crate) live: LiveSettings,
    pub(crate) store: crate::store::Store,
}

impl Reloader {
    /// Reloads the configuration (when the collector was started from a file), the routing
    /// file, the rule files, the token files and the certificates. Rules load partially (a bad
    /// rule is reported, the rest load); the configuration and the routing file are all or
    /// nothing, as in Prometheus and Alertmanager: with errors, the one in force stays.
    /// `Err` only when the collector is shutting down.
    pub async fn reload(&self) -> anyhow::Result<ReloadOutcome> {
        let mut running = self.running.lock().await;
        let mut outcome = ReloadOutcome::default();
        let fresh = match &self.source {
            None => running.clone(),
            Some(source) => match source() {
                Ok(fresh) => fresh,
                Err(e) => {
                    tracing::error!(error = %e, "configuration not reloaded; the one in force stays");
                    set_reload_metrics(false, None);
                    outcome.errors.push(e);
                    return Ok(outcome);
                }
            },
        };
        outcome.changes = changes(&running, &fresh);
        let next = apply(&running, &fresh);

        // Tokens and certificates first, then the limits, then routing before rules, so the
        // alerts the reloaded rules re-announce are routed by the new configuration.
        let mut errors = self.security.reconfigure(&next.security);
        for e in &errors {
            tracing::error!(problem = %e, "reload");
        }
        self.live.ingest_limits.send_replace(next.ingest_limits);
        self.live.query_limits.send_replace(next.query.clone());
        self.live.retention.send_replace(next.retention);
        if next.series_limits != running.series_limits {
            self.store.set_series_limits(next.series_limits).await?;
        }
        let parts = self.notify.lock().ok().and_then(|g| g.clone());
        if let Some(parts) = parts {
            match crate::alert::dispatcher::Routing::load(next.notify.config_file.as_deref()) {
                Ok(routing) => {
                    let mut receivers = routing.receivers();
                    receivers.extend(parts.extra_receivers.clone());
                    for problem in parts.integrations.reload(&receivers) {
                        tracing::error!(problem = %problem, "integration cannot deliver");
                        errors.push(problem);
                    }
                    parts.dispatcher.reload(routing).await?;
                }
                Err(e) => {
                    tracing::error!(error = %e, "routing configuration not reloaded; the previous one stays");
                    errors.extend(e.errors.iter().map(|e| e.to_string()));
                }
            }
        }
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.rules
            .send(crate::alert::manager::ReloadRequest {
                config: Some(next.rules.clone()),
                reply,
            })
            .await
            .map_err(|_| anyhow::anyhow!("the collector is shutting down"))?;
        errors.extend(rx.await?);
        *running = next;

        if !outcome.changes.applied.is_empty() {
            tracing::info!(settings = ?outcome.changes.applied, "configuration changes applied");
        }
        if !outcome.changes.restart_required.is_empty() {
            tracing::warn!(
                settings = ?outcome.changes.restart_required,
                "configuration changes take effect only after a restart; the running values stay"
            );
        }
        set_reload_metrics(
            errors.is_empty(),
            Some(!outcome.changes.restart_required.is_empty()),
        );
        outcome.errors = errors;
        Ok(outcome)
    }
}

/// Prometheus' `prometheus_config_last_reload_successful` and its timestamp, and whether the
/// file holds changes that wait for a restart (left as it was when the file did not load).
/// Set at start too: the configuration a collector starts with counts as a successful load.
pub(crate) fn set_reload_metrics(success: bool, restart_required: Option<bool>) {
    metrics::gauge!("redline_collector_config_last_reload_successful").set(f64::from(success));
    if success {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        metrics::gauge!("redline_collector_config_last_reload_success_timestamp_seconds")
            .set(now.as_secs_f64());
    }
    if let Some(required) = restart_required {
        metrics::gauge!("redline_collector_config_restart_required").set(f64::from(required));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(yaml: &str) -> Config {
        Config::from_yaml(yaml, Path::new("collector.yaml")).expect("valid test config")
    }

    #[test]
    fn the_same_file_changes_nothing() {
        let yaml = "retention: 2d\nlimits:\n  max_series: 10\nrules:\n  paths: [r]\n";
        assert_eq!(changes(&config(yaml), &config(yaml)), Changes::default());
        let shipped = include_str!("../../packaging/collector.yaml");
        assert_eq!(
            changes(&config(shipped), &config(shipped)),
            Changes::default()
        );
    }

    #[test]
    fn live_settings_apply_and_the_others_wait_for_a_restart() {
        let running = config("retention: 2d\nlisten:\n  http: 127.0.0.1:9190\n");
        let fresh = config(
            "retention: 3d\nlisten:\n  http: 127.0.0.1:9999\nlimits:\n  max_labels_per_series: 5\n  max_series: 7\n  query_timeout: 5s\nrules:\n  paths: [x]\n  external_url: http://elsewhere\ndetect:\n  threshold: 0.5\n",
        );
        let c = changes(&running, &fresh);
        assert_eq!(
            c.applied,
            vec![
                "retention",
                "rules.paths",
                "limits.max_labels_per_series",
                "limits.max_series",
                "limits.query_timeout",
            ]
        );
        assert_eq!(
            c.restart_required,
            vec!["listen.http", "rules.external_url", "detect"]
        );
        let next = apply(&running, &fresh);
        assert_eq!(next.retention, Duration::from_secs(3 * 86400));
        assert_eq!(next.ingest_limits.max_labels_per_series, 5);
        // The retention bounds how old an accepted sample may be.
        assert_eq!(next.ingest_limits.max_past, Duration::from_secs(3 * 86400));
        assert_eq!(next.series_limits.max_series, 7);
        assert_eq!(next.query.timeout, Duration::from_secs(5));
        assert_eq!(next.rules.paths, vec![std::path::PathBuf::from("x")]);
        // What waits for a restart keeps its running value.
        assert_eq!(next.http_listen, running.http_listen);
        assert_eq!(next.rules.external_url, running.rules.external_url);
        assert_eq!(next.detect.threshold, running.detect.threshold);
        // Applying again finds only the settings that wait for a restart.
        let again = changes(&next, &fresh);
        assert!(again.applied.is_empty(), "{again:?}");
        assert_eq!(again.restart_required, c.restart_required);
    }

    #[test]
    fn tls_files_apply_but_which_listeners_speak_tls_does_not() {
        let running = config(
            "tls:\n  cert_file: a.pem\n  key_file: a.key\n  client_ca_file: ca.pem\n  listeners: [otlp_grpc]\n  client_auth_listeners: []\n",
        );
        let fresh = config(
            "tls:\n  cert_file: b.pem\n  key_file: b.key\n  client_ca_file: ca.pem\n  listeners: [otlp_grpc, http]\n  client_auth_listeners: [otlp_grpc, http]\n",
        );
        let c = changes(&running, &fresh);
        assert_eq!(c.applied, vec!["tls"]);
        assert_eq!(c.restart_required, vec!["tls.listeners"]);
        let next = apply(&running, &fresh);
        let tls = next.security.tls.expect("tls stays on");
        assert_eq!(tls.files.cert_file, std::path::PathBuf::from("b.pem"));
        assert_eq!(tls.listeners, vec![crate::config::ListenerName::OtlpGrpc]);
        // Client certificates only where TLS is spoken.
        assert_eq!(
            tls.client_auth_listeners,
            vec![crate::config::ListenerName::OtlpGrpc]
        );
    }
}
