#![allow(clippy::unwrap_used)]

use std::path::Path;

use super::*;
use crate::alert::state::Alert;
use crate::rules::file::parse_file;

fn group(yaml: &str) -> RuleGroup {
    let loaded = parse_file(Path::new("t.yml"), yaml);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    loaded.groups.into_iter().next().unwrap()
}

fn l(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
    )
}

/// Template context without `query`.
fn templates(external_labels: &BTreeMap<String, String>) -> TemplateContext<'_> {
    TemplateContext {
        external_labels,
        external_url: "http://redline:9190",
        query: None,
    }
}

fn vector(items: &[(&[(&str, &str)], f64)]) -> Value {
    Value::Vector(
        items
            .iter()
            .map(|(labels, v)| {
                (
                    Arc::new(l(labels)),
                    Sample {
                        timestamp_ms: 0,
                        value: *v,
                    },
                )
            })
            .collect(),
    )
}

const RECORDING: &str = r#"groups:
  - name: g
    limit: 2
    labels: {team: infra, env: prod}
    rules:
      - record: job:x:sum
        expr: sum by (job) (x)
        labels: {env: test, job: ""}
"#;

#[test]
fn record_samples_names_and_labels_the_result() {
    let g = group(RECORDING);
    let rule = &g.rules[0];
    let out = record_samples(
        rule,
        &g,
        vector(&[(&[("__name__", "x"), ("job", "a"), ("i", "1")], 3.0)]),
        60_000,
    )
    .unwrap();
    assert_eq!(
        out,
        vec![(
            // The rule's env overrides the group's; its empty job removes the result's.
            l(&[
                ("__name__", "job:x:sum"),
                ("env", "test"),
                ("i", "1"),
                ("team", "infra")
            ]),
            Sample {
                timestamp_ms: 60_000,
                value: 3.0
            }
        )]
    );
    // A scalar becomes one series with only the rule's labels.
    let out = record_samples(
        rule,
        &g,
        Value::Scalar(Sample {
            timestamp_ms: 5,
            value: 7.0,
        }),
        5,
    )
    .unwrap();
    assert_eq!(
        out[0].0,
        l(&[
            ("__name__", "job:x:sum"),
            ("env", "test"),
            ("team", "infra")
        ])
    );
    assert_eq!(out[0].1.value, 7.0);
}

#[test]
fn record_samples_errors_like_prometheus() {
    let g = group(RECORDING);
    let rule = &g.rules[0];
    // Two results that differ only in `job`, which the rule removes.
    let e = record_samples(
        rule,
        &g,
        vector(&[(&[("job", "a")], 1.0), (&[("job", "b")], 2.0)]),
        0,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "vector contains metrics with the same labelset after applying rule labels"
    );
    let e = record_samples(
        rule,
        &g,
        vector(&[
            (&[("i", "1")], 1.0),
            (&[("i", "2")], 2.0),
            (&[("i", "3")], 3.0),
        ]),
        0,
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "exceeded limit of 2 with 3 series");
    let e = record_samples(rule, &g, Value::Matrix(vec![]), 0).unwrap_err();
    assert_eq!(e.to_string(), "rule result is not a vector or scalar");
    let alerting = group(ALERTING);
    assert!(matches!(
        record_samples(&alerting.rules[0], &alerting, vector(&[]), 0),
        Err(RuleEvalError::WrongKind(_))
    ));
}

const ALERTING: &str = r#"groups:
  - name: g
    limit: 1
    labels: {team: infra}
    rules:
      - alert: High
        expr: x > 1
        for: 1m
        labels:
          severity: "{{ if gt $value 10.0 }}critical{{ else }}warning{{ end }}"
          where: "{{ $labels.instance }}@{{ $externalLabels.cluster }}"
          gone: "{{ $labels.nope }}"
        annotations:
          summary: "{{ $labels.__name__ }} on {{ $labels.instance }} is {{ $value | humanize }}"
          broken: "{{ len $value }}"
