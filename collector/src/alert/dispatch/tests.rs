//! Exhaustive tests of the dispatch core with a fixture policy.

use super::*;
use crate::notify::test_labels as labels;

const S: i64 = 1000;
const M: i64 = 60 * S;

#[derive(Default)]
struct Fixture {
    /// (label, value, route) — an alert goes to the first route whose label matches, or the
    /// root `{}` route when none does; `continue_all` sends it to every matching one.
    routes: Vec<(String, String, GroupRoute)>,
    root: Option<GroupRoute>,
    continue_all: bool,
    integrations: HashMap<String, Vec<IntegrationRef>>,
    silences: Vec<(String, String, i64, i64)>,
    /// Inhibit: a firing alert with `source` label value mutes alerts with `target` value of
    /// label `severity`, when `equal` label matches.
    inhibit: Option<(String, String, String)>,
    muted_routes: Vec<(String, i64, i64)>,
}

fn route(key: &str, receiver: &str, group_by: Option<&[&str]>) -> GroupRoute {
    GroupRoute {
        route_key: key.to_owned(),
        route_id: key.to_owned(),
        receiver: receiver.to_owned(),
        group_by: group_by.map(|g| g.iter().map(|s| (*s).to_owned()).collect()),
        group_wait_ms: 30 * S,
        group_interval_ms: 5 * M,
        repeat_interval_ms: 4 * 60 * M,
    }
}

impl Fixture {
    fn simple(send_resolved: bool) -> Fixture {
        let mut f = Fixture {
            root: Some(route("{}", "ops", Some(&["alertname"]))),
            ..Fixture::default()
        };
        f.integrations.insert(
            "ops".into(),
            vec![IntegrationRef {
                id: "ops/webhook/0".into(),
                send_resolved,
            }],
        );
        f
    }
}

impl Policy for Fixture {
    fn routes(&self, labels: &LabelSet) -> Vec<GroupRoute> {
        let mut out = Vec::new();
        for (name, value, r) in &self.routes {
            if labels.get(name) == Some(value) {
                out.push(r.clone());
                if !self.continue_all {
                    break;
                }
            }
        }
        if out.is_empty() {
            out.extend(self.root.clone());
        }
        out
    }

    fn integrations(&self, receiver: &str) -> Vec<IntegrationRef> {
        self.integrations.get(receiver).cloned().unwrap_or_default()
    }

    fn route_muted(&self, route_key: &str, now_ms: i64) -> bool {
        self.muted_routes
            .iter()
            .any(|(k, from, to)| k == route_key && (*from..*to).contains(&now_ms))
    }

    fn silenced_by(&self, labels: &LabelSet, now_ms: i64) -> Vec<String> {
        self.silences
            .iter()
            .filter(|(name, value, from, to)| {
                labels.get(name) == Some(value) && (*from..*to).contains(&now_ms)
            })
            .map(|(name, value, _, _)| format!("{name}={value}"))
            .collect()
    }

    fn inhibited(&self, labels: &LabelSet, firing: &mut dyn Iterator<Item = &LabelSet>) -> bool {
        let Some((source, target, equal)) = &self.inhibit else {
            return false;
        };
        if labels.get("severity") != Some(target) {
            return false;
        }
        for f in firing {
            if f.get("severity") == Some(source) && f.get(equal) == labels.get(equal) {
                return true;
            }
        }
        false
    }
}

fn firing(pairs: &[(&str, &str)], starts: i64) -> NotifyAlert {
    NotifyAlert {
        labels: labels(pairs),
        annotations: LabelSet::new(),
        starts_at_ms: starts,
        ends_at_ms: None,
        generator_url: String::new(),
    }
}

fn resolved(pairs: &[(&str, &str)], starts: i64, ends: i64) -> NotifyAlert {
    NotifyAlert {
        ends_at_ms: Some(ends),
        ..firing(pairs, starts)
    }
}

/// A notification that is sent (not a log-only update), as the tests look at it.
struct Sent {
    entry: OutboxEntry,
    log: NotificationLogEntry,
}

