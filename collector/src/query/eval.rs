//! The pure evaluator: PromQL over in-memory series, with Prometheus 2.x (2.42) semantics.
//!
//! Entry points: [`evaluate_instant`] and [`evaluate_range`]. They read series only through a
//! [`SeriesSource`]: `Engine` hands them what it fetched from the store, and the rule unit-test
//! runner hands them a [`MemorySource`] built from `input_series`. Nothing here does I/O or
//! reads the clock; a timeout arrives as the `cancel` flag of [`EvalOptions`].
//!
//! Evaluation is step by step: a range query evaluates the expression at every step and joins
//! the per-step vectors into series, which gives the same answer as Prometheus' vectorised
//! evaluation because every PromQL operation is defined per step. Subquery steps are cached so
//! overlapping windows of a range query evaluate each inner step once.
//!
//! Selection rules (Prometheus 2.x): an instant selector takes the newest sample in the closed
//! interval `[t - lookback, t]` unless that sample is a staleness marker; a range selector takes
//! the samples in `[t - range, t]` minus staleness markers; `offset` and `@` move `t`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use promql_parser::parser::value::ValueType;
use promql_parser::parser::{Expr, SubqueryExpr, VectorSelector};

use super::plan::{duration_ms, matchers, ref_time};
use super::{DEFAULT_SUBQUERY_STEP_MS, LOOKBACK_MS, QueryError, Value, is_stale};
use crate::model::{Labels, METRIC_NAME, Matcher, Sample};
use crate::store::SeriesData;

/// Where the evaluator reads series from.
pub trait SeriesSource {
    /// Every series matching all `matchers`, sorted by labels, each with its samples sorted by
    /// time. The samples must cover the time ranges the query needs (more is harmless).
    fn select(&self, matchers: &[Matcher]) -> Result<Arc<Vec<SeriesData>>, QueryError>;
}

/// An in-memory [`SeriesSource`]: the rule unit-test runner's input series, or any test data.
#[derive(Clone, Debug, Default)]
pub struct MemorySource {
    series: Vec<SeriesData>,
}

impl MemorySource {
    /// Takes series in any order; sorts series by labels and samples by time.
    pub fn new(mut series: Vec<SeriesData>) -> Self {
        for s in &mut series {
            s.samples.sort_by_key(|x| x.timestamp_ms);
        }
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        MemorySource { series }
    }
}

impl SeriesSource for MemorySource {
    fn select(&self, matchers: &[Matcher]) -> Result<Arc<Vec<SeriesData>>, QueryError> {
        Ok(Arc::new(
            self.series
                .iter()
                .filter(|s| {
                    matchers
                        .iter()
                        .all(|m| m.matches(s.labels.get(&m.name).unwrap_or("")))
                })
                .cloned()
                .collect(),
        ))
    }
}

/// Settings of one evaluation.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// How far back an instant selector looks for a sample (Prometheus: 5 minutes).
    pub lookback_ms: i64,
    /// The step of subqueries written without one (Prometheus: the evaluation interval).
    pub subquery_step_ms: i64,
    /// The most samples the evaluation may hold in its results and subquery caches.
    pub max_samples: usize,
    /// Set by the caller to stop the evaluation (timeout); checked at every step.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            lookback_ms: LOOKBACK_MS,
            subquery_step_ms: DEFAULT_SUBQUERY_STEP_MS,
            max_samples: 50_000_000,
            cancel: None,
        }
    }
}

/// Evaluates `expr` at `t_ms`, as Prometheus' instant query does.
pub fn evaluate_instant(
    expr: &Expr,
    t_ms: i64,
    source: &dyn SeriesSource,
    options: &EvalOptions,
) -> Result<Value, QueryError> {
    let mut ev = Evaluator::new(source, options, t_ms, t_ms);
    Ok(match ev.eval(expr, t_ms)? {
        Val::Scalar(value) => Value::Scalar(Sample {
            timestamp_ms: t_ms,
            value,
        }),
        Val::Vector(v) => Value::Vector(
            v.into_iter()
                .map(|e| {
                    (
                        e.labels,
                        Sample {
                            timestamp_ms: t_ms,
                            value: e.value,
                        },
                    )
                })
                .collect(),
        ),
        Val::Matrix(mut m) => {
            m.sort_by(|a, b| a.labels.cmp(&b.labels));
            Value::Matrix(m.into_iter().map(|s| (s.labels, s.samples)).collect())
        }
        Val::Str(s) => Value::String(t_ms, s),
    })
}

