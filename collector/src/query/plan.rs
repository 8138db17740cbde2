//! Planning: which selectors a query reads and over which time range, so the engine can fetch
//! them from the store before the pure evaluation starts. Called by `Engine::run`; the
//! evaluator uses `ref_time` and `matchers` from here so both agree on what a selector means.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{AtModifier, Expr, Offset, VectorSelector};

use super::QueryError;
use super::eval::EvalOptions;
use crate::model::{MatchOp, Matcher};

/// One selector's data requirement: every series matching `matchers` with samples in
/// `[start_ms, end_ms]`. Selectors with the same matchers share one `Need` (the union range).
#[derive(Debug)]
pub(crate) struct Need {
    pub key: String,
    pub matchers: Vec<Matcher>,
    pub start_ms: i64,
    pub end_ms: i64,
}

pub(crate) fn millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

pub(crate) fn duration_ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// The reference time of a selector or subquery evaluated at `t`, after `@` and `offset`.
/// `start` and `end` are the query's, which `@ start()` and `@ end()` refer to.
pub(crate) fn ref_time(
    at: &Option<AtModifier>,
    offset: &Option<Offset>,
    t: i64,
    start: i64,
    end: i64,
) -> i64 {
    let base = match at {
        None => t,
        Some(AtModifier::Start) => start,
        Some(AtModifier::End) => end,
        Some(AtModifier::At(at)) => millis(*at),
    };
    match offset {
        None => base,
        Some(Offset::Pos(d)) => base - duration_ms(*d),
        Some(Offset::Neg(d)) => base + duration_ms(*d),
    }
}

/// Translates a parsed selector's matchers into store matchers, refusing what Prometheus'
/// parser refuses.
pub(crate) fn matchers(vs: &VectorSelector) -> Result<Vec<Matcher>, QueryError> {
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
                op: MatchOp::NotEqual,
                value: m.value.clone(),
            },
            // The parser has compiled the pattern already, anchored as PromQL anchors it
            // (`^(?:…)$`), and with its fallback that reads a `{` that starts no repetition
            // as a literal, as Go's RE2 does. Reusing it costs a reference count where
            // compiling again cost up to tens of milliseconds per selector on every
            // evaluation of a rule.
            PMatchOp::Re(re) => Matcher {
                name: m.name.clone(),
                op: MatchOp::Regex(re.clone()),
                value: m.value.clone(),
            },
            PMatchOp::NotRe(re) => Matcher {
                name: m.name.clone(),
                op: MatchOp::NotRegex(re.clone()),
                value: m.value.clone(),
            },
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

/// A key identifying a matcher set, shared by planning and `Fetched`.
pub(crate) fn matcher_key(matchers: &[Matcher]) -> String {
    let mut key = String::new();
    for m in matchers {
        let op = match m.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex(_) => "=~",
            MatchOp::NotRegex(_) => "!~",
        };
        key.push_str(&m.name);
        key.push_str(op);
        key.push_str(&m.value);
        key.push('\0');
    }
    key
}

/// Lists the data `expr` needs when evaluated at every step in `[start, end]`.
pub(crate) fn plan(
    expr: &Expr,
    start: i64,
    end: i64,
    options: &EvalOptions,
) -> Result<Vec<Need>, QueryError> {
    let mut planner = Planner {
        start,
        end,
        options,
        needs: Vec::new(),
    };
    planner.walk(expr, start, end)?;
    Ok(planner.needs)
}

struct Planner<'a> {
    start: i64,
    end: i64,
    options: &'a EvalOptions,
    needs: Vec<Need>,
}

impl Planner<'_> {
    /// The reference times of a node evaluated at every time in `[lo, hi]`.
    fn ref_range(
        &self,
        at: &Option<AtModifier>,
        offset: &Option<Offset>,
        lo: i64,
        hi: i64,
    ) -> (i64, i64) {
        let a = ref_time(at, offset, lo, self.start, self.end);
        let b = ref_time(at, offset, hi, self.start, self.end);
        (a.min(b), a.max(b))
    }

    fn add(&mut self, vs: &VectorSelector, start_ms: i64, end_ms: i64) -> Result<(), QueryError> {
        let matchers = matchers(vs)?;
        let key = matcher_key(&matchers);
        match self.needs.iter_mut().find(|n| n.key == key) {
            Some(need) => {
                need.start_ms = need.start_ms.min(start_ms);
                need.end_ms = need.end_ms.max(end_ms);
            }
            None => self.needs.push(Need {
                key,
                matchers,
                start_ms,
                end_ms,
            }),
        }
        Ok(())
    }

    /// Records the needs of `expr` evaluated at every time in `[lo, hi]`.
    fn walk(&mut self, expr: &Expr, lo: i64, hi: i64) -> Result<(), QueryError> {
        match expr {
            Expr::VectorSelector(vs) => {
                let (a, b) = self.ref_range(&vs.at, &vs.offset, lo, hi);
                self.add(vs, a.saturating_sub(self.options.lookback_ms), b)
            }
            Expr::MatrixSelector(ms) => {
                let (a, b) = self.ref_range(&ms.vs.at, &ms.vs.offset, lo, hi);
                self.add(&ms.vs, a.saturating_sub(duration_ms(ms.range)), b)
            }
            Expr::Subquery(sq) => {
                let (a, b) = self.ref_range(&sq.at, &sq.offset, lo, hi);
                self.walk(&sq.expr, a.saturating_sub(duration_ms(sq.range)), b)
            }
            Expr::Paren(p) => self.walk(&p.expr, lo, hi),
            Expr::Unary(u) => self.walk(&u.expr, lo, hi),
            Expr::Binary(b) => {
                self.walk(&b.lhs, lo, hi)?;
                self.walk(&b.rhs, lo, hi)
            }
            Expr::Aggregate(a) => {
                if let Some(p) = &a.param {
                    self.walk(p, lo, hi)?;
                }
                self.walk(&a.expr, lo, hi)
            }
            Expr::Call(c) => {
                for arg in &c.args.args {
                    self.walk(arg, lo, hi)?;
                }
                Ok(())
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => Ok(()),
        }
    }
}