/// The notifications a flush sends, without its log-only updates.
fn sent_only(out: Vec<Outgoing>) -> Vec<Sent> {
    out.into_iter()
        .filter_map(|o| o.entry.map(|entry| Sent { entry, log: o.log }))
        .collect()
}

/// Names of the `instance` labels of the alerts in a notification, firing then resolved.
fn summary(o: &Sent) -> (Vec<String>, Vec<String>) {
    let n = &o.entry.notification;
    let name = |a: &NotifyAlert| a.labels.get("instance").cloned().unwrap_or_default();
    (
        n.firing().map(name).collect(),
        n.resolved().map(name).collect(),
    )
}

#[test]
fn group_key_like_alertmanager() {
    // From ../shared/fixtures/alertmanager_webhook_example.json.
    let l = labels(&[("alertname", "HighCPU"), ("instance", "host1:9100")]);
    assert_eq!(
        group_key("{}", &l),
        r#"{}:{alertname="HighCPU", instance="host1:9100"}"#
    );
    assert_eq!(
        group_key("{}/{a=\"b\"}", &LabelSet::new()),
        "{}/{a=\"b\"}:{}"
    );
    assert_eq!(
        group_key("{}", &labels(&[("a", "q\"\\\n")])),
        r#"{}:{a="q\"\\\n"}"#
    );
}

