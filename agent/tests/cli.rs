//! Black-box tests of `redline-agent validate`: exit codes and messages that name the file,
//! the key and the problem.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

fn validate(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_redline-agent"))
        .args(["validate", "--config"])
        .arg(path)
        .output()
        .unwrap()
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn good_file_prints_ok() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "agent.yaml",
        "exporter:\n  endpoint: http://collector:14317\n  timeout: 5s\nhost_metrics:\n  interval: 15s\n",
    );
    let out = validate(&p);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

#[test]
fn empty_file_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "empty.yaml", "");
    assert!(validate(&p).status.success());
}

fn assert_bad(text: &str, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "bad.yaml", text);
    let out = validate(&p);
    assert_eq!(out.status.code(), Some(2), "{text}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml"), "file not named: {err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in: {err}");
    }
}

#[test]
fn unknown_key_is_named() {
    assert_bad(
        "exporter:\n  endpiont: http://x:1\n",
        &["endpiont", "unknown field"],
    );
    assert_bad("colector: {}\n", &["colector"]);
}

#[test]
fn bad_duration_is_named() {
    assert_bad(
        "host_metrics:\n  interval: ten seconds\n",
        &["host_metrics.interval", "ten seconds"],
    );
    assert_bad(
        "host_metrics:\n  interval: 0s\n",
        &["host_metrics.interval", "more than 0"],
    );
}

#[test]
fn bad_url_is_named() {
    assert_bad(
        "exporter:\n  endpoint: \"::nope\"\n",
        &["exporter.endpoint"],
    );
}

#[test]
fn missing_file_exits_2() {
    let out = validate(Path::new("/nonexistent/redline.yaml"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/redline.yaml"));
}

#[test]
fn bad_flag_value_exits_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_redline-agent"))
        .args(["run", "--interval", "0s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--interval"));
}

#[test]
fn shipped_example_validates() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("redline-agent.example.yaml");
    let out = validate(&p);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn deprecated_keys_are_warned_about_but_valid() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "old.yaml",
        "exporter:\n  queue_capacity: 256\n  queue_max_bytes: 16MiB\n  retry_max_elapsed: 5m\n",
    );
    let out = validate(&p);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "exporter.queue_capacity",
        "exporter.queue_max_bytes",
        "exporter.retry_max_elapsed",
    ] {
        assert!(
            err.contains(key) && err.contains("deprecated"),
            "{key}: {err}"
        );
    }
}

#[test]
fn credential_files_are_read_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(&dir, "token", "\n");
    assert_bad(
        &format!("exporter:\n  token_file: {}\n", empty.display()),
        &["exporter.token_file", "empty"],
    );
    assert_bad(
        "exporter:\n  endpoint: https://c:14317\n  tls:\n    ca_file: /nonexistent/ca.pem\n",
        &["exporter.tls.ca_file", "/nonexistent/ca.pem", "cannot read"],
    );
    assert_bad(
        "exporter:\n  endpoint: https://c:14317\n",
        &["exporter.tls.ca_file", "https"],
    );
    assert_bad(
        "relay:\n  tls:\n    cert_file: /nonexistent/relay.pem\n    key_file: /nonexistent/k.pem\n",
        &["relay.tls.cert_file", "/nonexistent/relay.pem"],
    );
}
