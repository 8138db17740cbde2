//! Configuration: the YAML file as written by the operator ([`RawConfig`], serde with
//! `deny_unknown_fields`, every field optional) and the validated [`Config`] the rest of the
//! agent reads. `main.rs` loads a file with [`Config::load`], applies command-line overrides
//! and calls [`Config::validate`] again; tests build a [`Config`] with [`Config::default`] or
//! [`Config::from_yaml_str`] and set the public fields. [`crate::bind`] validates once more, so a
//! hand-built `Config` cannot bypass the checks.
//!
//! Every setting has a default, so an empty file (or no file) is a working configuration.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

/// Default OTLP/gRPC endpoint of `redline-collector`.
pub const DEFAULT_GRPC_ENDPOINT: &str = "http://127.0.0.1:14317";
/// Default OTLP/HTTP endpoint of `redline-collector` (the `/v1/<signal>` paths are appended).
pub const DEFAULT_HTTP_ENDPOINT: &str = "http://127.0.0.1:14318";

/// Default spool directory (`exporter.queue.directory`); systemd's `StateDirectory=` for
/// `redline-agent`.
pub const DEFAULT_QUEUE_DIRECTORY: &str = "/var/lib/redline-agent/queue";

/// Filesystem types that describe no storage (kernel interfaces, RAM-backed or layered
/// filesystems), as excluded by node_exporter and commonly by the OTel hostmetrics receiver.
pub const DEFAULT_EXCLUDED_FS_TYPES: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fuse.gvfsd-fuse",
    "fuse.lxcfs",
    "fuse.portal",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nfsd",
    "nsfs",
    "overlay",
    "proc",
    "procfs",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
];

/// Mount point prefixes (whole path components) that never hold user data; node_exporter's
/// default `mount-points-exclude`.
pub const DEFAULT_EXCLUDED_MOUNTPOINTS: &[&str] = &[
    "/dev",
    "/proc",
    "/sys",
    "/run/credentials",
    "/var/lib/docker",
    "/var/lib/containers/storage",
];

/// Block devices skipped by default: loop devices (snaps, images) and RAM disks.
pub const DEFAULT_EXCLUDED_DISK_DEVICES: &[&str] = &["loop*", "ram*"];

/// A configuration that cannot be used, naming the file, the key and the problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The YAML does not parse or does not match the schema (unknown key, wrong type). The
    /// message from the YAML parser names the key path and the line.
    #[error("{origin}: {message}")]
    Parse { origin: Origin, message: String },
    /// A value parses but is not acceptable.
    #[error("{origin}: {key}: {problem}")]
    Invalid {
        origin: Origin,
        key: String,
        problem: String,
    },
}

/// Where a configuration came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A file on disk.
    File(PathBuf),
    /// An in-memory string or a hand-built [`Config`].
    Inline,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Inline => f.write_str("<config>"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Raw: what the operator writes.
// ---------------------------------------------------------------------------------------------

/// The configuration file as written. Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Where and how to ship data. Defaults: see [`RawExporter`].
    #[serde(default)]
    pub exporter: RawExporter,
    /// Host metrics collection. Defaults: see [`RawHostMetrics`].
    #[serde(default)]
    pub host_metrics: RawHostMetrics,
    /// OTLP receivers for local applications. Defaults: see [`RawRelay`].
    #[serde(default)]
    pub relay: RawRelay,
    /// The agent's own `/metrics` endpoint. Defaults: see [`RawTelemetry`].
    #[serde(default)]
    pub telemetry: RawTelemetry,
}

/// `exporter:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExporter {
    /// OTLP endpoint of the collector. Default `http://127.0.0.1:14317` for `grpc`,
    /// `http://127.0.0.1:14318` for `http` (where `/v1/metrics`, `/v1/traces`, `/v1/logs` are
    /// appended to the path). `https://` needs `exporter.tls.ca_file`.
    pub endpoint: Option<String>,
    /// `grpc` (default) or `http` (OTLP/HTTP with protobuf bodies).
    pub protocol: Option<Protocol>,
    /// Deadline of one export request, e.g. `10s`. Default `10s`.
    pub timeout: Option<String>,
    /// The on-disk spool every batch waits in until the collector acknowledges it. Defaults:
    /// see [`RawQueue`].
    #[serde(default)]
    pub queue: RawQueue,
    /// Deprecated and ignored (the spool is bounded by `exporter.queue.max_bytes`); accepted
    /// so that older files still load, with a warning.
    pub queue_capacity: Option<usize>,
    /// Deprecated and ignored (replaced by `exporter.queue.max_bytes`); accepted with a
    /// warning.
    pub queue_max_bytes: Option<ByteSize>,
    /// Most data points, spans or log records merged into one export request. Default `8192`.
    pub max_batch_items: Option<usize>,
    /// First retry delay (exponential backoff with full jitter). Default `500ms`.
    pub retry_initial_backoff: Option<String>,
    /// Longest retry delay; also the delay between attempts while the collector refuses our
    /// credentials. Default `30s`.
    pub retry_max_backoff: Option<String>,
    /// Deprecated and ignored: a batch is never given up because retries took long; it stays
    /// spooled until delivered, older than `exporter.queue.max_age`, or evicted by
    /// `exporter.queue.max_bytes`. Accepted with a warning.
    pub retry_max_elapsed: Option<String>,
    /// On shutdown, how long to keep exporting what is spooled (what is left stays on disk for
    /// the next start). Default `5s`.
    pub drain_timeout: Option<String>,
    /// File holding a bearer token sent as `authorization: Bearer <token>` with every export
    /// (surrounding whitespace is trimmed). Re-read on SIGHUP. Default: none (no header).
    pub token_file: Option<PathBuf>,
    /// TLS to the collector (needed for `https://` endpoints). Default: none.
    pub tls: Option<RawClientTls>,
}

