//! Black-box tests of `redline-collector rules check` and `rules test`: exit codes, messages
//! with `file:line:column`, and Prometheus' own documentation examples, which promtool accepts
//! and so must Redline (when promtool is on PATH the test also asks it, to keep the examples
//! honest; without it, outside CI, that half is skipped).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_redline-collector");

struct Out {
    ok: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn redline(args: &[&str], paths: &[&Path]) -> Out {
    let out = Command::new(BIN).args(args).args(paths).output().unwrap();
    Out {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn promtool() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("promtool"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is required in CI (Debian package `prometheus`)"
        );
        eprintln!("note: promtool not found; skipping the promtool cross-check");
    }
    found
}

const BAD: &str = r#"groups:
  - name: g
    rules:
      - alert: A
        expr: sum(up
      - record: 'bad name'
        expr: up
      - alert: Good
        expr: up == 0
"#;

#[test]
fn check_good_and_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "good.yml",
        "groups:\n  - name: g\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up)\n      - alert: Down\n        expr: up == 0\n",
    );
    let out = redline(&["rules", "check"], &[&good]);
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("SUCCESS: 2 rules found"),
        "{}",
        out.stdout
    );

    let bad = write(dir.path(), "bad.yml", BAD);
    let out = redline(&["rules", "check"], &[&good, &bad]);
    assert_eq!(out.code, Some(1));
    let file = bad.display();
    assert!(
        out.stderr.contains(&format!(
            "{file}:5:21: group \"g\", rule 1, \"A\": could not parse expression: 1:7: parse error: unclosed left parenthesis"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "{file}:6:17: group \"g\", rule 2, \"bad name\": invalid recording rule name: bad name"
        )),
        "{}",
        out.stderr
    );
    // The good file still passes in the same run.
    assert!(
        out.stdout.contains("SUCCESS: 2 rules found"),
        "{}",
        out.stdout
    );

    let not_yaml = write(dir.path(), "broken.yml", "groups: [\n  - name: x\n");
    let out = redline(&["rules", "check"], &[&not_yaml]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains(&format!("{}:2:3: yaml: ", not_yaml.display())),
        "{}",
        out.stderr
    );

    // A directory: every rule file in it, the bad one failing the run.
    let out = redline(&["rules", "check"], &[dir.path()]);
    assert_eq!(out.code, Some(1));
    assert!(out.stdout.contains(&format!("Checking {}", good.display())));

    let out = redline(&["rules", "check"], &[&dir.path().join("missing.yml")]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("cannot read the file"),
        "{}",
        out.stderr
    );

    // No paths: a usage error.
    assert_eq!(redline(&["rules", "check"], &[]).code, Some(2));
}

const RULES: &str = r#"groups:
  - name: g
    rules:
      - alert: Down
        expr: up == 0
        for: 2m
        labels: {severity: page}
        annotations:
          summary: "{{ $labels.instance }} down"
"#;

const TEST: &str = r#"rule_files: [rules.yml]
tests:
  - name: down
    interval: 1m
    input_series:
      - series: 'up{instance="a"}'
        values: '0x5'
    alert_rule_test:
      - eval_time: 1m
        alertname: Down
      - eval_time: 3m
        alertname: Down
        exp_alerts:
          - exp_labels: {instance: a, severity: page}
            exp_annotations: {summary: "a down"}
"#;

#[test]
fn test_passes_and_fails_with_promtool_style_reports() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rules.yml", RULES);
    let pass = write(dir.path(), "pass_test.yml", TEST);
    let out = redline(&["rules", "test"], &[&pass]);
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains(&format!("Unit Testing:  {}", pass.display()))
    );
    assert!(out.stdout.contains("  SUCCESS"));

    let fail = write(
        dir.path(),
        "fail_test.yml",
        &TEST.replace("eval_time: 3m", "eval_time: 1m30s"),
    );
    let out = redline(&["rules", "test"], &[&pass, &fail]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("  FAILED:"), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "    name: down,\n    alertname: Down, time: 1m30s, \n        exp:[\n            0:\n              Labels:{alertname=\"Down\", instance=\"a\", severity=\"page\"}\n              Annotations:{summary=\"a down\"}\n            ], \n        got:[]"
        ),
        "{}",
        out.stderr
    );

    let bad = write(dir.path(), "bad_test.yml", "rule_files: rules.yml\n");
    let out = redline(&["rules", "test"], &[&bad]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains(&format!(
            "{}:1:13: cannot unmarshal !!str `rules.yml` into []string",
            bad.display()
        )),
        "{}",
        out.stderr
    );
}

