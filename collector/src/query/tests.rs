#![allow(clippy::unwrap_used)]

use super::*;
use crate::model::SeriesSamples;
use crate::store::{StoreOptions, WriteBatch};

async fn engine(points: &[(&str, &str, i64, f64)]) -> (Engine, tempfile::TempDir) {
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
        max_series: 100,
        max_samples: 10_000,
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
    let err = e.instant("sum(up)", 0).await.unwrap_err();
    assert_eq!(err.error_type(), "execution");
    assert!(err.to_string().contains("aggregation"), "{err}");
    let err = e.instant("{host=\"\"}", 0).await.unwrap_err();
    assert!(err.to_string().contains("non-empty matcher"));
    let err = e.range("up", 0, 10, 0).await.unwrap_err();
    assert_eq!(err.error_type(), "bad_data");
    assert!(matches!(e.instant("1", 5).await.unwrap(), Value::Scalar(_)));
}
