//! Pure evaluation of rules: what one rule makes of its query result at `now`.
//!
//! The caller evaluates the rule's expression (the collector's rule manager through
//! `query::Engine::instant_expr`, the unit-test runner through `query::evaluate_instant` over
//! a [`MemoryStorage`]) and hands the `Value` here:
//!
//! - [`record_samples`]: a recording rule's output series (`record` as `__name__`, group then
//!   rule labels on top of the result's);
//! - [`alert_elements`]: an alerting rule's result as `alert::state::Element`s (labels and
//!   annotations templated with `$labels`, `$value`, `$externalLabels`, `$externalURL` and
//!   the caller's `query`, see [`TemplateContext`]), for `alert::state::step`;
//!   [`eval_alerting`] does both steps plus the group limit and returns the
//!   `ALERTS`/`ALERTS_FOR_STATE` series ([`alerts_series`]).
//!
//! [`eval_group_in_memory`] drives a whole group over a [`MemoryStorage`] the way Prometheus'
//! `Group.Eval` drives it over its TSDB: rules in order, each rule's output (recorded series,
//! `ALERTS`) appended at once so later rules see it, and a staleness marker written for every
//! series a rule produced at its previous evaluation but not at this one.
//!
//! Semantics are Prometheus 2.42's (`rules/recording.go`, `rules/alerting.go`,
//! `rules/manager.go`), with Prometheus 3's group labels. Nothing here does I/O or reads the
//! clock: a template's `query` is a callback the caller passes in, evaluated at the
//! evaluation time (here over the in-memory series; the rule manager's goes to the query
//! engine). Group labels are applied literally (Prometheus 3 also expands templates in them).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use super::file::{Rule, RuleGroup, RuleKind};
use super::template::{Data, QueryFn, QuerySample, Template};
use crate::alert::state::{self, Alerts, Element, State, Transition};
use crate::model::{Labels, METRIC_NAME, Matcher, Sample};
use crate::query::{EvalOptions, QueryError, SeriesSource, Value, evaluate_instant};
use crate::store::SeriesData;

/// The metric Prometheus writes for every pending or firing alert.
pub const ALERTS_METRIC: &str = "ALERTS";
/// The metric Prometheus writes with each active alert's `active_at` (seconds).
pub const ALERTS_FOR_STATE_METRIC: &str = "ALERTS_FOR_STATE";

/// Why one evaluation of a rule failed; the messages are Prometheus'.
#[derive(Debug, thiserror::Error)]
pub enum RuleEvalError {
    #[error("vector contains metrics with the same labelset after applying rule labels")]
    DuplicateRecordLabels,
    #[error("vector contains metrics with the same labelset after applying alert labels")]
    DuplicateAlertLabels,
    /// A recording rule produced more series than its group's `limit`.
    #[error("exceeded limit of {limit} with {count} series")]
    SeriesLimit { limit: usize, count: usize },
    /// An alerting rule has more pending and firing alerts than its group's `limit`; as in
    /// Prometheus, the caller drops all of the rule's alerts.
    #[error("exceeded limit of {limit} with {count} alerts")]
    AlertLimit { limit: usize, count: usize },
    #[error("rule result is not a vector or scalar")]
    NotVectorOrScalar,
    /// A recording rule was passed to an alerting function or the other way round (a bug in
    /// the caller).
    #[error("rule {0:?} is not of the kind this function evaluates")]
    WrongKind(String),
    #[error(transparent)]
    Query(#[from] QueryError),
}

/// The elements of an instant result: a vector as is, a scalar as one element without labels.
fn elements(value: Value) -> Result<Vec<(Arc<Labels>, f64)>, RuleEvalError> {
    match value {
        Value::Vector(v) => Ok(v.into_iter().map(|(l, s)| (l, s.value)).collect()),
        Value::Scalar(s) => Ok(vec![(Arc::new(Labels::default()), s.value)]),
        Value::Matrix(_) | Value::String(..) => Err(RuleEvalError::NotVectorOrScalar),
    }
}

fn owned(pairs: &BTreeMap<String, String>) -> impl Iterator<Item = (String, String)> + '_ {
    pairs.iter().map(|(k, v)| (k.clone(), v.clone()))
}

