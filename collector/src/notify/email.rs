//! Email delivery: the message for one `Notification` (Alertmanager's default subject, a
//! plain-text and an HTML body) and one SMTP attempt to one `email_configs[]` receiver,
//! classified as delivered, retryable or permanent.
//!
//! The outbox worker owns the retry loop. Per `EmailConfig` it builds one transport with
//! `build_transport` and keeps it (lettre's pool holds the SMTP connections); per attempt it
//! builds the message with `build_message` and hands it to `send`. Nothing here sleeps or
//! retries. Whether a resolved-only notification is mailed at all (`send_resolved`) is the
//! dispatcher's decision.
//!
//! Every mail carries `Message-ID` (derived from the notification id, so every retry of one
//! notification has the same one), `Date`, and `X-Redline-Notification-Id: <id>` for
//! deduplication downstream.
//!
//! Templates: the configured `headers`, `html` and `text` are Alertmanager templates. A value
//! without `{{` is used literally; one with `{{` goes through the `Templates` seam, which the
//! template engine implements over the notification's data. Until it is wired, callers pass
//! `NoTemplates`, which fails such a value (permanently, naming the field).
//! The defaults (subject, bodies) are computed here in Rust and never use the seam.

use std::error::Error as _;
use std::fmt::Write as _;
use std::time::SystemTime;

use lettre::message::header::{self, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Mailboxes, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    Certificate, CertificateStore, Identity, Tls, TlsParameters, TlsVersion as LettreTlsVersion,
};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::config::{EmailConfig, SmtpSecurity, TlsVersion};
use super::payload::go_time;
use super::{LabelSet, Notification, NotifyAlert, Status};

/// The header carrying the caller's notification id on every mail.
pub const NOTIFICATION_ID_HEADER: &str = "X-Redline-Notification-Id";

/// The SMTP transport `send` uses: async over tokio, rustls with the ring provider, pooled.
pub type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// A successful delivery: the server accepted the message (its final reply).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    pub code: u16,
    pub message: String,
}

/// Why an email delivery did not succeed. Every variant names the smarthost (`host:port`).
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// Settings that cannot work: addresses, header names, TLS material. Permanent.
    #[error("email via {smarthost}: {message} (permanent)")]
    Config { smarthost: String, message: String },
    /// A configured header or body template failed to render. Permanent.
    #[error("email via {smarthost}: template of {field}: {message} (permanent)")]
    Template {
        smarthost: String,
        field: String,
        message: String,
    },
    /// The server answered with a negative SMTP reply: 4xx is retryable, 5xx permanent
    /// (a rejected login, sender or recipient).
    #[error("email via {smarthost}: SMTP {code}: {message} ({})", if *.retryable { "retryable" } else { "permanent" })]
    Smtp {
        smarthost: String,
        code: u16,
        message: String,
        retryable: bool,
    },
    /// No usable SMTP answer: connection refused or reset, TLS handshake, I/O, timeout, an
    /// unparsable reply, the transport shutting down. Retryable.
    #[error("email via {smarthost}: {} {message} (retryable)", if *.timeout { "timed out:" } else { "failed:" })]
    Transport {
        smarthost: String,
        message: String,
        timeout: bool,
    },
    /// The client could not go on with this server as configured: STARTTLS required but not
    /// offered, no common AUTH mechanism. Permanent until the configuration or the server
    /// changes.
    #[error("email via {smarthost}: {message} (permanent)")]
    Refused { smarthost: String, message: String },
}

