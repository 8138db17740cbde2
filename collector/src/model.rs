//! The collector's vocabulary: label sets, matchers, samples, spans and log records as the
//! store keeps them. Everything here is plain data; the receiver builds it from OTLP, the store
//! persists it, and the query and API layers read it back.

use std::fmt;

use regex::Regex;

/// The reserved label holding the metric name, as in Prometheus.
pub const METRIC_NAME: &str = "__name__";

/// A series identity: label pairs sorted by name, names unique. `__name__` is one of them.
///
/// Sorting on construction makes equality, hashing and the canonical text form independent of
/// the order in which attributes arrived over OTLP.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// Builds a label set, sorting by name. When a name repeats, the last value wins, the way a
    /// later OTLP attribute overrides an earlier one with the same key. Empty values are dropped,
    /// because Prometheus treats an empty label value as an absent label.
    pub fn new(mut pairs: Vec<(String, String)>) -> Self {
        // A stable sort keeps arrival order among equal names, so the dedup below keeps the last.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, String)> = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            if let Some(last) = out.last_mut()
                && last.0 == name
            {
                last.1 = value;
                continue;
            }
            out.push((name, value));
        }
        out.retain(|(_, v)| !v.is_empty());
        Labels(out)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    pub fn metric_name(&self) -> &str {
        self.get(METRIC_NAME).unwrap_or("")
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses the canonical text form written by `Display`, used as the series key in the store.
    pub fn parse_canonical(text: &str) -> Option<Labels> {
        let pairs: Vec<(String, String)> = serde_json::from_str(text).ok()?;
        Some(Labels::new(pairs))
    }
}

impl fmt::Display for Labels {
    /// The canonical text form: a JSON array of `[name, value]` pairs in name order. JSON keeps
    /// escaping unambiguous for any UTF-8 value, and the order makes the text a unique key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_string(&self.0) {
            Ok(s) => f.write_str(&s),
            Err(_) => Err(fmt::Error),
        }
    }
}

/// How a label matcher compares, as in PromQL's four matcher kinds.
#[derive(Clone, Debug)]
pub enum MatchOp {
    Equal,
    NotEqual,
    /// Fully anchored regular expression.
    Regex(Regex),
    NotRegex(Regex),
}

/// One label matcher of a selector.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    /// The literal operand (the pattern text for regex matchers), kept for messages.
    pub value: String,
}

impl Matcher {
    pub fn equal(name: &str, value: &str) -> Self {
        Matcher {
            name: name.to_owned(),
            op: MatchOp::Equal,
            value: value.to_owned(),
        }
    }

    /// Builds a regex matcher, anchoring the pattern the way PromQL does. Tests only: queries
    /// reuse the regex promql-parser compiled (`query::plan::matchers`).
    #[cfg(test)]
    pub fn regex(name: &str, pattern: &str, negate: bool) -> Result<Self, regex::Error> {
        let re = Regex::new(&format!("^(?:{pattern})$"))?;
        Ok(Matcher {
            name: name.to_owned(),
            op: if negate {
                MatchOp::NotRegex(re)
            } else {
                MatchOp::Regex(re)
            },
            value: pattern.to_owned(),
        })
    }

    /// Whether a label value (empty when the label is absent) satisfies this matcher.
    pub fn matches(&self, value: &str) -> bool {
        match &self.op {
            MatchOp::Equal => self.value == value,
            MatchOp::NotEqual => self.value != value,
            MatchOp::Regex(re) => re.is_match(value),
            MatchOp::NotRegex(re) => !re.is_match(value),
        }
    }

    /// True when the matcher also matches series that lack the label entirely.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }
}

/// One sample: milliseconds since the Unix epoch (Prometheus' resolution) and a value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub timestamp_ms: i64,
    pub value: f64,
}

/// The metric kind recorded with a series, kept so reads and later detectors know whether to
/// treat values as counters (rates, reset handling) or gauges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricKind {
    Gauge,
    Counter,
    /// A non-monotonic sum: stored as a gauge, as Prometheus does.
    UpDownCounter,
    Histogram,
    Summary,
}

impl MetricKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Gauge => "gauge",
            MetricKind::Counter => "counter",
            MetricKind::UpDownCounter => "gauge",
            MetricKind::Histogram => "histogram",
            MetricKind::Summary => "summary",
        }
    }
}

/// Whether a sum's points are running totals or per-interval increments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Temporality {
    Cumulative,
    Delta,
    Unspecified,
}

impl Temporality {
    pub fn as_str(self) -> &'static str {
        match self {
            Temporality::Cumulative => "cumulative",
            Temporality::Delta => "delta",
            Temporality::Unspecified => "unspecified",
        }
    }
}

/// Metadata of a metric family (by translated name), as Prometheus' metadata API reports it,
/// plus the OpenTelemetry name and temporality it arrived with.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricMeta {
    pub name: String,
    pub otel_name: String,
    pub kind: MetricKind,
    pub temporality: Temporality,
    pub unit: String,
    pub help: String,
}

/// Samples of one series in one write.
#[derive(Clone, Debug)]
pub struct SeriesSamples {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// A span as stored: ids as lowercase hex, times in nanoseconds since the epoch, attributes and
/// events as JSON text (they are only ever read back whole).
#[derive(Clone, Debug, PartialEq)]
pub struct SpanRecord {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub service: String,
    pub name: String,
    pub kind: i32,
    pub start_ns: i64,
    pub end_ns: i64,
    pub status_code: i32,
    pub status_message: String,
    /// JSON object of the span's attributes.
    pub attributes: String,
    /// JSON object of the resource's attributes.
    pub resource: String,
    /// JSON array of events: `{"time_ns":…, "name":…, "attributes":{…}}`.
    pub events: String,
    /// JSON array of links: `{"trace_id":…, "span_id":…}`.
    pub links: String,
    pub scope: String,
}

/// A log record as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRecord {
    pub time_ns: i64,
    pub observed_ns: i64,
    pub service: String,
    pub severity_number: i32,
    pub severity_text: String,
    pub body: String,
    pub attributes: String,
    pub resource: String,
    pub trace_id: String,
    pub span_id: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
    }

    #[test]
    fn labels_sort_dedup_and_drop_empty() {
        let labels = l(&[("b", "1"), ("a", "x"), ("b", "2"), ("c", "")]);
        assert_eq!(
            labels.iter().collect::<Vec<_>>(),
            vec![("a", "x"), ("b", "2")]
        );
        assert_eq!(labels.get("b"), Some("2"));
        assert_eq!(labels.get("c"), None);
    }

    #[test]
    fn canonical_form_round_trips_any_text() {
        let labels = l(&[("__name__", "m"), ("q", "a\"b,c=}\n{ü")]);
        let text = labels.to_string();
        assert_eq!(Labels::parse_canonical(&text).unwrap(), labels);
    }

    #[test]
    fn matchers_follow_promql_semantics() {
        assert!(Matcher::regex("a", "fo.", false).unwrap().matches("foo"));
        assert!(!Matcher::regex("a", "fo", false).unwrap().matches("foo"));
        assert!(Matcher::regex("a", "fo", true).unwrap().matches("foo"));
        assert!(Matcher::equal("a", "").matches_empty());
        assert!(!Matcher::equal("a", "x").matches_empty());
    }
}
