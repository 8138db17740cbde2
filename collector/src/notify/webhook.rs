//! Webhook delivery: one HTTP POST of an already-encoded payload (`payload::encode`) to one
//! `webhook_configs[]` receiver, classified as delivered, retryable or permanent.
//!
//! The outbox worker owns the retry loop and calls `send` once per attempt, with the same body
//! and the same idempotency key on every attempt of one notification; it builds one
//! `reqwest::Client` per distinct `HttpClientConfig` with `build_client` and reuses it (the
//! client holds the connection pool and the TLS settings). Nothing here sleeps or retries.
//!
//! What a receiver sees on each request:
//! - `Content-Type: application/json`, `User-Agent: Redline/<version>`;
//! - `Authorization` from `http_config` (`authorization`/`bearer_token`, or `basic_auth`);
//! - the configured extra `headers` (Redline extension);
//! - `Idempotency-Key: <key>`, the same for every retry of one notification, so a receiver can
//!   drop the duplicates an ambiguous failure (a timeout after the receiver got the body)
//!   causes;
//! - with `hmac_secret` set, `X-Redline-Signature: sha256=<hex>`: HMAC-SHA256 under the secret
//!   over the exact body bytes, hex in lower case. The signature covers the body only (no
//!   timestamp): the body is identical across retries, and replay protection is the
//!   receiver's `Idempotency-Key` check.
//!
//! The protocol headers win over configured `headers` of the same name, and `http_config`'s
//! `Authorization` wins over a configured `Authorization` header.

use std::error::Error as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use redline_common::tls::ServerNameOverride;
use reqwest::header::{
    AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::config::{HttpClientConfig, TlsConfig, TlsVersion, WebhookConfig};

/// The `User-Agent` of every webhook request.
pub const USER_AGENT_VALUE: &str = concat!("Redline/", env!("CARGO_PKG_VERSION"));
/// The header carrying the caller's idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// The header carrying `sha256=<hex HMAC-SHA256 of the body>` when `hmac_secret` is set.
pub const SIGNATURE_HEADER: &str = "X-Redline-Signature";
/// At most this many bytes of an error response's body are read (and kept in the error).
pub const BODY_EXCERPT_LIMIT: usize = 512;
/// Redirects followed when `follow_redirects` is on (Go's `http.Client` default).
const MAX_REDIRECTS: usize = 10;

/// A successful delivery: the receiver answered 2xx.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivered {
    pub status: u16,
}

/// Why a webhook delivery did not succeed. URLs in these errors are redacted (`redact_url`):
/// no user info, no query, no fragment.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The HTTP client could not be built from `http_config` (CA or client certificate PEM,
    /// proxy URL): a configuration problem, permanent.
    #[error("webhook client: {0} (permanent)")]
    Client(String),
    /// The request could not be formed (bad URL, header name or value, idempotency key):
    /// permanent.
    #[error("webhook {url}: invalid request: {message} (permanent)")]
    InvalidRequest { url: String, message: String },
    /// No HTTP answer: connection refused or reset, DNS, TLS handshake, timeout. Retryable.
    #[error("webhook {url}: {} {message} (retryable)", if *.timeout { "timed out:" } else { "request failed:" })]
    Transport {
        url: String,
        message: String,
        timeout: bool,
    },
    /// The receiver answered with a non-2xx status: retryable for 408, 429 and 5xx (with the
    /// receiver's `Retry-After`, if any), permanent for the rest (3xx when redirects are not
    /// followed, other 4xx).
    #[error(
        "webhook {url}: HTTP {status}{} ({}): {body:?}",
        match .retry_after { Some(d) => format!(", retry after {d:?}"), None => String::new() },
        if *.retryable { "retryable" } else { "permanent" }
    )]
    Status {
        url: String,
        status: u16,
        retryable: bool,
        retry_after: Option<Duration>,
        /// The first `BODY_EXCERPT_LIMIT` bytes of the response body, lossily UTF-8.
        body: String,
    },
}

impl WebhookError {
    /// Whether another attempt of the same delivery may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            WebhookError::Client(_) | WebhookError::InvalidRequest { .. } => false,
            WebhookError::Transport { .. } => true,
            WebhookError::Status { retryable, .. } => *retryable,
        }
    }

    /// The delay the receiver asked for (`Retry-After`), when it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            WebhookError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status, when the receiver answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            WebhookError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Builds the client for webhooks sharing `http`: TLS (rustls with the ring provider),
