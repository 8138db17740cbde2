//! Incidents, deployments and DORA end to end in one process: a deployment is recorded, a
//! threshold crossing on its service fires an alert, the alert opens an incident linked to the
//! deployment, the incident is announced through the routing tree to a real webhook receiver,
//! a person acknowledges it with the CLI, the alert resolves, the incident resolves itself, and
//! the DORA figures change as defined. Also: bad input answered with clear 4xx errors and
//! nothing stored, GitHub's signed `deployment_status` webhook, and imported history.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::collector::{self, Running};
use support::hook::Hook;
use support::otlp;

const RULES: &str = r#"
groups:
  - name: checkout
    rules:
      - alert: CheckoutErrors
        expr: app_errors > 5
        labels:
          severity: critical
        annotations:
          summary: "checkout errors at {{ $value }}"
"#;

fn routing(hook: SocketAddr) -> String {
    format!(
        r#"
route:
  receiver: alerts
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['redline_incident=~".+"']
      receiver: incidents
      group_by: [redline_incident, redline_incident_event]
receivers:
  - name: alerts
    webhook_configs:
      - url: http://{hook}/hook/alerts
        send_resolved: true
  - name: incidents
    webhook_configs:
      - url: http://{hook}/hook/incidents
        send_resolved: true
"#
    )
}

async fn start(dir: &Path, hook: SocketAddr) -> Running {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("checkout.yml"), RULES).unwrap();
    let routing_file = dir.join("alertmanager.yml");
    std::fs::write(&routing_file, routing(hook)).unwrap();
    let secret = dir.join("github.secret");
    std::fs::write(&secret, "It's a Secret to Everybody\n").unwrap();
    let mut config = collector::config(&dir.join("data"));
    config.rules.paths = vec![rules.clone()];
    config.rules.default_paths = false;
    config.rules.evaluation_interval = Duration::from_secs(3600);
    config.rules.external_url = "http://redline.test:9190".into();
    config.notify.config_file = Some(routing_file);
    config.incidents.resolve_after = Duration::from_secs(1);
    config.incidents.github_secret_file = Some(secret);
    let running = collector::start(config).await;
    running.wait_rules_evaluated().await;
    running
}

async fn send_errors(c: &Running, value: f64) {
    let resource = [
        ("service.name", "checkout"),
        ("deployment.environment", "prod"),
        ("host.name", "web1"),
    ];
    c.export(otlp::gauge(
        &resource,
        "app.errors",
        "",
        &[(otlp::now_ms(), value)],
        &[],
    ))
    .await;
}