/// Refuses expressions a range query cannot return, as Prometheus does.
pub(crate) fn check_range_type(expr: &Expr) -> Result<(), QueryError> {
    let name = match expr.value_type() {
        ValueType::Matrix => "range vector",
        ValueType::String => "string",
        ValueType::Scalar | ValueType::Vector => return Ok(()),
    };
    Err(QueryError::BadData(format!(
        "invalid expression type \"{name}\" for range query, must be Scalar or instant Vector"
    )))
}

/// Evaluates `expr` at `start`, `start + step`, … up to `end` (all ms), as Prometheus' range
/// query does: a matrix sorted by labels (a scalar becomes one series without labels).
pub fn evaluate_range(
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
    source: &dyn SeriesSource,
    options: &EvalOptions,
) -> Result<Value, QueryError> {
    if step <= 0 {
        return Err(QueryError::BadData(
            "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
        ));
    }
    check_range_type(expr)?;
    let mut ev = Evaluator::new(source, options, start, end);
    let mut index: HashMap<Arc<Labels>, usize> = HashMap::new();
    let mut out: Vec<(Arc<Labels>, Vec<Sample>)> = Vec::new();
    let mut points = 0usize;
    let mut t = start;
    while t <= end {
        ev.check_cancel()?;
        let step_result = match ev.eval(expr, t)? {
            Val::Scalar(v) => vec![Elem {
                labels: empty_labels(),
                value: v,
            }],
            Val::Vector(v) => v,
            Val::Matrix(_) | Val::Str(_) => {
                return Err(QueryError::Internal(
                    "range query step did not yield a vector".into(),
                ));
            }
        };
        points += step_result.len();
        if points + ev.cached_points > options.max_samples {
            return Err(too_many_samples());
        }
        for e in step_result {
            let sample = Sample {
                timestamp_ms: t,
                value: e.value,
            };
            match index.get(&e.labels) {
                Some(&i) => out[i].1.push(sample),
                None => {
                    index.insert(e.labels.clone(), out.len());
                    out.push((e.labels, vec![sample]));
                }
            }
        }
        t = match t.checked_add(step) {
            Some(next) => next,
            None => break,
        };
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Value::Matrix(out))
}

pub(crate) fn too_many_samples() -> QueryError {
    QueryError::Execution(
        "query processing would load too many samples into memory in query execution".into(),
    )
}

/// One element of an instant vector.
#[derive(Clone, Debug)]
pub(crate) struct Elem {
    pub labels: Arc<Labels>,
    pub value: f64,
}

/// One series of a range vector.
#[derive(Clone, Debug)]
pub(crate) struct RangeSeries {
    pub labels: Arc<Labels>,
    pub samples: Vec<Sample>,
}

/// An intermediate value.
#[derive(Clone, Debug)]
pub(crate) enum Val {
    Scalar(f64),
    Vector(Vec<Elem>),
    Matrix(Vec<RangeSeries>),
    Str(String),
}

/// The time window of a range-vector argument at one step, and the range the expression asked
/// for (`rate` divides by it).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub start: i64,
    pub end: i64,
    pub range_ms: i64,
}

/// One series of a range-vector argument, borrowed.
pub(crate) struct SeriesView<'a> {
    pub labels: &'a Arc<Labels>,
    pub samples: &'a [Sample],
}

/// Where a range-vector argument's samples live: a selector's series (windowed lazily, so the
/// common case borrows instead of copying) or a subquery's computed points.
pub(crate) enum RangeData {
    Selected(Arc<Vec<SeriesData>>),
    Computed(Vec<RangeSeries>),
}

/// A range-vector argument at one step.
pub(crate) struct RangeArg {
    pub data: RangeData,
    pub window: Window,
}

