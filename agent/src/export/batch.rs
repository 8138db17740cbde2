//! The unit of work that flows from the inputs (host collection, relay) through the export
//! queue to the OTLP client: a [`Batch`] holds one OTLP request ([`Payload`]) plus what the queue
//! needs to account for it (its [`Origin`], item count and encoded size).

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric;
use prost::Message;

/// An OTLP signal; also the `signal` label of the agent's own metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    Metrics,
    Traces,
    Logs,
}

impl Signal {
    /// Every signal, in label order.
    pub const ALL: [Signal; 3] = [Signal::Metrics, Signal::Traces, Signal::Logs];

    /// Label value and OTLP/HTTP path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Metrics => "metrics",
            Signal::Traces => "traces",
            Signal::Logs => "logs",
        }
    }

    /// Index into per-signal arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One OTLP export request.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Metrics(ExportMetricsServiceRequest),
    Traces(ExportTraceServiceRequest),
    Logs(ExportLogsServiceRequest),
}

impl Payload {
    pub fn signal(&self) -> Signal {
        match self {
            Payload::Metrics(_) => Signal::Metrics,
            Payload::Traces(_) => Signal::Traces,
            Payload::Logs(_) => Signal::Logs,
        }
    }

    /// Data points, spans or log records in the request.
    pub fn items(&self) -> usize {
        match self {
            Payload::Metrics(r) => metric_points(r),
            Payload::Traces(r) => r
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .map(|ss| ss.spans.len())
                .sum(),
            Payload::Logs(r) => r
                .resource_logs
                .iter()
                .flat_map(|rl| &rl.scope_logs)
                .map(|sl| sl.log_records.len())
                .sum(),
        }
    }

    /// Size of the protobuf encoding, used for the queue's byte bound.
    pub fn encoded_len(&self) -> usize {
        match self {
            Payload::Metrics(r) => r.encoded_len(),
            Payload::Traces(r) => r.encoded_len(),
            Payload::Logs(r) => r.encoded_len(),
        }
    }

    /// Appends `other`'s resources to `self` when both are the same signal (protobuf merge
    /// semantics for the repeated top-level field); gives `other` back otherwise.
    pub fn merge(&mut self, other: Payload) -> Result<(), Payload> {
        match (self, other) {
            (Payload::Metrics(a), Payload::Metrics(b)) => {
                a.resource_metrics.extend(b.resource_metrics)
            }
            (Payload::Traces(a), Payload::Traces(b)) => a.resource_spans.extend(b.resource_spans),
            (Payload::Logs(a), Payload::Logs(b)) => a.resource_logs.extend(b.resource_logs),
            (_, other) => return Err(other),
        }
        Ok(())
    }
}

/// Number of data points in a metrics request (what OTLP's `rejected_data_points` counts).
pub fn metric_points(r: &ExportMetricsServiceRequest) -> usize {
    r.resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .map(|m| match &m.data {
            Some(metric::Data::Gauge(g)) => g.data_points.len(),
            Some(metric::Data::Sum(s)) => s.data_points.len(),
            Some(metric::Data::Histogram(h)) => h.data_points.len(),
            Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(metric::Data::Summary(s)) => s.data_points.len(),
            None => 0,
        })
        .sum()
}

/// Who produced a batch, which decides what happens when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The agent's own host metrics: never blocks anyone; when the queue is full the oldest
    /// host batch is evicted (a newer sample supersedes it).
    Host,
    /// Data relayed for a local application: rejected when the queue is full, so the
    /// application keeps it and retries (its OTLP exporter honours UNAVAILABLE / 503).
    Relay,
}

/// A payload with the figures the queue accounts with.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub payload: Payload,
    pub origin: Origin,
    /// Cached [`Payload::items`].
    pub items: usize,
    /// Cached [`Payload::encoded_len`].
    pub bytes: usize,
}

impl Batch {
    /// Wraps a payload, computing its item count and encoded size once.
    pub fn new(payload: Payload, origin: Origin) -> Batch {
        let items = payload.items();
        let bytes = payload.encoded_len();
        Batch {
            payload,
            origin,
            items,
            bytes,
        }
    }

    pub fn signal(&self) -> Signal {
        self.payload.signal()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    pub(crate) fn spans(n: usize) -> Payload {
        Payload::Traces(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span::default(); n],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
    }

    #[test]
    fn items_and_merge() {
        let mut a = spans(2);
        assert_eq!(a.items(), 2);
        a.merge(spans(3)).unwrap();
        assert_eq!(a.items(), 5);
        let m = Payload::Metrics(ExportMetricsServiceRequest::default());
        assert!(a.merge(m).is_err());
        assert!(a.encoded_len() > 0);
    }
}