/// proxy, redirect policy. Per-attempt timeouts are set per request by `send`.
pub fn build_client(http: &HttpClientConfig) -> Result<reqwest::Client, WebhookError> {
    let tls = rustls_client_config(&http.tls).map_err(WebhookError::Client)?;
    let redirect = if http.follow_redirects {
        reqwest::redirect::Policy::limited(MAX_REDIRECTS)
    } else {
        reqwest::redirect::Policy::none()
    };
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT_VALUE)
        .redirect(redirect)
        .tls_backend_preconfigured(tls);
    builder = match &http.proxy_url {
        Some(url) => builder.proxy(
            reqwest::Proxy::all(url)
                .map_err(|e| WebhookError::Client(format!("proxy_url: {}", error_chain(e))))?,
        ),
        // Like Alertmanager (`proxy_from_environment` defaults to false), ignore
        // HTTP_PROXY and friends unless a proxy is configured.
        None => builder.no_proxy(),
    };
    builder
        .build()
        .map_err(|e| WebhookError::Client(error_chain(e)))
}

/// One delivery attempt: POSTs `body` to `cfg.url` with the headers described in the module
/// documentation, within `cfg.timeout` (connect, TLS, request and reading the response).
pub async fn send(
    client: &reqwest::Client,
    cfg: &WebhookConfig,
    body: &[u8],
    idempotency_key: &str,
) -> Result<Delivered, WebhookError> {
    let url = redact_url(&cfg.url);
    let headers = request_headers(cfg, body, idempotency_key).map_err(|message| {
        WebhookError::InvalidRequest {
            url: url.clone(),
            message,
        }
    })?;
    let mut request = client.post(&cfg.url).headers(headers).body(body.to_vec());
    if cfg.http.authorization.is_none()
        && let Some((user, password)) = &cfg.http.basic_auth
    {
        request = request.basic_auth(user, password.as_deref());
    }
    if !cfg.timeout.is_zero() {
        request = request.timeout(cfg.timeout);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => return Err(request_error(url, e)),
    };
    let status = response.status();
    if status.is_success() {
        return Ok(Delivered {
            status: status.as_u16(),
        });
    }
    let retryable = status.is_server_error() || matches!(status.as_u16(), 408 | 429);
    let retry_after = if retryable {
        response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, jiff::Timestamp::now()))
    } else {
        None
    };
    let body = body_excerpt(response).await;
    Err(WebhookError::Status {
        url,
        status: status.as_u16(),
        retryable,
        retry_after,
        body,
    })
}

/// The hex HMAC-SHA256 of `body` under `secret`, as sent in `X-Redline-Signature` after
/// `sha256=`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    hex(ring::hmac::sign(&key, body).as_ref())
}

/// `Retry-After` as a delay from `now`: delay-seconds, or an HTTP date (IMF-fixdate, RFC 850
/// or asctime, as RFC 9110 asks recipients to accept). A date in the past is a zero delay;
/// anything else is `None`.
pub fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Saturate absurd values rather than failing; the caller caps delays anyway.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let when = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()
        .or_else(|| {
            // RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37
            // 1994`); both are GMT by definition.
            let rfc850 = value
                .strip_suffix(" GMT")
                .and_then(|v| jiff::civil::DateTime::strptime("%A, %d-%b-%y %H:%M:%S", v).ok());
            let asctime = || {
                let v = value.split_whitespace().collect::<Vec<_>>().join(" ");
                jiff::civil::DateTime::strptime("%a %b %d %H:%M:%S %Y", &v).ok()
            };
            rfc850
                .or_else(asctime)
                .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC).ok())
                .map(|z| z.timestamp())
        })?;
    let delay = when.duration_since(now);
    Some(delay.try_into().unwrap_or(Duration::ZERO))
}

/// `url` without user info, query and fragment, for errors and logs (webhook URLs often
/// carry tokens). A query is shown as `?<redacted>`.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            let had_query = parsed.query().is_some();
            // Both only fail for URLs that cannot have user info (e.g. `data:`): nothing to do.
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.set_fragment(None);
            let mut out = parsed.to_string();
            if had_query {
                out.push_str("?<redacted>");
            }
            out
        }
        Err(_) => "<invalid URL>".to_owned(),
    }
}

