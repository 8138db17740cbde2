//! The collector's own telemetry: metrics through the `metrics` facade rendered by
//! `metrics-exporter-prometheus` at `/metrics`, structured logs through `tracing`, and, when
//! configured, its own spans exported over OTLP through `tracing-opentelemetry`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider as _;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder handle. The first caller installs the recorder; when another
/// recorder is already installed (the agent's, when both run in one test process), the
/// collector renders an uninstalled recorder of its own, which then shows no self-metrics.
pub fn metrics_handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let handle = match PrometheusBuilder::new().install_recorder() {
                Ok(handle) => handle,
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            };
            describe();
            handle
        })
        .clone()
}

/// Every metric the collector records, with its kind and HELP text (promtool wants one per
/// family). A test checks that every name the code records appears here.
pub const METRICS: &[(&str, &str, &str)] = &[
    (
        "counter",
        "redline_collector_forward_enqueued_total",
        "Items (data points, spans, log records, samples) queued durably for forwarding, by target and signal.",
    ),
    (
        "counter",
        "redline_collector_forward_sent_total",
        "Items delivered to a forwarding target and accepted by it, by target and signal.",
    ),
    (
        "counter",
        "redline_collector_forward_rejected_total",
        "Items an OTLP upstream refused in a partial success (not retried), by target and signal.",
    ),
    (
        "counter",
        "redline_collector_forward_failed_total",
        "Failed forwarding attempts, by target and reason (connect, timeout, unavailable, http_429, http_4xx, http_5xx, ...).",
    ),
    (
        "counter",
        "redline_collector_forward_retries_total",
        "Forwarding attempts that will be retried after a backoff, by target.",
    ),
    (
        "counter",
        "redline_collector_forward_dropped_total",
        "Items dropped from a forward queue, by target and reason (queue_full, rejected: refused permanently by the upstream, unconfigured: target removed from the configuration).",
    ),
    (
        "gauge",
        "redline_collector_forward_queue_bytes",
        "Bytes waiting in a forward queue, by target.",
    ),
    (
        "gauge",
        "redline_collector_forward_queue_rows",
        "Payloads (requests) waiting in a forward queue, by target.",
    ),
    (
        "histogram",
        "redline_collector_forward_send_duration_seconds",
        "Time of one forwarding attempt, by target.",
    ),
    (
        "counter",
        "redline_collector_verifications_dropped_total",
        "Deployments not verified because too many verifications were running at once.",
    ),
    (
        "counter",
        "redline_collector_verification_analyses_total",
        "Post-deploy verification analyses run (one per indicator per round).",
    ),
    (
        "counter",
        "redline_collector_verification_verdicts_total",
        "Post-deploy verifications finished, by verdict (pass, fail, inconclusive).",
    ),
    (
        "counter",
        "redline_collector_rollbacks_total",
        "Rollback decisions and results, by state (skipped, paused, dry_run, awaiting_approval, running, succeeded, failed, expired).",
    ),
    (
        "counter",
        "redline_collector_rollback_triggers_dropped_total",
        "Rollback triggers from incidents dropped because the verifier was busy.",
    ),
    (
        "counter",
        "redline_collector_rollback_announcements_dropped_total",
        "Rollback announcements dropped because the dispatcher's queue was full.",
    ),
    (
        "gauge",
        "redline_collector_incidents_open",
        "Incidents not yet resolved.",
    ),
    (
        "counter",
        "redline_collector_incident_events_total",
        "Incident events announced to the routing tree, by event (opened, acknowledged, resolved).",
    ),
    (
        "counter",
        "redline_collector_incident_notes_dropped_total",
        "Timeline notes (notification outcomes, anomaly peaks) dropped because the incident manager was busy, by kind.",
    ),
    (
        "counter",
        "redline_collector_incident_announcements_dropped_total",
        "Incident announcements dropped because the dispatcher's queue stayed full.",
    ),
    (
        "counter",
        "redline_collector_incident_store_errors_total",
        "Incident changes that could not be saved (the record is saved with its next change).",
    ),
    (
        "counter",
        "redline_collector_deployments_total",
        "Deployments recorded, by status.",
    ),
    (
        "counter",
        "redline_collector_webhook_rejected_total",
        "Incoming webhooks refused, by reason.",
    ),
    (
        "gauge",
        "redline_dora_deployments_per_day",
        "Successful deployments per day over the trailing 30 days, by service and environment.",
    ),
    (
        "gauge",
        "redline_dora_change_lead_time_median_seconds",
        "Median change lead time (commit to successful deployment) over the trailing 30 days.",
    ),
    (
        "gauge",
        "redline_dora_change_lead_time_p90_seconds",
        "90th percentile (nearest rank) of change lead time over the trailing 30 days.",
    ),
    (
        "gauge",
        "redline_dora_change_fail_rate",
        "Share of successful deployments of the trailing 30 days that failed (caused an incident or were rolled back).",
    ),
    (
        "gauge",
        "redline_dora_failed_deployment_recovery_time_median_seconds",
        "Median time from a failed deployment to its recovery, over the trailing 30 days.",
    ),
    (
        "gauge",
        "redline_dora_deployment_rework_rate",
        "Share of successful deployments of the trailing 30 days that fix an incident.",
    ),
    (
        "gauge",
        "redline_dora_time_to_restore_median_seconds",
        "Median time from opening to resolution of incidents opened in the trailing 30 days.",
    ),
    (
        "counter",
        "redline_collector_derive_dropped_total",
        "Samples or commits not used for derived series (anomaly scores, span metrics), by reason (queue_full, max_series, store).",
    ),
    (
        "counter",
        "redline_collector_anomaly_points_scored_total",
        "Samples scored by the anomaly detectors.",
    ),
    (
        "gauge",
        "redline_collector_anomaly_series",
        "Series with an anomaly detector.",
    ),
    (
        "gauge",
        "redline_collector_dispatch_alerts",
        "Alerts the notification dispatcher holds (firing, and resolved ones not yet reported).",
    ),
    (
        "gauge",
        "redline_collector_dispatch_groups",
        "Aggregation groups of the notification dispatcher.",
    ),
    (
        "gauge",
        "redline_collector_silences_active",
        "Silences in force now.",
    ),
    (
        "counter",
        "redline_collector_silences_expired_while_firing_total",
        "Silences that ended while alerts they muted still fired (those alerts were notified at once).",
    ),
    (
        "counter",
        "redline_collector_notifications_dropped_total",
        "Notifications that could not be persisted to the outbox, by reason; their alerts are decided again at the next flush.",
    ),
    (
        "gauge",
        "redline_collector_notifications_pending",
        "Notifications in the outbox not yet delivered or given up on.",
    ),
    (
        "counter",
        "redline_collector_notification_attempts_total",
        "Delivery attempts of notifications, by receiver, integration and outcome (delivered, retry, failed).",
    ),
    (
        "histogram",
        "redline_collector_notification_attempt_duration_seconds",
        "How long one delivery attempt took, by integration.",
    ),
    (
        "counter",
        "redline_collector_notifications_total",
        "Notifications finished, by receiver, integration and outcome (delivered or failed).",
    ),
    (
        "counter",
        "redline_collector_received_total",
        "Data points, spans and log records received and committed, by signal and protocol.",
    ),
    (
        "counter",
        "redline_collector_rejected_total",
        "Items or requests refused, by signal and reason.",
    ),
    (
        "counter",
        "redline_collector_limit_exceeded_total",
        "Requests, series or points refused by a limit, by the limit's name (max_request_bytes, max_concurrent_requests, api_max_concurrent_requests, max_series_per_request, max_labels_per_series, max_label_name_length, max_label_value_length, max_future, max_past, span_time, log_time, max_series, max_series_per_host).",
    ),
    (
        "counter",
        "redline_collector_unauthenticated_total",
        "Requests refused for a missing, unknown or wrong-scope bearer token, by listener and reason (missing, invalid, forbidden).",
    ),
    (
        "counter",
        "redline_collector_tls_handshake_failures_total",
        "TLS handshakes that failed (plaintext to a TLS port, untrusted or expired client certificate) or timed out, by listener and reason.",
    ),
    (
        "counter",
        "redline_collector_dropped_total",
        "Data points dropped during conversion (exemplars, exponential histograms, empty names), by signal and reason.",
    ),
    (
        "counter",
        "redline_collector_samples_stored_total",
        "Samples committed to the store.",
    ),
    (
        "counter",
        "redline_collector_samples_duplicate_total",
        "Samples received again with the same timestamp and value (retried deliveries), not stored twice.",
    ),
    (
        "counter",
        "redline_collector_samples_rejected_total",
        "Samples refused by the store, by reason.",
    ),
    (
        "counter",
        "redline_collector_spans_stored_total",
        "Spans committed to the store.",
    ),
    (
        "counter",
        "redline_collector_logs_stored_total",
        "Log records committed to the store.",
    ),
    (
        "counter",
        "redline_collector_store_errors_total",
        "Store operations that failed, by stage and error_type (full, io, busy, corrupt, other).",
    ),
    (
        "gauge",
        "redline_collector_store_used_bytes",
        "Bytes of the database file in use (pages not on the free list); store.max_size bounds it.",
    ),
    (
        "gauge",
        "redline_collector_store_size_limit_bytes",
        "The store.max_size budget in bytes (absent when unbounded).",
    ),
    (
        "counter",
        "redline_collector_store_flushes_total",
        "Head flushes into compressed chunks.",
    ),
    (
        "counter",
        "redline_collector_store_retention_deleted_total",
        "Rows deleted by retention, by kind.",
    ),
    (
        "gauge",
        "redline_collector_store_series",
        "Series in the index.",
    ),
    (
        "gauge",
        "redline_collector_store_disk_bytes",
        "Size of the database file and its WAL, in bytes.",
    ),
    (
        "histogram",
        "redline_collector_store_commit_duration_seconds",
        "Time to commit one group of writes.",
    ),
    (
        "histogram",
        "redline_collector_store_group_commit_writes",
        "Writes folded into one transaction (group commit).",
    ),
    (
        "histogram",
        "redline_collector_store_write_duration_seconds",
        "Time from handing a request to the store to its commit, by signal.",
    ),
    (
        "gauge",
        "redline_collector_rules_loaded",
        "Rules loaded from the rule files.",
    ),
    (
        "gauge",
        "redline_collector_rule_load_errors",
        "Rules, groups or files that failed to load at the last (re)load.",
    ),
    (
        "counter",
        "redline_collector_rule_reloads_total",
        "Rule reloads (SIGHUP or POST /-/reload).",
    ),
    (
        "gauge",
        "redline_collector_config_last_reload_successful",
        "Whether the last reload (SIGHUP or POST /-/reload) loaded the configuration and every file it names.",
    ),
    (
        "gauge",
        "redline_collector_config_last_reload_success_timestamp_seconds",
        "When the last fully successful reload finished.",
    ),
    (
        "gauge",
        "redline_collector_config_restart_required",
        "1 when the configuration file changes settings that take effect only after a restart.",
    ),
    (
        "counter",
        "redline_collector_rule_group_early_evaluations_total",
        "Group evaluations triggered by new samples of a metric the group reads.",
    ),
    (
        "counter",
        "redline_collector_rule_evaluation_failures_total",
        "Rule evaluations that failed.",
    ),
    (
        "counter",
        "redline_collector_rule_persist_failures_total",
        "Group evaluations whose output or alert state could not be written.",
    ),
    (
        "histogram",
        "redline_collector_rule_group_duration_seconds",
        "Time to evaluate one rule group.",
    ),
    (
        "counter",
        "redline_collector_alert_transitions_total",
        "Alert state transitions, by the state entered.",
    ),
    (
        "counter",
        "redline_collector_alert_events_dropped_total",
        "Alert transitions dropped because the event queue was full.",
    ),
];

