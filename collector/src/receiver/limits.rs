//! The per-request limits of OTLP ingest, applied to a converted batch before it reaches the
//! store. Pure: the batch, the limits and `now` in, the batch trimmed and the refusals counted
//! out.
//!
//! What each limit does (also in the README, "Limits and bad input"):
//! - more series in one request than `max_series_per_request`: the whole request is refused
//!   (`RESOURCE_EXHAUSTED` / 413), since a sender should split it, and nothing is stored;
//! - a series with more labels than `max_labels_per_series`, or a label name or value longer
//!   than its limit: that series' points are refused, the rest of the request is stored, and
//!   the partial success names the limit;
//! - a sample, span or log record timestamped more than `max_future` ahead of the receive time,
//!   or older than the retention (it would be deleted at once): refused the same way.
//!
//! Out-of-order samples and duplicates are the store's business (`store::writer`), and the
//! cardinality limits too, since only the store knows whether a series is new.

use std::time::Duration;

use super::convert::Dropped;
use crate::store::WriteBatch;

/// The limits, as configured in `limits:`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IngestLimits {
    pub max_series_per_request: usize,
    pub max_labels_per_series: usize,
    pub max_label_name_length: usize,
    pub max_label_value_length: usize,
    /// How far ahead of the receive time a timestamp may be.
    pub max_future: Duration,
    /// How far back a timestamp may be (the retention).
    pub max_past: Duration,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_series_per_request: 100_000,
            max_labels_per_series: 64,
            max_label_name_length: 1024,
            max_label_value_length: 4096,
            max_future: Duration::from_secs(600),
            max_past: Duration::from_secs(15 * 24 * 3600),
        }
    }
}

/// A request refused whole.
#[derive(Debug, PartialEq)]
pub struct RequestTooLarge {
    pub limit: &'static str,
    pub message: String,
}

fn count(limit: &'static str, n: usize) {
    if n > 0 {
        metrics::counter!("redline_collector_limit_exceeded_total", "limit" => limit)
            .increment(n as u64);
    }
}

/// Applies the limits to `batch`, adding what it refuses to `dropped` (which becomes the
/// partial success). `now_ms` is the receive time.
pub fn apply(
    batch: &mut WriteBatch,
    dropped: &mut Dropped,
    limits: &IngestLimits,
    now_ms: i64,
) -> Result<(), RequestTooLarge> {
    if batch.series.len() > limits.max_series_per_request {
        count("max_series_per_request", 1);
        return Err(RequestTooLarge {
            limit: "max_series_per_request",
            message: format!(
                "the request has {} series; at most {} are accepted in one request (limits.max_series_per_request): send smaller batches",
                batch.series.len(),
                limits.max_series_per_request
            ),
        });
    }
    let newest_ms = now_ms.saturating_add(limits.max_future.as_millis() as i64);
    let oldest_ms = now_ms.saturating_sub(limits.max_past.as_millis() as i64);
    let mut first: Option<String> = None;
    batch.series.retain_mut(|series| {
        let broken = if series.labels.len() > limits.max_labels_per_series {
            Some((
                "max_labels_per_series",
                format!(
                    "series {} has {} labels, more than limits.max_labels_per_series ({})",
                    truncated(&series.labels.to_string()),
                    series.labels.len(),
                    limits.max_labels_per_series
                ),
            ))
        } else if let Some((name, _)) = series
            .labels
            .iter()
            .find(|(n, _)| n.len() > limits.max_label_name_length)
        {
            Some((
                "max_label_name_length",
                format!(
                    "label name {} is {} bytes, more than limits.max_label_name_length ({})",
                    truncated(name),
                    name.len(),
                    limits.max_label_name_length
                ),
            ))
        } else if let Some((name, value)) = series
            .labels
            .iter()
            .find(|(_, v)| v.len() > limits.max_label_value_length)
        {
            Some((
                "max_label_value_length",
                format!(
                    "the value of label {name} is {} bytes, more than limits.max_label_value_length ({})",
                    value.len(),
                    limits.max_label_value_length
                ),
            ))
        } else {
            None
        };
        if let Some((limit, message)) = broken {
            let n = series.samples.len();
            dropped.add(limit, n);
            count(limit, n);
            first.get_or_insert(message);
            return false;
        }
        let before = series.samples.len();
        series.samples.retain(|s| s.timestamp_ms <= newest_ms);
        let future = before - series.samples.len();
        if future > 0 {
            dropped.add("too_far_in_future", future);
            count("max_future", future);
            first.get_or_insert_with(|| {
                format!(
                    "{future} sample(s) of {} are timestamped more than limits.max_future ({}) ahead of the receive time",
                    truncated(&series.labels.to_string()),
                    humantime::format_duration(limits.max_future)
                )
            });
        }
        let before = series.samples.len();
        series.samples.retain(|s| s.timestamp_ms >= oldest_ms);
        let old = before - series.samples.len();
        if old > 0 {
            dropped.add("too_old", old);
            count("max_past", old);
            first.get_or_insert_with(|| {
                format!(
                    "{old} sample(s) of {} are older than the retention ({})",
                    truncated(&series.labels.to_string()),
                    humantime::format_duration(limits.max_past)
                )
            });
        }
        !series.samples.is_empty()
    });
    let newest_ns = newest_ms.saturating_mul(1_000_000);
    let oldest_ns = oldest_ms.saturating_mul(1_000_000);
    let spans = batch.spans.len();
    batch
        .spans
        .retain(|s| s.start_ns <= newest_ns && s.end_ns >= oldest_ns);
    let refused = spans - batch.spans.len();
    if refused > 0 {
        dropped.add("span_out_of_bounds", refused);
        count("span_time", refused);
        first.get_or_insert_with(|| {
            format!(
                "{refused} span(s) start more than limits.max_future ahead of the receive time or ended before the retention"
            )
        });
    }
    let logs = batch.logs.len();
    batch
        .logs
        .retain(|l| l.time_ns <= newest_ns && l.time_ns >= oldest_ns);
    let refused = logs - batch.logs.len();
    if refused > 0 {
        dropped.add("log_out_of_bounds", refused);
        count("log_time", refused);
        first.get_or_insert_with(|| {
            format!(
                "{refused} log record(s) are timestamped more than limits.max_future ahead of the receive time or before the retention"
            )
        });
    }
    if let Some(message) = first {
        dropped.note(message);
    }
    Ok(())
}