/// A recording rule's output: each element of `value` named `record`, with the group's labels
/// then the rule's on top of its own (an empty value removes a label), at `now_ms`.
pub fn record_samples(
    rule: &Rule,
    group: &RuleGroup,
    value: Value,
    now_ms: i64,
) -> Result<Vec<(Labels, Sample)>, RuleEvalError> {
    let RuleKind::Recording { name, labels } = &rule.kind else {
        return Err(RuleEvalError::WrongKind(rule.name().to_owned()));
    };
    let elements = elements(value)?;
    let mut out = Vec::with_capacity(elements.len());
    let mut seen = HashSet::with_capacity(elements.len());
    for (result_labels, v) in elements {
        let mut pairs: Vec<(String, String)> = result_labels
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        pairs.push((METRIC_NAME.to_owned(), name.clone()));
        pairs.extend(owned(&group.labels));
        pairs.extend(owned(labels));
        let series = Labels::new(pairs);
        if !seen.insert(series.clone()) {
            return Err(RuleEvalError::DuplicateRecordLabels);
        }
        out.push((
            series,
            Sample {
                timestamp_ms: now_ms,
                value: v,
            },
        ));
    }
    if group.limit > 0 && out.len() > group.limit {
        return Err(RuleEvalError::SeriesLimit {
            limit: group.limit,
            count: out.len(),
        });
    }
    Ok(out)
}

/// What an alerting rule's templates see besides each element of its result.
#[derive(Clone, Copy)]
pub struct TemplateContext<'a> {
    /// `$externalLabels`.
    pub external_labels: &'a BTreeMap<String, String>,
    /// `$externalURL`, and what `externalURL` and `pathPrefix` read.
    pub external_url: &'a str,
    /// Evaluates `query` at the evaluation time; without it `query` renders as an error.
    pub query: Option<&'a QueryFn<'a>>,
}

/// A query result as the samples a template's `query` returns, as Prometheus'
/// `EngineQueryFunc` makes them: a vector as is, a scalar as one sample without labels.
pub fn query_samples(value: Value) -> Result<Vec<QuerySample>, String> {
    let labels = |l: &Labels| -> BTreeMap<String, String> {
        l.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    match value {
        Value::Vector(v) => Ok(v
            .into_iter()
            .map(|(l, s)| QuerySample {
                labels: labels(&l),
                value: s.value,
            })
            .collect()),
        Value::Scalar(s) => Ok(vec![QuerySample {
            labels: BTreeMap::new(),
            value: s.value,
        }]),
        Value::Matrix(_) | Value::String(..) => {
            Err("rule result is not a vector or scalar".to_owned())
        }
    }
}

/// Whether any label or annotation template of an alerting rule calls `query`.
pub fn templates_use_query(rule: &Rule) -> bool {
    match &rule.kind {
        RuleKind::Alerting {
            labels,
            annotations,
            ..
        } => labels
            .values()
            .chain(annotations.values())
            .any(|t| t.uses_function("query")),
        RuleKind::Recording { .. } => false,
    }
}

/// Renders a template; a failure becomes the text Prometheus puts in its place.
fn expand(template: &Template, data: &Data<'_>, alert: &str) -> String {
    template.render(data).unwrap_or_else(|e| {
        let name = format!("__alert_{alert}");
        format!(
            "<error expanding template: error executing template {name}: {}>",
            template.exec_error_text(&name, &e)
        )
    })
}

/// An alerting rule's result as alert-state elements: labels are the result's without
/// `__name__`, then the group's, then the rule's (templated; an empty expansion removes the
/// label), then `alertname`; annotations are templated. Templates see the result's labels
/// (with `__name__`) as `$labels`, its value as `$value`, and `ctx`.
pub fn alert_elements(
    rule: &Rule,
    group: &RuleGroup,
    value: Value,
    ctx: &TemplateContext<'_>,
) -> Result<Vec<Element>, RuleEvalError> {
    let RuleKind::Alerting {
        name,
        labels,
        annotations,
        ..
    } = &rule.kind
    else {
        return Err(RuleEvalError::WrongKind(rule.name().to_owned()));
    };
    let elements = elements(value)?;
    let mut out = Vec::with_capacity(elements.len());
    let mut seen = HashSet::with_capacity(elements.len());
    for (result_labels, v) in elements {
        let template_labels: BTreeMap<String, String> = result_labels
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let data = Data {
            labels: &template_labels,
            external_labels: ctx.external_labels,
            external_url: ctx.external_url,
            value: v,
            query: ctx.query,
        };
        let mut pairs: Vec<(String, String)> = result_labels
            .iter()
            .filter(|(k, _)| *k != METRIC_NAME)
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        pairs.extend(owned(&group.labels));
        pairs.extend(
            labels
                .iter()
                .map(|(k, t)| (k.clone(), expand(t, &data, name))),
        );
        pairs.push(("alertname".to_owned(), name.clone()));
        let alert_labels = Labels::new(pairs);
        if !seen.insert(alert_labels.clone()) {
            return Err(RuleEvalError::DuplicateAlertLabels);
        }
        out.push(Element {
            labels: alert_labels,
            annotations: annotations
                .iter()
                .map(|(k, t)| (k.clone(), expand(t, &data, name)))
                .collect(),
            value: v,
        });
    }
    Ok(out)
}

/// The `ALERTS` and `ALERTS_FOR_STATE` samples for the active (pending or firing) alerts of a
/// rule at `now_ms`: `ALERTS{alertname, alertstate, labels…} 1` and
/// `ALERTS_FOR_STATE{alertname, labels…}` = when the alert became active, in whole seconds.
pub fn alerts_series(alerts: &Alerts, now_ms: i64) -> Vec<(Labels, Sample)> {
    let mut out = Vec::with_capacity(alerts.len() * 2);
    for alert in alerts.values() {
        if alert.state == State::Inactive {
            continue;
        }
        let base = || {
            alert
                .labels
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect::<Vec<_>>()
        };
        let mut pairs = base();
        pairs.push((METRIC_NAME.to_owned(), ALERTS_METRIC.to_owned()));
        pairs.push(("alertstate".to_owned(), alert.state.as_str().to_owned()));
        out.push((
            Labels::new(pairs),
            Sample {
                timestamp_ms: now_ms,
                value: 1.0,
            },
        ));
        let mut pairs = base();
        pairs.push((METRIC_NAME.to_owned(), ALERTS_FOR_STATE_METRIC.to_owned()));
        out.push((
            Labels::new(pairs),
            Sample {
                timestamp_ms: now_ms,
                value: alert.active_at.div_euclid(1000) as f64,
            },
        ));
    }
    out
}

/// One evaluation of an alerting rule.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertingOutcome {
    /// The rule's alerts after this evaluation.
    pub alerts: Alerts,
    pub transitions: Vec<Transition>,
    /// `ALERTS` and `ALERTS_FOR_STATE` samples to write back.
    pub series: Vec<(Labels, Sample)>,
}