#[test]
fn waits_group_wait_then_groups_alerts_into_one_notification() {
    let p = Fixture::simple(true);
    let mut d = Dispatch::new("http://redline");
    let t0 = 1_000_000;
    d.insert(firing(&[("alertname", "A"), ("instance", "a")], t0), &p, t0);
    d.insert(
        firing(&[("alertname", "A"), ("instance", "b")], t0 + S),
        &p,
        t0 + S,
    );
    assert_eq!(d.next_due(), Some(t0 + 30 * S));
    assert!(sent_only(d.flush_due(&p, t0 + 29 * S)).is_empty());
    let out = sent_only(d.flush_due(&p, t0 + 30 * S));
    assert_eq!(out.len(), 1);
    assert_eq!(summary(&out[0]), (vec!["a".into(), "b".into()], vec![]));
    let n = &out[0].entry.notification;
    assert_eq!(n.group_key, r#"{}:{alertname="A"}"#);
    assert_eq!(n.group_labels, labels(&[("alertname", "A")]));
    assert_eq!(n.external_url, "http://redline");
    assert_eq!(out[0].log.firing.len(), 2);
    // Next flush after group_interval: nothing changed, nothing sent.
    assert_eq!(d.next_due(), Some(t0 + 30 * S + 5 * M));
    assert!(sent_only(d.flush_due(&p, t0 + 30 * S + 5 * M)).is_empty());
}

#[test]
fn old_alert_flushes_at_once() {
    let p = Fixture::simple(true);
    let mut d = Dispatch::new("");
    let t0 = 10 * M;
    d.insert(firing(&[("alertname", "A")], t0 - 5 * M), &p, t0);
    assert_eq!(d.next_due(), Some(t0));
    assert_eq!(sent_only(d.flush_due(&p, t0)).len(), 1);
}

#[test]
fn new_alert_in_group_waits_for_group_interval() {
    let p = Fixture::simple(true);
    let mut d = Dispatch::new("");
    let t0 = 0;
    d.insert(firing(&[("alertname", "A"), ("instance", "a")], t0), &p, t0);
    assert_eq!(sent_only(d.flush_due(&p, 30 * S)).len(), 1);
    d.insert(firing(&[("alertname", "A"), ("instance", "b")], M), &p, M);
    assert!(sent_only(d.flush_due(&p, 2 * M)).is_empty());
    let out = sent_only(d.flush_due(&p, 30 * S + 5 * M));
    assert_eq!(out.len(), 1);
    assert_eq!(summary(&out[0]).0, vec!["a", "b"]);
}

#[test]
fn repeat_interval_resends_unchanged_group() {
    let p = Fixture::simple(true);
    let mut d = Dispatch::new("");
    d.insert(firing(&[("alertname", "A")], 0), &p, 0);
    assert_eq!(sent_only(d.flush_due(&p, 30 * S)).len(), 1);
    let mut t = 30 * S;
    let mut sent = Vec::new();
    for _ in 0..100 {
        t += 5 * M;
        if !sent_only(d.flush_due(&p, t)).is_empty() {
            sent.push(t);
        }
    }
    // Every 4h, checked on 5m flushes: the first flush at or after 30s + 4h.
    assert_eq!(sent, vec![30 * S + 4 * 60 * M, 30 * S + 8 * 60 * M]);
}

#[test]
fn resolved_notice_only_for_send_resolved_and_only_once() {
    for send_resolved in [true, false] {
        let p = Fixture::simple(send_resolved);
        let mut d = Dispatch::new("");
        let a = [("alertname", "A"), ("instance", "a")];
        d.insert(firing(&a, 0), &p, 0);
        assert_eq!(sent_only(d.flush_due(&p, 30 * S)).len(), 1);
        d.insert(resolved(&a, 0, M), &p, M);
        let out = sent_only(d.flush_due(&p, 30 * S + 5 * M));
        if send_resolved {
            assert_eq!(out.len(), 1);
            assert_eq!(summary(&out[0]), (vec![], vec!["a".to_owned()]));
            assert_eq!(
                out[0].entry.notification.status(),
                crate::notify::Status::Resolved
            );
        } else {
            assert!(out.is_empty(), "no resolved notice without send_resolved");
        }
        // The group is gone; nothing more is sent.
        assert_eq!(d.next_due(), None);
        assert_eq!(d.sizes(), (0, 0));
        // A duplicate resolution later starts nothing.
        d.insert(resolved(&a, 0, M), &p, 20 * M);
        assert_eq!(d.next_due(), None);
    }
}

#[test]
fn partial_resolution_waits_without_send_resolved() {
    let p = Fixture::simple(false);
    let mut d = Dispatch::new("");
    let a = [("alertname", "A"), ("instance", "a")];
    let b = [("alertname", "A"), ("instance", "b")];
    d.insert(firing(&a, 0), &p, 0);
    d.insert(firing(&b, 0), &p, 0);
    assert_eq!(sent_only(d.flush_due(&p, 30 * S)).len(), 1);
    d.insert(resolved(&a, 0, M), &p, M);
    // One of two resolved, receiver does not want resolved notices: nothing until repeat.
    assert!(sent_only(d.flush_due(&p, 30 * S + 5 * M)).is_empty());
    let p2 = Fixture::simple(true);
    let mut d = Dispatch::new("");
    d.insert(firing(&a, 0), &p2, 0);
    d.insert(firing(&b, 0), &p2, 0);
    assert_eq!(sent_only(d.flush_due(&p2, 30 * S)).len(), 1);
    d.insert(resolved(&a, 0, M), &p2, M);
    let out = sent_only(d.flush_due(&p2, 30 * S + 5 * M));
    assert_eq!(
        summary(&out[0]),
        (vec!["b".to_owned()], vec!["a".to_owned()])
    );
}

#[test]
fn alert_resolved_before_first_flush_is_never_sent() {
    let p = Fixture::simple(true);
    let mut d = Dispatch::new("");
    let a = [("alertname", "A")];
    d.insert(firing(&a, 0), &p, 0);
    d.insert(resolved(&a, 0, 10 * S), &p, 10 * S);
    assert!(sent_only(d.flush_due(&p, 30 * S)).is_empty());
    assert_eq!(d.sizes(), (0, 0));
}

#[test]
fn refiring_after_resolution_is_a_new_alert() {
    let p = Fixture::simple(true);
    let mut d = Dispatch::new("");
    let a = [("alertname", "A")];
    d.insert(firing(&a, 0), &p, 0);
    assert_eq!(sent_only(d.flush_due(&p, 30 * S)).len(), 1);
    d.insert(resolved(&a, 0, M), &p, M);
    assert_eq!(sent_only(d.flush_due(&p, 30 * S + 5 * M)).len(), 1);
    d.insert(firing(&a, 10 * M), &p, 10 * M);
    // A new group: waits group_wait.
    assert_eq!(d.next_due(), Some(10 * M + 30 * S));
    let out = sent_only(d.flush_due(&p, 10 * M + 30 * S));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].entry.notification.alerts[0].starts_at_ms, 10 * M);
}

