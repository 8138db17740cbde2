//! Notifications end to end in one process: a sample crosses a rule's threshold over OTLP, the
//! alert fires, the dispatcher routes and groups it, the outbox delivers the Alertmanager v4
//! payload to a real HTTP receiver; the series recovers and the resolved notice follows.
//! Also: silences through `amtool` (Alertmanager's own CLI) against our API v2, alerts posted
//! the way Prometheus posts them, a restart in the middle of a group wait, and a receiver
//! outage.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use support::collector::{self, Running};

/// A webhook receiver: records every request; answers 503 while `down` is set.
#[derive(Clone, Default)]
struct Hook {
    received: Arc<Mutex<Vec<(HeaderMap, Value, Bytes)>>>,
    refused: Arc<Mutex<usize>>,
    down: Arc<Mutex<bool>>,
}

async fn hook_handler(State(hook): State<Hook>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if *hook.down.lock().unwrap() {
        *hook.refused.lock().unwrap() += 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    hook.received.lock().unwrap().push((headers, json, body));
    StatusCode::OK
}

impl Hook {
    async fn start() -> (Hook, SocketAddr) {
        let hook = Hook::default();
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook_handler))
            .with_state(hook.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (hook, addr)
    }

    fn payloads(&self) -> Vec<Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, v, _)| v.clone())
            .collect()
    }

    /// Waits (bounded; not a timing assertion) until `n` payloads arrived.
    async fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let p = self.payloads();
            if p.len() >= n {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "only {} payloads: {p:#?}",
                p.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

async fn start(data: &Path, rules: &Path, routing: &Path) -> Running {
    let mut config = collector::config(data);
    config.rules.paths = vec![rules.to_owned()];
    config.rules.default_paths = false;
    config.rules.evaluation_interval = Duration::from_secs(3600);
    config.rules.external_url = "http://redline.test:9190".into();
    config.notify.config_file = Some(routing.to_owned());
    config.notify.initial_backoff = Duration::from_millis(50);
    config.notify.max_backoff = Duration::from_millis(200);
    let running = collector::start(config).await;
    // Rules load asynchronously after start; send samples only once the groups evaluate, so a
    // loaded machine does not turn start-up order into a flaky test.
    if std::fs::read_dir(rules).is_ok_and(|mut d| d.next().is_some()) {
        running.wait_rules_evaluated().await;
    }
    running
}

/// `DIR/rules`, holding `host.yml` with `rules` when given (empty otherwise).
fn rules_dir(dir: &Path, rules: Option<&str>) -> std::path::PathBuf {
    let path = dir.join("rules");
    std::fs::create_dir(&path).unwrap();
    if let Some(text) = rules {
        write(&path, "host.yml", text);
    }
    path
}

const RULES: &str = r#"
groups:
  - name: host
    rules:
      - alert: CpuHot
        expr: cpu_load > 90
        labels:
          severity: page
        annotations:
          summary: "CPU on {{ $labels.host_name }} at {{ $value }}"
"#;

fn routing(hook: SocketAddr, group_wait: &str) -> String {
    format!(
        r#"
route:
  receiver: hook
  group_by: [alertname]
  group_wait: {group_wait}
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: http://{hook}/hook
        send_resolved: true
        hmac_secret: s3cret
        headers:
          X-Team: infra
"#
    )
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    ring::hmac::sign(&key, body)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn issue_4_threshold_crossing_reaches_the_webhook_and_the_mail_then_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_dir(dir.path(), Some(RULES));
    let (hook, hook_addr) = Hook::start().await;
    let smtp = support::smtp::Sink::start(&[]).await;
    // The webhook receiver plus an email integration on the same receiver, with a templated
    // subject header as Alertmanager users write them, and STARTTLS not required (the test
    // SMTP server speaks plain text).
    let config = routing(hook_addr, "0s")
        + &format!(
            r#"
    email_configs:
      - to: oncall@example.com
        from: redline@example.com
        smarthost: 127.0.0.1:{}
        require_tls: false
        send_resolved: true
        headers:
          Subject: '[{{{{ .Status | toUpper }}}}] {{{{ .CommonLabels.alertname }}}} on {{{{ .CommonLabels.host_name }}}}'
"#,
            smtp.port
        );
    let routing_file = write(dir.path(), "alertmanager.yml", &config);
    let collector = start(&dir.path().join("data"), &rules, &routing_file).await;

    collector.send("cpu.load", "web1", 97.0).await;
    let payloads = hook.wait_for(1).await;
    let firing = &payloads[0];
    assert_eq!(firing["version"], "4");
    assert_eq!(firing["status"], "firing");
    assert_eq!(firing["receiver"], "hook");
    assert_eq!(firing["groupKey"], r#"{}:{alertname="CpuHot"}"#);
    assert_eq!(firing["groupLabels"]["alertname"], "CpuHot");
    assert_eq!(firing["externalURL"], "http://redline.test:9190");
    assert_eq!(firing["truncatedAlerts"], 0);
    let alert = &firing["alerts"][0];
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["labels"]["host_name"], "web1");
    assert_eq!(alert["labels"]["severity"], "page");
    assert_eq!(alert["annotations"]["summary"], "CPU on web1 at 97");
    assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(alert["fingerprint"].as_str().unwrap().len(), 16);
    assert!(
        alert["generatorURL"]
            .as_str()
            .unwrap()
            .starts_with("http://redline.test:9190/graph?g0.expr=cpu_load+%3E+90"),
        "{}",
        alert["generatorURL"]
    );
    {
        let received = hook.received.lock().unwrap();
        let (headers, _, body) = &received[0];
        assert_eq!(headers["x-team"], "infra");
        assert!(headers.contains_key("idempotency-key"));
        let signature = headers["x-redline-signature"].to_str().unwrap();
        assert_eq!(signature, format!("sha256={}", hmac_hex("s3cret", body)));
    }

    let mail = &smtp.messages(1).await[0];
    assert_eq!(mail["subject"], "[FIRING] CpuHot on web1");
    assert_eq!(mail["rcpt_tos"][0], "oncall@example.com");
    assert_eq!(mail["content_type"], "multipart/alternative");
    let parts = mail["parts"].as_array().unwrap();
    assert_eq!(parts[0]["content_type"], "text/plain");
    assert_eq!(parts[1]["content_type"], "text/html");
    assert!(
        parts[0]["body"]
            .as_str()
            .unwrap()
            .contains("CPU on web1 at 97")
    );

    collector.send("cpu.load", "web1", 12.0).await;
    let payloads = hook.wait_for(2).await;
    let resolved = &payloads[1];
    let mails = smtp.messages(2).await;
    assert_eq!(mails[1]["subject"], "[RESOLVED] CpuHot on web1");
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["alerts"][0]["status"], "resolved");
    assert_ne!(resolved["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(
        resolved["alerts"][0]["fingerprint"],
        firing["alerts"][0]["fingerprint"]
    );

    // The outbox counts a delivery just after the receiver answered: poll (bounded). The
    // recorder is per process and other tests here deliver too, so at least two.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = reqwest::get(collector.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let delivered = metrics.lines().any(|l| {
            l.starts_with("redline_collector_notifications_total{")
                && l.contains("receiver=\"hook\"")
                && l.contains("integration=\"webhook\"")
                && l.contains("outcome=\"delivered\"")
                && l.rsplit(' ')
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
                    .is_some_and(|v| v >= 2.0)
        });
        if delivered {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    collector.stop().await;
}

