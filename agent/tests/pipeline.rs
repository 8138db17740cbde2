//! In-process tests of the whole agent pipeline against a fake OTLP/gRPC collector (a tonic
//! server on 127.0.0.1:0 that records what it receives): host metrics arrive gzip-compressed
//! with the expected names, attributes and resource; spans sent to the relay arrive at the
//! collector; UNAVAILABLE answers are retried; a request the spool cannot hold makes the relay
//! answer 503. Each agent spools into its own temporary directory.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use redline_agent::Config;
use tokio::sync::oneshot;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

/// What the fake collector saw, and how it misbehaves.
#[derive(Default)]
struct Record {
    /// `(grpc-encoding header, request)` of every metrics call that succeeded.
    metrics: Mutex<Vec<(Option<String>, ExportMetricsServiceRequest)>>,
    traces: Mutex<Vec<ExportTraceServiceRequest>>,
    logs: Mutex<Vec<ExportLogsServiceRequest>>,
    metric_calls: AtomicUsize,
    /// Report this many data points of every metrics call as rejected (partial success).
    reject_points: i64,
    /// Answer this many metrics calls with UNAVAILABLE first.
    fail_metrics: AtomicUsize,
    /// Never answer metrics calls (to fill the agent's queue).
    hang_metrics: bool,
    /// Answer this many metrics calls with RESOURCE_EXHAUSTED carrying a RetryInfo delay.
    throttle_metrics: AtomicUsize,
    /// When each metrics call arrived.
    metric_call_times: Mutex<Vec<tokio::time::Instant>>,
}

#[derive(Clone)]
struct Fake(Arc<Record>);

#[tonic::async_trait]
impl MetricsService for Fake {
    async fn export(
        &self,
        req: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.0.metric_calls.fetch_add(1, Ordering::SeqCst);
        self.0
            .metric_call_times
            .lock()
            .unwrap()
            .push(tokio::time::Instant::now());
        if self
            .0
            .throttle_metrics
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            let code = tonic::Code::ResourceExhausted;
            let details = redline_agent::export::retry::rpc::status_with_retry_info(
                code as i32,
                "slow down",
                Duration::from_millis(700),
            );
            return Err(Status::with_details(code, "slow down", details.into()));
        }
        if self.0.hang_metrics {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        if self
            .0
            .fail_metrics
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Status::unavailable("fake collector is busy"));
        }
        let enc = req
            .metadata()
            .get("grpc-encoding")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        self.0.metrics.lock().unwrap().push((enc, req.into_inner()));
        let partial_success = (self.0.reject_points > 0).then(|| ExportMetricsPartialSuccess {
            rejected_data_points: self.0.reject_points,
            error_message: "fake rejects some points".into(),
        });
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success,
        }))
    }
}

#[tonic::async_trait]
impl TraceService for Fake {
    async fn export(
        &self,
        req: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.0.traces.lock().unwrap().push(req.into_inner());
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Fake {
    async fn export(
        &self,
        req: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.0.logs.lock().unwrap().push(req.into_inner());
        Ok(Response::new(ExportLogsServiceResponse::default()))
    }
}

async fn start_fake(record: Record) -> (SocketAddr, Arc<Record>) {
    let record = Arc::new(record);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = Fake(record.clone());
    let gz = CompressionEncoding::Gzip;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(MetricsServiceServer::new(fake.clone()).accept_compressed(gz))
            .add_service(TraceServiceServer::new(fake.clone()).accept_compressed(gz))
            .add_service(LogsServiceServer::new(fake).accept_compressed(gz))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (addr, record)
}

fn config(collector: SocketAddr) -> Config {
    let mut c = Config::default();
    c.exporter.endpoint = Some(format!("http://{collector}").parse().unwrap());
    c.exporter.retry.initial_backoff = Duration::from_millis(50);
    c.exporter.retry.max_backoff = Duration::from_millis(200);
    c.exporter.drain_timeout = Duration::from_secs(2);
    c.host_metrics.interval = Duration::from_secs(1);
    c.telemetry.listen = "127.0.0.1:0".parse().unwrap();
    c.relay.grpc_listen = "127.0.0.1:0".parse().unwrap();
    c.relay.http_listen = "127.0.0.1:0".parse().unwrap();
    c
}

struct Running {
    /// The agent's spool directory, removed when the test ends.
    _spool: tempfile::TempDir,
    agent_metrics: SocketAddr,
    grpc: SocketAddr,
    http: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start_agent(mut config: Config) -> Running {
    let spool = tempfile::tempdir().unwrap();
    config.exporter.queue.directory = spool.path().to_path_buf();
    let agent = redline_agent::bind(config).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let agent_metrics = agent.metrics_addr();
    let http = agent.otlp_http_addr();
    let grpc = agent.otlp_grpc_addr();
    let done = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));
    Running {
        _spool: spool,
        agent_metrics,
        grpc,
        http,
        stop: Some(stop),
        done,
    }
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let r = tokio::time::timeout(Duration::from_secs(10), self.done).await;
        r.expect("agent did not stop").unwrap().unwrap();
    }