#[test]
fn update_keeps_earliest_start() {
    let p = Fixture::simple(true);
    let mut d = Dispatch::new("");
    d.insert(firing(&[("alertname", "A")], 100), &p, 100);
    d.insert(firing(&[("alertname", "A")], 500), &p, 500);
    let alerts = d.alerts(&p, 600);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].0.starts_at_ms, 100);
}

#[test]
fn group_by_all_labels_and_no_labels() {
    let mut p = Fixture::simple(true);
    p.root = Some(route("{}", "ops", None));
    let mut d = Dispatch::new("");
    d.insert(firing(&[("alertname", "A"), ("instance", "a")], 0), &p, 0);
    d.insert(firing(&[("alertname", "A"), ("instance", "b")], 0), &p, 0);
    assert_eq!(sent_only(d.flush_due(&p, 30 * S)).len(), 2);
    p.root = Some(route("{}", "ops", Some(&[])));
    let mut d = Dispatch::new("");
    d.insert(firing(&[("alertname", "A"), ("instance", "a")], 0), &p, 0);
    d.insert(firing(&[("alertname", "B"), ("instance", "b")], 0), &p, 0);
    let out = sent_only(d.flush_due(&p, 30 * S));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].entry.notification.group_key, "{}:{}");
}

#[test]
fn every_integration_of_the_receiver_and_every_continued_route() {
    let mut p = Fixture::simple(true);
    if let Some(v) = p.integrations.get_mut("ops") {
        v.push(IntegrationRef {
            id: "ops/email/0".into(),
            send_resolved: false,
        });
    }
    p.routes = vec![
        (
            "team".into(),
            "db".into(),
            route("{}/0", "ops", Some(&["alertname"])),
        ),
        (
            "severity".into(),
            "page".into(),
            route("{}/1", "pager", Some(&[])),
        ),
    ];
    p.integrations.insert(
        "pager".into(),
        vec![IntegrationRef {
            id: "pager/webhook/0".into(),
            send_resolved: true,
        }],
    );
    p.continue_all = true;
    let mut d = Dispatch::new("");
    d.insert(
        firing(
            &[("alertname", "A"), ("team", "db"), ("severity", "page")],
            0,
        ),
        &p,
        0,
    );
    let out = sent_only(d.flush_due(&p, 30 * S));
    let ids: Vec<&str> = out.iter().map(|o| o.entry.integration.as_str()).collect();
    assert_eq!(ids, vec!["ops/webhook/0", "ops/email/0", "pager/webhook/0"]);
    let keys: BTreeSet<&str> = out
        .iter()
        .map(|o| o.entry.idempotency_key.as_str())
        .collect();
    assert_eq!(keys.len(), 3, "idempotency keys are unique");
}

#[test]
fn silenced_alerts_are_left_out_and_come_back_when_the_silence_ends() {
    let mut p = Fixture::simple(true);
    p.silences.push(("instance".into(), "b".into(), 0, 10 * M));
    let mut d = Dispatch::new("");
    d.insert(firing(&[("alertname", "A"), ("instance", "a")], 0), &p, 0);
    d.insert(firing(&[("alertname", "A"), ("instance", "b")], 0), &p, 0);
    let out = sent_only(d.flush_due(&p, 30 * S));
    assert_eq!(summary(&out[0]).0, vec!["a"]);
    assert!(sent_only(d.flush_due(&p, 30 * S + 5 * M)).is_empty());
    // The silence ends at 10m; the dispatcher task asks for a flush at once.
    assert_eq!(
        d.flush_now_where(
            |l| l.get("instance").map(String::as_str) == Some("b"),
            10 * M
        ),
        1
    );
    let out = sent_only(d.flush_due(&p, 10 * M));
    assert_eq!(summary(&out[0]).0, vec!["a", "b"]);
}