/// `exporter.queue:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueue {
    /// Directory of the spool's segment files; created if missing, locked while the agent
    /// runs. Default `/var/lib/redline-agent/queue`.
    pub directory: Option<PathBuf>,
    /// Most bytes the spool holds on disk (records with their headers), an integer or e.g.
    /// `256MiB`; when full the oldest data is dropped. Must be at least
    /// `relay.max_request_bytes`. Default `256MiB`.
    pub max_bytes: Option<ByteSize>,
    /// Data older than this is dropped instead of delivered, e.g. `24h`. Default `24h`.
    pub max_age: Option<String>,
}

/// `exporter.tls:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClientTls {
    /// PEM file with the CA certificate(s) the collector's certificate must chain to. Required
    /// (the system trust store is not read; point this at
    /// `/etc/ssl/certs/ca-certificates.crt` for a publicly signed collector).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) for mutual TLS; needs `key_file`. Default: none.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file` (PKCS#8, PKCS#1 or SEC1). Default: none.
    pub key_file: Option<PathBuf>,
    /// Name the collector's certificate must carry, when it differs from the endpoint's host
    /// (e.g. connecting by IP address). Default: the endpoint's host.
    pub server_name: Option<String>,
}

/// `host_metrics:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHostMetrics {
    /// Collection interval, e.g. `10s`; must be more than zero. Default `10s`.
    pub interval: Option<String>,
    /// Where procfs is mounted. Default `/proc`.
    pub proc_root: Option<PathBuf>,
    /// Where `machine-id` and `os-release` are read from. Default `/etc`.
    pub etc_root: Option<PathBuf>,
    /// Filesystem types to skip. Default: the pseudo filesystems in
    /// [`DEFAULT_EXCLUDED_FS_TYPES`] (proc, sysfs, tmpfs, overlay, squashfs, cgroup2, ...).
    pub exclude_filesystem_types: Option<Vec<String>>,
    /// Mount points to skip, with everything below them. Default: `/dev`, `/proc`, `/sys`,
    /// `/run/credentials`, `/var/lib/docker`, `/var/lib/containers/storage`.
    pub exclude_mountpoints: Option<Vec<String>>,
    /// Block devices to skip: exact names, or prefixes when ending in `*`. Default
    /// `["loop*", "ram*"]`.
    pub exclude_disk_devices: Option<Vec<String>>,
    /// Network interfaces to skip: exact names, or prefixes when ending in `*`. Default `[]`
    /// (`lo` is reported, as node_exporter does).
    pub exclude_network_devices: Option<Vec<String>>,
    /// Resource attributes added to (or replacing detected ones on) the host metrics, e.g.
    /// `{deployment.environment.name: prod}`. Default `{}`.
    pub resource_attributes: Option<BTreeMap<String, String>>,
}

/// `relay:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRelay {
    /// OTLP/gRPC listen address for local applications. Default `127.0.0.1:4317`.
    pub grpc_listen: Option<String>,
    /// OTLP/HTTP listen address for local applications. Default `127.0.0.1:4318`.
    pub http_listen: Option<String>,
    /// Largest accepted request body after decompression, an integer or e.g. `4MiB`.
    /// Default `4MiB`.
    pub max_request_bytes: Option<ByteSize>,
    /// TLS on both relay listeners. Default: none (plain text).
    pub tls: Option<RawServerTls>,
    /// File holding the bearer token applications must send (`authorization: Bearer
    /// <token>`); others get 401 / UNAUTHENTICATED. Re-read on SIGHUP. Default: none.
    pub token_file: Option<PathBuf>,
}

/// `relay.tls:` and `telemetry.tls:` sections.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServerTls {
    /// PEM certificate (chain) of the listener. Required.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`. Required.
    pub key_file: Option<PathBuf>,
    /// PEM CA certificate(s) client certificates must chain to; when set, clients must
    /// present one (mutual TLS). Default: none.
    pub client_ca_file: Option<PathBuf>,
}