async fn post(c: &Running, path: &str, body: &Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(c.url(path))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post_raw(c: &Running, path: &str, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .post(c.url(path))
        .body(body.to_owned());
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Polls `GET path` until `pred` holds (bounded).
async fn wait_get(c: &Running, path: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = c.get(path).await;
        if pred(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{path}: {v:#}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn cli(url: &str, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_redline-collector"))
        .args(args)
        .arg("--url")
        .arg(url)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).unwrap().to_string()
}

fn ms(v: &Value) -> i64 {
    v.as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_6_deployment_then_threshold_crossing_gives_a_linked_incident_and_dora() {
    let dir = tempfile::tempdir().unwrap();
    let (hook, hook_addr) = Hook::start().await;
    let c = start(dir.path(), hook_addr).await;
    let url = format!("http://{}", c.http);
    let now = otlp::now_ms();

    // A deployment finished ten minutes ago, with two commits.
    let deployment = json!({
        "id": "checkout-42", "service": "checkout", "environment": "prod", "version": "4.2.0",
        "status": "success", "started_at": rfc3339(now - 15 * 60_000),
        "finished_at": rfc3339(now - 10 * 60_000),
        "commits": [
            {"sha": "aaa", "committed_at": rfc3339(now - 3_600_000)},
            {"sha": "bbb", "committed_at": rfc3339(now - 1_800_000)}
        ]
    });
    let (status, body) = post(&c, "/api/v1/deployments", &deployment).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["created"], true);
    // Idempotent: the same id again changes nothing.
    let (status, body) = post(&c, "/api/v1/deployments", &deployment).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["created"], false);
    assert_eq!(body["differs"], false);

    // Before anything fails: fail rate 0 of 1.
    let dora = c
        .get("/api/v1/dora?service=checkout&environment=prod")
        .await;
    assert_eq!(dora["deployment_frequency"]["successful_deployments"], 1);
    assert_eq!(dora["change_fail_rate"]["rate"], 0.0);
    assert_eq!(dora["change_lead_time"]["changes"], 2);
    // Lead times 50 and 20 minutes: median 35 minutes.
    assert_eq!(dora["change_lead_time"]["median_seconds"], 2100.0);
    assert!(dora["failed_deployment_recovery_time"]["median_seconds"].is_null());

    // The deployment is a series too.
    c.wait_query(
        "count_over_time(deployment_info{service=\"checkout\"}[1h])",
        |r| r.len() == 1,
    )
    .await;

    // The threshold crossing: alert, incident, announcement.
    send_errors(&c, 9.0).await;
    let alert_payload = hook
        .wait("/hook/alerts", |v| v["status"] == "firing")
        .await
        .json();
    assert_eq!(
        alert_payload["alerts"][0]["labels"]["alertname"],
        "CheckoutErrors"
    );
    let list = wait_get(&c, "/api/v1/incidents", |v| {
        v.as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let incident = &list[0];
    let id = incident["id"].as_i64().unwrap();
    assert_eq!(incident["status"], "triggered");
    assert_eq!(incident["severity"], "SEV1");
    assert_eq!(incident["service"], "checkout");
    assert_eq!(incident["environment"], "prod");
    assert_eq!(incident["title"], "checkout errors at 9");
    assert_eq!(incident["source"], "alert");
    assert_eq!(incident["hosts"], json!(["web1"]));
    assert_eq!(incident["deployments"][0]["deployment_id"], "checkout-42");
    assert_eq!(incident["deployments"][0]["kind"], "suspected");
    let opened = hook
        .wait("/hook/incidents", |v| {
            v["status"] == "firing" && v["commonLabels"]["redline_incident_event"] == "opened"
        })
        .await
        .json();
    assert_eq!(opened["commonLabels"]["redline_incident"], id.to_string());
    assert_eq!(opened["commonLabels"]["severity"], "SEV1");
    assert_eq!(
        opened["alerts"][0]["annotations"]["incident_url"],
        format!("http://redline.test:9190/api/v1/incidents/{id}")
    );

    // Filters.
    let (status, _) = c.get_with_status("/api/v1/incidents?status=bogus").await;
    assert_eq!(status, 400);
    let none = c.get("/api/v1/incidents?service=other").await;
    assert_eq!(none, json!([]));

    // A person acknowledges with the CLI and adds a note.
    let (ok, out) = cli(
        &url,
        &["incident", "ack", &id.to_string(), "--actor", "ann"],
    );
    assert!(ok, "{out}");
    assert!(out.contains("acknowledged"), "{out}");
    let (ok, out) = cli(
        &url,
        &[
            "incident",
            "note",
            &id.to_string(),
            "rolled back by hand",
            "--actor",
            "ann",
        ],
    );
    assert!(ok, "{out}");
    hook.wait("/hook/incidents", |v| {
        v["commonLabels"]["redline_incident_event"] == "acknowledged"
    })
    .await;

    // The alert resolves; a second later the incident resolves itself.
    send_errors(&c, 0.0).await;
    let resolved = wait_get(&c, &format!("/api/v1/incidents/{id}"), |v| {
        v["status"] == "resolved"
    })
    .await;
    assert!(resolved["acknowledged_at"].is_string());
    hook.wait("/hook/incidents", |v| {
        v["status"] == "resolved" && v["commonLabels"]["redline_incident_event"] == "opened"
    })
    .await;

    // The timeline has the story, in time order, with actors.
    let timeline = wait_get(&c, &format!("/api/v1/incidents/{id}/timeline"), |v| {
        v.as_array()
            .is_some_and(|a| a.iter().any(|e| e["kind"] == "notification_sent"))
    })
    .await;
    let entries = timeline.as_array().unwrap();
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "opened",
        "alert_firing",
        "deployment_suspected",
        "acknowledged",
        "note",
        "alert_resolved",
        "resolved",
        "notification_sent",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let ack = entries
        .iter()
        .find(|e| e["kind"] == "acknowledged")
        .unwrap();
    assert_eq!(ack["actor"], "user:ann");
    let auto = entries.iter().find(|e| e["kind"] == "resolved").unwrap();
    assert_eq!(auto["actor"], "collector");
    let times: Vec<i64> = entries.iter().map(|e| ms(&e["at"])).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    // DORA now: the deployment failed (an incident names it as cause) and recovered when the
    // incident resolved.
    let dora = c
        .get("/api/v1/dora?service=checkout&environment=prod")
        .await;
    assert_eq!(dora["change_fail_rate"]["failed_deployments"], 1);
    assert_eq!(dora["change_fail_rate"]["rate"], 1.0);
    let recovery = dora["failed_deployment_recovery_time"]["median_seconds"]
        .as_f64()
        .unwrap();
    let expected = (ms(&resolved["resolved_at"]) - (now - 10 * 60_000)) as f64 / 1000.0;
    assert!(
        (recovery - expected).abs() < 0.01,
        "{recovery} vs {expected}"
    );
    assert_eq!(dora["failed_deployment_recovery_time"]["not_recovered"], 0);
    assert_eq!(dora["time_to_restore"]["resolved_incidents"], 1);
    let (ok, table) = cli(
        &url,
        &["dora", "--service", "checkout", "--environment", "prod"],
    );
    assert!(ok, "{table}");
    assert!(
        table.contains("change fail rate") && table.contains("1 of 1 failed"),
        "{table}"
    );

    // The trailing 30-day figures are on /metrics.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = reqwest::get(c.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.lines().any(|l| {
            l.starts_with("redline_dora_change_fail_rate{")
                && l.contains("service=\"checkout\"")
                && l.ends_with(" 1")
        }) {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A person removes the suspected link: the deployment no longer counts as failed.
    let (status, body) = post(
        &c,
        &format!("/api/v1/incidents/{id}/deployments"),
        &json!({"deployment_id": "checkout-42", "action": "unlink", "actor": "ann"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let dora = c
        .get("/api/v1/dora?service=checkout&environment=prod")
        .await;
    assert_eq!(dora["change_fail_rate"]["rate"], 0.0);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_6_bad_input_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (_hook, hook_addr) = Hook::start().await;
    let c = start(dir.path(), hook_addr).await;
    let base = json!({"id": "d1", "service": "api", "environment": "prod", "status": "success",
        "started_at": 1_700_000_100, "finished_at": 1_700_000_000});
    let (status, body) = post(&c, "/api/v1/deployments", &base).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "finished_at");
    let mut unknown = base.clone();
    unknown["finished_at"] = json!(1_700_000_200);
    unknown["rollback_of"] = json!("nope");
    let (status, body) = post(&c, "/api/v1/deployments", &unknown).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "rollback_of");
    unknown["rollback_of"] = Value::Null;
    unknown["fixes_incident"] = json!(99);
    let (status, body) = post(&c, "/api/v1/deployments", &unknown).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "fixes_incident");
    let (status, body) = post_raw(
        &c,
        "/api/v1/deployments",
        "{not json",
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("line 1"), "{body}");
    let (status, _) = post(
        &c,
        "/api/v1/deployments",
        &json!({"id": "x", "surprise": 1}),
    )
    .await;
    assert_eq!(status, 422);
    // Nothing of the above was stored.
    assert_eq!(c.get("/api/v1/deployments").await, json!([]));

    // Unknown incidents.
    let (status, body) = post(&c, "/api/v1/incidents/12345/ack", &json!({})).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = c.get_with_status("/api/v1/incidents/12345").await;
    assert_eq!(status, 404);
    let (status, _) = c.get_with_status("/api/v1/incidents/abc/timeline").await;
    assert_eq!(status, 404);
    let (status, body) = post(&c, "/api/v1/incidents", &json!({"title": ""})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "title");
    assert_eq!(c.get("/api/v1/incidents").await, json!([]));

    // GitHub: unsigned and wrongly signed deliveries are refused; a signed one is recorded.
    let delivery = json!({
        "action": "created",
        "deployment_status": {"state": "success", "environment": "prod", "created_at": "2026-11-26T10:05:00Z"},
        "deployment": {"id": 7, "sha": "abc123", "ref": "v1.0.0", "environment": "prod",
                       "created_at": "2026-11-26T10:00:00Z", "payload": {}},
        "repository": {"name": "shop", "full_name": "acme/shop"}
    })
    .to_string();
    let (status, _) = post_raw(
        &c,
        "/api/v1/webhooks/github",
        &delivery,
        &[("x-github-event", "deployment_status")],
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = post_raw(
        &c,
        "/api/v1/webhooks/github",
        &delivery,
        &[
            ("x-github-event", "deployment_status"),
            ("x-hub-signature-256", "sha256=00"),
        ],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(c.get("/api/v1/deployments").await, json!([]));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"It's a Secret to Everybody");
    let signature: String = ring::hmac::sign(&key, delivery.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (status, body) = post_raw(
        &c,
        "/api/v1/webhooks/github",
        &delivery,
        &[
            ("x-github-event", "deployment_status"),
            ("x-hub-signature-256", &format!("sha256={signature}")),
        ],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["deployment"]["id"], "github:acme/shop:7");
    assert_eq!(body["deployment"]["service"], "shop");
    assert_eq!(body["deployment"]["source"], "github");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_6_imported_history_feeds_dora_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (_hook, hook_addr) = Hook::start().await;
    let c = start(dir.path(), hook_addr).await;
    let url = format!("http://{}", c.http);
    let day = 86_400_000i64;
    let t0 = (otlp::now_ms() - 10 * day) / 1000 * 1000;
    // Three deployments over three days; the second failed and was rolled back by the third.
    for (i, (id, rollback)) in [("v1", None), ("v2", None), ("v3", Some("v2"))]
        .into_iter()
        .enumerate()
    {
        let finished = t0 + i as i64 * day;
        let (ok, out) = cli(
            &url,
            &[
                "deploy",
                "--id",
                id,
                "--service",
                "billing",
                "--environment",
                "prod",
                "--version",
                id,
                "--finished-at",
                &rfc3339(finished),
                "--started-at",
                &rfc3339(finished - 60_000),
                "--commit",
                &format!("{id}-sha@{}", (finished - 7_200_000) / 1000),
            ]
            .into_iter()
            .chain(rollback.map(|r| ["--rollback-of", r]).into_iter().flatten())
            .collect::<Vec<_>>(),
        );
        assert!(ok, "{out}");
    }
    // A past incident, imported with its times and its cause.
    let (status, body) = post(
        &c,
        "/api/v1/incidents",
        &json!({"title": "billing 500s", "service": "billing", "environment": "prod",
                "severity": "SEV2", "opened_at": rfc3339(t0 + day + 600_000),
                "acknowledged_at": rfc3339(t0 + day + 900_000),
                "resolved_at": rfc3339(t0 + day + 3_600_000),
                "deployments": ["v2"], "actor": "importer"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "resolved");
    let from = (t0 - day) / 1000;
    let to = (t0 + 5 * day) / 1000;
    let path = format!("/api/v1/dora?service=billing&environment=prod&from={from}&to={to}");
    let dora = c.get(&path).await;
    assert_eq!(dora["deployment_frequency"]["successful_deployments"], 3);
    assert_eq!(dora["deployment_frequency"]["per_day"], 0.5);
    assert_eq!(dora["change_fail_rate"]["failed_deployments"], 1);
    // v2 recovered at the earlier of its rollback (v3, one day after it finished) and its
    // incident's resolution (one hour after v2 finished): 3600 s.
    assert_eq!(
        dora["failed_deployment_recovery_time"]["median_seconds"],
        3600.0
    );
    assert_eq!(dora["change_lead_time"]["median_seconds"], 7200.0);
    c.stop().await;

    // After a restart the same figures come back from SQLite.
    let c = start(dir.path(), hook_addr).await;
    assert_eq!(
        c.get(&path).await["change_fail_rate"]["failed_deployments"],
        1
    );
    let incidents = c.get("/api/v1/incidents?status=resolved").await;
    assert_eq!(incidents.as_array().unwrap().len(), 1);
    c.stop().await;
}
