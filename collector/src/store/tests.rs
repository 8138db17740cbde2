#![allow(clippy::unwrap_used)]

use super::*;
use crate::model::{Labels, Matcher, Sample, SeriesSamples};

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
    )
}

fn batch(name: &str, host: &str, points: &[(i64, f64)]) -> WriteBatch {
    WriteBatch {
        series: vec![SeriesSamples {
            labels: labels(&[("__name__", name), ("host", host)]),
            samples: points
                .iter()
                .map(|&(t, v)| Sample {
                    timestamp_ms: t,
                    value: v,
                })
                .collect(),
        }],
        ..WriteBatch::default()
    }
}

async fn all(store: &Store, name: &str) -> Vec<SeriesData> {
    store
        .select(
            vec![Matcher::equal("__name__", name)],
            i64::MIN,
            i64::MAX,
            1000,
            1_000_000,
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn write_flush_read_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::new(dir.path());
    let store = Store::open(&options).unwrap();
    let out = store
        .write(batch("m", "a", &[(1000, 1.0), (2000, 2.0)]))
        .await
        .unwrap();
    assert_eq!(out.samples_accepted, 2);
    store.write(batch("m", "b", &[(1000, 5.0)])).await.unwrap();
    // Read from the head.
    let got = all(&store, "m").await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].samples.len(), 2);
    store.flush().await.unwrap();
    store.write(batch("m", "a", &[(3000, 3.0)])).await.unwrap();
    // Read across chunk and head.
    let got = all(&store, "m").await;
    let a: Vec<f64> = got[0].samples.iter().map(|s| s.value).collect();
    assert_eq!(a, vec![1.0, 2.0, 3.0]);
    // Drop without close: the wal row of the last write must be replayed.
    drop(store);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let store = Store::open(&options).unwrap();
    let got = all(&store, "m").await;
    let a: Vec<f64> = got[0].samples.iter().map(|s| s.value).collect();
    assert_eq!(a, vec![1.0, 2.0, 3.0]);
    assert_eq!(store.series_count(), 2);
    store.close().await.unwrap();
    assert!(matches!(
        store.write(batch("m", "a", &[(4000, 1.0)])).await,
        Err(StoreError::Closed)
    ));
}

#[tokio::test]
async fn duplicates_are_dropped_and_out_of_order_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreOptions::new(dir.path())).unwrap();
    store
        .write(batch("m", "a", &[(1000, 1.0), (2000, 2.0)]))
        .await
        .unwrap();
    // A retried delivery of the same samples.
    let out = store
        .write(batch("m", "a", &[(1000, 1.0), (2000, 2.0)]))
        .await
        .unwrap();
    assert_eq!(out.samples_accepted, 0);
    // 1000 is older than the newest (2000), but the head holds it: a duplicate too.
    assert_eq!(out.samples_rejected, 0, "{out:?}");
    assert_eq!(out.samples_duplicate, 2);
    // An older sample the head does not hold is out of order.
    let out = store.write(batch("m", "a", &[(1500, 1.5)])).await.unwrap();
    assert_eq!(out.samples_rejected, 1, "{out:?}");
    assert!(out.rejection.unwrap().contains("out-of-order"));
    // So is one at a held timestamp with another value.
    let out = store.write(batch("m", "a", &[(1000, 7.0)])).await.unwrap();
    assert_eq!(out.samples_rejected, 1, "{out:?}");
    let out = store.write(batch("m", "a", &[(2000, 9.0)])).await.unwrap();
    assert_eq!(out.samples_rejected, 1);
    assert!(out.rejection.unwrap().contains("different value"));
    assert_eq!(all(&store, "m").await[0].samples.len(), 2);
}

#[tokio::test]
async fn selectors_and_label_reads() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreOptions::new(dir.path())).unwrap();
    for host in ["a", "b", "c"] {
        store
            .write(batch("cpu", host, &[(1000, 1.0)]))
            .await
            .unwrap();
    }
    store
        .write(batch("mem", "a", &[(1000, 1.0)]))
        .await
        .unwrap();
    let re = Matcher::regex("host", "a|b", false).unwrap();
    assert_eq!(
        store
            .series(&[Matcher::equal("__name__", "cpu"), re.clone()])
            .len(),
        2
    );
    assert_eq!(store.series(&[re]).len(), 3);
    assert_eq!(store.label_values("host", &[]), vec!["a", "b", "c"]);
    assert_eq!(store.label_names(&[]), vec!["__name__", "host"]);
    assert_eq!(
        store.label_values("__name__", &[Matcher::equal("host", "b")]),
        vec!["cpu"]
    );
    let limited = store
        .select(vec![Matcher::equal("__name__", "cpu")], 0, 5000, 2, 100)
        .await;
    assert!(matches!(
        limited,
        Err(StoreError::TooManySeries { found: 3, limit: 2 })
    ));
}

