#![allow(clippy::unwrap_used)]

use super::*;

fn load(text: &str) -> Loaded {
    parse_file(Path::new("r.yml"), text)
}

fn errors(text: &str) -> Vec<String> {
    load(text).errors.iter().map(ToString::to_string).collect()
}

const GOOD: &str = r#"groups:
  - name: example
    interval: 30s
    limit: 10
    labels:
      team: infra
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
        labels:
          source: rules
      - alert: InstanceDown
        expr: up == 0
        for: 5m
        keep_firing_for: 1m30s
        labels:
          severity: "{{ if gt $value 0.0 }}page{{ else }}ticket{{ end }}"
        annotations:
          summary: "Instance {{ $labels.instance }} down"
  - name: empty
    rules: []
  - name: null-rules
"#;

#[test]
fn loads_groups_and_rules_with_positions() {
    let loaded = load(GOOD);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert_eq!(loaded.groups.len(), 3);
    assert_eq!(loaded.rule_count(), 2);
    let g = &loaded.groups[0];
    assert_eq!(g.name, "example");
    assert_eq!(g.interval, Some(Duration::from_secs(30)));
    assert_eq!(g.limit, 10);
    assert_eq!(g.labels["team"], "infra");
    assert_eq!((g.line, g.column), (2, 5));
    let rec = &g.rules[0];
    assert_eq!(rec.name(), "job:up:sum");
    assert_eq!((rec.line, rec.column, rec.index), (8, 9, 1));
    assert_eq!(rec.expr_text, "sum by (job) (up)");
    assert!(matches!(&rec.kind, RuleKind::Recording { labels, .. } if labels["source"] == "rules"));
    let alert = &g.rules[1];
    assert_eq!(alert.name(), "InstanceDown");
    assert!(alert.is_alerting());
    assert_eq!(
        alert.timing(),
        Timing {
            for_ms: 300_000,
            keep_firing_for_ms: 90_000
        }
    );
    let RuleKind::Alerting {
        labels_text,
        annotations,
        ..
    } = &alert.kind
    else {
        panic!("not alerting");
    };
    assert!(labels_text["severity"].starts_with("{{ if"));
    assert!(annotations.contains_key("summary"));
    assert_eq!(loaded.groups[2].interval, None);
}

#[test]
fn empty_files_and_documents_are_fine() {
    for text in ["", "# nothing\n", "---\n", "groups:\n", "groups: []\n"] {
        let loaded = load(text);
        assert!(loaded.errors.is_empty(), "{text:?}: {:?}", loaded.errors);
        assert!(loaded.groups.is_empty());
    }
}

