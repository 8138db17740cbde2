//! PromQL through the parser (with Prometheus-style error positions) and the pure evaluator,
//! as an instant query and as an 11-step range query over a small fixed data set in a
//! `MemorySource` (counters with a reset, a classic histogram, gauges with NaN and ±Inf, a
//! staleness marker, series sharing label sets). The input is the query text; a plain
//! selector also goes through the `match[]` path.
//!
//! Subqueries are the one way a short query asks for unbounded work (`x[100y:1s]` evaluates
//! 3·10⁹ inner steps, which Prometheus bounds only by the query timeout): queries whose
//! subquery steps multiply past `MAX_INNER_STEPS` are skipped.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use promql_parser::parser::{Expr, FunctionArgs};
use redline_collector::model::{Labels, Sample};
use redline_collector::query::{
    self, EvalOptions, MemorySource, evaluate_instant, evaluate_range, selector_matchers,
};
use redline_collector::store::SeriesData;

/// The query time: 2023-11-14T22:13:20Z.
const T: i64 = 1_700_000_000_000;
const SCRAPE_MS: i64 = 15_000;
/// The default subquery step (`[10m:]`), as the engine's evaluation interval.
const SUBQUERY_STEP_MS: i64 = 60_000;
const MAX_INNER_STEPS: u128 = 20_000;

fn series(pairs: &[(&str, &str)], value: impl Fn(i64) -> f64) -> SeriesData {
    let labels = Labels::new(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    // 40 minutes of scrapes up to T.
    let samples = (0..=160)
        .map(|i| Sample {
            timestamp_ms: T - (160 - i) * SCRAPE_MS,
            value: value(i),
        })
        .collect();
    SeriesData {
        labels: Arc::new(labels),
        samples,
    }
}

fn source() -> &'static MemorySource {
    static SOURCE: OnceLock<MemorySource> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let mut all = vec![
            series(
                &[("__name__", "up"), ("job", "node"), ("instance", "a:9100")],
                |_| 1.0,
            ),
            series(
                &[("__name__", "up"), ("job", "node"), ("instance", "b:9100")],
                |i| {
                    if i > 150 { 0.0 } else { 1.0 }
                },
            ),
            series(
                &[
                    ("__name__", "http_requests_total"),
                    ("job", "api"),
                    ("code", "200"),
                ],
                // A counter with a reset at i = 100.
                |i| {
                    if i < 100 {
                        (i * 10) as f64
                    } else {
                        ((i - 100) * 3) as f64
                    }
                },
            ),
            series(
                &[
                    ("__name__", "http_requests_total"),
                    ("job", "api"),
                    ("code", "500"),
                ],
                |i| (i / 7) as f64,
            ),
            series(
                &[("__name__", "temperature_celsius"), ("room", "a")],
                |i| match i % 40 {
                    13 => f64::NAN,
                    27 => f64::INFINITY,
                    33 => f64::NEG_INFINITY,
                    _ => 20.0 + (i as f64 / 10.0).sin() * 3.0,
                },
            ),
            series(
                &[("__name__", "temperature_celsius"), ("room", "b")],
                move |i| {
                    if i == 150 {
                        stale
                    } else {
                        -5.5 + i as f64 * 0.01
                    }
                },
            ),
            series(
                &[
                    ("__name__", "ALERTS"),
                    ("alertname", "Down"),
                    ("alertstate", "firing"),
                ],
                |_| 1.0,
            ),
            series(
                &[
                    ("__name__", "node_load1"),
                    ("instance", "a:9100"),
                    ("job", "node"),
                ],
                |i| (i % 17) as f64 / 4.0,
            ),
        ];
        for (le, share) in [("0.1", 0.5), ("0.5", 0.8), ("1", 0.95), ("+Inf", 1.0)] {
            all.push(series(
                &[
                    ("__name__", "rpc_duration_seconds_bucket"),
                    ("job", "api"),
                    ("le", le),
                ],
                move |i| (i as f64 * 20.0 * share).floor(),
            ));
        }
        all.push(series(
            &[("__name__", "rpc_duration_seconds_count"), ("job", "api")],
            |i| i as f64 * 20.0,
        ));
        all.push(series(
            &[("__name__", "rpc_duration_seconds_sum"), ("job", "api")],
            |i| i as f64 * 4.5,
        ));
        MemorySource::new(all)
    })
}

fn ms(d: std::time::Duration) -> u128 {
    d.as_millis().max(1)
}

/// The product of subquery step counts along the deepest nesting (how many times the
/// innermost expression is evaluated per outer step).
fn inner_steps(expr: &Expr) -> u128 {
    let args = |a: &FunctionArgs| a.args.iter().map(|e| inner_steps(e)).max().unwrap_or(1);
    match expr {
        Expr::Aggregate(a) => inner_steps(&a.expr).max(a.param.as_deref().map_or(1, inner_steps)),
        Expr::Unary(u) => inner_steps(&u.expr),
        Expr::Binary(b) => inner_steps(&b.lhs).max(inner_steps(&b.rhs)),
        Expr::Paren(p) => inner_steps(&p.expr),
        Expr::Subquery(s) => {
            let step = s.step.map_or(SUBQUERY_STEP_MS as u128, ms);
            (ms(s.range) / step + 1).saturating_mul(inner_steps(&s.expr))
        }
        Expr::Call(c) => args(&c.args),
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_)
        | Expr::Extension(_) => 1,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = query::parse(text) else {
        return;
    };
    // `match[]` runs the same checks and the same parser, then wants a plain selector: any
    // other text fails it the way it failed above. Calling it only for selectors saves a
    // second parse, whose regex compilation was most of the time per input.
    if matches!(expr, Expr::VectorSelector(_)) {
        let _ = selector_matchers(text);
    }
    if inner_steps(&expr) > MAX_INNER_STEPS {
        return;
    }
    let options = EvalOptions {
        subquery_step_ms: SUBQUERY_STEP_MS,
        max_samples: 500_000,
        ..EvalOptions::default()
    };
    let _ = evaluate_instant(&expr, T, source(), &options);
    let _ = evaluate_range(&expr, T - 10 * 60_000, T, 60_000, source(), &options);
});
