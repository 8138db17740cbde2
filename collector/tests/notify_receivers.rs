//! The receivers against real servers on 127.0.0.1: webhooks against an axum server (and a
//! rustls server for TLS), email against a real SMTP server (aiosmtpd, from
//! tests/python/smtp_sink.py run with the venv's Python, which `.ci/run` creates).
//!
//! The TLS material below is a throw-away test CA (valid until 2126) with a server
//! certificate for `localhost`, `receiver.test` and 127.0.0.1 and a client certificate, all
//! ECDSA P-256, made once with the openssl CLI.
#![allow(clippy::unwrap_used)]

mod support;

use support::smtp::Sink;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use redline_collector::notify::config::{
    EmailConfig, HttpClientConfig, SmtpSecurity, TlsConfig, WebhookConfig,
};
use redline_collector::notify::email::{self, EmailError, NoTemplates};
use redline_collector::notify::webhook::{self, WebhookError};
use redline_collector::notify::{LabelSet, Notification, NotifyAlert, payload};
use serde_json::Value;

const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBmjCCAUGgAwIBAgIURjshRhWOv1rO+krb2sBV26wPPWkwCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPUmVkbGluZSBUZXN0IENBMCAXDTI2MTEyNjEzMTUzOVoYDzIx
MjYxMTAyMTMxNTM5WjAaMRgwFgYDVQQDDA9SZWRsaW5lIFRlc3QgQ0EwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAARBVdtG4JzXE5OSdkhUDJUp2w6md1OooTDwZvF1
5p0J12+v6LBxOFG4Cv3mIHQYSzBbhxaVBPRc6s3S8C7CYemDo2MwYTAdBgNVHQ4E
FgQUdRUwI23hXgqtOL/sqBdVng+pefwwHwYDVR0jBBgwFoAUdRUwI23hXgqtOL/s
qBdVng+pefwwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYwCgYIKoZI
zj0EAwIDRwAwRAIgIewdlAXfzfLXz8buUyTUDkLedZkoZ70WCz9qxZXyiw8CIHbm
1Joi50RM9v+Dtry1rJeWKjp0pZZBKVmQLum/X4sm
-----END CERTIFICATE-----
";

const SERVER_CERT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIB1DCCAXqgAwIBAgIUDeRDujkhBHkmzdb3C/C7I9yZsB8wCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPUmVkbGluZSBUZXN0IENBMCAXDTI2MTEyNjEzMTUzOVoYDzIx
MjYxMTAyMTMxNTM5WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAARWKe63HM7yz3GALAb79L1pDh7xIbFkPJn5iDxurW/IVdV4
Esa/LitYGvNhl+6OXSdZCENXGUCoKtRbrEPSs7T2o4GhMIGeMAwGA1UdEwEB/wQC
MAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMBMCkGA1UdEQQi
MCCCCWxvY2FsaG9zdIINcmVjZWl2ZXIudGVzdIcEfwAAATAdBgNVHQ4EFgQUWLZJ
xp3JrlgTCHDwEqi6w9teQegwHwYDVR0jBBgwFoAUdRUwI23hXgqtOL/sqBdVng+p
efwwCgYIKoZIzj0EAwIDSAAwRQIhAKOQnBpZ7FBSvoOAj3cMAepMfeNJbBRoFYra
GcQO6za4AiAwlKT88JUedRE7Qs2GNkLmnJ9+ls6ymC9iAB3PVSSZGw==
-----END CERTIFICATE-----
";

const SERVER_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgdmLRJwqmYQHKdUuQ
X4x6HpWzGW5xKHWh6eyvv/s+CX6hRANCAARWKe63HM7yz3GALAb79L1pDh7xIbFk
PJn5iDxurW/IVdV4Esa/LitYGvNhl+6OXSdZCENXGUCoKtRbrEPSs7T2
-----END PRIVATE KEY-----
";

