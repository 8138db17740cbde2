//! Query evaluation over the store: the boundary the HTTP API and the rule evaluator call.
//!
//! A query goes through three steps, and only the middle one does I/O:
//!
//! 1. `parse` (promql-parser, with Prometheus-style `line:col` positions added to its errors).
//! 2. `plan::plan` walks the AST and lists every selector with the time range it needs (offset,
//!    `@`, range, the 5-minute lookback, subquery windows and, for range queries, the whole
//!    `[start, end]`); `Engine` fetches exactly those from the store, within the configured
//!    series and sample limits.
//! 3. `eval` evaluates the expression over the fetched, in-memory data, step by step, with
//!    Prometheus 2.x semantics. It does no I/O and never reads the clock: times are parameters
//!    and the timeout reaches it only as a cancellation flag. The rule unit-test runner calls
//!    [`evaluate_instant`] / [`evaluate_range`] directly with a [`MemorySource`].
//!
//! Supported: everything PromQL 2.x (Prometheus 2.42) offers over float samples, including
//! subqueries; native-histogram functions, Prometheus 3 additions (`limitk`, `fill`, …) and
//! `or` inside selector braces are refused with an error naming the construct.

mod aggregate;
mod binary;
mod eval;
mod functions;
mod parse;
mod plan;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use promql_parser::parser::Expr;

use crate::config::QueryLimits;
use crate::model::{Labels, Matcher, Sample};
use crate::receiver::convert::STALE_NAN_BITS;
use crate::store::{SeriesData, Store, StoreError};

pub use eval::{EvalOptions, MemorySource, SeriesSource, evaluate_instant, evaluate_range};
pub use parse::parse;

/// The default lookback of instant selectors, as in Prometheus.
pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// The step of subqueries written without one (`x[1h:]`): Prometheus' default global
/// evaluation interval.
pub const DEFAULT_SUBQUERY_STEP_MS: i64 = 60 * 1000;

/// The most points a range query may return per series, as Prometheus' API enforces.
const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// A query result, shaped like Prometheus' `resultType`s.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Vector(Vec<(Arc<Labels>, Sample)>),
    Matrix(Vec<(Arc<Labels>, Vec<Sample>)>),
    Scalar(Sample),
    String(i64, String),
}

/// Query errors, with the Prometheus API `errorType` each maps to.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Invalid PromQL, with its `line:col` position (`1:5: parse error: …`).
    #[error("{0}")]
    Parse(String),
    /// A construct this engine does not evaluate; the message names it.
    #[error("{0}")]
    Unsupported(String),
    /// Bad request parameters or a selector the parser accepts but Prometheus refuses.
    #[error("{0}")]
    BadData(String),
    /// The query is valid but cannot be evaluated over this data (vector matching conflicts,
    /// duplicate label sets, invalid function arguments, too many samples in memory).
    #[error("{0}")]
    Execution(String),
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl QueryError {
    /// Prometheus' `errorType` for this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            QueryError::Parse(_) | QueryError::BadData(_) => "bad_data",
            QueryError::Unsupported(_) | QueryError::Execution(_) => "execution",
            QueryError::Timeout(_) => "timeout",
            QueryError::Store(
                StoreError::TooManySeries { .. } | StoreError::TooManySamples { .. },
            ) => "execution",
            QueryError::Store(_) | QueryError::Internal(_) => "internal",
        }
    }
}

/// Evaluates queries against a store within configured limits.
#[derive(Clone)]
pub struct Engine {
    store: Store,
    /// Series and samples one query may load, and how long it may run (the API's `timeout`
    /// parameter can only shorten it). A `watch` so a configuration reload changes them for
    /// the queries that start after it.
    limits: tokio::sync::watch::Receiver<QueryLimits>,
}

pub(crate) fn is_stale(s: &Sample) -> bool {
    s.value.to_bits() == STALE_NAN_BITS
}