/// Examples from Prometheus' documentation (recording rules, alerting rules, templating,
/// unit testing), which `promtool check rules` / `promtool test rules` accept.
const DOC_RECORDING: &str = r#"groups:
  - name: example
    rules:
    - record: code:prometheus_http_requests_total:sum
      expr: sum by (code) (prometheus_http_requests_total)
  - name: limited
    interval: 30s
    limit: 10
    rules:
    - record: job:http_inprogress_requests:sum
      expr: sum by (job) (http_inprogress_requests)
"#;

const DOC_ALERTING: &str = r#"groups:
- name: example
  rules:
  - alert: HighRequestLatency
    expr: job:request_latency_seconds:mean5m{job="myjob"} > 0.5
    for: 10m
    keep_firing_for: 5m
    labels:
      severity: page
    annotations:
      summary: High request latency
"#;

const DOC_TEMPLATING: &str = r#"groups:
- name: example
  rules:

  # Alert for any instance that is unreachable for >5 minutes.
  - alert: InstanceDown
    expr: up == 0
    for: 5m
    labels:
      severity: page
    annotations:
      summary: "Instance {{ $labels.instance }} down"
      description: "{{ $labels.instance }} of job {{ $labels.job }} has been down for more than 5 minutes."

  # Alert for any instance that has a median request latency >1s.
  - alert: APIHighRequestLatency
    expr: api_http_request_latencies_second{quantile="0.5"} > 1
    for: 10m
    annotations:
      summary: "High request latency on {{ $labels.instance }}"
      description: "{{ $labels.instance }} has a median request latency above 1s (current value: {{ $value }}s)"
"#;

const DOC_UNIT_ALERTS: &str = r#"# This is the rules file.

groups:
- name: example
  rules:

  - alert: InstanceDown
    expr: up == 0
    for: 5m
    labels:
        severity: page
    annotations:
        summary: "Instance {{ $labels.instance }} down"
        description: "{{ $labels.instance }} of job {{ $labels.job }} has been down for more than 5 minutes."

  - alert: AnotherInstanceDown
    expr: up == 0
    for: 10m
    labels:
        severity: page
    annotations:
        summary: "Instance {{ $labels.instance }} down"
        description: "{{ $labels.instance }} of job {{ $labels.job }} has been down for more than 5 minutes."
"#;

const DOC_UNIT_TEST: &str = r#"# This is the main input for unit testing.
# Only this file is passed as command line argument.

rule_files:
    - alerts.yml

evaluation_interval: 1m

tests:
    # Test 1.
    - interval: 1m
      # Series data.
      input_series:
          - series: 'up{job="prometheus", instance="localhost:9090"}'
            values: '0 0 0 0 0 0 0 0 0 0 0 0 0 0 0'
          - series: 'up{job="node_exporter", instance="localhost:9100"}'
            values: '1+0x6 0 0 0 0 0 0 0 0' # 1 1 1 1 1 1 1 0 0 0 0 0 0 0 0
          - series: 'go_goroutines{job="prometheus", instance="localhost:9090"}'
            values: '10+10x2 30+20x5' # 10 20 30 30 50 70 90 110 130
          - series: 'go_goroutines{job="node_exporter", instance="localhost:9100"}'
            values: '10+10x7 10+30x4' # 10 20 30 40 50 60 70 80 10 40 70 100 130

      # Unit test for alerting rules.
      alert_rule_test:
          # Unit test 1.
          - eval_time: 10m
            alertname: InstanceDown
            exp_alerts:
                # Alert 1.
                - exp_labels:
                      severity: page
                      instance: localhost:9090
                      job: prometheus
                  exp_annotations:
                      summary: "Instance localhost:9090 down"
                      description: "localhost:9090 of job prometheus has been down for more than 5 minutes."
      # Unit tests for promql expressions.
      promql_expr_test:
          # Unit test 1.
          - expr: go_goroutines > 5
            eval_time: 4m
            exp_samples:
                # Sample 1.
                - labels: 'go_goroutines{job="prometheus",instance="localhost:9090"}'
                  value: 50
                # Sample 2.
                - labels: 'go_goroutines{job="node_exporter",instance="localhost:9100"}'
                  value: 50
