//! The rule manager end to end in one process: rules from a directory, samples over OTLP,
//! alerts through the Prometheus-shaped API and PromQL (`ALERTS`), persistence across a
//! restart, and reload.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use support::collector::{self, Running};

async fn start(data: &Path, rules: &Path) -> Running {
    let mut config = collector::config(data);
    config.rules.paths = vec![rules.to_owned()];
    config.rules.default_paths = false;
    config.rules.evaluation_interval = Duration::from_secs(3600);
    config
        .rules
        .external_labels
        .insert("cluster".into(), "test".into());
    collector::start(config).await
}

const RULES: &str = r#"
groups:
  - name: app
    rules:
      - alert: QueueTooDeep
        expr: queue_depth > 5
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.host_name }} queue at {{ $value }} in {{ $externalLabels.cluster }}"
      - alert: QueueSlowlyDeep
        expr: queue_depth > 5
        for: 1h
      - record: host:queue_depth:max
        expr: max by (host_name) (queue_depth)
"#;

#[tokio::test]
async fn write_triggered_evaluation_fires_persists_and_reloads() {
    let data = tempfile::tempdir().unwrap();
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(rules.path().join("app.yml"), RULES).unwrap();
    let c = start(data.path(), rules.path()).await;

    // Groups evaluate hourly here: only the write notification can make this fire promptly.
    c.send("queue.depth", "web-1", 9.0).await;
    let alerts = c
        .wait_alerts(|a| a.iter().any(|x| x["state"] == "firing"))
        .await;
    let firing = alerts.iter().find(|a| a["state"] == "firing").unwrap();
    assert_eq!(firing["labels"]["alertname"], "QueueTooDeep");
    assert_eq!(firing["labels"]["severity"], "page");
    assert_eq!(firing["annotations"]["summary"], "web-1 queue at 9 in test");
    assert_eq!(firing["value"], "9e+00");
    let pending = c
        .wait_alerts(|a| a.iter().any(|x| x["state"] == "pending"))
        .await;
    let pending = pending
        .iter()
        .find(|a| a["state"] == "pending")
        .unwrap()
        .clone();

    // ALERTS and the recording rule's output are queryable.
    let body = c
        .get("/api/v1/query?query=ALERTS%7Balertstate%3D%22firing%22%7D")
        .await;
    assert_eq!(
        body["data"]["result"][0]["metric"]["alertname"], "QueueTooDeep",
        "{body}"
    );
    let body = c
        .get("/api/v1/query?query=ALERTS_FOR_STATE%7Balertname%3D%22QueueTooDeep%22%7D")
        .await;
    let active_at = body["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse::<f64>()
        .unwrap();
    assert!(
        active_at > 1.7e9,
        "ALERTS_FOR_STATE holds activeAt in seconds: {body}"
    );
    let body = c.get("/api/v1/query?query=host:queue_depth:max").await;
    assert_eq!(body["data"]["result"][0]["value"][1], "9", "{body}");

    let rules_api = c.get("/api/v1/rules").await;
    let group = &rules_api["data"]["groups"][0];
    assert_eq!(group["name"], "app");
    assert_eq!(group["rules"][0]["state"], "firing");
    assert_eq!(group["rules"][0]["type"], "alerting");
    assert_eq!(group["rules"][2]["type"], "recording");
    assert_eq!(group["rules"][0]["health"], "ok");
    let only_record = c.get("/api/v1/rules?type=record").await;
    assert_eq!(
        only_record["data"]["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Restart: the pending alert keeps its `for` timer, the firing one keeps firing.
    c.stop().await;
    let c = start(data.path(), rules.path()).await;
    let alerts = c
        .wait_alerts(|a| {
            a.iter().any(|x| x["state"] == "firing") && a.iter().any(|x| x["state"] == "pending")
        })
        .await;
    let again = alerts.iter().find(|a| a["state"] == "pending").unwrap();
    assert_eq!(
        again["activeAt"], pending["activeAt"],
        "for timer resumed, not restarted"
    );

    // Reload with one rule removed and one broken: state of the kept rule survives, the error
    // is reported, the rest loads.
    std::fs::write(
        rules.path().join("app.yml"),
        RULES.replace(
            "      - alert: QueueSlowlyDeep\n        expr: queue_depth > 5\n        for: 1h\n",
            "",
        ),
    )
    .unwrap();
    std::fs::write(
        rules.path().join("broken.yml"),
        "groups:\n  - name: b\n    rules:\n      - alert: X\n        expr: sum(\n",
    )
    .unwrap();
    let r = reqwest::Client::new()
        .post(format!("http://{}/-/reload", c.http))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert!(r.text().await.unwrap().contains("broken.yml:5"));
    let alerts = c.wait_alerts(|a| a.len() == 1).await;
    assert_eq!(alerts[0]["labels"]["alertname"], "QueueTooDeep");

    // Recovery resolves it, and the history keeps its start and end.
    c.send("queue.depth", "web-1", 1.0).await;
    c.wait_alerts(|a| a.is_empty()).await;
    let history = c.get("/api/v1/alerts/history").await;
    let entry = &history["data"][0];
    assert_eq!(entry["labels"]["alertname"], "QueueTooDeep", "{history}");
    assert_eq!(entry["activeAt"], firing["activeAt"]);
    assert!(entry["resolvedAt"].as_str().unwrap() > entry["activeAt"].as_str().unwrap());
    c.stop().await;
}

const QUERY_RULES: &str = r#"
groups:
  - name: fleet
    rules:
      - alert: InstanceDown
        expr: up == 0
        annotations:
          instances: '{{ range query "up" }}{{ .Labels.instance }} {{ end }}'
          down: >-
            {{ $n := "none" }}{{ range $i, $s := query "up == 0" }}{{ if $i }}{{ $n = "several" }}{{ else }}{{ $n = $s.Labels.instance }}{{ end }}{{ end }}{{ $n }}
          total: '{{ with query "count(up)" }}{{ . | first | value }}{{ end }}'
          error: '{{ query "up[5m]" }}'
"#;

/// The rule manager renders templates that call `query` with the query engine, at the
/// evaluation time, from the group task (through the blocking pool, see
/// `alert::manager::eval_alerting`).
#[tokio::test]
async fn templates_query_the_engine_at_evaluation_time() {
    let data = tempfile::tempdir().unwrap();
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(rules.path().join("fleet.yml"), QUERY_RULES).unwrap();
    let c = start(data.path(), rules.path()).await;

    for (instance, up) in [("a", 1.0), ("b", 0.0), ("c", 1.0)] {
        c.send_from("up", &[("service.instance.id", instance)], up)
            .await;
    }
    // Each write re-evaluates the group; the annotations settle once all three are stored.
    let alerts = c
        .wait_alerts(|a| {
            a.iter()
                .any(|x| x["annotations"]["instances"] == "a b c " && x["state"] == "firing")
        })
        .await;
    let alert = &alerts[0];
    assert_eq!(alert["labels"]["instance"], "b");
    assert_eq!(alert["annotations"]["down"], "b");
    assert_eq!(alert["annotations"]["total"], "3");
    assert_eq!(
        alert["annotations"]["error"],
        "<error expanding template: error executing template __alert_InstanceDown: \
         template: __alert_InstanceDown:1:115: executing \"__alert_InstanceDown\" at \
         <query \"up[5m]\">: error calling query: rule result is not a vector or scalar>"
    );
    let rules_api = c.get("/api/v1/rules").await;
    assert_eq!(
        rules_api["data"]["groups"][0]["rules"][0]["health"], "ok",
        "{rules_api}"
    );
    c.stop().await;
}