const CLIENT_CERT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBrDCCAVKgAwIBAgIUDeRDujkhBHkmzdb3C/C7I9yZsCAwCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPUmVkbGluZSBUZXN0IENBMCAXDTI2MTEyNjEzMTUzOVoYDzIx
MjYxMTAyMTMxNTM5WjAZMRcwFQYDVQQDDA5yZWRsaW5lLWNsaWVudDBZMBMGByqG
SM49AgEGCCqGSM49AwEHA0IABOEAXbKdeVu6RGhsDRMkLduqKAccqO/iZU7CkE6Y
QBzaSnlXBHdAi9tfuMnCioJuGUjjtoEcnCM6lvOImOUmXrajdTBzMAwGA1UdEwEB
/wQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMCMB0GA1Ud
DgQWBBRh4Y/xCg1KcA9Va2/M5AdKXQG5mDAfBgNVHSMEGDAWgBR1FTAjbeFeCq04
v+yoF1WeD6l5/DAKBggqhkjOPQQDAgNIADBFAiB/z4CUTLagnk1Q9RiiP/GVigK6
yzxOlAuNfnFH6Yh7HgIhAN5FT1gCzdhT3OXwI8upDoNbrwhuyDMy4PEFVNNjPya/
-----END CERTIFICATE-----
";

const CLIENT_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgwNGS6Y385COi1ucX
orcpuS2gUbP+0E58tJdd+uCGj/6hRANCAAThAF2ynXlbukRobA0TJC3bqigHHKjv
4mVOwpBOmEAc2kp5VwR3QIvbX7jJwoqCbhlI47aBHJwjOpbziJjlJl62
-----END PRIVATE KEY-----
";

// ---------------------------------------------------------------------------------------------
// Notifications

fn set(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn host_alert(instance: &str, ends_at_ms: Option<i64>) -> NotifyAlert {
    NotifyAlert {
        labels: set(&[
            ("alertname", "HighCPU"),
            ("instance", instance),
            ("job", "node"),
            ("severity", "warning"),
        ]),
        annotations: set(&[
            ("summary", "CPU <b>hot</b> & \"busy\""),
            ("runbook", "https://runbooks.example/cpu?a=1&b=2"),
        ]),
        starts_at_ms: now_ms() - 60_000,
        ends_at_ms,
        generator_url: "http://prometheus.example:9090/graph?g0.expr=cpu&g0.tab=1".into(),
    }
}

/// Two firing alerts and one resolved, grouped by alertname.
fn notification() -> Notification {
    let now = now_ms();
    Notification {
        receiver: "team-ops".into(),
        group_key: "{}:{alertname=\"HighCPU\"}".into(),
        group_labels: set(&[("alertname", "HighCPU")]),
        alerts: vec![
            host_alert("host1:9100", None),
            host_alert("host2:9100", None),
            host_alert("host3:9100", Some(now - 1_000)),
        ],
        now_ms: now,
        external_url: "http://redline.example:9190".into(),
        raw_body: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Webhooks: an axum receiver

#[derive(Clone, Debug)]
struct Request {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Request>>>);

impl Received {
    fn all(&self) -> Vec<Request> {
        self.0.lock().unwrap().clone()
    }
}

/// The answer depends on the path: `ok`, `slow` (5 s), `429` (`Retry-After: 7`), `503date`
/// (`Retry-After` as an HTTP date two minutes ahead), `400`, `big500` (100 KiB body),
/// `redirect` (307 to `ok`).
async fn hook(
    State(received): State<Received>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    received.0.lock().unwrap().push(Request {
        path: path.clone(),
        headers,
        body,
    });
    match path.as_str() {
        "ok" => (StatusCode::OK, "ok").into_response(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            (StatusCode::OK, "late").into_response()
        }
        "429" => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "7")],
            "slow down",
        )
            .into_response(),
        "503date" => {
            let when = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(120);
            let date = jiff::fmt::rfc2822::DateTimePrinter::new()
                .timestamp_to_rfc9110_string(&when)
                .unwrap();
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, date)],
                "maintenance",
            )
                .into_response()
        }
        "400" => (StatusCode::BAD_REQUEST, "bad payload: missing field").into_response(),
        "big500" => (StatusCode::INTERNAL_SERVER_ERROR, "x".repeat(100 * 1024)).into_response(),
        "redirect" => (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, "/ok")]).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn hook_server() -> (SocketAddr, Received) {
    let received = Received::default();
    let app = Router::new()
        .route("/{path}", post(hook))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, received)
}

fn webhook_cfg(url: String) -> WebhookConfig {
    WebhookConfig {
        send_resolved: true,
        url,
        http: HttpClientConfig {
            follow_redirects: true,
            ..HttpClientConfig::default()
        },
        max_alerts: 0,
        timeout: Duration::from_secs(10),
        headers: BTreeMap::new(),
        hmac_secret: None,
    }
}