impl EmailError {
    /// Whether another attempt of the same delivery may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            EmailError::Smtp { retryable, .. } => *retryable,
            EmailError::Transport { .. } => true,
            EmailError::Config { .. }
            | EmailError::Template { .. }
            | EmailError::Refused { .. } => false,
        }
    }

    /// The SMTP reply code, when the server gave a negative one.
    pub fn code(&self) -> Option<u16> {
        match self {
            EmailError::Smtp { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Which configured template is being rendered, so an engine can pick text or HTML escaping
/// (Alertmanager renders `html` with `html/template`, everything else with `text/template`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateField<'a> {
    /// The value of a configured header, e.g. `Subject`.
    Header(&'a str),
    Text,
    Html,
}

impl std::fmt::Display for TemplateField<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateField::Header(name) => write!(f, "header {name}"),
            TemplateField::Text => f.write_str("text"),
            TemplateField::Html => f.write_str("html"),
        }
    }
}

/// The seam for the template engine: renders one configured value that contains `{{`, over
/// the notification being mailed (which the implementation holds). Errors are messages; they
/// become `EmailError::Template`.
pub trait Templates {
    fn render(&self, field: TemplateField<'_>, template: &str) -> Result<String, String>;
}

impl<F> Templates for F
where
    F: Fn(TemplateField<'_>, &str) -> Result<String, String>,
{
    fn render(&self, field: TemplateField<'_>, template: &str) -> Result<String, String> {
        self(field, template)
    }
}

/// No template engine: literal values work, templates fail.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTemplates;

impl Templates for NoTemplates {
    fn render(&self, _field: TemplateField<'_>, _template: &str) -> Result<String, String> {
        Err("templates are not supported yet; use a literal value".to_owned())
    }
}

/// The SMTP transport for `cfg`: the TLS mode from `security` (implicit TLS, required
/// STARTTLS, or STARTTLS when offered), the CA, client certificate, server name, minimum
/// version and `insecure_skip_verify` from `tls`, the credentials (PLAIN or LOGIN, whichever the server
/// offers), the EHLO name and the per-operation timeout.
///
/// Server certificates are verified against `ca_pem` only when it is given, else by the
/// platform verifier. `insecure_skip_verify` accepts ANY certificate and host name: anyone on
/// the path can then read the alerts and the SMTP password.
pub fn build_transport(cfg: &EmailConfig) -> Result<Transport, EmailError> {
    let config_error = |message: String| EmailError::Config {
        smarthost: smarthost(cfg),
        message,
    };
    let domain = cfg
        .tls
        .server_name
        .clone()
        .unwrap_or_else(|| cfg.smarthost_host.clone());
    let mut params = TlsParameters::builder(domain);
    if let Some(pem) = &cfg.tls.ca_pem {
        let ca = Certificate::from_pem(pem).map_err(|e| config_error(format!("ca_file: {e}")))?;
        // `ca_file` replaces the system's roots, as in Alertmanager.
        params = params
            .certificate_store(CertificateStore::None)
            .add_root_certificate(ca);
    }
    match (&cfg.tls.client_cert_pem, &cfg.tls.client_key_pem) {
        (Some(cert), Some(key)) => {
            // lettre 0.11 keeps the certificate argument of `Identity::from_pem` as DER
            // without decoding the PEM, so hand it the DER of the leaf certificate.
            let leaf = CertificateDer::pem_slice_iter(cert)
                .next()
                .ok_or_else(|| config_error("cert_file: no certificate in the PEM".to_owned()))?
                .map_err(|e| config_error(format!("cert_file: {e}")))?;
            let identity = Identity::from_pem(leaf.as_ref(), key)
                .map_err(|e| config_error(format!("key_file: {e}")))?;
            params = params.identify_with(identity);
        }
        (None, None) => {}
        _ => {
            return Err(config_error(
                "cert_file and key_file must be given together".to_owned(),
            ));
        }
    }
    // rustls speaks TLS 1.2 and 1.3 only: a lower minimum means 1.2; lettre cannot cap the
    // version, so a maximum below 1.3 is refused rather than silently ignored.
    params = params.set_min_tls_version(match cfg.tls.min_version {
        Some(TlsVersion::Tls13) => LettreTlsVersion::Tlsv13,
        _ => LettreTlsVersion::Tlsv12,
    });
    if let Some(max) = cfg.tls.max_version
        && max < TlsVersion::Tls13
    {
        return Err(config_error(format!(
            "tls_config max_version {max:?} is not supported for email (TLS 1.2 and 1.3 \
             are negotiated)"
        )));
    }
    if cfg.tls.insecure_skip_verify {
        params = params
            .dangerous_accept_invalid_certs(true)
            .dangerous_accept_invalid_hostnames(true);
    }
    let params = params
        .build_rustls()
        .map_err(|e| config_error(format!("TLS settings: {e}")))?;
    let tls = match cfg.security {
        SmtpSecurity::ImplicitTls => Tls::Wrapper(params),
        SmtpSecurity::StartTls => Tls::Required(params),
        SmtpSecurity::Opportunistic => Tls::Opportunistic(params),
    };
    let mut builder = Transport::builder_dangerous(cfg.smarthost_host.as_str())
        .port(cfg.smarthost_port)
        .tls(tls)
        .hello_name(ClientId::Domain(cfg.hello.clone()))
        .timeout(Some(cfg.timeout));
    if let Some(user) = &cfg.auth_username {
        builder = builder
            .credentials(Credentials::new(
                user.clone(),
                cfg.auth_password.clone().unwrap_or_default(),
            ))
            .authentication(vec![Mechanism::Plain, Mechanism::Login]);
    }
    Ok(builder.build())
}

/// The message for `notification`: envelope from `from` to every address of `to`; headers
/// `From`, `To`, `Subject` (Alertmanager's default subject unless configured), the
/// configured extra headers, `Date` (`now`), `Message-ID` and `X-Redline-Notification-Id`
/// (from `notification_id`); a multipart/alternative body with the text part first and the
/// HTML part last (the preferred one, RFC 2046 5.1.4). A configured empty `text` or `html`
/// leaves that part out, as in Alertmanager.
///
/// Configured `Content-Type`, `Content-Transfer-Encoding` and `MIME-Version` headers are
/// ignored (they would contradict the body), and `Date`, `Message-ID` and the notification
/// id header are always Redline's.
pub fn build_message(
    cfg: &EmailConfig,
    notification: &Notification,
    notification_id: &str,
    now: SystemTime,
    templates: &dyn Templates,
) -> Result<Message, EmailError> {
    let config_error = |message: String| EmailError::Config {
        smarthost: smarthost(cfg),
        message,
    };
    let resolve = |field: TemplateField<'_>, value: &str| -> Result<String, EmailError> {
        if value.contains("{{") {
            templates
                .render(field, value)
                .map_err(|message| EmailError::Template {
                    smarthost: smarthost(cfg),
                    field: field.to_string(),
                    message,
                })
        } else {
            Ok(value.to_owned())
        }
    };

    let from: Mailbox = cfg
        .from
        .trim()
        .parse()
        .map_err(|e| config_error(format!("from {:?}: {e}", cfg.from)))?;
    let to: Mailboxes = cfg
        .to
        .trim()
        .parse()
        .map_err(|e| config_error(format!("to {:?}: {e}", cfg.to)))?;
    let envelope = lettre::address::Envelope::new(
        Some(from.email.clone()),
        to.iter().map(|m| m.email.clone()).collect(),
    )
    .map_err(|e| config_error(format!("envelope: {e}")))?;

    let mut subject = default_subject(notification);
    let mut from_header = from.clone();
    let mut to_header = to;
    let mut extra = Vec::new();
    for (name, value) in &cfg.headers {
        let value = resolve(TemplateField::Header(name), value)?;
        match name.to_ascii_lowercase().as_str() {
            "subject" => subject = value,
            "from" => {
                from_header = value
                    .trim()
                    .parse()
                    .map_err(|e| config_error(format!("header From {value:?}: {e}")))?;
            }
            "to" => {
                to_header = value
                    .trim()
                    .parse()
                    .map_err(|e| config_error(format!("header To {value:?}: {e}")))?;
            }
            "content-type"
            | "content-transfer-encoding"
            | "mime-version"
            | "date"
            | "message-id" => {}
            lower if lower == NOTIFICATION_ID_HEADER.to_ascii_lowercase() => {}
            _ => {
                let header_name = HeaderName::new_from_ascii(name.clone())
                    .map_err(|_| config_error(format!("invalid header name {name:?}")))?;
                // `HeaderValue::new` RFC 2047-encodes and folds the value, so CR/LF in data
                // cannot start a new header.
                extra.push(HeaderValue::new(header_name, value));
            }
        }
    }

    let mut builder = Message::builder()
        .envelope(envelope)
        .from(from_header)
        .mailbox(header::To::from(to_header))
        .subject(subject);
    for value in extra {
        builder = builder.raw_header(value);
    }
    let id_header = HeaderName::new_from_ascii(NOTIFICATION_ID_HEADER.to_owned())
        .map_err(|_| config_error("notification id header name".to_owned()))?;
    builder = builder
        .date(now)
        .message_id(Some(message_id(notification_id, &from)))
        .raw_header(HeaderValue::new(id_header, notification_id.to_owned()));

    let text = match &cfg.text {
        Some(t) => resolve(TemplateField::Text, t)?,
        None => default_text(notification),
    };
    let html = match &cfg.html {
        Some(t) => resolve(TemplateField::Html, t)?,
        None => default_html(notification),
    };
    let configured_empty = |t: &Option<String>| t.as_deref().is_some_and(str::is_empty);
    let message = match (configured_empty(&cfg.text), configured_empty(&cfg.html)) {
        (false, false) => builder.multipart(MultiPart::alternative_plain_html(text, html)),
        (true, false) => builder.singlepart(SinglePart::html(html)),
        (false, true) | (true, true) => builder.singlepart(SinglePart::plain(text)),
    };
    message.map_err(|e| config_error(format!("message: {e}")))
}

/// One delivery attempt of `message` over `transport`, within `cfg.timeout` overall.
pub async fn send(
    transport: &Transport,
    cfg: &EmailConfig,
    message: &Message,
) -> Result<Delivered, EmailError> {
    let attempt = transport.send(message.clone());
    let result = if cfg.timeout.is_zero() {
        attempt.await
    } else {
        match tokio::time::timeout(cfg.timeout, attempt).await {
            Ok(result) => result,
            Err(_) => {
                return Err(EmailError::Transport {
                    smarthost: smarthost(cfg),
                    message: format!("no answer within {:?}", cfg.timeout),
                    timeout: true,
                });
            }
        }
    };
    match result {
        Ok(response) => Ok(Delivered {
            code: response.code().to_string().parse().unwrap_or(250),
            message: response.message().collect::<Vec<_>>().join(" "),
        }),
        Err(e) => Err(classify(smarthost(cfg), &e)),
    }
}

/// Alertmanager's default subject (`email.default.subject`, i.e. `__subject`):
///
/// ```text
/// [{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}]
/// {{ .GroupLabels.SortedPairs.Values | join " " }} {{ if gt (len .CommonLabels) (len
/// .GroupLabels) }}({{ with .CommonLabels.Remove .GroupLabels.Names }}{{ .Values | join " "
/// }}{{ end }}){{ end }}
/// ```
///
/// (one line), including its quirks: a trailing space when there are no extra common
/// labels, and `alertname` first in every value list (`SortedPairs`).
pub fn default_subject(n: &Notification) -> String {
    let status = n.status();
    let mut out = format!("[{}", status.as_str().to_ascii_uppercase());
    if status == Status::Firing {
        let _ = write!(out, ":{}", n.firing().count());
    }
    out.push_str("] ");
    out.push_str(&sorted_values(&n.group_labels).join(" "));
    out.push(' ');
    let common = n.common_labels();
    if common.len() > n.group_labels.len() {
        let rest: LabelSet = common
            .into_iter()
            .filter(|(name, _)| !n.group_labels.contains_key(name))
            .collect();
        out.push('(');
        out.push_str(&sorted_values(&rest).join(" "));
        out.push(')');
    }
    out
}

/// The default plain-text body: the subject line, then the firing and the resolved alerts,
/// each with labels, annotations, start (and end) and source, then the external URL.
pub fn default_text(n: &Notification) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", default_subject(n).trim_end());
    for (title, alerts, resolved) in sections(n) {
        let _ = write!(out, "\n{title} ({}):\n", alerts.len());
        for alert in alerts {
            out.push_str("\nLabels:\n");
            for (name, value) in sorted_pairs(&alert.labels) {
                let _ = writeln!(out, " - {name} = {value}");
            }
            if !alert.annotations.is_empty() {
                out.push_str("Annotations:\n");
                for (name, value) in sorted_pairs(&alert.annotations) {
                    let _ = writeln!(out, " - {name} = {value}");
                }
            }
            let _ = writeln!(out, "Started: {}", go_time(alert.starts_at_ms));
            if let (true, Some(end)) = (resolved, alert.ends_at_ms) {
                let _ = writeln!(out, "Ended: {}", go_time(end));
            }
            if !alert.generator_url.is_empty() {
                let _ = writeln!(out, "Source: {}", alert.generator_url);
            }
        }
    }
    if !n.external_url.is_empty() {
        let _ = write!(out, "\nSent by Redline: {}\n", n.external_url);
    }
    out
}