/// At most 200 characters of a label set or name, for messages.
fn truncated(s: &str) -> String {
    if s.len() <= 200 {
        return s.to_owned();
    }
    let mut end = 200;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Labels, Sample, SeriesSamples};

    fn series(labels: &[(&str, &str)], ts: &[i64]) -> SeriesSamples {
        SeriesSamples {
            labels: Labels::new(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            samples: ts
                .iter()
                .map(|t| Sample {
                    timestamp_ms: *t,
                    value: 1.0,
                })
                .collect(),
        }
    }

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn within_limits_nothing_changes() {
        let mut batch = WriteBatch {
            series: vec![series(
                &[("__name__", "up"), ("job", "a")],
                &[NOW - 1000, NOW],
            )],
            ..WriteBatch::default()
        };
        let mut dropped = Dropped::default();
        apply(&mut batch, &mut dropped, &IngestLimits::default(), NOW).expect("ok");
        assert_eq!(batch.series[0].samples.len(), 2);
        assert_eq!(dropped.total(), 0);
        assert_eq!(dropped.message(), None);
    }

    #[test]
    fn too_many_series_refuses_the_request() {
        let limits = IngestLimits {
            max_series_per_request: 2,
            ..IngestLimits::default()
        };
        let mut batch = WriteBatch {
            series: (0..3)
                .map(|i| series(&[("__name__", "up"), ("i", &i.to_string())], &[NOW]))
                .collect(),
            ..WriteBatch::default()
        };
        let e = apply(&mut batch, &mut Dropped::default(), &limits, NOW).expect_err("refused");
        assert_eq!(e.limit, "max_series_per_request");
        assert!(e.message.contains("3 series; at most 2"), "{}", e.message);
    }

    #[test]
    fn label_limits_refuse_only_the_offending_series() {
        let limits = IngestLimits {
            max_labels_per_series: 3,
            max_label_name_length: 8,
            max_label_value_length: 5,
            ..IngestLimits::default()
        };
        let mut batch = WriteBatch {
            series: vec![
                series(&[("__name__", "ok"), ("a", "1")], &[NOW]),
                series(
                    &[("__name__", "many"), ("a", "1"), ("b", "2"), ("c", "3")],
                    &[NOW, NOW - 1],
                ),
                series(&[("__name__", "name"), ("very_long_name", "1")], &[NOW]),
                series(&[("__name__", "value"), ("a", "123456")], &[NOW]),
            ],
            ..WriteBatch::default()
        };
        let mut dropped = Dropped::default();
        apply(&mut batch, &mut dropped, &limits, NOW).expect("ok");
        assert_eq!(batch.series.len(), 1);
        assert_eq!(batch.series[0].labels.metric_name(), "ok");
        assert_eq!(dropped.by_reason["max_labels_per_series"], 2);
        assert_eq!(dropped.by_reason["max_label_name_length"], 1);
        assert_eq!(dropped.by_reason["max_label_value_length"], 1);
        assert_eq!(dropped.rejected_points(), 4);
        let message = dropped.message().expect("message");
        assert!(
            message.contains("more than limits.max_labels_per_series (3)"),
            "{message}"
        );
    }

    #[test]
    fn timestamps_outside_the_window_are_refused() {
        let limits = IngestLimits {
            max_future: Duration::from_secs(60),
            max_past: Duration::from_secs(3600),
            ..IngestLimits::default()
        };
        let mut batch = WriteBatch {
            series: vec![
                series(
                    &[("__name__", "t")],
                    &[
                        NOW - 3_601_000,
                        NOW - 3_599_000,
                        NOW,
                        NOW + 59_000,
                        NOW + 61_000,
                    ],
                ),
                series(&[("__name__", "future_only")], &[NOW + 3_600_000]),
            ],
            ..WriteBatch::default()
        };
        let mut dropped = Dropped::default();
        apply(&mut batch, &mut dropped, &limits, NOW).expect("ok");
        assert_eq!(batch.series.len(), 1, "a series left without samples goes");
        let kept: Vec<i64> = batch.series[0]
            .samples
            .iter()
            .map(|s| s.timestamp_ms)
            .collect();
        assert_eq!(kept, vec![NOW - 3_599_000, NOW, NOW + 59_000]);
        assert_eq!(dropped.by_reason["too_far_in_future"], 2);
        assert_eq!(dropped.by_reason["too_old"], 1);
    }
}
