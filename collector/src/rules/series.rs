//! promtool's notation for unit-test input: series selectors (`up{job="a"}`) and values in
//! expanding notation. Pure; used by the unit-test runner.
//!
//! Values are separated by whitespace; each item is one of (Prometheus 2.42's grammar):
//! - `a` — one value: a number (`1`, `-2.5`, `1e3`, `.5`, `+3`, `Inf`, `-Inf`, `NaN`, any case)
//!   or `stale` (a staleness marker, which cannot be repeated with `x`, as in promtool);
//! - `axn` — `a` repeated n+1 times (`0x3` is four zeros: `x` always means "times");
//! - `a+bxn` / `a-bxn` — n+1 values from `a`, adding `b` each time;
//! - `_` — one missing sample; `_xn` — n missing samples (not n+1).
//!
//! Sample i (missing ones included) is at `i * interval`.
//!
//! One values string expands to at most [`MAX_VALUES`] entries (promtool has no limit and runs
//! out of memory instead): `1x18446744073709551615` is an error, not an overflow or an
//! allocation of exabytes.

use crate::model::METRIC_NAME;
use crate::receiver::convert::STALE_NAN_BITS;

/// The most entries one values string may expand to: a million samples is 11 days at 1s or
/// almost two years at 1m, far more than a unit test reads.
pub const MAX_VALUES: usize = 1_000_000;

/// A problem in a values string, at a byte offset in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValuesError {
    pub offset: usize,
    pub message: String,
}

/// The staleness marker's value.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Expands a values string: one entry per interval, `None` where the sample is missing.
pub fn parse_values(text: &str) -> Result<Vec<Option<f64>>, ValuesError> {
    let mut out = Vec::new();
    let mut offset = 0;
    for token in text.split_whitespace() {
        // `split_whitespace` hides offsets; find the token from where the last one ended.
        let start = text[offset..].find(token).map_or(offset, |i| offset + i);
        offset = start + token.len();
        item(token, &mut out).map_err(|message| ValuesError {
            offset: start,
            message,
        })?;
    }
    Ok(out)
}

fn item(token: &str, out: &mut Vec<Option<f64>>) -> Result<(), String> {
    let (head, times) = match token.rfind('x') {
        Some(i) if i > 0 => {
            let count = &token[i + 1..];
            let n: usize = count
                .parse()
                .ok()
                .filter(|_| count.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| format!("invalid repetition count {count:?} in {token:?}"))?;
            (&token[..i], Some(n))
        }
        _ => (token, None),
    };
    // `_xn` is n entries, every other `…xn` is n + 1.
    let entries = match times {
        None => Some(1),
        Some(n) if head == "_" => Some(n),
        Some(n) => n.checked_add(1),
    };
    if entries.is_none_or(|e| out.len().saturating_add(e) > MAX_VALUES) {
        return Err(format!(
            "{token:?} expands the series past {MAX_VALUES} values"
        ));
    }
    if head == "_" {
        out.extend(std::iter::repeat_n(None, times.unwrap_or(1)));
        return Ok(());
    }
    if head == "stale" && times.is_some() {
        // promtool reads `stalex2` as one identifier and refuses it.
        return Err(format!(
            "unexpected {token:?}, expected a number or \"stale\""
        ));
    }
    let (start, delta) = split_delta(head);
    let start_value = value(start).map_err(|e| format!("{e} in {token:?}"))?;
    match (delta, times) {
        (None, None) => out.push(Some(start_value)),
        (None, Some(n)) => out.extend(std::iter::repeat_n(Some(start_value), n + 1)),
        (Some(delta), Some(n)) => {
            if start == "stale" {
                return Err(format!(
                    "{token:?}: a staleness marker cannot be incremented"
                ));
            }
            let delta = number(delta).map_err(|e| format!("{e} in {token:?}"))?;
            // Accumulated, not multiplied, so the values are bit-for-bit Prometheus'.
            let mut v = start_value;
            for _ in 0..=n {
                out.push(Some(v));
                v += delta;
            }
        }
        (Some(_), None) => {
            return Err(format!(
                "{token:?}: an increment must be followed by x and a count (\"1+2x3\")"
            ));
        }
    }
    Ok(())
}

/// Splits `a+b` / `a-b` at the sign of the increment (not a leading sign, not an exponent's).
fn split_delta(head: &str) -> (&str, Option<&str>) {
    let bytes = head.as_bytes();
    for i in 1..bytes.len() {
        if (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E') {
            return (&head[..i], Some(&head[i..]));
        }
    }
    (head, None)
}

fn value(s: &str) -> Result<f64, String> {
    if s == "stale" {
        return Ok(stale_nan());
    }
    number(s)
}

fn number(s: &str) -> Result<f64, String> {
    let unsigned = s.trim_start_matches(['+', '-']);
    let plain = !unsigned.is_empty()
        && unsigned
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    let special = ["inf", "nan"].contains(&unsigned.to_ascii_lowercase().as_str());
    if !(plain || special) || s.len() - unsigned.len() > 1 {
        return Err(format!("invalid number {s:?}"));
    }
    s.parse::<f64>()
        .map_err(|_| format!("invalid number {s:?}"))
}