/// Evaluates an alerting rule's result against its previous alerts: [`alert_elements`], then
/// `alert::state::step`, then the group's `limit` on active alerts, then [`alerts_series`].
/// On an error the previous alerts stand, except for [`RuleEvalError::AlertLimit`], after
/// which Prometheus drops all of the rule's alerts (so should the caller).
pub fn eval_alerting(
    rule: &Rule,
    group: &RuleGroup,
    value: Value,
    alerts: &Alerts,
    now_ms: i64,
    ctx: &TemplateContext<'_>,
) -> Result<AlertingOutcome, RuleEvalError> {
    let elements = alert_elements(rule, group, value, ctx)?;
    let (alerts, transitions) = state::step(alerts.clone(), elements, now_ms, rule.timing());
    let active = alerts
        .values()
        .filter(|a| a.state != State::Inactive)
        .count();
    if group.limit > 0 && active > group.limit {
        return Err(RuleEvalError::AlertLimit {
            limit: group.limit,
            count: active,
        });
    }
    let series = alerts_series(&alerts, now_ms);
    Ok(AlertingOutcome {
        alerts,
        transitions,
        series,
    })
}

/// Series in memory that rule outputs can be appended to: the unit-test runner's storage,
/// standing in for Prometheus' TSDB.
#[derive(Clone, Debug, Default)]
pub struct MemoryStorage {
    /// Each series' labels (shared with query results) and samples, sorted by time.
    series: BTreeMap<Labels, (Arc<Labels>, Vec<Sample>)>,
    /// Samples after this time are invisible to queries: promtool loads input samples only
    /// up to the evaluation time.
    visible_until: Option<i64>,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a sample; one at the same time as an existing sample replaces it.
    pub fn append(&mut self, labels: Labels, sample: Sample) {
        let entry = self
            .series
            .entry(labels)
            .or_insert_with_key(|l| (Arc::new(l.clone()), Vec::new()));
        let samples = &mut entry.1;
        match samples.last() {
            Some(last) if last.timestamp_ms >= sample.timestamp_ms => {
                match samples.binary_search_by_key(&sample.timestamp_ms, |s| s.timestamp_ms) {
                    Ok(i) => samples[i] = sample,
                    Err(i) => samples.insert(i, sample),
                }
            }
            _ => samples.push(sample),
        }
    }

