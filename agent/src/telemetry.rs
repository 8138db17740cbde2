//! The agent's own health metrics and the `/metrics` endpoint.
//!
//! [`Telemetry`] owns a private Prometheus recorder (metrics-exporter-prometheus) and the
//! pre-registered `metrics` handles (counters, gauges, a histogram) every component updates.
//! The recorder is deliberately **not** installed as the process-global `metrics` recorder:
//! an in-process end-to-end test runs the agent and the collector in one process (each wants
//! its own `/metrics`), and two agents may run side by side in one test binary. Handles
//! registered straight on our recorder keep each agent's figures separate; the `metrics!`
//! macros are not used for that reason. (This replaces the "install, else fall back to
//! `build_recorder()`" approach: there is nothing to fall back from.)
//!
//! Every label combination is registered up front, so all series exist (at 0) from the first
//! scrape and `rate()` works without gaps. All labels come from closed enums.
//!
//! `/metrics` serves the self metrics followed by the latest host metrics, rendered by
//! [`crate::exposition`] with the names Prometheus' OTLP receiver would give them. The
//! collector task publishes that text through a `watch` channel; the handler only copies it.
//! `/healthz` answers `ok` for liveness probes. With `telemetry.token_file`, `/metrics` wants a
//! bearer token (401 otherwise); `/healthz` stays open. With `telemetry.tls`, both are served
//! over TLS (see [`crate::listen`]).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics::{Counter, Gauge, Histogram, Key, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use tokio::sync::watch;

use crate::collect::Family;
use crate::export::batch::Signal;
use crate::export::client::FailureReason;
use crate::listen::{Gate, Incoming};

/// Outcome of one export attempt (`outcome` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    PartialSuccess,
    RetryableError,
    PermanentError,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Success,
        Outcome::PartialSuccess,
        Outcome::RetryableError,
        Outcome::PermanentError,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::PartialSuccess => "partial_success",
            Outcome::RetryableError => "retryable_error",
            Outcome::PermanentError => "permanent_error",
        }
    }
}

/// Why data was dropped (`reason` label of `redline_agent_dropped_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The oldest spooled data, evicted to make room (`exporter.queue.max_bytes`), or a host
    /// batch that could not be spooled at all.
    SpoolFull,
    /// Spooled longer than `exporter.queue.max_age`.
    MaxAge,
    /// The spool could not write a host batch, or could not read a record back.
    SpoolError,
    /// The collector answered with a permanent error (other than an authentication failure,
    /// which keeps the data spooled).
    PermanentError,
    /// The collector rejected these items in a partial success.
    RejectedByCollector,
    /// Offered but not yet spooled when the shutdown deadline passed.
    Shutdown,
}

impl DropReason {
    pub const ALL: [DropReason; 6] = [
        DropReason::SpoolFull,
        DropReason::MaxAge,
        DropReason::SpoolError,
        DropReason::PermanentError,
        DropReason::RejectedByCollector,
        DropReason::Shutdown,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::SpoolFull => "spool_full",
            DropReason::MaxAge => "max_age",
            DropReason::SpoolError => "spool_error",
            DropReason::PermanentError => "permanent_error",
            DropReason::RejectedByCollector => "rejected_by_collector",
            DropReason::Shutdown => "shutdown",
        }
    }
}

/// A listener that checks bearer tokens (`listener` label of
/// `redline_agent_unauthenticated_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    RelayGrpc,
    RelayHttp,
    Metrics,
}

impl Listener {
    pub const ALL: [Listener; 3] = [Listener::RelayGrpc, Listener::RelayHttp, Listener::Metrics];
    pub fn as_str(self) -> &'static str {
        match self {
            Listener::RelayGrpc => "relay_grpc",
            Listener::RelayHttp => "relay_http",
            Listener::Metrics => "metrics",
        }
    }
}

/// How relayed data arrived (`protocol` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayProtocol {
    Grpc,
    HttpProtobuf,
    HttpJson,
}

impl RelayProtocol {
    pub const ALL: [RelayProtocol; 3] = [
        RelayProtocol::Grpc,
        RelayProtocol::HttpProtobuf,
        RelayProtocol::HttpJson,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            RelayProtocol::Grpc => "grpc",
            RelayProtocol::HttpProtobuf => "http_protobuf",
            RelayProtocol::HttpJson => "http_json",
        }
    }
}

