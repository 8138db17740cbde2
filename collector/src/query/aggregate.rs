//! Aggregation operators (`sum`, `avg`, `min`, `max`, `count`, `group`, `stddev`, `stdvar`,
//! `quantile`, `topk`, `bottomk`, `count_values`) with `by` / `without`, following Prometheus
//! 2.42's `aggregation` (promql/engine.go) step for step, including its heap for
//! `topk`/`bottomk` so ties pick the same series.

use std::collections::HashMap;
use std::sync::Arc;

use promql_parser::parser::token::{
    T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_MAX, T_MIN, T_QUANTILE, T_STDDEV,
    T_STDVAR, T_SUM, T_TOPK,
};
use promql_parser::parser::{AggregateExpr, LabelModifier};

use super::QueryError;
use super::binary::signature;
use super::eval::{Elem, Evaluator, Val, labels_from};
use super::functions::{quantile, valid_label_name};
use crate::model::{Labels, METRIC_NAME};

/// One group's running state.
struct Group {
    labels: Arc<Labels>,
    value: f64,
    mean: f64,
    count: u64,
    /// `topk`/`bottomk` heap, or `quantile`'s values.
    heap: Vec<Elem>,
    values: Vec<f64>,
}

/// Go's `container/heap` sift-up with `less`.
fn heap_up(h: &mut [Elem], mut j: usize, less: fn(&Elem, &Elem) -> bool) {
    while j > 0 {
        let i = (j - 1) / 2;
        if !less(&h[j], &h[i]) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

/// Go's `container/heap` sift-down over `h[..n]`.
fn heap_down(h: &mut [Elem], i0: usize, n: usize, less: fn(&Elem, &Elem) -> bool) {
    let mut i = i0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        let j2 = j1 + 1;
        if j2 < n && less(&h[j2], &h[j1]) {
            j = j2;
        }
        if !less(&h[j], &h[i]) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
}

fn heap_push(h: &mut Vec<Elem>, e: Elem, less: fn(&Elem, &Elem) -> bool) {
    h.push(e);
    let last = h.len() - 1;
    heap_up(h, last, less);
}

fn heap_pop(h: &mut Vec<Elem>, less: fn(&Elem, &Elem) -> bool) {
    let n = h.len() - 1;
    h.swap(0, n);
    heap_down(h, 0, n, less);
    h.pop();
}

/// `vectorByValueHeap.Less`: NaN is the smallest.
fn less_by_value(a: &Elem, b: &Elem) -> bool {
    a.value.is_nan() || a.value < b.value
}

/// `vectorByReverseValueHeap.Less`.
fn less_by_reverse_value(a: &Elem, b: &Elem) -> bool {
    a.value.is_nan() || a.value > b.value
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`.
fn format_value(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Evaluates an aggregation at `t`.
pub(crate) fn eval(ev: &mut Evaluator<'_>, a: &AggregateExpr, t: i64) -> Result<Val, QueryError> {
    let op = a.op.id();
    let (without, mut grouping): (bool, Vec<String>) = match &a.modifier {
        None => (false, Vec::new()),
        Some(LabelModifier::Include(l)) => (false, l.labels.clone()),
        Some(LabelModifier::Exclude(l)) => (true, l.labels.clone()),
    };

    let mut k: i64 = 0;
    let mut q = 0.0;
    let mut value_label = String::new();
    match op {
        T_TOPK | T_BOTTOMK | T_QUANTILE => {
            let param = a
                .param
                .as_ref()
                .ok_or_else(|| QueryError::Execution(format!("{} needs a parameter", a.op)))?;
            let p = ev.scalar_arg(param, t)?;
            if op == T_QUANTILE {
                q = p;
            } else {
                // Go's convertibleToInt64, then int64() truncation.
                if !(i64::MIN as f64..=i64::MAX as f64).contains(&p) {
                    return Err(QueryError::Execution(format!(
                        "Scalar value {p} overflows int64"
                    )));
                }
                k = p as i64;
            }
        }
        T_COUNT_VALUES => {
            let param = a
                .param
                .as_ref()
                .ok_or_else(|| QueryError::Execution("count_values needs a label name".into()))?;
            value_label = ev.string_arg(param, t)?;
            if !valid_label_name(&value_label) {
                return Err(QueryError::Execution(format!(
                    "invalid label name {value_label:?}"
                )));
            }
            if !without {
                grouping.push(value_label.clone());
                grouping.sort();
            }
        }
        T_SUM | T_AVG | T_COUNT | T_MIN | T_MAX | T_GROUP | T_STDDEV | T_STDVAR => {}
        _ => {
            return Err(QueryError::Unsupported(format!(
                "aggregation {}() is not supported: this collector evaluates PromQL as Prometheus 2.x does",
                a.op
            )));
        }
    }

    let input = ev.vector_arg(&a.expr, t)?;
    if (op == T_TOPK || op == T_BOTTOMK) && k < 1 {
        return Ok(Val::Vector(Vec::new()));
    }
    let input_len = input.len() as i64;

    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for mut s in input {
        if op == T_COUNT_VALUES {
            let mut pairs: Vec<(String, String)> = s
                .labels
                .iter()
                .filter(|(n, _)| *n != value_label)
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect();
            pairs.push((value_label.clone(), format_value(s.value)));
            s.labels = Arc::new(Labels::new(pairs));
        }
        let key = if without {
            signature(&s.labels, false, &grouping, true)
        } else {
            signature(&s.labels, true, &grouping, false)
        };
        let Some(&gi) = index.get(&key) else {
            let labels = if without {
                labels_from(
                    s.labels
                        .iter()
                        .filter(|(n, _)| *n != METRIC_NAME && !grouping.iter().any(|g| g == n)),
                )
            } else {
                labels_from(
                    s.labels
                        .iter()
                        .filter(|(n, _)| grouping.iter().any(|g| g == n)),
                )
            };
            let mut g = Group {
                labels: Arc::new(labels),
                value: s.value,
                mean: s.value,
                count: 1,
                heap: Vec::new(),
                values: Vec::new(),
            };
            match op {
                T_STDDEV | T_STDVAR => g.value = 0.0,
                T_GROUP => g.value = 1.0,
                T_QUANTILE => g.values.push(s.value),
                T_TOPK | T_BOTTOMK => {
                    g.heap.reserve(k.min(input_len).max(1) as usize);
                    g.heap.push(s);
                }
                _ => {}
            }
            index.insert(key, groups.len());
            groups.push(g);
            continue;
        };
        let g = &mut groups[gi];
        match op {
            T_SUM => g.value += s.value,
            T_AVG => {
                g.count += 1;
                let n = g.count as f64;
                if g.mean.is_infinite() {
                    if s.value.is_infinite() && (g.mean > 0.0) == (s.value > 0.0) {
                        continue;
                    }
                    if !s.value.is_infinite() && !s.value.is_nan() {
                        continue;
                    }
                }
                g.mean += s.value / n - g.mean / n;
            }
            T_GROUP => {}
            T_MAX if g.value < s.value || g.value.is_nan() => g.value = s.value,
            T_MIN if g.value > s.value || g.value.is_nan() => g.value = s.value,
            T_COUNT | T_COUNT_VALUES => g.count += 1,
            T_STDDEV | T_STDVAR => {
                g.count += 1;
                let delta = s.value - g.mean;
                g.mean += delta / g.count as f64;
                g.value += delta * (s.value - g.mean);
            }
            T_TOPK | T_BOTTOMK => {
                let less = if op == T_TOPK {
                    less_by_value
                } else {
                    less_by_reverse_value
                };
                let top = g.heap[0].value;
                let replaces = if op == T_TOPK {
                    top < s.value
                } else {
                    top > s.value
                };
                if (g.heap.len() as i64) < k || replaces || top.is_nan() {
                    if g.heap.len() as i64 == k {
                        if k == 1 {
                            g.heap[0] = s;
                            continue;
                        }
                        heap_pop(&mut g.heap, less);
                    }
                    heap_push(&mut g.heap, s, less);
                }
            }
            T_QUANTILE => g.values.push(s.value),
            _ => {}
        }
    }

    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        let value = match op {
            T_AVG => g.mean,
            T_COUNT | T_COUNT_VALUES => g.count as f64,
            T_STDVAR => g.value / g.count as f64,
            T_STDDEV => (g.value / g.count as f64).sqrt(),
            T_QUANTILE => quantile(q, g.values),
            T_TOPK | T_BOTTOMK => {
                // Largest (topk) or smallest (bottomk) first, as Prometheus lists them.
                let mut heap = g.heap;
                let desc = op == T_TOPK;
                heap.sort_by(|a, b| match (a.value.is_nan(), b.value.is_nan()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    (false, false) if desc => b.value.total_cmp(&a.value),
                    (false, false) => a.value.total_cmp(&b.value),
                });
                out.extend(heap);
                continue;
            }
            _ => g.value,
        };
        out.push(Elem {
            labels: g.labels,
            value,
        });
    }
    Ok(Val::Vector(out))
}