/// Parses a selector such as a `match[]` parameter (`up{job="x"}`) into store matchers.
pub fn selector_matchers(text: &str) -> Result<Vec<Matcher>, String> {
    parse::precheck(text).map_err(|e| format!("invalid parameter \"match[]\": {e}"))?;
    match promql_parser::parser::parse(text) {
        Ok(Expr::VectorSelector(vs)) => plan::matchers(&vs).map_err(|e| e.to_string()),
        Ok(_) => Err(format!(
            "invalid parameter \"match[]\": {text:?} is not a series selector"
        )),
        Err(e) => Err(format!("invalid parameter \"match[]\": {e}")),
    }
}

/// The evaluation window of one query: an instant (`start == end`) or a range with a step.
#[derive(Clone, Copy, Debug)]
struct Window {
    start: i64,
    end: i64,
    step: Option<i64>,
}

/// The selectors' data, fetched from the store for one query, keyed by matcher set.
struct Fetched {
    by_key: HashMap<String, Arc<Vec<SeriesData>>>,
}

impl SeriesSource for Fetched {
    fn select(&self, matchers: &[Matcher]) -> Result<Arc<Vec<SeriesData>>, QueryError> {
        self.by_key
            .get(&plan::matcher_key(matchers))
            .cloned()
            .ok_or_else(|| QueryError::Internal("a selector was not planned".into()))
    }
}

impl Engine {
    pub fn new(store: Store, limits: QueryLimits) -> Self {
        // The receiver keeps the last value after its sender is gone.
        Engine::with_live_limits(store, tokio::sync::watch::channel(limits).1)
    }

    /// An engine whose limits follow `limits` (configuration reloads).
    pub fn with_live_limits(
        store: Store,
        limits: tokio::sync::watch::Receiver<QueryLimits>,
    ) -> Self {
        Engine { store, limits }
    }

    /// Parses a query, with Prometheus-style positions in errors.
    pub fn parse(query: &str) -> Result<Expr, QueryError> {
        parse::parse(query)
    }

    /// Parses a query on a blocking thread. Parsing compiles each regex matcher, and a
    /// pathological pattern costs a second or more (`\w{1,200}z\w{1,200}`: counted
    /// repetitions of Unicode classes build large automata); on a runtime thread that would
    /// stall ingest acknowledgements and the watchdog with them. The API's concurrency limit
    /// bounds how many such parses run at once.
    pub async fn parse_off_runtime(query: &str) -> Result<Expr, QueryError> {
        let query = query.to_owned();
        tokio::task::spawn_blocking(move || parse::parse(&query))
            .await
            .map_err(|e| QueryError::Internal(format!("parse task failed: {e}")))?
    }

    /// The limits in force.
    pub fn limits(&self) -> QueryLimits {
        self.limits.borrow().clone()
    }

    /// Evaluates an instant query at `t` (ms).
    pub async fn instant(&self, query: &str, t: i64) -> Result<Value, QueryError> {
        self.instant_with_timeout(query, t, None).await
    }

    /// Evaluates an instant query at `t` (ms) within `timeout` (the API's `timeout` parameter)
    /// or the configured timeout, whichever is shorter.
    #[tracing::instrument(name = "query_instant", skip(self))]
    pub async fn instant_with_timeout(
        &self,
        query: &str,
        t: i64,
        timeout: Option<Duration>,
    ) -> Result<Value, QueryError> {
        let expr = Engine::parse_off_runtime(query).await?;
        let window = Window {
            start: t,
            end: t,
            step: None,
        };
        self.run(expr, window, timeout).await
    }

    /// Evaluates an already parsed expression at `t` (ms), for callers that parse once and
    /// evaluate often (recording and alerting rules).
    pub async fn instant_expr(&self, expr: &Expr, t: i64) -> Result<Value, QueryError> {
        let window = Window {
            start: t,
            end: t,
            step: None,
        };
        self.run(expr.clone(), window, None).await
    }

    /// Evaluates a range query over `[start, end]` every `step` (all ms).
    pub async fn range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Value, QueryError> {
        self.range_with_timeout(query, start, end, step, None).await
    }