/// Every rule-level error, with its exact position; positions and messages as promtool 2.42
/// prints them for the same file (`promtool check rules`), except where promtool has none.
#[test]
fn rule_errors_name_file_line_and_column() {
    let text = r#"groups:
  - name: g
    rules:
      - alert: A
        expr: sum(up
        for: 5m
      - record: 'bad name'
        expr: up
        for: 1m
        annotations: {a: b}
      - alert: B
        record: c
        expr: up
      - expr: up
      - alert: C
        expr: up
        labels:
          "bad-label": x
          __name__: y
        annotations:
          s: "{{ .Value | nosuch }}"
          "bad annotation": z
      - alert: D
        expr: up
        bogus: 1
      - alert: E
        expr: rate(up)
      - alert: F
        for: 5x
        keep_firing_for: soon
        expr: up
      - alert: G
      - record: r
        expr: up
        keep_firing_for: 1m
      - alert: H
        expr: |
          sum(up)
            + )
      - alert: I
        expr: "up == "
      - ok
      - alert: J
        expr: up
        labels: [a, b]
      - alert: K
        expr: up
        labels:
          x: {a: b}
"#;
    let got = errors(text);
    let want = [
        r#"r.yml:5:21: group "g", rule 1, "A": could not parse expression: 1:7: parse error: unclosed left parenthesis"#,
        r#"r.yml:7:17: group "g", rule 2, "bad name": invalid field 'annotations' in recording rule"#,
        r#"r.yml:7:17: group "g", rule 2, "bad name": invalid field 'for' in recording rule"#,
        r#"r.yml:7:17: group "g", rule 2, "bad name": invalid recording rule name: bad name"#,
        r#"r.yml:12:17: group "g", rule 3, "B": only one of 'record' and 'alert' must be set"#,
        r#"r.yml:14:9: group "g", rule 4, "": one of 'record' or 'alert' must be set"#,
        r#"r.yml:18:11: group "g", rule 5, "C": invalid label name: bad-label"#,
        r#"r.yml:19:11: group "g", rule 5, "C": invalid label name: __name__"#,
        r#"r.yml:22:11: group "g", rule 5, "C": invalid annotation name: bad annotation"#,
        r#"r.yml:21:27: group "g", rule 5, "C": annotation "s": template: __alert_C: function "nosuch" not defined"#,
        r#"r.yml:25:9: group "g", rule 6, "D": field bogus not found in type rulefmt.RuleNode"#,
        r#"r.yml:27:20: group "g", rule 7, "E": could not parse expression: 1:6: parse error: expected type range vector in call to function "rate", got instant vector"#,
        r#"r.yml:29:14: group "g", rule 8, "F": not a valid duration string: "5x""#,
        r#"r.yml:30:26: group "g", rule 8, "F": not a valid duration string: "soon""#,
        r#"r.yml:32:9: group "g", rule 9, "G": field 'expr' must be set in rule"#,
        r#"r.yml:33:17: group "g", rule 10, "r": invalid field 'keep_firing_for' in recording rule"#,
        r#"r.yml:39:15: group "g", rule 11, "H": could not parse expression: 2:5: parse error: unexpected right parenthesis ')'"#,
        r#"r.yml:41:22: group "g", rule 12, "I": could not parse expression: 1:7: parse error: unexpected end of input"#,
        r#"r.yml:42:9: group "g", rule 13: cannot unmarshal !!str `ok` into rulefmt.RuleNode"#,
        r#"r.yml:45:17: group "g", rule 14, "J": cannot unmarshal !!seq into map[string]string"#,
        r#"r.yml:49:15: group "g", rule 15, "K": cannot unmarshal !!map into string"#,
    ];
    for (g, w) in got.iter().zip(want.iter()) {
        assert_eq!(g, w);
    }
    assert_eq!(got.len(), want.len(), "{got:#?}");
    // Every rule here is bad: the group itself still loads (empty).
    let loaded = load(text);
    assert_eq!(loaded.groups.len(), 1);
    assert!(loaded.groups[0].rules.is_empty());
}

#[test]
fn group_errors() {
    let text = r#"groups:
  - name: g
    rules: []
  - name: g
    rules: []
  - name: ""
  - rules: []
  - name: h
    interval: 5x
  - name: i
    limit: many
  - name: j
    labels:
      bad-name: x
  - name: k
    source_tenants: [a]
  - name: l
    rules: nope
  - just a string
"#;
    let got = errors(text);
    assert_eq!(
        got,
        vec![
            r#"r.yml:4:5: groupname: "g" is repeated in the same file"#,
            "r.yml:6:5: Groupname must not be empty",
            "r.yml:7:5: Groupname must not be empty",
            r#"r.yml:9:15: not a valid duration string: "5x""#,
            "r.yml:11:12: cannot unmarshal !!str `many` into int",
            r#"r.yml:14:7: group "j": invalid label name: bad-name"#,
            "r.yml:16:5: field source_tenants not found in type rulefmt.RuleGroup",
            "r.yml:18:12: cannot unmarshal !!str `nope` into []rulefmt.RuleNode",
            "r.yml:19:5: cannot unmarshal !!str `just a string` into rulefmt.RuleGroup",
        ]
    );
    // Only the first `g` loads.
    let names: Vec<String> = load(text).groups.into_iter().map(|g| g.name).collect();
    assert_eq!(names, vec!["g"]);
}

