#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What the fake `query` answers, standing in for the engine: the series `up` of the
/// promtool fixture the expected texts come from, in label order.
fn fake_query(q: &str) -> Result<Vec<QuerySample>, String> {
    let up = |instance: &str, job: &str, value: f64| QuerySample {
        labels: labels(&[("__name__", "up"), ("instance", instance), ("job", job)]),
        value,
    };
    match q {
        "up" => Ok(vec![up("a", "x", 1.0), up("b", "y", 0.0)]),
        "nothing" => Ok(Vec::new()),
        "1+1" => Ok(vec![QuerySample {
            labels: BTreeMap::new(),
            value: 2.0,
        }]),
        "up[5m]" => Err("rule result is not a vector or scalar".to_owned()),
        other => Err(format!("unexpected query {other:?}")),
    }
}

/// Renders an alert template the way `promtool test rules` does: the alert's labels
/// `{__name__="m", instance="web-1:9100", job="node"}`, external label `cluster="eu1"`, an
/// empty `$externalURL` and no external URL for `externalURL`; a failure becomes the text
/// Prometheus puts in the annotation.
fn prometheus_render(src: &str, value: f64) -> String {
    let t = match Template::parse(src) {
        Ok(t) => t,
        Err(e) => return format!("PARSE ERROR: {e}"),
    };
    let data = Data {
        labels: &labels(&[
            ("__name__", "m"),
            ("instance", "web-1:9100"),
            ("job", "node"),
        ]),
        external_labels: &labels(&[("cluster", "eu1")]),
        external_url: "",
        value,
        query: None,
    };
    let env = Env {
        query: Some(&fake_query),
        external_url: None,
    };
    t.render_with(&data.to_value(), &env).unwrap_or_else(|e| {
        format!(
            "<error expanding template: error executing template __alert_A: {}>",
            t.exec_error_text("__alert_A", &e)
        )
    })
}

include!("prometheus_renders.rs");

