//! Query evaluation over the store: the boundary the API calls and full PromQL grows behind.
//!
//! Expressions are parsed with `promql-parser`. This version evaluates what the Prometheus
//! HTTP API needs for reading raw data: instant vector selectors with the four matcher kinds,
//! `offset` and `@`, range vector selectors in instant queries, number and string literals and
//! parentheses. Anything else is refused with an error naming the construct, never answered
//! wrongly. Selection follows Prometheus 2.x: an instant selector takes the newest sample in
//! `[t - 5m, t]` unless it is a staleness marker; a range selector takes `[t - range, t]`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{self, AtModifier, Expr, Offset, VectorSelector};

use crate::config::QueryLimits;
use crate::model::{Labels, Matcher, Sample};
use crate::receiver::convert::STALE_NAN_BITS;
use crate::store::{SeriesData, Store, StoreError};

/// The default lookback of instant selectors, as in Prometheus.
pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;

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
    #[error("{0}")]
    Parse(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    BadData(String),
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl QueryError {
    /// Prometheus' `errorType` for this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            QueryError::Parse(_) | QueryError::BadData(_) => "bad_data",
            QueryError::Unsupported(_) => "execution",
            QueryError::Timeout(_) => "timeout",
            QueryError::Store(
                StoreError::TooManySeries { .. } | StoreError::TooManySamples { .. },
            ) => "execution",
            QueryError::Store(_) => "internal",
        }
    }
}

/// Evaluates queries against a store within configured limits.
#[derive(Clone)]
pub struct Engine {
    store: Store,
    limits: QueryLimits,
}

fn is_stale(s: &Sample) -> bool {
    s.value.to_bits() == STALE_NAN_BITS
}

fn millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

fn duration_ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// Parses a selector such as a `match[]` parameter (`up{job="x"}`) into store matchers.
pub fn selector_matchers(text: &str) -> Result<Vec<Matcher>, String> {
    match parser::parse(text) {
        Ok(Expr::VectorSelector(vs)) => matchers(&vs).map_err(|e| e.to_string()),
        Ok(_) => Err(format!(
            "invalid parameter \"match[]\": {text:?} is not a series selector"
        )),
        Err(e) => Err(format!("invalid parameter \"match[]\": {e}")),
    }
}

/// Translates a parsed selector's matchers into store matchers.
fn matchers(vs: &VectorSelector) -> Result<Vec<Matcher>, QueryError> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(QueryError::Unsupported(
            "the `or` operator inside a selector's braces is not supported".into(),
        ));
    }
    let mut out = Vec::new();
    if let Some(name) = &vs.name {
        out.push(Matcher::equal(crate::model::METRIC_NAME, name));
    }
    for m in &vs.matchers.matchers {
        let matcher = match &m.op {
            PMatchOp::Equal => Matcher::equal(&m.name, &m.value),
            PMatchOp::NotEqual => Matcher {
                name: m.name.clone(),
                op: crate::model::MatchOp::NotEqual,
                value: m.value.clone(),
            },
            PMatchOp::Re(_) => Matcher::regex(&m.name, &m.value, false)
                .map_err(|e| QueryError::BadData(format!("invalid regular expression: {e}")))?,
            PMatchOp::NotRe(_) => Matcher::regex(&m.name, &m.value, true)
                .map_err(|e| QueryError::BadData(format!("invalid regular expression: {e}")))?,
        };
        out.push(matcher);
    }
    if out.iter().all(Matcher::matches_empty) {
        return Err(QueryError::BadData(
            "vector selector must contain at least one non-empty matcher".into(),
        ));
    }
    Ok(out)
}

/// The evaluation time of a selector at `t`, after `@` and `offset`.
fn selector_time(vs: &VectorSelector, t: i64, start: i64, end: i64) -> i64 {
    let base = match &vs.at {
        None => t,
        Some(AtModifier::Start) => start,
        Some(AtModifier::End) => end,
        Some(AtModifier::At(at)) => millis(*at),
    };
    match &vs.offset {
        None => base,
        Some(Offset::Pos(d)) => base - duration_ms(*d),
        Some(Offset::Neg(d)) => base + duration_ms(*d),
    }
}

/// The newest non-stale sample within the lookback window ending at `t`.
fn sample_at(samples: &[Sample], t: i64) -> Option<Sample> {
    let end = samples.partition_point(|s| s.timestamp_ms <= t);
    let s = samples[..end].last()?;
    (s.timestamp_ms >= t - LOOKBACK_MS && !is_stale(s)).then_some(*s)
}

fn unwrap_parens(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(p) => unwrap_parens(&p.expr),
        e => e,
    }
}

fn describe(expr: &Expr) -> &'static str {
    match expr {
        Expr::Aggregate(_) => "aggregation",
        Expr::Unary(_) => "unary expression",
        Expr::Binary(_) => "binary expression",
        Expr::Paren(_) => "parentheses",
        Expr::Subquery(_) => "subquery",
        Expr::NumberLiteral(_) => "number",
        Expr::StringLiteral(_) => "string",
        Expr::VectorSelector(_) => "vector selector",
        Expr::MatrixSelector(_) => "range vector selector",
        Expr::Call(_) => "function call",
        Expr::Extension(_) => "extension",
    }
}

