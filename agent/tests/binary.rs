//! Black-box tests of `redline-agent run`: serves `/metrics` with host metrics (valid for
//! `promtool check metrics` when promtool is installed), reloads on SIGHUP and exits 0 on
//! SIGTERM.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redline_testkit::{Guard, free_port};

/// Minimal HTTP/1.0 GET, so the test needs no async runtime.
fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200").then(|| body.to_string())
}

struct Agent {
    child: Guard,
}

fn start(metrics_port: u16, extra_config: &str) -> (Agent, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("agent.yaml");
    // The collector port is closed: export fails and retries, which must not block anything.
    let dead = free_port();
    std::fs::write(
        &cfg,
        format!(
            "exporter:\n  endpoint: http://127.0.0.1:{dead}\n  drain_timeout: 1s\n  queue:\n    directory: {}\n{extra_config}",
            dir.path().join("spool").display()
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_redline-agent"))
        .args(["run", "--config"])
        .arg(&cfg)
        .args(["--listen", &format!("127.0.0.1:{metrics_port}")])
        .args([
            "--otlp-grpc-listen",
            "127.0.0.1:0",
            "--otlp-http-listen",
            "127.0.0.1:0",
        ])
        .args(["--interval", "1s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (
        Agent {
            child: Guard(child),
        },
        dir,
    )
}

/// Polls `/metrics` until it contains `needle`.
fn scrape_until(addr: SocketAddr, needle: &str, within: Duration) -> String {
    let until = Instant::now() + within;
    loop {
        if let Some(body) = http_get(addr, "/metrics")
            && body.contains(needle)
        {
            return body;
        }
        assert!(Instant::now() < until, "/metrics never contained {needle}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn sigterm(child: &Child) {
    signal(child, "-TERM");
}

/// Waits for the agent to exit and returns its exit code and stderr.
fn wait_exit(agent: &mut Agent) -> (Option<i32>, String) {
    let started = Instant::now();
    let status = loop {
        if let Some(s) = agent.child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    agent
        .child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code(), stderr)
}

#[test]
fn serves_host_metrics_and_exits_0_on_sigterm() {
    let port = free_port();
    let (mut agent, _dir) = start(port, "");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // The second cycle adds CPU utilization.
    let body = scrape_until(
        addr,
        "system_cpu_utilization_ratio{",
        Duration::from_secs(15),
    );
    for needle in [
        "# TYPE system_cpu_time_seconds_total counter",
        "system_cpu_time_seconds_total{cpu=\"cpu0\",state=\"user\"}",
        "system_memory_usage_bytes{state=\"used\"}",
        "system_cpu_load_average_1m ",
        "system_network_io_bytes_total{device=\"lo\",direction=\"receive\"}",
        "system_processes_count{status=\"running\"}",
        "system_uptime_seconds ",
        "target_info{",
        "redline_agent_samples_collected_total ",
        "redline_agent_spool_max_bytes 268435456",
    ] {
        assert!(body.contains(needle), "missing {needle:?}");
    }
    assert_eq!(http_get(addr, "/healthz").as_deref(), Some("ok\n"));

    sigterm(&agent.child.0);
    let (code, stderr) = wait_exit(&mut agent);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert!(stderr.contains("SIGTERM"), "{stderr}");
}

#[test]
fn metrics_pass_promtool() {
    let promtool = Command::new("promtool").arg("--version").output();
    if promtool.is_err() {
        println!("NOTE: promtool not installed; skipping the `promtool check metrics` test");
        return;
    }
    let port = free_port();
    let (_agent, _dir) = start(port, "");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let body = scrape_until(
        addr,
        "system_cpu_utilization_ratio{",
        Duration::from_secs(15),
    );
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "promtool findings:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sighup_rereads_the_token_and_keeps_running() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "first").unwrap();
    let (mut agent, _dir) = start(port, &format!("  token_file: {}\n", token.display()));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    scrape_until(
        addr,
        "redline_agent_samples_collected_total ",
        Duration::from_secs(15),
    );
    std::fs::write(&token, "second").unwrap();
    signal(&agent.child.0, "-HUP");
    scrape_until(
        addr,
        r#"redline_agent_reloads_total{result="success"} 1"#,
        Duration::from_secs(10),
    );
    sigterm(&agent.child.0);
    let (code, stderr) = wait_exit(&mut agent);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert!(stderr.contains("SIGHUP"), "{stderr}");
}
