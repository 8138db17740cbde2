//! Derived series: anomaly scores of every scored series, the per-host anomaly rate,
//! trace-derived RED metrics and capacity forecasts, written back to the store as ordinary
//! series so plain PromQL rules can use them.
//!
//! Lifecycle: `Derive::run` taps the store's commits (`Store::tap_commits`: samples of the
//! series the configured selectors pick, plus span summaries) over a bounded channel the
//! writer never waits on (a full channel drops that commit's copy, counted). Before it serves,
//! it warms each scored series' detector by replaying the last `warmup` of its samples from the
//! store, so a restart does not start the detectors cold. Each committed sample of a scored
//! series is scored at once (`detect::detector`, no look-ahead); the scores are written back in
//! batches every `flush_interval`. Every `interval` it also writes the span metrics, the
//! per-host anomaly rate and the forecasts. The task is the only owner of all this state; it
//! ends when `stop` fires, after writing what it holds.
//!
//! Output names:
//! - `anomaly_score{metric="<scored metric>", <the series' labels>}` in [0, 1];
//! - `anomaly_rate{host_name}`: the share of the host's scored series (those with samples within
//!   `rate_window`) that scored at least `threshold` within `rate_window`. The detector scores
//!   the onset of an anomaly and damps what follows (one incident, one alarm), so "anomalous in
//!   the last minutes" is the right reading of a series, not its latest score;
//! - `traces_span_metrics_calls_total`, `traces_span_metrics_duration_seconds_*` (`spanmetrics`);
//! - `forecast_seconds_to_full{metric=…, …}` (`forecast`).
//!
//! Counters (`*_total`) are scored as per-second rates between consecutive samples; a counter
//! reset skips one point.

pub mod forecast;
pub mod spanmetrics;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::DetectConfig;
use crate::detect::detector::{Detector, Params};
use crate::model::{Labels, Matcher, Sample, SeriesSamples};
use crate::store::{Committed, Store, WriteBatch};

/// Output metric names; never scored themselves.
pub const ANOMALY_SCORE: &str = "anomaly_score";
pub const ANOMALY_RATE: &str = "anomaly_rate";
pub const FORECAST: &str = "forecast_seconds_to_full";

/// A forecast series with no sample for this long is dropped.
const STALE_MS: i64 = 10 * 60_000;
/// A detector whose series had no sample for this long is dropped.
const IDLE_DETECTOR_MS: i64 = 24 * 3_600_000;

/// Series whose forecast is computed, with the capacity they fill up to.
pub const FORECAST_SERIES: [(&str, f64); 2] = [
    ("system_filesystem_utilization_ratio", 1.0),
    ("system_memory_utilization_ratio", 1.0),
];

/// The scoring state of one series.
struct Scored {
    detector: Detector,
    /// The previous raw sample of a counter, for rates.
    previous: Option<Sample>,
    counter: bool,
    /// When the series last scored at or above the threshold (ms; 0 = never).
    last_anomalous_ms: i64,
    last_score_ms: i64,
}

/// Compiled selectors: a series is scored when any selector matches it.
#[derive(Clone, Debug)]
pub struct Selectors(Vec<Vec<Matcher>>);