/// `telemetry:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTelemetry {
    /// Listen address of the agent's Prometheus `/metrics` endpoint. Default `127.0.0.1:9101`.
    pub listen: Option<String>,
    /// TLS on the `/metrics` listener. Default: none.
    pub tls: Option<RawServerTls>,
    /// Bearer token file scrapers must present for `/metrics` (`/healthz` stays open).
    /// Default: none.
    pub token_file: Option<PathBuf>,
}

/// Export protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// OTLP/gRPC, gzip-compressed.
    Grpc,
    /// OTLP/HTTP with gzip-compressed protobuf bodies.
    Http,
}

/// A byte count written either as an integer or as a string with a unit (`512KiB`, `4MiB`,
/// `1GB`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ByteSize {
    /// Plain number of bytes.
    Bytes(u64),
    /// Number with a unit, parsed during validation.
    Text(String),
}

// ---------------------------------------------------------------------------------------------
// Validated.
// ---------------------------------------------------------------------------------------------

/// The validated configuration. Public fields so tests and embedders can adjust it; [`Config::validate`]
/// re-checks the invariants (and [`crate::bind`] calls it).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Deprecated keys that were given (and are ignored), as messages for the log and for
    /// `validate`; empty for a current file.
    pub warnings: Vec<String>,
    /// Where and how data is shipped.
    pub exporter: ExporterConfig,
    /// Host metrics collection.
    pub host_metrics: HostMetricsConfig,
    /// OTLP receivers for local applications.
    pub relay: RelayConfig,
    /// The agent's own `/metrics` endpoint.
    pub telemetry: TelemetryConfig,
}

/// Validated `exporter:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct ExporterConfig {
    /// Collector endpoint; `None` means the default for [`Self::protocol`]. Use
    /// [`ExporterConfig::endpoint`] to read the effective value.
    pub endpoint: Option<Url>,
    /// Export protocol.
    pub protocol: Protocol,
    /// Deadline of one export request.
    pub timeout: Duration,
    /// The on-disk spool.
    pub queue: QueueConfig,
    /// Most items (points, spans, records) per export request.
    pub max_batch_items: usize,
    /// Retry policy.
    pub retry: RetryConfig,
    /// How long shutdown keeps exporting spooled data.
    pub drain_timeout: Duration,
    /// Bearer token file, read at start and on every reload.
    pub token_file: Option<PathBuf>,
    /// TLS to the collector; `Some` exactly when the endpoint is `https://`.
    pub tls: Option<ClientTlsConfig>,
}

/// Validated `exporter.queue:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Spool directory.
    pub directory: PathBuf,
    /// Most bytes on disk (records and their headers).
    pub max_bytes: u64,
    /// Oldest data delivered; older records are dropped.
    pub max_age: Duration,
}

/// Validated `exporter.tls:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTlsConfig {
    /// Trusted CA certificates (PEM).
    pub ca_file: PathBuf,
    /// Client certificate and key for mutual TLS (both or neither).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Expected name in the collector's certificate, overriding the endpoint's host.
    pub server_name: Option<String>,
}

/// Retry policy of the exporter (OTLP spec: exponential backoff with jitter). There is no
/// overall deadline: a batch is retried until it is delivered or the spool drops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    /// Upper bound of the first delay.
    pub initial_backoff: Duration,
    /// Upper bound of any delay (unless the server asks for longer).
    pub max_backoff: Duration,
}

/// Validated `host_metrics:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct HostMetricsConfig {
    /// Collection interval (> 0).
    pub interval: Duration,
    /// procfs mount point.
    pub proc_root: PathBuf,
    /// Directory holding `machine-id` and `os-release`.
    pub etc_root: PathBuf,
    /// Filesystem types to skip.
    pub exclude_filesystem_types: Vec<String>,
    /// Mount point prefixes to skip.
    pub exclude_mountpoints: Vec<String>,
    /// Block device patterns to skip (`name` or `prefix*`).
    pub exclude_disk_devices: Vec<String>,
    /// Network interface patterns to skip (`name` or `prefix*`).
    pub exclude_network_devices: Vec<String>,
    /// Resource attribute overrides.
    pub resource_attributes: BTreeMap<String, String>,
}

/// Validated `relay:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// OTLP/gRPC listen address (port 0 picks a free port).
    pub grpc_listen: SocketAddr,
    /// OTLP/HTTP listen address (port 0 picks a free port).
    pub http_listen: SocketAddr,
    /// Largest accepted request body, decompressed.
    pub max_request_bytes: usize,
    /// TLS on both relay listeners.
    pub tls: Option<ServerTlsConfig>,
    /// Bearer token file applications must present.
    pub token_file: Option<PathBuf>,
}