    /// Hides samples after `t` from queries (`None` shows everything).
    pub fn set_visible_until(&mut self, t: Option<i64>) {
        self.visible_until = t;
    }

    /// Every series with its samples, in label order.
    pub fn series(&self) -> impl Iterator<Item = (&Labels, &[Sample])> {
        self.series.iter().map(|(l, (_, s))| (l, s.as_slice()))
    }
}

impl SeriesSource for MemoryStorage {
    fn select(&self, matchers: &[Matcher]) -> Result<Arc<Vec<SeriesData>>, QueryError> {
        let until = self.visible_until.unwrap_or(i64::MAX);
        Ok(Arc::new(
            self.series
                .iter()
                .filter(|(labels, _)| {
                    matchers
                        .iter()
                        .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
                })
                .map(|(_, (labels, samples))| {
                    let end = samples.partition_point(|s| s.timestamp_ms <= until);
                    SeriesData {
                        labels: labels.clone(),
                        samples: samples[..end].to_vec(),
                    }
                })
                .filter(|s| !s.samples.is_empty())
                .collect(),
        ))
    }
}

/// What [`eval_group_in_memory`] keeps between evaluations of one group.
#[derive(Clone, Debug, Default)]
pub struct GroupState {
    /// Per rule, in group order: the alerts of an alerting rule (empty for recording rules).
    pub alerts: Vec<Alerts>,
    /// Per rule: the series it wrote at its last successful evaluation, which get a staleness
    /// marker when the rule stops producing them.
    written: Vec<BTreeSet<Labels>>,
}

/// A rule whose evaluation failed.
#[derive(Debug)]
pub struct RuleFailure {
    /// The rule's 0-based position in its group.
    pub index: usize,
    pub rule: String,
    pub error: RuleEvalError,
}

/// Evaluates every rule of `group` at `t_ms` over `storage`, as Prometheus' `Group.Eval`:
/// in order, each rule's output appended to `storage` before the next rule runs, staleness
/// markers for series a rule no longer produces. A failing rule is reported and the others
/// still run; its alerts and outputs stay as they were (no staleness markers either).
/// Templates' `query` evaluates over `storage` at `t_ms`, as promtool's does.
pub fn eval_group_in_memory(
    group: &RuleGroup,
    storage: &mut MemoryStorage,
    t_ms: i64,
    state: &mut GroupState,
    external_labels: &BTreeMap<String, String>,
    external_url: &str,
    options: &EvalOptions,
) -> Vec<RuleFailure> {
    state.alerts.resize_with(group.rules.len(), Alerts::new);
    state.written.resize_with(group.rules.len(), BTreeSet::new);
    let mut failures = Vec::new();
    for (index, rule) in group.rules.iter().enumerate() {
        let output = {
            let source: &MemoryStorage = storage;
            let query = |q: &str| -> Result<Vec<QuerySample>, String> {
                let expr = crate::query::parse(q).map_err(|e| e.to_string())?;
                let value =
                    evaluate_instant(&expr, t_ms, source, options).map_err(|e| e.to_string())?;
                query_samples(value)
            };
            let ctx = TemplateContext {
                external_labels,
                external_url,
                query: Some(&query),
            };
            evaluate_instant(&rule.expr, t_ms, source, options)
                .map_err(RuleEvalError::from)
                .and_then(|value| match &rule.kind {
                    RuleKind::Recording { .. } => record_samples(rule, group, value, t_ms),
                    RuleKind::Alerting { .. } => {
                        match eval_alerting(rule, group, value, &state.alerts[index], t_ms, &ctx) {
                            Ok(outcome) => {
                                state.alerts[index] = outcome.alerts;
                                Ok(outcome.series)
                            }
                            Err(e) => {
                                if matches!(e, RuleEvalError::AlertLimit { .. }) {
                                    state.alerts[index].clear();
                                }
                                Err(e)
                            }
                        }
                    }
                })
        };
        let samples = match output {
            Ok(samples) => samples,
            Err(error) => {
                failures.push(RuleFailure {
                    index,
                    rule: rule.name().to_owned(),
                    error,
                });
                continue;
            }
        };
        let mut written = BTreeSet::new();
        for (labels, sample) in samples {
            written.insert(labels.clone());
            storage.append(labels, sample);
        }
        for gone in state.written[index].difference(&written) {
            storage.append(
                gone.clone(),
                Sample {
                    timestamp_ms: t_ms,
                    value: super::series::stale_nan(),
                },
            );
        }
        state.written[index] = written;
    }
    failures
}

#[cfg(test)]
mod tests;
