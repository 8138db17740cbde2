//! "Nothing lost": the agent runs against a real OTLP/gRPC receiver on 127.0.0.1 that is down
//! at first, the agent is restarted while it is down, and when the receiver comes up every
//! relayed batch arrives exactly once, oldest first, from the spool on disk.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use redline_agent::Config;
use tokio::sync::oneshot;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

/// A receiver that records span names in arrival order.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<String>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        req: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut seen = self.0.lock().unwrap();
        for rs in req.into_inner().resource_spans {
            for ss in rs.scope_spans {
                seen.extend(ss.spans.into_iter().map(|s| s.name));
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

fn span(name: &str) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![1; 16],
                    span_id: vec![2; 8],
                    name: name.to_string(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn config(collector: SocketAddr, spool: &std::path::Path) -> Config {
    let mut c = Config::default();
    c.exporter.endpoint = Some(format!("http://{collector}").parse().unwrap());
    c.exporter.queue.directory = spool.to_path_buf();
    c.exporter.retry.initial_backoff = Duration::from_millis(50);
    c.exporter.retry.max_backoff = Duration::from_millis(200);
    c.exporter.timeout = Duration::from_secs(2);
    c.exporter.drain_timeout = Duration::from_millis(500);
    c.host_metrics.interval = Duration::from_secs(3600);
    c.telemetry.listen = "127.0.0.1:0".parse().unwrap();
    c.relay.grpc_listen = "127.0.0.1:0".parse().unwrap();
    c.relay.http_listen = "127.0.0.1:0".parse().unwrap();
    c
}

struct Running {
    http: SocketAddr,
    metrics: SocketAddr,
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start_agent(config: Config) -> Running {
    let agent = redline_agent::bind(config).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let http = agent.otlp_http_addr();
    let metrics = agent.metrics_addr();
    let done = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));
    Running {
        http,
        metrics,
        stop,
        done,
    }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.done)
            .await
            .expect("agent did not stop")
            .unwrap()
            .unwrap();
    }

    async fn scrape(&self) -> String {
        client()
            .get(format!("http://{}/metrics", self.metrics))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Relays one span; the agent answers 200 only once it is on disk.
    async fn send(&self, name: &str) {
        let resp = client()
            .post(format!("http://{}/v1/traces", self.http))
            .header("content-type", "application/x-protobuf")
            .body(span(name).encode_to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{name}");
    }
}

fn client() -> reqwest::Client {
    redline_agent::install_crypto_provider();
    reqwest::Client::new()
}

fn gauge(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_and_restart_lose_nothing_and_keep_order() {
    // A port nobody listens on yet: the collector is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let spool = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..30).map(|i| format!("b{i:02}")).collect();

    // First run: ten batches accepted while the collector is down.
    let agent = start_agent(config(port, spool.path())).await;
    for n in &names[..10] {
        agent.send(n).await;
    }
    let text = agent.scrape().await;
    assert!(
        gauge(&text, "redline_agent_spool_records") >= 10.0,
        "{text}"
    );
    agent.stop().await;

    // Second run over the same spool, still no collector: ten more.
    let agent = start_agent(config(port, spool.path())).await;
    for n in &names[10..20] {
        agent.send(n).await;
    }

    // The collector comes up; ten more arrive while the backlog drains.
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind(port).await.unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(
                TraceServiceServer::new(receiver.clone())
                    .accept_compressed(CompressionEncoding::Gzip),
            )
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    for n in &names[20..] {
        agent.send(n).await;
    }
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    while receiver.0.lock().unwrap().len() < names.len() {
        assert!(
            tokio::time::Instant::now() < until,
            "only {:?} arrived",
            receiver.0.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing more is coming (no duplicates delivered late).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(*receiver.0.lock().unwrap(), names, "exactly once, in order");

    let text = agent.scrape().await;
    assert_eq!(
        gauge(
            &text,
            r#"redline_agent_exported_points_total{signal="traces"}"#
        ),
        30.0
    );
    for reason in [
        "spool_full",
        "max_age",
        "spool_error",
        "permanent_error",
        "shutdown",
    ] {
        assert!(
            text.contains(&format!(
                r#"redline_agent_dropped_total{{signal="traces",reason="{reason}"}} 0"#
            )),
            "{reason}: {text}"
        );
    }
    agent.stop().await;
}

/// A spool directory can only be used by one agent at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_agent_on_one_spool_is_refused() {
    let spool = tempfile::tempdir().unwrap();
    let port: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let first = redline_agent::bind(config(port, spool.path()))
        .await
        .unwrap();
    let err = redline_agent::bind(config(port, spool.path()))
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("exporter.queue.directory") && text.contains("in use"),
        "{text}"
    );
    drop(first);
}