#[tokio::test]
async fn retention_removes_old_data_and_dead_series() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreOptions::new(dir.path())).unwrap();
    store
        .write(batch("m", "old", &[(1000, 1.0)]))
        .await
        .unwrap();
    store
        .write(batch("m", "new", &[(9000, 1.0)]))
        .await
        .unwrap();
    store.flush().await.unwrap();
    let out = store.retain(5000).await.unwrap();
    assert_eq!(out.chunks, 1);
    assert_eq!(out.series, 1);
    assert_eq!(store.label_values("host", &[]), vec!["new"]);
}

#[tokio::test]
async fn many_series_compress_below_two_bytes_per_sample() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreOptions::new(dir.path())).unwrap();
    for step in 0..180i64 {
        let mut b = WriteBatch::default();
        for s in 0..50 {
            b.series.push(SeriesSamples {
                labels: labels(&[("__name__", "g"), ("s", &s.to_string())]),
                samples: vec![Sample {
                    timestamp_ms: 1_700_000_000_000 + step * 10_000,
                    value: (s * 1000 + step / 10) as f64,
                }],
            });
        }
        store.write(b).await.unwrap();
    }
    store.flush().await.unwrap();
    // The flushed wal rows' pages went back to the file system.
    assert_eq!(store.free_pages().await.unwrap(), 0);
    let (bytes, samples) = store.sample_footprint().await.unwrap();
    assert_eq!(samples, 9000);
    assert!((bytes as f64) / (samples as f64) < 2.0, "{bytes} bytes");
}

#[tokio::test]
async fn alert_state_persists_and_history_is_kept() {
    use crate::alert::state::{Alert, State};
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::new(dir.path());
    let store = Store::open(&options).unwrap();
    let alert = |state: State, resolved: Option<i64>| Alert {
        labels: labels(&[("alertname", "HighCPU"), ("instance", "a")]),
        annotations: std::collections::BTreeMap::from([("summary".to_owned(), "hot".to_owned())]),
        state,
        value: 97.5,
        active_at: 1000,
        fired_at: Some(61_000),
        resolved_at: resolved,
        keep_firing_since: None,
        last_seen: 61_000,
    };
    let mut writes = store.subscribe_writes();
    store
        .write(WriteBatch {
            alert_state: vec![RuleAlertState {
                rule_key: "f;g;HighCPU;0".into(),
                alerts: vec![alert(State::Firing, None)],
            }],
            ..batch("ALERTS", "a", &[(61_000, 1.0)])
        })
        .await
        .unwrap();
    assert_eq!(*writes.recv().await.unwrap(), vec!["ALERTS".to_owned()]);
    drop(store);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let store = Store::open(&options).unwrap();
    let loaded = store.load_alert_state().await.unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].alerts, vec![alert(State::Firing, None)]);
    // Resolution: state replaced, history appended.
    store
        .write(WriteBatch {
            alert_state: vec![RuleAlertState {
                rule_key: "f;g;HighCPU;0".into(),
                alerts: vec![],
            }],
            resolved_alerts: vec![("f;g;HighCPU;0".into(), alert(State::Inactive, Some(90_000)))],
            ..WriteBatch::default()
        })
        .await
        .unwrap();
    assert!(store.load_alert_state().await.unwrap().is_empty());
    let history = store.alert_history(0, 10).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].active_at, history[0].resolved_at),
        (1000, 90_000)
    );
    assert_eq!(store.retain(100_000).await.unwrap().alert_history, 1);
}

