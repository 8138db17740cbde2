//! "Nobody let in", listener side: bearer tokens and TLS (with client certificates) on the
//! relay listeners and on `/metrics`, with real HTTPS and gRPC clients and certificates made
//! here. Refusals are 401 / UNAUTHENTICATED and counted; a reload swaps the token.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use redline_agent::Config;
use tokio::sync::oneshot;

use common::Ca;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// An agent whose collector is unreachable (port 9, discard): relayed data is spooled.
fn config(dir: &Path, extra: &str) -> Config {
    let yaml = format!(
        "exporter:\n  endpoint: http://127.0.0.1:9\n  drain_timeout: 200ms\n  queue:\n    directory: {}\n\
         host_metrics:\n  interval: 1h\n\
         relay:\n  grpc_listen: 127.0.0.1:0\n  http_listen: 127.0.0.1:0\n{extra}\
         telemetry:\n  listen: 127.0.0.1:0\n",
        dir.join("spool").display()
    );
    Config::from_yaml_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

struct Running {
    metrics: SocketAddr,
    grpc: SocketAddr,
    http: SocketAddr,
    reloader: redline_agent::Reloader,
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start_agent(config: Config) -> Running {
    let agent = redline_agent::bind(config).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let (metrics, grpc, http) = (
        agent.metrics_addr(),
        agent.otlp_grpc_addr(),
        agent.otlp_http_addr(),
    );
    let reloader = agent.reloader();
    let done = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));
    Running {
        metrics,
        grpc,
        http,
        reloader,
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
}

fn plain() -> reqwest::Client {
    redline_agent::install_crypto_provider();
    reqwest::Client::new()
}

fn span_body() -> Vec<u8> {
    ExportTraceServiceRequest::default().encode_to_vec()
}

async fn post_span(client: &reqwest::Client, url: &str, token: Option<&str>) -> u16 {
    let mut req = client
        .post(url)
        .header("content-type", "application/x-protobuf")
        .body(span_body());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap().status().as_u16()
}

async fn get(client: &reqwest::Client, url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn grpc_logs(
    endpoint: tonic::transport::Endpoint,
    token: Option<&str>,
) -> Result<(), tonic::Status> {
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut client = LogsServiceClient::new(channel);
    let mut req = tonic::Request::new(ExportLogsServiceRequest::default());
    if let Some(t) = token {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    client.export(req).await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_guard_relay_and_metrics_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let relay_token = write(dir.path(), "relay-token", "apps-token\n");
    let metrics_token = write(dir.path(), "metrics-token", "scrape-token");
    let mut cfg = config(dir.path(), "");
    cfg.relay.token_file = Some(relay_token.clone());
    cfg.telemetry.token_file = Some(metrics_token);
    let agent = start_agent(cfg).await;
    let http = plain();
    let traces = format!("http://{}/v1/traces", agent.http);
    let metrics = format!("http://{}/metrics", agent.metrics);

    assert_eq!(post_span(&http, &traces, None).await, 401);
    assert_eq!(post_span(&http, &traces, Some("apps-tokeN")).await, 401);
    assert_eq!(post_span(&http, &traces, Some("apps-token")).await, 200);

    let grpc = tonic::transport::Endpoint::from_shared(format!("http://{}", agent.grpc)).unwrap();
    let refused = grpc_logs(grpc.clone(), Some("nope")).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    grpc_logs(grpc.clone(), Some("apps-token")).await.unwrap();

    let (status, _) = get(&http, &metrics, None).await;
    assert_eq!(status, 401);
    let (status, _) = get(&http, &format!("http://{}/healthz", agent.metrics), None).await;
    assert_eq!(status, 200, "probes need no token");
    let (status, text) = get(&http, &metrics, Some("scrape-token")).await;
    assert_eq!(status, 200);
    for needle in [
        r#"redline_agent_unauthenticated_total{listener="relay_http"} 2"#,
        r#"redline_agent_unauthenticated_total{listener="relay_grpc"} 1"#,
        r#"redline_agent_unauthenticated_total{listener="metrics"} 1"#,
        r#"redline_agent_relay_received_total{signal="logs",protocol="grpc"} 0"#,
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }

    // A new token takes effect on reload; the old one stops working.
    std::fs::write(&relay_token, "rotated").unwrap();
    agent.reloader.reload();
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while post_span(&http, &traces, Some("rotated")).await != 200 {
        assert!(tokio::time::Instant::now() < until, "reload never applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(post_span(&http, &traces, Some("apps-token")).await, 401);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_and_metrics_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let server_ca = Ca::new("agent listener CA");
    let apps_ca = Ca::new("apps CA");
    let (cert, key) = server_ca.leaf(&["localhost", "127.0.0.1"], false);
    let cert_file = write(dir.path(), "relay.pem", &cert);
    let key_file = write(dir.path(), "relay-key.pem", &key);
    let apps_ca_file = write(dir.path(), "apps-ca.pem", &apps_ca.pem());
    let extra = format!(
        "  tls:\n    cert_file: {}\n    key_file: {}\n    client_ca_file: {}\n",
        cert_file.display(),
        key_file.display(),
        apps_ca_file.display()
    );
    let mut cfg = config(dir.path(), &extra);
    cfg.telemetry.tls = cfg.relay.tls.clone();
    let agent = start_agent(cfg).await;

    let (app_cert, app_key) = apps_ca.leaf(&["app.internal"], false);
    redline_agent::install_crypto_provider();
    let trusted = reqwest::Certificate::from_pem(server_ca.pem().as_bytes()).unwrap();
    let with_cert = reqwest::Client::builder()
        .tls_certs_only([trusted.clone()])
        .identity(reqwest::Identity::from_pem(format!("{app_cert}{app_key}").as_bytes()).unwrap())
        .build()
        .unwrap();
    let without_cert = reqwest::Client::builder()
        .tls_certs_only([trusted])
        .build()
        .unwrap();
    let traces = format!("https://localhost:{}/v1/traces", agent.http.port());
    assert_eq!(post_span(&with_cert, &traces, None).await, 200);
    assert!(
        without_cert
            .post(&traces)
            .header("content-type", "application/x-protobuf")
            .body(span_body())
            .send()
            .await
            .is_err(),
        "no client certificate, no service"
    );
    // Plain text to a TLS port gets nowhere either.
    assert!(
        plain()
            .post(format!("http://127.0.0.1:{}/v1/traces", agent.http.port()))
            .body(span_body())
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .is_err()
    );

    // gRPC over mutual TLS.
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(server_ca.pem()))
        .identity(Identity::from_pem(&app_cert, &app_key))
        .domain_name("localhost");
    let grpc =
        tonic::transport::Endpoint::from_shared(format!("https://127.0.0.1:{}", agent.grpc.port()))
            .unwrap()
            .tls_config(tls)
            .unwrap();
    grpc_logs(grpc, None).await.unwrap();

    let (status, text) = get(
        &with_cert,
        &format!("https://localhost:{}/metrics", agent.metrics.port()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    // The host batch plus the HTTP and the gRPC request, spooled (the collector is away).
    assert!(text.contains("redline_agent_spool_records 3"), "{text}");
    assert!(
        !text.contains(r#"redline_agent_tls_handshake_failures_total{listener="relay_http"} 0"#),
        "the refused handshakes are counted: {text}"
    );
    agent.stop().await;
}

/// OTLP/HTTP export over mutual TLS with a token, to a real OTLP/HTTP receiver: a second
/// agent's relay, which demands all three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_export_over_mutual_tls_with_token() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("redline test CA");
    let (cert, key) = ca.leaf(&["receiver.internal"], false);
    let (client_cert, client_key) = ca.leaf(&["sender.internal"], false);
    let ca_file = write(dir.path(), "ca.pem", &ca.pem());
    let receiver_dir = dir.path().join("receiver");
    std::fs::create_dir_all(&receiver_dir).unwrap();
    let extra = format!(
        "  token_file: {}\n  tls:\n    cert_file: {}\n    key_file: {}\n    client_ca_file: {}\n",
        write(dir.path(), "token", "between-agents").display(),
        write(dir.path(), "receiver.pem", &cert).display(),
        write(dir.path(), "receiver-key.pem", &key).display(),
        ca_file.display()
    );
    let receiver = start_agent(config(&receiver_dir, &extra)).await;

    let sender_dir = dir.path().join("sender");
    std::fs::create_dir_all(&sender_dir).unwrap();
    let mut cfg = config(&sender_dir, "");
    cfg.exporter.protocol = redline_agent::config::Protocol::Http;
    cfg.exporter.endpoint = Some(
        format!("https://127.0.0.1:{}", receiver.http.port())
            .parse()
            .unwrap(),
    );
    cfg.exporter.token_file = Some(write(dir.path(), "sender-token", "between-agents"));
    cfg.exporter.tls = Some(redline_agent::config::ClientTlsConfig {
        ca_file,
        client_cert: Some((
            write(dir.path(), "sender.pem", &client_cert),
            write(dir.path(), "sender-key.pem", &client_key),
        )),
        server_name: Some("receiver.internal".into()),
    });
    cfg.exporter.retry.initial_backoff = Duration::from_millis(50);
    cfg.validate().unwrap();
    let sender = start_agent(cfg).await;

    let http = plain();
    let url = format!("http://{}/metrics", receiver.metrics);
    let needle =
        r#"redline_agent_relay_received_total{signal="metrics",protocol="http_protobuf"} 0"#;
    let until = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, text) = get(&http, &url, None).await;
        if text.contains(
            "redline_agent_relay_received_total{signal=\"metrics\",protocol=\"http_protobuf\"}",
        ) && !text.contains(needle)
        {
            assert!(
                text.contains(r#"redline_agent_unauthenticated_total{listener="relay_http"} 0"#),
                "{text}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "no export arrived:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The sender counts the success once the answer is back: poll for it.
    let needle = r#"redline_agent_export_requests_total{signal="metrics",outcome="success"} 1"#;
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, text) = get(&http, &format!("http://{}/metrics", sender.metrics), None).await;
        if text.contains(needle) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "{needle} never in:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sender.stop().await;
    receiver.stop().await;
}
