//! Tests of the three renderers over the rich and the bare sample inputs.

use super::*;
use crate::postmortem::sample::DETECTED;

/// Positions of `needles` in `haystack`, asserting each is there after the previous one.
fn assert_in_order(haystack: &str, needles: &[&str]) {
    let mut from = 0;
    for needle in needles {
        match haystack[from..].find(needle) {
            Some(p) => from += p + needle.len(),
            None => panic!(
                "{needle:?} missing, or not after {:?}, in:\n{haystack}",
                &haystack[..from.min(haystack.len())]
                    .chars()
                    .rev()
                    .take(80)
                    .collect::<String>()
                    .chars()
                    .rev()
                    .collect::<String>()
            ),
        }
    }
}

const SECTIONS: [&str; 14] = [
    "## Incident",
    "## Key moments",
    "## Timeline",
    "## Change",
    "## What moved first",
    "## Summary",
    "## Impact",
    "## Root causes",
    "## Trigger",
    "## Resolution",
    "## Detection",
    "## Action items",
    "## Lessons learned",
    "### Where we got lucky",
];

#[test]
fn key_moments_follow_the_definitions() {
    let input = sample_input();
    let m = key_moments(&input);
    assert_eq!(m.detected, DETECTED);
    assert_eq!(m.impact_start, Some(DETECTED - 150_000));
    assert_eq!(m.time_to_detect_ms, Some(150_000));
    assert_eq!(m.time_to_acknowledge_ms, Some(180_000));
    assert_eq!(m.time_to_mitigate_ms, Some(14 * 60_000 + 150_000));
    assert_eq!(m.time_to_resolve_ms, Some(31 * 60_000 + 150_000));
    assert_eq!(m.failed_deployment_recovery_seconds, Some(1020.0));

    // Without an impact start, mitigation and resolution count from detection.
    let mut input = sample_input();
    input.impact_start = None;
    let m = key_moments(&input);
    assert_eq!(m.time_to_detect_ms, None);
    assert_eq!(m.time_to_mitigate_ms, Some(14 * 60_000));
    assert_eq!(m.time_to_resolve_ms, Some(31 * 60_000));

    let m = key_moments(&sample_input_bare());
    assert_eq!(
        (m.acknowledged, m.mitigated, m.resolved),
        (None, None, None)
    );
    assert_eq!(
        (m.time_to_acknowledge_ms, m.time_to_resolve_ms),
        (None, None)
    );
}

#[test]
fn human_durations() {
    let cases = [
        (0, "0s"),
        (250, "250 ms"),
        (-250, "-250 ms"),
        (1_499, "1s"),
        (150_000, "2m 30s"),
        (3_600_000, "1h"),
        (90_061_000, "1d 1h 1m 1s"),
        (-120_000, "-2m"),
    ];
    for (ms, want) in cases {
        assert_eq!(human_duration(ms), want, "{ms}");
    }
    assert_eq!(human_seconds(1020.0), "17m");
    assert_eq!(human_seconds(f64::NAN), "unknown");
}