impl Selectors {
    pub fn parse(texts: &[String]) -> Result<Selectors, String> {
        texts
            .iter()
            .map(|t| crate::query::selector_matchers(t).map_err(|e| format!("{t:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()
            .map(Selectors)
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        let name = labels.metric_name();
        if name == ANOMALY_SCORE || name == ANOMALY_RATE || name == FORECAST {
            return false;
        }
        self.0.iter().any(|matchers| {
            matchers
                .iter()
                .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
        })
    }
}

fn forecast_capacity(labels: &Labels) -> Option<f64> {
    let name = labels.metric_name();
    FORECAST_SERIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| *c)
        // Memory fills up through the `used` state only.
        .filter(|_| labels.get("state").is_none_or(|s| s == "used"))
}

/// The source series of a derived one (the inverse of `derived_labels`).
fn source_labels(derived: &Labels) -> Labels {
    let name = derived.get("metric").unwrap_or("").to_owned();
    let mut pairs: Vec<(String, String)> = derived
        .iter()
        .filter(|(k, _)| *k != "__name__" && *k != "metric")
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    pairs.push(("__name__".to_owned(), name));
    Labels::new(pairs)
}

/// Labels of a derived series: `__name__` replaced by `name`, the source metric in `metric`.
fn derived_labels(name: &str, source: &Labels) -> Labels {
    let mut pairs: Vec<(String, String)> = source
        .iter()
        .filter(|(k, _)| *k != "__name__" && *k != "metric")
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    pairs.push(("__name__".to_owned(), name.to_owned()));
    pairs.push(("metric".to_owned(), source.metric_name().to_owned()));
    Labels::new(pairs)
}

pub struct Derive {
    store: Store,
    config: DetectConfig,
    selectors: Selectors,
    clock: Clock,
    params: Params,
    scored: HashMap<Arc<Labels>, Scored>,
    trends: HashMap<Arc<Labels>, forecast::Trend>,
    spans: spanmetrics::SpanMetrics,
    pending: Vec<SeriesSamples>,
    /// Told when a series' score rises to the threshold, for incident timelines.
    incidents: Option<crate::incident::manager::IncidentHandle>,
}

impl Derive {
    pub fn new(store: Store, config: DetectConfig, clock: Clock) -> Result<Derive, String> {
        let selectors = Selectors::parse(&config.series)?;
        Ok(Derive {
            store,
            spans: spanmetrics::SpanMetrics::new(config.max_span_keys),
            config,
            selectors,
            clock,
            params: Params::default(),
            scored: HashMap::new(),
            trends: HashMap::new(),
            pending: Vec::new(),
            incidents: None,
        })
    }

    /// Anomaly peaks (a score rising to `threshold`) go to the incident manager.
    pub fn set_incidents(&mut self, incidents: crate::incident::manager::IncidentHandle) {
        self.incidents = Some(incidents);
    }

    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let selectors = self.selectors.clone();
        let filter: crate::store::SeriesFilter = Arc::new(move |labels: &Labels| {
            selectors.matches(labels) || forecast_capacity(labels).is_some()
        });
        let mut commits = match self.store.tap_commits(filter, 256).await {
            Ok(rx) => rx,
            Err(e) => {
                tracing::error!(error = %e, "derived series disabled: cannot tap the store");
                return;
            }
        };
        self.warm_up().await;
        let mut flush = tokio::time::interval(self.config.flush_interval);
        let mut emit = tokio::time::interval(self.config.interval);
        for i in [&mut flush, &mut emit] {
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i.reset();
        }
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                committed = commits.recv() => match committed {
                    Some(c) => self.on_commit(c),
                    None => break,
                },
                _ = flush.tick() => self.write_pending().await,
                _ = emit.tick() => {
                    self.emit_periodic();
                    self.write_pending().await;
                }
            }
        }
        self.write_pending().await;
        tracing::debug!("derive task stopped");
    }

    /// Replays the recent history of every scored series into its detector. Samples newer
    /// than the series' last stored score get their scores written: they arrived while the
    /// collector was down, or between the tap's start and this replay (the tap skips what the
    /// replay has seen), and would otherwise never be scored.
    async fn warm_up(&mut self) {
        let now = self.clock.now_ms();
        let start = now - self.config.warmup.as_millis() as i64;
        let mut replayed = 0usize;
        let mut last_scored: HashMap<Labels, i64> = HashMap::new();
        let score_matchers = vec![crate::model::Matcher::equal("__name__", ANOMALY_SCORE)];
        match self
            .store
            .select(score_matchers, start, now, usize::MAX, usize::MAX)
            .await
        {
            Ok(series) => {
                for data in series {
                    if let Some(last) = data.samples.last() {
                        last_scored.insert(source_labels(&data.labels), last.timestamp_ms);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read the stored anomaly scores"),
        }
        for matchers in self.selectors.0.clone() {
            match self
                .store
                .select(matchers, start, now, self.config.max_series, usize::MAX)
                .await
            {
                Ok(series) => {
                    for data in series {
                        replayed += data.samples.len();
                        let emit_after = last_scored
                            .get(data.labels.as_ref())
                            .copied()
                            .unwrap_or(i64::MIN);
                        self.score_series(data.labels, &data.samples, emit_after);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "detector warm-up skipped a selector"),
            }
        }
        tracing::info!(
            series = self.scored.len(),
            samples = replayed,
            "anomaly detectors warmed up"
        );
    }

    fn on_commit(&mut self, committed: Committed) {
        for span in &committed.spans {
            self.spans.observe(span);
        }
        for (labels, samples) in committed.series {
            if let Some(_capacity) = forecast_capacity(&labels) {
                let trend = self.trends.entry(labels.clone()).or_default();
                for s in &samples {
                    trend.observe(s.timestamp_ms, s.value);
                }
            }
            if self.selectors.matches(&labels) {
                self.score_series(labels, &samples, i64::MIN);
            }
        }
    }

    /// Scores samples of one series in order, and queues the scores of those after
    /// `emit_after` (ms) for writing (`i64::MIN`: all of them).
    fn score_series(&mut self, labels: Arc<Labels>, samples: &[Sample], emit_after: i64) {
        if !self.scored.contains_key(&labels) {
            if self.scored.len() >= self.config.max_series {
                metrics::counter!("redline_collector_derive_dropped_total", "reason" => "max_series")
                    .increment(samples.len() as u64);
                return;
            }
            let counter = labels.metric_name().ends_with("_total");
            self.scored.insert(
                labels.clone(),
                Scored {
                    detector: Detector::new(&self.params),
                    previous: None,
                    counter,
                    last_anomalous_ms: 0,
                    last_score_ms: 0,
                },
            );
        }
        let threshold = self.config.threshold;
        let Some(state) = self.scored.get_mut(&labels) else {
            return;
        };
        let mut scores = Vec::new();
        let mut peaks = Vec::new();
        for s in samples {
            // Samples the detector has seen (the warm-up replay and the tap overlap at start).
            if s.timestamp_ms <= state.last_score_ms {
                continue;
            }
            let input = if state.counter {
                let previous = state.previous.replace(*s);
                match previous {
                    Some(p) if s.timestamp_ms > p.timestamp_ms && s.value >= p.value => {
                        (s.value - p.value) / ((s.timestamp_ms - p.timestamp_ms) as f64 / 1000.0)
                    }
                    // First point, a reset or a duplicate: nothing to score.
                    _ => continue,
                }
            } else {
                s.value
            };
            if !input.is_finite() {
                continue;
            }
            if state.detector.needs_training() {
                // Cheap enough inline at the retraining cadence (every few hundred samples
                // of a series); the score path itself never trains.
                state.detector.train();
            }
            let score = state.detector.observe(s.timestamp_ms, input);
            if score >= threshold {
                // A rising edge: the previous scored sample was below the threshold.
                if (state.last_anomalous_ms < state.last_score_ms || state.last_score_ms == 0)
                    && s.timestamp_ms > emit_after
                {
                    peaks.push((s.timestamp_ms, score));
                }
                state.last_anomalous_ms = s.timestamp_ms;
            }
            state.last_score_ms = s.timestamp_ms;
            if s.timestamp_ms > emit_after {
                scores.push(Sample {
                    timestamp_ms: s.timestamp_ms,
                    value: score,
                });
            }
        }
        metrics::counter!("redline_collector_anomaly_points_scored_total")
            .increment(scores.len() as u64);
        if let Some(incidents) = &self.incidents {
            for (at, score) in peaks {
                incidents.anomaly(crate::incident::manager::AnomalyPeak {
                    labels: labels
                        .iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect(),
                    score,
                    at,
                });
            }
        }
        if !scores.is_empty() {
            self.pending.push(SeriesSamples {
                labels: derived_labels(ANOMALY_SCORE, &labels),
                samples: scores,
            });
        }
    }

    /// Span metrics, anomaly rates per host and forecasts at now.
    fn emit_periodic(&mut self) {
        let now = self.clock.now_ms();
        self.pending.extend(self.spans.series(now));
        let window = self.config.rate_window.as_millis() as i64;
        let mut hosts: HashMap<&str, (usize, usize)> = HashMap::new();
        for (labels, state) in &self.scored {
            if now - state.last_score_ms > window {
                continue;
            }
            let Some(host) = labels.get("host_name") else {
                continue;
            };
            let entry = hosts.entry(host).or_default();
            entry.0 += 1;
            if state.last_anomalous_ms > 0 && now - state.last_anomalous_ms <= window {
                entry.1 += 1;
            }
        }
        for (host, (total, anomalous)) in hosts {
            self.pending.push(SeriesSamples {
                labels: Labels::new(vec![
                    ("__name__".to_owned(), ANOMALY_RATE.to_owned()),
                    ("host_name".to_owned(), host.to_owned()),
                ]),
                samples: vec![Sample {
                    timestamp_ms: now,
                    value: anomalous as f64 / total as f64,
                }],
            });
        }
        // Series that stopped (an unmounted filesystem, a gone host) get no forecast and are
        // forgotten, rather than extrapolated to "full".
        self.trends
            .retain(|_, t| t.last_ms().is_some_and(|last| now - last <= STALE_MS));
        // Detectors of series idle for long are dropped too, so churned series do not hold the
        // `max_series` budget forever.
        self.scored
            .retain(|_, s| s.last_score_ms == 0 || now - s.last_score_ms <= IDLE_DETECTOR_MS);
        for (labels, trend) in &self.trends {
            let Some(capacity) = forecast_capacity(labels) else {
                continue;
            };
            self.pending.push(SeriesSamples {
                labels: derived_labels(FORECAST, labels),
                samples: vec![Sample {
                    timestamp_ms: now,
                    value: trend.seconds_to(capacity, now),
                }],
            });
        }
        metrics::gauge!("redline_collector_anomaly_series").set(self.scored.len() as f64);
    }

    async fn write_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let batch = WriteBatch {
            series: std::mem::take(&mut self.pending),
            ..WriteBatch::default()
        };
        let points = batch.sample_count();
        if let Err(e) = self.store.write(batch).await {
            metrics::counter!("redline_collector_derive_dropped_total", "reason" => "store")
                .increment(points as u64);
            tracing::warn!(error = %e, points, "derived samples not written");
        }
    }
}

/// The series scored by default: the agent's host metrics and the trace-derived RED metrics.
pub fn default_selectors() -> Vec<String> {
    [
        "system_cpu_utilization_ratio",
        "system_cpu_load_average_1m",
        "system_memory_utilization_ratio",
        "system_paging_usage_bytes",
        "system_filesystem_utilization_ratio",
        "system_disk_io_bytes_total",
        "system_disk_operations_total",
        "system_network_io_bytes_total",
        "system_network_errors_total",
        "system_processes_count",
        "traces_span_metrics_calls_total",
        "traces_span_metrics_duration_seconds_sum",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}