#[tokio::test]
async fn notifications_outbox_log_and_silences_survive_a_restart() {
    use crate::notify::{LabelSet, Notification, NotifyAlert};
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::new(dir.path());
    let notification = Notification {
        receiver: "ops".into(),
        group_key: "{}:{}".into(),
        group_labels: LabelSet::new(),
        alerts: vec![NotifyAlert {
            labels: LabelSet::from([("alertname".to_owned(), "A".to_owned())]),
            annotations: LabelSet::new(),
            starts_at_ms: 1,
            ends_at_ms: None,
            generator_url: "http://x".into(),
        }],
        now_ms: 5,
        external_url: String::new(),
        raw_body: None,
    };
    let entry = |key: &str| OutboxEntry {
        integration: "ops/webhook/0".into(),
        idempotency_key: key.into(),
        notification: notification.clone(),
        created_at: 5,
    };
    let log = NotificationLogEntry {
        group_key: "{}:{}".into(),
        integration: "ops/webhook/0".into(),
        firing: vec![u64::MAX, 7],
        resolved: vec![],
        sent_at: 5,
    };
    {
        let store = Store::open(&options).unwrap();
        let ids = store
            .enqueue_notifications(vec![entry("k1"), entry("k2")], vec![log.clone()])
            .await
            .unwrap();
        assert_eq!(ids.len(), 2);
        // Enqueuing the same idempotency key again is a no-op that returns the same id.
        let again = store
            .enqueue_notifications(vec![entry("k1")], vec![])
            .await
            .unwrap();
        assert_eq!(again, vec![ids[0]]);
        store
            .record_delivery_attempt(DeliveryAttempt {
                outbox_id: ids[0],
                integration: "ops/webhook/0".into(),
                at: 10,
                duration_ms: 3,
                outcome: AttemptOutcome::Retry,
                error: "503".into(),
                next_attempt_at: Some(20),
            })
            .await
            .unwrap();
        store
            .record_delivery_attempt(DeliveryAttempt {
                outbox_id: ids[1],
                integration: "ops/webhook/0".into(),
                at: 11,
                duration_ms: 3,
                outcome: AttemptOutcome::Delivered,
                error: String::new(),
                next_attempt_at: None,
            })
            .await
            .unwrap();
        store
            .put_silence(SilenceRow {
                id: "s1".into(),
                body: "{}".into(),
                ends_at: 100,
                updated_at: 1,
            })
            .await
            .unwrap();
        store.close().await.unwrap();
    }
    let store = Store::open(&options).unwrap();
    let pending = store.pending_notifications().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].idempotency_key, "k1");
    assert_eq!(pending[0].attempts, 1);
    assert_eq!(pending[0].next_attempt_at, 20);
    assert_eq!(pending[0].notification, notification);
    assert_eq!(store.load_notification_log().await.unwrap(), vec![log]);
    assert_eq!(store.load_silences().await.unwrap().len(), 1);
    let attempts = store.delivery_attempts(None, 10).await.unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].outcome, AttemptOutcome::Delivered);
    assert_eq!(
        store
            .notification_status(pending[0].id)
            .await
            .unwrap()
            .as_deref(),
        Some("pending")
    );
    // Pruning removes the finished entry, its attempt, the silence and the old log entry.
    assert_eq!(store.prune_notifications(50).await.unwrap(), 3);
    assert_eq!(store.prune_notifications(200).await.unwrap(), 1);
    assert_eq!(store.pending_notifications().await.unwrap().len(), 1);
}

/// A queue whose "encoder" records each sample as `name@t=v` text, so tests read what the
/// writer handed it.
fn text_queue(target: &str, max_bytes: u64) -> ForwardQueue {
    let target_name = target.to_owned();
    ForwardQueue {
        target: target.to_owned(),
        max_bytes,
        samples: Some(Arc::new(move |series| {
            let mut text = String::new();
            let mut items = 0;
            for (labels, samples) in series {
                for s in *samples {
                    text.push_str(&format!(
                        "{}@{}={};",
                        labels.metric_name(),
                        s.timestamp_ms,
                        s.value
                    ));
                    items += 1;
                }
            }
            vec![ForwardPayload {
                target: target_name.clone(),
                signal: "samples",
                items,
                bytes: text.into_bytes(),
            }]
        })),
    }
}

fn queued_text(rows: &[QueuedPayload]) -> Vec<String> {
    rows.iter()
        .map(|r| String::from_utf8(r.bytes.clone()).unwrap())
        .collect()
}