/// Why the relay refused a request (`reason` label of `redline_agent_relay_rejected_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// The spool could not take the request (too large for `exporter.queue.max_bytes`, or a
    /// write error); answered UNAVAILABLE / 503 + Retry-After.
    QueueFull,
    /// The body exceeded `relay.max_request_bytes` (413 / RESOURCE_EXHAUSTED by tonic).
    TooLarge,
    /// The body did not decode (400).
    Undecodable,
    /// Content-Type or Content-Encoding not supported (415).
    UnsupportedMediaType,
    /// The agent is shutting down (503).
    ShuttingDown,
}

impl RejectReason {
    pub const ALL: [RejectReason; 5] = [
        RejectReason::QueueFull,
        RejectReason::TooLarge,
        RejectReason::Undecodable,
        RejectReason::UnsupportedMediaType,
        RejectReason::ShuttingDown,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::QueueFull => "queue_full",
            RejectReason::TooLarge => "too_large",
            RejectReason::Undecodable => "undecodable",
            RejectReason::UnsupportedMediaType => "unsupported_media_type",
            RejectReason::ShuttingDown => "shutting_down",
        }
    }
}

/// Name of the collection-time histogram (distinct from the last-duration gauge, since one
/// name cannot be both a gauge and a histogram).
const COLLECTION_HISTOGRAM: &str = "redline_agent_collection_seconds";

/// Pre-registered handles of the agent's own metrics. Shared as `Arc<Telemetry>`; handles are
/// atomics, so any task may update them.
pub struct Telemetry {
    handle: PrometheusHandle,
    /// Host data points collected.
    pub samples_collected: Counter,
    export_requests: Vec<Counter>,
    exported_items: Vec<Counter>,
    export_failures: Vec<Counter>,
    dropped: Vec<Counter>,
    /// Records in the spool.
    pub spool_records: Gauge,
    /// Bytes of the records in the spool.
    pub spool_bytes: Gauge,
    /// `exporter.queue.max_bytes`.
    pub spool_max_bytes: Gauge,
    /// Torn or corrupt spool tails truncated at start.
    pub spool_truncated: Counter,
    reloads: Vec<Counter>,
    unauthenticated: Vec<Counter>,
    tls_handshake_failures: Vec<Counter>,
    /// Wall time of the last host collection.
    pub collection_duration: Gauge,
    /// Distribution of host collection wall times.
    pub collection_seconds: Histogram,
    relay_received: Vec<Counter>,
    relay_rejected: Vec<Counter>,
    collect_errors: Vec<Counter>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

struct Reg {
    recorder: PrometheusRecorder,
}

impl Reg {
    fn meta() -> metrics::Metadata<'static> {
        metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()))
    }
    fn counter(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &'static str)],
    ) -> Counter {
        self.recorder
            .describe_counter(name.into(), None, SharedString::const_str(help));
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &Self::meta())
    }
    fn gauge(&self, name: &'static str, unit: Option<Unit>, help: &'static str) -> Gauge {
        self.recorder
            .describe_gauge(name.into(), unit, SharedString::const_str(help));
        self.recorder
            .register_gauge(&Key::from_static_name(name), &Self::meta())
    }
}

impl Telemetry {
    /// Creates a private recorder and registers every series.
    pub fn new() -> Arc<Telemetry> {
        let builder = match PrometheusBuilder::new().set_buckets_for_metric(
            Matcher::Full(COLLECTION_HISTOGRAM.to_string()),
            &[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ],
        ) {
            Ok(b) => b,
            Err(e) => unreachable!("static bucket list is valid: {e}"),
        };
        let reg = Reg {
            recorder: builder.build_recorder(),
        };
        let per_signal = |name, help, extra: &'static str, values: &[&'static str]| {
            let mut v = Vec::new();
            for s in Signal::ALL {
                for x in values {
                    v.push(reg.counter(name, help, &[("signal", s.as_str()), (extra, x)]));
                }
            }
            v
        };
        let outcomes: Vec<&'static str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        let failures: Vec<&'static str> = FailureReason::ALL.iter().map(|o| o.as_str()).collect();
        let drops: Vec<&'static str> = DropReason::ALL.iter().map(|o| o.as_str()).collect();
        let protocols: Vec<&'static str> = RelayProtocol::ALL.iter().map(|o| o.as_str()).collect();

