#![allow(clippy::unwrap_used)]

use std::path::Path;

use super::*;

/// Writes files into a temporary directory and runs the test file among them.
fn run(files: &[(&str, &str)], test: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let path = dir.path().join("test.yml");
    std::fs::write(&path, test).unwrap();
    run_file(&path).failures
}

/// Rules and tests checked with `promtool test rules` (2.42): it passes them, as Redline must.
const RULES: &str = r#"groups:
  - name: recording
    rules:
      - record: job:errors:rate1m
        expr: sum by (job) (rate(errors_total[1m]))
  - name: alerts
    rules:
      - alert: ErrorsHigh
        expr: job:errors:rate1m > 1
        for: 2m
        keep_firing_for: 3m
        labels:
          severity: page
          cluster: "{{ $externalLabels.cluster }}"
        annotations:
          summary: "{{ $labels.job }}: {{ $value | humanize }} errors/s"
      - alert: Flapping
        expr: flap == 1
        keep_firing_for: 2m
      - alert: AlertsSeen
        expr: ALERTS{alertname="ErrorsHigh", alertstate="firing"}
"#;

const TEST: &str = r#"rule_files: [rules.yml]
evaluation_interval: 1m
group_eval_order: [recording, alerts]
tests:
  - name: for and keep_firing_for
    interval: 1m
    external_labels: {cluster: eu1}
    input_series:
      # 0..4m: 120 errors a minute (2/s); then quiet from 5m.
      - series: 'errors_total{job="api"}'
        values: '0+120x4 480x20'
      - series: 'flap'
        values: '1 0 1 0 0 0 0 0'
    alert_rule_test:
      - eval_time: 1m
        alertname: ErrorsHigh
      - eval_time: 3m
        alertname: ErrorsHigh
        exp_alerts:
          - exp_labels: {job: api, severity: page, cluster: eu1}
            exp_annotations: {summary: "api: 2 errors/s"}
      # Quiet from 5m (the rate over [1m] is 0); held by keep_firing_for through 7m.
      - eval_time: 7m
        alertname: ErrorsHigh
        exp_alerts:
          - exp_labels: {job: api, severity: page, cluster: eu1}
            exp_annotations: {summary: "api: 2 errors/s"}
      - eval_time: 8m
        alertname: ErrorsHigh
      - eval_time: 3m30s
        alertname: AlertsSeen
        exp_alerts:
          - exp_labels: {job: api, severity: page, cluster: eu1, alertstate: firing}
      - eval_time: 1m
        alertname: Flapping
        exp_alerts:
          - exp_labels: {}
      - eval_time: 3m
        alertname: Flapping
        exp_alerts:
          - exp_labels: {}
      - eval_time: 5m
        alertname: Flapping
    promql_expr_test:
      - expr: job:errors:rate1m
        eval_time: 2m
        exp_samples:
          - labels: 'job:errors:rate1m{job="api"}'
            value: 2
      - expr: ALERTS_FOR_STATE{alertname="ErrorsHigh"}
        eval_time: 4m
        exp_samples:
          - labels: 'ALERTS_FOR_STATE{alertname="ErrorsHigh", job="api", severity="page", cluster="eu1"}'
            value: 60
      - expr: ALERTS
        eval_time: 10m
        exp_samples: []
"#;