    /// Scrapes until the text contains `needle` (counters are updated just after the fake
    /// collector records a request, so a single scrape could race them).
    async fn scrape_until(&self, needle: &str) -> String {
        let until = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.scrape().await;
            if text.contains(needle) {
                return text;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "{needle} never in:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn scrape(&self) -> String {
        // Through `http_client`, which installs the process's rustls provider first: a bare
        // `reqwest::get` panics when this is the first client of the test process.
        http_client()
            .get(format!("http://{}/metrics", self.agent_metrics))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// Waits until `f` returns true, polling every 50 ms.
async fn eventually(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let until = tokio::time::Instant::now() + within;
    while !f() {
        assert!(
            tokio::time::Instant::now() < until,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn str_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            _ => None,
        })
}

fn find<'a>(metrics: &'a [Metric], name: &str) -> &'a Metric {
    metrics
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

fn point_attrs(m: &Metric) -> Vec<Vec<KeyValue>> {
    match m.data.as_ref().unwrap() {
        metric::Data::Gauge(g) => g.data_points.iter().map(|p| p.attributes.clone()).collect(),
        metric::Data::Sum(s) => s.data_points.iter().map(|p| p.attributes.clone()).collect(),
        _ => panic!("unexpected type for {}", m.name),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_metrics_arrive_gzip_compressed_with_semconv_names() {
    let (collector, record) = start_fake(Record::default()).await;
    let agent = start_agent(config(collector)).await;
    eventually("two host metric exports", Duration::from_secs(15), || {
        record.metrics.lock().unwrap().len() >= 2
    })
    .await;
    agent.stop().await;

    let seen = record.metrics.lock().unwrap();
    let (encoding, req) = &seen[1];
    assert_eq!(encoding.as_deref(), Some("gzip"));
    let rm = &req.resource_metrics[0];
    let res = &rm.resource.as_ref().unwrap().attributes;
    assert_eq!(
        str_attr(res, "service.name").as_deref(),
        Some("redline-agent")
    );
    assert_eq!(str_attr(res, "os.type").as_deref(), Some("linux"));
    assert_eq!(
        str_attr(res, "service.version").as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    let host = str_attr(res, "host.name").unwrap();
    assert!(!host.is_empty());
    assert_eq!(str_attr(res, "service.instance.id"), Some(host));
    assert!(str_attr(res, "host.arch").is_some());
    let sm = &rm.scope_metrics[0];
    assert_eq!(sm.scope.as_ref().unwrap().name, "redline-agent");
    let ms = &sm.metrics;

    let cpu = find(ms, "system.cpu.time");
    assert_eq!(cpu.unit, "s");
    let Some(metric::Data::Sum(sum)) = &cpu.data else {
        panic!()
    };
    assert!(sum.is_monotonic);
    assert!(sum.data_points[0].start_time_unix_nano > 0);
    let attrs = point_attrs(cpu);
    assert_eq!(str_attr(&attrs[0], "cpu").as_deref(), Some("cpu0"));
    assert!(
        attrs
            .iter()
            .any(|a| str_attr(a, "state").as_deref() == Some("iowait"))
    );

    let util = find(ms, "system.cpu.utilization");
    assert_eq!(util.unit, "1");
    assert!(matches!(util.data, Some(metric::Data::Gauge(_))));

    let mem = find(ms, "system.memory.usage");
    assert_eq!(mem.unit, "By");
    let Some(metric::Data::Sum(sum)) = &mem.data else {
        panic!()
    };
    assert!(!sum.is_monotonic);
    assert!(
        point_attrs(mem)
            .iter()
            .any(|a| str_attr(a, "state").as_deref() == Some("used"))
    );

    for (name, unit) in [
        ("system.memory.utilization", "1"),
        ("system.paging.usage", "By"),
        ("system.cpu.load_average.1m", "{thread}"),
        ("system.cpu.load_average.5m", "{thread}"),
        ("system.cpu.load_average.15m", "{thread}"),
        ("system.network.io", "By"),
        ("system.network.packets", "{packet}"),
        ("system.network.errors", "{error}"),
        ("system.network.dropped", "{packet}"),
        ("system.processes.count", "{process}"),
        ("system.processes.created", "{process}"),
        ("system.uptime", "s"),
    ] {
        assert_eq!(find(ms, name).unit, unit, "{name}");
    }
    let net = point_attrs(find(ms, "system.network.io"));
    assert!(
        net.iter()
            .any(|a| str_attr(a, "device").as_deref() == Some("lo")
                && str_attr(a, "direction").as_deref() == Some("receive"))
    );
    // Disks and filesystems depend on the machine; when present, check their attributes.
    if let Some(d) = ms.iter().find(|m| m.name == "system.disk.io") {
        let a = &point_attrs(d)[0];
        assert!(str_attr(a, "device").is_some() && str_attr(a, "direction").is_some());
    }
    if let Some(f) = ms.iter().find(|m| m.name == "system.filesystem.usage") {
        let a = &point_attrs(f)[0];
        for k in ["device", "mountpoint", "type", "mode", "state"] {
            assert!(str_attr(a, k).is_some(), "{k}");
        }
    }
}

fn one_span(name: &str) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![7; 16],
                    span_id: vec![9; 8],
                    name: name.to_string(),
                    start_time_unix_nano: 1,
                    end_time_unix_nano: 2,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_sent_to_the_http_relay_reach_the_collector() {
    let (collector, record) = start_fake(Record::default()).await;
    let agent = start_agent(config(collector)).await;
    let http = http_client();
    let url = format!("http://{}/v1/traces", agent.http);

    let resp = http
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(one_span("checkout").encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-protobuf");
    ExportTraceServiceResponse::decode(resp.bytes().await.unwrap()).unwrap();

    // JSON, gzip-compressed.
    let json = serde_json::to_vec(&one_span("json-span")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &json).unwrap();
    let resp = http
        .post(&url)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");

    // Errors.
    let bad = http
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(vec![0xff, 0xff, 0xff])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let wrong = http
        .post(&url)
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 415);

    eventually(
        "both spans at the collector",
        Duration::from_secs(10),
        || {
            let names: Vec<String> = record
                .traces
                .lock()
                .unwrap()
                .iter()
                .flat_map(|r| &r.resource_spans)
                .flat_map(|rs| &rs.scope_spans)
                .flat_map(|ss| &ss.spans)
                .map(|s| s.name.clone())
                .collect();
            names.contains(&"checkout".to_string()) && names.contains(&"json-span".to_string())
        },
    )
    .await;
    let text = agent.scrape().await;
    assert!(
        text.contains(
            r#"redline_agent_relay_received_total{signal="traces",protocol="http_protobuf"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"redline_agent_relay_received_total{signal="traces",protocol="http_json"} 1"#
        )
    );
    assert!(text.contains(r#"redline_agent_relay_rejected_total{reason="undecodable"} 1"#));
    assert!(
        text.contains(r#"redline_agent_relay_rejected_total{reason="unsupported_media_type"} 1"#)
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_retries_after_unavailable() {
    let (collector, record) = start_fake(Record {
        fail_metrics: AtomicUsize::new(2),
        ..Default::default()
    })
    .await;
    let mut cfg = config(collector);
    cfg.host_metrics.interval = Duration::from_secs(3600); // one collection: one batch
    let agent = start_agent(cfg).await;
    eventually(
        "the batch delivered after two UNAVAILABLE",
        Duration::from_secs(10),
        || !record.metrics.lock().unwrap().is_empty(),
    )
    .await;
    assert_eq!(record.metric_calls.load(Ordering::SeqCst), 3);
    let text = agent
        .scrape_until(
            r#"redline_agent_export_requests_total{signal="metrics",outcome="success"} 1"#,
        )
        .await;
    assert!(
        text.contains(
            r#"redline_agent_export_requests_total{signal="metrics",outcome="retryable_error"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"redline_agent_export_requests_total{signal="metrics",outcome="success"} 1"#
        )
    );
    assert!(text.contains(
        r#"redline_agent_export_failures_total{signal="metrics",reason="retryable_status"} 2"#
    ));
    assert!(
        text.contains(r#"redline_agent_dropped_total{signal="metrics",reason="spool_full"} 0"#)
    );
    agent.stop().await;
}

/// RESOURCE_EXHAUSTED is retryable only with RetryInfo, and its delay replaces the backoff
/// (which is 50 ms at most here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_info_delay_is_honoured() {
    let (collector, record) = start_fake(Record {
        throttle_metrics: AtomicUsize::new(1),
        ..Default::default()
    })
    .await;
    let mut cfg = config(collector);
    cfg.host_metrics.interval = Duration::from_secs(3600);
    let agent = start_agent(cfg).await;
    eventually(
        "the batch delivered after the throttle",
        Duration::from_secs(10),
        || !record.metrics.lock().unwrap().is_empty(),
    )
    .await;
    let times = record.metric_call_times.lock().unwrap().clone();
    assert_eq!(times.len(), 2);
    assert!(
        times[1] - times[0] >= Duration::from_millis(650),
        "retried after {:?}",
        times[1] - times[0]
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_the_spool_cannot_hold_answers_503_with_retry_after() {
    let (collector, _record) = start_fake(Record::default()).await;
    let mut cfg = config(collector);
    cfg.host_metrics.interval = Duration::from_secs(3600);
    // A spool as small as a relayed request may be: a request near the limit passes the relay
    // but does not fit the spool with its record header. (The host batch, larger still, is
    // dropped and counted.)
    cfg.relay.max_request_bytes = 4096;
    cfg.exporter.queue.max_bytes = 4096;
    let agent = start_agent(cfg).await;
    let http = http_client();
    let url = format!("http://{}/v1/traces", agent.http);
    let send = |body: Vec<u8>| {
        http.post(&url)
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
    };
    assert_eq!(
        send(one_span("s").encode_to_vec()).await.unwrap().status(),
        200
    );
    let big = (3900..)
        .map(|n| one_span(&"x".repeat(n)).encode_to_vec())
        .find(|b| b.len() > 4070)
        .unwrap();
    assert!(big.len() <= 4096);
    let full = send(big).await.unwrap();
    assert_eq!(full.status(), 503);
    assert_eq!(full.headers()["retry-after"], "1");
    let text = agent
        .scrape_until(r#"redline_agent_relay_rejected_total{reason="queue_full"} 1"#)
        .await;
    assert!(
        !text.contains(r#"redline_agent_dropped_total{signal="metrics",reason="spool_full"} 0"#),
        "the host batch does not fit either: {text}"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_relay_body_is_413() {
    let (collector, _record) = start_fake(Record::default()).await;
    let mut cfg = config(collector);
    cfg.relay.max_request_bytes = 1024;
    let agent = start_agent(cfg).await;
    let http = http_client();
    let url = format!("http://{}/v1/traces", agent.http);
    let big = one_span(&"x".repeat(4096)).encode_to_vec();
    let resp = http
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    // Small on the wire, too big inflated: refused without inflating it all.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &big).unwrap();
    let resp = http
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_relay_forwards_logs_and_metrics() {
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    let (collector, record) = start_fake(Record::default()).await;
    let mut cfg = config(collector);
    cfg.host_metrics.interval = Duration::from_secs(3600);
    let agent = start_agent(cfg).await;
    let mut client = LogsServiceClient::connect(format!("http://{}", agent.grpc))
        .await
        .unwrap()
        .send_compressed(CompressionEncoding::Gzip);
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord::default(); 3],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    client.export(req).await.unwrap();
    eventually(
        "3 log records at the collector",
        Duration::from_secs(10),
        || {
            record
                .logs
                .lock()
                .unwrap()
                .iter()
                .flat_map(|r| &r.resource_logs)
                .flat_map(|rl| &rl.scope_logs)
                .map(|sl| sl.log_records.len())
                .sum::<usize>()
                == 3
        },
    )
    .await;
    let text = agent
        .scrape_until(r#"redline_agent_exported_points_total{signal="logs"} 3"#)
        .await;
    assert!(
        text.contains(r#"redline_agent_relay_received_total{signal="logs",protocol="grpc"} 3"#),
        "{text}"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_success_is_not_retried_and_is_counted() {
    let (collector, record) = start_fake(Record {
        reject_points: 5,
        ..Default::default()
    })
    .await;
    let mut cfg = config(collector);
    cfg.host_metrics.interval = Duration::from_secs(3600);
    let agent = start_agent(cfg).await;
    eventually("one metrics export", Duration::from_secs(10), || {
        !record.metrics.lock().unwrap().is_empty()
    })
    .await;
    let text = agent
        .scrape_until(
            r#"redline_agent_export_requests_total{signal="metrics",outcome="partial_success"} 1"#,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        record.metric_calls.load(Ordering::SeqCst),
        1,
        "partial success was retried"
    );
    assert!(
        text.contains(
            r#"redline_agent_export_requests_total{signal="metrics",outcome="partial_success"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"redline_agent_dropped_total{signal="metrics",reason="rejected_by_collector"} 5"#
        ),
        "{text}"
    );
    agent.stop().await;
}

/// A fake OTLP/HTTP collector: records (path, content-encoding, decoded request) and answers
/// 503 + Retry-After to the first `fail` calls.
mod http_fake {
    use super::*;
    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::post;
    use std::io::Read;

    #[derive(Default)]
    pub struct Seen {
        pub calls: AtomicUsize,
        pub fail: AtomicUsize,
        pub requests: Mutex<Vec<(String, Option<String>, ExportMetricsServiceRequest)>>,
    }

    async fn metrics(
        State(seen): State<Arc<Seen>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> impl IntoResponse {
        seen.calls.fetch_add(1, Ordering::SeqCst);
        if seen
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [("retry-after", "0")],
                Vec::new(),
            );
        }
        let enc = headers
            .get("content-encoding")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(body.as_ref())
            .read_to_end(&mut plain)
            .unwrap();
        let req = ExportMetricsServiceRequest::decode(plain.as_slice()).unwrap();
        seen.requests
            .lock()
            .unwrap()
            .push(("/v1/metrics".into(), enc, req));
        (
            StatusCode::OK,
            [("content-type", "application/x-protobuf")],
            ExportMetricsServiceResponse::default().encode_to_vec(),
        )
    }

    pub async fn start(fail: usize) -> (SocketAddr, Arc<Seen>) {
        let seen = Arc::new(Seen {
            fail: AtomicUsize::new(fail),
            ..Default::default()
        });
        let app = Router::new()
            .route("/otlp/v1/metrics", post(metrics))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, seen)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protocol_exports_gzip_protobuf_and_retries_503() {
    let (collector, seen) = http_fake::start(1).await;
    let mut cfg = config(collector);
    cfg.exporter.protocol = redline_agent::config::Protocol::Http;
    cfg.exporter.endpoint = Some(format!("http://{collector}/otlp").parse().unwrap());
    cfg.host_metrics.interval = Duration::from_secs(3600);
    let agent = start_agent(cfg).await;
    eventually(
        "a metrics export over HTTP",
        Duration::from_secs(10),
        || !seen.requests.lock().unwrap().is_empty(),
    )
    .await;
    assert_eq!(
        seen.calls.load(Ordering::SeqCst),
        2,
        "one 503, then success"
    );
    {
        let reqs = seen.requests.lock().unwrap();
        let (_, enc, req) = &reqs[0];
        assert_eq!(enc.as_deref(), Some("gzip"));
        let names: Vec<&str> = req.resource_metrics[0].scope_metrics[0]
            .metrics
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        assert!(names.contains(&"system.memory.usage"), "{names:?}");
    }
    let text = agent.scrape().await;
    assert!(
        text.contains(
            r#"redline_agent_export_requests_total{signal="metrics",outcome="retryable_error"} 1"#
        ),
        "{text}"
    );
    agent.stop().await;
}

/// A plain HTTP client for the tests (the workspace's reqwest needs a rustls provider).
fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
