//! The `forward` section of the collector's configuration: the raw YAML shape (`RawForward`,
//! unknown keys refused) and the validated `ForwardConfig` the forwarders run from. Files named
//! in it (`token_file`, `bearer_token_file`, `basic_auth.password_file`, `ca_file`) are read
//! here, at validation, so `redline-collector validate` reports a missing or empty file and a
//! running collector never meets one. `crate::config` parses this section with the rest and
//! calls `validate`; every error names the file, the key and the problem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;

/// `forward:` as written. Default: nothing is forwarded.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawForward {
    /// Forward every OTLP request received (metrics, traces, logs) to one upstream OTLP
    /// endpoint. Default: none.
    pub otlp: Option<RawOtlpForward>,
    /// Send every committed sample to these Prometheus remote_write 1.0 receivers. Default:
    /// none.
    #[serde(default)]
    pub remote_write: Vec<RawRemoteWrite>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOtlpForward {
    /// gRPC: `http(s)://host:4317`; HTTP: the base URL, `http(s)://host:4318` (the forwarder
    /// appends `/v1/metrics`, `/v1/traces`, `/v1/logs`). Required.
    pub endpoint: String,
    /// `grpc` or `http` (OTLP/HTTP with protobuf bodies). Default `grpc`.
    pub protocol: Option<String>,
    /// A file holding a bearer token sent as `Authorization: Bearer <token>`. Default: none.
    pub token_file: Option<PathBuf>,
    /// Extra request headers (gRPC metadata), e.g. `X-Scope-OrgID`. Default: none.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Longest one export may take. Default `10s`.
    pub timeout: Option<String>,
    /// The durable queue of this target holds at most this many bytes; when full, the oldest
    /// requests are dropped (counted). Default 268435456 (256 MiB).
    pub queue_max_bytes: Option<u64>,
    /// PEM bundle of CAs to trust for an `https` endpoint instead of the system's. Default:
    /// the system's roots.
    pub ca_file: Option<PathBuf>,
    /// `gzip` or `none`. Default `gzip`.
    pub compression: Option<String>,
    /// First retry delay (before full jitter). Default `1s`.
    pub initial_backoff: Option<String>,
    /// Longest retry delay (before full jitter). Default `30s`.
    pub max_backoff: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRemoteWrite {
    /// The receiver, e.g. `http://victoria:8428/api/v1/write`. Required.
    pub url: String,
    /// Names the target in metrics, logs and the durable queue. Default: the URL without
    /// credentials or query. Changing it (or the URL, without a name) starts a new queue.
    pub name: Option<String>,
    /// A file holding a bearer token (`Authorization: Bearer`). Default: none.
    pub bearer_token_file: Option<PathBuf>,
    /// HTTP basic authentication. Default: none.
    pub basic_auth: Option<RawBasicAuth>,
    /// Extra request headers. Default: none.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Longest one request may take. Default `30s` (Prometheus' `remote_timeout`).
    pub timeout: Option<String>,
    /// The durable queue of this target holds at most this many bytes; when full, the oldest
    /// samples are dropped (counted). Default 268435456 (256 MiB).
    pub queue_max_bytes: Option<u64>,
    /// Most samples in one request. Default 2000 (Prometheus' default).
    pub max_samples_per_send: Option<usize>,
    /// PEM bundle of CAs to trust for an `https` URL instead of the system's. Default: the
    /// system's roots.
    pub ca_file: Option<PathBuf>,
    /// First retry delay (before full jitter). Default `30ms` (Prometheus' `min_backoff`).
    pub initial_backoff: Option<String>,
    /// Longest retry delay (before full jitter). Default `5s` (Prometheus' `max_backoff`).
    pub max_backoff: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBasicAuth {
    pub username: String,
    /// A file holding the password. Required.
    pub password_file: PathBuf,
}

/// A secret read from a file; `Debug` never shows it (the configuration is logged).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// Everything the collector forwards, validated.
#[derive(Clone, Debug, Default)]
pub struct ForwardConfig {
    pub otlp: Option<OtlpForwardConfig>,
    pub remote_write: Vec<RemoteWriteConfig>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtlpProtocol {
    Grpc,
    Http,
}

/// How long to wait between attempts: exponential from `initial` to `max`, full jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

#[derive(Clone, Debug)]
pub struct OtlpForwardConfig {
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    pub token: Option<Secret>,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub queue_max_bytes: u64,
    /// The PEM read from `ca_file`.
    pub ca_pem: Option<Vec<u8>>,
    pub gzip: bool,
    pub backoff: Backoff,
}

#[derive(Clone, Debug)]
pub struct RemoteWriteConfig {
    pub url: String,
    pub name: String,
    pub bearer_token: Option<Secret>,
    pub basic_auth: Option<(String, Secret)>,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub queue_max_bytes: u64,
    pub max_samples_per_send: usize,
    pub ca_pem: Option<Vec<u8>>,
    pub backoff: Backoff,
}

/// The durable queue's name of the OTLP target (`forward_queue.target`).
pub const OTLP_TARGET: &str = "otlp";

impl RemoteWriteConfig {
    /// The durable queue's name of this target (`forward_queue.target`).
    pub fn target(&self) -> String {
        format!("remote_write:{}", self.name)
    }
}

impl ForwardConfig {
    /// Whether anything is forwarded at all.
    pub fn is_empty(&self) -> bool {
        self.otlp.is_none() && self.remote_write.is_empty()
    }
}

const DEFAULT_QUEUE_MAX_BYTES: u64 = 256 << 20;

/// Headers the remote_write protocol sets itself; configuring them would break it.
const RESERVED_REMOTE_WRITE_HEADERS: &[&str] = &[
    "content-encoding",
    "content-type",
    "x-prometheus-remote-write-version",
    "user-agent",
    "authorization",
    "host",
    "content-length",
];

struct Ctx<'a> {
    path: &'a Path,
}

impl Ctx<'_> {
    fn invalid(&self, key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_owned(),
            key: key.into(),
            problem: problem.into(),
        }
    }

    fn duration(
        &self,
        key: &str,
        text: Option<&str>,
        default: &str,
    ) -> Result<Duration, ConfigError> {
        let text = text.unwrap_or(default);
        let d = humantime::parse_duration(text.trim()).map_err(|e| {
            self.invalid(
                key,
                format!("{text:?} is not a duration ({e}); write e.g. 500ms, 10s, 1m"),
            )
        })?;
        if d.is_zero() {
            return Err(self.invalid(key, "must be greater than zero"));
        }
        Ok(d)
    }

    fn secret(&self, key: &str, file: &Path) -> Result<Secret, ConfigError> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| self.invalid(key, format!("cannot read {}: {e}", file.display())))?;
        let text = text.trim();
        if text.is_empty() {
            return Err(self.invalid(key, format!("{} is empty", file.display())));
        }
        Ok(Secret(text.to_owned()))
    }

    fn ca(&self, key: &str, file: &Path) -> Result<Vec<u8>, ConfigError> {
        let pem = std::fs::read(file)
            .map_err(|e| self.invalid(key, format!("cannot read {}: {e}", file.display())))?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(self.invalid(key, format!("{} holds no PEM certificate", file.display())));
        }
        Ok(pem)
    }

    fn url(&self, key: &str, url: &str) -> Result<(), ConfigError> {
        let Some(rest) = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
        else {
            return Err(self.invalid(key, format!("{url:?} is not an http:// or https:// URL")));
        };
        if rest.is_empty() || rest.starts_with('/') {
            return Err(self.invalid(key, format!("{url:?} has no host")));
        }
        Ok(())
    }

    fn headers(
        &self,
        key: &str,
        headers: BTreeMap<String, String>,
        reserved: &[&str],
    ) -> Result<Vec<(String, String)>, ConfigError> {
        let mut out = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            let lower = name.to_ascii_lowercase();
            let valid_name = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !valid_name {
                return Err(self.invalid(
                    format!("{key}.{name}"),
                    "is not a valid header name (letters, digits, '-', '_', '.')",
                ));
            }
            if reserved.contains(&lower.as_str()) {
                return Err(self.invalid(
                    format!("{key}.{name}"),
                    "is set by the forwarder itself and cannot be configured",
                ));
            }
            if value.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
                return Err(self.invalid(
                    format!("{key}.{name}"),
                    "the value holds control characters",
                ));
            }
            out.push((lower, value));
        }
        Ok(out)
    }
}