/// Validated `relay.tls:` / `telemetry.tls:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// When set, clients must present a certificate chaining to these CAs.
    pub client_ca_file: Option<PathBuf>,
}

/// Validated `telemetry:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// `/metrics` listen address (port 0 picks a free port).
    pub listen: SocketAddr,
    /// TLS on the `/metrics` listener.
    pub tls: Option<ServerTlsConfig>,
    /// Bearer token file scrapers must present for `/metrics`.
    pub token_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        // An empty raw config validates by construction; the defaults are tested below.
        match RawConfig::default().validate(&Origin::Inline) {
            Ok(c) => c,
            Err(e) => unreachable!("built-in defaults are invalid: {e}"),
        }
    }
}

impl ExporterConfig {
    /// The effective collector endpoint.
    pub fn endpoint(&self) -> Url {
        if let Some(url) = &self.endpoint {
            return url.clone();
        }
        let default = match self.protocol {
            Protocol::Grpc => DEFAULT_GRPC_ENDPOINT,
            Protocol::Http => DEFAULT_HTTP_ENDPOINT,
        };
        match Url::parse(default) {
            Ok(u) => u,
            Err(e) => unreachable!("default endpoint {default} is invalid: {e}"),
        }
    }
}

impl Config {
    /// Reads, parses and validates a YAML file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &Origin::File(path.to_path_buf()))
    }

    /// Parses and validates YAML text (handy in tests).
    pub fn from_yaml_str(text: &str) -> Result<Config, ConfigError> {
        Self::parse(text, &Origin::Inline)
    }

    fn parse(text: &str, origin: &Origin) -> Result<Config, ConfigError> {
        RawConfig::parse(text, origin)?.validate(origin)
    }

    /// Re-checks the invariants of a possibly hand-edited configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, problem: String| ConfigError::Invalid {
            origin: Origin::Inline,
            key: key.to_string(),
            problem,
        };
        if self.host_metrics.interval.is_zero() {
            return Err(invalid(
                "host_metrics.interval",
                "must be more than 0".into(),
            ));
        }
        if self.exporter.timeout.is_zero() {
            return Err(invalid("exporter.timeout", "must be more than 0".into()));
        }
        let relay_limit = u64::try_from(self.relay.max_request_bytes).unwrap_or(u64::MAX);
        if self.exporter.queue.max_bytes < relay_limit {
            return Err(invalid(
                "exporter.queue.max_bytes",
                format!(
                    "{} is less than relay.max_request_bytes ({relay_limit}): a relayed request could never be spooled",
                    self.exporter.queue.max_bytes
                ),
            ));
        }
        if self.exporter.queue.max_age.is_zero() {
            return Err(invalid(
                "exporter.queue.max_age",
                "must be more than 0".into(),
            ));
        }
        if self.exporter.queue.directory.as_os_str().is_empty() {
            return Err(invalid(
                "exporter.queue.directory",
                "must not be empty".into(),
            ));
        }
        if self.exporter.max_batch_items == 0 {
            return Err(invalid(
                "exporter.max_batch_items",
                "must be at least 1".into(),
            ));
        }
        if self.relay.max_request_bytes == 0 {
            return Err(invalid(
                "relay.max_request_bytes",
                "must be at least 1".into(),
            ));
        }
        if self.exporter.retry.initial_backoff.is_zero() {
            return Err(invalid(
                "exporter.retry_initial_backoff",
                "must be more than 0".into(),
            ));
        }
        if self.exporter.retry.max_backoff < self.exporter.retry.initial_backoff {
            return Err(invalid(
                "exporter.retry_max_backoff",
                "must not be less than retry_initial_backoff".into(),
            ));
        }
        let endpoint = self.exporter.endpoint();
        check_endpoint(&endpoint).map_err(|p| invalid("exporter.endpoint", p))?;
        match (endpoint.scheme(), &self.exporter.tls) {
            ("https", None) => {
                return Err(invalid(
                    "exporter.tls.ca_file",
                    format!("{endpoint} is https:// but no CA file is configured"),
                ));
            }
            ("http", Some(_)) => {
                return Err(invalid(
                    "exporter.tls",
                    format!("{endpoint} is http://; use https:// with exporter.tls"),
                ));
            }
            _ => {}
        }
        // The files must be readable and parse now, not at the first export: `validate` and
        // a start with a broken file fail here, naming the file and the problem.
        crate::credentials::ExportCredentials::load(&self.exporter)
            .map_err(|e| invalid(e.key(), e.to_string()))?;
        crate::credentials::ListenerCredentials::load(
            "relay",
            self.relay.tls.as_ref(),
            self.relay.token_file.as_deref(),
        )
        .map_err(|e| invalid(e.key(), e.to_string()))?;
        crate::credentials::ListenerCredentials::load(
            "telemetry",
            self.telemetry.tls.as_ref(),
            self.telemetry.token_file.as_deref(),
        )
        .map_err(|e| invalid(e.key(), e.to_string()))?;
        for key in self.host_metrics.resource_attributes.keys() {
            if key.is_empty() {
                return Err(invalid(
                    "host_metrics.resource_attributes",
                    "attribute names must not be empty".into(),
                ));
            }
        }
        Ok(())
    }
}