"#;

#[test]
fn prometheus_documentation_examples_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let rule_files: Vec<PathBuf> = [
        ("recording.yml", DOC_RECORDING),
        ("alerting.yml", DOC_ALERTING),
        ("templating.yml", DOC_TEMPLATING),
        ("alerts.yml", DOC_UNIT_ALERTS),
    ]
    .iter()
    .map(|(name, text)| write(dir.path(), name, text))
    .collect();
    let test = write(dir.path(), "test.yml", DOC_UNIT_TEST);
    let paths: Vec<&Path> = rule_files.iter().map(PathBuf::as_path).collect();

    let out = redline(&["rules", "check"], &paths);
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    for n in [2, 1, 2, 2] {
        assert!(
            out.stdout.contains(&format!("SUCCESS: {n} rules found")),
            "{}",
            out.stdout
        );
    }
    let out = redline(&["rules", "test"], &[&test]);
    assert!(out.ok, "{}{}", out.stdout, out.stderr);

    // The same files through promtool, so the examples stay ones promtool accepts.
    let Some(promtool) = promtool() else {
        return;
    };
    let out = Command::new(&promtool)
        .args(["check", "rules"])
        .args(&paths)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = Command::new(&promtool)
        .args(["test", "rules"])
        .arg(&test)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Evaluation semantics promtool's own test suite checks (sample times, staleness markers,
/// gaps and the lookback, recording rules without input, `ALERTS`, input finer than the
/// evaluation interval), in a file written for Redline; both tools must pass it.
const SEMANTICS_RULES: &str = r#"groups:
  - name: alerting
    rules:
      - alert: TargetMissing
        expr: up == 0
        for: 5m
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.instance }} of {{ $labels.job }} is missing"
      - alert: Watchdog
        expr: vector(1)
  - name: recording
    rules:
      - record: job:samples:count1m
        expr: sum without (instance) (count_over_time(samples[1m]))
      - record: constant_one
        expr: 1
"#;