/// The URL with user information, query and fragment removed: a target's default name, safe
/// to show in logs and metrics.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let rest = match rest.split_once('/') {
        Some((authority, path)) => {
            let host = authority.rsplit('@').next().unwrap_or(authority);
            format!("{host}/{path}")
        }
        None => rest.rsplit('@').next().unwrap_or(rest).to_owned(),
    };
    if scheme.is_empty() {
        rest
    } else {
        format!("{scheme}://{rest}")
    }
}

/// Validates `forward:`; `path` names the configuration file in errors.
pub fn validate(raw: RawForward, path: &Path) -> Result<ForwardConfig, ConfigError> {
    let ctx = Ctx { path };
    let otlp = match raw.otlp {
        None => None,
        Some(o) => {
            let key = "forward.otlp";
            ctx.url(&format!("{key}.endpoint"), &o.endpoint)?;
            let protocol = match o.protocol.as_deref().unwrap_or("grpc") {
                "grpc" => OtlpProtocol::Grpc,
                "http" | "http/protobuf" => OtlpProtocol::Http,
                other => {
                    return Err(ctx.invalid(
                        format!("{key}.protocol"),
                        format!("{other:?} is not one of grpc, http"),
                    ));
                }
            };
            let gzip = match o.compression.as_deref().unwrap_or("gzip") {
                "gzip" => true,
                "none" => false,
                other => {
                    return Err(ctx.invalid(
                        format!("{key}.compression"),
                        format!("{other:?} is not one of gzip, none"),
                    ));
                }
            };
            let token = match &o.token_file {
                Some(f) => Some(ctx.secret(&format!("{key}.token_file"), f)?),
                None => None,
            };
            let mut reserved = vec!["content-type", "content-encoding", "content-length", "host"];
            if token.is_some() {
                reserved.push("authorization");
            }
            let backoff = Backoff {
                initial: ctx.duration(
                    &format!("{key}.initial_backoff"),
                    o.initial_backoff.as_deref(),
                    "1s",
                )?,
                max: ctx.duration(
                    &format!("{key}.max_backoff"),
                    o.max_backoff.as_deref(),
                    "30s",
                )?,
            };
            if backoff.max < backoff.initial {
                return Err(ctx.invalid(
                    format!("{key}.max_backoff"),
                    "is shorter than initial_backoff",
                ));
            }
            Some(OtlpForwardConfig {
                endpoint: o.endpoint.trim_end_matches('/').to_owned(),
                protocol,
                headers: ctx.headers(&format!("{key}.headers"), o.headers, &reserved)?,
                token,
                timeout: ctx.duration(&format!("{key}.timeout"), o.timeout.as_deref(), "10s")?,
                queue_max_bytes: queue_bytes(&ctx, key, o.queue_max_bytes)?,
                ca_pem: match &o.ca_file {
                    Some(f) => Some(ctx.ca(&format!("{key}.ca_file"), f)?),
                    None => None,
                },
                gzip,
                backoff,
            })
        }
    };
    let mut remote_write = Vec::with_capacity(raw.remote_write.len());
    for (i, r) in raw.remote_write.into_iter().enumerate() {
        let key = format!("forward.remote_write[{i}]");
        ctx.url(&format!("{key}.url"), &r.url)?;
        let name = match r.name {
            Some(n) if n.trim().is_empty() => {
                return Err(ctx.invalid(format!("{key}.name"), "must not be empty"));
            }
            Some(n) => n,
            None => redact_url(&r.url),
        };
        if remote_write
            .iter()
            .any(|w: &RemoteWriteConfig| w.name == name)
        {
            return Err(ctx.invalid(
                format!("{key}.name"),
                format!(
                    "{name:?} names another remote_write target too; give each a distinct `name`"
                ),
            ));
        }
        if r.bearer_token_file.is_some() && r.basic_auth.is_some() {
            return Err(ctx.invalid(
                key,
                "has both bearer_token_file and basic_auth; use at most one",
            ));
        }
        let bearer_token = match &r.bearer_token_file {
            Some(f) => Some(ctx.secret(&format!("{key}.bearer_token_file"), f)?),
            None => None,
        };
        let basic_auth = match r.basic_auth {
            Some(b) => {
                if b.username.is_empty() || b.username.contains(':') {
                    return Err(ctx.invalid(
                        format!("{key}.basic_auth.username"),
                        "must be non-empty and hold no ':'",
                    ));
                }
                let password =
                    ctx.secret(&format!("{key}.basic_auth.password_file"), &b.password_file)?;
                Some((b.username, password))
            }
            None => None,
        };
        let max_samples_per_send = r.max_samples_per_send.unwrap_or(2000);
        if max_samples_per_send == 0 {
            return Err(ctx.invalid(
                format!("{key}.max_samples_per_send"),
                "must be greater than zero",
            ));
        }
        let backoff = Backoff {
            initial: ctx.duration(
                &format!("{key}.initial_backoff"),
                r.initial_backoff.as_deref(),
                "30ms",
            )?,
            max: ctx.duration(
                &format!("{key}.max_backoff"),
                r.max_backoff.as_deref(),
                "5s",
            )?,
        };
        if backoff.max < backoff.initial {
            return Err(ctx.invalid(
                format!("{key}.max_backoff"),
                "is shorter than initial_backoff",
            ));
        }
        remote_write.push(RemoteWriteConfig {
            headers: ctx.headers(
                &format!("{key}.headers"),
                r.headers,
                RESERVED_REMOTE_WRITE_HEADERS,
            )?,
            url: r.url,
            name,
            bearer_token,
            basic_auth,
            timeout: ctx.duration(&format!("{key}.timeout"), r.timeout.as_deref(), "30s")?,
            queue_max_bytes: queue_bytes(&ctx, &key, r.queue_max_bytes)?,
            max_samples_per_send,
            ca_pem: match &r.ca_file {
                Some(f) => Some(ctx.ca(&format!("{key}.ca_file"), f)?),
                None => None,
            },
            backoff,
        });
    }
    Ok(ForwardConfig { otlp, remote_write })
}