fn describe() {
    for (kind, name, help) in METRICS {
        match *kind {
            "counter" => metrics::describe_counter!(*name, *help),
            "gauge" => metrics::describe_gauge!(*name, *help),
            _ => metrics::describe_histogram!(*name, *help),
        }
    }
}

/// Keeps the OTLP span pipeline alive; dropping it flushes and shuts the exporter down.
pub struct TracingGuard {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Installs the global `tracing` subscriber; level from `RUST_LOG` (default `info`); plus an
/// OTLP span exporter when `otlp_traces_endpoint` is set. Where the lines go:
/// - `format` set: JSON lines or text on stderr, as configured;
/// - unset and stderr is the journal (under systemd): native journal entries, each event's
///   fields as `REDLINE_<FIELD>` journal fields (`journalctl -o verbose` shows them), the
///   level as `PRIORITY`; if the journal socket cannot be reached, JSON lines on stderr;
/// - otherwise text on stderr.
pub fn init_logging(
    format: Option<LogFormat>,
    otlp_traces_endpoint: Option<&str>,
) -> anyhow::Result<TracingGuard> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Set when stderr is the journal but its socket is not there; logged once the
    // subscriber is installed.
    let mut unreachable = None;
    let (journal, json) = match format {
        Some(LogFormat::Json) => (None, true),
        Some(LogFormat::Text) => (None, false),
        None if stderr_is_journal() => match tracing_journald::layer() {
            // The prefix keeps our fields apart from the journal's own (`MESSAGE`,
            // `PRIORITY`, `CODE_FILE`...) and easy to filter on.
            Ok(l) => (Some(l.with_field_prefix(Some("REDLINE".to_owned()))), false),
            Err(e) => {
                unreachable = Some(e);
                (None, true)
            }
        },
        None => (None, false),
    };
    let fmt = match (&journal, json) {
        (Some(_), _) => None,
        (None, true) => Some(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(std::io::stderr)
                .boxed(),
        ),
        (None, false) => Some(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .boxed(),
        ),
    };
    let mut provider = None;
    let otel = match otlp_traces_endpoint {
        None => None,
        Some(endpoint) => {
            use opentelemetry_otlp::WithExportConfig;
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()?;
            let p = opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name("redline-collector")
                        .build(),
                )
                .build();
            let tracer = p.tracer("redline-collector");
            provider = Some(p);
            Some(tracing_opentelemetry::layer().with_tracer(tracer))
        }
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(journal)
        .with(otel)
        .try_init()?;
    if let Some(e) = unreachable {
        tracing::warn!(error = %e, "stderr is the journal but its socket is unreachable; logging JSON lines to stderr");
    }
    Ok(TracingGuard { provider })
}

pub use redline_common::systemd::stderr_is_journal;

#[cfg(test)]
mod tests {
    /// Every metric name recorded anywhere in the collector's source has a HELP text.
    #[test]
    fn every_recorded_metric_is_described() {
        let re = regex::Regex::new(r#"metrics::(counter|gauge|histogram)!\(\s*"([a-z_]+)""#)
            .expect("regex");
        let mut missing = Vec::new();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("read src").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).expect("read file");
                    for c in re.captures_iter(&text) {
                        let (kind, name) = (&c[1], &c[2]);
                        if !super::METRICS
                            .iter()
                            .any(|(k, n, _)| *k == kind && *n == name)
                        {
                            missing.push(format!("{kind} {name} ({})", path.display()));
                        }
                    }
                }
            }
        }
        assert!(missing.is_empty(), "undescribed metrics: {missing:#?}");
    }
}