"#;

#[test]
fn alert_elements_template_labels_and_annotations() {
    let g = group(ALERTING);
    let external = BTreeMap::from([("cluster".to_owned(), "eu1".to_owned())]);
    let out = alert_elements(
        &g.rules[0],
        &g,
        vector(&[(&[("__name__", "x"), ("instance", "a:9100")], 12345.0)]),
        &templates(&external),
    )
    .unwrap();
    assert_eq!(out.len(), 1);
    let e = &out[0];
    // No __name__; an empty expansion (`gone`) removes the label.
    assert_eq!(
        e.labels,
        l(&[
            ("alertname", "High"),
            ("instance", "a:9100"),
            ("severity", "critical"),
            ("team", "infra"),
            ("where", "a:9100@eu1"),
        ])
    );
    assert_eq!(e.annotations["summary"], "x on a:9100 is 12.35k");
    // A template that fails at render time reads as Prometheus' does, instead of failing.
    assert!(
        e.annotations["broken"].starts_with("<error expanding template: "),
        "{}",
        e.annotations["broken"]
    );
    assert_eq!(e.value, 12345.0);
    let low = alert_elements(
        &g.rules[0],
        &g,
        vector(&[(&[("instance", "b")], 2.0)]),
        &templates(&external),
    )
    .unwrap();
    assert_eq!(low[0].labels.get("severity"), Some("warning"));
}

#[test]
fn alert_elements_refuse_duplicate_label_sets() {
    let g = group(ALERTING);
    // Different metric names, same labels once __name__ is dropped.
    let e = alert_elements(
        &g.rules[0],
        &g,
        vector(&[
            (&[("__name__", "x"), ("instance", "a")], 2.0),
            (&[("__name__", "y"), ("instance", "a")], 3.0),
        ]),
        &templates(&BTreeMap::new()),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "vector contains metrics with the same labelset after applying alert labels"
    );
}

fn alert(labels: Labels, state: State, active_at: i64) -> Alert {
    Alert {
        labels,
        annotations: BTreeMap::new(),
        state,
        value: 1.0,
        active_at,
        fired_at: None,
        resolved_at: None,
        keep_firing_since: None,
        last_seen: active_at,
    }
}

#[test]
fn alerts_series_for_active_alerts_only() {
    let a = l(&[("alertname", "High"), ("instance", "a")]);
    let b = l(&[("alertname", "High"), ("instance", "b")]);
    let c = l(&[("alertname", "High"), ("instance", "c")]);
    let alerts = Alerts::from([
        (a.clone(), alert(a, State::Pending, 61_999)),
        (b.clone(), alert(b, State::Firing, 1_000)),
        (c.clone(), alert(c, State::Inactive, 0)),
    ]);
    let got: Vec<(String, f64)> = alerts_series(&alerts, 120_000)
        .into_iter()
        .map(|(l, s)| {
            assert_eq!(s.timestamp_ms, 120_000);
            (
                l.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
                s.value,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "__name__=ALERTS,alertname=High,alertstate=pending,instance=a".to_owned(),
                1.0
            ),
            (
                "__name__=ALERTS_FOR_STATE,alertname=High,instance=a".to_owned(),
                61.0
            ),
            (
                "__name__=ALERTS,alertname=High,alertstate=firing,instance=b".to_owned(),
                1.0
            ),
            (
                "__name__=ALERTS_FOR_STATE,alertname=High,instance=b".to_owned(),
                1.0
            ),
        ]
    );
}

