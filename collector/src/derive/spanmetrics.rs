//! Trace-derived RED metrics, as the OpenTelemetry Collector's spanmetrics connector makes
//! them: per service, span name, kind and status, a call counter and a duration histogram,
//! cumulative, named the way Prometheus names the connector's output
//! (`traces_span_metrics_calls_total`, `traces_span_metrics_duration_seconds_{bucket,sum,count}`
//! with `service_name`, `span_name`, `span_kind`, `status_code`).
//!
//! Pure: `observe` counts committed spans, `series(now_ms)` renders the cumulative values at
//! `now_ms` as samples for the store. Owned by the derive task. The number of distinct keys is
//! bounded; spans beyond it are counted in `overflow` and not aggregated.

use std::collections::BTreeMap;

use crate::model::{Labels, Sample, SeriesSamples};
use crate::store::SpanSummary;

/// The connector's default histogram buckets, in seconds.
pub const BUCKETS: [f64; 16] = [
    0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.4, 2.0, 5.0, 10.0, 15.0,
];

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Key {
    service: String,
    name: String,
    kind: i32,
    status: i32,
}

#[derive(Clone, Debug, Default)]
struct Aggregate {
    calls: u64,
    /// Cumulative count per bucket of `BUCKETS` (not yet cumulative across buckets).
    buckets: [u64; BUCKETS.len()],
    sum_seconds: f64,
}

/// The aggregation state.
#[derive(Debug)]
pub struct SpanMetrics {
    keys: BTreeMap<Key, Aggregate>,
    max_keys: usize,
    /// Spans not aggregated because the key limit was reached.
    pub overflow: u64,
}

fn kind_name(kind: i32) -> &'static str {
    match kind {
        1 => "SPAN_KIND_INTERNAL",
        2 => "SPAN_KIND_SERVER",
        3 => "SPAN_KIND_CLIENT",
        4 => "SPAN_KIND_PRODUCER",
        5 => "SPAN_KIND_CONSUMER",
        _ => "SPAN_KIND_UNSPECIFIED",
    }
}

fn status_name(code: i32) -> &'static str {
    match code {
        1 => "STATUS_CODE_OK",
        2 => "STATUS_CODE_ERROR",
        _ => "STATUS_CODE_UNSET",
    }
}

impl SpanMetrics {
    pub fn new(max_keys: usize) -> SpanMetrics {
        SpanMetrics {
            keys: BTreeMap::new(),
            max_keys,
            overflow: 0,
        }
    }