#[test]
fn file_level_errors() {
    assert_eq!(
        errors("groups: [\n"),
        vec!["r.yml:2:1: yaml: while parsing a node, did not find expected node content"]
    );
    assert_eq!(
        errors("groupz: []\n"),
        vec!["r.yml:1:1: field groupz not found in type rulefmt.RuleGroups"]
    );
    assert_eq!(
        errors("groups: {a: b}\n"),
        vec!["r.yml:1:10: cannot unmarshal !!map into []rulefmt.RuleGroup"]
    );
    assert_eq!(
        errors("- a\n"),
        vec!["r.yml:1:1: yaml: the top level must be a mapping"]
    );
    assert_eq!(
        errors("groups:\n  - name: a\n    name: b\n"),
        vec!["r.yml:3:5: yaml: mapping key \"name\" already defined at line 2"]
    );
    assert_eq!(
        errors("groups:\n  - name: *nothing\n"),
        vec!["r.yml:2:11: yaml: while parsing node, found unknown anchor"]
    );
    assert_eq!(
        errors("a: b\n\tc: d\n"),
        vec!["r.yml:1:4: yaml: while scanning a plain scalar, found a tab"]
    );
}

#[test]
fn one_bad_rule_does_not_block_its_group_or_file() {
    let text = r#"groups:
  - name: a
    rules:
      - record: good:one
        expr: sum(up)
      - record: bad
        expr: sum(
      - alert: GoodTwo
        expr: up == 0
  - name: b
    rules:
      - alert: GoodThree
        expr: vector(1)
"#;
    let loaded = load(text);
    assert_eq!(loaded.errors.len(), 1);
    assert_eq!(loaded.errors[0].line, 7);
    let names: Vec<&str> = loaded
        .groups
        .iter()
        .flat_map(|g| g.rules.iter().map(Rule::name))
        .collect();
    assert_eq!(names, vec!["good:one", "GoodTwo", "GoodThree"]);
    assert_eq!(loaded.groups[0].rules[1].index, 3);
}

#[test]
fn load_paths_reads_directories_sorted_and_reports_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("b.yml"),
        "groups:\n  - name: b\n    rules:\n      - record: b\n        expr: up\n",
    )
    .unwrap();
    std::fs::write(
        d.join("a.yaml"),
        "groups:\n  - name: a\n    rules:\n      - record: a\n        expr: up\n",
    )
    .unwrap();
    std::fs::write(d.join("c.yml"), "groups: [\n").unwrap();
    std::fs::write(d.join("notes.txt"), "not a rule file").unwrap();
    std::fs::write(d.join("b_test.yml"), "rule_files: [b.yml]\n").unwrap();
    let loaded = load_paths(&[d.to_path_buf(), d.join("missing.yml")]);
    let names: Vec<&str> = loaded.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, vec!["a", "b"]);
    assert_eq!(loaded.errors.len(), 2, "{:?}", loaded.errors);
    assert_eq!(loaded.errors[0].file, d.join("c.yml"));
    assert_eq!((loaded.errors[0].line, loaded.errors[0].column), (2, 1));
    assert_eq!(loaded.errors[1].file, d.join("missing.yml"));
    assert!(
        loaded.errors[1].to_string().starts_with(&format!(
            "{}: cannot read the file",
            d.join("missing.yml").display()
        )),
        "{}",
        loaded.errors[1]
    );
    assert_eq!(loaded.groups[0].file, d.join("a.yaml"));
}

#[test]
fn durations_in_prometheus_syntax() {
    for (text, ms) in [
        ("0", 0),
        ("0s", 0),
        ("1m", 60_000),
        ("1h30m", 5_400_000),
        ("90s", 90_000),
        ("1d", 86_400_000),
        ("2w", 1_209_600_000),
        ("1y", 31_536_000_000),
        ("100ms", 100),
        ("1m30s500ms", 90_500),
    ] {
        assert_eq!(parse_duration(text), Ok(ms), "{text}");
    }
    for text in [
        "", "1", "5x", "1s1m", "1m1m", "1.5h", "-1m", "m", "1h 30m", "1M",
    ] {
        assert!(parse_duration(text).is_err(), "{text} accepted");
    }
    for (ms, text) in [
        (0, "0s"),
        (60_000, "1m"),
        (5_400_000, "1h30m"),
        (90_500, "1m30s500ms"),
        (86_400_000 * 90, "90d"),
        (1_209_600_000, "2w"),
    ] {
        assert_eq!(format_duration(ms), text);
    }
}

