//! Latency from the OTLP export of a threshold-crossing sample to the webhook request
//! arriving at a receiver, with `group_wait: 0s`.
//!
//! Runs a collector in process (real listeners, real SQLite file, the real outbox) with one
//! rule `latency_probe > 0.5` (`for: 0s`) and a routing configuration sending to a webhook
//! receiver served by this program on 127.0.0.1. Each round starts the clock just before it
//! exports a sample of 1 over OTLP/gRPC, stops it when the firing notification arrives, then
//! exports 0 and waits for the resolved notification. Prints p50, p90, p99 and max.
//!
//! Run: `cargo bench -p redline-collector --bench notify_latency [-- ROUNDS]`

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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn hook(
    axum::extract::State(tx): axum::extract::State<tokio::sync::mpsc::Sender<(Instant, String)>>,
    body: axum::body::Bytes,
) -> &'static str {
    let arrived = Instant::now();
    let status = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["status"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let _ = tx.send((arrived, status)).await;
    "ok"
}

async fn next_status(
    rx: &mut tokio::sync::mpsc::Receiver<(Instant, String)>,
    want: &str,
) -> anyhow::Result<Instant> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some((at, status))) if status == want => return Ok(at),
            Ok(Some(_)) => continue,
            _ => anyhow::bail!("no {want} notification within 10 s"),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook_addr = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(tx);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let data = tempfile::tempdir()?;
    let rules = tempfile::tempdir()?;
    std::fs::write(
        rules.path().join("probe.yml"),
        "groups:\n  - name: probe\n    interval: 1h\n    rules:\n      - alert: Probe\n        expr: latency_probe > 0.5\n",
    )?;
    let routing = rules.path().join("alertmanager.yml");
    std::fs::write(
        &routing,
        format!(
            "route:\n  receiver: hook\n  group_wait: 0s\n  group_interval: 10ms\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: http://{hook_addr}/hook\n"
        ),
    )?;
    let mut config = Config {
        data_dir: data.path().to_owned(),
        otlp_grpc_listen: "127.0.0.1:0".parse()?,
        otlp_http_listen: "127.0.0.1:0".parse()?,
        http_listen: "127.0.0.1:0".parse()?,
        ..Config::default()
    };
    config.rules.paths = vec![rules.path().join("probe.yml")];
    config.rules.default_paths = false;
    config.notify.config_file = Some(routing);
    let collector = redline_collector::bind(config).await?;
    let grpc = collector.otlp_grpc_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(collector.run(async {
        let _ = stopped.await;
    }));
    let mut client = MetricsServiceClient::connect(format!("http://{grpc}")).await?;
    let mut latencies = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        client.export(request(1.0)).await?;
        let arrived = next_status(&mut rx, "firing").await?;
        latencies.push(arrived - started);
        client.export(request(0.0)).await?;
        next_status(&mut rx, "resolved").await?;
    }
    latencies.sort();
    println!(
        "notification latency, OTLP export -> webhook request arrives ({rounds} rounds, group_wait 0s, debounce 20 ms):\n  p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
        latencies[latencies.len() - 1]
    );
    let _ = stop.send(());
    task.await??;
    Ok(())
}
