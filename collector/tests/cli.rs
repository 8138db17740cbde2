//! Black-box tests of the `redline-collector` binary: `validate`, and `run` stopped by SIGTERM.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use redline_testkit::{Guard, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_redline-collector");

fn validate(yaml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("collector.yaml");
    std::fs::write(&path, yaml).unwrap();
    let out = Command::new(BIN)
        .args(["validate", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn validate_accepts_good_files_and_names_the_key_in_bad_ones() {
    let (ok, text) = validate("data_dir: /tmp/x\nretention: 7d\nlisten:\n  http: 127.0.0.1:9190\n");
    assert!(ok, "{text}");
    for (yaml, needle) in [
        ("retention: 7d\nlisen: {}\n", "unknown field `lisen`"),
        ("retention: soon\n", "retention"),
        ("listen:\n  otlp_grpc: everywhere\n", "listen.otlp_grpc"),
        ("limits: {max_request_bytes: -1}\n", "max_request_bytes"),
    ] {
        let (ok, text) = validate(yaml);
        assert!(!ok, "{yaml} was accepted");
        assert!(text.contains(needle), "{yaml}: {text}");
        assert!(text.contains("collector.yaml"), "{text}");
    }
    // The routing file named by `notify.config_file` is validated too, with its position.
    let dir = tempfile::tempdir().unwrap();
    let routing = dir.path().join("alertmanager.yml");
    std::fs::write(
        &routing,
        "route:\n  receiver: nobody\nreceivers:\n  - name: ops\n",
    )
    .unwrap();
    let (ok, text) = validate(&format!("notify:\n  config_file: {}\n", routing.display()));
    assert!(!ok, "{text}");
    assert!(
        text.contains("alertmanager.yml:2:") && text.contains("nobody"),
        "{text}"
    );
    let out = Command::new(BIN)
        .args(["validate", "--config", "/nonexistent/collector.yaml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/collector.yaml"));
}

#[test]
fn run_serves_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let http = free_port();
    let mut child = Command::new(BIN)
        .args(["run", "--data-dir"])
        .arg(dir.path())
        .args(["--otlp-grpc-listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--otlp-http-listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--http-listen", &format!("127.0.0.1:{http}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(true) = http_get_ok(&format!("http://127.0.0.1:{http}/readyz")) {
            break;
        }
        assert!(Instant::now() < deadline, "collector did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    assert!(dir.path().join("redline.db").exists());
}

fn spawn_collector(dir: &std::path::Path, config: Option<&str>) -> (Guard, u16, u16) {
    let (grpc, http) = (free_port(), free_port());
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--data-dir"]).arg(dir);
    if let Some(yaml) = config {
        let path = dir.join("collector.yaml");
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(&path, yaml).unwrap();
        cmd.arg("--config").arg(path);
    }
    let child = cmd
        .args(["--otlp-grpc-listen", &format!("127.0.0.1:{grpc}")])
        .args(["--otlp-http-listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--http-listen", &format!("127.0.0.1:{http}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(
        http_get_ok(&format!("http://127.0.0.1:{http}/readyz")),
        Ok(true)
    ) {
        assert!(Instant::now() < deadline, "collector did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    (Guard(child), grpc, http)
}

/// The collector's own spans, exported over OTLP to a second collector, are readable there.
#[test]
fn own_spans_are_exported_over_otlp_when_configured() {
    let sink_dir = tempfile::tempdir().unwrap();
    let (_sink, sink_grpc, sink_http) = spawn_collector(sink_dir.path(), None);
    let dir = tempfile::tempdir().unwrap();
    let config = format!("telemetry:\n  otlp_traces_endpoint: http://127.0.0.1:{sink_grpc}\n");
    let (_collector, _, http) = spawn_collector(dir.path(), Some(&config));
    // A query produces a `query_instant` span.
    http_get(&format!("http://127.0.0.1:{http}/api/v1/query?query=up"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = http_get(&format!("http://127.0.0.1:{sink_http}/api/services"));
        if body.contains("redline-collector") {
            break;
        }
        assert!(Instant::now() < deadline, "no spans arrived: {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A tiny blocking HTTP GET over std's TcpStream, so these tests need no async runtime.
/// Returns the body; connection errors give an empty body.
fn http_get(url: &str) -> String {
    http_get_status(url)
        .map(|(_, body)| body)
        .unwrap_or_default()
}

fn http_get_ok(url: &str) -> std::io::Result<bool> {
    http_get_status(url).map(|(ok, _)| ok)
}

fn http_get_status(url: &str) -> std::io::Result<(bool, String)> {
    use std::io::{Read, Write};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut s = std::net::TcpStream::connect(host)?;
    write!(
        s,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let ok = buf.starts_with("HTTP/1.1 200");
    Ok((
        ok,
        buf.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default(),
    ))
}

/// SIGHUP reloads rule files in the running binary.
#[test]
fn sighup_reloads_rules() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("a.yml"),
        "groups:\n  - name: a\n    rules:\n      - record: one\n        expr: vector(1)\n",
    )
    .unwrap();
    let config = format!("rules:\n  paths: [{}]\n", rules.display());
    let (child, _, http) = spawn_collector(&dir.path().join("data"), Some(&config));
    let names = || http_get(&format!("http://127.0.0.1:{http}/api/v1/rules"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !names().contains("\"one\"") {
        assert!(Instant::now() < deadline, "rules not loaded: {}", names());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::write(
        rules.join("a.yml"),
        "groups:\n  - name: a\n    rules:\n      - record: two\n        expr: vector(2)\n",
    )
    .unwrap();
    let status = Command::new("kill")
        .args(["-HUP", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !names().contains("\"two\"") {
        assert!(Instant::now() < deadline, "rules not reloaded: {}", names());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A blocking HTTP request with a body; returns the status code and the body.
fn http_request(method: &str, url: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "{method} /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let status = buf
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or_default();
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The value of an unlabelled gauge in a `/metrics` page.
fn gauge(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// SIGHUP (what `systemctl reload` sends) re-reads the configuration file: rule paths and
/// limits apply at once, a changed setting that needs a restart is named and keeps its
/// running value, a broken file changes nothing, and a firing alert keeps its state through
/// every reload.
#[test]
fn sighup_reloads_the_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    for d in [&first, &second] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(
        first.join("a.yml"),
        "groups:\n  - name: a\n    interval: 1s\n    rules:\n      - alert: AlwaysOn\n        expr: vector(1)\n      - record: rl_one\n        expr: vector(1)\n      - record: rl_two\n        expr: vector(2)\n",
    )
    .unwrap();
    std::fs::write(
        second.join("b.yml"),
        "groups:\n  - name: b\n    interval: 1s\n    rules:\n      - record: rl_three\n        expr: vector(3)\n",
    )
    .unwrap();
    let config = |paths: &str, extra: &str| {
        format!("rules:\n  paths: [{paths}]\nlimits:\n  query_max_series: 100\n{extra}")
    };
    let data = dir.path().join("data");
    let (child, _, http) = spawn_collector(&data, Some(&config(&first.display().to_string(), "")));
    let config_path = data.join("collector.yaml");
    let base = format!("http://127.0.0.1:{http}");
    let wait_for = |what: &str, check: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let alerts = || http_get(&format!("{base}/api/v1/alerts"));
    let active_at = || -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(&alerts()).ok()?;
        let alert = v["data"]["alerts"].as_array()?.first()?.clone();
        (alert["state"] == "firing").then(|| alert["activeAt"].as_str().unwrap().to_owned())
    };
    wait_for("the alert to fire", &|| active_at().is_some());
    let fired_at = active_at().unwrap();
    let both = format!("{base}/api/v1/query?query=%7B__name__%3D~%22rl_one%7Crl_two%22%7D");
    wait_for("both recorded series", &|| {
        http_get(&both).matches("\"__name__\"").count() == 2
    });
    let hup = || {
        let status = Command::new("kill")
            .args(["-HUP", &child.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };

    // A second rule directory, a query limit of one series, and a detection threshold (which
    // needs a restart).
    let paths = format!("{}, {}", first.display(), second.display());
    std::fs::write(
        &config_path,
        config(&paths, "  query_max_series: 1\ndetect:\n  threshold: 0.5\n")
            .replace("  query_max_series: 100\n", ""),
    )
    .unwrap();
    hup();
    let rules = || http_get(&format!("{base}/api/v1/rules"));
    wait_for("the second rule file", &|| rules().contains("rl_three"));
    let metrics = || http_get(&format!("{base}/metrics"));
    wait_for("the restart-required gauge", &|| {
        gauge(&metrics(), "redline_collector_config_restart_required") == Some(1.0)
    });
    assert_eq!(
        gauge(
            &metrics(),
            "redline_collector_config_last_reload_successful"
        ),
        Some(1.0)
    );
    let (status, body) = http_request("GET", &both);
    assert_eq!(status, 422, "the lowered query limit applies: {body}");
    assert!(body.contains("more than the limit of 1"), "{body}");
    assert_eq!(
        active_at(),
        Some(fired_at.clone()),
        "the alert kept its state"
    );

    // The same file again through the API: nothing more applied, the restart still pending.
    let (status, body) = http_request("POST", &format!("{base}/-/reload"));
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("changed, in force after a restart: detect") && !body.contains("applied"),
        "{body}"
    );

    // A broken file changes nothing and says where it is broken.
    std::fs::write(&config_path, "rules:\n  paths: []\n  bogus: 1\n").unwrap();
    let (status, body) = http_request("POST", &format!("{base}/-/reload"));
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("collector.yaml") && body.contains("bogus"),
        "the error names the file and the key: {body}"
    );
    assert_eq!(
        gauge(
            &metrics(),
            "redline_collector_config_last_reload_successful"
        ),
        Some(0.0)
    );
    assert!(rules().contains("rl_three"), "the rules in force stay");
    assert_eq!(active_at(), Some(fired_at), "the alert kept its state");
}