#[test]
fn names() {
    assert!(is_valid_label_name("a_b1"));
    assert!(is_valid_label_name("_x"));
    assert!(!is_valid_label_name("1a"));
    assert!(!is_valid_label_name("a-b"));
    assert!(!is_valid_label_name(""));
    assert!(is_valid_metric_name("job:up:sum"));
    assert!(!is_valid_metric_name("bad name"));
    assert!(!is_valid_metric_name(""));
}

/// Every prefix of a valid file (cut anywhere, as an editor's half-saved file is) loads or
/// reports errors, never panics.
#[test]
fn truncated_files_never_panic() {
    for text in [
        GOOD,
        "groups:\n  - name: \"é\"\n    rules:\n      - alert: 'ü'\n        expr: sum(rate(x[5m])) > 1\n        annotations: {s: \"{{ $value }}\"}\n",
    ] {
        for (end, _) in text.char_indices() {
            let _ = load(&text[..end]);
        }
    }
}

#[test]
fn only_the_first_document_counts() {
    let loaded = load("groups:\n  - name: a\n---\ngroups: [[[\n");
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert_eq!(loaded.groups.len(), 1);
}

#[test]
fn positions_in_non_ascii_files_count_characters() {
    // PromQL columns count bytes (as Prometheus does); file columns count characters.
    let text = "groups:\n  - name: \"é\"\n    rules:\n      - alert: Ü\n        expr: x{a=\"ü\"} foo\n      - alert: V\n        expr: sum(x{a=\"ü\"}) + sum(\n";
    assert_eq!(
        errors(text),
        vec![
            "r.yml:5:24: group \"é\", rule 1, \"Ü\": could not parse expression: 1:11: parse error: unexpected identifier \"foo\"",
            "r.yml:7:35: group \"é\", rule 2, \"V\": could not parse expression: 1:22: parse error: unclosed left parenthesis",
        ]
    );
}

/// Anchors, aliases, merge keys and tags, which promtool accepts (checked with promtool 2.42).
#[test]
fn anchors_aliases_merge_keys_and_tags() {
    let text = r#"groups:
  - name: g
    rules:
      - alert: A
        expr: up == 0
        labels: &common
          team: infra
          severity: page
        annotations:
          summary: !!str "x"
      - alert: B
        expr: up == 0
        labels:
          <<: *common
          severity: ticket
      - alert: C
        expr: up == 0
        labels: *common
"#;
    let loaded = load(text);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let labels: Vec<String> = loaded.groups[0]
        .rules
        .iter()
        .map(|r| match &r.kind {
            RuleKind::Alerting { labels_text, .. } => format!("{labels_text:?}"),
            RuleKind::Recording { .. } => String::new(),
        })
        .collect();
    assert_eq!(
        labels,
        vec![
            r#"{"severity": "page", "team": "infra"}"#,
            r#"{"severity": "ticket", "team": "infra"}"#,
            r#"{"severity": "page", "team": "infra"}"#,
        ]
    );
}

#[test]
fn alias_bombs_and_deep_nesting_are_refused() {
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 0..8 {
        let prev = if i == 0 {
            "a".to_owned()
        } else {
            format!("b{}", i - 1)
        };
        bomb.push_str(&format!(
            "b{i}: &b{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
        ));
    }
    let got = errors(&bomb);
    assert_eq!(got.len(), 1);
    assert!(got[0].contains("expands to more than"), "{}", got[0]);
    let deep = format!("groups: {}{}\n", "[".repeat(500), "]".repeat(500));
    let got = errors(&deep);
    assert_eq!(got.len(), 1);
    assert!(
        got[0].contains("nesting deeper than") || got[0].contains("recursion limit"),
        "{}",
        got[0]
    );
}
