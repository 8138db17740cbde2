#![allow(clippy::unwrap_used)]

use super::*;

fn render(src: &str, value: f64) -> Result<String, TemplateError> {
    let labels = BTreeMap::from([
        ("instance".to_owned(), "web-1:9100".to_owned()),
        ("job".to_owned(), "node".to_owned()),
    ]);
    let external = BTreeMap::from([("cluster".to_owned(), "eu1".to_owned())]);
    Template::parse(src)?.render(&Data {
        labels: &labels,
        external_labels: &external,
        value,
    })
}

#[test]
fn variables_and_fields() {
    assert_eq!(
        render("{{ $labels.instance }} is down", 0.0).unwrap(),
        "web-1:9100 is down"
    );
    assert_eq!(
        render("{{ .Labels.job }}/{{ .Value }}", 3.5).unwrap(),
        "node/3.5"
    );
    assert_eq!(render("{{$externalLabels.cluster}}", 0.0).unwrap(), "eu1");
    assert_eq!(render("{{ $labels.missing }}!", 0.0).unwrap(), "!");
    assert_eq!(render("value {{ $value }}", 1e21).unwrap(), "value 1e+21");
    assert_eq!(render("no actions", 0.0).unwrap(), "no actions");
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

#[test]
fn printf_verbs() {
    assert_eq!(
        render(r#"{{ printf "%.2f" $value }}"#, 1.23456).unwrap(),
        "1.23"
    );
    assert_eq!(
        render(r#"{{ printf "%d%%" $value }}"#, 97.8).unwrap(),
        "97%"
    );
    assert_eq!(
        render(r#"{{ printf "%s=%v" $labels.job $value }}"#, 2.0).unwrap(),
        "node=2"
    );
    assert_eq!(
        render(r#"{{ printf "%5.1f|%-4s|%05d" $value "ab" 42 }}"#, 2.25).unwrap(),
        "  2.2|ab  |00042"
    );
    assert_eq!(render(r#"{{ printf "%g" $value }}"#, 0.5).unwrap(), "0.5");
    assert_eq!(
        render(r#"{{ printf "%q" $labels.job }}"#, 0.0).unwrap(),
        "\"node\""
    );
    assert_eq!(render(r#"{{ printf "%d" }}"#, 0.0).unwrap(), "%!d(MISSING)");
}

#[test]
fn conditionals_and_trimming() {
    let t = r#"{{ if gt $value 90.0 }}critical{{ else if gt $value 80.0 }}warning{{ else }}ok{{ end }}"#;
    assert_eq!(render(t, 95.0).unwrap(), "critical");
    assert_eq!(render(t, 85.0).unwrap(), "warning");
    assert_eq!(render(t, 5.0).unwrap(), "ok");
    assert_eq!(render("a  {{- \"b\" -}}  c", 0.0).unwrap(), "abc");
    assert_eq!(render("{{/* note */}}x", 0.0).unwrap(), "x");
    assert_eq!(
        render(r#"{{ if eq $labels.job "node" }}yes{{ end }}"#, 0.0).unwrap(),
        "yes"
    );
    assert_eq!(
        render(
            r#"{{ if and (gt $value 1.0) (lt $value 3.0) }}in{{ end }}"#,
            2.0
        )
        .unwrap(),
        "in"
    );
}

#[test]
fn string_functions() {
    assert_eq!(render("{{ $labels.job | toUpper }}", 0.0).unwrap(), "NODE");
    assert_eq!(
        render("{{ title \"disk almost full\" }}", 0.0).unwrap(),
        "Disk Almost Full"
    );
    assert_eq!(
        render(r#"{{ reReplaceAll ":[0-9]+" "" $labels.instance }}"#, 0.0).unwrap(),
        "web-1"
    );
    assert_eq!(
        render("{{ $labels.instance | stripPort }}", 0.0).unwrap(),
        "web-1"
    );
    assert_eq!(render(r#"{{ index $labels "job" }}"#, 0.0).unwrap(), "node");
}

#[test]
fn unsupported_and_malformed_templates_are_refused_with_a_position() {
    for (src, needle) in [
        ("{{ range $labels }}{{ end }}", "not supported"),
        ("{{ query \"up\" }}", "not defined"),
        ("{{ $x := 1 }}", "variables"),
        ("{{ $labels.job ", "unclosed action"),
        ("{{ if $value }}x", "without {{end}}"),
        ("{{ end }}", "unexpected"),
        ("{{ $foo }}", "undefined variable"),
        ("{{ \"abc }}", "unterminated"),
    ] {
        let e = Template::parse(src).unwrap_err();
        assert!(e.message.contains(needle), "{src}: {e}");
    }
    let e = Template::parse("ok {{ bogus }}").unwrap_err();
    assert_eq!(e.offset, 3);
    // Runtime errors come back as errors.
    assert!(render(r#"{{ humanize "abc" }}"#, 0.0).is_err());
}