#[test]
fn fully_silenced_group_sends_nothing() {
    let mut p = Fixture::simple(true);
    p.silences.push(("alertname".into(), "A".into(), 0, 60 * M));
    let mut d = Dispatch::new("");
    d.insert(firing(&[("alertname", "A")], 0), &p, 0);
    assert!(sent_only(d.flush_due(&p, 30 * S)).is_empty());
    // Resolved while silenced and never notified: nothing (the receiver never heard of it).
    d.insert(resolved(&[("alertname", "A")], 0, M), &p, M);
    assert!(sent_only(d.flush_due(&p, 30 * S + 5 * M)).is_empty());
}

#[test]
fn issue_4_resolved_notice_for_alert_silenced_while_firing() {
    // alertmanager#226: notified firing, then silenced, then resolved → resolved notice.
    let mut p = Fixture::simple(true);
    let a = [("alertname", "A"), ("instance", "a")];
    let mut d = Dispatch::new("");
    d.insert(firing(&a, 0), &p, 0);
    assert_eq!(sent_only(d.flush_due(&p, 30 * S)).len(), 1);
    p.silences.push(("instance".into(), "a".into(), M, 60 * M));
    d.insert(resolved(&a, 0, 2 * M), &p, 2 * M);
    let out = sent_only(d.flush_due(&p, 30 * S + 5 * M));
    assert_eq!(out.len(), 1, "the resolved notice is not muted");
    assert_eq!(summary(&out[0]), (vec![], vec!["a".to_owned()]));
}

#[test]
fn inhibited_alert_is_left_out_while_source_fires() {
    let mut p = Fixture::simple(true);
    p.root = Some(route("{}", "ops", None));
    p.inhibit = Some(("critical".into(), "warning".into(), "instance".into()));
    let crit = [
        ("alertname", "Down"),
        ("severity", "critical"),
        ("instance", "a"),
    ];
    let warn = [
        ("alertname", "Slow"),
        ("severity", "warning"),
        ("instance", "a"),
    ];
    let other = [
        ("alertname", "Slow"),
        ("severity", "warning"),
        ("instance", "b"),
    ];
    let mut d = Dispatch::new("");
    d.insert(firing(&crit, 0), &p, 0);
    d.insert(firing(&warn, 0), &p, 0);
    d.insert(firing(&other, 0), &p, 0);
    let out = sent_only(d.flush_due(&p, 30 * S));
    let sent: Vec<String> = out
        .iter()
        .map(|o| {
            o.entry.notification.alerts[0].labels["alertname"].clone()
                + "@"
                + &o.entry.notification.alerts[0].labels["instance"]
        })
        .collect();
    assert_eq!(sent, vec!["Down@a", "Slow@b"]);
    let status = d.alerts(&p, 30 * S);
    assert!(
        status
            .iter()
            .any(|(a, s)| a.labels == labels(&warn) && s.inhibited)
    );
    // The source resolves: the inhibited alert is sent at its group's next flush.
    d.insert(resolved(&crit, 0, M), &p, M);
    let out = sent_only(d.flush_due(&p, 30 * S + 5 * M));
    let names: Vec<(String, crate::notify::Status)> = out
        .iter()
        .map(|o| {
            (
                o.entry.notification.alerts[0].labels["alertname"].clone(),
                o.entry.notification.status(),
            )
        })
        .collect();
    assert!(names.contains(&("Slow".to_owned(), crate::notify::Status::Firing)));
    assert!(names.contains(&("Down".to_owned(), crate::notify::Status::Resolved)));
}