#[test]
fn json_has_the_schema_ids_and_every_moment_in_order() {
    let json = render_json(&sample_input());
    assert_eq!(json["schema"], SCHEMA);
    assert_eq!(json["generated_at"], "2026-03-14T10:00:00Z");
    assert_eq!(json["incident"]["id"], 42);
    assert_eq!(json["incident"]["status"], "resolved");
    assert_eq!(json["incident"]["owner"], "alice");

    let moments = json["key_moments"].as_array().expect("key_moments");
    let names: Vec<&str> = moments
        .iter()
        .map(|m| m["moment"].as_str().expect("moment"))
        .collect();
    assert_eq!(
        names,
        [
            "impact_start",
            "detected",
            "acknowledged",
            "mitigated",
            "resolved"
        ]
    );
    let times: Vec<&str> = moments
        .iter()
        .map(|m| m["at"].as_str().expect("every moment is known"))
        .collect();
    assert_eq!(
        times,
        [
            "2026-03-14T08:57:30Z",
            "2026-03-14T09:00:00Z",
            "2026-03-14T09:03:00Z",
            "2026-03-14T09:14:00Z",
            "2026-03-14T09:31:00Z"
        ]
    );
    assert_eq!(json["durations"]["time_to_detect_seconds"], 150.0);
    assert_eq!(json["durations"]["time_to_acknowledge_seconds"], 180.0);
    assert_eq!(json["durations"]["time_to_mitigate_seconds"], 990.0);
    assert_eq!(json["durations"]["time_to_resolve_seconds"], 2010.0);
    assert_eq!(
        json["durations"]["failed_deployment_recovery_seconds"],
        1020.0
    );

    let timeline = json["timeline"].as_array().expect("timeline");
    let ids: Vec<i64> = timeline
        .iter()
        .map(|e| e["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, (101..=111).collect::<Vec<_>>());
    let milestones: Vec<&str> = timeline
        .iter()
        .filter_map(|e| e["milestone"].as_str())
        .collect();
    assert_eq!(
        milestones,
        ["detected", "acknowledged", "mitigated", "resolved"]
    );
    assert_eq!(timeline[6]["refs"], serde_json::json!({}));
    assert_eq!(timeline[7]["refs"]["deployment"], "d-1043");

    let d = &json["deployments"][0];
    assert_eq!(d["id"], "d-1042");
    assert_eq!(d["link"], "suspected");
    assert_eq!(d["role"], "cause");
    assert_eq!(d["verdict"], "fail");
    assert_eq!(d["commits"].as_array().map(Vec::len), Some(2));
    assert_eq!(d["commits"][0]["committed_at"], "2026-03-14T08:30:00Z");
    let outcomes: Vec<&str> = d["analyses"]
        .as_array()
        .expect("analyses")
        .iter()
        .map(|a| a["outcome"].as_str().expect("outcome"))
        .collect();
    assert_eq!(outcomes, ["inconclusive", "fail", "fail"]);
    assert_eq!(d["analyses"][0]["p_value"], serde_json::Value::Null);
    assert_eq!(
        d["analyses"][0]["analysis"]["median"],
        serde_json::Value::Null
    );

    assert_eq!(json["leads"][0]["rank"], 1);
    assert_eq!(json["leads"][0]["metric"], "http_server_errors_total");
    assert_eq!(json["leads"][0]["before_detection_seconds"], 150.0);
    assert_eq!(json["chart"]["points"].as_array().map(Vec::len), Some(120));
    assert_eq!(json["chart"]["points"][0][0], "2026-03-14T08:40:00Z");
}

#[test]
fn json_of_missing_data_is_null_not_absent() {
    let json = render_json(&sample_input_bare());
    assert_eq!(json["schema"], SCHEMA);
    for m in json["key_moments"].as_array().expect("key_moments") {
        if m["moment"] != "detected" {
            assert!(m["at"].is_null(), "{m}");
        }
    }
    let durations = json["durations"].as_object().expect("durations");
    assert_eq!(durations.len(), 5);
    assert!(durations.values().all(serde_json::Value::is_null));
    assert!(json["incident"]["owner"].is_null());
    assert!(json["incident"]["resolved_at"].is_null());
    assert!(json["chart"].is_null());
    assert_eq!(json["deployments"], serde_json::json!([]));
    assert_eq!(json["leads"], serde_json::json!([]));

    // Non-finite numbers are null too.
    let mut input = sample_input();
    input.recovery_seconds = Some(f64::NAN);
    input.chart.as_mut().expect("chart").points[0].1 = f64::INFINITY;
    let json = render_json(&input);
    assert!(json["durations"]["failed_deployment_recovery_seconds"].is_null());
    assert!(json["chart"]["points"][0][1].is_null());
}

#[test]
fn markdown_has_each_moment_and_section_in_order() {
    let md = render_markdown(&sample_input());
    assert!(
        md.starts_with(
            "# Post-mortem: incident 42, Checkout error rate above 5% \\| payments \\<prod\\>\n"
        ),
        "{md}"
    );
    assert_in_order(&md, &SECTIONS);
    assert_in_order(
        &md,
        &[
            "| **Impact started** | 2026-03-14T08:57:30Z |",
            "| **Detected** | 2026-03-14T09:00:00Z | Time to detect | 2m 30s |",
            "| **Acknowledged** | 2026-03-14T09:03:00Z | Time to acknowledge | 3m |",
            "| **Mitigated** | 2026-03-14T09:14:00Z | Time to mitigate | 16m 30s |",
            "| **Resolved** | 2026-03-14T09:31:00Z | Time to resolve | 33m 30s |",
            "Failed deployment recovery time | 17m |",
        ],
    );
    // Milestones in the timeline: bold, with the marker column, in time order.
    assert_in_order(
        &md,
        &[
            "| **103** | **2026-03-14T09:00:00Z** | **0s** | **◆ Detected** |",
            "| **106** | **2026-03-14T09:03:00Z** | **+3m** | **◆ Acknowledged** |",
            "| **109** | **2026-03-14T09:14:00Z** | **+14m** | **◆ Mitigated** |",
            "| **111** | **2026-03-14T09:31:00Z** | **+31m** | **◆ Resolved** |",
        ],
    );
    // The note's `|` and newline stay inside its cell.
    assert!(
        md.contains(
            "| 107 | 2026-03-14T09:06:00Z | +6m |  | note | user:alice | Rolling back d-1042 per \
             https://runbooks.example.com/checkout\\#rollback \\| step 3<br>\\<b\\>not\\</b\\> retrying the payment queue yet |"
        ),
        "{md}"
    );
    // The change, with its commits, analyses and verdict; the leads.
    assert_in_order(
        &md,
        &[
            "### Deployment d-1042",
            "| **Version** | `v2.14.0` |",
            "| **Link** | suspected (linked automatically) |",
            "**Commits of deployment d-1042**",
            "| `4f9c1e2ab7d3` | 2026-03-14T08:30:00Z |",
            "| `a81b77c0de55` |",
            "**Verification analyses of deployment d-1042, in time order**",
            "| 1 | 2026-03-14T08:56:00Z |",
            "| 3 | 2026-03-14T09:00:00Z |",
            "Verification verdict: **FAIL**.",
            "The indicators' queries:",
            "- error\\_ratio: `sum(rate(http_server_errors_total{service=\"checkout\"}[1m])) / ",
            "| 1 | `http_server_errors_total{service=\"checkout\"}` | 2026-03-14T08:57:30Z | 2m 30s | 0.98 |",
            "| 3 | `process_cpu_utilization{host_name=\"checkout-1\"}` |",
        ],
    );
    // Sections filled from the data.
    assert_in_order(
        &md,
        &[
            "## Trigger",
            "Deployment d-1042 of checkout in prod (version v2.14.0), finished at 2026-03-14T08:55:00Z (5m before detection), is the suspected trigger. Its verification verdict was fail.",
            "## Resolution",
            "- At 2026-03-14T09:12:00Z, a deployment during the incident: deployment d-1043 (v2.13.2) of checkout prod finished: success",
            "- Marked mitigated at 2026-03-14T09:14:00Z by user:alice.",
            "- Resolved at 2026-03-14T09:31:00Z by collector: resolved automatically",
            "## Detection",
            "- Detected at 2026-03-14T09:00:00Z: SEV2 incident opened by alert HighErrorRate",
            "- Time to detect: 2m 30s (impact started at 2026-03-14T08:57:30Z).",
            "## Action items",
            "| Action item | Type | Owner | Tracking issue | Status |",
            "|  |  |  |  |  |",
            "### What went well",
            "_To be written._",
        ],
    );
    assert!(md.ends_with("_To be written._\n"), "{md}");
}

#[test]
fn markdown_escapes_data() {
    let mut input = sample_input();
    input.incident.title = "<script>alert(1)</script> *bold* [link](x)\nsecond line".to_owned();
    input.timeline[0].message = "a | b\n- c `d`".to_owned();
    input.deployments[0].deployment.commits[0].sha = "ab|c`d".to_owned();
    let md = render_markdown(&input);
    assert!(md.starts_with(
        "# Post-mortem: incident 42, \\<script\\>alert(1)\\</script\\> \\*bold\\* \\[link\\](x) second line\n"
    ), "{md}");
    assert!(md.contains("| a \\| b<br>- c \\`d\\` |"), "{md}");
    assert!(md.contains("| ``ab\\|c`d`` |"), "{md}");
    assert!(!md.contains("<script>"));
    // Every table row has as many cells as its header.
    for l in md.lines().filter(|l| l.starts_with('|')) {
        let cells = l.replace("\\|", "").matches('|').count();
        assert!(
            [3, 5, 6, 8, 11].contains(&cells),
            "odd number of cells: {l}"
        );
    }
}

#[test]
fn markdown_of_missing_data_has_blanks() {
    let md = render_markdown(&sample_input_bare());
    assert!(md.starts_with("# Post-mortem: incident 7\n"), "{md}");
    assert_in_order(&md, &SECTIONS);
    assert_in_order(
        &md,
        &[
            "| **Impact started** | unknown |",
            "| **Detected** | 2026-03-14T09:00:00Z | Time to detect | unknown |",
            "| **Acknowledged** | unknown | Time to acknowledge | unknown |",
            "| **Resolved** | unknown | Time to resolve | unknown |",
            "Failed deployment recovery time | unknown |",
            "No deployment is linked to this incident.",
            "No series was anomalous in the hour before detection.",
            "## Trigger\n\n_To be written._",
            "The incident was not resolved when this document was generated (2026-03-14T09:05:00Z).",
            "Time to detect: unknown",
        ],
    );
    let mut input = sample_input_bare();
    input.timeline.clear();
    assert!(render_markdown(&input).contains("The timeline is empty."));
}

#[test]
fn html_is_self_contained_accessible_and_escaped() {
    let mut input = sample_input();
    input.incident.title = "<script>alert(1)</script> & \"quotes\"".to_owned();
    let html = render_html(&input);
    assert!(
        html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"),
        "{html}"
    );
    assert!(html.contains(
        "<title>Post-mortem: incident 42, &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;</title>"
    ));
    assert!(!html.contains("<script"), "no script at all");
    // No external reference: the only URL is the note's, as escaped text.
    let lower = html.to_ascii_lowercase();
    for attr in [
        "src=",
        "href=\"http",
        "href='http",
        "url(",
        "@import",
        "<link",
        "<img",
        "<iframe",
    ] {
        assert!(!lower.contains(attr), "{attr} in the HTML");
    }
    let urls: Vec<&str> = lower
        .match_indices("http")
        .filter(|(i, _)| lower[*i..].starts_with("http://") || lower[*i..].starts_with("https://"))
        .map(|(i, _)| &lower[i.saturating_sub(20)..i + 40])
        .collect();
    assert_eq!(urls.len(), 1, "{urls:?}");
    assert!(
        urls[0].contains("per https://runbooks.example.com/"),
        "{urls:?}"
    );

    // Landmarks, headings in order, tables with captions and scoped headers, the chart.
    assert_in_order(
        &html,
        &[
            "<header",
            "<h1>",
            "<nav aria-label=\"Sections\">",
            "<main id=\"content\">",
            "<h2 id=\"incident\">Incident</h2>",
            "<h2 id=\"key-moments\">Key moments</h2>",
            "<svg role=\"img\" aria-labelledby=\"chart-title chart-desc\"",
            "<title id=\"chart-title\">Error ratio of checkout in prod (%)</title>",
            "<desc id=\"chart-desc\">Line chart of Error ratio",
            "Vertical lines mark: Deploy d-1042 at 2026-03-14T08:55:00Z (5m before detection); Impact started at",
            "</svg>",
            "<h2 id=\"timeline\">Timeline</h2>",
            "<tr id=\"entry-103\" class=\"milestone\">",
            "<h2 id=\"change\">Change</h2>",
            "<h3 id=\"deployment-d-1042\">Deployment d-1042</h3>",
            "<h2 id=\"what-moved-first\">What moved first</h2>",
            "<h2 id=\"summary\">Summary</h2>",
            "<h2 id=\"lessons-learned\">Lessons learned</h2>",
            "<h3 id=\"where-we-got-lucky\">Where we got lucky</h3>",
            "</main>",
            "<footer>",
        ],
    );
    assert_eq!(
        html.matches("<table").count(),
        html.matches("<caption id=\"table-").count()
    );
    assert_eq!(html.matches("<h1").count(), 1);
    assert!(!html.contains("<th>"), "every th has a scope");
    for label in [
        "Deploy d-1042",
        "Deploy d-1043",
        "Impact started",
        "Detected",
        "Acknowledged",
        "Mitigated",
        "Resolved",
    ] {
        assert!(
            html.contains(&format!("font-weight=\"600\">{label}</text>")),
            "{label} marker"
        );
    }
    // The note's markup is text.
    assert!(html.contains("step 3<br>&lt;b&gt;not&lt;/b&gt; retrying"));
}

#[test]
fn html_of_missing_data_renders() {
    let html = render_html(&sample_input_bare());
    assert!(html.contains("<title>Post-mortem: incident 7</title>"));
    assert!(html.contains("No series was charted for this incident."));
    assert!(!html.contains("<svg"));
    assert!(html.contains("<em class=\"tbd\">To be written.</em>"));

    // A chart without a finite value, and one whose markers lie outside it.
    let mut input = sample_input();
    input.chart.as_mut().expect("chart").points = vec![(DETECTED, f64::NAN)];
    assert!(render_html(&input).contains("The charted series has no values to draw."));
    let mut input = sample_input_bare();
    input.chart = Some(Chart {
        title: "flat".to_owned(),
        unit: String::new(),
        points: vec![(DETECTED - 3_600_000, 1.0), (DETECTED - 3_600_000, 1.0)],
    });
    let html = render_html(&input);
    assert!(html.contains("<svg"), "{html}");
    assert!(!html.contains("NaN"), "{html}");
}

#[test]
fn rendering_is_deterministic() {
    let input = sample_input();
    assert_eq!(render_html(&input), render_html(&input));
    assert_eq!(render_markdown(&input), render_markdown(&input));
    assert_eq!(render_json(&input), render_json(&input));
}
