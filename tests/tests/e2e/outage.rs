//! "Nothing lost", with the real binaries as separate processes: an application sends numbered
//! samples to the agent's relay while the collector is killed with SIGKILL, the agent is
//! restarted in the middle of the outage (its spool on disk is all that carries the data
//! across), and the collector comes back on the same data directory. Every sample the agent
//! acknowledged is then in the collector's store exactly once, and host metrics collected
//! during the outage arrived too.
//!
//! Time is scaled, not paused: the processes are real, so the outage lasts seconds rather than
//! ten minutes, with the agent's retry backoff capped at 300 ms and host metrics collected
//! every 200 ms, so the outage spans the same number of retry rounds and collection cycles
//! (dozens) and exercises the same paths. The binaries come from the same `target/` as this
//! test; `cargo test --workspace` builds them (the agent's and collector's own tests need
//! them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::Value;

/// A binary built beside this test (`target/<profile>/<name>`).
pub(super) fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join(name))
        .unwrap();
    assert!(
        path.is_file(),
        "{} is missing: build the binaries first (cargo build --bins, or cargo test --workspace)",
        path.display()
    );
    path
}

/// A free port below the kernel's ephemeral range (32768–60999 on Linux), for listeners that
/// are stopped and started again on the same port. While one is down, a port from the
/// ephemeral range may become the local port of any client socket (another test's
/// connection), and the restart's bind fails; below the range the kernel hands out nothing,
/// and the tests bind nothing else there.
pub(super) fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let seed = u64::from(std::process::id()) ^ (now_ms() as u64);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // A simple mix so parallel test binaries start at different places.
        let mixed =
            (seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let port = 20_000 + (mixed >> 32) as u16 % 12_000;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

struct Ports {
    collector_grpc: u16,
    collector_http: u16,
    api: u16,
    relay_grpc: u16,
    relay_http: u16,
    agent_metrics: u16,
}

fn start_collector(data: &Path, p: &Ports) -> Child {
    Command::new(binary("redline-collector"))
        .args(["run", "--data-dir"])
        .arg(data)
        .args([
            "--otlp-grpc-listen",
            &format!("127.0.0.1:{}", p.collector_grpc),
            "--otlp-http-listen",
            &format!("127.0.0.1:{}", p.collector_http),
            "--http-listen",
            &format!("127.0.0.1:{}", p.api),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn start_agent(config: &Path) -> Child {
    Command::new(binary("redline-agent"))
        .args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

pub(super) async fn wait_ready(url: &str) {
    // reqwest is built without a default rustls provider; whichever test runs first installs
    // ring (an error only means it is installed already).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(url).await
            && r.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "{url} never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn probe(seq: usize, t_ms: i64) -> ExportMetricsServiceRequest {
    let kv = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "outage-probe")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "outage_probe".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            time_unix_nano: t_ms as u64 * 1_000_000,
                            value: Some(number_data_point::Value::AsDouble(seq as f64)),
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Sends probes `range` to the agent's relay, one export each; returns when the agent has
/// acknowledged (spooled) every one. The timestamps only increase.
async fn send_probes(relay: u16, range: std::ops::Range<usize>, sent: &mut BTreeMap<usize, i64>) {
    let mut client = loop {
        match MetricsServiceClient::connect(format!("http://127.0.0.1:{relay}")).await {
            Ok(c) => break c,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    for seq in range {
        let t = now_ms().max(sent.values().max().map_or(0, |m| m + 1));
        client.export(probe(seq, t)).await.unwrap();
        sent.insert(seq, t);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(super) fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

async fn query(api: u16, q: &str) -> Vec<Value> {
    let url = format!(
        "http://127.0.0.1:{api}/api/v1/query?query={}",
        q.replace('[', "%5B")
            .replace(']', "%5D")
            .replace(' ', "%20")
    );
    let body: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_killed_and_agent_restarted_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let spool = dir.path().join("spool");
    let p = Ports {
        collector_grpc: free_port(),
        collector_http: free_port(),
        api: free_port(),
        relay_grpc: free_port(),
        relay_http: free_port(),
        agent_metrics: free_port(),
    };
    let config = dir.path().join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "exporter:\n  endpoint: http://127.0.0.1:{}\n  queue:\n    directory: {}\n  \
             retry_initial_backoff: 50ms\n  retry_max_backoff: 300ms\n  drain_timeout: 1s\n\
             host_metrics:\n  interval: 200ms\n\
             relay:\n  grpc_listen: 127.0.0.1:{}\n  http_listen: 127.0.0.1:{}\n\
             telemetry:\n  listen: 127.0.0.1:{}\n",
            p.collector_grpc,
            spool.display(),
            p.relay_grpc,
            p.relay_http,
            p.agent_metrics
        ),
    )
    .unwrap();

    let mut collector = start_collector(&data, &p);
    wait_ready(&format!("http://127.0.0.1:{}/readyz", p.api)).await;
    let mut agent = start_agent(&config);
    wait_ready(&format!("http://127.0.0.1:{}/healthz", p.agent_metrics)).await;

    let mut sent = BTreeMap::new();
    send_probes(p.relay_grpc, 0..30, &mut sent).await;

    // The collector dies without warning, in the middle of the agent's deliveries.
    collector.kill().unwrap();
    collector.wait().unwrap();
    let outage_start = now_ms();
    send_probes(p.relay_grpc, 30..60, &mut sent).await;

    // The agent is restarted during the outage; only its spool carries the data across.
    signal(&agent, "TERM");
    assert!(agent.wait().unwrap().success());
    let mut agent = start_agent(&config);
    wait_ready(&format!("http://127.0.0.1:{}/healthz", p.agent_metrics)).await;
    send_probes(p.relay_grpc, 60..90, &mut sent).await;
    // Host metrics keep being collected into the spool, and retries keep failing, for a while.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let outage_end = now_ms();

    // The collector comes back on the same data directory.
    let mut collector = start_collector(&data, &p);
    wait_ready(&format!("http://127.0.0.1:{}/readyz", p.api)).await;
    send_probes(p.relay_grpc, 90..100, &mut sent).await;

    let deadline = Instant::now() + Duration::from_secs(60);
    let values = loop {
        let rows = query(p.api, "outage_probe[1h]").await;
        let values: Vec<(f64, String)> = rows
            .first()
            .and_then(|r| r["values"].as_array())
            .map(|vs| {
                vs.iter()
                    .map(|v| (v[0].as_f64().unwrap(), v[1].as_str().unwrap().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        if values.len() >= sent.len() || Instant::now() > deadline {
            break values;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    for (_, v) in &values {
        *seen.entry(v.parse::<f64>().unwrap() as usize).or_default() += 1;
    }
    let missing: Vec<usize> = sent
        .keys()
        .filter(|s| !seen.contains_key(s))
        .copied()
        .collect();
    let twice: Vec<usize> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(s, _)| *s)
        .collect();
    assert!(missing.is_empty(), "lost probes: {missing:?}");
    assert!(twice.is_empty(), "probes stored twice: {twice:?}");
    assert_eq!(values.len(), sent.len());
    for (seq, t) in &sent {
        let stored = values
            .iter()
            .find(|(_, v)| v.parse::<f64>().unwrap() as usize == *seq)
            .unwrap();
        assert_eq!(
            (stored.0 * 1000.0).round() as i64,
            *t,
            "probe {seq} timestamp"
        );
    }

    // Host metrics collected during the outage reached the store after it.
    let rows = query(p.api, "count_over_time(system_uptime_seconds[1h])").await;
    let host_samples: f64 = rows
        .iter()
        .map(|r| r["value"][1].as_str().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!(host_samples > 0.0, "no host metrics at all");
    let range = format!(
        "http://127.0.0.1:{}/api/v1/query_range?query=system_uptime_seconds&start={}&end={}&step=0.2",
        p.api,
        outage_start as f64 / 1000.0,
        outage_end as f64 / 1000.0
    );
    let body: Value = reqwest::get(range).await.unwrap().json().await.unwrap();
    let during = body["data"]["result"][0]["values"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(
        during > 0,
        "host metrics from the outage are missing: {body}"
    );

    signal(&agent, "TERM");
    agent.wait().unwrap();
    signal(&collector, "TERM");
    assert!(collector.wait().unwrap().success());
}