#[test]
fn muted_route_sends_nothing_and_resumes_after() {
    let mut p = Fixture::simple(true);
    p.muted_routes.push(("{}".into(), 0, 20 * M));
    let mut d = Dispatch::new("");
    d.insert(firing(&[("alertname", "A")], 0), &p, 0);
    assert!(sent_only(d.flush_due(&p, 30 * S)).is_empty());
    assert!(sent_only(d.flush_due(&p, 30 * S + 15 * M)).is_empty());
    assert_eq!(sent_only(d.flush_due(&p, 30 * S + 20 * M)).len(), 1);
}

#[test]
fn restored_log_prevents_resending_after_restart() {
    let p = Fixture::simple(true);
    let mut d = Dispatch::new("");
    let a = [("alertname", "A")];
    d.insert(firing(&a, 0), &p, 0);
    let out = sent_only(d.flush_due(&p, 30 * S));
    let log = out[0].log.clone();
    // "Restart": a new core with the persisted log and the alert re-inserted.
    let mut d = Dispatch::new("");
    d.restore_log([log]);
    d.insert(firing(&a, 0), &p, 2 * M);
    assert_eq!(d.next_due(), Some(2 * M), "old alert: flush at once");
    assert!(
        sent_only(d.flush_due(&p, 2 * M)).is_empty(),
        "already notified, not again"
    );
    // Without the log it would be sent again.
    let mut fresh = Dispatch::new("");
    fresh.insert(firing(&a, 0), &p, 2 * M);
    assert_eq!(sent_only(fresh.flush_due(&p, 2 * M)).len(), 1);
}

type Case = (
    Option<NotificationLogEntry>,
    Vec<u64>,
    Vec<u64>,
    bool,
    i64,
    bool,
);

#[test]
fn needs_update_table() {
    let set = |v: &[u64]| v.iter().copied().collect::<BTreeSet<u64>>();
    let entry = |f: &[u64], r: &[u64], at: i64| NotificationLogEntry {
        firing: f.to_vec(),
        resolved: r.to_vec(),
        sent_at: at,
        ..NotificationLogEntry::default()
    };
    let h = 60 * M;
    // (entry, firing, resolved, send_resolved, now, expected)
    let cases: Vec<Case> = vec![
        (None, vec![1], vec![], true, 0, true),
        (None, vec![], vec![1], true, 0, false),
        (Some(entry(&[1], &[], 0)), vec![1], vec![], true, M, false),
        (Some(entry(&[1], &[], 0)), vec![1, 2], vec![], true, M, true),
        (
            Some(entry(&[1, 2], &[], 0)),
            vec![1],
            vec![2],
            true,
            M,
            true,
        ),
        (
            Some(entry(&[1, 2], &[], 0)),
            vec![1],
            vec![2],
            false,
            M,
            false,
        ),
        (Some(entry(&[1], &[], 0)), vec![], vec![1], false, M, true),
        (Some(entry(&[], &[1], 0)), vec![], vec![1], true, M, false),
        (Some(entry(&[1], &[], 0)), vec![1], vec![], true, h, true),
        (
            Some(entry(&[1], &[], 0)),
            vec![1],
            vec![],
            true,
            h - 1,
            false,
        ),
        (Some(entry(&[1], &[2], 0)), vec![1], vec![2], true, M, false),
    ];
    for (i, (e, f, r, sr, now, want)) in cases.into_iter().enumerate() {
        assert_eq!(
            needs_update(e.as_ref(), &set(&f), &set(&r), sr, h, now),
            want,
            "case {i}"
        );
    }
}