#[test]
fn eval_alerting_steps_the_state_machine_and_enforces_the_limit() {
    let g = group(ALERTING);
    let rule = &g.rules[0];
    let labels = BTreeMap::new();
    let none = templates(&labels);
    let one = vector(&[(&[("instance", "a")], 2.0)]);
    let out = eval_alerting(rule, &g, one.clone(), &Alerts::new(), 0, &none).unwrap();
    assert_eq!(out.transitions.len(), 1);
    assert!(matches!(out.transitions[0], Transition::Pending(_)));
    assert_eq!(out.series.len(), 2);
    let out = eval_alerting(rule, &g, one, &out.alerts, 60_000, &none).unwrap();
    assert!(matches!(out.transitions[0], Transition::Fired(_)));
    assert_eq!(out.series[0].0.get("alertstate"), Some("firing"));
    // Two active alerts over a limit of 1.
    let two = vector(&[(&[("instance", "a")], 2.0), (&[("instance", "b")], 2.0)]);
    let e = eval_alerting(rule, &g, two, &out.alerts, 120_000, &none).unwrap_err();
    assert_eq!(e.to_string(), "exceeded limit of 1 with 2 alerts");
}

fn samples_of<'a>(storage: &'a MemoryStorage, name: &str) -> Vec<(&'a Labels, Vec<(i64, f64)>)> {
    storage
        .series()
        .filter(|(l, _)| l.metric_name() == name)
        .map(|(l, s)| (l, s.iter().map(|s| (s.timestamp_ms, s.value)).collect()))
        .collect()
}

#[test]
fn group_driver_feeds_later_rules_and_marks_gone_series_stale() {
    let g = group(
        r#"groups:
  - name: g
    rules:
      - record: x:doubled
        expr: x * 2
      - alert: Doubled
        expr: x:doubled > 3
"#,
    );
    let mut storage = MemoryStorage::new();
    let x = l(&[("__name__", "x"), ("i", "1")]);
    for (t, v) in [(0, 1.0), (60_000, 2.0)] {
        storage.append(
            x.clone(),
            Sample {
                timestamp_ms: t,
                value: v,
            },
        );
    }
    let mut state = GroupState::default();
    let options = EvalOptions::default();
    let none = BTreeMap::new();
    let failures = eval_group_in_memory(&g, &mut storage, 0, &mut state, &none, "", &options);
    assert!(failures.is_empty());
    assert!(state.alerts[1].is_empty());
    // At 60s the recorded 4 is visible to the alert in the same evaluation.
    let failures = eval_group_in_memory(&g, &mut storage, 60_000, &mut state, &none, "", &options);
    assert!(failures.is_empty());
    assert_eq!(state.alerts[1].len(), 1);
    let alert = state.alerts[1].values().next().unwrap();
    assert_eq!(alert.state, State::Firing);
    assert_eq!(alert.value, 4.0);
    let recorded = samples_of(&storage, "x:doubled");
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].1, vec![(0, 2.0), (60_000, 4.0)]);
    assert_eq!(samples_of(&storage, "ALERTS").len(), 1);
    // x is gone after the 5-minute lookback: the recorded series and ALERTS get staleness
    // markers, so they vanish at once instead of lingering for the lookback.
    let t = 60_000 + 5 * 60_000 + 1;
    let failures = eval_group_in_memory(&g, &mut storage, t, &mut state, &none, "", &options);
    assert!(failures.is_empty());
    let recorded = samples_of(&storage, "x:doubled");
    let last = *recorded[0].1.last().unwrap();
    assert_eq!(last.0, t);
    assert_eq!(last.1.to_bits(), crate::receiver::convert::STALE_NAN_BITS);
    let alerts = samples_of(&storage, "ALERTS");
    assert_eq!(
        alerts[0].1.last().unwrap().1.to_bits(),
        crate::receiver::convert::STALE_NAN_BITS
    );
    assert_eq!(
        state.alerts[1].values().next().unwrap().state,
        State::Inactive
    );
}

