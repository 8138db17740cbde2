//! Latency from an acknowledged threshold-crossing sample to a firing alert.
//!
//! Runs a collector in process (real listeners, real SQLite file) with one rule
//! `latency_probe > 0.5` (`for: 0s`) in a group evaluated only hourly, so every alert here
//! comes from the prompt evaluation that follows a write. Each round exports a sample of 1 over
//! OTLP/gRPC, starts the clock when the export is acknowledged, polls `/api/v1/alerts` every
//! millisecond until the alert is firing, then exports 0 and waits for it to resolve.
//! Prints p50, p90, p99 and max over the rounds.
//!
//! Run: `cargo bench -p redline-collector --bench alert_latency [-- ROUNDS]`

#[path = "../tests/support/otlp.rs"]
mod otlp;

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use redline_collector::config::Config;

/// One sample of the gauge `latency.probe` now.
fn request(value: f64) -> ExportMetricsServiceRequest {
    let points = [(otlp::now_ms(), value)];
    otlp::gauge(
        &[("service.name", "probe")],
        "latency.probe",
        "",
        &points,
        &[],
    )
}

async fn firing(http: &reqwest::Client, url: &str) -> bool {
    match http.get(url).send().await {
        Ok(r) => r.text().await.is_ok_and(|t| t.contains("\"firing\"")),
        Err(_) => false,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let data = tempfile::tempdir()?;
    let rules = tempfile::tempdir()?;
    std::fs::write(
        rules.path().join("probe.yml"),
        "groups:\n  - name: probe\n    interval: 1h\n    rules:\n      - alert: Probe\n        expr: latency_probe > 0.5\n",
    )?;
    let mut config = Config {
        data_dir: data.path().to_owned(),
        otlp_grpc_listen: "127.0.0.1:0".parse()?,
        otlp_http_listen: "127.0.0.1:0".parse()?,
        http_listen: "127.0.0.1:0".parse()?,
        ..Config::default()
    };
    config.rules.paths = vec![rules.path().to_owned()];
    config.rules.default_paths = false;
    let collector = redline_collector::bind(config).await?;
    let (grpc, api) = (collector.otlp_grpc_addr(), collector.http_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(collector.run(async {
        let _ = stopped.await;
    }));
    let mut client = MetricsServiceClient::connect(format!("http://{grpc}")).await?;
    let http = reqwest::Client::new();
    let url = format!("http://{api}/api/v1/alerts");
    let mut latencies = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        client.export(request(1.0)).await?;
        let acked = Instant::now();
        while !firing(&http, &url).await {
            if acked.elapsed() > Duration::from_secs(10) {
                anyhow::bail!("alert did not fire within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(acked.elapsed());
        client.export(request(0.0)).await?;
        while firing(&http, &url).await {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    latencies.sort();
    println!(
        "alert latency, export acknowledged -> alert firing ({rounds} rounds, debounce 20 ms):\n  p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
        latencies[latencies.len() - 1]
    );
    let _ = stop.send(());
    task.await??;
    Ok(())
}