/// The default HTML body: the same content as `default_text`, every piece of alert data
/// HTML-escaped, links only for `http(s)` URLs.
pub fn default_html(n: &Notification) -> String {
    let mut out = String::new();
    let title = escape_html(default_subject(n).trim_end());
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n\
         </head>\n<body style=\"font-family: sans-serif;\">\n<h2>{title}</h2>\n"
    );
    for (heading, alerts, resolved) in sections(n) {
        let color = if resolved { "#2e7d32" } else { "#c62828" };
        let _ = writeln!(
            out,
            "<h3 style=\"color: {color};\">{heading} ({})</h3>",
            alerts.len()
        );
        for alert in alerts {
            out.push_str("<table style=\"border-collapse: collapse; margin-bottom: 1em;\">\n");
            out.push_str("<tr><th colspan=\"2\" align=\"left\">Labels</th></tr>\n");
            for (name, value) in sorted_pairs(&alert.labels) {
                row(&mut out, name, &escape_html(value));
            }
            if !alert.annotations.is_empty() {
                out.push_str("<tr><th colspan=\"2\" align=\"left\">Annotations</th></tr>\n");
                for (name, value) in sorted_pairs(&alert.annotations) {
                    row(&mut out, name, &escape_html(value));
                }
            }
            row(&mut out, "Started", &go_time(alert.starts_at_ms));
            if let (true, Some(end)) = (resolved, alert.ends_at_ms) {
                row(&mut out, "Ended", &go_time(end));
            }
            if !alert.generator_url.is_empty() {
                row(&mut out, "Source", &link(&alert.generator_url));
            }
            out.push_str("</table>\n");
        }
    }
    if !n.external_url.is_empty() {
        let _ = writeln!(out, "<p>Sent by Redline: {}</p>", link(&n.external_url));
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// `&`, `<`, `>`, `"` and `'` as entities: safe in element content and quoted attributes.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One table row; `value_html` is already escaped.
fn row(out: &mut String, name: &str, value_html: &str) {
    let _ = writeln!(
        out,
        "<tr><td style=\"padding: 0 1em 0 1em;\">{}</td><td>{value_html}</td></tr>",
        escape_html(name)
    );
}

/// An escaped link for `http(s)` URLs; anything else (e.g. `javascript:`) as escaped text.
fn link(url: &str) -> String {
    let escaped = escape_html(url);
    let lower = url.trim_start().to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        format!("<a href=\"{escaped}\">{escaped}</a>")
    } else {
        escaped
    }
}