#[tokio::test]
async fn forward_queue_gets_accepted_samples_and_payloads_in_the_commit_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = StoreOptions::new(dir.path());
    options.forward = vec![
        text_queue("rw", 1 << 20),
        ForwardQueue {
            target: "otlp".into(),
            max_bytes: 1 << 20,
            samples: None,
        },
    ];
    let store = Store::open(&options).unwrap();
    let watch = store.forward_watch();
    let mut b = batch("m", "a", &[(1000, 1.0), (2000, 2.0)]);
    b.forward.push(ForwardPayload {
        target: "otlp".into(),
        signal: "metrics",
        items: 2,
        bytes: b"request-1".to_vec(),
    });
    // A payload for a target that is not configured is ignored.
    b.forward.push(ForwardPayload {
        target: "elsewhere".into(),
        signal: "metrics",
        items: 2,
        bytes: b"lost".to_vec(),
    });
    store.write(b).await.unwrap();
    assert!(watch.has_changed().unwrap());
    // Out of order (1500) and an exact duplicate (2000) are not forwarded: only what the store
    // accepted.
    store
        .write(batch("m", "a", &[(1500, 9.0), (2000, 2.0), (3000, 3.0)]))
        .await
        .unwrap();
    let rows = store.forward_read("rw", 100, 1 << 20).await.unwrap();
    assert_eq!(queued_text(&rows), ["m@1000=1;m@2000=2;", "m@3000=3;"]);
    let otlp = store.forward_read("otlp", 100, 1 << 20).await.unwrap();
    assert_eq!(queued_text(&otlp), ["request-1"]);
    // Reads stop at max_items but always return at least one row.
    assert_eq!(store.forward_read("rw", 1, 1 << 20).await.unwrap().len(), 1);
    assert!(
        store
            .forward_read("elsewhere", 100, 1 << 20)
            .await
            .unwrap()
            .is_empty()
    );

    let out = store.forward_ack("rw", vec![rows[0].id]).await.unwrap();
    assert_eq!(out.rows, 1);
    store.close().await.unwrap();
    drop(store);

    let store = Store::open(&options).unwrap();
    let rows = store.forward_read("rw", 100, 1 << 20).await.unwrap();
    assert_eq!(queued_text(&rows), ["m@3000=3;"]);
    // Purging keeps the configured targets' queues only.
    let purged = store.forward_purge(vec!["rw".into()]).await.unwrap();
    assert_eq!(purged.len(), 1);
    assert_eq!(purged[0].target, "otlp");
    assert!(
        store
            .forward_read("otlp", 100, 1 << 20)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.forward_read("rw", 100, 1 << 20).await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn forward_queue_drops_its_oldest_rows_when_full() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = StoreOptions::new(dir.path());
    // Each payload "m@<t>=<v>;" is 9 bytes for these timestamps; the queue holds three.
    options.forward = vec![text_queue("rw", 27)];
    let store = Store::open(&options).unwrap();
    for i in 0..5 {
        let t = 1000 + i * 1000;
        store
            .write(batch("m", "a", &[(t, i as f64)]))
            .await
            .unwrap();
    }
    let rows = store.forward_read("rw", 100, 1 << 20).await.unwrap();
    assert_eq!(
        queued_text(&rows),
        ["m@3000=2;", "m@4000=3;", "m@5000=4;"],
        "the two oldest rows were dropped"
    );
}

/// A retried delivery after a crash: the head is rebuilt from `wal` at start, and the retry
/// (older samples included) stores nothing; after a flush the newest sample still dedups.
#[tokio::test]
async fn a_retried_delivery_after_a_crash_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::new(dir.path());
    let store = Store::open(&options).unwrap();
    let points = [(1000, 1.0), (2000, 2.0), (3000, 3.0)];
    store.write(batch("m", "a", &points)).await.unwrap();
    // Dropped without close, as a crash leaves it: no flush, the `wal` row holds the data.
    drop(store);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let store = Store::open(&options).unwrap();
    let out = store.write(batch("m", "a", &points)).await.unwrap();
    assert_eq!(
        (
            out.samples_accepted,
            out.samples_duplicate,
            out.samples_rejected
        ),
        (0, 3, 0),
        "{out:?}"
    );
    assert_eq!(all(&store, "m").await[0].samples.len(), 3);
    // Flushed into chunks and reopened: only the newest timestamp is known, and it still
    // dedups; older ones are refused, never stored twice.
    store.close().await.unwrap();
    let store = Store::open(&options).unwrap();
    let out = store.write(batch("m", "a", &points)).await.unwrap();
    assert_eq!(
        (
            out.samples_accepted,
            out.samples_duplicate,
            out.samples_rejected
        ),
        (0, 1, 2),
        "{out:?}"
    );
    assert_eq!(all(&store, "m").await[0].samples.len(), 3);
}