    /// Evaluates a range query within `timeout` or the configured timeout, whichever is
    /// shorter.
    #[tracing::instrument(name = "query_range", skip(self))]
    pub async fn range_with_timeout(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
        timeout: Option<Duration>,
    ) -> Result<Value, QueryError> {
        if step <= 0 {
            return Err(QueryError::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end < start {
            return Err(QueryError::BadData(
                "end timestamp must not be before start time".into(),
            ));
        }
        if (end - start) / step > MAX_POINTS_PER_SERIES {
            return Err(QueryError::BadData(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
            ));
        }
        let expr = Engine::parse_off_runtime(query).await?;
        eval::check_range_type(&expr)?;
        let window = Window {
            start,
            end,
            step: Some(step),
        };
        self.run(expr, window, timeout).await
    }

    /// Plans, fetches and evaluates one query before the deadline.
    async fn run(
        &self,
        expr: Expr,
        window: Window,
        timeout: Option<Duration>,
    ) -> Result<Value, QueryError> {
        let limits = self.limits();
        let timeout = timeout.map_or(limits.timeout, |t| t.min(limits.timeout));
        let deadline = tokio::time::Instant::now() + timeout;
        let options = EvalOptions {
            max_samples: limits.max_samples,
            ..EvalOptions::default()
        };
        let needs = plan::plan(&expr, window.start, window.end, &options)?;
        let fetched = tokio::time::timeout_at(deadline, self.fetch(needs, &limits))
            .await
            .map_err(|_| QueryError::Timeout("query preparation"))??;

        // Evaluation is CPU-bound: it runs on a blocking thread and watches `cancel`, which is
        // set here when the deadline passes, so a timed-out query stops instead of running on.
        let cancel = Arc::new(AtomicBool::new(false));
        let options = EvalOptions {
            cancel: Some(cancel.clone()),
            ..options
        };
        let task = tokio::task::spawn_blocking(move || match window.step {
            None => evaluate_instant(&expr, window.start, &fetched, &options),
            Some(step) => evaluate_range(&expr, window.start, window.end, step, &fetched, &options),
        });
        match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(QueryError::Internal(format!("evaluation task failed: {e}"))),
            Err(_) => {
                cancel.store(true, Ordering::Relaxed);
                Err(QueryError::Timeout("expression evaluation"))
            }
        }
    }

    /// Loads every planned selector, each once over the union of the ranges it needs, keeping
    /// the total number of samples within `max_samples`.
    async fn fetch(
        &self,
        needs: Vec<plan::Need>,
        limits: &QueryLimits,
    ) -> Result<Fetched, QueryError> {
        let mut by_key = HashMap::new();
        let mut loaded = 0usize;
        for need in needs {
            let remaining = limits.max_samples.saturating_sub(loaded);
            let series = self
                .store
                .select(
                    need.matchers,
                    need.start_ms,
                    need.end_ms,
                    limits.max_series,
                    remaining,
                )
                .await
                .map_err(|e| match e {
                    StoreError::TooManySamples { .. } => StoreError::TooManySamples {
                        limit: limits.max_samples,
                    }
                    .into(),
                    other => QueryError::from(other),
                })?;
            loaded += series.iter().map(|s| s.samples.len()).sum::<usize>();
            // The store answers in series-id order; PromQL answers in label order.
            let mut series = series;
            series.sort_by(|a, b| a.labels.cmp(&b.labels));
            by_key.insert(need.key, Arc::new(series));
        }
        Ok(Fetched { by_key })
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod eval_tests;

/// The metric names an expression reads, or `None` when some selector has no fixed name (so
/// any write may change its result). Rule groups use it to re-evaluate promptly on new data.
pub fn metric_names(expr: &Expr) -> Option<std::collections::BTreeSet<String>> {
    let needs = plan::plan(expr, 0, 0, &EvalOptions::default()).ok()?;
    let mut names = std::collections::BTreeSet::new();
    for need in needs {
        let name = need.matchers.iter().find_map(|m| {
            (m.name == crate::model::METRIC_NAME && matches!(m.op, crate::model::MatchOp::Equal))
                .then(|| m.value.clone())
        })?;
        names.insert(name);
    }
    Some(names)
}