impl RangeArg {
    /// Calls `f` for every series with samples in the window (staleness markers removed).
    pub(crate) fn for_each(
        &self,
        mut f: impl FnMut(SeriesView<'_>) -> Result<(), QueryError>,
    ) -> Result<(), QueryError> {
        match &self.data {
            RangeData::Selected(all) => {
                let mut buf: Vec<Sample> = Vec::new();
                for s in all.iter() {
                    let slice = window_slice(&s.samples, self.window.start, self.window.end);
                    let samples: &[Sample] = if slice.iter().any(is_stale) {
                        buf.clear();
                        buf.extend(slice.iter().filter(|x| !is_stale(x)));
                        &buf
                    } else {
                        slice
                    };
                    if !samples.is_empty() {
                        f(SeriesView {
                            labels: &s.labels,
                            samples,
                        })?;
                    }
                }
            }
            RangeData::Computed(series) => {
                for s in series {
                    f(SeriesView {
                        labels: &s.labels,
                        samples: &s.samples,
                    })?;
                }
            }
        }
        Ok(())
    }

    /// Whether no series has a sample in the window.
    pub(crate) fn is_empty(&self) -> bool {
        let mut empty = true;
        let _ = self.for_each(|_| {
            empty = false;
            Ok(())
        });
        empty
    }

    /// The series with their samples, owned.
    pub(crate) fn into_series(self) -> Vec<RangeSeries> {
        if let RangeData::Computed(series) = self.data {
            return series;
        }
        let mut out = Vec::new();
        let _ = self.for_each(|s| {
            out.push(RangeSeries {
                labels: s.labels.clone(),
                samples: s.samples.to_vec(),
            });
            Ok(())
        });
        out
    }
}

pub(crate) fn empty_labels() -> Arc<Labels> {
    Arc::new(Labels::default())
}

/// Builds a label set from pairs (empty values are dropped, names sorted).
pub(crate) fn labels_from<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Labels {
    Labels::new(pairs.map(|(n, v)| (n.to_owned(), v.to_owned())).collect())
}

/// The labels without the metric name (shared when there is none).
pub(crate) fn drop_name(labels: &Arc<Labels>) -> Arc<Labels> {
    if labels.get(METRIC_NAME).is_none() {
        return labels.clone();
    }
    Arc::new(labels_from(
        labels.iter().filter(|(n, _)| *n != METRIC_NAME),
    ))
}

/// Prometheus' text form of a label set: `{a="1", b="2"}`.
pub(crate) fn fmt_labels(labels: &Labels) -> String {
    let parts: Vec<String> = labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", parts.join(", "))
}

/// Prometheus refuses a vector holding two elements with the same labels.
pub(crate) fn check_duplicates(v: &[Elem]) -> Result<(), QueryError> {
    if v.len() < 2 {
        return Ok(());
    }
    let mut seen = HashSet::with_capacity(v.len());
    for e in v {
        if !seen.insert(&*e.labels) {
            return Err(QueryError::Execution(
                "vector cannot contain metrics with the same labelset".into(),
            ));
        }
    }
    Ok(())
}

pub(crate) fn unwrap_parens(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(p) => unwrap_parens(&p.expr),
        e => e,
    }
}

/// The newest sample at or before `t`, if within the lookback and not a staleness marker.
fn sample_at(samples: &[Sample], t: i64, lookback: i64) -> Option<Sample> {
    let end = samples.partition_point(|s| s.timestamp_ms <= t);
    let s = samples[..end].last()?;
    (s.timestamp_ms >= t - lookback && !is_stale(s)).then_some(*s)
}

/// The samples in `[start, end]`.
fn window_slice(samples: &[Sample], start: i64, end: i64) -> &[Sample] {
    let from = samples.partition_point(|s| s.timestamp_ms < start);
    let to = samples.partition_point(|s| s.timestamp_ms <= end);
    &samples[from..to.max(from)]
}