impl RawConfig {
    /// Parses YAML text into the raw structure (unknown keys and wrong types fail here).
    pub fn parse(text: &str, origin: &Origin) -> Result<RawConfig, ConfigError> {
        // An empty document (or one holding only comments) is a valid, all-default file.
        let meaningful = text
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#') && l.trim() != "---");
        if !meaningful {
            return Ok(RawConfig::default());
        }
        yaml_serde::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.clone(),
            message: e.to_string(),
        })
    }

    /// Applies defaults and checks every value.
    pub fn validate(self, origin: &Origin) -> Result<Config, ConfigError> {
        let invalid = |key: &str, problem: String| ConfigError::Invalid {
            origin: origin.clone(),
            key: key.to_string(),
            problem,
        };
        let duration = |key: &str, v: Option<String>, default: Duration| match v {
            None => Ok(default),
            Some(s) => humantime::parse_duration(s.trim())
                .map_err(|e| invalid(key, format!("invalid duration {s:?}: {e}"))),
        };
        let addr = |key: &str, v: Option<String>, default: &str| {
            let s = v.unwrap_or_else(|| default.to_string());
            s.trim()
                .parse::<SocketAddr>()
                .map_err(|e| invalid(key, format!("invalid address {s:?} (want IP:PORT): {e}")))
        };
        let bytes = |key: &str, v: Option<ByteSize>, default: u64| -> Result<usize, ConfigError> {
            let n = match v {
                None => default,
                Some(ByteSize::Bytes(n)) => n,
                Some(ByteSize::Text(s)) => parse_byte_size(&s).map_err(|p| invalid(key, p))?,
            };
            usize::try_from(n).map_err(|_| invalid(key, format!("{n} is too large")))
        };

        let server_tls =
            |key: &str, t: Option<RawServerTls>| -> Result<Option<ServerTlsConfig>, ConfigError> {
                let Some(t) = t else { return Ok(None) };
                let cert_file = t.cert_file.ok_or_else(|| {
                    invalid(
                        &format!("{key}.cert_file"),
                        format!("is required with {key}"),
                    )
                })?;
                let key_file = t.key_file.ok_or_else(|| {
                    invalid(
                        &format!("{key}.key_file"),
                        format!("is required with {key}"),
                    )
                })?;
                Ok(Some(ServerTlsConfig {
                    cert_file,
                    key_file,
                    client_ca_file: t.client_ca_file,
                }))
            };

        let e = self.exporter;
        let endpoint = match e.endpoint {
            None => None,
            Some(s) => {
                let url = Url::parse(s.trim()).map_err(|err| {
                    invalid("exporter.endpoint", format!("invalid URL {s:?}: {err}"))
                })?;
                check_endpoint(&url).map_err(|p| invalid("exporter.endpoint", p))?;
                Some(url)
            }
        };
        let mut warnings = Vec::new();
        let mut deprecated = |key: &str, given: bool, instead: &str| {
            if given {
                warnings.push(format!(
                    "{origin}: {key} is deprecated and ignored; {instead}"
                ));
            }
        };
        deprecated(
            "exporter.queue_capacity",
            e.queue_capacity.is_some(),
            "the spool is bounded by exporter.queue.max_bytes",
        );
        deprecated(
            "exporter.queue_max_bytes",
            e.queue_max_bytes.is_some(),
            "use exporter.queue.max_bytes (bytes on disk)",
        );
        deprecated(
            "exporter.retry_max_elapsed",
            e.retry_max_elapsed.is_some(),
            "batches are retried until delivered or dropped by exporter.queue.max_age / max_bytes",
        );
        if let Some(v) = e.retry_max_elapsed {
            duration("exporter.retry_max_elapsed", Some(v), Duration::ZERO)?;
        }
        if let Some(v) = e.queue_max_bytes {
            bytes("exporter.queue_max_bytes", Some(v), 0)?;
        }
        let q = e.queue;
        let queue = QueueConfig {
            directory: q
                .directory
                .unwrap_or_else(|| PathBuf::from(DEFAULT_QUEUE_DIRECTORY)),
            max_bytes: bytes("exporter.queue.max_bytes", q.max_bytes, 256 << 20)? as u64,
            max_age: duration(
                "exporter.queue.max_age",
                q.max_age,
                Duration::from_secs(24 * 3600),
            )?,
        };
        let tls = match e.tls {
            None => None,
            Some(t) => {
                let ca_file = t.ca_file.ok_or_else(|| {
                    invalid(
                        "exporter.tls.ca_file",
                        "is required with exporter.tls".into(),
                    )
                })?;
                let client_cert = match (t.cert_file, t.key_file) {
                    (Some(c), Some(k)) => Some((c, k)),
                    (None, None) => None,
                    (Some(_), None) => {
                        return Err(invalid(
                            "exporter.tls.key_file",
                            "is required with exporter.tls.cert_file".into(),
                        ));
                    }
                    (None, Some(_)) => {
                        return Err(invalid(
                            "exporter.tls.cert_file",
                            "is required with exporter.tls.key_file".into(),
                        ));
                    }
                };
                let server_name = match t.server_name {
                    Some(n) if n.trim().is_empty() => {
                        return Err(invalid(
                            "exporter.tls.server_name",
                            "must not be empty".into(),
                        ));
                    }
                    other => other.map(|n| n.trim().to_string()),
                };
                Some(ClientTlsConfig {
                    ca_file,
                    client_cert,
                    server_name,
                })
            }
        };
        let exporter = ExporterConfig {
            endpoint,
            protocol: e.protocol.unwrap_or(Protocol::Grpc),
            timeout: duration("exporter.timeout", e.timeout, Duration::from_secs(10))?,
            queue,
            max_batch_items: e.max_batch_items.unwrap_or(8192),
            retry: RetryConfig {
                initial_backoff: duration(
                    "exporter.retry_initial_backoff",
                    e.retry_initial_backoff,
                    Duration::from_millis(500),
                )?,
                max_backoff: duration(
                    "exporter.retry_max_backoff",
                    e.retry_max_backoff,
                    Duration::from_secs(30),
                )?,
            },
            drain_timeout: duration(
                "exporter.drain_timeout",
                e.drain_timeout,
                Duration::from_secs(5),
            )?,
            token_file: e.token_file,
            tls,
        };

        let h = self.host_metrics;
        let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let host_metrics = HostMetricsConfig {
            interval: duration("host_metrics.interval", h.interval, Duration::from_secs(10))?,
            proc_root: h.proc_root.unwrap_or_else(|| PathBuf::from("/proc")),
            etc_root: h.etc_root.unwrap_or_else(|| PathBuf::from("/etc")),
            exclude_filesystem_types: h
                .exclude_filesystem_types
                .unwrap_or_else(|| owned(DEFAULT_EXCLUDED_FS_TYPES)),
            exclude_mountpoints: h
                .exclude_mountpoints
                .unwrap_or_else(|| owned(DEFAULT_EXCLUDED_MOUNTPOINTS)),
            exclude_disk_devices: h
                .exclude_disk_devices
                .unwrap_or_else(|| owned(DEFAULT_EXCLUDED_DISK_DEVICES)),
            exclude_network_devices: h.exclude_network_devices.unwrap_or_default(),
            resource_attributes: h.resource_attributes.unwrap_or_default(),
        };
        for m in &host_metrics.exclude_mountpoints {
            if !m.starts_with('/') {
                return Err(invalid(
                    "host_metrics.exclude_mountpoints",
                    format!("{m:?} is not an absolute path"),
                ));
            }
        }

        let r = self.relay;
        let relay = RelayConfig {
            grpc_listen: addr("relay.grpc_listen", r.grpc_listen, "127.0.0.1:4317")?,
            http_listen: addr("relay.http_listen", r.http_listen, "127.0.0.1:4318")?,
            max_request_bytes: bytes("relay.max_request_bytes", r.max_request_bytes, 4 << 20)?,
            tls: server_tls("relay.tls", r.tls)?,
            token_file: r.token_file,
        };
        let t = self.telemetry;
        let telemetry = TelemetryConfig {
            listen: addr("telemetry.listen", t.listen, "127.0.0.1:9101")?,
            tls: server_tls("telemetry.tls", t.tls)?,
            token_file: t.token_file,
        };

        let config = Config {
            warnings,
            exporter,
            host_metrics,
            relay,
            telemetry,
        };
        // Range checks shared with hand-built configs; re-label their origin.
        config.validate().map_err(|err| match err {
            ConfigError::Invalid { key, problem, .. } => ConfigError::Invalid {
                origin: origin.clone(),
                key,
                problem,
            },
            other => other,
        })?;
        Ok(config)
    }
}

