//! A collector running in the test's process: real listeners on 127.0.0.1:0, a real SQLite file,
//! OTLP over gRPC in and JSON out of the API. Shared by the test crates that `mod support;` it;
//! not every crate uses every item.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use redline_collector::config::Config;
use serde_json::Value;

use super::otlp;

/// The defaults with the data in `data` and every listener on 127.0.0.1, port 0.
pub fn config(data: &Path) -> Config {
    Config {
        data_dir: data.to_owned(),
        otlp_grpc_listen: "127.0.0.1:0".parse().unwrap(),
        otlp_http_listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    }
}

/// Binds a collector with `config` and runs it on this runtime until [`Running::stop`].
pub async fn start(config: Config) -> Running {
    let collector = redline_collector::bind(config).await.unwrap();
    let (grpc, otlp_http, http) = (
        collector.otlp_grpc_addr(),
        collector.otlp_http_addr(),
        collector.http_addr(),
    );
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(collector.run(async {
        let _ = rx.await;
    }));
    Running {
        grpc,
        otlp_http,
        http,
        stop,
        task,
    }
}

pub struct Running {
    /// OTLP/gRPC.
    pub grpc: SocketAddr,
    /// OTLP/HTTP.
    pub otlp_http: SocketAddr,
    /// The API.
    pub http: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Shuts the collector down and waits until it has drained.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }

    /// `path` on the API.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// GET `path` from the API: the JSON body.
    pub async fn get(&self, path: &str) -> Value {
        self.get_with_status(path).await.1
    }

    /// GET `path` from the API: the status and the JSON body.
    pub async fn get_with_status(&self, path: &str) -> (u16, Value) {
        let r = reqwest::get(self.url(path)).await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    /// The result of the instant PromQL query `q` (now).
    pub async fn query(&self, q: &str) -> Vec<Value> {
        let q = form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
        let body = self.get(&format!("/api/v1/query?query={q}")).await;
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Polls the query `q` until its result satisfies `pred` (bounded; not a timing
    /// assertion).
    pub async fn wait_query(&self, q: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = self.query(q).await;
            if pred(&r) {
                return r;
            }
            assert!(Instant::now() < deadline, "{q}: {r:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every loaded rule group has evaluated once (rules load asynchronously after
    /// start; samples sent before would make start-up order a flaky test). Bounded.
    pub async fn wait_rules_evaluated(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let body = self.get("/api/v1/rules").await;
            let evaluated = body["data"]["groups"].as_array().is_some_and(|g| {
                !g.is_empty()
                    && g.iter()
                        .all(|g| g["lastEvaluation"] != "0001-01-01T00:00:00Z")
            });
            if evaluated {
                return;
            }
            assert!(Instant::now() < deadline, "rules never evaluated: {body}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls `/api/v1/alerts` until `pred` holds (bounded; not a timing assertion).
    pub async fn wait_alerts(&self, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let body = self.get("/api/v1/alerts").await;
            let alerts = body["data"]["alerts"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if pred(&alerts) {
                return alerts;
            }
            assert!(
                Instant::now() < deadline,
                "condition not reached: {alerts:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Exports `request` over OTLP/gRPC (a new connection) and waits for the acknowledgement.
    pub async fn export(&self, request: ExportMetricsServiceRequest) {
        let mut client = MetricsServiceClient::connect(format!("http://{}", self.grpc))
            .await
            .unwrap();
        client.export(request).await.unwrap();
    }

    /// Sends one sample of the gauge `name` now, from an application (`service.name="app"`) on
    /// `host`.
    pub async fn send(&self, name: &str, host: &str, value: f64) {
        self.send_from(name, &[("host.name", host)], value).await;
    }

    /// Sends one sample of the gauge `name` now, from a resource with `service.name="app"` and
    /// `resource`.
    pub async fn send_from(&self, name: &str, resource: &[(&str, &str)], value: f64) {
        let resource: Vec<_> = [("service.name", "app")]
            .iter()
            .chain(resource)
            .copied()
            .collect();
        let points = [(otlp::now_ms(), value)];
        self.export(otlp::gauge(&resource, name, "", &points, &[]))
            .await;
    }

    /// Sends a gauge with the given (Unix ms, value) points, each with `attrs`, for one host
    /// as the agent sends host metrics (`service.name="redline-agent"`).
    pub async fn gauge(
        &self,
        name: &str,
        unit: &str,
        host: &str,
        points: &[(i64, f64)],
        attrs: &[(&str, &str)],
    ) {
        let resource = [("service.name", "redline-agent"), ("host.name", host)];
        self.export(otlp::gauge(&resource, name, unit, points, attrs))
            .await;
    }
}