/// The non-empty sections of a notification: (title, alerts, resolved?).
fn sections(n: &Notification) -> Vec<(&'static str, Vec<&NotifyAlert>, bool)> {
    let firing: Vec<_> = n.firing().collect();
    let resolved: Vec<_> = n.resolved().collect();
    let mut out = Vec::new();
    if !firing.is_empty() {
        out.push(("Firing", firing, false));
    }
    if !resolved.is_empty() {
        out.push(("Resolved", resolved, true));
    }
    out
}

/// Alertmanager's `KV.SortedPairs`: `alertname` first, then the others by name.
fn sorted_pairs(set: &LabelSet) -> Vec<(&str, &str)> {
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(set.len());
    if let Some(v) = set.get("alertname") {
        pairs.push(("alertname", v));
    }
    pairs.extend(
        set.iter()
            .filter(|(k, _)| k.as_str() != "alertname")
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    pairs
}

fn sorted_values(set: &LabelSet) -> Vec<&str> {
    sorted_pairs(set).into_iter().map(|(_, v)| v).collect()
}

/// `<{id}@{domain of from}>`; ids that are not plain `[A-Za-z0-9._-]` are replaced by a
/// SHA-256 digest so the header stays a valid msg-id.
fn message_id(notification_id: &str, from: &Mailbox) -> String {
    let plain = !notification_id.is_empty()
        && notification_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !notification_id.starts_with('.')
        && !notification_id.ends_with('.')
        && !notification_id.contains("..");
    let left = if plain {
        notification_id.to_owned()
    } else {
        let digest = ring::digest::digest(&ring::digest::SHA256, notification_id.as_bytes());
        digest.as_ref()[..16]
            .iter()
            .fold(String::with_capacity(32), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
    };
    format!("<redline.{left}@{}>", from.email.domain())
}

fn smarthost(cfg: &EmailConfig) -> String {
    if cfg.smarthost_host.contains(':') {
        format!("[{}]:{}", cfg.smarthost_host, cfg.smarthost_port)
    } else {
        format!("{}:{}", cfg.smarthost_host, cfg.smarthost_port)
    }
}

fn classify(smarthost: String, e: &lettre::transport::smtp::Error) -> EmailError {
    if let Some(code) = e.status() {
        let message = e
            .source()
            .map(|s| s.to_string())
            .unwrap_or_else(|| e.to_string());
        return EmailError::Smtp {
            smarthost,
            code: code.to_string().parse().unwrap_or(0),
            message,
            retryable: e.is_transient(),
        };
    }
    // lettre's Display repeats nested texts ("Connection error: Connection error: …"): say
    // what kind of failure it was, then the innermost cause once.
    let mut innermost = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        innermost = s.to_string();
        source = s.source();
    }
    let kind = if e.is_client() {
        "refused by the client"
    } else if e.is_tls() {
        "TLS error"
    } else if e.is_response() {
        "bad reply"
    } else if e.is_transport_shutdown() {
        "transport shut down"
    } else {
        "connection error"
    };
    let message = format!("{kind}: {innermost}");
    if e.is_client() {
        EmailError::Refused { smarthost, message }
    } else {
        EmailError::Transport {
            smarthost,
            message,
            timeout: e.is_timeout(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::notify::config::TlsConfig;
    use crate::notify::test_labels as set;

    fn alert(labels: &[(&str, &str)], end: Option<i64>) -> NotifyAlert {
        NotifyAlert {
            labels: set(labels),
            annotations: set(&[("summary", "s")]),
            starts_at_ms: 1_000,
            ends_at_ms: end,
            generator_url: "http://prom/graph".into(),
        }
    }

    fn notification(group: &[(&str, &str)], alerts: Vec<NotifyAlert>) -> Notification {
        Notification {
            receiver: "mail".into(),
            group_key: "{}:{}".into(),
            group_labels: set(group),
            alerts,
            now_ms: 10_000,
            external_url: "http://redline:9190".into(),
            raw_body: None,
        }
    }

    // Expected subjects computed by hand from Alertmanager's template (see `default_subject`).
    #[test]
    fn default_subject_matches_alertmanager() {
        let host = |h: &str, end| {
            alert(
                &[
                    ("alertname", "HighCPU"),
                    ("instance", h),
                    ("job", "node"),
                    ("severity", "warning"),
                ],
                end,
            )
        };
        let n = notification(
            &[("alertname", "HighCPU")],
            vec![host("host1", None), host("host2", None)],
        );
        assert_eq!(default_subject(&n), "[FIRING:2] HighCPU (node warning)");

        let n = notification(
            &[("alertname", "HighCPU"), ("instance", "host1")],
            vec![host("host1", None)],
        );
        assert_eq!(
            default_subject(&n),
            "[FIRING:1] HighCPU host1 (node warning)"
        );

        let n = notification(
            &[("alertname", "HighCPU"), ("instance", "host1")],
            vec![host("host1", Some(5_000))],
        );
        assert_eq!(
            default_subject(&n),
            "[RESOLVED] HighCPU host1 (node warning)"
        );

        // Two firing, one resolved: the count is of firing alerts only.
        let n = notification(
            &[("alertname", "HighCPU")],
            vec![
                host("host1", None),
                host("host2", Some(20_000)),
                host("host3", Some(5_000)),
            ],
        );
        assert_eq!(default_subject(&n), "[FIRING:2] HighCPU (node warning)");

        // Every common label is a group label: nothing in parentheses, a trailing space.
        let n = notification(
            &[("alertname", "A"), ("zone", "z")],
            vec![alert(&[("alertname", "A"), ("zone", "z")], None)],
        );
        assert_eq!(default_subject(&n), "[FIRING:1] A z ");

        // No group labels (`group_by: []`): two spaces; alertname first among the values.
        let n = notification(
            &[],
            vec![alert(
                &[("alertname", "A"), ("instance", "i"), ("zone", "z")],
                None,
            )],
        );
        assert_eq!(default_subject(&n), "[FIRING:1]  (A i z)");
        // Group labels sort alertname first too.
        let n = notification(
            &[("aaa", "1"), ("alertname", "B")],
            vec![alert(&[("aaa", "1"), ("alertname", "B")], None)],
        );
        assert_eq!(default_subject(&n), "[FIRING:1] B 1 ");
    }

    fn config() -> EmailConfig {
        EmailConfig {
            send_resolved: false,
            to: "ops@example.com, \"On Call\" <oncall@example.com>".into(),
            from: "Redline <redline@example.com>".into(),
            smarthost_host: "127.0.0.1".into(),
            smarthost_port: 25,
            hello: "localhost".into(),
            auth_username: None,
            auth_password: None,
            security: SmtpSecurity::Opportunistic,
            tls: TlsConfig::default(),
            headers: BTreeMap::new(),
            html: None,
            text: None,
            timeout: Duration::from_secs(5),
        }
    }

    fn formatted(m: &Message) -> String {
        String::from_utf8_lossy(&m.formatted()).into_owned()
    }

    #[test]
    fn message_has_ids_parts_and_escaped_html() {
        let n = notification(
            &[("alertname", "X")],
            vec![alert(&[("alertname", "X"), ("path", "<script>&\"'")], None)],
        );
        let m = build_message(&config(), &n, "n-42", SystemTime::UNIX_EPOCH, &NoTemplates)
            .expect("builds");
        let text = formatted(&m);
        assert!(
            text.contains("Message-ID: <redline.n-42@example.com>"),
            "{text}"
        );
        assert!(text.contains("X-Redline-Notification-Id: n-42"), "{text}");
        assert!(
            text.contains("Date: Thu, 01 Jan 1970 00:00:00 +0000"),
            "{text}"
        );
        assert!(text.contains("multipart/alternative"), "{text}");
        assert_eq!(m.envelope().to().len(), 2);
        let html = default_html(&n);
        assert!(html.contains("&lt;script&gt;&amp;&quot;&#39;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("<a href=\"http://prom/graph\">"), "{html}");
    }

    #[test]
    fn header_values_cannot_inject_headers() {
        let n = notification(
            &[("alertname", "X\r\nBcc: evil@example.com")],
            vec![alert(&[("alertname", "X\r\nBcc: evil@example.com")], None)],
        );
        let mut cfg = config();
        cfg.headers
            .insert("X-Team".into(), "a\r\nBcc: evil@example.com".into());
        let m =
            build_message(&cfg, &n, "id", SystemTime::UNIX_EPOCH, &NoTemplates).expect("builds");
        let text = formatted(&m);
        let head = text.split("\r\n\r\n").next().unwrap_or_default();
        assert!(
            !head.lines().any(|l| l.starts_with("Bcc:")),
            "header injected:\n{head}"
        );
        assert_eq!(m.envelope().to().len(), 2);
    }

    #[test]
    fn templates_go_through_the_seam_and_literals_do_not() {
        let n = notification(
            &[("alertname", "X")],
            vec![alert(&[("alertname", "X")], None)],
        );
        let mut cfg = config();
        cfg.headers
            .insert("Subject".into(), "literal subject".into());
        let m = build_message(&cfg, &n, "id", SystemTime::UNIX_EPOCH, &NoTemplates)
            .expect("literal needs no engine");
        assert!(formatted(&m).contains("Subject: literal subject"));

        cfg.headers
            .insert("Subject".into(), "{{ .Status }} alert".into());
        let err = build_message(&cfg, &n, "id", SystemTime::UNIX_EPOCH, &NoTemplates)
            .expect_err("a template needs an engine");
        assert!(!err.retryable());
        assert!(err.to_string().contains("header Subject"), "{err}");

        let engine = |field: TemplateField<'_>, t: &str| -> Result<String, String> {
            Ok(format!("{field}:{}", t.replace("{{ .Status }}", "firing")))
        };
        cfg.text = Some("{{ .Status }} body".into());
        let m =
            build_message(&cfg, &n, "id", SystemTime::UNIX_EPOCH, &engine).expect("engine renders");
        let text = formatted(&m);
        assert!(
            text.contains("Subject: header Subject:firing alert"),
            "{text}"
        );
        assert!(text.contains("text:firing body"), "{text}");
    }

    #[test]
    fn bad_addresses_are_permanent_config_errors() {
        let n = notification(&[], vec![alert(&[("alertname", "X")], None)]);
        let mut cfg = config();
        cfg.to = "not an address".into();
        let err = build_message(&cfg, &n, "id", SystemTime::UNIX_EPOCH, &NoTemplates)
            .expect_err("bad to");
        assert!(matches!(err, EmailError::Config { .. }), "{err}");
        assert!(err.to_string().contains("127.0.0.1:25"), "{err}");
    }

    #[test]
    fn message_ids_stay_valid() {
        let from: Mailbox = "a@example.com".parse().expect("mailbox");
        assert_eq!(
            message_id("abc-1.2_3", &from),
            "<redline.abc-1.2_3@example.com>"
        );
        let hashed = message_id("group/key {a=\"b\"}", &from);
        assert_eq!(
            hashed.len(),
            "<redline.@example.com>".len() + 32,
            "{hashed}"
        );
        assert_eq!(hashed, message_id("group/key {a=\"b\"}", &from));
    }
}