#[test]
fn issue_4_resolved_notice_after_flushes_while_silenced() {
    // Review finding: a flush while the alert is silenced must not forget that the receiver
    // was told it fires.
    let mut p = Fixture::simple(true);
    let a = [("alertname", "A"), ("instance", "a")];
    let mut d = Dispatch::new("");
    d.insert(firing(&a, 0), &p, 0);
    assert_eq!(sent_only(d.flush_due(&p, 30 * S)).len(), 1);
    p.silences.push(("instance".into(), "a".into(), M, 60 * M));
    // Several group intervals pass while silenced: nothing is sent, nothing forgotten.
    for k in 1..=4 {
        let out = d.flush_due(&p, 30 * S + k * 5 * M);
        assert!(sent_only(out).is_empty());
    }
    d.insert(resolved(&a, 0, 22 * M), &p, 22 * M);
    let out = sent_only(d.flush_due(&p, 30 * S + 5 * 5 * M));
    assert_eq!(out.len(), 1, "the resolved notice is sent");
    assert_eq!(summary(&out[0]), (vec![], vec!["a".to_owned()]));
    // And when a silence ends while the alert still fires, the receiver is not told again
    // (it never stopped firing as far as it knows) until the repeat interval.
    let mut p = Fixture::simple(true);
    let mut d = Dispatch::new("");
    d.insert(firing(&a, 0), &p, 0);
    assert_eq!(sent_only(d.flush_due(&p, 30 * S)).len(), 1);
    p.silences.push(("instance".into(), "a".into(), M, 20 * M));
    assert!(sent_only(d.flush_due(&p, 30 * S + 5 * M)).is_empty());
    assert!(sent_only(d.flush_due(&p, 30 * S + 25 * M)).is_empty());
}

#[test]
fn log_only_updates_are_returned_for_persistence() {
    // Review finding: a resolution an integration does not want to hear about still changes
    // the log, and that change must reach the store, or a restart would think the alert
    // still fires and swallow its next firing until the repeat interval.
    let p = Fixture::simple(false);
    let a = [("alertname", "A")];
    let mut d = Dispatch::new("");
    d.insert(firing(&a, 0), &p, 0);
    let first = d.flush_due(&p, 30 * S);
    assert!(first[0].entry.is_some());
    d.insert(resolved(&a, 0, M), &p, M);
    let out = d.flush_due(&p, 30 * S + 5 * M);
    assert_eq!(out.len(), 1);
    assert!(out[0].entry.is_none());
    assert!(out[0].log.firing.is_empty());
    // After a "restart" with that log, a new firing is sent at once.
    let mut d = Dispatch::new("");
    d.restore_log([out[0].log.clone()]);
    d.insert(firing(&a, 10 * M), &p, 10 * M);
    assert_eq!(sent_only(d.flush_due(&p, 10 * M + 30 * S)).len(), 1);
}

#[test]
fn reroute_moves_alerts_to_new_routes_without_resending() {
    let mut p = Fixture::simple(true);
    let mut d = Dispatch::new("");
    d.insert(firing(&[("alertname", "A"), ("team", "db")], 0), &p, 0);
    assert_eq!(sent_only(d.flush_due(&p, 30 * S)).len(), 1);
    // A reload adds a route for team=db to a new receiver.
    p.routes = vec![(
        "team".into(),
        "db".into(),
        route("{}/0", "dba", Some(&["alertname"])),
    )];
    p.integrations.insert(
        "dba".into(),
        vec![IntegrationRef {
            id: "dba/webhook/0".into(),
            send_resolved: true,
        }],
    );
    d.reroute(&p, M);
    let out = sent_only(d.flush_due(&p, M));
    let ids: Vec<&str> = out.iter().map(|o| o.entry.integration.as_str()).collect();
    assert_eq!(
        ids,
        vec!["dba/webhook/0"],
        "the new receiver hears it; the old one is not re-told"
    );
}

#[test]
fn old_log_entries_are_pruned() {
    let p = Fixture::simple(true);
    let mut d = Dispatch::new("");
    d.insert(firing(&[("alertname", "A")], 0), &p, 0);
    let out = d.flush_due(&p, 30 * S);
    assert_eq!(out.len(), 1);
    assert_eq!(d.prune_log(10 * S), 0, "written at 30 s, kept");
    assert_eq!(d.prune_log(31 * S), 1);
}
