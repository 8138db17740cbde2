//! Tokens and TLS on the collector's listeners, against real clients: tonic and reqwest over
//! rustls, and the OpenTelemetry Python SDK's stock exporters (gRPC over TLS with a client
//! certificate and a bearer token from its standard environment variables).
//!
//! Each refusal must be clean (the protocol's status, a counter) and leave the collector
//! serving: no token, a wrong token, a token of another scope, plaintext to a TLS port, a
//! client without a certificate where one is required, an expired server certificate after a
//! reload, and a bad file at reload (the certificates in force stay).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use redline_collector::config::{Config, ListenerName, SecurityConfig, TlsConfig};
use redline_collector::listen::{TlsFiles, TokenFiles};
use support::certs::Pki;
use support::otlp;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

struct Started {
    grpc: std::net::SocketAddr,
    otlp_http: std::net::SocketAddr,
    http: std::net::SocketAddr,
    reloader: redline_collector::Reloader,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(config: Config) -> Started {
    let collector = redline_collector::bind(config).await.unwrap();
    let (grpc, otlp_http, http) = (
        collector.otlp_grpc_addr(),
        collector.otlp_http_addr(),
        collector.http_addr(),
    );
    let reloader = collector.reloader();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(collector.run(async {
        let _ = rx.await;
    }));
    Started {
        grpc,
        otlp_http,
        http,
        reloader,
        stop,
        task,
    }
}

impl Started {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn request(
    name: &str,
    value: f64,
) -> tonic::Request<opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest>
{
    tonic::Request::new(otlp::gauge(
        &[("service.name", "app"), ("host.name", "h1")],
        name,
        "",
        &[(otlp::now_ms(), value)],
        &[],
    ))
}

fn with_token<T>(mut r: tonic::Request<T>, token: &str) -> tonic::Request<T> {
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

/// The value of one series of the collector's own `/metrics`, or 0.
fn metric_value(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn tokens_guard_ingest_reads_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        security: SecurityConfig {
            tokens: TokenFiles {
                ingest: Some(write(dir.path(), "ingest", "agent-one\nagent-two\n")),
                read: Some(write(dir.path(), "read", "reader\n")),
                write: Some(write(dir.path(), "write", "writer\n")),
            },
            tls: None,
        },
        ..support::collector::config(&dir.path().join("data"))
    };
    let c = start(config).await;

    // gRPC: no token, an unknown one, one of another scope, then each agent's own.
    let mut grpc = MetricsServiceClient::connect(format!("http://{}", c.grpc))
        .await
        .unwrap();
    let e = grpc.export(request("t_metric", 1.0)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    assert!(e.message().contains("Authorization: Bearer"), "{e:?}");
    let e = grpc
        .export(with_token(request("t_metric", 1.0), "nope"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    let e = grpc
        .export(with_token(request("t_metric", 1.0), "reader"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    grpc.export(with_token(request("t_metric", 1.0), "agent-one"))
        .await
        .unwrap();
    grpc.export(with_token(request("t_metric", 2.0), "agent-two"))
        .await
        .unwrap();

    // OTLP/HTTP: 401 with a google.rpc.Status body (code 16) before the body is looked at.
    let http = reqwest::Client::new();
    let body = prost::Message::encode_to_vec(&request("t_metric", 3.0).into_inner());
    let r = http
        .post(format!("http://{}/v1/metrics", c.otlp_http))
        .header("content-type", "application/x-protobuf")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        r.headers().get("www-authenticate").unwrap(),
        "Bearer",
        "{r:?}"
    );
    let bytes = r.bytes().await.unwrap();
    // google.rpc.Status { code: 16 }: field 1, varint 16.
    assert_eq!(&bytes[..2], &[0x08, 16], "{bytes:?}");
    let r = http
        .post(format!("http://{}/v1/metrics", c.otlp_http))
        .header("content-type", "application/x-protobuf")
        .bearer_auth("agent-two")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // The API: reads need a read (or write) token, changes a write token; probes are open.
    let api = |path: &str| format!("http://{}{path}", c.http);
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(status(http.get(api("/healthz")).send().await.unwrap()), 200);
    assert_eq!(status(http.get(api("/readyz")).send().await.unwrap()), 200);
    let r = http
        .get(api("/api/v1/query?query=t_metric"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["errorType"], "unauthorized", "{body}");
    assert_eq!(
        status(
            http.get(api("/api/v1/query?query=t_metric"))
                .bearer_auth("agent-one")
                .send()
                .await
                .unwrap()
        ),
        403,
        "an ingest token does not read"
    );
    let r = http
        .post(api("/api/v1/query"))
        .bearer_auth("reader")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("query=t_metric")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["data"]["result"][0]["value"][1], "3", "{body}");
    assert_eq!(
        status(
            http.get(api("/metrics"))
                .bearer_auth("writer")
                .send()
                .await
                .unwrap()
        ),
        200,
        "a write token reads"
    );
    assert_eq!(status(http.get(api("/metrics")).send().await.unwrap()), 401);
    let r = http
        .post(api("/-/reload"))
        .bearer_auth("reader")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "a read token does not write");
    assert_eq!(
        status(
            http.post(api("/-/reload"))
                .bearer_auth("writer")
                .send()
                .await
                .unwrap()
        ),
        200
    );

    // Rotation: a new token file, reloaded, turns the old token away.
    write(dir.path(), "ingest", "agent-three\n");
    assert!(c.reloader.reload().await.unwrap().errors.is_empty());
    let e = grpc
        .export(with_token(request("t_metric", 4.0), "agent-one"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    grpc.export(with_token(request("t_metric", 4.0), "agent-three"))
        .await
        .unwrap();
    // A broken token file at reload keeps the tokens in force and says so.
    write(dir.path(), "ingest", "\n");
    let problems = c.reloader.reload().await.unwrap().errors;
    assert!(
        problems
            .iter()
            .any(|p| p.contains("ingest token file has no token")),
        "{problems:?}"
    );
    grpc.export(with_token(request("t_metric", 5.0), "agent-three"))
        .await
        .unwrap();

    let text = http
        .get(api("/metrics"))
        .bearer_auth("reader")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let denied = |listener: &str, reason: &str| {
        metric_value(
            &text,
            "redline_collector_unauthenticated_total",
            &[
                &format!("listener=\"{listener}\""),
                &format!("reason=\"{reason}\""),
            ],
        )
    };
    assert!(denied("otlp_grpc", "missing") >= 1.0, "{text}");
    assert!(denied("otlp_grpc", "invalid") >= 2.0, "{text}");
    assert!(denied("otlp_grpc", "forbidden") >= 1.0, "{text}");
    assert!(denied("otlp_http", "missing") >= 1.0, "{text}");
    assert!(denied("http", "forbidden") >= 1.0, "{text}");

    // The command-line tools take the token from the file REDLINE_TOKEN_FILE names.
    let cli = |token_file: Option<&Path>| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_redline-collector"));
        cmd.args(["incident", "list", "--url", &api("")]);
        if let Some(f) = token_file {
            cmd.env("REDLINE_TOKEN_FILE", f);
        }
        cmd.output()
    };
    let out = cli(None).await.unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(Some(&dir.path().join("read"))).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.stop().await;
}

fn tls_config(dir: &Path, pki: &Pki, server: &support::certs::Pair, tokens: TokenFiles) -> Config {
    Config {
        security: SecurityConfig {
            tokens,
            tls: Some(TlsConfig {
                files: TlsFiles {
                    cert_file: server.cert_file.clone(),
                    key_file: server.key_file.clone(),
                    client_ca_file: Some(pki.ca_file.clone()),
                },
                listeners: ListenerName::ALL.to_vec(),
                client_auth_listeners: vec![ListenerName::OtlpGrpc],
            }),
        },
        ..support::collector::config(&dir.join("data"))
    }
}

async fn grpc_tls(
    addr: std::net::SocketAddr,
    ca_pem: &str,
    client: Option<&support::certs::Pair>,
) -> Result<MetricsServiceClient<Channel>, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some(client) = client {
        tls = tls.identity(Identity::from_pem(&client.cert_pem, &client.key_pem));
    }
    let channel = Channel::from_shared(format!("https://127.0.0.1:{}", addr.port()))
        .unwrap()
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?;
    Ok(MetricsServiceClient::new(channel))
}

fn https_client(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn tls_mtls_and_certificate_reload() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "test-ca");
    let server = pki.server("server", false);
    let client = pki.client("agent");
    let tokens = TokenFiles {
        ingest: Some(write(dir.path(), "ingest", "agent-token\n")),
        ..TokenFiles::default()
    };
    let c = start(tls_config(dir.path(), &pki, &server, tokens)).await;
    let ca = pki.ca_pem();

    // gRPC with the client certificate and the token.
    let mut grpc = grpc_tls(c.grpc, &ca, Some(&client)).await.unwrap();
    grpc.export(with_token(request("tls_metric", 1.0), "agent-token"))
        .await
        .unwrap();
    // The certificate is not the token: without it, the request is still refused.
    let e = grpc.export(request("tls_metric", 1.0)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);

    // Without a client certificate the handshake fails (the server requires one).
    let refused = match grpc_tls(c.grpc, &ca, None).await {
        Err(_) => true,
        Ok(mut g) => g
            .export(with_token(request("tls_metric", 1.0), "agent-token"))
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate must be refused");

    // OTLP/HTTP and the API speak TLS without client certificates.
    let https = https_client(&ca);
    let r = https
        .get(format!("https://localhost:{}/healthz", c.http.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body = prost::Message::encode_to_vec(&request("tls_metric", 2.0).into_inner());
    let r = https
        .post(format!(
            "https://127.0.0.1:{}/v1/metrics",
            c.otlp_http.port()
        ))
        .header("content-type", "application/x-protobuf")
        .bearer_auth("agent-token")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // Plaintext to a TLS port: the connection is closed, the collector carries on.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    assert!(
        plain
            .get(format!("http://127.0.0.1:{}/healthz", c.http.port()))
            .send()
            .await
            .is_err()
    );
    // A client that does not trust our CA refuses the server.
    let stranger = Pki::new(dir.path(), "other-ca");
    assert!(
        https_client(&stranger.ca_pem())
            .get(format!("https://localhost:{}/healthz", c.http.port()))
            .send()
            .await
            .is_err()
    );

    // The OpenTelemetry Python SDK, over gRPC with TLS, a client certificate and a token,
    // configured through its standard environment variables.
    {
        // tokio's Command: the collector runs on this test's one runtime thread.
        let out = tokio::process::Command::new(support::smtp::python())
            .arg(support::smtp::workspace_root().join("tests/python/send_metrics.py"))
            .args([
                "--endpoint",
                &format!("https://localhost:{}", c.grpc.port()),
                "--protocol",
                "grpc",
                "--service",
                "tls-sdk",
            ])
            .env("OTEL_EXPORTER_OTLP_CERTIFICATE", &pki.ca_file)
            .env("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &client.cert_file)
            .env("OTEL_EXPORTER_OTLP_CLIENT_KEY", &client.key_file)
            .env(
                "OTEL_EXPORTER_OTLP_HEADERS",
                "authorization=Bearer%20agent-token",
            )
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "python SDK over TLS: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Renewal gone wrong: an expired certificate is installed and reloaded. New connections
    // now fail verification; then a good certificate is reloaded and they work again.
    let expired = pki.server("expired", true);
    std::fs::copy(&expired.cert_file, &server.cert_file).unwrap();
    std::fs::copy(&expired.key_file, &server.key_file).unwrap();
    assert!(c.reloader.reload().await.unwrap().errors.is_empty());
    // A new client: a pooled connection would still carry the old certificate.
    let err = https_client(&ca)
        .get(format!("https://localhost:{}/healthz", c.http.port()))
        .send()
        .await
        .unwrap_err();
    let chain = format!("{err:?}");
    assert!(chain.to_lowercase().contains("expired"), "{chain}");
    let fresh = pki.server("fresh", false);
    std::fs::copy(&fresh.cert_file, &server.cert_file).unwrap();
    std::fs::copy(&fresh.key_file, &server.key_file).unwrap();
    assert!(c.reloader.reload().await.unwrap().errors.is_empty());
    assert_eq!(
        https_client(&ca)
            .get(format!("https://localhost:{}/healthz", c.http.port()))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    // A key that does not fit is refused at reload; the certificate in force stays.
    std::fs::write(&server.key_file, &client.key_pem).unwrap();
    let problems = c.reloader.reload().await.unwrap().errors;
    assert!(
        problems.iter().any(|p| p.contains("does not fit")),
        "{problems:?}"
    );
    let text = https_client(&ca)
        .get(format!("https://localhost:{}/metrics", c.http.port()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metric_value(
            &text,
            "redline_collector_tls_handshake_failures_total",
            &["listener=\"http\""]
        ) >= 2.0,
        "{text}"
    );
    assert!(
        metric_value(
            &text,
            "redline_collector_tls_handshake_failures_total",
            &["listener=\"otlp_grpc\""]
        ) >= 1.0,
        "{text}"
    );
    c.stop().await;
}

#[test]
fn validate_names_unreadable_security_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "collector.yml",
        &format!(
            "auth:\n  ingest_token_file: {0}/missing.token\n",
            dir.path().display()
        ),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_redline-collector"))
        .args(["validate", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("missing.token: cannot read the ingest token file"),
        "{stderr}"
    );

    let pki = Pki::new(dir.path(), "ca");
    let server = pki.server("server", false);
    let client = pki.client("client");
    let config = write(
        dir.path(),
        "collector.yml",
        &format!(
            "tls:\n  cert_file: {}\n  key_file: {}\n",
            server.cert_file.display(),
            client.key_file.display()
        ),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_redline-collector"))
        .args(["validate", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("client.key: the key does not fit the certificate"),
        "{stderr}"
    );
    let config = write(
        dir.path(),
        "collector.yml",
        "tls:\n  cert_file: /x\n  key_file: /y\n  listeners: [grpc]\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_redline-collector"))
        .args(["validate", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tls.listeners: \"grpc\" is not one of otlp_grpc, otlp_http, http"),
        "{stderr}"
    );
}

/// A configuration reload (as SIGHUP does, through the collector's config source) turns on
/// ingest tokens and lowers the cardinality limit for the requests that follow; the series
/// already stored keep being written.
#[tokio::test]
async fn a_reloaded_configuration_applies_tokens_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let initial = support::collector::config(&dir.path().join("data"));
    let current = std::sync::Arc::new(std::sync::Mutex::new(initial.clone()));
    let mut collector = redline_collector::bind(initial).await.unwrap();
    let source = current.clone();
    collector.reload_config_from(std::sync::Arc::new(move || {
        Ok(source.lock().unwrap().clone())
    }));
    let grpc_addr = collector.otlp_grpc_addr();
    let reloader = collector.reloader();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(collector.run(async {
        let _ = rx.await;
    }));
    let mut grpc = MetricsServiceClient::connect(format!("http://{grpc_addr}"))
        .await
        .unwrap();
    let first = grpc.export(request("rl_first", 1.0)).await.unwrap();
    assert!(first.into_inner().partial_success.is_none());

    {
        let mut next = current.lock().unwrap();
        next.security.tokens.ingest = Some(write(dir.path(), "ingest", "agent\n"));
        next.series_limits.max_series = 1;
    }
    let outcome = reloader.reload().await.unwrap();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(
        outcome.changes.applied,
        vec!["limits.max_series", "auth"],
        "{outcome:?}"
    );
    assert!(outcome.changes.restart_required.is_empty());

    let refused = grpc.export(request("rl_first", 2.0)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    // The stored series is still written; a new one is over the limit.
    let kept = grpc
        .export(with_token(request("rl_first", 3.0), "agent"))
        .await
        .unwrap()
        .into_inner();
    assert!(kept.partial_success.is_none(), "{kept:?}");
    let over = grpc
        .export(with_token(request("rl_second", 1.0), "agent"))
        .await
        .unwrap()
        .into_inner();
    let partial = over.partial_success.expect("the new series is refused");
    assert_eq!(partial.rejected_data_points, 1);
    assert!(
        partial.error_message.contains("limits.max_series"),
        "{partial:?}"
    );
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