fn request_headers(
    cfg: &WebhookConfig,
    body: &[u8],
    idempotency_key: &str,
) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (name, value) in &cfg.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name {name:?}"))?;
        let value =
            HeaderValue::from_str(value).map_err(|_| format!("invalid value of header {name}"))?;
        headers.insert(name, value);
    }
    if let Some(auth) = &cfg.http.authorization {
        let mut value = HeaderValue::from_str(auth)
            .map_err(|_| "invalid Authorization value in http_config".to_owned())?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    } else if cfg.http.basic_auth.is_some() {
        // `send` adds it through reqwest, which appends: drop a configured one first.
        headers.remove(AUTHORIZATION);
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    let key = HeaderValue::from_str(idempotency_key)
        .map_err(|_| format!("idempotency key {idempotency_key:?} is not a header value"))?;
    headers.insert(IDEMPOTENCY_HEADER, key);
    if let Some(secret) = &cfg.hmac_secret {
        let value = format!("sha256={}", signature(secret, body));
        // Hex is always a valid header value.
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(SIGNATURE_HEADER, value);
        }
    }
    Ok(headers)
}

fn request_error(url: String, e: reqwest::Error) -> WebhookError {
    let (builder, timeout) = (e.is_builder(), e.is_timeout());
    let message = error_chain(e);
    if builder {
        WebhookError::InvalidRequest { url, message }
    } else {
        WebhookError::Transport {
            url,
            message,
            timeout,
        }
    }
}

/// `e` and its sources joined by `: `, without the URL reqwest puts in its own message (it
/// may hold credentials).
fn error_chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Reads at most `BODY_EXCERPT_LIMIT` bytes of the body, then drops the response (closing
/// the connection rather than draining an unbounded body).
async fn body_excerpt(mut response: reqwest::Response) -> String {
    let mut buf = Vec::with_capacity(BODY_EXCERPT_LIMIT);
    while buf.len() < BODY_EXCERPT_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(BODY_EXCERPT_LIMIT - buf.len());
                buf.extend_from_slice(&chunk[..take]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&buf).trim().to_owned()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The rustls client configuration for `tls`, always with the ring provider (the one
/// provider of the process; aws-lc-rs is not built):
/// - server certificates are verified against `ca_pem` when given, else against the system's
///   roots (`system_roots`);
/// - `server_name` replaces the URL's host name when verifying the certificate (SNI still
///   carries the URL's host);
/// - `client_cert_pem` and `client_key_pem` give a client certificate (chain) and its key;
/// - `min_version`/`max_version` bound the protocol versions (TLS 1.2 and 1.3 only);
/// - `insecure_skip_verify` accepts ANY server certificate. This is dangerous: anyone on the
///   path can impersonate the receiver and read the alerts and credentials sent to it. The
///   handshake signatures are still checked, so the peer holds the key of the certificate it
///   showed, but nothing ties that certificate to the receiver.
pub fn rustls_client_config(tls: &TlsConfig) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = if tls.insecure_skip_verify {
        Arc::new(NoVerification {
            algorithms: provider.signature_verification_algorithms,
        })
    } else {
        let roots = match &tls.ca_pem {
            Some(pem) => {
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| format!("ca_file: {e}"))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("ca_file: bad certificate: {e}"))?;
                }
                if roots.is_empty() {
                    return Err("ca_file: no certificate in the PEM".to_owned());
                }
                roots
            }
            None => {
                let roots = system_roots();
                if roots.is_empty() {
                    return Err("no system CA certificates found (set SSL_CERT_FILE or \
                         tls_config.ca_file)"
                        .to_owned());
                }
                roots
            }
        };
        rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&provider),
        )
        .build()
        .map_err(|e| format!("certificate verifier: {e}"))?
    };
    let verifier = match &tls.server_name {
        Some(name) => {
            let name = ServerName::try_from(name.clone())
                .map_err(|_| format!("server_name {name:?} is not a DNS name or IP address"))?;
            Arc::new(ServerNameOverride::new(verifier, name))
        }
        None => verifier,
    };
    let versions = protocol_versions(tls)?;
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("TLS versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match (&tls.client_cert_pem, &tls.client_key_pem) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("cert_file: {e}"))?;
            if chain.is_empty() {
                return Err("cert_file: no certificate in the PEM".to_owned());
            }
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("key_file: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("cert_file and key_file must be given together".to_owned()),
    };
    // Webhooks speak HTTP/1.1 (Alertmanager disables HTTP/2 for them too).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The protocol versions between `min_version` and `max_version`. rustls speaks TLS 1.2 and
/// 1.3 only, so a minimum below 1.2 means 1.2, and a maximum below 1.2 cannot be met.
fn protocol_versions(
    tls: &TlsConfig,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let min = tls.min_version.unwrap_or(TlsVersion::Tls12);
    let max = tls.max_version.unwrap_or(TlsVersion::Tls13);
    let versions: Vec<_> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| min <= *v && *v <= max)
    .map(|(_, supported)| supported)
    .collect();
    if versions.is_empty() {
        return Err(format!(
            "no TLS version between min_version {min:?} and max_version {max:?} \
             (TLS 1.2 and 1.3 are supported)"
        ));
    }
    Ok(versions)
}