#[tokio::test]
async fn issue_4_receiver_outage_then_every_notification_once() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_dir(dir.path(), Some(RULES));
    let (hook, hook_addr) = Hook::start().await;
    *hook.down.lock().unwrap() = true;
    let routing_file = write(dir.path(), "alertmanager.yml", &routing(hook_addr, "0s"));
    let collector = start(&dir.path().join("data"), &rules, &routing_file).await;
    collector.send("cpu.load", "web1", 97.0).await;
    // Let the firing notice fail a few times, then resolve while the receiver is still down.
    let deadline = Instant::now() + Duration::from_secs(20);
    while *hook.refused.lock().unwrap() < 3 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    collector.send("cpu.load", "web1", 10.0).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    *hook.down.lock().unwrap() = false;
    let payloads = hook.wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let payloads_after = hook.payloads();
    assert_eq!(
        payloads_after.len(),
        2,
        "each notification once: {payloads_after:#?}"
    );
    assert_eq!(payloads[0]["status"], "firing", "in order");
    assert_eq!(payloads[1]["status"], "resolved");
    let keys: std::collections::BTreeSet<String> = hook
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|(h, _, _)| h["idempotency-key"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 2);
    collector.stop().await;
}

#[tokio::test]
async fn issue_4_restart_during_group_wait_sends_once() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_dir(dir.path(), Some(RULES));
    let (hook, hook_addr) = Hook::start().await;
    let routing_file = write(dir.path(), "alertmanager.yml", &routing(hook_addr, "2s"));
    let data = dir.path().join("data");
    let collector = start(&data, &rules, &routing_file).await;
    collector.send("cpu.load", "web1", 97.0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    collector.stop().await;
    assert!(
        hook.payloads().is_empty(),
        "still in group wait at the stop"
    );
    let collector = start(&data, &rules, &routing_file).await;
    let payloads = hook.wait_for(1).await;
    assert_eq!(payloads[0]["status"], "firing");
    // A later restart does not send it again: the notification log says it was sent.
    collector.stop().await;
    let collector = start(&data, &rules, &routing_file).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hook.payloads().len(), 1, "{:#?}", hook.payloads());
    collector.stop().await;
}