fn queue_bytes(ctx: &Ctx<'_>, key: &str, v: Option<u64>) -> Result<u64, ConfigError> {
    let v = v.unwrap_or(DEFAULT_QUEUE_MAX_BYTES);
    // Below one request's worth the queue would drop everything it is handed.
    if v < 64 << 10 {
        return Err(ctx.invalid(
            format!("{key}.queue_max_bytes"),
            format!("{v} is below the minimum of 65536 bytes"),
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::Config;

    fn err(yaml: &str) -> String {
        Config::from_yaml(yaml, Path::new("c.yaml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults_and_names() {
        let c = Config::from_yaml(
            "forward:\n  otlp: {endpoint: 'http://gw:4317/'}\n  remote_write:\n    - url: 'https://u:p@vm:8428/api/v1/write?x=1'\n",
            Path::new("c.yaml"),
        )
        .unwrap();
        let o = c.forward.otlp.unwrap();
        assert_eq!(o.endpoint, "http://gw:4317");
        assert_eq!(o.protocol, OtlpProtocol::Grpc);
        assert_eq!(o.timeout, Duration::from_secs(10));
        assert_eq!(o.queue_max_bytes, 256 << 20);
        assert!(o.gzip);
        let r = &c.forward.remote_write[0];
        assert_eq!(r.name, "https://vm:8428/api/v1/write");
        assert_eq!(r.target(), "remote_write:https://vm:8428/api/v1/write");
        assert_eq!(r.max_samples_per_send, 2000);
        assert_eq!(r.timeout, Duration::from_secs(30));
        assert!(
            Config::from_yaml("", Path::new("c.yaml"))
                .unwrap()
                .forward
                .is_empty()
        );
    }

    #[test]
    fn errors_name_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let missing = dir.path().join("missing");
        for (yaml, key) in [
            (
                "forward: {otlp: {endpoint: 'gw:4317'}}",
                "forward.otlp.endpoint",
            ),
            (
                "forward: {otlp: {endpoint: 'http://gw', protocol: thrift}}",
                "forward.otlp.protocol",
            ),
            (
                "forward: {otlp: {endpoint: 'http://gw', timeout: 0s}}",
                "forward.otlp.timeout",
            ),
            (
                "forward: {otlp: {endpoint: 'http://gw', queue_max_bytes: 10}}",
                "forward.otlp.queue_max_bytes",
            ),
            (
                "forward: {otlp: {endpoint: 'http://gw', compression: zstd}}",
                "forward.otlp.compression",
            ),
            (
                "forward: {otlp: {endpoint: 'http://gw', headers: {'a b': c}}}",
                "forward.otlp.headers.a b",
            ),
            (
                &format!(
                    "forward: {{otlp: {{endpoint: 'http://gw', token_file: '{}'}}}}",
                    empty.display()
                ),
                "forward.otlp.token_file",
            ),
            (
                &format!(
                    "forward: {{otlp: {{endpoint: 'http://gw', ca_file: '{}'}}}}",
                    empty.display()
                ),
                "forward.otlp.ca_file",
            ),
            (
                "forward: {remote_write: [{url: 'http://a'}, {url: 'ftp://b'}]}",
                "forward.remote_write[1].url",
            ),
            (
                "forward: {remote_write: [{url: 'http://a'}, {url: 'http://a'}]}",
                "forward.remote_write[1].name",
            ),
            (
                "forward: {remote_write: [{url: 'http://a', max_samples_per_send: 0}]}",
                "forward.remote_write[0].max_samples_per_send",
            ),
            (
                "forward: {remote_write: [{url: 'http://a', headers: {Content-Type: x}}]}",
                "forward.remote_write[0].headers.Content-Type",
            ),
            (
                &format!(
                    "forward: {{remote_write: [{{url: 'http://a', bearer_token_file: '{}'}}]}}",
                    missing.display()
                ),
                "forward.remote_write[0].bearer_token_file",
            ),
            (
                &format!(
                    "forward: {{remote_write: [{{url: 'http://a', basic_auth: {{username: u, password_file: '{}'}}}}]}}",
                    missing.display()
                ),
                "forward.remote_write[0].basic_auth.password_file",
            ),
            (
                "forward: {remote_write: [{url: 'http://a', min_backoff: 1s}]}",
                "",
            ),
        ] {
            let e = err(yaml);
            if key.is_empty() {
                assert!(e.contains("unknown field `min_backoff`"), "{yaml} -> {e}");
            } else {
                assert!(e.starts_with(&format!("c.yaml: {key}: ")), "{yaml} -> {e}");
            }
        }
    }

    #[test]
    fn secrets_are_read_and_not_printed() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cret\n").unwrap();
        let c = Config::from_yaml(
            &format!(
                "forward: {{otlp: {{endpoint: 'http://gw', token_file: '{}'}}}}",
                token.display()
            ),
            Path::new("c.yaml"),
        )
        .unwrap();
        assert_eq!(
            c.forward.otlp.as_ref().unwrap().token,
            Some(Secret("s3cret".into()))
        );
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