        let export_requests = per_signal(
            "redline_agent_export_requests_total",
            "OTLP export attempts to the collector, by signal and outcome.",
            "outcome",
            &outcomes,
        );
        let export_failures = per_signal(
            "redline_agent_export_failures_total",
            "Failed OTLP export attempts, by signal and reason.",
            "reason",
            &failures,
        );
        let dropped = per_signal(
            "redline_agent_dropped_total",
            "Data points, spans or log records dropped, by signal and reason.",
            "reason",
            &drops,
        );
        let relay_received = per_signal(
            "redline_agent_relay_received_total",
            "Data points, spans or log records accepted from local applications, by signal and protocol.",
            "protocol",
            &protocols,
        );
        let exported_items = Signal::ALL
            .iter()
            .map(|s| {
                reg.counter(
                    "redline_agent_exported_points_total",
                    "Data points, spans or log records delivered to the collector, by signal.",
                    &[("signal", s.as_str())],
                )
            })
            .collect();
        let relay_rejected = RejectReason::ALL
            .iter()
            .map(|r| {
                reg.counter(
                    "redline_agent_relay_rejected_total",
                    "Requests from local applications refused, by reason.",
                    &[("reason", r.as_str())],
                )
            })
            .collect();
        let collect_errors = Family::ALL
            .iter()
            .map(|f| {
                reg.counter(
                    "redline_agent_collect_errors_total",
                    "Host collection errors (unreadable files, malformed lines, failed statvfs), by collector.",
                    &[("collector", f.as_str())],
                )
            })
            .collect();
        let samples_collected = reg.counter(
            "redline_agent_samples_collected_total",
            "Host metric data points collected.",
            &[],
        );
        let spool_records = reg.gauge(
            "redline_agent_spool_records",
            None,
            "Records (one host collection or one relayed request each) in the on-disk spool, not yet acknowledged by the collector.",
        );
        let spool_bytes = reg.gauge(
            "redline_agent_spool_bytes",
            Some(Unit::Bytes),
            "Bytes of the records in the on-disk spool.",
        );
        let spool_max_bytes = reg.gauge(
            "redline_agent_spool_max_bytes",
            Some(Unit::Bytes),
            "Capacity of the on-disk spool (exporter.queue.max_bytes).",
        );
        let spool_truncated = reg.counter(
            "redline_agent_spool_truncated_total",
            "Torn or corrupt spool segment tails truncated at start (a crash during a write).",
            &[],
        );
        let reloads = ["success", "failure"]
            .iter()
            .map(|r| {
                reg.counter(
                    "redline_agent_reloads_total",
                    "Reloads of tokens and certificates (SIGHUP), by result.",
                    &[("result", r)],
                )
            })
            .collect();
        let tls_handshake_failures = Listener::ALL
            .iter()
            .map(|l| {
                reg.counter(
                    "redline_agent_tls_handshake_failures_total",
                    "TLS handshakes on the agent's listeners that failed, timed out or were refused for load, by listener.",
                    &[("listener", l.as_str())],
                )
            })
            .collect();
        let unauthenticated = Listener::ALL
            .iter()
            .map(|l| {
                reg.counter(
                    "redline_agent_unauthenticated_total",
                    "Requests refused for a missing or wrong bearer token, by listener.",
                    &[("listener", l.as_str())],
                )
            })
            .collect();
        let collection_duration = reg.gauge(
            "redline_agent_collection_duration_seconds",
            Some(Unit::Seconds),
            "Wall time of the last host metrics collection.",
        );
        reg.recorder.describe_histogram(
            COLLECTION_HISTOGRAM.into(),
            Some(Unit::Seconds),
            SharedString::const_str("Distribution of host metrics collection wall times."),
        );
        let collection_seconds = reg
            .recorder
            .register_histogram(&Key::from_static_name(COLLECTION_HISTOGRAM), &Reg::meta());

        Arc::new(Telemetry {
            handle: reg.recorder.handle(),
            samples_collected,
            export_requests,
            exported_items,
            export_failures,
            dropped,
            spool_records,
            spool_bytes,
            spool_max_bytes,
            spool_truncated,
            reloads,
            unauthenticated,
            tls_handshake_failures,
            collection_duration,
            collection_seconds,
            relay_received,
            relay_rejected,
            collect_errors,
        })
    }

    pub fn export_request(&self, s: Signal, o: Outcome) -> &Counter {
        &self.export_requests[s.index() * Outcome::ALL.len() + o as usize]
    }
    pub fn export_failure(&self, s: Signal, r: FailureReason) -> &Counter {
        &self.export_failures[s.index() * FailureReason::ALL.len() + r as usize]
    }
    pub fn dropped(&self, s: Signal, r: DropReason) -> &Counter {
        &self.dropped[s.index() * DropReason::ALL.len() + r as usize]
    }
    pub fn exported(&self, s: Signal) -> &Counter {
        &self.exported_items[s.index()]
    }
    pub fn relay_received(&self, s: Signal, p: RelayProtocol) -> &Counter {
        &self.relay_received[s.index() * RelayProtocol::ALL.len() + p as usize]
    }
    pub fn relay_rejected(&self, r: RejectReason) -> &Counter {
        &self.relay_rejected[r as usize]
    }
    /// Reloads by result.
    pub fn reload(&self, ok: bool) -> &Counter {
        &self.reloads[usize::from(!ok)]
    }
    pub fn unauthenticated(&self, l: Listener) -> &Counter {
        &self.unauthenticated[l as usize]
    }
    pub fn tls_handshake_failure(&self, l: Listener) -> &Counter {
        &self.tls_handshake_failures[l as usize]
    }
    pub fn collect_error(&self, f: Family) -> &Counter {
        &self.collect_errors[f as usize]
    }

    /// Drains histogram buffers; the collector task calls it every cycle.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// The self metrics in Prometheus text format.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

