#![allow(clippy::unwrap_used)]

use super::*;
use crate::model::SeriesSamples;
use crate::store::{StoreOptions, WriteBatch};

async fn engine(points: &[(&str, &str, i64, f64)]) -> (Engine, tempfile::TempDir) {
    engine_with(points, 100, 10_000).await
}

async fn engine_with(
    points: &[(&str, &str, i64, f64)],
    max_series: usize,
    max_samples: usize,
) -> (Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreOptions::new(dir.path())).unwrap();
    let mut batch = WriteBatch::default();
    for (name, host, t, v) in points {
        batch.series.push(SeriesSamples {
            labels: Labels::new(vec![
                ("__name__".into(), name.to_string()),
                ("host".into(), host.to_string()),
            ]),
            samples: vec![Sample {
                timestamp_ms: *t,
                value: *v,
            }],
        });
    }
    store.write(batch).await.unwrap();
    let limits = QueryLimits {
        max_series,
        max_samples,
        timeout: Duration::from_secs(10),
    };
    (Engine::new(store, limits), dir)
}

fn vector(v: Value) -> Vec<(String, f64)> {
    match v {
        Value::Vector(v) => v
            .into_iter()
            .map(|(l, s)| (l.get("host").unwrap_or("").to_owned(), s.value))
            .collect(),
        other => panic!("not a vector: {other:?}"),
    }
}

/// Regex matchers are anchored, and a `{` that starts no repetition is a literal, as in
/// Prometheus (Go's RE2); Rust's regex syntax alone would refuse `a{1`.
#[tokio::test]
async fn regex_matchers_are_anchored_and_read_a_lone_brace_as_go_does() {
    let (e, _d) = engine(&[
        ("up", "a", 1_000, 1.0),
        ("up", "ab", 1_000, 2.0),
        ("up", "a{1", 1_000, 3.0),
    ])
    .await;
    assert_eq!(
        vector(e.instant("up{host=~\"a\"}", 2_000).await.unwrap()),
        vec![("a".into(), 1.0)]
    );
    assert_eq!(
        vector(e.instant("up{host=~\"a{1\"}", 2_000).await.unwrap()),
        vec![("a{1".into(), 3.0)]
    );
    assert_eq!(
        vector(e.instant("up{host!~\"a.+\"}", 2_000).await.unwrap()),
        vec![("a".into(), 1.0)]
    );
}

#[tokio::test]
async fn instant_selector_uses_lookback_and_matchers() {
    let (e, _d) = engine(&[
        ("up", "a", 1_000, 1.0),
        ("up", "a", 61_000, 2.0),
        ("up", "b", 1_000, 3.0),
        ("down", "a", 1_000, 4.0),
    ])
    .await;
    assert_eq!(
        vector(e.instant("up", 61_000).await.unwrap()),
        vec![("a".into(), 2.0), ("b".into(), 3.0)]
    );
    assert_eq!(
        vector(e.instant("up{host=~\"a|c\"}", 30_000).await.unwrap()),
        vec![("a".into(), 1.0)]
    );
    assert_eq!(
        vector(e.instant("up{host!=\"a\"}", 30_000).await.unwrap()),
        vec![("b".into(), 3.0)]
    );
    assert_eq!(
        vector(e.instant("up{host!~\"a\"}", 30_000).await.unwrap()),
        vec![("b".into(), 3.0)]
    );
    // b's only sample is 5 minutes and more away: gone.
    assert_eq!(
        vector(e.instant("up", 302_000).await.unwrap()),
        vec![("a".into(), 2.0)]
    );
    // Offset looks back.
    assert_eq!(
        vector(e.instant("up offset 1m", 61_000).await.unwrap()),
        vec![("a".into(), 1.0), ("b".into(), 3.0)]
    );
    assert_eq!(
        vector(
            e.instant("{__name__=~\"up|down\", host=\"a\"}", 2_000)
                .await
                .unwrap()
        )
        .len(),
        2
    );
}

