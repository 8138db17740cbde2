//! The validated settings of receivers, as the routing configuration (`alert::amconfig`,
//! Alertmanager's YAML shape) produces them and the receivers (`email`, `webhook`) consume
//! them. Global defaults (`global.smtp_*`, `global.http_config`) are already merged in; every
//! secret read from a `*_file` is already loaded. These are plain values: parsing and
//! validation live in `alert::amconfig`.

use std::collections::BTreeMap;
use std::time::Duration;

/// A named receiver and its integrations (Alertmanager's `receivers[]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Receiver {
    pub name: String,
    pub email: Vec<EmailConfig>,
    pub webhook: Vec<WebhookConfig>,
}

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Implicit TLS from the first byte (port 465, "SMTPS"); Alertmanager picks this when the
    /// smarthost's port is 465.
    ImplicitTls,
    /// STARTTLS, required (`require_tls: true`, Alertmanager's default).
    StartTls,
    /// STARTTLS when the server offers it, plain text otherwise (`require_tls: false`).
    Opportunistic,
}

/// TLS settings of a client connection (Alertmanager's `tls_config`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TlsConfig {
    /// PEM bundle of CAs to trust instead of the platform's roots (already read from `ca_file`).
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate and key, PEM (already read from `cert_file`/`key_file`).
    pub client_cert_pem: Option<Vec<u8>>,
    pub client_key_pem: Option<Vec<u8>>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
    /// `min_version` / `max_version` (`TLS10` … `TLS13`); `None` leaves the library's default.
    pub min_version: Option<TlsVersion>,
    pub max_version: Option<TlsVersion>,
}

/// A TLS protocol version as Alertmanager's `tls_config` names them (`TLS10` … `TLS13`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

/// One `email_configs[]` entry, with `global.smtp_*` merged in.
#[derive(Clone, Debug, PartialEq)]
pub struct EmailConfig {
    /// Whether to notify about resolved alerts (Alertmanager's default for email: false).
    pub send_resolved: bool,
    /// Comma-separated recipient addresses, as in Alertmanager (`to`).
    pub to: String,
    pub from: String,
    /// `host:port` of the SMTP server.
    pub smarthost_host: String,
    pub smarthost_port: u16,
    /// The name sent in EHLO (`hello`, default `localhost`).
    pub hello: String,
    pub auth_username: Option<String>,
    pub auth_password: Option<String>,
    pub security: SmtpSecurity,
    pub tls: TlsConfig,
    /// Extra headers; `Subject`, `To` and `From` here override the defaults. Values are
    /// templates (`alert::template` over the notification data).
    pub headers: BTreeMap<String, String>,
    /// Templates of the HTML and text bodies; `None` means Redline's default bodies.
    pub html: Option<String>,
    pub text: Option<String>,
    /// How long one delivery attempt may take (connect, TLS, SMTP dialogue).
    pub timeout: Duration,
}

/// The `http_config` of a webhook (the parts Redline supports).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HttpClientConfig {
    /// `authorization: {type, credentials}` or `bearer_token`: the value of the
    /// `Authorization` header, e.g. `Bearer abc` (already read from `credentials_file`).
    pub authorization: Option<String>,
    /// `basic_auth: {username, password}`.
    pub basic_auth: Option<(String, Option<String>)>,
    pub tls: TlsConfig,
    pub follow_redirects: bool,
    pub proxy_url: Option<String>,
}

/// One `webhook_configs[]` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookConfig {
    /// Whether to notify about resolved alerts (Alertmanager's default for webhooks: true).
    pub send_resolved: bool,
    /// The URL to POST to (already read from `url_file` when given).
    pub url: String,
    pub http: HttpClientConfig,
    /// At most this many alerts per payload; 0 means all. The rest are counted in
    /// `truncatedAlerts`.
    pub max_alerts: usize,
    /// Timeout of one attempt; Alertmanager's default is none, Redline's 10 s.
    pub timeout: Duration,
    /// Redline extension: extra request headers.
    pub headers: BTreeMap<String, String>,
    /// Redline extension: when set, the body is signed with HMAC-SHA256 under this secret and
    /// the hex digest sent as `X-Redline-Signature: sha256=<hex>`.
    pub hmac_secret: Option<String>,
}