/// The state of one evaluation: the source, caches, and the query's start and end (which
/// `@ start()` and `@ end()` refer to).
pub(crate) struct Evaluator<'a> {
    source: &'a dyn SeriesSource,
    options: &'a EvalOptions,
    pub start: i64,
    pub end: i64,
    /// Selected series per selector node (keyed by the node's address; the AST is borrowed for
    /// the whole evaluation, so addresses are stable).
    selected: HashMap<usize, Arc<Vec<SeriesData>>>,
    /// Inner results of subqueries per (node, inner step time).
    subqueries: HashMap<(usize, i64), Arc<Vec<Elem>>>,
    /// Points held in `subqueries`, counted against `max_samples`.
    cached_points: usize,
    /// `label_replace` patterns compiled so far (`None`: refused): a range query calls it once
    /// per step, with the same literal pattern.
    pub(crate) label_replace_regexes: HashMap<String, Option<regex::Regex>>,
}

impl<'a> Evaluator<'a> {
    pub(crate) fn new(
        source: &'a dyn SeriesSource,
        options: &'a EvalOptions,
        start: i64,
        end: i64,
    ) -> Self {
        Evaluator {
            source,
            options,
            start,
            end,
            selected: HashMap::new(),
            subqueries: HashMap::new(),
            cached_points: 0,
            label_replace_regexes: HashMap::new(),
        }
    }

    pub(crate) fn check_cancel(&self) -> Result<(), QueryError> {
        match &self.options.cancel {
            Some(flag) if flag.load(Ordering::Relaxed) => {
                Err(QueryError::Timeout("expression evaluation"))
            }
            _ => Ok(()),
        }
    }

    fn series(&mut self, vs: &VectorSelector) -> Result<Arc<Vec<SeriesData>>, QueryError> {
        let key = vs as *const VectorSelector as usize;
        if let Some(s) = self.selected.get(&key) {
            return Ok(s.clone());
        }
        let s = self.source.select(&matchers(vs)?)?;
        self.selected.insert(key, s.clone());
        Ok(s)
    }

    /// An instant selector at `t`: each series' selected sample with its own timestamp.
    pub(crate) fn instant_selector(
        &mut self,
        vs: &VectorSelector,
        t: i64,
    ) -> Result<Vec<(Arc<Labels>, Sample)>, QueryError> {
        let at = ref_time(&vs.at, &vs.offset, t, self.start, self.end);
        let lookback = self.options.lookback_ms;
        Ok(self
            .series(vs)?
            .iter()
            .filter_map(|s| sample_at(&s.samples, at, lookback).map(|x| (s.labels.clone(), x)))
            .collect())
    }

    /// A range-vector argument (range selector or subquery, in parentheses or not) at `t`.
    pub(crate) fn range_arg(&mut self, expr: &Expr, t: i64) -> Result<RangeArg, QueryError> {
        match unwrap_parens(expr) {
            Expr::MatrixSelector(ms) => {
                let end = ref_time(&ms.vs.at, &ms.vs.offset, t, self.start, self.end);
                let range_ms = duration_ms(ms.range);
                Ok(RangeArg {
                    data: RangeData::Selected(self.series(&ms.vs)?),
                    window: Window {
                        start: end - range_ms,
                        end,
                        range_ms,
                    },
                })
            }
            Expr::Subquery(sq) => {
                let end = ref_time(&sq.at, &sq.offset, t, self.start, self.end);
                let range_ms = duration_ms(sq.range);
                Ok(RangeArg {
                    data: RangeData::Computed(self.subquery(sq, t)?),
                    window: Window {
                        start: end - range_ms,
                        end,
                        range_ms,
                    },
                })
            }
            other => Err(QueryError::Execution(format!(
                "expected a range vector, got {other}"
            ))),
        }
    }