/// Parses a series in selector notation (`metric{a="b"}`, `{__name__="m", a="b"}`, `metric`,
/// or `""`/`{}` for no labels) into label pairs. Only `=` matchers make sense for a series.
pub fn parse_series(text: &str) -> Result<Vec<(String, String)>, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed == "{}" {
        return Ok(Vec::new());
    }
    let expr = crate::query::parse(trimmed).map_err(|e| e.to_string())?;
    let promql_parser::parser::Expr::VectorSelector(vs) = expr else {
        return Err(format!(
            "{trimmed:?} is not a series (metric{{label=\"value\"}})"
        ));
    };
    if vs.offset.is_some() || vs.at.is_some() || !vs.matchers.or_matchers.is_empty() {
        return Err(format!(
            "{trimmed:?} is not a series (metric{{label=\"value\"}})"
        ));
    }
    let mut pairs = Vec::new();
    if let Some(name) = vs.name {
        pairs.push((METRIC_NAME.to_owned(), name));
    }
    for m in vs.matchers.matchers {
        if !matches!(m.op, promql_parser::label::MatchOp::Equal) {
            return Err(format!(
                "{trimmed:?}: a series can only have label=\"value\" pairs, not {}",
                m.op
            ));
        }
        pairs.push((m.name, m.value));
    }
    pairs.sort();
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn vals(s: &str) -> Vec<Option<f64>> {
        parse_values(s).unwrap()
    }

    /// Each case checked against promtool 2.42 (`promql_expr_test` at every minute).
    #[test]
    fn expanding_notation_like_promtool() {
        assert_eq!(vals("1+1x2"), vec![Some(1.0), Some(2.0), Some(3.0)]);
        assert_eq!(
            vals("0x3 5"),
            vec![Some(0.0); 4]
                .into_iter()
                .chain([Some(5.0)])
                .collect::<Vec<_>>()
        );
        assert_eq!(vals("1e1+1x1"), vec![Some(10.0), Some(11.0)]);
        assert_eq!(vals("-1-1x1"), vec![Some(-1.0), Some(-2.0)]);
        assert_eq!(
            vals("2x2 3"),
            vec![Some(2.0), Some(2.0), Some(2.0), Some(3.0)]
        );
        assert_eq!(vals("_x2 1"), vec![None, None, Some(1.0)]);
        assert_eq!(vals("_ 1"), vec![None, Some(1.0)]);
        assert_eq!(
            vals("1 -1x2"),
            vec![Some(1.0), Some(-1.0), Some(-1.0), Some(-1.0)]
        );
        assert_eq!(vals("1e3x1"), vec![Some(1000.0), Some(1000.0)]);
        assert_eq!(vals(".5 +3"), vec![Some(0.5), Some(3.0)]);
        assert_eq!(
            vals("10-2x3"),
            vec![Some(10.0), Some(8.0), Some(6.0), Some(4.0)]
        );
        assert_eq!(vals("1e-3+1e-3x1"), vec![Some(0.001), Some(0.002)]);
        assert_eq!(vals(""), vec![]);
        let v = vals("Inf -Inf NaN inf stale");
        assert_eq!(v[0], Some(f64::INFINITY));
        assert_eq!(v[1], Some(f64::NEG_INFINITY));
        assert!(v[2].unwrap().is_nan() && v[3].unwrap().is_infinite());
        assert_eq!(v[4].unwrap().to_bits(), STALE_NAN_BITS);
        assert!(parse_values("stalex1").is_err());
        assert!(parse_values("staleX1").is_err());
        assert_eq!(vals("Inf+1x1"), vec![Some(f64::INFINITY); 2]);
    }

    #[test]
    fn bad_values_name_the_item_and_its_offset() {
        let e = parse_values("1 2 1+1").unwrap_err();
        assert_eq!(e.offset, 4);
        assert!(e.message.contains("increment"), "{e}");
        let e = parse_values("1 foo").unwrap_err();
        assert_eq!(
            (e.offset, e.message.as_str()),
            (2, "invalid number \"foo\" in \"foo\"")
        );
        assert!(parse_values("1,2").is_err());
        assert!(parse_values("1x").is_err());
        assert!(parse_values("1xa").is_err());
        assert!(parse_values("1_000").is_err());
        assert!(parse_values("stale+1x2").is_err());
        assert!(parse_values("--1").is_err());
    }

    /// Found by the `rule_unittest` fuzz target: the repetition count overflowed `n + 1` (a
    /// panic with overflow checks) or asked for more memory than there is.
    #[test]
    fn huge_repetition_counts_are_refused() {
        for text in [
            "1x18446744073709551615",
            "1+1x18446744073709551615",
            "_x18446744073709551615",
            "_x99999999999",
            "0x1000000",
            "1 2 0x999999",
        ] {
            let e = parse_values(text).unwrap_err();
            assert!(e.message.contains("expands the series past"), "{text}: {e}");
        }
        assert_eq!(vals("0x999999").len(), MAX_VALUES);
        assert_eq!(vals("_x1000000").len(), MAX_VALUES);
    }

    #[test]
    fn series_selectors() {
        assert_eq!(
            parse_series("up{job=\"a\", instance=\"x\"}").unwrap(),
            vec![
                ("__name__".to_owned(), "up".to_owned()),
                ("instance".to_owned(), "x".to_owned()),
                ("job".to_owned(), "a".to_owned()),
            ]
        );
        assert_eq!(
            parse_series("{__name__=\"m\"}").unwrap(),
            vec![("__name__".to_owned(), "m".to_owned())]
        );
        assert_eq!(parse_series("").unwrap(), vec![]);
        assert_eq!(parse_series("{}").unwrap(), vec![]);
        assert!(parse_series("up{a=~\"x\"}").is_err());
        assert!(parse_series("sum(up)").is_err());
        assert!(parse_series("up{").unwrap_err().contains("parse error"));
    }
}