fn unsupported(expr: &Expr) -> QueryError {
    QueryError::Unsupported(format!(
        "{} is not supported yet: this collector evaluates plain selectors ({expr})",
        describe(expr)
    ))
}

impl Engine {
    pub fn new(store: Store, limits: QueryLimits) -> Self {
        Engine { store, limits }
    }

    pub fn parse(query: &str) -> Result<Expr, QueryError> {
        parser::parse(query).map_err(QueryError::Parse)
    }

    async fn fetch(
        &self,
        vs: &VectorSelector,
        start: i64,
        end: i64,
    ) -> Result<Vec<SeriesData>, QueryError> {
        Ok(self
            .store
            .select(
                matchers(vs)?,
                start,
                end,
                self.limits.max_series,
                self.limits.max_samples,
            )
            .await?)
    }

    /// Evaluates an instant query at `t` (ms).
    #[tracing::instrument(name = "query_instant", skip(self))]
    pub async fn instant(&self, query: &str, t: i64) -> Result<Value, QueryError> {
        let expr = Engine::parse(query)?;
        tokio::time::timeout(self.limits.timeout, self.instant_expr(&expr, t))
            .await
            .map_err(|_| QueryError::Timeout("query evaluation"))?
    }

    async fn instant_expr(&self, expr: &Expr, t: i64) -> Result<Value, QueryError> {
        match unwrap_parens(expr) {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(Sample {
                timestamp_ms: t,
                value: n.val,
            })),
            Expr::StringLiteral(s) => Ok(Value::String(t, s.val.clone())),
            Expr::VectorSelector(vs) => {
                let at = selector_time(vs, t, t, t);
                let series = self.fetch(vs, at - LOOKBACK_MS, at).await?;
                Ok(Value::Vector(
                    series
                        .into_iter()
                        .filter_map(|s| {
                            sample_at(&s.samples, at).map(|v| {
                                (
                                    s.labels,
                                    Sample {
                                        timestamp_ms: t,
                                        value: v.value,
                                    },
                                )
                            })
                        })
                        .collect(),
                ))
            }
            Expr::MatrixSelector(ms) => {
                let at = selector_time(&ms.vs, t, t, t);
                let range = duration_ms(ms.range);
                let series = self.fetch(&ms.vs, at - range, at).await?;
                Ok(Value::Matrix(
                    series
                        .into_iter()
                        .map(|s| {
                            let kept: Vec<Sample> =
                                s.samples.into_iter().filter(|x| !is_stale(x)).collect();
                            (s.labels, kept)
                        })
                        .filter(|(_, v)| !v.is_empty())
                        .collect(),
                ))
            }
            other => Err(unsupported(other)),
        }
    }

    /// Evaluates a range query over `[start, end]` every `step` (all ms).
    #[tracing::instrument(name = "query_range", skip(self))]
    pub async fn range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
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
        if (end - start) / step > 11_000 {
            return Err(QueryError::BadData(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
            ));
        }
        let expr = Engine::parse(query)?;
        tokio::time::timeout(
            self.limits.timeout,
            self.range_expr(&expr, start, end, step),
        )
        .await
        .map_err(|_| QueryError::Timeout("query evaluation"))?
    }

    async fn range_expr(
        &self,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Value, QueryError> {
        let steps = || {
            (0..)
                .map(move |i| start + i * step)
                .take_while(move |t| *t <= end)
        };
        match unwrap_parens(expr) {
            Expr::NumberLiteral(n) => Ok(Value::Matrix(vec![(
                Arc::new(Labels::default()),
                steps()
                    .map(|t| Sample {
                        timestamp_ms: t,
                        value: n.val,
                    })
                    .collect(),
            )])),
            Expr::VectorSelector(vs) => {
                let first = selector_time(vs, start, start, end);
                let last = selector_time(vs, end, start, end);
                let (lo, hi) = (first.min(last), first.max(last));
                let series = self.fetch(vs, lo - LOOKBACK_MS, hi).await?;
                let mut out = Vec::new();
                for s in series {
                    let points: Vec<Sample> = steps()
                        .filter_map(|t| {
                            sample_at(&s.samples, selector_time(vs, t, start, end)).map(|v| {
                                Sample {
                                    timestamp_ms: t,
                                    value: v.value,
                                }
                            })
                        })
                        .collect();
                    if !points.is_empty() {
                        out.push((s.labels, points));
                    }
                }
                Ok(Value::Matrix(out))
            }
            Expr::StringLiteral(_) | Expr::MatrixSelector(_) => Err(QueryError::BadData(format!(
                "invalid expression type {:?} for range query, must be Scalar or instant Vector",
                describe(expr)
            ))),
            other => Err(unsupported(other)),
        }
    }
}

#[cfg(test)]
mod tests;