async fn post_once(cfg: &WebhookConfig) -> Result<webhook::Delivered, WebhookError> {
    let client = webhook::build_client(&cfg.http).unwrap();
    let body = payload::encode(&notification(), cfg.max_alerts).unwrap();
    webhook::send(&client, cfg, &body, "notif-1").await
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn webhook_posts_the_alertmanager_payload_signed_with_bearer_and_idempotency_key() {
    let (addr, received) = hook_server().await;
    let mut cfg = webhook_cfg(format!("http://{addr}/ok"));
    cfg.http.authorization = Some("Bearer s3cret".into());
    cfg.hmac_secret = Some("hmac-key".into());
    cfg.headers.insert("X-Team".into(), "ops".into());
    // Protocol headers win over configured ones.
    cfg.headers.insert("Idempotency-Key".into(), "mine".into());
    let client = webhook::build_client(&cfg.http).unwrap();
    let n = notification();
    let body = payload::encode(&n, 0).unwrap();

    // Two attempts of one notification: same key, same bytes, same signature.
    for _ in 0..2 {
        let delivered = webhook::send(&client, &cfg, &body, "notif-7")
            .await
            .unwrap();
        assert_eq!(delivered.status, 200);
    }
    let requests = received.all();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(r.path, "ok");
        assert_eq!(r.body.as_ref(), body.as_slice());
        let h = &r.headers;
        assert_eq!(header_str(h, "content-type"), "application/json");
        assert_eq!(
            header_str(h, "user-agent"),
            concat!("Redline/", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(header_str(h, "authorization"), "Bearer s3cret");
        assert_eq!(header_str(h, "idempotency-key"), "notif-7");
        assert_eq!(h.get_all("idempotency-key").iter().count(), 1);
        assert_eq!(header_str(h, "x-team"), "ops");
        // The receiver's side of the signature check, with ring.
        let signature = header_str(h, "x-redline-signature");
        let hex = signature.strip_prefix("sha256=").unwrap();
        let tag: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"hmac-key");
        ring::hmac::verify(&key, &r.body, &tag).expect("signature verifies");
        let wrong = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"other");
        assert!(ring::hmac::verify(&wrong, &r.body, &tag).is_err());
    }

    let json: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(json["version"], "4");
    assert_eq!(json["receiver"], "team-ops");
    assert_eq!(json["status"], "firing");
    assert_eq!(json["groupKey"], "{}:{alertname=\"HighCPU\"}");
    assert_eq!(json["alerts"].as_array().unwrap().len(), 3);
    assert_eq!(json["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(json["alerts"][2]["status"], "resolved");
    assert_eq!(json["truncatedAlerts"], 0);
    assert_eq!(
        json["alerts"][0]["fingerprint"].as_str().unwrap().len(),
        16,
        "{json}"
    );
    // Go's HTML-safe escaping on the wire.
    let text = String::from_utf8(requests[0].body.to_vec()).unwrap();
    assert!(text.contains("CPU \\u003cb\\u003ehot"), "{text}");
    assert!(text.ends_with("}\n"));
}

#[tokio::test]
async fn webhook_basic_auth() {
    let (addr, received) = hook_server().await;
    let mut cfg = webhook_cfg(format!("http://{addr}/ok"));
    cfg.http.basic_auth = Some(("user".into(), Some("pw".into())));
    // A configured Authorization header does not add a second one.
    cfg.headers
        .insert("Authorization".into(), "Bearer ignored".into());
    post_once(&cfg).await.unwrap();
    let requests = received.all();
    let h = &requests[0].headers;
    assert_eq!(h.get_all("authorization").iter().count(), 1);
    assert_eq!(header_str(h, "authorization"), "Basic dXNlcjpwdw==");
}

#[tokio::test]
async fn webhook_max_alerts_truncates() {
    let (addr, received) = hook_server().await;
    let mut cfg = webhook_cfg(format!("http://{addr}/ok"));
    cfg.max_alerts = 2;
    post_once(&cfg).await.unwrap();
    let json: Value = serde_json::from_slice(&received.all()[0].body).unwrap();
    assert_eq!(json["alerts"].as_array().unwrap().len(), 2);
    assert_eq!(json["truncatedAlerts"], 1);
    // Computed over the alerts sent: both firing.
    assert_eq!(json["status"], "firing");
}

#[tokio::test]
async fn webhook_timeout_is_retryable() {
    let (addr, _) = hook_server().await;
    let mut cfg = webhook_cfg(format!("http://{addr}/slow"));
    cfg.timeout = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let err = post_once(&cfg).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "{err}");
    assert!(err.retryable(), "{err}");
    assert!(
        matches!(err, WebhookError::Transport { timeout: true, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[tokio::test]
async fn webhook_429_is_retryable_after_the_receivers_delay() {
    let (addr, _) = hook_server().await;
    let err = post_once(&webhook_cfg(format!("http://{addr}/429")))
        .await
        .unwrap_err();
    assert!(err.retryable(), "{err}");
    assert_eq!(err.status(), Some(429));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert!(err.to_string().contains("slow down"), "{err}");
}

#[tokio::test]
async fn webhook_503_with_an_http_date_retry_after() {
    let (addr, _) = hook_server().await;
    let err = post_once(&webhook_cfg(format!("http://{addr}/503date")))
        .await
        .unwrap_err();
    assert!(err.retryable(), "{err}");
    assert_eq!(err.status(), Some(503));
    let delay = err.retry_after().unwrap();
    assert!(
        delay > Duration::from_secs(100) && delay <= Duration::from_secs(121),
        "{delay:?}"
    );
}

#[tokio::test]
async fn webhook_400_is_permanent_with_the_body_excerpt() {
    let (addr, _) = hook_server().await;
    let err = post_once(&webhook_cfg(format!("http://{addr}/400")))
        .await
        .unwrap_err();
    assert!(!err.retryable(), "{err}");
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.retry_after(), None);
    let text = err.to_string();
    assert!(text.contains("bad payload: missing field"), "{text}");
    assert!(text.contains("permanent"), "{text}");
}

#[tokio::test]
async fn webhook_500_is_retryable_and_reads_a_bounded_excerpt() {
    let (addr, _) = hook_server().await;
    let err = post_once(&webhook_cfg(format!("http://{addr}/big500")))
        .await
        .unwrap_err();
    assert!(err.retryable(), "{err}");
    assert_eq!(err.status(), Some(500));
    match &err {
        WebhookError::Status { body, .. } => {
            assert_eq!(body.len(), webhook::BODY_EXCERPT_LIMIT);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn webhook_connection_refused_is_retryable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = post_once(&webhook_cfg(format!("http://127.0.0.1:{port}/ok")))
        .await
        .unwrap_err();
    assert!(err.retryable(), "{err}");
    assert!(
        matches!(err, WebhookError::Transport { timeout: false, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn webhook_redirects_follow_the_config() {
    let (addr, received) = hook_server().await;
    let mut cfg = webhook_cfg(format!("http://{addr}/redirect"));
    assert_eq!(post_once(&cfg).await.unwrap().status, 200);
    let paths: Vec<_> = received.all().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["redirect", "ok"]);

    cfg.http.follow_redirects = false;
    let err = post_once(&cfg).await.unwrap_err();
    assert_eq!(err.status(), Some(307));
    assert!(!err.retryable(), "{err}");
}

#[tokio::test]
async fn webhook_errors_redact_credentials_and_query() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cfg = webhook_cfg(format!(
        "http://alice:hunter2@127.0.0.1:{port}/hook?token=t0psecret"
    ));
    let err = post_once(&cfg).await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!text.contains("t0psecret"), "{text}");
    assert!(!text.contains("alice"), "{text}");
    assert!(
        text.contains(&format!("http://127.0.0.1:{port}/hook?<redacted>")),
        "{text}"
    );
}

#[tokio::test]
async fn webhook_bad_header_is_permanent() {
    let (addr, received) = hook_server().await;
    let mut cfg = webhook_cfg(format!("http://{addr}/ok"));
    cfg.headers.insert("Bad Name".into(), "x".into());
    let err = post_once(&cfg).await.unwrap_err();
    assert!(!err.retryable(), "{err}");
    assert!(
        matches!(err, WebhookError::InvalidRequest { .. }),
        "{err:?}"
    );
    assert!(received.all().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Webhooks over TLS: a small blocking rustls server (one request per connection)

struct TlsHook {
    addr: SocketAddr,
    /// Whether each handled request came with a client certificate.
    requests: Arc<Mutex<Vec<bool>>>,
}

fn tls_hook(require_client_cert: bool) -> TlsHook {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = vec![CertificateDer::from_pem_slice(SERVER_CERT_PEM.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(SERVER_KEY_PEM.as_bytes()).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if require_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(CA_PEM.as_bytes()).unwrap())
            .unwrap();
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = Arc::new(builder.with_single_cert(chain, key).unwrap());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&requests);
    // Lives until the test process ends, blocked in accept.
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let config = Arc::clone(&config);
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let Ok(conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, stream);
                // Read the head and a Content-Length body; a failed handshake ends here.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let complete = loop {
                    let Ok(n) = tls.read(&mut chunk) else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + length {
                            break true;
                        }
                    }
                };
                if complete {
                    seen.lock()
                        .unwrap()
                        .push(tls.conn.peer_certificates().is_some());
                    let _ = tls.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    );
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                }
            });
        }
    });
    TlsHook { addr, requests }
}

fn tls(ca: Option<&str>) -> TlsConfig {
    TlsConfig {
        ca_pem: ca.map(|p| p.as_bytes().to_vec()),
        ..TlsConfig::default()
    }
}

#[tokio::test]
async fn webhook_tls_with_a_configured_ca() {
    let server = tls_hook(false);
    let port = server.addr.port();
    let mut cfg = webhook_cfg(format!("https://localhost:{port}/hook"));
    cfg.http.tls = tls(Some(CA_PEM));
    assert_eq!(post_once(&cfg).await.unwrap().status, 200);
    // By IP address: the certificate has 127.0.0.1 as a subject alternative name.
    cfg.url = format!("https://127.0.0.1:{port}/hook");
    assert_eq!(post_once(&cfg).await.unwrap().status, 200);
    assert_eq!(server.requests.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn webhook_tls_unknown_ca_is_a_retryable_transport_error() {
    let server = tls_hook(false);
    let mut cfg = webhook_cfg(format!("https://localhost:{}/hook", server.addr.port()));
    // A trust anchor that did not issue the server's certificate.
    cfg.http.tls = tls(Some(CLIENT_CERT_PEM));
    let err = post_once(&cfg).await.unwrap_err();
    assert!(err.retryable(), "{err}");
    assert!(matches!(err, WebhookError::Transport { .. }), "{err:?}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    // The system roots do not know the test CA either (on a machine without any, building
    // the client says so instead).
    cfg.http.tls = tls(None);
    match webhook::build_client(&cfg.http) {
        Ok(client) => {
            let body = payload::encode(&notification(), 0).unwrap();
            let err = webhook::send(&client, &cfg, &body, "n1").await.unwrap_err();
            assert!(err.retryable(), "{err}");
        }
        Err(e) => assert!(e.to_string().contains("no system CA certificates"), "{e}"),
    }
    assert!(server.requests.lock().unwrap().is_empty());
}

#[tokio::test]
async fn webhook_tls_insecure_skip_verify_accepts_any_certificate() {
    let server = tls_hook(false);
    let mut cfg = webhook_cfg(format!("https://localhost:{}/hook", server.addr.port()));
    cfg.http.tls.insecure_skip_verify = true;
    assert_eq!(post_once(&cfg).await.unwrap().status, 200);
}

#[tokio::test]
async fn webhook_tls_server_name_replaces_the_host_in_verification() {
    let server = tls_hook(false);
    let port = server.addr.port();
    let mut cfg = webhook_cfg(format!("https://127.0.0.1:{port}/hook"));
    cfg.http.tls = tls(Some(CA_PEM));
    cfg.http.tls.server_name = Some("receiver.test".into());
    assert_eq!(post_once(&cfg).await.unwrap().status, 200);
    cfg.http.tls.server_name = Some("elsewhere.test".into());
    let err = post_once(&cfg).await.unwrap_err();
    assert!(err.retryable(), "{err}");
}

#[tokio::test]
async fn webhook_tls_client_certificate() {
    let server = tls_hook(true);
    let mut cfg = webhook_cfg(format!("https://localhost:{}/hook", server.addr.port()));
    cfg.http.tls = tls(Some(CA_PEM));
    let err = post_once(&cfg).await.unwrap_err();
    assert!(matches!(err, WebhookError::Transport { .. }), "{err:?}");
    cfg.http.tls.client_cert_pem = Some(CLIENT_CERT_PEM.as_bytes().to_vec());
    cfg.http.tls.client_key_pem = Some(CLIENT_KEY_PEM.as_bytes().to_vec());
    assert_eq!(post_once(&cfg).await.unwrap().status, 200);
    assert_eq!(*server.requests.lock().unwrap(), [true]);
}

// ---------------------------------------------------------------------------------------------
// Email: aiosmtpd

fn email_cfg(port: u16) -> EmailConfig {
    EmailConfig {
        send_resolved: true,
        to: "ops@example.com, \"On Call\" <oncall@example.com>".into(),
        from: "Redline <redline@example.com>".into(),
        smarthost_host: "127.0.0.1".into(),
        smarthost_port: port,
        hello: "redline.test".into(),
        auth_username: None,
        auth_password: None,
        security: SmtpSecurity::Opportunistic,
        tls: TlsConfig::default(),
        headers: BTreeMap::new(),
        html: None,
        text: None,
        timeout: Duration::from_secs(10),
    }
}

async fn mail(
    cfg: &EmailConfig,
    n: &Notification,
    id: &str,
) -> Result<email::Delivered, EmailError> {
    let transport = email::build_transport(cfg)?;
    let message = email::build_message(cfg, n, id, SystemTime::now(), &NoTemplates)?;
    email::send(&transport, cfg, &message).await
}

fn header<'a>(msg: &'a Value, name: &str) -> &'a str {
    msg["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .unwrap_or_else(|| panic!("no {name} header: {msg}"))[1]
        .as_str()
        .unwrap()
}

fn write_pems(dir: &Path) -> (String, String) {
    let cert = dir.join("server.pem");
    let key = dir.join("server.key");
    std::fs::write(&cert, SERVER_CERT_PEM).unwrap();
    std::fs::write(&key, SERVER_KEY_PEM).unwrap();
    (
        cert.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    )
}

#[tokio::test]
async fn email_multipart_message_as_a_mail_reader_sees_it() {
    let sink = Sink::start(&[]).await;
    let cfg = email_cfg(sink.port);
    let n = notification();
    let delivered = mail(&cfg, &n, "notif-42").await.unwrap();
    assert_eq!(delivered.code, 250);

    let msg = &sink.messages(1).await[0];
    assert_eq!(msg["mail_from"], "redline@example.com");
    assert_eq!(
        msg["rcpt_tos"],
        serde_json::json!(["ops@example.com", "oncall@example.com"])
    );
    assert_eq!(msg["tls"], false);
    // Alertmanager's default subject: 2 firing of 3, group label, then the other common
    // labels (alertname first, then by name).
    assert_eq!(msg["subject"], "[FIRING:2] HighCPU (node warning)");
    assert_eq!(header(msg, "From"), "Redline <redline@example.com>");
    let to = header(msg, "To");
    assert!(to.contains("ops@example.com"), "{to}");
    assert!(to.contains("On Call <oncall@example.com>"), "{to}");
    assert_eq!(header(msg, "X-Redline-Notification-Id"), "notif-42");
    assert_eq!(header(msg, "Message-ID"), "<redline.notif-42@example.com>");
    assert!(!header(msg, "Date").is_empty());

    assert_eq!(msg["content_type"], "multipart/alternative");
    let parts = msg["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{msg}");
    assert_eq!(parts[0]["content_type"], "text/plain");
    assert_eq!(parts[1]["content_type"], "text/html");
    let text = parts[0]["body"].as_str().unwrap();
    assert!(text.contains("Firing (2):"), "{text}");
    assert!(text.contains("Resolved (1):"), "{text}");
    assert!(text.contains(" - instance = host3:9100"), "{text}");
    assert!(text.contains("CPU <b>hot</b> & \"busy\""), "{text}");
    assert!(text.contains("Ended: "), "{text}");
    assert!(
        text.contains("Sent by Redline: http://redline.example:9190"),
        "{text}"
    );

    let html = parts[1]["body"].as_str().unwrap();
    assert!(
        html.contains("CPU &lt;b&gt;hot&lt;/b&gt; &amp; &quot;busy&quot;"),
        "{html}"
    );
    assert!(!html.contains("<b>hot"), "{html}");
    assert!(
        html.contains("<a href=\"http://prometheus.example:9090/graph?g0.expr=cpu&amp;g0.tab=1\">"),
        "{html}"
    );
    assert!(html.contains("host3:9100"), "{html}");
    assert!(
        html.contains("<a href=\"http://redline.example:9190\">"),
        "{html}"
    );
}

#[tokio::test]
async fn email_configured_headers_and_literal_bodies() {
    let sink = Sink::start(&[]).await;
    let mut cfg = email_cfg(sink.port);
    cfg.headers
        .insert("Subject".into(), "Ops: CPU alerts".into());
    cfg.headers.insert("X-Priority".into(), "1".into());
    cfg.headers
        .insert("To".into(), "Distribution <list@example.com>".into());
    cfg.text = Some("plain literal".into());
    cfg.html = Some(String::new()); // Configured empty: no HTML part.
    mail(&cfg, &notification(), "n1").await.unwrap();
    let msg = &sink.messages(1).await[0];
    assert_eq!(msg["subject"], "Ops: CPU alerts");
    assert_eq!(header(msg, "X-Priority"), "1");
    assert_eq!(header(msg, "To"), "Distribution <list@example.com>");
    // The envelope still goes to `to`.
    assert_eq!(msg["rcpt_tos"].as_array().unwrap().len(), 2);
    assert_eq!(msg["content_type"], "text/plain");
    assert_eq!(
        msg["parts"][0]["body"].as_str().unwrap().trim(),
        "plain literal"
    );
}

#[tokio::test]
async fn email_auth_success() {
    let sink = Sink::start(&["--user", "alert", "--password", "pa55"]).await;
    let mut cfg = email_cfg(sink.port);
    cfg.auth_username = Some("alert".into());
    cfg.auth_password = Some("pa55".into());
    mail(&cfg, &notification(), "n1").await.unwrap();
    assert_eq!(sink.messages(1).await[0]["auth_login"], "alert");
}

#[tokio::test]
async fn email_auth_failure_is_permanent() {
    let sink = Sink::start(&["--user", "alert", "--password", "pa55"]).await;
    let mut cfg = email_cfg(sink.port);
    cfg.auth_username = Some("alert".into());
    cfg.auth_password = Some("wrong".into());
    let err = mail(&cfg, &notification(), "n1").await.unwrap_err();
    assert!(!err.retryable(), "{err}");
    assert_eq!(err.code(), Some(535), "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("127.0.0.1:{}", sink.port)),
        "{err}"
    );

    // Without credentials the server refuses MAIL: permanent too.
    cfg.auth_username = None;
    let err = mail(&cfg, &notification(), "n1").await.unwrap_err();
    assert!(!err.retryable(), "{err}");
    assert_eq!(err.code(), Some(530), "{err:?}");
    assert_eq!(sink.stored(), 0);
}

#[tokio::test]
async fn email_smtp_4xx_is_retryable_and_5xx_permanent() {
    let sink = Sink::start(&[]).await;
    let mut cfg = email_cfg(sink.port);
    cfg.to = "tempfail@example.com".into();
    let err = mail(&cfg, &notification(), "n1").await.unwrap_err();
    assert!(err.retryable(), "{err}");
    assert_eq!(err.code(), Some(451));
    assert!(err.to_string().contains("Try again later"), "{err}");

    cfg.to = "reject@example.com".into();
    let err = mail(&cfg, &notification(), "n1").await.unwrap_err();
    assert!(!err.retryable(), "{err}");
    assert_eq!(err.code(), Some(550));
}

#[tokio::test]
async fn email_server_down_is_retryable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = mail(&email_cfg(port), &notification(), "n1")
        .await
        .unwrap_err();
    assert!(err.retryable(), "{err}");
    assert!(matches!(err, EmailError::Transport { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test]
async fn email_silent_server_times_out_retryably() {
    // Accepts the connection and never greets.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let mut cfg = email_cfg(port);
    cfg.timeout = Duration::from_millis(500);
    let started = std::time::Instant::now();
    let err = mail(&cfg, &notification(), "n1").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "{err}");
    assert!(err.retryable(), "{err}");
    assert!(
        matches!(err, EmailError::Transport { timeout: true, .. }),
        "{err:?}"
    );
    held.abort();
}

#[tokio::test]
async fn email_starttls_with_a_configured_ca_and_auth() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = write_pems(certs.path());
    let sink = Sink::start(&[
        "--cert",
        &cert,
        "--key",
        &key,
        "--require-starttls",
        "--user",
        "alert",
        "--password",
        "pa55",
    ])
    .await;
    let mut cfg = email_cfg(sink.port);
    cfg.security = SmtpSecurity::StartTls;
    cfg.tls = tls(Some(CA_PEM));
    cfg.auth_username = Some("alert".into());
    cfg.auth_password = Some("pa55".into());
    mail(&cfg, &notification(), "n1").await.unwrap();
    // The name in the certificate instead of the address.
    cfg.tls.server_name = Some("localhost".into());
    mail(&cfg, &notification(), "n2").await.unwrap();
    let msgs = sink.messages(2).await;
    for msg in &msgs {
        assert_eq!(msg["tls"], true, "{msg}");
        assert_eq!(msg["auth_login"], "alert");
    }
}

#[tokio::test]
async fn email_starttls_unknown_ca_is_retryable() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = write_pems(certs.path());
    let sink = Sink::start(&["--cert", &cert, "--key", &key]).await;
    let mut cfg = email_cfg(sink.port);
    cfg.security = SmtpSecurity::StartTls;
    cfg.tls = tls(Some(CLIENT_CERT_PEM));
    let err = mail(&cfg, &notification(), "n1").await.unwrap_err();
    assert!(err.retryable(), "{err}");
    assert!(matches!(err, EmailError::Transport { .. }), "{err:?}");
    // insecure_skip_verify gets through.
    cfg.tls.insecure_skip_verify = true;
    mail(&cfg, &notification(), "n1").await.unwrap();
    assert_eq!(sink.messages(1).await[0]["tls"], true);
}

#[tokio::test]
async fn email_required_starttls_not_offered_is_refused() {
    let sink = Sink::start(&[]).await;
    let mut cfg = email_cfg(sink.port);
    cfg.security = SmtpSecurity::StartTls;
    cfg.tls = tls(Some(CA_PEM));
    let err = mail(&cfg, &notification(), "n1").await.unwrap_err();
    assert!(!err.retryable(), "{err}");
    assert!(matches!(err, EmailError::Refused { .. }), "{err:?}");
    assert!(err.to_string().contains("STARTTLS"), "{err}");
    assert_eq!(sink.stored(), 0);
}

#[tokio::test]
async fn email_opportunistic_upgrades_when_offered() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = write_pems(certs.path());
    let sink = Sink::start(&["--cert", &cert, "--key", &key]).await;
    let mut cfg = email_cfg(sink.port);
    cfg.tls = tls(Some(CA_PEM));
    mail(&cfg, &notification(), "n1").await.unwrap();
    assert_eq!(sink.messages(1).await[0]["tls"], true);
}

#[tokio::test]
async fn email_implicit_tls() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = write_pems(certs.path());
    let sink = Sink::start(&["--cert", &cert, "--key", &key, "--implicit-tls"]).await;
    let mut cfg = email_cfg(sink.port);
    cfg.security = SmtpSecurity::ImplicitTls;
    cfg.tls = tls(Some(CA_PEM));
    mail(&cfg, &notification(), "n1").await.unwrap();
    let msg = &sink.messages(1).await[0];
    assert_eq!(msg["tls"], true);
    assert_eq!(msg["subject"], "[FIRING:2] HighCPU (node warning)");
}

#[tokio::test]
async fn email_subject_trailing_space_survives_the_wire() {
    // Every common label is a group label: Alertmanager's subject ends with a space.
    let sink = Sink::start(&[]).await;
    let cfg = email_cfg(sink.port);
    let mut n = notification();
    n.alerts.truncate(1);
    n.group_labels = n.alerts[0].labels.clone();
    let subject = email::default_subject(&n);
    assert_eq!(subject, "[FIRING:1] HighCPU host1:9100 node warning ");
    mail(&cfg, &n, "n1").await.unwrap();
    let raw = std::fs::read_to_string(sink.dir.path().join("1.eml")).unwrap();
    let line = raw
        .lines()
        .find(|l| l.starts_with("Subject:"))
        .unwrap()
        .to_owned();
    assert_eq!(line, format!("Subject: {subject}"));
}
