//! promtool's rule unit tests (`promtool test rules`, Prometheus docs "Unit testing for
//! rules"), run on Redline's own evaluator: `redline-collector rules test FILE…`.
//!
//! A test file names `rule_files` (relative to the test file; globs allowed), an
//! `evaluation_interval` (default 1m), an optional `group_eval_order`, and `tests`. Each test
//! group loads `input_series` (selector plus values in expanding notation, see `series`; sample
//! i at `i * interval`), then, as promtool does, evaluates every rule group at every
//! evaluation interval from 0 to the largest `eval_time` of its cases, with the real alert
//! state machine and recorded series (and `ALERTS`) written back (`eval::eval_group_in_memory`).
//! Alert templates see the test group's `external_labels` and `external_url`, and their `query`
//! evaluates over the input series (and what the rules recorded) at the evaluation time.
//! `alert_rule_test` cases compare the **firing** alerts of the evaluation at or just before
//! their `eval_time`; `promql_expr_test` cases run after the last evaluation. Failures are
//! reported in promtool's words (expected vs got), with the test group's name.
//!
//! Differences from promtool 2.42, all deliberate: a test group without `interval` uses
//! `evaluation_interval` (2.42 used 0, a bug fixed in 2.48); sample values compare equal when
//! they differ by no more than 1e-12 relative (float noise between two evaluators), and `NaN`
//! equals `NaN`; errors in the test file carry `line:column`; the template functions
//! `externalURL` and `pathPrefix` read `external_url` (promtool has no URL for them and fails);
//! `query` results come in label order (promtool's come in the order the series were loaded).
//!
//! Parsing ([`parse_test_file`]) and running ([`run_test_groups`]) are pure; [`run_file`] reads
//! the files.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use marked_yaml::Node;

use super::eval::{GroupState, MemoryStorage, eval_group_in_memory};
use super::file::{self, Cx, RuleError, RuleGroup, RuleKind, format_duration};
use super::series::{parse_series, parse_values};
use super::yaml;
use crate::alert::state::State;
use crate::model::{Labels, Sample};
use crate::query::{EvalOptions, Value, evaluate_instant};

const DEFAULT_EVALUATION_INTERVAL_MS: i64 = 60_000;

/// A parsed unit-test file.
#[derive(Debug, Clone)]
pub struct TestFile {
    /// `rule_files` as written.
    pub rule_files: Vec<String>,
    pub evaluation_interval_ms: i64,
    pub group_eval_order: Vec<String>,
    pub tests: Vec<TestGroup>,
}

#[derive(Debug, Clone)]
pub struct TestGroup {
    pub name: String,
    /// The spacing of input samples.
    pub interval_ms: i64,
    pub input_series: Vec<InputSeries>,
    pub alert_rule_tests: Vec<AlertTest>,
    pub promql_expr_tests: Vec<PromqlTest>,
    pub external_labels: BTreeMap<String, String>,
    /// Templates' `$externalURL` (and what `externalURL` returns; promtool's fails).
    pub external_url: String,
}

#[derive(Debug, Clone)]
pub struct InputSeries {
    pub labels: Labels,
    /// One entry per interval; `None` where a sample is missing.
    pub values: Vec<Option<f64>>,
}

#[derive(Debug, Clone)]
pub struct AlertTest {
    pub eval_time_ms: i64,
    pub alertname: String,
    pub exp_alerts: Vec<ExpectedAlert>,
}