/// Every case renders exactly as Prometheus 2.42 rendered it, errors included.
#[test]
fn renders_like_prometheus() {
    let mut wrong = Vec::new();
    for (value, src, want) in PROMETHEUS_RENDERS {
        let got = prometheus_render(src, *value);
        if got != *want {
            wrong.push(format!(
                "{src:?} ($value={value})\n  want {want:?}\n  got  {got:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cases differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

fn render(src: &str, value: f64) -> Result<String, TemplateError> {
    let alert_labels = labels(&[("instance", "web-1:9100"), ("job", "node")]);
    let external = labels(&[("cluster", "eu1")]);
    Template::parse(src)?.render(&Data {
        labels: &alert_labels,
        external_labels: &external,
        external_url: "http://redline.example:9190/prefix",
        value,
        query: Some(&fake_query),
    })
}

#[test]
fn external_url_is_a_variable_a_field_and_a_function() {
    assert_eq!(
        render(
            "{{ $externalURL }}|{{ .ExternalURL }}|{{ externalURL }}|{{ pathPrefix }}",
            0.0
        )
        .unwrap(),
        "http://redline.example:9190/prefix|http://redline.example:9190/prefix|\
         http://redline.example:9190/prefix|/prefix"
    );
}

/// Expected strings are what Prometheus 2.42's template functions print.
#[test]
fn humanize_family_matches_prometheus() {
    let cases: &[(&str, f64, &str)] = &[
        ("humanize", 0.0, "0"),
        ("humanize", 1234.0, "1.234k"),
        ("humanize", 1234567.0, "1.235M"),
        ("humanize", 12.0, "12"),
        ("humanize", 0.012, "12m"),
        ("humanize", 0.000001, "1u"),
        ("humanize", -1500.0, "-1.5k"),
        ("humanize", f64::NAN, "NaN"),
        ("humanize", f64::INFINITY, "+Inf"),
        ("humanize1024", 1024.0, "1ki"),
        ("humanize1024", 1_048_576.0, "1Mi"),
        ("humanize1024", 512.0, "512"),
        ("humanizeDuration", 0.0, "0s"),
        ("humanizeDuration", 1.0, "1s"),
        ("humanizeDuration", 12.345, "12.35s"),
        ("humanizeDuration", 90.0, "1m 30s"),
        ("humanizeDuration", 3661.0, "1h 1m 1s"),
        ("humanizeDuration", 90061.0, "1d 1h 1m 1s"),
        ("humanizeDuration", 0.25, "250ms"),
        ("humanizeDuration", -90.0, "-1m 30s"),
        ("humanizePercentage", 0.1234, "12.34%"),
        ("humanizePercentage", 1.0, "100%"),
        (
            "humanizeTimestamp",
            1_700_000_000.5,
            "2023-11-14 22:13:20.5 +0000 UTC",
        ),
    ];
    for (f, v, want) in cases {
        assert_eq!(
            render(&format!("{{{{ $value | {f} }}}}"), *v).unwrap(),
            *want,
            "{f}({v})"
        );
        assert_eq!(
            render(&format!("{{{{ {f} $value }}}}"), *v).unwrap(),
            *want,
            "{f} {v}"
        );
    }
}

/// Parse errors: each message is Go's (checked with `promtool check rules`), with the byte
/// offset of the problem.
#[test]
fn parse_errors_are_gos_with_an_offset() {
    for (src, message, offset) in [
        ("{{ $x }}", r#"undefined variable "$x""#, 3),
        ("ok {{ bogus }}", r#"function "bogus" not defined"#, 6),
        ("{{ else with }}", "unexpected {{else}}", 3),
        ("{{ break }}", "{{break}} outside {{range}}", 3),
        ("{{ continue }}", "{{continue}} outside {{range}}", 3),
        (
            "{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}",
            r#"undefined variable "$y""#,
            38,
        ),
        (
            "{{ range $i, $e := . }}{{ end }}{{ $i }}",
            r#"undefined variable "$i""#,
            35,
        ),
        ("{{ $a, $b := 1 }}", "too many declarations in command", 3),
        (
            "{{ range $a, $b, $c := 1 }}{{ end }}",
            "too many declarations in range",
            13,
        ),
        ("{{ ( }}", "unclosed left paren", 5),
        ("{{ ) }}", r#"unexpected ")" in command"#, 3),
        (
            r#"{{ "a" | 1 }}"#,
            "non executable command in pipeline stage 2",
            9,
        ),
        ("{{ /* c */ }}", r#"unexpected "/" in command"#, 3),
        ("{{/* c */ x }}", "comment ends before closing delimiter", 2),
        ("{{/* c }}", "unclosed comment", 2),
        (r#"{{"a"}}{{-"b"-}}"#, r#"illegal number syntax: "-""#, 9),
        ("{{ $labels.job ", "unclosed action", 15),
        ("{{ if $value }}x", "unexpected EOF", 16),
        ("{{ end }}", "unexpected {{end}}", 3),
        ("{{ else }}", "unexpected {{else}}", 3),
        (r#"{{ "abc }}"#, "unterminated quoted string", 3),
        ("{{ `abc }}", "unterminated raw quoted string", 3),
        ("{{ 'ab' }}", "malformed character constant: 'ab'", 3),
        (r#"{{ "\q" }}"#, "invalid syntax", 3),
        ("{{ 3x }}", r#"bad number syntax: "3x""#, 3),
        ("{{ a#b }}", "bad character U+0023 '#'", 3),
        ("{{ }}", "missing value for command", 3),
        ("{{ if }}{{ end }}", "missing value for if", 6),
        ("{{ template }}", "unexpected \"}}\" in template clause", 12),
        (r#"{{ "x".A }}"#, r#"unexpected . after term "\"x\"""#, 6),
        (
            r#"{{ define "a" }}1{{ end }}{{ define "a" }}2{{ end }}"#,
            r#"template: multiple definition of template "a""#,
            36,
        ),
        (
            "{{ with 1 }}{{ else if 2 }}b{{ end }}",
            "unexpected <if> in input",
            20,
        ),
        (
            "{{ range 1 }}{{ else }}{{ else }}{{ end }}",
            "expected end; found {{else}}",
            26,
        ),
        ("{{ $x := 1 }}{{ $x = }}", "missing value for command", 16),
        ("{{ 1 : }}", "expected :=", 5),
    ] {
        let e = Template::parse(src).unwrap_err();
        assert_eq!((e.message.as_str(), e.offset), (message, offset), "{src}");
        assert_eq!(e.context, None);
    }
}

/// Templates promtool 2.42 accepts parse here too, even where they fail when run.
#[test]
fn accepts_what_prometheus_parses() {
    for src in [
        "{{ $y = 1 }}",
        "{{ nil }}",
        "{{ 1 2 }}",
        "{{ .A 1 }}",
        "{{ range 1 }}{{ break }}{{ end }}",
        r#"{{ define "x" }}X{{ end }}{{ template "x" . }}"#,
        r#"{{ template "y" }}"#,
        r#"{{ block "z" . }}Z{{ end }}"#,
        "{{/* c */}}",
        "{{- /* c */ -}}",
        "{{ with $x := 1 }}{{ $x }}{{ end }}",
        "{{ toTime }}",
        "{{ 'a' }}",
        "{{ $.Labels.job }}",
        "{{ (1).A }}",
        "{{ $labels := 5 }}{{ $labels }}",
        "{{ call .X }}",
        "{{ query `up` | sortByLabel `job` | first | label `job` }}",
        "{{\n  $x := 1\n}}{{ $x }}",
        // Go 1.23's `else with`, a superset of what Prometheus 2.42 accepts.
        "{{ with $labels.a }}a{{ else with $labels.b }}b{{ else }}c{{ end }}",
    ] {
        if let Err(e) = Template::parse(src) {
            panic!("{src}: {e}");
        }
    }
}

#[test]
fn else_with_chains_like_else_if() {
    let t = "{{ with $labels.nope }}a{{ else with $labels.job }}{{ . }}{{ else }}c{{ end }}";
    assert_eq!(render(t, 0.0).unwrap(), "node");
    let t = "{{ with $labels.nope }}a{{ else with $labels.nada }}b{{ else }}c{{ end }}";
    assert_eq!(render(t, 0.0).unwrap(), "c");
}

#[test]
fn render_errors_carry_the_node_and_its_position() {
    let t = Template::parse("line\n  {{ humanize \"x\" }}").unwrap();
    let e = t.render_with(&Value::Nil, &Env::default()).unwrap_err();
    assert_eq!(e.offset, 10);
    assert_eq!(e.context.as_deref(), Some(r#"humanize "x""#));
    assert_eq!(
        e.message,
        r#"error calling humanize: strconv.ParseFloat: parsing "x": invalid syntax"#
    );
    // A plain template's positions do not count Prometheus' prelude.
    let t = Template::parse_with("{{ humanize 1 }}{{ len 3 }}", Library::Prometheus).unwrap();
    let e = t.render_with(&Value::Nil, &Env::default()).unwrap_err();
    assert_eq!(
        t.exec_error_text("x", &e),
        r#"template: x:1:19: executing "x" at <len 3>: error calling len: len of type int"#
    );
}

#[test]
fn query_without_a_callback_is_a_render_error() {
    let t = Template::parse("{{ range query `up` }}{{ end }}").unwrap();
    let labels = BTreeMap::new();
    let e = t
        .render(&Data {
            labels: &labels,
            external_labels: &labels,
            external_url: "",
            value: 0.0,
            query: None,
        })
        .unwrap_err();
    assert_eq!(
        e.message,
        "error calling query: query is not available in this template"
    );
}

#[test]
fn uses_function_finds_calls_anywhere() {
    for (src, uses) in [
        ("{{ query `up` }}", true),
        ("{{ range $i, $s := query `up` }}{{ end }}", true),
        (
            "{{ if true }}{{ else }}{{ (query `up` | first).Value }}{{ end }}",
            true,
        ),
        (r#"{{ define "q" }}{{ query "up" }}{{ end }}"#, true),
        ("{{ $labels.query }}", false),
        ("query", false),
    ] {
        assert_eq!(
            Template::parse(src).unwrap().uses_function("query"),
            uses,
            "{src}"
        );
    }
}

/// Data shaped like Alertmanager's notification data.
fn notification() -> Value {
    let ts = |s: i64| Value::Time(jiff::Timestamp::from_second(s).unwrap());
    let alert = |status: &str, instance: &str, starts: i64, ends: Option<i64>| {
        Value::Struct(Struct::new(
            "template.Alert",
            vec![
                ("Status", Value::from(status)),
                (
                    "Labels",
                    Value::Kv(labels(&[("alertname", "Down"), ("instance", instance)])),
                ),
                (
                    "Annotations",
                    Value::Kv(labels(&[("summary", &format!("{instance} is down"))])),
                ),
                ("StartsAt", ts(starts)),
                ("EndsAt", ends.map_or(ts(-62_135_596_800), ts)),
                ("GeneratorURL", Value::from("http://redline/graph")),
                ("Fingerprint", Value::from("0123456789abcdef")),
            ],
        ))
    };
    let firing = vec![alert("firing", "a", 1_700_000_000, None)];
    let resolved = vec![alert("resolved", "b", 1_699_990_000, Some(1_700_000_100))];
    let all: Vec<Value> = firing.iter().chain(&resolved).cloned().collect();
    Value::Struct(Struct::new(
        "template.Data",
        vec![
            ("Receiver", Value::from("ops")),
            ("Status", Value::from("firing")),
            (
                "Alerts",
                Value::ListWithFields(
                    all,
                    BTreeMap::from([
                        ("Firing".to_owned(), Value::List(firing)),
                        ("Resolved".to_owned(), Value::List(resolved)),
                    ]),
                ),
            ),
            ("GroupLabels", Value::Kv(labels(&[("alertname", "Down")]))),
            (
                "CommonLabels",
                Value::Kv(labels(&[("alertname", "Down"), ("severity", "page")])),
            ),
            ("CommonAnnotations", Value::Kv(BTreeMap::new())),
            ("ExternalURL", Value::from("http://redline:9190")),
        ],
    ))
}

fn notify(src: &str) -> Result<String, TemplateError> {
    Template::parse_with(src, Library::Alertmanager)?.render_with(&notification(), &Env::default())
}

#[test]
fn notification_templates_render_alertmanager_data() {
    let subject = r#"[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] {{ .GroupLabels.SortedPairs.Values | join " " }}"#;
    assert_eq!(notify(subject).unwrap(), "[FIRING:1] Down");
    let body = r#"{{ define "alert" }}- {{ .Labels.instance }}: {{ .Annotations.summary }} since {{ .StartsAt.Format "2006-01-02 15:04:05" }}{{ end -}}
{{ range .Alerts.Firing }}{{ template "alert" . }}
{{ end -}}
Resolved: {{ range $i, $a := .Alerts.Resolved }}{{ if $i }}, {{ end }}{{ $a.Labels.instance }} at {{ date "15:04" $a.EndsAt }}{{ end }}
Labels:{{ range .CommonLabels.SortedPairs }} {{ .Name }}={{ .Value }}{{ end }}
Names: {{ join ", " .CommonLabels.Names }}; without severity: {{ (.CommonLabels.Remove (stringSlice "severity")).Names }}
{{ title "hello wORLD" }} {{ trimSpace "  x  " }} {{ .ExternalURL }} {{ len .Alerts }}"#;
    assert_eq!(
        notify(body).unwrap(),
        "- a: a is down since 2023-11-14 22:13:20\n\
         Resolved: b at 22:15\n\
         Labels: alertname=Down severity=page\n\
         Names: alertname, severity; without severity: [alertname]\n\
         Hello World x http://redline:9190 2"
    );
    // Times print as Go prints them; a firing alert's EndsAt is Go's zero time.
    assert_eq!(
        notify("{{ (index .Alerts 0).StartsAt }} {{ (index .Alerts 0).EndsAt.IsZero }} {{ (index .Alerts 0).StartsAt.Unix }}").unwrap(),
        "2023-11-14 22:13:20 +0000 UTC true 1700000000"
    );
}

#[test]
fn notification_templates_check_fields_and_functions() {
    // Prometheus-only functions are not defined for notification templates.
    let e = Template::parse_with("{{ humanize 1 }}", Library::Alertmanager).unwrap_err();
    assert_eq!(e.message, r#"function "humanize" not defined"#);
    let e = Template::parse_with("{{ $labels }}", Library::Alertmanager).unwrap_err();
    assert_eq!(e.message, r#"undefined variable "$labels""#);
    // A struct has only its fields; a KV any key.
    let e = notify("{{ .Nope }}").unwrap_err();
    assert_eq!(e.message, "can't evaluate field Nope in type template.Data");
    assert_eq!(notify("[{{ .CommonLabels.nope }}]").unwrap(), "[]");
    let e = notify("{{ .Alerts.Nope }}").unwrap_err();
    assert_eq!(
        e.message,
        "can't evaluate field Nope in type []interface {}"
    );
    let e = notify("{{ .GroupLabels.Names 1 }}").unwrap_err();
    assert_eq!(e.message, "wrong number of args for Names: want 0 got 1");
}

#[test]
fn values_print_and_test_as_go_values() {
    let env = Env::default();
    let t = |src: &str, dot: Value| {
        Template::parse_with(src, Library::Prometheus)
            .unwrap()
            .render_with(&dot, &env)
            .unwrap()
    };
    let map = Value::Map(BTreeMap::from([
        ("a".to_owned(), Value::Int(1)),
        (
            "b".to_owned(),
            Value::List(vec![Value::Bool(true), Value::Nil]),
        ),
    ]));
    assert_eq!(t("{{ . }}", map.clone()), "map[a:1 b:[true <nil>]]");
    assert_eq!(
        t(
            "{{ .a }}|{{ .missing }}|{{ if .missing }}y{{ else }}n{{ end }}",
            map
        ),
        "1|<no value>|n"
    );
    assert_eq!(t("{{ . }}", Value::Nil), "<no value>");
    assert_eq!(
        t("{{ if . }}y{{ else }}n{{ end }}", Value::List(vec![])),
        "n"
    );
    let st = Value::Struct(Struct::new("x.T", vec![("A", Value::Int(0))]));
    // A struct is always true, even with zero fields.
    assert_eq!(
        t("{{ if . }}y{{ end }} {{ . }} {{ printf \"%+v\" . }}", st),
        "y {0} {A:0}"
    );
    assert!(Value::Float(0.5).truthy());
    assert_eq!(Value::Labels(labels(&[("k", "v")])).to_text(), "map[k:v]");
}

#[test]
fn limits_turn_runaway_templates_into_errors() {
    let t = Template::parse(r#"{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" . }}"#)
        .unwrap();
    let e = t.render_with(&Value::Nil, &Env::default()).unwrap_err();
    assert_eq!(e.message, "max expression depth exceeded");
    // Deep nesting inside recursive calls stops before the stack ends, on a stack the size
    // of the runtime's threads.
    let src = format!(
        r#"{{{{ define "r" }}}}{}{{{{ template "r" . }}}}{}{{{{ end }}}}{{{{ template "r" . }}}}"#,
        "{{ with (((((((((( . )))))))))) }}".repeat(40),
        "{{ end }}".repeat(40)
    );
    // The heaviest frames: function calls nested in arguments, at the deepest point.
    let calls = format!(
        r#"{{{{ define "r" }}}}{{{{ with . }}}}{{{{ {}.{} }}}}{{{{ template "r" . }}}}{{{{ end }}}}{{{{ end }}}}{{{{ template "r" . }}}}"#,
        "print (".repeat(45),
        ")".repeat(45)
    );
    let e = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let t = Template::parse(&src).unwrap();
            let calls = Template::parse(&calls).unwrap();
            (
                t.render_with(&Value::Int(1), &Env::default()).unwrap_err(),
                calls
                    .render_with(&Value::Int(1), &Env::default())
                    .unwrap_err(),
            )
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(e.0.message, "max expression depth exceeded");
    assert_eq!(e.1.message, "max expression depth exceeded");
    let deep = format!("{{{{ {}1{} }}}}", "(".repeat(50), ")".repeat(50));
    assert!(Template::parse(&deep).is_ok());
    let deep = format!("{{{{ {}1{} }}}}", "(".repeat(51), ")".repeat(51));
    assert!(Template::parse(&deep).is_err());
    let deep = format!("{{{{ {}1{} }}}}", "(".repeat(10), ")".repeat(10));
    assert!(Template::parse(&deep).is_ok());
    let nested = format!("{{{{ {}1{} }}}}", "(".repeat(200), ")".repeat(200));
    let e = Template::parse(&nested).unwrap_err();
    assert_eq!(e.message, "max expression depth exceeded");
    let nested = format!(
        "{}x{}",
        "{{ if true }}".repeat(200),
        "{{ end }}".repeat(200)
    );
    assert_eq!(
        Template::parse(&nested).unwrap_err().message,
        "max expression depth exceeded"
    );
}

/// No input makes the parser or the executor panic.
#[test]
fn garbage_never_panics() {
    let pieces = [
        "{{", "}}", "{{-", "-}}", " ", "$", "$x", ":=", "=", ".", ".A", "(", ")", "|", "\"", "`",
        "'", "if", "else", "end", "range", "with", "define", "template", "block", "break",
        "continue", "nil", "1", "-", "1e", "0x", "é", "\n", "/*", "*/", "query", "printf",
        "\"%d\"", "index", "slice", ",", "$labels", "$value", "len",
    ];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let env = Env {
        query: Some(&fake_query),
        external_url: Some("http://x/"),
    };
    for _ in 0..20_000 {
        let mut src = String::new();
        for _ in 0..(seed % 12) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            src.push_str(pieces[(seed % pieces.len() as u64) as usize]);
        }
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        if let Ok(t) = Template::parse(&src) {
            let _ = t.render_with(&Value::Nil, &env);
        }
    }
}

/// The differences from Go the module documentation lists, with the messages it quotes.
#[test]
fn documented_differences_hold() {
    for (src, message) in [
        ("{{ 1i }}", r#"complex numbers are not supported: "1i""#),
        ("{{ 0x1p4 }}", r#"illegal number syntax: "0x1p4""#),
    ] {
        assert_eq!(Template::parse(src).unwrap_err().message, message, "{src}");
    }
    assert_eq!(
        render(r#"{{ printf "%x" 1.5 }}"#, 0.0).unwrap(),
        "%!x(float64=1.5)"
    );
    let samples = render(r#"{{ query "up" }}"#, 0.0).unwrap();
    assert!(
        samples.starts_with("[&{map[__name__:up instance:a job:x] 1} "),
        "{samples}"
    );
    // Runaway renders stop with an error.
    let env = Env::default();
    let many = Value::List((0..1000).map(Value::Int).collect());
    let t = Template::parse_with(
        "{{ range . }}{{ range $ }}{{ range $ }}x{{ end }}{{ end }}{{ end }}",
        Library::Prometheus,
    )
    .unwrap();
    let e = t.render_with(&many, &env).unwrap_err();
    assert_eq!(e.message, "template execution exceeded 10000000 steps");
    let wide = Value::List(vec![Value::Str("y".repeat(1000)); 200]);
    let t = Template::parse_with(
        "{{ range . }}{{ range $ }}{{ . }}{{ end }}{{ end }}",
        Library::Prometheus,
    )
    .unwrap();
    let e = t.render_with(&wide, &env).unwrap_err();
    assert_eq!(e.message, "template output exceeds 16 MiB");
}

#[test]
fn regex_repeat_counts_go_refuses_are_refused_without_compiling() {
    let message = |src: &str| {
        let t = Template::parse(src).unwrap();
        t.render_with(&Value::Nil, &Env::default())
            .unwrap_err()
            .message
    };
    assert_eq!(
        message(r#"{{ match "a{3333333}" "a" }}"#),
        "error calling match: error parsing regexp: invalid repeat count: `{3333333}`"
    );
    assert_eq!(
        message(r#"{{ reReplaceAll "(a{100}){11}" "" "a" }}"#),
        "error calling reReplaceAll: regexp: Compile(`(a{100}){11}`): error parsing regexp: invalid repeat count: `{11}`"
    );
}