#[tokio::test]
async fn range_selector_and_range_query() {
    let (e, _d) = engine(&[
        ("up", "a", 0, 1.0),
        ("up", "a", 10_000, 2.0),
        ("up", "a", 20_000, 3.0),
    ])
    .await;
    match e.instant("up[10s]", 20_000).await.unwrap() {
        Value::Matrix(m) => assert_eq!(m[0].1.len(), 2),
        other => panic!("{other:?}"),
    }
    match e.range("up", 0, 30_000, 5_000).await.unwrap() {
        Value::Matrix(m) => {
            let v: Vec<f64> = m[0].1.iter().map(|s| s.value).collect();
            assert_eq!(v, vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 3.0]);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn stale_markers_end_a_series() {
    let (e, _d) = engine(&[
        ("up", "a", 0, 1.0),
        ("up", "a", 10_000, f64::from_bits(STALE_NAN_BITS)),
    ])
    .await;
    assert_eq!(vector(e.instant("up", 5_000).await.unwrap()).len(), 1);
    assert_eq!(vector(e.instant("up", 15_000).await.unwrap()).len(), 0);
}

#[tokio::test]
async fn errors_are_typed() {
    let (e, _d) = engine(&[("up", "a", 0, 1.0)]).await;
    let err = e.instant("up{", 0).await.unwrap_err();
    assert_eq!(err.error_type(), "bad_data");
    assert!(err.to_string().starts_with("1:4: parse error:"), "{err}");
    let err = e.instant("histogram_count(up)", 0).await.unwrap_err();
    assert_eq!(err.error_type(), "execution");
    assert!(err.to_string().contains("histogram_count"), "{err}");
    let err = e.instant("limitk(1, up)", 0).await.unwrap_err();
    assert_eq!(err.error_type(), "execution");
    assert!(err.to_string().contains("limitk"), "{err}");
    let err = e.instant("up{a=\"x\" or b=\"y\"}", 0).await.unwrap_err();
    assert!(err.to_string().contains("`or`"), "{err}");
    let err = e.instant("{host=\"\"}", 0).await.unwrap_err();
    assert!(err.to_string().contains("non-empty matcher"));
    let err = e.range("up", 0, 10, 0).await.unwrap_err();
    assert_eq!(err.error_type(), "bad_data");
    assert!(matches!(e.instant("1", 5).await.unwrap(), Value::Scalar(_)));
}

#[tokio::test]
async fn limits_refuse_instead_of_loading() {
    let mut points = Vec::new();
    for i in 0..20 {
        points.push(("up", "a", i * 1_000, i as f64));
        points.push(("up", "b", i * 1_000, i as f64));
    }
    points.push(("up", "c", 0, 1.0));
    let (e, _d) = engine_with(&points, 2, 30).await;
    let err = e.instant("up", 20_000).await.unwrap_err();
    assert_eq!(err.error_type(), "execution");
    assert!(err.to_string().contains("series"), "{err}");
    let err = e
        .instant("sum_over_time(up{host=~\"a|b\"}[1m])", 20_000)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "execution");
    assert!(err.to_string().contains("samples"), "{err}");
    // Within limits the same data answers.
    let v = e.instant("sum(up{host=\"a\"})", 19_000).await.unwrap();
    assert_eq!(vector(v), vec![("".into(), 19.0)]);
    // A range query's output counts too.
    let err = e.range("vector(1)", 0, 100_000, 1_000).await.unwrap_err();
    assert!(err.to_string().contains("too many samples"), "{err}");
}

#[tokio::test]
async fn full_promql_through_the_engine() {
    let (e, _d) = engine(&[
        ("req", "a", 0, 0.0),
        ("req", "a", 60_000, 60.0),
        ("req", "a", 120_000, 120.0),
        ("req", "b", 0, 10.0),
        ("req", "b", 60_000, 20.0),
        ("req", "b", 120_000, 30.0),
    ])
    .await;
    let v = vector(e.instant("rate(req[2m])", 120_000).await.unwrap());
    assert_eq!(v.len(), 2);
    assert!((v[0].1 - 1.0).abs() < 1e-12, "{v:?}");
    let v = vector(
        e.instant("sum by (host) (increase(req[2m])) > 50", 120_000)
            .await
            .unwrap(),
    );
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].0, "a");
    match e
        .range("sum(req) + time() * 0", 0, 120_000, 60_000)
        .await
        .unwrap()
    {
        Value::Matrix(m) => {
            assert_eq!(m.len(), 1);
            let vals: Vec<f64> = m[0].1.iter().map(|s| s.value).collect();
            assert_eq!(vals, vec![10.0, 80.0, 150.0]);
        }
        other => panic!("{other:?}"),
    }
    // A subquery.
    let v = vector(
        e.instant("max_over_time(sum(req)[2m:1m])", 120_000)
            .await
            .unwrap(),
    );
    assert_eq!(v, vec![("".into(), 150.0)]);
    // A short explicit timeout still answers a small query.
    let v = e
        .instant_with_timeout("sum(req)", 120_000, Some(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(vector(v), vec![("".into(), 150.0)]);
}

/// Compiling a pathological regex matcher takes long (here a few tenths of a second); the engine does
/// it on a blocking thread, so the runtime (one thread in this test) keeps running its other
/// tasks meanwhile, as ingest acknowledgements and the watchdog need.
#[tokio::test(flavor = "current_thread")]
async fn a_slow_regex_compiles_off_the_runtime() {
    let query = r#"up{host=~"\\w{1,100}z\\w{1,100}"}"#;
    let (e, _d) = engine(&[("up", "a", 1_000, 1.0)]).await;

    // A task that notes the longest it went without being run.
    let longest_gap = Arc::new(std::sync::Mutex::new(Duration::ZERO));
    let ticker = {
        let longest_gap = longest_gap.clone();
        tokio::spawn(async move {
            let mut last = std::time::Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let gap = last.elapsed();
                last = std::time::Instant::now();
                let mut longest = longest_gap.lock().unwrap();
                *longest = (*longest).max(gap);
            }
        })
    };
    tokio::task::yield_now().await;
    // Measured over the same stretch as the gaps, so a loaded machine slows both alike.
    let started = std::time::Instant::now();
    let result = e.instant(query, 2_000).await;
    let query_time = started.elapsed();
    ticker.abort();
    assert_eq!(vector(result.unwrap()), vec![]);
    let gap = *longest_gap.lock().unwrap();
    assert!(
        gap < query_time / 2,
        "the runtime stalled for {gap:?} of the query's {query_time:?}"
    );
}