#[derive(Debug, Clone)]
pub struct ExpectedAlert {
    pub exp_labels: BTreeMap<String, String>,
    pub exp_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct PromqlTest {
    pub expr: String,
    pub eval_time_ms: i64,
    pub exp_samples: Vec<ExpectedSample>,
}

#[derive(Debug, Clone)]
pub struct ExpectedSample {
    /// Sorted label pairs (with `__name__` when the selector named a metric).
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// The outcome of one test file.
#[derive(Debug, Clone)]
pub struct TestReport {
    pub file: PathBuf,
    /// Failures in promtool's format, each possibly several lines; empty when all passed.
    pub failures: Vec<String>,
}

impl TestReport {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Reads a test file and its rule files and runs every test group.
pub fn run_file(path: &Path) -> TestReport {
    let report = |failures| TestReport {
        file: path.to_path_buf(),
        failures,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return report(vec![format!(
                "{}: cannot read the file: {e}",
                path.display()
            )]);
        }
    };
    let test = match parse_test_file(path, &text) {
        Ok(t) => t,
        Err(errors) => return report(errors.iter().map(ToString::to_string).collect()),
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    for pattern in &test.rule_files {
        for rule_file in glob(&base.join(pattern)) {
            let loaded = file::load_file(&rule_file);
            errors.extend(loaded.errors.iter().map(ToString::to_string));
            groups.extend(loaded.groups);
        }
    }
    if !errors.is_empty() {
        return report(errors);
    }
    report(run_test_groups(&test, &groups))
}

/// Runs every test group of `test` against `groups` (already loaded); returns the failures.
pub fn run_test_groups(test: &TestFile, groups: &[RuleGroup]) -> Vec<String> {
    let mut failures = Vec::new();
    let mut seen = HashMap::new();
    for (i, name) in test.group_eval_order.iter().enumerate() {
        if seen.insert(name.as_str(), i).is_some() {
            return vec![format!("group name repeated in evaluation order: {name}")];
        }
    }
    // promtool sorts by position in `group_eval_order`, unlisted groups counting as 0; a
    // stable sort keeps file order among equals.
    let mut ordered: Vec<&RuleGroup> = groups.iter().collect();
    ordered.sort_by_key(|g| seen.get(g.name.as_str()).copied().unwrap_or(0));
    for (i, group) in test.tests.iter().enumerate() {
        failures.extend(run_group(test, group, i, &ordered));
    }
    failures
}

fn run_group(test: &TestFile, tg: &TestGroup, index: usize, groups: &[&RuleGroup]) -> Vec<String> {
    let test_name = if tg.name.is_empty() {
        format!("    test group: {},\n", index + 1)
    } else {
        format!("    name: {},\n", tg.name)
    };
    let eval_interval = test.evaluation_interval_ms;
    let mut storage = MemoryStorage::new();
    for s in &tg.input_series {
        for (i, v) in s.values.iter().enumerate() {
            if let Some(v) = v {
                storage.append(
                    s.labels.clone(),
                    Sample {
                        timestamp_ms: i as i64 * tg.interval_ms,
                        value: *v,
                    },
                );
            }
        }
    }
    let options = EvalOptions {
        subquery_step_ms: eval_interval,
        ..EvalOptions::default()
    };
    let max_t = tg
        .alert_rule_tests
        .iter()
        .map(|a| a.eval_time_ms)
        .chain(tg.promql_expr_tests.iter().map(|p| p.eval_time_ms))
        .max()
        .unwrap_or(0);
    let mut alert_times: Vec<i64> = tg.alert_rule_tests.iter().map(|a| a.eval_time_ms).collect();
    alert_times.sort_unstable();
    alert_times.dedup();

    let mut failures = Vec::new();
    let mut states: Vec<GroupState> = vec![GroupState::default(); groups.len()];
    let mut next_alert_time = 0;
    let mut ts = 0;
    while ts <= max_t {
        storage.set_visible_until(Some(ts));
        let mut eval_errors = Vec::new();
        for (group, state) in groups.iter().zip(states.iter_mut()) {
            for f in eval_group_in_memory(
                group,
                &mut storage,
                ts,
                state,
                &tg.external_labels,
                &tg.external_url,
                &options,
            ) {
                eval_errors.push(format!(
                    "{test_name}    rule: {}, time: {}, err: {}",
                    f.rule,
                    go_duration(ts),
                    f.error
                ));
            }
        }
        if !eval_errors.is_empty() {
            failures.extend(eval_errors);
            return failures;
        }
        // Alert cases whose eval_time falls in [ts, ts + interval) see this evaluation.
        while next_alert_time < alert_times.len()
            && ts <= alert_times[next_alert_time]
            && alert_times[next_alert_time] < ts + eval_interval
        {
            let t = alert_times[next_alert_time];
            for case in tg.alert_rule_tests.iter().filter(|c| c.eval_time_ms == t) {
                let mut got = firing_alerts(groups, &states, &case.alertname);
                let mut exp: Vec<AlertPair> = case
                    .exp_alerts
                    .iter()
                    .map(|a| {
                        let mut labels = a.exp_labels.clone();
                        labels.insert("alertname".to_owned(), case.alertname.clone());
                        (
                            labels.into_iter().collect(),
                            a.exp_annotations.clone().into_iter().collect(),
                        )
                    })
                    .collect();
                got.sort();
                exp.sort();
                if got != exp {
                    let indent = "            ";
                    failures.push(format!(
                        "{test_name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                        case.alertname,
                        format_duration(t),
                        indent_lines(&alerts_string(&exp), indent),
                        indent_lines(&alerts_string(&got), indent),
                    ));
                }
            }
            next_alert_time += 1;
        }
        ts += eval_interval;
    }

    storage.set_visible_until(Some(max_t));
    for case in &tg.promql_expr_tests {
        let when = format_duration(case.eval_time_ms);
        let got = match crate::query::parse(&case.expr)
            .map_err(|e| e.to_string())
            .and_then(|expr| {
                evaluate_instant(&expr, case.eval_time_ms, &storage, &options)
                    .map_err(|e| e.to_string())
            }) {
            Ok(Value::Vector(v)) => v
                .into_iter()
                .map(|(l, s)| (pairs(&l), s.value))
                .collect::<Vec<_>>(),
            Ok(Value::Scalar(s)) => vec![(Vec::new(), s.value)],
            Ok(_) => {
                failures.push(format!(
                    "{test_name}    expr: {:?}, time: {when}, err: rule result is not a vector or scalar",
                    case.expr
                ));
                continue;
            }
            Err(e) => {
                failures.push(format!(
                    "{test_name}    expr: {:?}, time: {when}, err: {e}",
                    case.expr
                ));
                continue;
            }
        };
        let mut got = got;
        let mut exp: Vec<(Vec<(String, String)>, f64)> = case
            .exp_samples
            .iter()
            .map(|s| (s.labels.clone(), s.value))
            .collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        exp.sort_by(|a, b| a.0.cmp(&b.0));
        let same = got.len() == exp.len()
            && got
                .iter()
                .zip(&exp)
                .all(|(g, e)| g.0 == e.0 && same_value(g.1, e.1));
        if !same {
            failures.push(format!(
                "{test_name}    expr: {:?}, time: {when},\n        exp: {}\n        got: {}",
                case.expr,
                samples_string(&exp),
                samples_string(&got),
            ));
        }
    }
    failures
}

/// Labels and annotations of one alert, as sorted pairs.
type AlertPair = (Vec<(String, String)>, Vec<(String, String)>);

/// The firing alerts of every alerting rule named `alertname`, across groups.
fn firing_alerts(groups: &[&RuleGroup], states: &[GroupState], alertname: &str) -> Vec<AlertPair> {
    let mut out = Vec::new();
    for (group, state) in groups.iter().zip(states) {
        for (rule, alerts) in group.rules.iter().zip(&state.alerts) {
            if !matches!(&rule.kind, RuleKind::Alerting { name, .. } if name == alertname) {
                continue;
            }
            for alert in alerts.values().filter(|a| a.state == State::Firing) {
                out.push((
                    pairs(&alert.labels),
                    alert
                        .annotations
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ));
            }
        }
    }
    out
}

fn pairs(labels: &Labels) -> Vec<(String, String)> {
    labels
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn same_value(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

/// Go's `labels.Labels.String()`: `{a="x", b="y"}`.
fn labels_string(pairs: &[(String, String)]) -> String {
    let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// promtool's rendering of a list of alerts.
fn alerts_string(alerts: &[AlertPair]) -> String {
    if alerts.is_empty() {
        return "[]".to_owned();
    }
    let mut s = "[".to_owned();
    for (i, (labels, annotations)) in alerts.iter().enumerate() {
        let one = format!(
            "\nLabels:{}\nAnnotations:{}",
            labels_string(labels),
            labels_string(annotations)
        );
        s.push_str(if i == 0 { "\n" } else { ",\n" });
        s.push_str(&format!("{i}:{}", indent_lines(&one, "  ")));
    }
    s.push_str("\n]");
    s
}

/// promtool's `indentLines`: indents every line but the first.
fn indent_lines(text: &str, indent: &str) -> String {
    text.split('\n')
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                l.to_owned()
            } else {
                format!("{indent}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn samples_string(samples: &[(Vec<(String, String)>, f64)]) -> String {
    if samples.is_empty() {
        return "nil".to_owned();
    }
    samples
        .iter()
        .map(|(l, v)| format!("{} {}", labels_string(l), go_float_e(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Go's `strconv.FormatFloat(v, 'E', -1, 64)`: `1E+00`, `1.2345E+04`, `5E-01`, `+Inf`.
pub fn go_float_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    let s = format!("{v:E}");
    match s.split_once('E') {
        Some((mantissa, exp)) => {
            let exp: i32 = exp.parse().unwrap_or(0);
            let sign = if exp < 0 { '-' } else { '+' };
            format!("{mantissa}E{sign}{:02}", exp.abs())
        }
        None => s,
    }
}

/// Go's `time.Duration.String()` for whole milliseconds: `0s`, `500ms`, `1m0s`, `1h2m3.5s`.
pub fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".to_owned();
    }
    let (sign, ms) = if ms < 0 { ("-", -ms) } else { ("", ms) };
    if ms < 1000 {
        return format!("{sign}{ms}ms");
    }
    let h = ms / 3_600_000;
    let m = (ms / 60_000) % 60;
    let s = (ms % 60_000) / 1000;
    let frac = ms % 1000;
    let mut out = sign.to_owned();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if frac == 0 {
        out.push_str(&format!("{s}s"));
    } else {
        let f = format!("{frac:03}");
        out.push_str(&format!("{s}.{}s", f.trim_end_matches('0')));
    }
    out
}

/// Expands a path whose components may hold `*`, `?` or `[…]` (Go's `filepath.Glob`), sorted.
/// A path without them is returned as is, existing or not (loading reports a missing file).
pub fn glob(path: &Path) -> Vec<PathBuf> {
    let is_pattern = |s: &str| s.contains(['*', '?', '[']);
    if !is_pattern(&path.to_string_lossy()) {
        return vec![path.to_path_buf()];
    }
    let mut current = vec![PathBuf::new()];
    for component in path.components() {
        let part = component.as_os_str().to_string_lossy();
        let mut next = Vec::new();
        for base in &current {
            if !is_pattern(&part) {
                next.push(base.join(component.as_os_str()));
                continue;
            }
            let dir = if base.as_os_str().is_empty() {
                Path::new(".")
            } else {
                base.as_path()
            };
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| wildcard(&part, n))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| base.join(n)));
        }
        current = next;
    }
    current
}

/// Shell-style matching of one path component: `*`, `?`, `[abc]`, `[a-z]`, `[^a]`.
fn wildcard(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        // Returns (matched, length of the class in the pattern).
        let mut i = 1;
        let negate = matches!(p.get(1), Some('^' | '!'));
        if negate {
            i += 1;
        }
        let mut matched = false;
        let start = i;
        while i < p.len() && (p[i] != ']' || i == start) {
            if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
                matched |= p[i] <= c && c <= p[i + 2];
                i += 3;
            } else {
                matched |= p[i] == c;
                i += 1;
            }
        }
        (i < p.len()).then_some((matched != negate, i + 1))
    }
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|k| go(&p[1..], &n[k..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => match (n.first(), class(p, n.first().copied().unwrap_or('\0'))) {
                (Some(_), Some((true, len))) => go(&p[len..], &n[1..]),
                _ => false,
            },
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    go(&p, &n)
}

/// Parses a unit-test file; every problem names `file:line:column`.
pub fn parse_test_file(path: &Path, text: &str) -> Result<TestFile, Vec<RuleError>> {
    let mut cx = Cx {
        file: path,
        text,
        errors: Vec::new(),
    };
    let parsed = match yaml::parse_document(text) {
        Ok(Some(root)) => test_file(&mut cx, &root),
        Ok(None) => Some(TestFile {
            rule_files: Vec::new(),
            evaluation_interval_ms: DEFAULT_EVALUATION_INTERVAL_MS,
            group_eval_order: Vec::new(),
            tests: Vec::new(),
        }),
        Err((pos, message)) => {
            cx.error(pos, message);
            None
        }
    };
    match parsed {
        Some(t) if cx.errors.is_empty() => Ok(t),
        _ => Err(cx.errors),
    }
}

fn unknown(cx: &mut Cx<'_>, key: &marked_yaml::types::MarkedScalarNode, ty: &str) {
    cx.error(
        yaml::scalar_pos(key),
        format!("field {} not found in type main.{ty}", key.as_str()),
    );
}

/// The items of a sequence (null is empty), or an error.
fn sequence<'n>(cx: &mut Cx<'_>, node: &'n Node, into: &str) -> Vec<&'n Node> {
    match node {
        Node::Sequence(s) => s.iter().collect(),
        n if yaml::node_is_null(n) => Vec::new(),
        other => {
            cx.error(yaml::node_pos(other), yaml::cannot_unmarshal(other, into));
            Vec::new()
        }
    }
}

fn string(cx: &mut Cx<'_>, node: &Node) -> String {
    match cx.scalar(node, "string") {
        Ok(Some(f)) => f.value.as_str().to_owned(),
        _ => String::new(),
    }
}

fn test_file(cx: &mut Cx<'_>, root: &Node) -> Option<TestFile> {
    let m = cx.mapping(root, "main.unitTestFile")?;
    let mut out = TestFile {
        rule_files: Vec::new(),
        evaluation_interval_ms: 0,
        group_eval_order: Vec::new(),
        tests: Vec::new(),
    };
    let mut test_nodes = Vec::new();
    for (key, value) in m.iter() {
        match key.as_str() {
            "rule_files" => {
                for n in sequence(cx, value, "[]string") {
                    out.rule_files.push(string(cx, n));
                }
            }
            "evaluation_interval" => out.evaluation_interval_ms = cx.duration(value).unwrap_or(0),
            "group_eval_order" => {
                for n in sequence(cx, value, "[]string") {
                    out.group_eval_order.push(string(cx, n));
                }
            }
            "tests" => test_nodes = sequence(cx, value, "[]main.testGroup"),
            _ => unknown(cx, key, "unitTestFile"),
        }
    }
    if out.evaluation_interval_ms <= 0 {
        out.evaluation_interval_ms = DEFAULT_EVALUATION_INTERVAL_MS;
    }
    for node in test_nodes {
        if let Some(tg) = test_group(cx, node, out.evaluation_interval_ms) {
            out.tests.push(tg);
        }
    }
    Some(out)
}

fn test_group(cx: &mut Cx<'_>, node: &Node, evaluation_interval_ms: i64) -> Option<TestGroup> {
    let m = cx.mapping(node, "main.testGroup")?;
    let mut tg = TestGroup {
        name: String::new(),
        interval_ms: 0,
        input_series: Vec::new(),
        alert_rule_tests: Vec::new(),
        promql_expr_tests: Vec::new(),
        external_labels: BTreeMap::new(),
        external_url: String::new(),
    };
    let mut series_nodes = Vec::new();
    for (key, value) in m.iter() {
        match key.as_str() {
            "interval" => tg.interval_ms = cx.duration(value).unwrap_or(0),
            "name" => tg.name = string(cx, value),
            "external_url" => tg.external_url = string(cx, value),
            "external_labels" => {
                if let Ok(entries) = cx.string_map(value) {
                    tg.external_labels = entries
                        .into_iter()
                        .map(|(k, v, _)| (k.as_str().to_owned(), v))
                        .collect();
                }
            }
            "input_series" => series_nodes = sequence(cx, value, "[]main.series"),
            "alert_rule_test" => {
                for n in sequence(cx, value, "[]main.alertTestCase") {
                    if let Some(t) = alert_test(cx, n) {
                        tg.alert_rule_tests.push(t);
                    }
                }
            }
            "promql_expr_test" => {
                for n in sequence(cx, value, "[]main.promqlTestCase") {
                    if let Some(t) = promql_test(cx, n) {
                        tg.promql_expr_tests.push(t);
                    }
                }
            }
            _ => unknown(cx, key, "testGroup"),
        }
    }
    if tg.interval_ms <= 0 {
        tg.interval_ms = evaluation_interval_ms;
    }
    for n in series_nodes {
        if let Some(s) = input_series(cx, n) {
            tg.input_series.push(s);
        }
    }
    Some(tg)
}

fn input_series(cx: &mut Cx<'_>, node: &Node) -> Option<InputSeries> {
    let pos = yaml::node_pos(node);
    let m = cx.mapping(node, "main.series")?;
    let mut labels = None;
    let mut values = Vec::new();
    let mut has_series = false;
    for (key, value) in m.iter() {
        match key.as_str() {
            "series" => match cx.scalar(value, "string") {
                Ok(Some(f)) => {
                    has_series = true;
                    match parse_series(f.value.as_str()) {
                        Ok(p) => labels = Some(Labels::new(p)),
                        Err(e) => cx.error(f.pos, format!("invalid series: {e}")),
                    }
                }
                Ok(None) => {}
                Err(()) => has_series = true,
            },
            "values" => {
                if let Ok(Some(f)) = cx.scalar(value, "string") {
                    match parse_values(f.value.as_str()) {
                        Ok(v) => values = v,
                        Err(e) => {
                            let at = yaml::value_position(cx.text, f.value, e.offset);
                            cx.error(at, format!("invalid series values: {e}"));
                        }
                    }
                }
            }
            _ => unknown(cx, key, "series"),
        }
    }
    match labels {
        Some(labels) if !labels.is_empty() => Some(InputSeries { labels, values }),
        Some(_) => {
            cx.error(pos, "input series without labels");
            None
        }
        None => {
            if !has_series {
                cx.error(pos, "input series without 'series'");
            }
            None
        }
    }
}

fn alert_test(cx: &mut Cx<'_>, node: &Node) -> Option<AlertTest> {
    let pos = yaml::node_pos(node);
    let m = cx.mapping(node, "main.alertTestCase")?;
    let mut t = AlertTest {
        eval_time_ms: 0,
        alertname: String::new(),
        exp_alerts: Vec::new(),
    };
    for (key, value) in m.iter() {
        match key.as_str() {
            "eval_time" => t.eval_time_ms = cx.duration(value).unwrap_or(0),
            "alertname" => t.alertname = string(cx, value),
            "exp_alerts" => {
                for n in sequence(cx, value, "[]main.alert") {
                    if let Some(a) = expected_alert(cx, n) {
                        t.exp_alerts.push(a);
                    }
                }
            }
            _ => unknown(cx, key, "alertTestCase"),
        }
    }
    if t.alertname.is_empty() {
        cx.error(
            pos,
            format!(
                "an item under alert_rule_test misses required attribute alertname at eval_time {}",
                format_duration(t.eval_time_ms)
            ),
        );
        return None;
    }
    Some(t)
}

fn expected_alert(cx: &mut Cx<'_>, node: &Node) -> Option<ExpectedAlert> {
    let m = cx.mapping(node, "main.alert")?;
    let mut a = ExpectedAlert {
        exp_labels: BTreeMap::new(),
        exp_annotations: BTreeMap::new(),
    };
    for (key, value) in m.iter() {
        let target = match key.as_str() {
            "exp_labels" => &mut a.exp_labels,
            "exp_annotations" => &mut a.exp_annotations,
            _ => {
                unknown(cx, key, "alert");
                continue;
            }
        };
        if let Ok(entries) = cx.string_map(value) {
            target.extend(
                entries
                    .into_iter()
                    .map(|(k, v, _)| (k.as_str().to_owned(), v)),
            );
        }
    }
    Some(a)
}

fn promql_test(cx: &mut Cx<'_>, node: &Node) -> Option<PromqlTest> {
    let m = cx.mapping(node, "main.promqlTestCase")?;
    let mut t = PromqlTest {
        expr: String::new(),
        eval_time_ms: 0,
        exp_samples: Vec::new(),
    };
    for (key, value) in m.iter() {
        match key.as_str() {
            "expr" => t.expr = string(cx, value),
            "eval_time" => t.eval_time_ms = cx.duration(value).unwrap_or(0),
            "exp_samples" => {
                for n in sequence(cx, value, "[]main.sample") {
                    if let Some(s) = expected_sample(cx, n) {
                        t.exp_samples.push(s);
                    }
                }
            }
            _ => unknown(cx, key, "promqlTestCase"),
        }
    }
    Some(t)
}

fn expected_sample(cx: &mut Cx<'_>, node: &Node) -> Option<ExpectedSample> {
    let m = cx.mapping(node, "main.sample")?;
    let mut s = ExpectedSample {
        labels: Vec::new(),
        value: 0.0,
    };
    let mut ok = true;
    for (key, value) in m.iter() {
        match key.as_str() {
            "labels" => {
                if let Ok(Some(f)) = cx.scalar(value, "string") {
                    match parse_series(f.value.as_str()) {
                        Ok(p) => s.labels = p,
                        Err(e) => {
                            cx.error(f.pos, format!("labels {:?}: {e}", f.value.as_str()));
                            ok = false;
                        }
                    }
                }
            }
            "value" => {
                if let Ok(Some(f)) = cx.scalar(value, "float64") {
                    match parse_float(f.value.as_str()) {
                        Some(v) => s.value = v,
                        None => {
                            cx.error(f.pos, yaml::cannot_unmarshal(value, "float64"));
                            ok = false;
                        }
                    }
                }
            }
            _ => unknown(cx, key, "sample"),
        }
    }
    ok.then_some(s)
}

/// A YAML float: decimal or scientific, `.inf`/`-.inf`/`.nan` (YAML), or `Inf`/`NaN`.
fn parse_float(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        ".inf" | "+.inf" => return Some(f64::INFINITY),
        "-.inf" => return Some(f64::NEG_INFINITY),
        ".nan" => return Some(f64::NAN),
        _ => {}
    }
    t.replace('_', "").parse().ok()
}

#[cfg(test)]
mod tests;
