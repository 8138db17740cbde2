//! "Nobody let in", exporter side: the agent exports over TLS (rustls, ring) with a bearer
//! token to a real TLS gRPC server on 127.0.0.1, with certificates generated here (rcgen).
//! Good credentials deliver; a wrong token is counted and the data stays spooled until a
//! reload fixes it; an unknown CA and an expired certificate fail cleanly (counted as `tls`,
//! nothing delivered, nothing dropped); mutual TLS and a server-name override work.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use redline_agent::Config;
use tokio::sync::oneshot;
use tonic::codec::CompressionEncoding;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tonic::{Request, Response, Status};

use common::Ca;

/// What the TLS collector saw.
#[derive(Default)]
struct Seen {
    /// Accepted metrics requests.
    accepted: AtomicUsize,
    /// Calls refused for their token.
    refused: AtomicUsize,
    /// `authorization` values presented.
    tokens: Mutex<Vec<String>>,
}

#[derive(Clone)]
struct Collector {
    seen: Arc<Seen>,
    token: &'static str,
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        req: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let auth = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        self.seen.tokens.lock().unwrap().push(auth.clone());
        if auth != format!("Bearer {}", self.token) {
            self.seen.refused.fetch_add(1, Ordering::SeqCst);
            return Err(Status::unauthenticated("bad token"));
        }
        self.seen.accepted.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// Starts a TLS gRPC collector with `cert`/`key`, requiring client certificates from
/// `client_ca` when given, and the bearer token `token`.
async fn start_collector(
    cert: &(String, String),
    client_ca: Option<&Ca>,
    token: &'static str,
) -> (SocketAddr, Arc<Seen>) {
    redline_agent::install_crypto_provider();
    let seen = Arc::new(Seen::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(&cert.0, &cert.1));
    if let Some(ca) = client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(ca.pem()));
    }
    let svc = Collector {
        seen: seen.clone(),
        token,
    };
    tokio::spawn(
        tonic::transport::Server::builder()
            .tls_config(tls)
            .unwrap()
            .add_service(
                MetricsServiceServer::new(svc).accept_compressed(CompressionEncoding::Gzip),
            )
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (addr, seen)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// An agent exporting to `https://{host}:{port}` with one host collection per hour (so one
/// batch), trusting `ca`.
fn config(dir: &Path, host: &str, port: u16, ca: &Ca) -> Config {
    let yaml = format!(
        "exporter:\n  endpoint: https://{host}:{port}\n  timeout: 2s\n  retry_initial_backoff: 50ms\n  retry_max_backoff: 300ms\n  drain_timeout: 300ms\n  queue:\n    directory: {}\n  tls:\n    ca_file: {}\n\
         host_metrics:\n  interval: 1h\n\
         relay:\n  grpc_listen: 127.0.0.1:0\n  http_listen: 127.0.0.1:0\n\
         telemetry:\n  listen: 127.0.0.1:0\n",
        dir.join("spool").display(),
        write(dir, "ca.pem", &ca.pem()).display(),
    );
    Config::from_yaml_str(&yaml).unwrap()
}

struct Running {
    metrics: SocketAddr,
    reloader: redline_agent::Reloader,
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start_agent(config: Config) -> Running {
    let agent = redline_agent::bind(config).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let metrics = agent.metrics_addr();
    let reloader = agent.reloader();
    let done = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));
    Running {
        metrics,
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

    async fn scrape(&self) -> String {
        redline_agent::install_crypto_provider();
        reqwest::Client::new()
            .get(format!("http://{}/metrics", self.metrics))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn scrape_until(&self, needle: &str) -> String {
        self.scrape_until_at_least(needle, None).await
    }

    /// Scrapes until the text contains `series` (with `Some(n)`: until its value is at least
    /// `n`, so a counter that moves on between scrapes is not missed).
    async fn scrape_until_at_least(&self, series: &str, n: Option<f64>) -> String {
        let until = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let text = self.scrape().await;
            let found = match n {
                None => text.contains(series),
                Some(n) => text
                    .lines()
                    .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
                    .is_some_and(|v| v >= n),
            };
            if found {
                return text;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "{series} never in:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let until = tokio::time::Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(tokio::time::Instant::now() < until, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const NOTHING_DROPPED: &str =
    r#"redline_agent_dropped_total{signal="metrics",reason="permanent_error"} 0"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_token_and_server_name_delivers() {
    let ca = Ca::new("redline test CA");
    // The certificate names the collector, not the address the agent dials.
    let server = ca.leaf(&["collector.internal"], false);
    let (addr, seen) = start_collector(&server, Some(&ca), "s3cret").await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = ca.leaf(&["agent.internal"], false);
    let mut cfg = config(dir.path(), "127.0.0.1", addr.port(), &ca);
    let tls = cfg.exporter.tls.as_mut().unwrap();
    tls.client_cert = Some((
        write(dir.path(), "agent.pem", &cert),
        write(dir.path(), "agent-key.pem", &key),
    ));
    tls.server_name = Some("collector.internal".into());
    cfg.exporter.token_file = Some(write(dir.path(), "token", "  s3cret\n"));
    let agent = start_agent(cfg).await;
    eventually("a metrics export over mTLS", || {
        seen.accepted.load(Ordering::SeqCst) >= 1
    })
    .await;
    assert_eq!(seen.tokens.lock().unwrap()[0], "Bearer s3cret");
    agent
        .scrape_until(
            r#"redline_agent_export_requests_total{signal="metrics",outcome="success"} 1"#,
        )
        .await;
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_without_client_certificate_is_refused() {
    let ca = Ca::new("redline test CA");
    let server = ca.leaf(&["127.0.0.1"], false);
    let (addr, seen) = start_collector(&server, Some(&ca), "t").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), "127.0.0.1", addr.port(), &ca);
    cfg.exporter.token_file = Some(write(dir.path(), "token", "t"));
    let agent = start_agent(cfg).await;
    let text = agent
        .scrape_until_at_least(
            r#"redline_agent_export_failures_total{signal="metrics",reason="tls"}"#,
            Some(2.0),
        )
        .await;
    assert!(text.contains(NOTHING_DROPPED), "{text}");
    assert_eq!(seen.accepted.load(Ordering::SeqCst), 0);
    agent.stop().await;
}

/// 401/UNAUTHENTICATED is permanent by the OTLP specification, but a wrong token is an
/// operator's fix away: the agent counts it, keeps the data spooled and retries slowly; a
/// reload (SIGHUP) with the right token delivers it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_keeps_the_data_until_a_reload_fixes_it() {
    let ca = Ca::new("redline test CA");
    let server = ca.leaf(&["localhost"], false);
    let (addr, seen) = start_collector(&server, None, "right").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), "localhost", addr.port(), &ca);
    let token = write(dir.path(), "token", "wrong\n");
    cfg.exporter.token_file = Some(token.clone());
    let agent = start_agent(cfg).await;
    let text = agent
        .scrape_until_at_least(
            r#"redline_agent_export_failures_total{signal="metrics",reason="unauthenticated"}"#,
            Some(2.0),
        )
        .await;
    assert!(text.contains(NOTHING_DROPPED), "{text}");
    assert!(text.contains("redline_agent_spool_records 1"), "{text}");
    assert_eq!(seen.accepted.load(Ordering::SeqCst), 0);

    // A broken token file is refused by the reload, which keeps the old client.
    std::fs::write(&token, "").unwrap();
    agent.reloader.reload();
    agent
        .scrape_until(r#"redline_agent_reloads_total{result="failure"} 1"#)
        .await;
    std::fs::write(&token, "right\n").unwrap();
    agent.reloader.reload();
    eventually("delivery after the reload", || {
        seen.accepted.load(Ordering::SeqCst) >= 1
    })
    .await;
    let text = agent.scrape_until("redline_agent_spool_records 0").await;
    assert!(
        text.contains(r#"redline_agent_reloads_total{result="success"} 1"#),
        "{text}"
    );
    assert!(seen.refused.load(Ordering::SeqCst) >= 2);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ca_fails_cleanly() {
    let ca = Ca::new("the collector's CA");
    let other = Ca::new("some other CA");
    let server = ca.leaf(&["127.0.0.1"], false);
    let (addr, seen) = start_collector(&server, None, "t").await;
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(config(dir.path(), "127.0.0.1", addr.port(), &other)).await;
    let text = agent
        .scrape_until_at_least(
            r#"redline_agent_export_failures_total{signal="metrics",reason="tls"}"#,
            Some(2.0),
        )
        .await;
    assert!(text.contains(NOTHING_DROPPED), "{text}");
    assert!(text.contains("redline_agent_spool_records 1"), "{text}");
    assert_eq!(
        seen.tokens.lock().unwrap().len(),
        0,
        "no request got through"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_server_certificate_fails_cleanly() {
    let ca = Ca::new("redline test CA");
    let server = ca.leaf(&["127.0.0.1"], true);
    let (addr, seen) = start_collector(&server, None, "t").await;
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(config(dir.path(), "127.0.0.1", addr.port(), &ca)).await;
    let text = agent
        .scrape_until_at_least(
            r#"redline_agent_export_failures_total{signal="metrics",reason="tls"}"#,
            Some(2.0),
        )
        .await;
    assert!(text.contains(NOTHING_DROPPED), "{text}");
    assert_eq!(seen.tokens.lock().unwrap().len(), 0);
    agent.stop().await;
}

/// `validate` (and start) read the files: a key that does not belong to the certificate is
/// named with its file.
#[test]
fn mismatched_client_key_is_named() {
    let ca = Ca::new("redline test CA");
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = ca.leaf(&["agent"], false);
    let (_, other_key) = ca.leaf(&["agent"], false);
    let mut cfg = config(dir.path(), "127.0.0.1", 1, &ca);
    cfg.exporter.tls.as_mut().unwrap().client_cert = Some((
        write(dir.path(), "agent.pem", &cert),
        write(dir.path(), "other-key.pem", &other_key),
    ));
    let e = cfg.validate().unwrap_err().to_string();
    assert!(
        e.contains("exporter.tls.key_file") && e.contains("other-key.pem"),
        "{e}"
    );
}

/// SIGHUP re-reads `agent.yaml`: a new collector endpoint and token take over the export
/// (with a fresh host collection at once, since `host_metrics` changed), the relay starts
/// asking for a token, and a broken file changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_configuration_moves_the_export_and_guards_the_relay() {
    let ca = Ca::new("redline test CA");
    let server = ca.leaf(&["localhost"], false);
    let (first, first_seen) = start_collector(&server, None, "alpha").await;
    let (second, second_seen) = start_collector(&server, None, "beta").await;
    let dir = tempfile::tempdir().unwrap();
    let base = config(dir.path(), "localhost", first.port(), &ca);
    let ca_file = dir.path().join("ca.pem");
    let yaml = |port: u16, token: &Path, extra: &str| {
        format!(
            "exporter:\n  endpoint: https://localhost:{port}\n  timeout: 2s\n  retry_initial_backoff: 50ms\n  retry_max_backoff: 300ms\n  drain_timeout: 300ms\n  token_file: {}\n  queue:\n    directory: {}\n  tls:\n    ca_file: {}\n\
             host_metrics:\n  interval: 1h\n{extra}\
             relay:\n  grpc_listen: 127.0.0.1:0\n  http_listen: 127.0.0.1:0\n{}\
             telemetry:\n  listen: 127.0.0.1:0\n",
            token.display(),
            base.exporter.queue.directory.display(),
            ca_file.display(),
            if extra.is_empty() {
                String::new()
            } else {
                format!(
                    "  token_file: {}\n",
                    write(dir.path(), "relay-token", "app\n").display()
                )
            },
        )
    };
    let alpha = write(dir.path(), "alpha", "alpha\n");
    let beta = write(dir.path(), "beta", "beta\n");
    let path = write(dir.path(), "agent.yaml", &yaml(first.port(), &alpha, ""));
    let mut agent = redline_agent::bind(redline_agent::Config::load(&path).unwrap())
        .await
        .unwrap();
    let source_path = path.clone();
    agent.reload_config_from(Arc::new(move || {
        redline_agent::Config::load(&source_path).map_err(|e| e.to_string())
    }));
    let relay = agent.otlp_http_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = Running {
        metrics: agent.metrics_addr(),
        reloader: agent.reloader(),
        stop,
        done: tokio::spawn(agent.run(async move {
            let _ = stopped.await;
        })),
    };
    eventually("the first collection at the first collector", || {
        first_seen.accepted.load(Ordering::SeqCst) >= 1
    })
    .await;
    let post = || async {
        reqwest::Client::new()
            .post(format!("http://{relay}/v1/metrics"))
            .header("content-type", "application/x-protobuf")
            .body(Vec::<u8>::new())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(post().await, 200, "the relay is open");

    std::fs::write(
        &path,
        yaml(
            second.port(),
            &beta,
            "  resource_attributes:\n    deployment.environment: reloaded\n",
        ),
    )
    .unwrap();
    running.reloader.reload();
    eventually("a collection at the second collector", || {
        second_seen.accepted.load(Ordering::SeqCst) >= 1
    })
    .await;
    assert_eq!(second_seen.refused.load(Ordering::SeqCst), 0);
    assert!(
        second_seen
            .tokens
            .lock()
            .unwrap()
            .iter()
            .all(|t| t == "Bearer beta"),
        "the new token goes with the new endpoint"
    );
    running
        .scrape_until(r#"redline_agent_reloads_total{result="success"} 1"#)
        .await;
    assert_eq!(post().await, 401, "the relay now asks for a token");

    std::fs::write(&path, "exporter:\n  bogus: 1\n").unwrap();
    running.reloader.reload();
    running
        .scrape_until(r#"redline_agent_reloads_total{result="failure"} 1"#)
        .await;
    assert_eq!(post().await, 401, "a broken file changes nothing");
    running.stop().await;
}
