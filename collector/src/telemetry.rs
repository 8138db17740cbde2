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

/// HELP texts for every metric the collector records (promtool wants one per family).
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "redline_collector_received_total",
        "Data points, spans and log records received and committed, by signal and protocol."
    );
    describe_counter!(
        "redline_collector_rejected_total",
        "Items or requests refused, by signal and reason."
    );
    describe_counter!(
        "redline_collector_dropped_total",
        "Data points dropped during conversion (exemplars, exponential histograms, empty names), by signal and reason."
    );
    describe_counter!(
        "redline_collector_samples_stored_total",
        "Samples committed to the store."
    );
    describe_counter!(
        "redline_collector_samples_duplicate_total",
        "Samples received again with the same timestamp and value (retried deliveries), not stored twice."
    );
    describe_counter!(
        "redline_collector_samples_rejected_total",
        "Samples refused by the store, by reason."
    );
    describe_counter!(
        "redline_collector_spans_stored_total",
        "Spans committed to the store."
    );
    describe_counter!(
        "redline_collector_logs_stored_total",
        "Log records committed to the store."
    );
    describe_counter!(
        "redline_collector_store_errors_total",
        "Store operations that failed, by stage."
    );
    describe_counter!(
        "redline_collector_store_flushes_total",
        "Head flushes into compressed chunks."
    );
    describe_counter!(
        "redline_collector_store_retention_deleted_total",
        "Rows deleted by retention, by kind."
    );
    describe_gauge!("redline_collector_store_series", "Series in the index.");
    describe_gauge!(
        "redline_collector_store_disk_bytes",
        "Size of the database file and its WAL, in bytes."
    );
    describe_histogram!(
        "redline_collector_store_commit_duration_seconds",
        "Time to commit one group of writes."
    );
    describe_histogram!(
        "redline_collector_store_write_duration_seconds",
        "Time from handing a request to the store to its commit, by signal."
    );
    describe_counter!(
        "redline_collector_api_requests_total",
        "HTTP API requests, by handler and status code."
    );
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

/// Installs the global `tracing` subscriber: JSON lines when `format` says so or when stderr is
/// the journal (`JOURNAL_STREAM` set), plain text otherwise; level from `RUST_LOG` (default
/// `info`); plus an OTLP span exporter when `otlp_traces_endpoint` is set.
pub fn init_logging(
    format: Option<LogFormat>,
    otlp_traces_endpoint: Option<&str>,
) -> anyhow::Result<TracingGuard> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = match format {
        Some(LogFormat::Json) => true,
        Some(LogFormat::Text) => false,
        None => std::env::var_os("JOURNAL_STREAM").is_some(),
    };
    let fmt = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed()
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
        .with(otel)
        .try_init()?;
    Ok(TracingGuard { provider })
}