/// A store at `max_size` fails commits with SQLITE_FULL: retryable, typed `full`, and nothing
/// of the failed write is visible (series index, head, reads); once retention frees pages the
/// same write succeeds, without a restart.
#[tokio::test]
async fn a_full_store_fails_writes_retryably_without_a_trace_and_recovers_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        max_size: Some(1 << 20),
        ..StoreOptions::new(dir.path())
    };
    let store = Store::open(&options).unwrap();
    // Old data in chunks, which retention will delete.
    let wide = |name: &str, t: i64, n: usize| WriteBatch {
        series: (0..n)
            .map(|i| SeriesSamples {
                labels: labels(&[("__name__", name), ("host", &format!("host-{i:05}"))]),
                samples: vec![Sample {
                    timestamp_ms: t,
                    value: i as f64,
                }],
            })
            .collect(),
        ..WriteBatch::default()
    };
    let mut old = 0;
    let error = loop {
        assert!(old < 1000, "never full");
        match store.write(wide(&format!("old_{old}"), 1000, 100)).await {
            Ok(out) => assert_eq!(out.samples_accepted, 100),
            Err(e) => break e,
        }
        old += 1;
        if old % 5 == 0 {
            // Folded into chunks now and then, so retention has whole chunks to delete. A
            // flush that no longer fits fails the same way and changes nothing.
            if let Err(e) = store.flush().await {
                break e;
            }
        }
    };
    assert!(error.is_retryable(), "{error}");
    assert_eq!(error.error_type(), "full", "{error}");
    assert!(error.to_string().contains("full"), "{error}");
    let series = store.series_count();
    assert!(
        series == old * 100 || series == (old + 1) * 100,
        "{series} after {old}"
    );
    // The refused write again: same error, and still no trace of it.
    let refused = format!("old_{old}");
    assert!(store.write(wide(&refused, 1000, 100)).await.is_err());
    assert_eq!(store.series_count(), series);
    assert!(all(&store, &refused).await.is_empty());
    assert_eq!(store.label_values("__name__", &[]).len(), series / 100);
    // Everything committed before is readable.
    assert_eq!(all(&store, "old_0").await.len(), 100);
    assert!(store.used_bytes().await.unwrap() <= 1 << 20);

    // Retention frees pages (deleting only frees): the same write now fits, and so does the
    // flush of what the head still holds.
    let removed = store.retain(2000).await.unwrap();
    assert!(removed.chunks > 0, "{removed:?}");
    store.flush().await.unwrap();
    let out = store.write(wide(&refused, 5000, 100)).await.unwrap();
    assert_eq!(out.samples_accepted, 100);
    assert_eq!(all(&store, &refused).await.len(), 100);
    store.close().await.unwrap();
}

/// Bytes overwritten in the middle of a closed database: `open` refuses it with `Damaged`,
/// naming the file and SQLite's report.
#[tokio::test]
async fn a_damaged_database_is_refused_at_open() {
    use std::io::{Seek, SeekFrom, Write};
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::new(dir.path());
    let store = Store::open(&options).unwrap();
    for i in 0..30 {
        let b = WriteBatch {
            series: (0..100)
                .map(|j| SeriesSamples {
                    labels: labels(&[("__name__", "m"), ("i", &format!("{i}-{j}"))]),
                    samples: vec![Sample {
                        timestamp_ms: 1000,
                        value: 1.0,
                    }],
                })
                .collect(),
            ..WriteBatch::default()
        };
        store.write(b).await.unwrap();
    }
    store.close().await.unwrap();
    let path = dir.path().join("redline.db");
    let len = std::fs::metadata(&path).unwrap().len();
    let pages = len / 4096;
    assert!(pages > 10, "{pages}");
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start((pages / 2) * 4096 + 2048 - 128))
        .unwrap();
    f.write_all(&[0xA5; 256]).unwrap();
    drop(f);
    let Err(e) = Store::open(&options) else {
        panic!("a damaged database opened");
    };
    assert!(matches!(e, StoreError::Damaged { .. }), "{e:?}");
    assert!(!e.is_retryable());
    let text = e.to_string();
    assert!(
        text.contains(path.to_str().unwrap()) && text.contains("backup"),
        "{text}"
    );
}