const SEMANTICS_TEST: &str = r#"rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  # Input handling: sample times, staleness markers, gaps and the lookback.
  - interval: 1m
    input_series:
      - series: full
        values: "5 5"
      - series: gone
        values: "5 stale"
      - series: gap
        values: "5 _x5 5"
    promql_expr_test:
      - expr: timestamp(full)
        eval_time: 0s
        exp_samples: [{value: 0}]
      - expr: timestamp(full)
        eval_time: 2m
        exp_samples: [{value: 60}]
      - expr: gone
        eval_time: 59s
        exp_samples: [{labels: gone, value: 5}]
      - expr: gone
        eval_time: 1m
        exp_samples: []
      - expr: timestamp(gap)
        eval_time: 5m
        exp_samples: [{value: 0}]
      - expr: timestamp(gap)
        eval_time: 5m1s
        exp_samples: []
  # Recording rules run without any input series.
  - interval: 1m
    promql_expr_test:
      - expr: count_over_time(constant_one[30m])
        eval_time: 30m
        exp_samples: [{value: 31}]
      - expr: timestamp(constant_one)
        eval_time: 30m
        exp_samples: [{value: 1800}]
  # Alerts over half a day, and ALERTS written back.
  - interval: 1m
    input_series:
      - series: 'up{job="api", instance="a:80"}'
        values: "0x720"
    promql_expr_test:
      - expr: count by (alertname, alertstate) (ALERTS)
        eval_time: 3m
        exp_samples:
          - labels: '{alertname="Watchdog", alertstate="firing"}'
            value: 1
          - labels: '{alertname="TargetMissing", alertstate="pending"}'
            value: 1
    alert_rule_test:
      - eval_time: 0s
        alertname: Watchdog
        exp_alerts: [{}]
      - eval_time: 0s
        alertname: TargetMissing
        exp_alerts: []
      - eval_time: 12h
        alertname: TargetMissing
        exp_alerts:
          - exp_labels: {severity: page, instance: "a:80", job: api}
            exp_annotations: {summary: "a:80 of api is missing"}
  # Input every second, rules every minute.
  - interval: 1s
    input_series:
      - series: 'samples{job="j", instance="i"}'
        values: "0+1x120"
    promql_expr_test:
      - expr: job:samples:count1m
        eval_time: 0s
        exp_samples: [{labels: 'job:samples:count1m{job="j"}', value: 1}]
      - expr: job:samples:count1m
        eval_time: 1m
        exp_samples: [{labels: 'job:samples:count1m{job="j"}', value: 61}]
      - expr: timestamp(job:samples:count1m)
        eval_time: 1m30s
        exp_samples: [{labels: '{job="j"}', value: 60}]
      - expr: timestamp(job:samples:count1m)
        eval_time: 2m59s999ms
        exp_samples: [{labels: '{job="j"}', value: 120}]
"#;

#[test]
fn evaluation_semantics_match_promtool() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rules.yml", SEMANTICS_RULES);
    let test = write(dir.path(), "rules_test.yml", SEMANTICS_TEST);
    let out = redline(&["rules", "test"], &[&test]);
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    // A wrong expectation fails in both.
    let wrong = write(
        dir.path(),
        "wrong_test.yml",
        &SEMANTICS_TEST.replace("value: 1800", "value: 1740"),
    );
    let out = redline(&["rules", "test"], &[&wrong]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains(
            "    expr: \"timestamp(constant_one)\", time: 30m,\n        exp: {} 1.74E+03\n        got: {} 1.8E+03"
        ),
        "{}",
        out.stderr
    );
    let Some(promtool) = promtool() else {
        return;
    };
    let run = |file: &Path| {
        Command::new(&promtool)
            .args(["test", "rules"])
            .arg(file)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(run(&test));
    assert!(!run(&wrong));
}

/// Alert templates with `query`, `range`, `with`, `else` and variables
/// (`tests/fixtures/templates/`): Redline renders them as Prometheus does, so promtool and
/// Redline pass the same unit test and fail the same wrong one.
#[test]
fn query_range_and_variables_in_templates_match_promtool() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates");
    let rules = fixtures.join("query_rules.yml");
    let test = fixtures.join("query_rules_test.yml");
    let out = redline(&["rules", "check"], &[&rules]);
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("SUCCESS: 2 rules found"),
        "{}",
        out.stdout
    );
    let out = redline(&["rules", "test"], &[&test]);
    assert!(out.ok, "{}{}", out.stdout, out.stderr);

    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&rules, dir.path().join("query_rules.yml")).unwrap();
    let wrong = write(
        dir.path(),
        "wrong_test.yml",
        &std::fs::read_to_string(&test)
            .unwrap()
            .replace("down: b, c", "down: b"),
    );
    let out = redline(&["rules", "test"], &[&wrong]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains(r#"down="b, c""#), "{}", out.stderr);

    let Some(promtool) = promtool() else {
        return;
    };
    let run = |args: &[&str], file: &Path| {
        Command::new(&promtool)
            .args(args)
            .arg(file)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(run(&["check", "rules"], &rules));
    assert!(run(&["test", "rules"], &test));
    assert!(!run(&["test", "rules"], &wrong));
}