/// State of the `/metrics` handler.
#[derive(Clone)]
struct MetricsState {
    telemetry: Arc<Telemetry>,
    /// Latest host metrics exposition; the sender is held by the collector task.
    host: watch::Receiver<Arc<str>>,
    /// Bearer token check for `/metrics` (`/healthz` is open for probes).
    gate: Gate,
}

async fn metrics_handler(State(st): State<MetricsState>, headers: HeaderMap) -> Response {
    let auth = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    if !st.gate.admits(auth) {
        return unauthorized();
    }
    let mut body = st.telemetry.render();
    body.push_str(&st.host.borrow());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// 401 with the challenge RFC 6750 asks for.
pub fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "missing or wrong bearer token\n",
    )
        .into_response()
}

async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

/// Serves `/metrics` and `/healthz` on `incoming` (plain or TLS) until `shutdown` resolves
/// (the agent stops it last, after the exporter has drained, so the final counters stay
/// scrapeable meanwhile).
pub async fn serve(
    incoming: Incoming,
    telemetry: Arc<Telemetry>,
    host: watch::Receiver<Arc<str>>,
    gate: Gate,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .with_state(MetricsState {
            telemetry,
            host,
            gate,
        });
    match incoming {
        Incoming::Plain(l) => axum::serve(l, app).with_graceful_shutdown(shutdown).await,
        Incoming::Tls(l) => axum::serve(l, app).with_graceful_shutdown(shutdown).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The handle arrays are indexed by enum discriminants: `ALL` must list them in order.
    #[test]
    fn label_enums_are_in_discriminant_order() {
        assert!(
            Outcome::ALL
                .iter()
                .enumerate()
                .all(|(i, v)| *v as usize == i)
        );
        assert!(
            DropReason::ALL
                .iter()
                .enumerate()
                .all(|(i, v)| *v as usize == i)
        );
        assert!(
            Listener::ALL
                .iter()
                .enumerate()
                .all(|(i, v)| *v as usize == i)
        );
        assert!(
            RelayProtocol::ALL
                .iter()
                .enumerate()
                .all(|(i, v)| *v as usize == i)
        );
        assert!(
            RejectReason::ALL
                .iter()
                .enumerate()
                .all(|(i, v)| *v as usize == i)
        );
        assert!(
            FailureReason::ALL
                .iter()
                .enumerate()
                .all(|(i, v)| *v as usize == i)
        );
        assert!(
            Family::ALL
                .iter()
                .enumerate()
                .all(|(i, v)| *v as usize == i)
        );
        assert!(Signal::ALL.iter().enumerate().all(|(i, v)| v.index() == i));
    }

    #[test]
    fn renders_all_series_with_help() {
        let t = Telemetry::new();
        t.export_request(Signal::Traces, Outcome::RetryableError)
            .increment(2);
        t.dropped(Signal::Metrics, DropReason::SpoolFull)
            .increment(5);
        t.collection_seconds.record(0.002);
        t.upkeep();
        let text = t.render();
        assert!(
            text.contains(r#"redline_agent_export_requests_total{signal="traces",outcome="retryable_error"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"redline_agent_dropped_total{signal="metrics",reason="spool_full"} 5"#)
        );
        assert!(text.contains("# HELP redline_agent_spool_bytes "));
        assert!(text.contains(r#"redline_agent_unauthenticated_total{listener="relay_http"} 0"#));
        assert!(text.contains("redline_agent_collection_seconds_bucket"));
        // Two instances do not share counters.
        let other = Telemetry::new();
        assert!(
            other
                .render()
                .contains(r#"redline_agent_dropped_total{signal="metrics",reason="spool_full"} 0"#)
        );
    }
}
