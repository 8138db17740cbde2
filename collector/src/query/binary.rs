//! Binary operators: arithmetic, comparison (filtering, or 0/1 with `bool`), `atan2`, and the
//! set operators `and`, `or`, `unless`, with `on` / `ignoring` / `group_left` /
//! `group_right` vector matching, as Prometheus 2.42's `VectorBinop`, `VectorscalarBinop`,
//! `VectorAnd`/`Or`/`Unless` and `resultMetric` do them, errors worded as Prometheus words them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MOD,
    T_MUL, T_NEQ, T_POW, T_SUB, TokenId,
};
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use super::QueryError;
use super::eval::{Elem, Evaluator, Val, check_duplicates, drop_name, fmt_labels, labels_from};
use crate::model::{Labels, METRIC_NAME};

/// The key of a label set for matching: with `on`, the listed labels; otherwise every label
/// except the listed ones (and except the metric name when `skip_name`).
pub(crate) fn signature<S: AsRef<str>>(
    labels: &Labels,
    on: bool,
    names: &[S],
    skip_name: bool,
) -> String {
    let listed = |n: &str| names.iter().any(|x| x.as_ref() == n);
    let mut key = String::new();
    for (n, v) in labels.iter() {
        let include = if on {
            listed(n)
        } else {
            !(listed(n) || (skip_name && n == METRIC_NAME))
        };
        if include {
            key.push_str(n);
            key.push('\u{1}');
            key.push_str(v);
            key.push('\u{0}');
        }
    }
    key
}

fn is_comparison(op: TokenId) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE)
}

/// Arithmetic drops the metric name; comparisons, set operators and (in Prometheus 2.x)
/// `atan2` keep it.
fn drops_name(op: TokenId) -> bool {
    matches!(op, T_ADD | T_SUB | T_MUL | T_DIV | T_MOD | T_POW)
}

/// Prometheus' `vectorElemBinop`: the value and whether to keep the element.
fn elem_binop(op: TokenId, lhs: f64, rhs: f64) -> (f64, bool) {
    match op {
        T_ADD => (lhs + rhs, true),
        T_SUB => (lhs - rhs, true),
        T_MUL => (lhs * rhs, true),
        T_DIV => (lhs / rhs, true),
        T_POW => (lhs.powf(rhs), true),
        T_MOD => (lhs % rhs, true),
        T_ATAN2 => (lhs.atan2(rhs), true),
        T_EQLC => (lhs, lhs == rhs),
        T_NEQ => (lhs, lhs != rhs),
        T_GTR => (lhs, lhs > rhs),
        T_LSS => (lhs, lhs < rhs),
        T_GTE => (lhs, lhs >= rhs),
        T_LTE => (lhs, lhs <= rhs),
        _ => (f64::NAN, false),
    }
}