#[test]
fn timing_recording_rules_feeding_alerts_and_templates_like_promtool() {
    let failures = run(&[("rules.yml", RULES)], TEST);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_failing_test_is_reported_as_promtool_reports_it() {
    // Expect the alert one minute too long: keep_firing_for has let go at 8m.
    let test = TEST.replace(
        "      - eval_time: 7m\n        alertname: ErrorsHigh",
        "      - eval_time: 8m\n        alertname: ErrorsHigh",
    );
    let test = test.replace("value: 60\n", "value: 61\n");
    let failures = run(&[("rules.yml", RULES)], &test);
    assert_eq!(
        failures,
        vec![
            "    name: for and keep_firing_for,
    alertname: ErrorsHigh, time: 8m, 
        exp:[
            0:
              Labels:{alertname=\"ErrorsHigh\", cluster=\"eu1\", job=\"api\", severity=\"page\"}
              Annotations:{summary=\"api: 2 errors/s\"}
            ], 
        got:[]"
                .to_owned(),
            "    name: for and keep_firing_for,
    expr: \"ALERTS_FOR_STATE{alertname=\\\"ErrorsHigh\\\"}\", time: 4m,
        exp: {__name__=\"ALERTS_FOR_STATE\", alertname=\"ErrorsHigh\", cluster=\"eu1\", job=\"api\", severity=\"page\"} 6.1E+01
        got: {__name__=\"ALERTS_FOR_STATE\", alertname=\"ErrorsHigh\", cluster=\"eu1\", job=\"api\", severity=\"page\"} 6E+01"
                .to_owned(),
        ]
    );
}

const ORDER_RULES: &str = r#"groups:
  - name: alerts
    rules:
      - alert: RecordedOne
        expr: recorded == 1
  - name: recording
    rules:
      - record: recorded
        expr: vector(1)
"#;

fn order_test(order: &str) -> String {
    format!(
        r#"rule_files: [order.yml]
group_eval_order: {order}
tests:
  - interval: 1m
    alert_rule_test:
      - eval_time: 0m
        alertname: RecordedOne
        exp_alerts: [{{exp_labels: {{}}}}]
      - eval_time: 1m
        alertname: RecordedOne
        exp_alerts: [{{exp_labels: {{}}}}]
"#
    )
}

/// As promtool: with the recording group first, the alert sees the recorded series in the
/// same evaluation; the other way round, only from the next one.
#[test]
fn group_eval_order_decides_what_later_groups_see() {
    let files = [("order.yml", ORDER_RULES)];
    assert!(run(&files, &order_test("[recording, alerts]")).is_empty());
    let failures = run(&files, &order_test("[alerts, recording]"));
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].contains("alertname: RecordedOne, time: 0s"),
        "{}",
        failures[0]
    );
    assert_eq!(
        run(&files, &order_test("[alerts, alerts]")),
        vec!["group name repeated in evaluation order: alerts"]
    );
}

#[test]
fn rule_evaluation_errors_stop_the_test_group() {
    let rules = r#"groups:
  - name: g
    rules:
      - record: dup
        expr: label_replace(x, "i", "same", "", "")
"#;
    let test = r#"rule_files: [err.yml]
tests:
  - interval: 1m
    input_series:
      - series: 'x{i="1"}'
        values: '1 1 1'
      - series: 'x{i="2"}'
        values: '_ 1 1'
    promql_expr_test:
      - expr: x
        eval_time: 2m
        exp_samples: []
"#;
    assert_eq!(
        run(&[("err.yml", rules)], test),
        vec![
            "    test group: 1,\n    rule: dup, time: 1m0s, err: vector cannot contain metrics with the same labelset"
        ]
    );
}

#[test]
fn bad_rule_files_fail_the_test_file_with_positions() {
    let failures = run(
        &[(
            "bad.yml",
            "groups:\n  - name: g\n    rules:\n      - record: x\n        expr: sum(\n",
        )],
        "rule_files: [bad.yml, missing.yml]\ntests: []\n",
    );
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(
        failures[0].ends_with(
            "bad.yml:5:19: group \"g\", rule 1, \"x\": could not parse expression: 1:5: parse error: unclosed left parenthesis"
        ),
        "{}",
        failures[0]
    );
    assert!(
        failures[1].contains("missing.yml: cannot read the file"),
        "{}",
        failures[1]
    );
}

#[test]
fn rule_files_are_relative_to_the_test_file_and_may_be_globs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("r")).unwrap();
    for (name, metric) in [("a.yml", "a"), ("b.yml", "b"), ("c.txt", "c")] {
        std::fs::write(
            dir.path().join("r").join(name),
            format!("groups:\n  - name: {metric}\n    rules:\n      - record: {metric}\n        expr: vector(1)\n"),
        )
        .unwrap();
    }
    let found = glob(&dir.path().join("r/*.yml"));
    assert_eq!(
        found,
        vec![dir.path().join("r/a.yml"), dir.path().join("r/b.yml")]
    );
    assert_eq!(glob(&dir.path().join("r/[ab].y?l")).len(), 2);
    assert_eq!(
        glob(&dir.path().join("*/c.*")),
        vec![dir.path().join("r/c.txt")]
    );
    let test = dir.path().join("t.yml");
    std::fs::write(
        &test,
        "rule_files: ['r/*.yml']\ntests:\n  - promql_expr_test:\n      - expr: a + on() b\n        exp_samples: [{value: 2}]\n",
    )
    .unwrap();
    let report = run_file(&test);
    assert!(report.passed(), "{:?}", report.failures);
}

#[test]
fn wildcards() {
    assert!(wildcard("*.yml", "a.yml"));
    assert!(!wildcard("*.yml", "a.yaml"));
    assert!(wildcard("a?c", "abc"));
    assert!(wildcard("[a-c]x", "bx"));
    assert!(!wildcard("[^a-c]x", "bx"));
    assert!(wildcard("[!a]x", "bx"));
    assert!(!wildcard("[ab", "a"));
    assert!(wildcard("*", ""));
}

fn parse_errors(text: &str) -> Vec<String> {
    parse_test_file(Path::new("t.yml"), text)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn test_file_errors_name_line_and_column() {
    let text = r#"rule_files: [r.yml]
evaluation_interval: 1x
tests:
  - interval: 1m
    input_series:
      - series: 'up{job="a"}'
        values: '1 2 3+1 4'
      - series: 'up{job=~"a"}'
        values: '1'
      - values: '1'
    alert_rule_test:
      - eval_time: 1m
        exp_alerts: []
      - eval_time: 1m
        alertname: A
        exp_alerts:
          - exp_labels: {a: b}
            exp_annotation: {}
    promql_expr_test:
      - expr: up
        exp_samples:
          - labels: 'up{'
            value: 1
          - value: lots
    bogus: true
"#;
    assert_eq!(
        parse_errors(text),
        vec![
            r#"t.yml:2:22: not a valid duration string: "1x""#,
            "t.yml:12:9: an item under alert_rule_test misses required attribute alertname at eval_time 1m",
            "t.yml:18:13: field exp_annotation not found in type main.alert",
            "t.yml:22:21: labels \"up{\": 1:4: parse error: unexpected end of input inside braces",
            "t.yml:24:20: cannot unmarshal !!str `lots` into float64",
            "t.yml:25:5: field bogus not found in type main.testGroup",
            "t.yml:7:22: invalid series values: \"3+1\": an increment must be followed by x and a count (\"1+2x3\")",
            "t.yml:8:17: invalid series: \"up{job=~\\\"a\\\"}\": a series can only have label=\"value\" pairs, not =~",
            "t.yml:10:9: input series without 'series'",
        ]
    );
    assert_eq!(
        parse_errors("tests: [\n"),
        vec!["t.yml:2:1: yaml: while parsing a node, did not find expected node content"]
    );
}

#[test]
fn defaults() {
    let t = parse_test_file(
        Path::new("t.yml"),
        "tests:\n  - input_series:\n      - series: up\n        values: 1 2\n  - interval: 30s\n",
    )
    .unwrap();
    assert_eq!(t.evaluation_interval_ms, 60_000);
    // Unlike promtool 2.42 (which used 0), a missing interval is the evaluation interval.
    assert_eq!(t.tests[0].interval_ms, 60_000);
    assert_eq!(t.tests[1].interval_ms, 30_000);
    assert_eq!(
        t.tests[0].input_series[0].values,
        vec![Some(1.0), Some(2.0)]
    );
    assert!(
        parse_test_file(Path::new("t.yml"), "")
            .unwrap()
            .tests
            .is_empty()
    );
}

#[test]
fn go_formatting() {
    for (v, s) in [
        (1.0, "1E+00"),
        (12345.0, "1.2345E+04"),
        (0.5, "5E-01"),
        (-2.0, "-2E+00"),
        (1e-300, "1E-300"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
        (f64::NAN, "NaN"),
        (0.0, "0E+00"),
    ] {
        assert_eq!(go_float_e(v), s);
    }
    for (ms, s) in [
        (0, "0s"),
        (500, "500ms"),
        (60_000, "1m0s"),
        (3_723_500, "1h2m3.5s"),
        (7_200_000, "2h0m0s"),
        (1_000, "1s"),
    ] {
        assert_eq!(go_duration(ms), s);
    }
    assert!(same_value(0.1 + 0.2, 0.3));
    assert!(same_value(f64::NAN, f64::NAN));
    assert!(!same_value(1.0, 1.000001));
}