#[test]
fn group_driver_reports_a_failing_rule_and_runs_the_others() {
    let g = group(
        r#"groups:
  - name: g
    rules:
      - record: dup
        expr: label_replace(x, "i", "same", "", "")
      - record: ok
        expr: vector(1)
"#,
    );
    let mut storage = MemoryStorage::new();
    for i in ["1", "2"] {
        storage.append(
            l(&[("__name__", "x"), ("i", i)]),
            Sample {
                timestamp_ms: 0,
                value: 1.0,
            },
        );
    }
    let mut state = GroupState::default();
    let failures = eval_group_in_memory(
        &g,
        &mut storage,
        0,
        &mut state,
        &BTreeMap::new(),
        "",
        &EvalOptions::default(),
    );
    assert_eq!(failures.len(), 1);
    assert_eq!((failures[0].index, failures[0].rule.as_str()), (0, "dup"));
    assert!(
        failures[0].error.to_string().contains("same labelset"),
        "{}",
        failures[0].error
    );
    assert_eq!(samples_of(&storage, "ok").len(), 1);
    assert!(samples_of(&storage, "dup").is_empty());
}

#[test]
fn memory_storage_hides_samples_after_the_visible_time() {
    let mut storage = MemoryStorage::new();
    let x = l(&[("__name__", "x")]);
    for t in [30, 10, 20, 20] {
        storage.append(
            x.clone(),
            Sample {
                timestamp_ms: t,
                value: t as f64,
            },
        );
    }
    let all: Vec<i64> = storage
        .series()
        .next()
        .unwrap()
        .1
        .iter()
        .map(|s| s.timestamp_ms)
        .collect();
    assert_eq!(all, vec![10, 20, 30]);
    storage.set_visible_until(Some(20));
    let selected = storage.select(&[Matcher::equal("__name__", "x")]).unwrap();
    assert_eq!(selected[0].samples.len(), 2);
    storage.set_visible_until(Some(5));
    assert!(storage.select(&[]).unwrap().is_empty());
}

const QUERYING: &str = r#"groups:
  - name: q
    rules:
      - record: ratio
        expr: errors / 10
      - alert: Errors
        expr: errors > 1
        annotations:
          peers: "{{ range query `errors` }}{{ .Labels.instance }}={{ .Value }} {{ end }}"
          recorded: "{{ with query `ratio{instance='a'}` }}{{ (index . 0).Value }}{{ end }}"
          scalar: "{{ query `1 + 1` | first | value }}"
          broken: "{{ query `errors[` }}"
          url: "{{ $externalURL }} {{ pathPrefix }}"
"#;

/// Templates' `query` sees the in-memory series at the evaluation time, including what the
/// group's earlier rules just recorded, as promtool's does.
#[test]
fn group_driver_answers_template_queries_at_the_evaluation_time() {
    let g = group(QUERYING);
    let mut storage = MemoryStorage::new();
    for (instance, values) in [("a", [1.0, 5.0]), ("b", [3.0, 7.0])] {
        for (i, v) in values.iter().enumerate() {
            storage.append(
                l(&[("__name__", "errors"), ("instance", instance)]),
                Sample {
                    timestamp_ms: i as i64 * 60_000,
                    value: *v,
                },
            );
        }
    }
    storage.set_visible_until(Some(60_000));
    let mut state = GroupState::default();
    let failures = eval_group_in_memory(
        &g,
        &mut storage,
        60_000,
        &mut state,
        &BTreeMap::new(),
        "http://prom.example/sub",
        &EvalOptions::default(),
    );
    assert!(failures.is_empty(), "{failures:?}");
    let alerts: Vec<_> = state.alerts[1].values().collect();
    assert_eq!(alerts.len(), 2);
    let a = &alerts[0].annotations;
    assert_eq!(a["peers"], "a=5 b=7 ");
    assert_eq!(a["recorded"], "0.5");
    assert_eq!(a["scalar"], "2");
    assert!(
        a["broken"].starts_with(
            "<error expanding template: error executing template __alert_Errors: \
             template: __alert_Errors:1:115: executing \"__alert_Errors\" at \
             <query `errors[`>: error calling query: "
        ),
        "{}",
        a["broken"]
    );
    assert_eq!(a["url"], "http://prom.example/sub /sub");
}