/// Checks that an exporter endpoint is usable: `http[s]://host[:port][/path]`.
pub fn check_endpoint(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(format!(
                "{url}: unsupported scheme {other:?}, want http:// or https://"
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{url}: missing host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{url}: must not have a query or fragment"));
    }
    Ok(())
}

/// Parses `1234`, `512KiB`, `4MiB`, `1GiB`, `10kB`, `10MB`, `1GB`, `100B`.
pub fn parse_byte_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid size {s:?}: want e.g. 4194304 or 4MiB"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => return Err(format!("invalid size {s:?}: unknown unit {other:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("invalid size {s:?}: too large"))
}

/// Does `name` match one of `patterns` (exact names, or prefixes when ending in `*`)?
pub fn matches_name(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    })
}

/// Is `mountpoint` equal to or below one of `prefixes` (compared by whole path components)?
pub fn under_any(prefixes: &[String], mountpoint: &str) -> bool {
    prefixes.iter().any(|p| {
        let p = p.trim_end_matches('/');
        if p.is_empty() {
            // "/" excludes everything.
            return true;
        }
        mountpoint == p
            || (mountpoint.starts_with(p) && mountpoint.as_bytes().get(p.len()) == Some(&b'/'))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::default();
        assert_eq!(c.exporter.endpoint().as_str(), "http://127.0.0.1:14317/");
        assert_eq!(c.exporter.protocol, Protocol::Grpc);
        assert_eq!(c.exporter.timeout, Duration::from_secs(10));
        assert_eq!(c.host_metrics.interval, Duration::from_secs(10));
        assert_eq!(c.telemetry.listen, "127.0.0.1:9101".parse().unwrap());
        assert_eq!(c.relay.grpc_listen, "127.0.0.1:4317".parse().unwrap());
        assert_eq!(c.relay.http_listen, "127.0.0.1:4318".parse().unwrap());
        assert_eq!(c.relay.max_request_bytes, 4 << 20);
        assert_eq!(
            c.exporter.queue.directory,
            PathBuf::from("/var/lib/redline-agent/queue")
        );
        assert_eq!(c.exporter.queue.max_bytes, 256 << 20);
        assert_eq!(c.exporter.queue.max_age, Duration::from_secs(24 * 3600));
        assert!(c.exporter.tls.is_none() && c.exporter.token_file.is_none());
        assert!(c.warnings.is_empty());
        assert!(c.host_metrics.exclude_network_devices.is_empty());
        assert!(
            c.host_metrics
                .exclude_filesystem_types
                .contains(&"tmpfs".to_string())
        );
    }

    #[test]
    fn http_protocol_changes_default_endpoint() {
        let c = Config::from_yaml_str("exporter:\n  protocol: http\n").unwrap();
        assert_eq!(c.exporter.endpoint().as_str(), "http://127.0.0.1:14318/");
    }

    #[test]
    fn empty_and_comment_only_files_are_defaults() {
        assert_eq!(Config::from_yaml_str("").unwrap(), Config::default());
        assert_eq!(
            Config::from_yaml_str("# nothing\n---\n").unwrap(),
            Config::default()
        );
    }

    #[test]
    fn full_file() {
        let c = Config::from_yaml_str(
            r#"
exporter:
  endpoint: http://collector.example:4317
  timeout: 3s
  queue:
    directory: /tmp/spool
    max_bytes: 8MiB
    max_age: 2h
host_metrics:
  interval: 1s
  proc_root: /host/proc
  exclude_network_devices: ["veth*"]
  resource_attributes:
    deployment.environment.name: prod
relay:
  grpc_listen: 0.0.0.0:4317
  max_request_bytes: 1024
telemetry:
  listen: 127.0.0.1:0
"#,
        )
        .unwrap();
        assert_eq!(
            c.exporter.endpoint().as_str(),
            "http://collector.example:4317/"
        );
        assert_eq!(c.exporter.queue.max_bytes, 8 << 20);
        assert_eq!(c.exporter.queue.max_age, Duration::from_secs(7200));
        assert_eq!(c.exporter.queue.directory, PathBuf::from("/tmp/spool"));
        assert_eq!(c.host_metrics.interval, Duration::from_secs(1));
        assert_eq!(c.host_metrics.proc_root, PathBuf::from("/host/proc"));
        assert_eq!(c.relay.max_request_bytes, 1024);
        assert_eq!(
            c.host_metrics
                .resource_attributes
                .get("deployment.environment.name")
                .unwrap(),
            "prod"
        );
    }

    fn err(text: &str) -> String {
        Config::from_yaml_str(text).unwrap_err().to_string()
    }

    #[test]
    fn unknown_key_is_named() {
        let e = err("exporter:\n  endpont: http://x:1\n");
        assert!(e.contains("endpont"), "{e}");
        let e = err("bogus: 1\n");
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let e = err("host_metrics:\n  interval: 10x\n");
        assert!(
            e.contains("host_metrics.interval") && e.contains("10x"),
            "{e}"
        );
        let e = err("host_metrics:\n  interval: 0s\n");
        assert!(
            e.contains("host_metrics.interval") && e.contains("more than 0"),
            "{e}"
        );
        let e = err("exporter:\n  endpoint: not a url\n");
        assert!(e.contains("exporter.endpoint"), "{e}");
        let e = err("exporter:\n  endpoint: https://x:4317\n");
        assert!(
            e.contains("exporter.tls.ca_file") && e.contains("https"),
            "{e}"
        );
        let e = err("exporter:\n  tls: {ca_file: /nonexistent/ca.pem}\n");
        assert!(e.contains("exporter.tls") && e.contains("http://"), "{e}");
        let e =
            err("exporter:\n  endpoint: https://x:4317\n  tls: {ca_file: /nonexistent/ca.pem}\n");
        assert!(
            e.contains("exporter.tls.ca_file") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );
        let e = err("exporter:\n  endpoint: https://x:4317\n  tls: {ca_file: /a, cert_file: /b}\n");
        assert!(e.contains("exporter.tls.key_file"), "{e}");
        let e = err("exporter:\n  token_file: /nonexistent/token\n");
        assert!(
            e.contains("exporter.token_file") && e.contains("/nonexistent/token"),
            "{e}"
        );
        let e = err("exporter:\n  queue: {max_bytes: 1MiB}\n");
        assert!(
            e.contains("exporter.queue.max_bytes") && e.contains("relay.max_request_bytes"),
            "{e}"
        );
        let e = err("exporter:\n  queue: {max_age: 0s}\n");
        assert!(e.contains("exporter.queue.max_age"), "{e}");
        let e = err("exporter:\n  queue: {dir: /x}\n");
        assert!(e.contains("dir"), "{e}");
        let e = err("relay:\n  tls: {cert_file: /x}\n");
        assert!(e.contains("relay.tls.key_file"), "{e}");
        let e = err("exporter:\n  protocol: carrier-pigeon\n");
        assert!(e.contains("protocol"), "{e}");
        let e = err("relay:\n  http_listen: localhost\n");
        assert!(e.contains("relay.http_listen"), "{e}");
        let e = err("relay:\n  max_request_bytes: 4 furlongs\n");
        assert!(e.contains("relay.max_request_bytes"), "{e}");
    }

    /// Files written for the in-memory queue still load; the old keys are named in warnings.
    #[test]
    fn deprecated_keys_warn() {
        let c = Config::from_yaml_str(
            "exporter:\n  queue_capacity: 10\n  queue_max_bytes: 1MiB\n  retry_max_elapsed: 1m\n",
        )
        .unwrap();
        assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("exporter.queue_capacity"));
        assert!(c.warnings[1].contains("exporter.queue.max_bytes"));
        assert!(c.warnings[2].contains("exporter.retry_max_elapsed"));
        let mut c = c;
        c.warnings.clear();
        assert_eq!(c, Config::default());
        // Still checked for shape.
        assert!(Config::from_yaml_str("exporter:\n  retry_max_elapsed: soon\n").is_err());
    }

    #[test]
    fn tls_and_token_files_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "abc\n").unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let ok = Config::from_yaml_str(&format!("exporter:\n  token_file: {}\n", token.display()))
            .unwrap();
        assert_eq!(ok.exporter.token_file.as_deref(), Some(token.as_path()));
        let e = err(&format!(
            "exporter:\n  endpoint: https://c:1\n  tls:\n    ca_file: {}\n",
            ca.display()
        ));
        assert!(
            e.contains("exporter.tls.ca_file") && e.contains("ca.pem"),
            "{e}"
        );
    }

    /// The shipped example spells out every key with its default value.
    #[test]
    fn example_file_is_the_defaults() {
        let text = include_str!("../redline-agent.example.yaml");
        let mut c = Config::from_yaml_str(text).unwrap();
        assert_eq!(
            c.exporter.endpoint.take().unwrap().as_str(),
            "http://127.0.0.1:14317/"
        );
        assert_eq!(c, Config::default());
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("4MiB").unwrap(), 4 << 20);
        assert_eq!(parse_byte_size("10 kB").unwrap(), 10_000);
        assert_eq!(parse_byte_size("77").unwrap(), 77);
        assert!(parse_byte_size("MiB").is_err());
        assert!(parse_byte_size("99999999999999GiB").is_err());
    }

    #[test]
    fn name_patterns() {
        let p = vec!["loop*".to_string(), "sr0".to_string()];
        assert!(matches_name(&p, "loop0"));
        assert!(matches_name(&p, "sr0"));
        assert!(!matches_name(&p, "sr1"));
        assert!(!matches_name(&p, "sda"));
    }

    #[test]
    fn mountpoint_prefixes() {
        let p = vec!["/dev".to_string(), "/run/credentials".to_string()];
        assert!(under_any(&p, "/dev"));
        assert!(under_any(&p, "/dev/shm"));
        assert!(!under_any(&p, "/devices"));
        assert!(under_any(&p, "/run/credentials/x.service"));
        assert!(!under_any(&p, "/"));
        assert!(!under_any(&p, "/run"));
    }
}
