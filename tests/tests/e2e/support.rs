//! What every end-to-end test needs: a collector (and an agent) running in this process on
//! `127.0.0.1:0` with a temporary data directory, HTTP helpers for the API, bounded polling,
//! and the external tools the tests drive (the OpenTelemetry Python SDK scripts in
//! `tests/python/`, and `promtool`).
//!
//! External tools: when one is missing, a test prints a note and returns early on a developer
//! machine, but fails when `CI` is set, so CI cannot pass by skipping. `.ci/run` installs both.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long polling helpers wait for data to show up before failing. Generous: CI has two
/// cores shared by the build, the agent, the collector and Python.
pub const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(30);

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// A missing tool: fails in CI, otherwise prints why the test is returning early.
fn missing(what: &str) -> anyhow::Result<()> {
    if in_ci() {
        bail!("{what} (CI is set, so this is a failure; .ci/run installs it)");
    }
    eprintln!("note: {what}; skipping this check (run .ci/run to install it)");
    Ok(())
}

/// A collector running in this process until `stop` (or until the test's runtime ends).
pub struct TestCollector {
    pub otlp_grpc: SocketAddr,
    pub otlp_http: SocketAddr,
    pub http: SocketAddr,
    /// Completing this starts the collector's graceful shutdown; `run` holds the receiver.
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
    /// The data directory; removed when the collector is dropped.
    _data: tempfile::TempDir,
}

impl TestCollector {
    pub async fn start() -> anyhow::Result<TestCollector> {
        let data = tempfile::tempdir().context("creating the data directory")?;
        let loopback: SocketAddr = "127.0.0.1:0".parse()?;
        let config = redline_collector::config::Config {
            data_dir: data.path().to_path_buf(),
            otlp_grpc_listen: loopback,
            otlp_http_listen: loopback,
            http_listen: loopback,
            ..Default::default()
        };
        let collector = redline_collector::bind(config).await?;
        let (stop, stopped) = oneshot::channel::<()>();
        let c = TestCollector {
            otlp_grpc: collector.otlp_grpc_addr(),
            otlp_http: collector.otlp_http_addr(),
            http: collector.http_addr(),
            stop: Some(stop),
            task: tokio::spawn(collector.run(async {
                let _ = stopped.await;
            })),
            _data: data,
        };
        Ok(c)
    }

    /// `http://ADDR` of the OTLP/gRPC receiver.
    pub fn otlp_grpc_url(&self) -> String {
        format!("http://{}", self.otlp_grpc)
    }

    /// `http://ADDR` of the OTLP/HTTP receiver (signal paths are `/v1/<signal>`).
    pub fn otlp_http_url(&self) -> String {
        format!("http://{}", self.otlp_http)
    }

    /// A URL of the HTTP API.
    pub fn api(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.http, path_and_query)
    }

    /// Graceful stop; returns what `run` returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.context("collector task panicked")?
    }
}

/// The hostname the agent reports (`host.name`), as the kernel has it.
pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn client() -> reqwest::Client {
    // The workspace's reqwest has rustls without a built-in provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

/// GETs a URL and returns its body, failing on a non-2xx status.
pub async fn get_text(url: &str) -> anyhow::Result<String> {
    let response = client()
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .with_context(|| format!("GET {url}: body"))?;
    if !status.is_success() {
        bail!("GET {url}: {status}: {body}");
    }
    Ok(body)
}

/// GETs a URL with query parameters (encoded here) and parses the JSON body.
pub async fn get_json(url: &str, query: &[(&str, &str)]) -> anyhow::Result<Value> {
    let full = reqwest::Url::parse_with_params(url, query).with_context(|| format!("URL {url}"))?;
    let response = client()
        .get(full)
        .send()
        .await
        .with_context(|| format!("GET {url} {query:?}"))?;
    let status = response.status();
    let body = response.text().await?;
    if !status.is_success() {
        bail!("GET {url} {query:?}: {status}: {body}");
    }
    serde_json::from_str(&body).with_context(|| format!("GET {url}: not JSON: {body}"))
}

/// A Prometheus-shaped API call: checks `status == "success"` and returns `data`.
pub async fn prom(url: &str, query: &[(&str, &str)]) -> anyhow::Result<Value> {
    let body = get_json(url, query).await?;
    if body["status"] != "success" {
        bail!("GET {url} {query:?}: not a success: {body}");
    }
    Ok(body["data"].clone())
}

/// Polls `check` every 250 ms until it returns `Some`, for at most `timeout`. `check` returns
/// `Err` for a transient problem (kept as the reason if time runs out) and `Ok(None)` for
/// "not yet". This is a bounded wait for data to arrive, not a timing assertion.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::from("no result yet");
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = format!("{e:#}"),
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{what}: nothing after {timeout:?} (last: {last})");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The Python interpreter that has the OpenTelemetry SDK: `$REDLINE_PYTHON`, else
/// `.venv/bin/python` at the workspace root. `Ok(None)` when absent outside CI.
pub fn python() -> anyhow::Result<Option<PathBuf>> {
    let candidate = match std::env::var_os("REDLINE_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => workspace_root().join(".venv/bin/python"),
    };
    if candidate.is_file() {
        return Ok(Some(candidate));
    }
    missing(&format!(
        "no Python with the OpenTelemetry SDK at {} (set REDLINE_PYTHON)",
        candidate.display()
    ))?;
    Ok(None)
}

/// Runs `tests/python/<script>` with `args` and returns its trimmed stdout; fails with its
/// stderr when it exits non-zero or runs for more than 60 s.
pub async fn run_python(python: &Path, script: &str, args: &[&str]) -> anyhow::Result<String> {
    let path = workspace_root().join("tests/python").join(script);
    let mut command = tokio::process::Command::new(python);
    command
        .arg(&path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .with_context(|| format!("{script} {args:?} ran for more than 60 s"))?
        .with_context(|| format!("starting {} {}", python.display(), path.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!(
            "{script} {args:?} failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
            output.status
        );
    }
    Ok(stdout)
}

/// `promtool` on PATH. `Ok(None)` when absent outside CI.
pub fn promtool() -> anyhow::Result<Option<PathBuf>> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("promtool"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        missing("promtool is not on PATH (Debian package prometheus)")?;
    }
    Ok(found)
}

/// Pipes an exposition into `promtool check metrics` and fails unless it exits 0 (1 means
/// invalid, 3 means lint findings: both are failures here).
pub async fn promtool_check(promtool: &Path, what: &str, exposition: &str) -> anyhow::Result<()> {
    let mut child = tokio::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting promtool")?;
    let mut stdin = child.stdin.take().context("promtool stdin")?;
    stdin.write_all(exposition.as_bytes()).await?;
    drop(stdin);
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .context("promtool ran for more than 30 s")??;
    if !output.status.success() {
        bail!(
            "promtool check metrics on {what} exited {}:\n{}{}\n--- exposition ---\n{exposition}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
    Ok(())
}