/// The system's trusted CA certificates, found the way rustls-native-certs (which
/// rustls-platform-verifier uses on Linux) finds them: `SSL_CERT_FILE` and `SSL_CERT_DIR`
/// when set, else the first of the usual bundle files, else the usual directories.
/// Unreadable files and unparsable certificates are skipped.
///
/// rustls-platform-verifier itself is only in the dependency tree through reqwest and lettre,
/// not a direct dependency of this crate; this function is the seam to replace with it.
pub fn system_roots() -> RootCertStore {
    const BUNDLES: &[&str] = &[
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/ca-bundle.pem",
        "/etc/pki/tls/cacert.pem",
        "/etc/ssl/cert.pem",
        "/usr/local/share/certs/ca-root-nss.crt",
        "/usr/local/etc/openssl/cert.pem",
    ];
    const DIRS: &[&str] = &["/etc/ssl/certs", "/etc/pki/tls/certs"];
    let mut files: Vec<PathBuf> = Vec::new();
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(file) = std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty()) {
        files.push(file.into());
    }
    if let Some(list) = std::env::var_os("SSL_CERT_DIR").filter(|d| !d.is_empty()) {
        dirs.extend(std::env::split_paths(&list));
    }
    if files.is_empty() && dirs.is_empty() {
        match BUNDLES.iter().map(Path::new).find(|p| p.is_file()) {
            Some(bundle) => files.push(bundle.to_owned()),
            None => dirs.extend(DIRS.iter().map(PathBuf::from)),
        }
    }
    for dir in &dirs {
        if let Ok(entries) = std::fs::read_dir(dir) {
            files.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_file()));
        }
    }
    let mut roots = RootCertStore::empty();
    for file in files {
        // CA bundles are a few hundred KiB; anything far larger is not one.
        let too_big = std::fs::metadata(&file).map_or(true, |m| m.len() > 16 << 20);
        if too_big {
            continue;
        }
        if let Ok(pem) = std::fs::read(&file) {
            let certs = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok);
            roots.add_parsable_certificates(certs);
        }
    }
    roots
}

/// Accepts any server certificate (`insecure_skip_verify`); see `rustls_client_config`.
#[derive(Debug)]
struct NoVerification {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = ts("2015-10-21T07:28:00Z");
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-15 07:29:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed Oct 21 07:28:10 2015", now),
            Some(Duration::from_secs(10))
        );
        // In the past: retry now.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("https://user:pw@hooks.example.com:8443/a/b?token=x#frag"),
            "https://hooks.example.com:8443/a/b?<redacted>"
        );
        assert_eq!(redact_url("http://h/p"), "http://h/p");
        assert_eq!(redact_url("not a url"), "<invalid URL>");
    }

    #[test]
    fn signature_is_rfc4231_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn tls_config_errors_are_reported() {
        let bad_ca = TlsConfig {
            ca_pem: Some(b"not pem".to_vec()),
            ..TlsConfig::default()
        };
        assert!(rustls_client_config(&bad_ca).is_err());
        let half_identity = TlsConfig {
            client_cert_pem: Some(b"x".to_vec()),
            insecure_skip_verify: true,
            ..TlsConfig::default()
        };
        assert!(rustls_client_config(&half_identity).is_err());
        let insecure = TlsConfig {
            insecure_skip_verify: true,
            server_name: Some("example.com".into()),
            ..TlsConfig::default()
        };
        assert!(rustls_client_config(&insecure).is_ok());
        let only_old = TlsConfig {
            insecure_skip_verify: true,
            max_version: Some(TlsVersion::Tls11),
            ..TlsConfig::default()
        };
        assert!(rustls_client_config(&only_old).is_err());
        let tls13 = TlsConfig {
            insecure_skip_verify: true,
            min_version: Some(TlsVersion::Tls13),
            ..TlsConfig::default()
        };
        assert_eq!(protocol_versions(&tls13).map(|v| v.len()), Ok(1));
        let from10 = TlsConfig {
            min_version: Some(TlsVersion::Tls10),
            ..TlsConfig::default()
        };
        assert_eq!(protocol_versions(&from10).map(|v| v.len()), Ok(2));
    }
}