    pub fn observe(&mut self, span: &SpanSummary) {
        let key = Key {
            service: span.service.clone(),
            name: span.name.clone(),
            kind: span.kind,
            status: span.status_code,
        };
        if !self.keys.contains_key(&key) && self.keys.len() >= self.max_keys {
            self.overflow += 1;
            return;
        }
        let seconds = (span.end_ns - span.start_ns).max(0) as f64 / 1e9;
        let agg = self.keys.entry(key).or_default();
        agg.calls += 1;
        agg.sum_seconds += seconds;
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            agg.buckets[i] += 1;
        }
    }

    /// The cumulative series at `now_ms`: one calls counter and one histogram per key.
    pub fn series(&self, now_ms: i64) -> Vec<SeriesSamples> {
        let mut out = Vec::with_capacity(self.keys.len() * (BUCKETS.len() + 4));
        let sample = |v: f64| {
            vec![Sample {
                timestamp_ms: now_ms,
                value: v,
            }]
        };
        for (key, agg) in &self.keys {
            let base = |name: &str, extra: Option<(&str, String)>| {
                let mut pairs = vec![
                    ("__name__".to_owned(), name.to_owned()),
                    ("service_name".to_owned(), key.service.clone()),
                    ("span_name".to_owned(), key.name.clone()),
                    ("span_kind".to_owned(), kind_name(key.kind).to_owned()),
                    ("status_code".to_owned(), status_name(key.status).to_owned()),
                    ("job".to_owned(), key.service.clone()),
                ];
                if let Some((k, v)) = extra {
                    pairs.push((k.to_owned(), v));
                }
                Labels::new(pairs)
            };
            out.push(SeriesSamples {
                labels: base("traces_span_metrics_calls_total", None),
                samples: sample(agg.calls as f64),
            });
            let mut cumulative = 0u64;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += agg.buckets[i];
                out.push(SeriesSamples {
                    labels: base(
                        "traces_span_metrics_duration_seconds_bucket",
                        Some(("le", format_bound(*bound))),
                    ),
                    samples: sample(cumulative as f64),
                });
            }
            out.push(SeriesSamples {
                labels: base(
                    "traces_span_metrics_duration_seconds_bucket",
                    Some(("le", "+Inf".to_owned())),
                ),
                samples: sample(agg.calls as f64),
            });
            out.push(SeriesSamples {
                labels: base("traces_span_metrics_duration_seconds_sum", None),
                samples: sample(agg.sum_seconds),
            });
            out.push(SeriesSamples {
                labels: base("traces_span_metrics_duration_seconds_count", None),
                samples: sample(agg.calls as f64),
            });
        }
        out
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A bucket bound as Prometheus writes `le` (shortest float form: `0.002`, `1`, `15`).
fn format_bound(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(service: &str, name: &str, status: i32, ms: i64) -> SpanSummary {
        SpanSummary {
            service: service.into(),
            name: name.into(),
            kind: 2,
            status_code: status,
            start_ns: 1_000_000_000,
            end_ns: 1_000_000_000 + ms * 1_000_000,
        }
    }

    fn value(series: &[SeriesSamples], name: &str, le: Option<&str>, status: &str) -> f64 {
        series
            .iter()
            .find(|s| {
                s.labels.metric_name() == name
                    && s.labels.get("le") == le
                    && s.labels.get("status_code") == Some(status)
            })
            .map(|s| s.samples[0].value)
            .unwrap_or(f64::NAN)
    }

    #[test]
    fn counts_calls_errors_and_durations_per_key() {
        let mut m = SpanMetrics::new(100);
        for ms in [1, 3, 30, 700] {
            m.observe(&span("api", "GET /", 0, ms));
        }
        m.observe(&span("api", "GET /", 2, 2500));
        let s = m.series(5000);
        let ok = "STATUS_CODE_UNSET";
        assert_eq!(value(&s, "traces_span_metrics_calls_total", None, ok), 4.0);
        assert_eq!(
            value(
                &s,
                "traces_span_metrics_calls_total",
                None,
                "STATUS_CODE_ERROR"
            ),
            1.0
        );
        let bucket = "traces_span_metrics_duration_seconds_bucket";
        assert_eq!(value(&s, bucket, Some("0.002"), ok), 1.0);
        assert_eq!(value(&s, bucket, Some("0.004"), ok), 2.0);
        assert_eq!(value(&s, bucket, Some("0.05"), ok), 3.0);
        assert_eq!(value(&s, bucket, Some("0.8"), ok), 4.0);
        assert_eq!(value(&s, bucket, Some("+Inf"), ok), 4.0);
        assert_eq!(value(&s, bucket, Some("5"), "STATUS_CODE_ERROR"), 1.0);
        assert_eq!(value(&s, bucket, Some("2"), "STATUS_CODE_ERROR"), 0.0);
        let sum = value(&s, "traces_span_metrics_duration_seconds_sum", None, ok);
        assert!((sum - 0.734).abs() < 1e-9, "{sum}");
        assert!(s.iter().all(|x| x.samples[0].timestamp_ms == 5000));
        assert!(
            s.iter()
                .all(|x| x.labels.get("span_kind") == Some("SPAN_KIND_SERVER"))
        );
    }

    #[test]
    fn key_limit_bounds_memory_and_counts_overflow() {
        let mut m = SpanMetrics::new(2);
        for i in 0..5 {
            m.observe(&span("api", &format!("op{i}"), 0, 1));
        }
        m.observe(&span("api", "op0", 0, 1));
        assert_eq!(m.len(), 2);
        assert_eq!(m.overflow, 3);
    }
}