/// Runs Alertmanager's CLI against our API (asynchronously: the collector serves from this
/// test's runtime).
async fn amtool(url: &str, args: &[&str]) -> String {
    let out = tokio::process::Command::new("amtool")
        .args(args)
        .arg(format!("--alertmanager.url={url}"))
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!("amtool not runnable ({e}); run .ci/run, which installs prometheus-alertmanager")
        });
    assert!(
        out.status.success(),
        "amtool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn issue_4_posted_alerts_and_silences_through_amtool() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_dir(dir.path(), None);
    let (hook, hook_addr) = Hook::start().await;
    let routing_file = write(dir.path(), "alertmanager.yml", &routing(hook_addr, "0s"));
    let collector = start(&dir.path().join("data"), &rules, &routing_file).await;
    let base = format!("http://{}", collector.http);

    // A silence first, created by Alertmanager's own CLI.
    let id = amtool(
        &base,
        &[
            "silence",
            "add",
            "alertname=DiskFull",
            "--comment=maintenance",
            "--author=ops",
            "--duration=1h",
        ],
    )
    .await;
    let id = id.trim().to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let listed = amtool(&base, &["silence", "query", "-o", "json"]).await;
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["status"]["state"], "active");

    // Alerts posted as Prometheus posts them; DiskFull is silenced, Other is not.
    let client = reqwest::Client::new();
    let body = serde_json::json!([
        {"labels": {"alertname": "DiskFull", "instance": "db1"}, "annotations": {"summary": "full"},
         "generatorURL": "http://prom/graph"},
        {"labels": {"alertname": "Other", "instance": "db1"}}
    ]);
    let r = client
        .post(format!("{base}/api/v2/alerts"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let payloads = hook.wait_for(1).await;
    assert_eq!(payloads[0]["groupLabels"]["alertname"], "Other");
    let alerts = amtool(&base, &["alert", "query", "-o", "json", "--silenced"]).await;
    let alerts: Value = serde_json::from_str(&alerts).unwrap();
    let disk = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "DiskFull")
        .unwrap();
    assert_eq!(disk["status"]["state"], "suppressed");
    assert_eq!(disk["status"]["silencedBy"][0], id.as_str());

    // Expiring the silence while DiskFull still fires notifies at once.
    amtool(&base, &["silence", "expire", &id]).await;
    let payloads = hook.wait_for(2).await;
    assert_eq!(payloads[1]["groupLabels"]["alertname"], "DiskFull");
    assert_eq!(payloads[1]["status"], "firing");
    let listed: Value = serde_json::from_str(
        &amtool(&base, &["silence", "query", "--expired", "-o", "json"]).await,
    )
    .unwrap();
    assert_eq!(listed[0]["status"]["state"], "expired");

    // Bad input: a clear error naming the field.
    let r = client
        .post(format!("{base}/api/v2/alerts"))
        .json(&serde_json::json!([{"labels": {}}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("alerts[0]: at least one label pair required")
    );
    let r = client
        .post(format!("{base}/api/v2/silences"))
        .json(
            &serde_json::json!({"matchers": [], "startsAt": "2026-01-01T00:00:00Z",
            "endsAt": "2099-01-01T00:00:00Z", "createdBy": "x", "comment": "y"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    collector.stop().await;
}

/// Runs `redline-collector silence …` against our API.
async fn silence_cli(url: &str, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_redline-collector"))
        .arg("silence")
        .args(args)
        .arg(format!("--url={url}"))
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test]
async fn issue_4_silences_through_the_redline_cli() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_dir(dir.path(), None);
    let (_hook, hook_addr) = Hook::start().await;
    let routing_file = write(dir.path(), "alertmanager.yml", &routing(hook_addr, "0s"));
    let collector = start(&dir.path().join("data"), &rules, &routing_file).await;
    let base = format!("http://{}", collector.http);

    let (ok, id) = silence_cli(
        &base,
        &[
            "add",
            "HighCPU",
            "instance=~\"web.*\"",
            "--comment=deploy",
            "--author=ci",
            "--duration=2h",
        ],
    )
    .await;
    assert!(ok, "{id}");
    let id = id.trim().to_owned();
    let (ok, table) = silence_cli(&base, &["query"]).await;
    assert!(ok, "{table}");
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.contains(&id) && table.contains("alertname=\"HighCPU\""),
        "{table}"
    );
    assert!(
        table.contains("instance=~\"web.*\"") && table.contains("deploy"),
        "{table}"
    );
    // The same silence as Alertmanager's CLI sees it.
    let listed: Value =
        serde_json::from_str(&amtool(&base, &["silence", "query", "-o", "json"]).await).unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["createdBy"], "ci");

    let (ok, out) = silence_cli(&base, &["expire", &id]).await;
    assert!(ok, "{out}");
    let (_, json) = silence_cli(&base, &["query", "--expired", "--json"]).await;
    let expired: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(expired[0]["status"]["state"], "expired");
    // Errors name what is wrong.
    let (ok, out) = silence_cli(&base, &["expire", "no-such-id"]).await;
    assert!(
        !ok && out.contains("404") && out.contains("no-such-id"),
        "{out}"
    );
    let (ok, out) = silence_cli(&base, &["add", "a=~\"(\""]).await;
    assert!(!ok && out.contains("matcher"), "{out}");
    collector.stop().await;
}

/// A real Prometheus (Debian's 2.42) using Redline as its Alertmanager: its always-firing rule
/// reaches our webhook receiver through `POST /api/v2/alerts` and our routing.
#[tokio::test]
async fn issue_4_prometheus_sends_its_alerts_to_redline() {
    let Some(prometheus) = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("prometheus"))
            .find(|p| p.is_file())
    }) else {
        panic!("prometheus is not on PATH (Debian package `prometheus`); run .ci/run");
    };
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_dir(dir.path(), None);
    let (hook, hook_addr) = Hook::start().await;
    let routing_file = write(dir.path(), "alertmanager.yml", &routing(hook_addr, "0s"));
    let collector = start(&dir.path().join("data"), &rules, &routing_file).await;

    let prom_rules = write(
        dir.path(),
        "prom_rules.yml",
        "groups:\n  - name: g\n    rules:\n      - alert: FromPrometheus\n        expr: vector(1)\n        labels:\n          severity: ticket\n        annotations:\n          summary: sent by a real Prometheus\n",
    );
    let prom_config = write(
        dir.path(),
        "prometheus.yml",
        &format!(
            "global:\n  evaluation_interval: 1s\nrule_files: [{}]\nalerting:\n  alertmanagers:\n    - api_version: v2\n      static_configs:\n        - targets: ['{}']\n",
            prom_rules.display(),
            collector.http
        ),
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _prometheus = tokio::process::Command::new(prometheus)
        .arg(format!("--config.file={}", prom_config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("prom").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        // The first evaluation can fire before service discovery has handed the notifier its
        // Alertmanager; Prometheus then resends after this delay (default 1m).
        .arg("--rules.alert.resend-delay=1s")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let payloads = hook.wait_for(1).await;
    let alert = &payloads[0]["alerts"][0];
    assert_eq!(alert["labels"]["alertname"], "FromPrometheus");
    assert_eq!(alert["labels"]["severity"], "ticket");
    assert_eq!(alert["annotations"]["summary"], "sent by a real Prometheus");
    assert_eq!(alert["status"], "firing");
    assert!(
        alert["generatorURL"]
            .as_str()
            .unwrap()
            .contains("/graph?g0.expr=vector%281%29"),
        "{alert}"
    );
    collector.stop().await;
}

/// Silences are durable: after a restart the silence is still listed and still mutes.
#[tokio::test]
async fn issue_4_silences_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_dir(dir.path(), None);
    let (hook, hook_addr) = Hook::start().await;
    let routing_file = write(dir.path(), "alertmanager.yml", &routing(hook_addr, "0s"));
    let data = dir.path().join("data");
    let collector = start(&data, &rules, &routing_file).await;
    let base = format!("http://{}", collector.http);
    let (ok, id) = silence_cli(&base, &["add", "alertname=Muted", "--duration=1h"]).await;
    assert!(ok, "{id}");
    let id = id.trim().to_owned();
    collector.stop().await;

    let collector = start(&data, &rules, &routing_file).await;
    let base = format!("http://{}", collector.http);
    let (ok, json) = silence_cli(&base, &["query", "--json"]).await;
    assert!(ok, "{json}");
    let listed: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["status"]["state"], "active");
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/api/v2/alerts"))
        .json(&serde_json::json!([
            {"labels": {"alertname": "Muted"}},
            {"labels": {"alertname": "Loud"}}
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let payloads = hook.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let payloads_after = hook.payloads();
    assert_eq!(payloads_after.len(), 1, "{payloads_after:#?}");
    assert_eq!(payloads[0]["groupLabels"]["alertname"], "Loud");
    collector.stop().await;
}

/// A resolution the dispatcher held in memory when the collector stopped is reported after
/// the restart (the rule manager re-announces recently resolved alerts).
#[tokio::test]
async fn issue_4_resolution_pending_at_shutdown_is_sent_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_dir(dir.path(), Some(RULES));
    let (hook, hook_addr) = Hook::start().await;
    // A long group interval keeps the resolution waiting in the dispatcher.
    let slow = routing(hook_addr, "0s").replace("group_interval: 1s", "group_interval: 1h");
    let routing_file = write(dir.path(), "alertmanager.yml", &slow);
    let data = dir.path().join("data");
    let collector = start(&data, &rules, &routing_file).await;
    collector.send("cpu.load", "web1", 97.0).await;
    assert_eq!(hook.wait_for(1).await[0]["status"], "firing");
    collector.send("cpu.load", "web1", 5.0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        hook.payloads().len(),
        1,
        "the resolution waits for the group interval"
    );
    collector.stop().await;

    write(dir.path(), "alertmanager.yml", &routing(hook_addr, "0s"));
    let collector = start(&data, &rules, &routing_file).await;
    let payloads = hook.wait_for(2).await;
    assert_eq!(payloads[1]["status"], "resolved");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hook.payloads().len(), 2, "{:#?}", hook.payloads());
    collector.stop().await;
}