    /// A subquery at `t`: the inner expression at every multiple of the step in
    /// `[ref - range, ref]`, as Prometheus aligns them.
    fn subquery(&mut self, sq: &SubqueryExpr, t: i64) -> Result<Vec<RangeSeries>, QueryError> {
        let step = sq
            .step
            .map(duration_ms)
            .filter(|s| *s > 0)
            .unwrap_or(self.options.subquery_step_ms)
            .max(1);
        let end = ref_time(&sq.at, &sq.offset, t, self.start, self.end);
        let lo = end - duration_ms(sq.range);
        // Go's integer division truncates toward zero, as Rust's does.
        let mut tau = step * (lo / step);
        if tau < lo {
            tau += step;
        }
        let node = sq as *const SubqueryExpr as usize;
        let mut out: Vec<RangeSeries> = Vec::new();
        let mut index: HashMap<Arc<Labels>, usize> = HashMap::new();
        while tau <= end {
            self.check_cancel()?;
            let elems = match self.subqueries.get(&(node, tau)) {
                Some(e) => e.clone(),
                None => {
                    let v = match self.eval(&sq.expr, tau)? {
                        Val::Vector(v) => v,
                        Val::Scalar(value) => vec![Elem {
                            labels: empty_labels(),
                            value,
                        }],
                        _ => {
                            return Err(QueryError::Execution(
                                "subquery is only allowed on instant vector".into(),
                            ));
                        }
                    };
                    self.cached_points += v.len();
                    if self.cached_points > self.options.max_samples {
                        return Err(too_many_samples());
                    }
                    let v = Arc::new(v);
                    self.subqueries.insert((node, tau), v.clone());
                    v
                }
            };
            for e in elems.iter() {
                let sample = Sample {
                    timestamp_ms: tau,
                    value: e.value,
                };
                match index.get(&e.labels) {
                    Some(&i) => out[i].samples.push(sample),
                    None => {
                        index.insert(e.labels.clone(), out.len());
                        out.push(RangeSeries {
                            labels: e.labels.clone(),
                            samples: vec![sample],
                        });
                    }
                }
            }
            tau += step;
        }
        Ok(out)
    }

    pub(crate) fn scalar_arg(&mut self, expr: &Expr, t: i64) -> Result<f64, QueryError> {
        match self.eval(expr, t)? {
            Val::Scalar(v) => Ok(v),
            other => Err(type_error("scalar", &other)),
        }
    }

    pub(crate) fn vector_arg(&mut self, expr: &Expr, t: i64) -> Result<Vec<Elem>, QueryError> {
        match self.eval(expr, t)? {
            Val::Vector(v) => Ok(v),
            other => Err(type_error("instant vector", &other)),
        }
    }

    pub(crate) fn string_arg(&mut self, expr: &Expr, t: i64) -> Result<String, QueryError> {
        match self.eval(expr, t)? {
            Val::Str(s) => Ok(s),
            other => Err(type_error("string", &other)),
        }
    }

    /// Evaluates `expr` at `t`.
    pub(crate) fn eval(&mut self, expr: &Expr, t: i64) -> Result<Val, QueryError> {
        match expr {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Val::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::Unary(u) => match self.eval(&u.expr, t)? {
                Val::Scalar(v) => Ok(Val::Scalar(-v)),
                Val::Vector(v) => {
                    let out: Vec<Elem> = v
                        .into_iter()
                        .map(|e| Elem {
                            labels: drop_name(&e.labels),
                            value: -e.value,
                        })
                        .collect();
                    check_duplicates(&out)?;
                    Ok(Val::Vector(out))
                }
                other => Err(type_error("scalar or instant vector", &other)),
            },
            Expr::VectorSelector(vs) => Ok(Val::Vector(
                self.instant_selector(vs, t)?
                    .into_iter()
                    .map(|(labels, s)| Elem {
                        labels,
                        value: s.value,
                    })
                    .collect(),
            )),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                Ok(Val::Matrix(self.range_arg(expr, t)?.into_series()))
            }
            Expr::Call(c) => super::functions::call(self, c, t),
            Expr::Aggregate(a) => super::aggregate::eval(self, a, t),
            Expr::Binary(b) => super::binary::eval(self, b, t),
            Expr::Extension(_) => Err(QueryError::Unsupported(
                "extension expressions are not supported".into(),
            )),
        }
    }
}

fn type_error(expected: &str, got: &Val) -> QueryError {
    let got = match got {
        Val::Scalar(_) => "scalar",
        Val::Vector(_) => "instant vector",
        Val::Matrix(_) => "range vector",
        Val::Str(_) => "string",
    };
    QueryError::Execution(format!("expected {expected}, got {got}"))
}
