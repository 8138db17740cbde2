//! Post-deploy verification and guarded rollbacks end to end in one process: a deployment is
//! recorded, its indicator degrades (samples over OTLP), the verification fails, an incident
//! opens and links the deployment, the rollback hooks run (an exec hook — a real program — and
//! a signed webhook through the outbox), the rollback is recorded as a deployment, the incident
//! resolves, and DORA shows one failed deployment with its recovery time. In `approval` mode
//! nothing runs until a person approves with the CLI. Hostile values in deployments reach the
//! hook only as data.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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
        for: 2s
        labels:
          severity: critical
"#;

/// The exec hook: a real program that records its environment, argv and stdin.
fn hook_script(dir: &Path) -> PathBuf {
    let out = dir.join("hook-out");
    std::fs::create_dir_all(&out).unwrap();
    let script = dir.join("rollback.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nset -e\nn=$(ls {out} | wc -l)\nenv > {out}/env.$n\ncat > {out}/stdin.$n\necho \"$@\" > {out}/argv.$n\necho rolled back\n",
            out = out.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

async fn start(dir: &Path, hook: SocketAddr, mode: &str) -> Running {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("checkout.yml"), RULES).unwrap();
    std::fs::write(dir.join("hook.secret"), "t0ps3cret\n").unwrap();
    let script = hook_script(dir);
    let yaml = format!(
        r#"
verification:
  analysis_window: 6s
  baseline_window: 20s
  interval: 500ms
  step: 250ms
  failure_limit: 2
  services:
    - service: checkout
      indicators:
        - name: errors
          query: app_errors
          direction: higher_is_worse
      rollback:
        mode: {mode}
        environments: [prod]
        cooldown: 1m
        hooks:
          - exec: ["{script}", "--fixed-flag"]
            timeout: 10s
          - webhook: http://{hook}/rollback
            hmac_secret_file: {secret}
    # No indicators: only an incident linked to a recent deployment triggers a rollback.
    - service: billing
      rollback:
        mode: auto
        environments: [prod]
        hooks:
          - exec: ["{script}"]
incidents:
  resolve_after: 1s
"#,
        script = script.display(),
        secret = dir.join("hook.secret").display()
    );
    let config_file = dir.join("collector.yml");
    std::fs::write(&config_file, yaml).unwrap();
    let mut config = redline_collector::config::Config::load(&config_file).unwrap();
    let base = collector::config(&dir.join("data"));
    config.data_dir = base.data_dir;
    config.otlp_grpc_listen = base.otlp_grpc_listen;
    config.otlp_http_listen = base.otlp_http_listen;
    config.http_listen = base.http_listen;
    config.rules.paths = vec![rules];
    config.rules.default_paths = false;
    config.rules.evaluation_interval = Duration::from_secs(3600);
    config.notify.initial_backoff = Duration::from_millis(50);
    collector::start(config).await
}

async fn send(c: &Running, points: &[(i64, f64)]) {
    send_for(c, "checkout", points).await;
}

async fn send_for(c: &Running, service: &str, points: &[(i64, f64)]) {
    let resource = [
        ("service.name", service),
        ("deployment.environment", "prod"),
        ("host.name", "web1"),
    ];
    c.export(otlp::gauge(&resource, "app.errors", "", points, &[]))
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

/// Polls `GET path` until `pred` holds, sending `errors` now and then so rules evaluate.
async fn wait_get(
    c: &Running,
    path: &str,
    errors: Option<f64>,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let v = c.get(path).await;
        if pred(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{path}: {v:#}");
        if let Some(e) = errors {
            send(c, &[(otlp::now_ms(), e)]).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

/// Records a deployment that finished `ago` ms before now, with history around it: a
/// baseline of ~1 error before it started, `after` errors since it finished.
async fn deploy_with_history(c: &Running, id: &str, version: &str, ago: i64, after: f64) -> i64 {
    let now = otlp::now_ms();
    let finished = now - ago;
    let started = finished - 1000;
    let mut points = Vec::new();
    let mut t = started - 20_000;
    let mut i = 0;
    while t < now {
        let v = if t < started {
            1.0 + (i % 3) as f64 * 0.1
        } else if t >= finished {
            after + (i % 3) as f64 * 0.1
        } else {
            1.0
        };
        points.push((t, v));
        t += 250;
        i += 1;
    }
    for chunk in points.chunks(40) {
        send(c, chunk).await;
    }
    let (status, body) = post(
        c,
        "/api/v1/deployments",
        &json!({"id": id, "service": "checkout", "environment": "prod", "version": version,
                "status": "success", "started_at": rfc3339(started), "finished_at": rfc3339(finished),
                "commits": [{"sha": "c0ffee", "committed_at": rfc3339(started - 3_600_000)}]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    finished
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_7_failed_verification_rolls_back_automatically_and_dora_follows() {
    let dir = tempfile::tempdir().unwrap();
    let (hook, hook_addr) = Hook::start().await;
    let c = start(dir.path(), hook_addr, "auto").await;
    // A good version first (the one to go back to), then the bad one. The hostile version
    // string must reach the hook as data only.
    let hostile = "2.0.0$(touch /tmp/redline-pwned);../../etc";
    post(
        &c,
        "/api/v1/deployments",
        &json!({"id": "v1", "service": "checkout", "environment": "prod", "version": "1.9.0",
                "status": "success", "started_at": rfc3339(otlp::now_ms() - 3_600_000),
                "finished_at": rfc3339(otlp::now_ms() - 3_500_000)}),
    )
    .await;
    let finished = deploy_with_history(&c, "v2", hostile, 2_000, 9.0).await;

    // The verification fails.
    let analysis = wait_get(&c, "/api/v1/deployments/v2/analysis", Some(9.0), |v| {
        v["verdict"] == "fail"
    })
    .await;
    let analyses = analysis["analyses"].as_array().unwrap();
    assert!(analyses.len() >= 2, "{analysis:#}");
    let last = analyses.last().unwrap();
    assert_eq!(last["outcome"], "fail");
    assert!(last["p_value"].as_f64().unwrap() < 0.02);
    assert!(last["baseline"]["count"].as_u64().unwrap() >= 5);

    // The rollback ran: both hooks, once.
    let rollbacks = wait_get(&c, "/api/v1/rollbacks", Some(9.0), |v| {
        v.as_array()
            .is_some_and(|a| a.iter().any(|r| r["state"] == "succeeded"))
    })
    .await;
    let list = rollbacks.as_array().unwrap();
    assert_eq!(
        list.len(),
        1,
        "one rollback for the deployment: {rollbacks:#}"
    );
    let rb = &list[0];
    assert_eq!(rb["deployment_id"], "v2");
    assert_eq!(rb["previous_version"], "1.9.0");
    assert_eq!(rb["mode"], "auto");
    let hooks = rb["hooks"].as_array().unwrap();
    assert!(hooks.iter().any(|h| h["kind"] == "exec"
        && h["exit_status"] == 0
        && h["output"].as_str().unwrap().contains("rolled back")));
    assert!(hooks.iter().any(|h| h["kind"] == "webhook"));
    let out = dir.path().join("hook-out");
    let env = std::fs::read_to_string(out.join("env.0")).unwrap();
    assert!(env.contains(&format!("REDLINE_VERSION={hostile}")), "{env}");
    assert!(env.contains("REDLINE_SERVICE=checkout"));
    assert!(env.contains("REDLINE_PREVIOUS_VERSION=1.9.0"));
    assert!(env.contains("REDLINE_DEPLOYMENT_ID=v2"));
    assert!(!env.contains("CARGO"), "a clean environment: {env}");
    let argv = std::fs::read_to_string(out.join("argv.0")).unwrap();
    assert_eq!(
        argv.trim(),
        "--fixed-flag",
        "argv is the configured one, nothing spliced in"
    );
    let stdin: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("stdin.0")).unwrap()).unwrap();
    assert_eq!(stdin["deployment_version"], hostile);
    assert!(!Path::new("/tmp/redline-pwned").exists());
    // The webhook: the same JSON, signed.
    let deadline = Instant::now() + Duration::from_secs(20);
    while hook.received.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "webhook never arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    {
        let received = hook.received.lock().unwrap();
        let (headers, body) = (&received[0].headers, &received[0].body);
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"t0ps3cret");
        let expected: String = ring::hmac::sign(&key, body)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            headers["x-redline-signature"].to_str().unwrap(),
            format!("sha256={expected}")
        );
        let v: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["kind"], "redline.rollback");
        assert_eq!(v["deployment_id"], "v2");
        assert_eq!(v["deployment_version"], hostile);
    }

    // The rollback is a deployment with rollback_of set.
    let rollback_id = rb["rollback_deployment_id"].as_str().unwrap().to_owned();
    let rollback = c.get(&format!("/api/v1/deployments/{rollback_id}")).await;
    assert_eq!(rollback["rollback_of"], "v2");
    assert_eq!(rollback["version"], "1.9.0");

    // The incident opened by the alert links the deployment; the errors stop, it resolves.
    let incidents = wait_get(&c, "/api/v1/incidents", Some(9.0), |v| {
        v.as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let incident = &incidents[0];
    assert_eq!(incident["deployments"][0]["deployment_id"], "v2");
    let id = incident["id"].as_i64().unwrap();
    wait_get(&c, &format!("/api/v1/incidents/{id}"), Some(0.0), |v| {
        v["status"] == "resolved"
    })
    .await;
    let timeline = c.get(&format!("/api/v1/incidents/{id}/timeline")).await;
    let kinds: Vec<&str> = timeline
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"rollback"), "{kinds:?}");
    let deployment_timeline = c.get("/api/v1/deployments/v2/timeline").await;
    let dkinds: Vec<&str> = deployment_timeline
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        dkinds.contains(&"verification") && dkinds.contains(&"rollback"),
        "{dkinds:?}"
    );
    // Each analysis on the timeline carries its statistics.
    let analysis_entry = deployment_timeline
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["refs"]["indicator"] == "errors")
        .unwrap();
    for r in ["baseline", "analysis", "p_value", "effect"] {
        assert!(analysis_entry["refs"][r].is_string(), "{analysis_entry:#}");
    }

    // DORA: v2 failed and recovered when its rollback finished.
    let dora = c
        .get("/api/v1/dora?service=checkout&environment=prod")
        .await;
    assert_eq!(
        dora["change_fail_rate"]["failed_deployments"], 1,
        "{dora:#}"
    );
    let recovery = dora["failed_deployment_recovery_time"]["median_seconds"]
        .as_f64()
        .unwrap();
    let expected = (ms(&rollback["finished_at"]) - finished) as f64 / 1000.0;
    assert!(
        (recovery - expected).abs() < 0.01,
        "{recovery} vs {expected}"
    );

    // The post-mortem, in all three formats, tells the story in order.
    let pm = c
        .get(&format!("/api/v1/incidents/{id}/postmortem?format=json"))
        .await;
    assert_eq!(pm["schema"], "redline.postmortem/v1");
    assert!(
        pm["chart"].is_object(),
        "no chart: {}",
        c.get("/api/v1/rules").await
    );
    let entries = pm["timeline"].as_array().unwrap();
    let at_of = |pred: &dyn Fn(&Value) -> bool| -> i64 {
        entries
            .iter()
            .find(|e| pred(e))
            .map(|e| ms(&e["at"]))
            .unwrap_or_else(|| panic!("missing entry in {entries:#?}"))
    };
    let verdict_at = at_of(&|e| e["kind"] == "verification" && e["refs"]["verdict"] == "fail");
    let rollback_at = at_of(&|e| e["kind"] == "rollback" && e["refs"]["state"] == "succeeded");
    let opened_at = at_of(&|e| e["kind"] == "opened");
    let resolved_at = at_of(&|e| e["kind"] == "resolved");
    assert!(
        finished <= verdict_at && verdict_at <= rollback_at,
        "{finished} {verdict_at} {rollback_at}"
    );
    assert!(opened_at <= resolved_at && rollback_at <= resolved_at);
    let deployments = pm["deployments"].as_array().unwrap();
    let cause = deployments.iter().find(|d| d["id"] == "v2").unwrap();
    assert_eq!(cause["role"], "cause");
    assert_eq!(cause["verdict"], "fail");
    assert!(!cause["analyses"].as_array().unwrap().is_empty());
    assert!(
        deployments
            .iter()
            .any(|d| d["rollback_of"] == "v2" && d["role"] == "fix"),
        "{deployments:#?}"
    );
    assert_eq!(
        pm["durations"]["failed_deployment_recovery_seconds"],
        dora["failed_deployment_recovery_time"]["median_seconds"]
    );
    let moments: Vec<Option<i64>> = pm["key_moments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["at"]
                .as_str()
                .map(|t| t.parse::<jiff::Timestamp>().unwrap().as_millisecond())
        })
        .collect();
    let known: Vec<i64> = moments.iter().flatten().copied().collect();
    assert!(
        known.windows(2).all(|w| w[0] <= w[1]),
        "key moments in order: {moments:?}"
    );
    let url = format!("http://{}", c.http);
    let md_file = dir.path().join("pm.md");
    let (ok, out) = cli(
        &url,
        &[
            "export",
            "postmortem",
            &id.to_string(),
            "--format",
            "markdown",
            "--output",
            md_file.to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}");
    let md = std::fs::read_to_string(&md_file).unwrap();
    let pos = |needle: &str| {
        md.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing from the Markdown:\n{md}"))
    };
    assert!(pos("## Key moments") < pos("## Timeline"));
    assert!(
        pos("verification verdict: fail") < pos("rollback 1 succeeded"),
        "{md}"
    );
    let (ok, html) = cli(
        &url,
        &["export", "postmortem", &id.to_string(), "--format", "html"],
    );
    assert!(ok);
    assert!(
        html.starts_with("<!DOCTYPE html>") && html.contains("<svg"),
        "{}",
        &html[..200.min(html.len())]
    );
    assert!(
        html.find("verification verdict: fail").unwrap()
            < html.find("rollback 1 succeeded").unwrap()
    );
    // The real export passes the same WCAG 2.1 AA check as the sample (axe-core in Chromium,
    // installed by .ci/run).
    let html_file = dir.path().join("pm.html");
    std::fs::write(&html_file, &html).unwrap();
    let a11y = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/a11y");
    let check = std::process::Command::new("node")
        .arg(a11y.join("check.js"))
        .arg(&html_file)
        .output()
        .expect("node (run .ci/run to install the a11y check)");
    assert!(
        check.status.success(),
        "axe-core found problems in the exported post-mortem:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let (status, _) = c
        .get_with_status(&format!("/api/v1/incidents/{id}/postmortem?format=pdf"))
        .await;
    assert_eq!(status, 400);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_7_an_incident_linked_to_a_recent_deployment_triggers_the_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let (_hook, hook_addr) = Hook::start().await;
    let c = start(dir.path(), hook_addr, "auto").await;
    let now = otlp::now_ms();
    let (status, body) = post(
        &c,
        "/api/v1/deployments",
        &json!({"id": "b1", "service": "billing", "environment": "prod", "version": "3.1",
                "status": "success", "started_at": rfc3339(now - 120_000), "finished_at": rfc3339(now - 60_000)}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // Billing's errors cross the rule's threshold: the alert opens an incident that suspects
    // b1, and that link alone triggers the rollback.
    let deadline = Instant::now() + Duration::from_secs(40);
    let rollback = loop {
        send_for(&c, "billing", &[(otlp::now_ms(), 9.0)]).await;
        let list = c.get("/api/v1/rollbacks?service=billing").await;
        if let Some(r) = list
            .as_array()
            .and_then(|a| a.iter().find(|r| r["state"] == "succeeded"))
        {
            break r.clone();
        }
        assert!(Instant::now() < deadline, "{list:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(rollback["deployment_id"], "b1");
    assert_eq!(rollback["trigger"]["kind"], "incident");
    assert!(rollback["incident_id"].is_i64());
    assert!(c.get("/api/v1/deployments/b1/analysis").await["verified"] == false);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_7_approval_mode_runs_nothing_until_approved() {
    let dir = tempfile::tempdir().unwrap();
    let (_hook, hook_addr) = Hook::start().await;
    let c = start(dir.path(), hook_addr, "approval").await;
    let url = format!("http://{}", c.http);
    deploy_with_history(&c, "v7", "7.0", 2_000, 9.0).await;
    let rollbacks = wait_get(&c, "/api/v1/rollbacks", None, |v| {
        v.as_array()
            .is_some_and(|a| a.iter().any(|r| r["state"] == "awaiting_approval"))
    })
    .await;
    let id = rollbacks[0]["id"].as_i64().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        std::fs::read_dir(dir.path().join("hook-out"))
            .unwrap()
            .count(),
        0,
        "nothing ran before approval"
    );
    // A maintenance block refuses the approval; lifting it lets it through.
    let (ok, out) = cli(
        &url,
        &[
            "rollback",
            "block",
            "--until",
            &rfc3339(otlp::now_ms() + 600_000),
            "--reason",
            "db migration",
            "--actor",
            "ann",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = cli(
        &url,
        &["rollback", "approve", &id.to_string(), "--actor", "ann"],
    );
    assert!(!ok && out.contains("blocked"), "{out}");
    let (ok, out) = cli(&url, &["rollback", "unblock"]);
    assert!(ok, "{out}");
    let (ok, out) = cli(
        &url,
        &["rollback", "approve", &id.to_string(), "--actor", "ann"],
    );
    assert!(ok, "{out}");
    let done = wait_get(&c, &format!("/api/v1/rollbacks/{id}"), None, |v| {
        v["state"] == "succeeded"
    })
    .await;
    assert_eq!(done["approved_by"], "user:ann");
    assert!(dir.path().join("hook-out/env.0").exists());
    // Approving again is a conflict.
    let (status, _) = post(&c, &format!("/api/v1/rollbacks/{id}/approve"), &json!({})).await;
    assert_eq!(status, 409);
    let (ok, out) = cli(&url, &["rollback", "list"]);
    assert!(ok && out.contains("succeeded"), "{out}");
    c.stop().await;
}
