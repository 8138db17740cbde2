//! Black-box tests of the `redline-collector` binary: `validate`, and `run` stopped by SIGTERM.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    let out = Command::new(BIN)
        .args(["validate", "--config", "/nonexistent/collector.yaml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/collector.yaml"));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
        if let Ok(true) = reqwest::blocking_get(&format!("http://127.0.0.1:{http}/readyz")) {
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

mod reqwest {
    /// A tiny blocking GET over std's TcpStream, so this test needs no async runtime.
    pub fn blocking_get(url: &str) -> std::io::Result<bool> {
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
        Ok(buf.starts_with("HTTP/1.1 200"))
    }
}