fn bool_value(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// Prometheus' `scalarBinop`: comparisons between scalars always answer 0 or 1.
fn scalar_binop(op: TokenId, lhs: f64, rhs: f64) -> f64 {
    let (value, keep) = elem_binop(op, lhs, rhs);
    if is_comparison(op) {
        bool_value(keep)
    } else {
        value
    }
}

/// How two vectors' elements are paired.
struct Matching {
    card: Card,
    on: bool,
    labels: Vec<String>,
    include: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

impl Matching {
    fn from_expr(b: &BinaryExpr) -> Matching {
        let (mut card, mut on, mut labels, mut include) =
            (Card::OneToOne, false, Vec::new(), Vec::new());
        if let Some(m) = &b.modifier {
            match &m.matching {
                Some(LabelModifier::Include(l)) => {
                    on = true;
                    labels = l.labels.clone();
                }
                Some(LabelModifier::Exclude(l)) => labels = l.labels.clone(),
                None => {}
            }
            card = match &m.card {
                VectorMatchCardinality::OneToOne => Card::OneToOne,
                VectorMatchCardinality::ManyToMany => Card::ManyToMany,
                VectorMatchCardinality::ManyToOne(l) => {
                    include = l.labels.clone();
                    Card::ManyToOne
                }
                VectorMatchCardinality::OneToMany(l) => {
                    include = l.labels.clone();
                    Card::OneToMany
                }
            };
        }
        if matches!(b.op.id(), T_LAND | T_LOR | T_LUNLESS) {
            card = Card::ManyToMany;
        }
        Matching {
            card,
            on,
            labels,
            include,
        }
    }

    fn signature(&self, labels: &Labels) -> String {
        signature(labels, self.on, &self.labels, true)
    }

    /// The labels the match group is made of, for error messages.
    fn match_labels(&self, labels: &Labels) -> Labels {
        let listed = |n: &str| self.labels.iter().any(|x| x == n);
        labels_from(labels.iter().filter(|(n, _)| {
            if self.on {
                listed(n)
            } else {
                !listed(n) && *n != METRIC_NAME
            }
        }))
    }
}

/// Prometheus' `resultMetric`: the labels of a vector-vector result element.
fn result_metric(lhs: &Labels, rhs: &Labels, op: TokenId, m: &Matching) -> Labels {
    let listed = |n: &str| m.labels.iter().any(|x| x == n);
    let mut pairs: Vec<(String, String)> = lhs
        .iter()
        .filter(|(n, _)| {
            if drops_name(op) && *n == METRIC_NAME {
                return false;
            }
            if m.card == Card::OneToOne {
                return if m.on { listed(n) } else { !listed(n) };
            }
            true
        })
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    for name in &m.include {
        pairs.retain(|(n, _)| n != name);
        if let Some(v) = rhs.get(name) {
            pairs.push((name.clone(), v.to_owned()));
        }
    }
    Labels::new(pairs)
}

fn vector_binop(
    op: TokenId,
    lhs: Vec<Elem>,
    rhs: Vec<Elem>,
    m: &Matching,
    return_bool: bool,
) -> Result<Vec<Elem>, QueryError> {
    let (lhs, rhs) = if m.card == Card::OneToMany {
        (rhs, lhs)
    } else {
        (lhs, rhs)
    };
    // The right side is the "one" side: its match groups must be unique.
    let mut right: HashMap<String, &Elem> = HashMap::with_capacity(rhs.len());
    for rs in &rhs {
        let sig = m.signature(&rs.labels);
        if let Some(dup) = right.get(&sig) {
            let side = if m.card == Card::OneToMany {
                "left"
            } else {
                "right"
            };
            return Err(QueryError::Execution(format!(
                "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                fmt_labels(&m.match_labels(&rs.labels)),
                fmt_labels(&rs.labels),
                fmt_labels(&dup.labels),
            )));
        }
        right.insert(sig, rs);
    }
    let mut matched: HashMap<String, HashSet<Labels>> = HashMap::new();
    let mut out = Vec::new();
    for ls in &lhs {
        let sig = m.signature(&ls.labels);
        let Some(rs) = right.get(&sig) else {
            continue;
        };
        let (vl, vr) = if m.card == Card::OneToMany {
            (rs.value, ls.value)
        } else {
            (ls.value, rs.value)
        };
        let (mut value, keep) = elem_binop(op, vl, vr);
        if return_bool {
            value = bool_value(keep);
        } else if !keep {
            continue;
        }
        let mut metric = result_metric(&ls.labels, &rs.labels, op, m);
        if return_bool {
            metric = labels_from(metric.iter().filter(|(n, _)| *n != METRIC_NAME));
        }
        match matched.get_mut(&sig) {
            Some(_) if m.card == Card::OneToOne => {
                return Err(QueryError::Execution(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                ));
            }
            Some(seen) => {
                if !seen.insert(metric.clone()) {
                    return Err(QueryError::Execution(
                        "multiple matches for labels: grouping labels must ensure unique matches"
                            .into(),
                    ));
                }
            }
            None => {
                let mut seen = HashSet::new();
                if m.card != Card::OneToOne {
                    seen.insert(metric.clone());
                }
                matched.insert(sig, seen);
            }
        }
        out.push(Elem {
            labels: Arc::new(metric),
            value,
        });
    }
    Ok(out)
}

fn vector_scalar(
    op: TokenId,
    v: Vec<Elem>,
    scalar: f64,
    swap: bool,
    return_bool: bool,
) -> Vec<Elem> {
    let mut out = Vec::with_capacity(v.len());
    for e in v {
        let (lv, rv) = if swap {
            (scalar, e.value)
        } else {
            (e.value, scalar)
        };
        let (mut value, mut keep) = elem_binop(op, lv, rv);
        // A comparison keeps the vector's value even when the scalar is on the left.
        if is_comparison(op) && swap {
            value = rv;
        }
        if return_bool {
            value = bool_value(keep);
            keep = true;
        }
        if keep {
            let labels = if drops_name(op) || return_bool {
                drop_name(&e.labels)
            } else {
                e.labels
            };
            out.push(Elem { labels, value });
        }
    }
    out
}

fn set_op(op: TokenId, lhs: Vec<Elem>, rhs: Vec<Elem>, m: &Matching) -> Vec<Elem> {
    match op {
        T_LAND => {
            if lhs.is_empty() || rhs.is_empty() {
                return Vec::new();
            }
            let right: HashSet<String> = rhs.iter().map(|e| m.signature(&e.labels)).collect();
            lhs.into_iter()
                .filter(|e| right.contains(&m.signature(&e.labels)))
                .collect()
        }
        T_LOR => {
            if lhs.is_empty() {
                return rhs;
            }
            if rhs.is_empty() {
                return lhs;
            }
            let left: HashSet<String> = lhs.iter().map(|e| m.signature(&e.labels)).collect();
            let mut out = lhs;
            out.extend(
                rhs.into_iter()
                    .filter(|e| !left.contains(&m.signature(&e.labels))),
            );
            out
        }
        _ => {
            if lhs.is_empty() || rhs.is_empty() {
                return lhs;
            }
            let right: HashSet<String> = rhs.iter().map(|e| m.signature(&e.labels)).collect();
            lhs.into_iter()
                .filter(|e| !right.contains(&m.signature(&e.labels)))
                .collect()
        }
    }
}

/// Evaluates a binary expression at `t`.
pub(crate) fn eval(ev: &mut Evaluator<'_>, b: &BinaryExpr, t: i64) -> Result<Val, QueryError> {
    let op = b.op.id();
    if let Some(m) = &b.modifier
        && (m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some())
    {
        return Err(QueryError::Unsupported(
            "the fill, fill_left and fill_right modifiers are not supported (Prometheus 2.x has none)".into(),
        ));
    }
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let lhs = ev.eval(&b.lhs, t)?;
    let rhs = ev.eval(&b.rhs, t)?;
    match (lhs, rhs) {
        (Val::Scalar(l), Val::Scalar(r)) => Ok(Val::Scalar(scalar_binop(op, l, r))),
        (Val::Vector(v), Val::Scalar(s)) => {
            let out = vector_scalar(op, v, s, false, return_bool);
            check_duplicates(&out)?;
            Ok(Val::Vector(out))
        }
        (Val::Scalar(s), Val::Vector(v)) => {
            let out = vector_scalar(op, v, s, true, return_bool);
            check_duplicates(&out)?;
            Ok(Val::Vector(out))
        }
        (Val::Vector(l), Val::Vector(r)) => {
            let m = Matching::from_expr(b);
            let out = if m.card == Card::ManyToMany {
                set_op(op, l, r, &m)
            } else {
                vector_binop(op, l, r, &m, return_bool)?
            };
            check_duplicates(&out)?;
            Ok(Val::Vector(out))
        }
        _ => Err(QueryError::Execution(
            "binary expression must contain only scalar and instant vector types".into(),
        )),
    }
}
