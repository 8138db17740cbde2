//! The agent under test: `TestAgent` runs `redline_agent` in this process with every listener
//! on `127.0.0.1:0` and a 1 s collection interval, exporting to a `TestCollector`.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// An agent running in this process, reporting to a collector every second.
pub struct TestAgent {
    pub metrics: SocketAddr,
    pub otlp_grpc: SocketAddr,
    pub otlp_http: SocketAddr,
    /// Completing this starts the agent's graceful shutdown; `run` holds the receiver.
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
    /// The agent's spool directory; removed when the agent is dropped.
    _spool: tempfile::TempDir,
}

impl TestAgent {
    /// Starts an agent with every listener on `127.0.0.1:0`, a 1 s interval, exporting to
    /// `collector_grpc` (`http://ADDR`).
    pub async fn start(collector_grpc: &str) -> anyhow::Result<TestAgent> {
        let spool = tempfile::tempdir()?;
        let config = agent_config(collector_grpc, spool.path())?;
        let agent = redline_agent::bind(config).await?;
        let (stop, stopped) = oneshot::channel::<()>();
        Ok(TestAgent {
            metrics: agent.metrics_addr(),
            otlp_grpc: agent.otlp_grpc_addr(),
            otlp_http: agent.otlp_http_addr(),
            stop: Some(stop),
            task: tokio::spawn(agent.run(async {
                let _ = stopped.await;
            })),
            _spool: spool,
        })
    }

    pub fn otlp_grpc_url(&self) -> String {
        format!("http://{}", self.otlp_grpc)
    }

    pub fn otlp_http_url(&self) -> String {
        format!("http://{}", self.otlp_http)
    }

    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.metrics)
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.context("agent task panicked")?
    }
}

/// The agent's configuration for tests, written as YAML so that it goes through the same
/// parsing and validation as a user's file: 1 s interval, every listener on `127.0.0.1:0`,
/// short retry delays so a test never waits long for a retried export.
fn agent_config(
    collector_grpc: &str,
    spool: &std::path::Path,
) -> anyhow::Result<redline_agent::config::Config> {
    let yaml = format!(
        "exporter:\n  endpoint: {collector_grpc}\n  protocol: grpc\n  retry_initial_backoff: 100ms\n  retry_max_backoff: 1s\n  queue:\n    directory: {}\n\
         host_metrics:\n  interval: 1s\n\
         relay:\n  grpc_listen: 127.0.0.1:0\n  http_listen: 127.0.0.1:0\n\
         telemetry:\n  listen: 127.0.0.1:0\n",
        spool.display()
    );
    redline_agent::config::Config::from_yaml_str(&yaml)
        .map_err(|e| anyhow::anyhow!("test agent configuration: {e}\n{yaml}"))
}
