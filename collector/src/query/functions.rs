//! PromQL functions, as Prometheus 2.42 defines them (promql/functions.go): which drop the
//! metric name, how rates extrapolate, how `histogram_quantile` reads buckets. Called by the
//! evaluator for every `Call` node at every step.

use std::f64::consts::PI;
use std::sync::Arc;

use promql_parser::parser::{Call, Expr};
use regex::Regex;

use super::QueryError;
use super::eval::{
    Elem, Evaluator, SeriesView, Val, Window, check_duplicates, drop_name, empty_labels,
    labels_from, unwrap_parens,
};
use crate::model::{Labels, METRIC_NAME, Sample};

fn arg(call: &Call, i: usize) -> Result<&Expr, QueryError> {
    call.args.args.get(i).map(|b| &**b).ok_or_else(|| {
        QueryError::Execution(format!(
            "missing argument {} in call to function \"{}\"",
            i + 1,
            call.func.name
        ))
    })
}

/// Whether `name` is a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub(crate) fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Go's `math.Max`.
pub(crate) fn go_max(x: f64, y: f64) -> f64 {
    if x == f64::INFINITY || y == f64::INFINITY {
        return f64::INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && y == 0.0 {
        return if x.is_sign_negative() { y } else { x };
    }
    if x > y { x } else { y }
}

/// Go's `math.Min`.
pub(crate) fn go_min(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY || y == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && y == 0.0 {
        return if x.is_sign_negative() { x } else { y };
    }
    if x < y { x } else { y }
}

/// Prometheus' `quantile`: linear interpolation between the closest ranks; NaN for no values,
/// -Inf/+Inf for φ < 0 / φ > 1.
pub(crate) fn quantile(q: f64, mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if q.is_nan() {
        return f64::NAN;
    }
    // Go sorts with `a < b || isNaN(a)`: NaNs first.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        (false, false) => a.total_cmp(b),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Kahan summation step, as Prometheus' `kahanSumInc`.
fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Least-squares fit of the samples, x in seconds relative to `intercept_time`.
fn linear_regression(samples: &[Sample], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = samples[0].value;
    let mut const_y = true;
    for (i, s) in samples.iter().enumerate() {
        if const_y && i > 0 && s.value != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (s.timestamp_ms - intercept_time) as f64 / 1e3;
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(s.value, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * s.value, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sum_x, sum_y, sum_xy, sum_x2) = (sum_x + c_x, sum_y + c_y, sum_xy + c_xy, sum_x2 + c_x2);
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// Prometheus' `extrapolatedRate`: the increase over the window, corrected for counter resets,
/// extrapolated towards the window's edges (at most half an average interval beyond the first
/// and last samples unless they are within 1.1 intervals of the edge, and never below zero for
/// counters), and per second for `rate`.
pub(crate) fn extrapolated_rate(
    samples: &[Sample],
    range_start: i64,
    range_end: i64,
    range_ms: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let first = samples[0];
    let last = samples[samples.len() - 1];
    let mut result = last.value - first.value;
    if is_counter {
        let mut prev = first.value;
        for s in &samples[1..] {
            if s.value < prev {
                result += prev;
            }
            prev = s.value;
        }
    }
    let mut duration_to_start = (first.timestamp_ms - range_start) as f64 / 1000.0;
    let duration_to_end = (range_end - last.timestamp_ms) as f64 / 1000.0;
    let sampled_interval = (last.timestamp_ms - first.timestamp_ms) as f64 / 1000.0;
    let average_between = sampled_interval / (samples.len() - 1) as f64;
    if is_counter && result > 0.0 && first.value >= 0.0 {
        let duration_to_zero = sampled_interval * (first.value / result);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    let threshold = average_between * 1.1;
    let mut extrapolate_to = sampled_interval;
    extrapolate_to += if duration_to_start < threshold {
        duration_to_start
    } else {
        average_between / 2.0
    };
    extrapolate_to += if duration_to_end < threshold {
        duration_to_end
    } else {
        average_between / 2.0
    };
    let mut factor = extrapolate_to / sampled_interval;
    if is_rate {
        factor /= range_ms as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate` / `idelta`: from the last two samples.
fn instant_value(samples: &[Sample], is_rate: bool) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let last = samples[samples.len() - 1];
    let prev = samples[samples.len() - 2];
    let mut result = if is_rate && last.value < prev.value {
        last.value
    } else {
        last.value - prev.value
    };
    let interval = last.timestamp_ms - prev.timestamp_ms;
    if interval == 0 {
        return None;
    }
    if is_rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

fn holt_winters(samples: &[Sample], sf: f64, tf: f64) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let (mut s0, mut s1) = (0.0, samples[0].value);
    let mut b = samples[1].value - samples[0].value;
    for (i, s) in samples.iter().enumerate().skip(1) {
        let x = sf * s.value;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

/// Welford variance with Kahan-compensated sums, as `stdvar_over_time`.
fn variance(samples: &[Sample]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for s in samples {
        count += 1.0;
        let delta = s.value - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (s.value - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

fn avg(samples: &[Sample]) -> f64 {
    let (mut mean, mut count, mut c) = (0.0f64, 0.0, 0.0);
    for s in samples {
        count += 1.0;
        if mean.is_infinite() {
            if s.value.is_infinite() && (mean > 0.0) == (s.value > 0.0) {
                continue;
            }
            if !s.value.is_infinite() && !s.value.is_nan() {
                continue;
            }
        }
        (mean, c) = kahan_inc(s.value / count - mean / count, mean, c);
    }
    if mean.is_infinite() { mean } else { mean + c }
}

fn sum(samples: &[Sample]) -> f64 {
    let (mut sum, mut c) = (0.0, 0.0);
    for s in samples {
        (sum, c) = kahan_inc(s.value, sum, c);
    }
    if sum.is_infinite() { sum } else { sum + c }
}

/// Applies `f` to every series of the range argument `call.args[index]`; the result keeps the
/// series' labels without the metric name (with it, for `last_over_time`).
fn over_time(
    ev: &mut Evaluator<'_>,
    call: &Call,
    index: usize,
    t: i64,
    keep_name: bool,
    mut f: impl FnMut(&Window, &SeriesView<'_>) -> Result<Option<f64>, QueryError>,
) -> Result<Val, QueryError> {
    let range = ev.range_arg(arg(call, index)?, t)?;
    let mut out = Vec::new();
    range.for_each(|s| {
        if let Some(value) = f(&range.window, &s)? {
            let labels = if keep_name {
                s.labels.clone()
            } else {
                drop_name(s.labels)
            };
            out.push(Elem { labels, value });
        }
        Ok(())
    })?;
    check_duplicates(&out)?;
    Ok(Val::Vector(out))
}

/// Applies `f` to every element of the vector argument, dropping the metric name.
fn per_element(
    ev: &mut Evaluator<'_>,
    call: &Call,
    t: i64,
    f: impl Fn(f64) -> f64,
) -> Result<Val, QueryError> {
    let v = ev.vector_arg(arg(call, 0)?, t)?;
    let out: Vec<Elem> = v
        .into_iter()
        .map(|e| Elem {
            labels: drop_name(&e.labels),
            value: f(e.value),
        })
        .collect();
    check_duplicates(&out)?;
    Ok(Val::Vector(out))
}

/// The labels `absent` and `absent_over_time` give their answer: the selector's equality
/// matchers, except the metric name and any label matched more than once or otherwise.
fn absent_labels(expr: &Expr) -> Arc<Labels> {
    let vs = match unwrap_parens(expr) {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return empty_labels(),
    };
    let mut set: Vec<(String, String)> = Vec::new();
    let mut unset: Vec<&str> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        let equal = matches!(m.op, promql_parser::label::MatchOp::Equal);
        if equal && !set.iter().any(|(n, _)| *n == m.name) {
            if !m.value.is_empty() {
                set.push((m.name.clone(), m.value.clone()));
            }
        } else {
            unset.push(&m.name);
        }
    }
    set.retain(|(n, _)| !unset.contains(&n.as_str()));
    Arc::new(Labels::new(set))
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// One calendar field of a Unix time in seconds, in UTC, as Go's `time` package gives it.
fn date_part(name: &str, v: f64) -> f64 {
    if v.is_nan() {
        return f64::NAN;
    }
    // Go's int64(v) truncates toward zero.
    let secs = v as i64;
    let days = secs.div_euclid(86_400);
    let secs_of_day = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    match name {
        "year" => y as f64,
        "month" => f64::from(m),
        "day_of_month" => f64::from(d),
        "day_of_week" => (days + 4).rem_euclid(7) as f64,
        "day_of_year" => {
            let before: u32 = (1..m).map(|mm| days_in_month(y, mm)).sum();
            f64::from(before + d)
        }
        "days_in_month" => f64::from(days_in_month(y, m)),
        "hour" => (secs_of_day / 3600) as f64,
        "minute" => (secs_of_day % 3600 / 60) as f64,
        _ => f64::NAN,
    }
}

/// Parses a bucket bound the way Go's `strconv.ParseFloat` does for the values Prometheus
/// writes (`+Inf`, `0.5`, `1e3`).
fn parse_le(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    match lower.trim_start_matches(['+', '-']) {
        "inf" | "infinity" => {
            return Some(if lower.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            });
        }
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    s.parse().ok()
}

/// Prometheus' `bucketQuantile` over classic buckets `(upper bound, cumulative count)`.
pub(crate) fn bucket_quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    match buckets.last() {
        Some((ub, _)) if *ub == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    // Coalesce buckets with the same bound.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for b in buckets {
        match merged.last_mut() {
            Some(last) if last.0 == b.0 => last.1 += b.1,
            _ => merged.push(b),
        }
    }
    // Ensure the counts are monotonic.
    let mut max = f64::NEG_INFINITY;
    for b in &mut merged {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
    if merged.len() < 2 {
        return f64::NAN;
    }
    let observations = merged[merged.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let n = merged.len() - 1;
    let b = merged[..n].partition_point(|x| x.1 < rank);
    if b == n {
        return merged[n - 1].0;
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return merged[0].0;
    }
    let mut bucket_start = 0.0;
    let bucket_end = merged[b].0;
    let mut count = merged[b].1;
    if b > 0 {
        bucket_start = merged[b - 1].0;
        count -= merged[b - 1].1;
        rank -= merged[b - 1].1;
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

fn histogram_quantile(q: f64, v: Vec<Elem>) -> Result<Val, QueryError> {
    // Buckets grouped by all labels except `le` (the metric name included), in first-seen
    // order; the result drops `le` and the name.
    type Buckets = Vec<(f64, f64)>;
    let mut groups: Vec<(String, Arc<Labels>, Buckets)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for e in v {
        let Some(upper) = e.labels.get("le").and_then(parse_le) else {
            continue;
        };
        let key = super::binary::signature(&e.labels, false, &["le"], false);
        match index.get(&key) {
            Some(&i) => groups[i].2.push((upper, e.value)),
            None => {
                let labels = Arc::new(labels_from(
                    e.labels
                        .iter()
                        .filter(|(n, _)| *n != "le" && *n != METRIC_NAME),
                ));
                index.insert(key.clone(), groups.len());
                groups.push((key, labels, vec![(upper, e.value)]));
            }
        }
    }
    let out: Vec<Elem> = groups
        .into_iter()
        .map(|(_, labels, buckets)| Elem {
            labels,
            value: bucket_quantile(q, buckets),
        })
        .collect();
    check_duplicates(&out)?;
    Ok(Val::Vector(out))
}

fn label_replace(ev: &mut Evaluator<'_>, call: &Call, t: i64) -> Result<Val, QueryError> {
    let v = ev.vector_arg(arg(call, 0)?, t)?;
    let dst = ev.string_arg(arg(call, 1)?, t)?;
    let replacement = ev.string_arg(arg(call, 2)?, t)?;
    let src = ev.string_arg(arg(call, 3)?, t)?;
    let pattern = ev.string_arg(arg(call, 4)?, t)?;
    let re = ev
        .label_replace_regexes
        .entry(pattern.clone())
        .or_insert_with(|| {
            crate::regex_limits::check(&pattern).ok()?;
            Regex::new(&format!("^(?:{pattern})$")).ok()
        })
        .clone()
        .ok_or_else(|| {
            QueryError::Execution(format!(
                "invalid regular expression in label_replace(): {pattern}"
            ))
        })?;
    if !valid_label_name(&dst) {
        return Err(QueryError::Execution(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    let mut out = Vec::with_capacity(v.len());
    for e in v {
        let src_value = e.labels.get(&src).unwrap_or("");
        let labels = match re.captures(src_value) {
            None => e.labels.clone(),
            Some(caps) => {
                let mut value = String::new();
                caps.expand(&replacement, &mut value);
                let mut pairs: Vec<(String, String)> = e
                    .labels
                    .iter()
                    .filter(|(n, _)| *n != dst)
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect();
                pairs.push((dst.clone(), value));
                Arc::new(Labels::new(pairs))
            }
        };
        out.push(Elem {
            labels,
            value: e.value,
        });
    }
    check_duplicates(&out)?;
    Ok(Val::Vector(out))
}

fn label_join(ev: &mut Evaluator<'_>, call: &Call, t: i64) -> Result<Val, QueryError> {
    let v = ev.vector_arg(arg(call, 0)?, t)?;
    let dst = ev.string_arg(arg(call, 1)?, t)?;
    let sep = ev.string_arg(arg(call, 2)?, t)?;
    let mut sources = Vec::new();
    for i in 3..call.args.args.len() {
        let src = ev.string_arg(arg(call, i)?, t)?;
        if !valid_label_name(&src) {
            return Err(QueryError::Execution(format!(
                "invalid source label name in label_join(): {src}"
            )));
        }
        sources.push(src);
    }
    if !valid_label_name(&dst) {
        return Err(QueryError::Execution(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    let mut out = Vec::with_capacity(v.len());
    for e in v {
        let joined = sources
            .iter()
            .map(|s| e.labels.get(s).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(&sep);
        let mut pairs: Vec<(String, String)> = e
            .labels
            .iter()
            .filter(|(n, _)| *n != dst)
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        pairs.push((dst.clone(), joined));
        out.push(Elem {
            labels: Arc::new(Labels::new(pairs)),
            value: e.value,
        });
    }
    check_duplicates(&out)?;
    Ok(Val::Vector(out))
}

/// Sorts by value as Prometheus 2.42 does (`sort.Sort(sort.Reverse(…))` over its value heaps,
/// whose `Less` treats NaN as smallest): NaNs last for both `sort` and `sort_desc`.
fn sort_by_value(mut v: Vec<Elem>, descending: bool) -> Vec<Elem> {
    v.sort_by(|a, b| match (a.value.is_nan(), b.value.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        (false, false) if descending => b.value.total_cmp(&a.value),
        (false, false) => a.value.total_cmp(&b.value),
    });
    v
}

fn unsupported(name: &str) -> QueryError {
    QueryError::Unsupported(format!(
        "function call {name}() is not supported: this collector evaluates PromQL as Prometheus 2.x does over float samples (no native histograms)"
    ))
}

/// Evaluates a function call at `t`.
pub(crate) fn call(ev: &mut Evaluator<'_>, call: &Call, t: i64) -> Result<Val, QueryError> {
    let name = call.func.name;
    match name {
        "time" => Ok(Val::Scalar(t as f64 / 1000.0)),
        "pi" => Ok(Val::Scalar(PI)),
        "vector" => {
            let value = ev.scalar_arg(arg(call, 0)?, t)?;
            Ok(Val::Vector(vec![Elem {
                labels: empty_labels(),
                value,
            }]))
        }
        "scalar" => {
            let v = ev.vector_arg(arg(call, 0)?, t)?;
            Ok(Val::Scalar(if v.len() == 1 {
                v[0].value
            } else {
                f64::NAN
            }))
        }
        "abs" => per_element(ev, call, t, f64::abs),
        "ceil" => per_element(ev, call, t, f64::ceil),
        "floor" => per_element(ev, call, t, f64::floor),
        "exp" => per_element(ev, call, t, f64::exp),
        "sqrt" => per_element(ev, call, t, f64::sqrt),
        "ln" => per_element(ev, call, t, f64::ln),
        "log2" => per_element(ev, call, t, f64::log2),
        "log10" => per_element(ev, call, t, f64::log10),
        "sin" => per_element(ev, call, t, f64::sin),
        "cos" => per_element(ev, call, t, f64::cos),
        "tan" => per_element(ev, call, t, f64::tan),
        "asin" => per_element(ev, call, t, f64::asin),
        "acos" => per_element(ev, call, t, f64::acos),
        "atan" => per_element(ev, call, t, f64::atan),
        "sinh" => per_element(ev, call, t, f64::sinh),
        "cosh" => per_element(ev, call, t, f64::cosh),
        "tanh" => per_element(ev, call, t, f64::tanh),
        "asinh" => per_element(ev, call, t, f64::asinh),
        "acosh" => per_element(ev, call, t, f64::acosh),
        "atanh" => per_element(ev, call, t, f64::atanh),
        "deg" => per_element(ev, call, t, |v| v * 180.0 / PI),
        "rad" => per_element(ev, call, t, |v| v * PI / 180.0),
        "sgn" => per_element(ev, call, t, |v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        }),
        "round" => {
            let to_nearest = match call.args.args.get(1) {
                Some(a) => ev.scalar_arg(a, t)?,
                None => 1.0,
            };
            let inverse = 1.0 / to_nearest;
            per_element(ev, call, t, |v| (v * inverse + 0.5).floor() / inverse)
        }
        "clamp" => {
            let min = ev.scalar_arg(arg(call, 1)?, t)?;
            let max = ev.scalar_arg(arg(call, 2)?, t)?;
            if max < min {
                // Evaluate the vector anyway so its errors surface, then answer nothing.
                ev.vector_arg(arg(call, 0)?, t)?;
                return Ok(Val::Vector(Vec::new()));
            }
            per_element(ev, call, t, |v| go_max(min, go_min(max, v)))
        }
        "clamp_min" => {
            let min = ev.scalar_arg(arg(call, 1)?, t)?;
            per_element(ev, call, t, |v| go_max(min, v))
        }
        "clamp_max" => {
            let max = ev.scalar_arg(arg(call, 1)?, t)?;
            per_element(ev, call, t, |v| go_min(max, v))
        }
        "year" | "month" | "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month"
        | "hour" | "minute" => {
            if call.args.args.is_empty() {
                return Ok(Val::Vector(vec![Elem {
                    labels: empty_labels(),
                    value: date_part(name, t as f64 / 1000.0),
                }]));
            }
            per_element(ev, call, t, |v| date_part(name, v))
        }
        "timestamp" => {
            let a = arg(call, 0)?;
            let out: Vec<Elem> = match unwrap_parens(a) {
                // A selector's samples keep their own timestamps here.
                Expr::VectorSelector(vs) => ev
                    .instant_selector(vs, t)?
                    .into_iter()
                    .map(|(labels, s)| Elem {
                        labels: drop_name(&labels),
                        value: s.timestamp_ms as f64 / 1000.0,
                    })
                    .collect(),
                other => ev
                    .vector_arg(other, t)?
                    .into_iter()
                    .map(|e| Elem {
                        labels: drop_name(&e.labels),
                        value: t as f64 / 1000.0,
                    })
                    .collect(),
            };
            check_duplicates(&out)?;
            Ok(Val::Vector(out))
        }
        "absent" | "absent_over_time" => {
            let a = arg(call, 0)?;
            let empty = if name == "absent" {
                ev.vector_arg(a, t)?.is_empty()
            } else {
                ev.range_arg(a, t)?.is_empty()
            };
            // One element with the labels the selector's equality matchers name, or nothing.
            Ok(Val::Vector(if empty {
                vec![Elem {
                    labels: absent_labels(a),
                    value: 1.0,
                }]
            } else {
                Vec::new()
            }))
        }
        "sort" | "sort_desc" => {
            let v = ev.vector_arg(arg(call, 0)?, t)?;
            Ok(Val::Vector(sort_by_value(v, name == "sort_desc")))
        }
        "label_replace" => label_replace(ev, call, t),
        "label_join" => label_join(ev, call, t),
        "histogram_quantile" => {
            let q = ev.scalar_arg(arg(call, 0)?, t)?;
            let v = ev.vector_arg(arg(call, 1)?, t)?;
            histogram_quantile(q, v)
        }
        "rate" | "increase" | "delta" => {
            let is_counter = name != "delta";
            let is_rate = name == "rate";
            over_time(ev, call, 0, t, false, |r, s| {
                Ok(extrapolated_rate(
                    s.samples, r.start, r.end, r.range_ms, is_counter, is_rate,
                ))
            })
        }
        "irate" => over_time(ev, call, 0, t, false, |_, s| {
            Ok(instant_value(s.samples, true))
        }),
        "idelta" => over_time(ev, call, 0, t, false, |_, s| {
            Ok(instant_value(s.samples, false))
        }),
        "deriv" => over_time(ev, call, 0, t, false, |_, s| {
            Ok((s.samples.len() >= 2)
                .then(|| linear_regression(s.samples, s.samples[0].timestamp_ms).0))
        }),
        "predict_linear" => {
            let duration = ev.scalar_arg(arg(call, 1)?, t)?;
            over_time(ev, call, 0, t, false, |_, s| {
                Ok((s.samples.len() >= 2).then(|| {
                    let (slope, intercept) = linear_regression(s.samples, t);
                    slope * duration + intercept
                }))
            })
        }
        "resets" | "changes" => over_time(ev, call, 0, t, false, |_, s| {
            let mut n = 0u32;
            for w in s.samples.windows(2) {
                let (prev, cur) = (w[0].value, w[1].value);
                let counted = if name == "resets" {
                    cur < prev
                } else {
                    cur != prev && !(cur.is_nan() && prev.is_nan())
                };
                if counted {
                    n += 1;
                }
            }
            Ok(Some(f64::from(n)))
        }),
        "avg_over_time" => over_time(ev, call, 0, t, false, |_, s| Ok(Some(avg(s.samples)))),
        "sum_over_time" => over_time(ev, call, 0, t, false, |_, s| Ok(Some(sum(s.samples)))),
        "count_over_time" => over_time(ev, call, 0, t, false, |_, s| {
            Ok(Some(s.samples.len() as f64))
        }),
        "min_over_time" | "max_over_time" => over_time(ev, call, 0, t, false, |_, s| {
            let mut best = s.samples[0].value;
            for x in s.samples {
                let better = if name == "max_over_time" {
                    x.value > best
                } else {
                    x.value < best
                };
                if better || best.is_nan() {
                    best = x.value;
                }
            }
            Ok(Some(best))
        }),
        "last_over_time" => over_time(ev, call, 0, t, true, |_, s| {
            Ok(s.samples.last().map(|x| x.value))
        }),
        "present_over_time" => over_time(ev, call, 0, t, false, |_, _| Ok(Some(1.0))),
        "stddev_over_time" => over_time(ev, call, 0, t, false, |_, s| {
            Ok(Some(variance(s.samples).sqrt()))
        }),
        "stdvar_over_time" => {
            over_time(ev, call, 0, t, false, |_, s| Ok(Some(variance(s.samples))))
        }
        "quantile_over_time" => {
            let q = ev.scalar_arg(arg(call, 0)?, t)?;
            over_time(ev, call, 1, t, false, |_, s| {
                Ok(Some(quantile(
                    q,
                    s.samples.iter().map(|x| x.value).collect(),
                )))
            })
        }
        // `holt_winters` in Prometheus 2.x, renamed in 3.x.
        "holt_winters" | "double_exponential_smoothing" => {
            let sf = ev.scalar_arg(arg(call, 1)?, t)?;
            let tf = ev.scalar_arg(arg(call, 2)?, t)?;
            over_time(ev, call, 0, t, false, |_, s| {
                if sf <= 0.0 || sf >= 1.0 {
                    return Err(QueryError::Execution(format!(
                        "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
                    )));
                }
                if tf <= 0.0 || tf >= 1.0 {
                    return Err(QueryError::Execution(format!(
                        "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
                    )));
                }
                Ok(holt_winters(s.samples, sf, tf))
            })
        }
        other => Err(unsupported(other)),
    }
}
