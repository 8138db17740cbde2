//! Configuration: the raw YAML shape (`RawConfig`, every field optional, unknown keys refused)
//! and the validated `Config` the rest of the collector uses. `load` reads and validates a file
//! and names the file, key and problem in its errors; command-line flags are applied on top by
//! `main` before validation.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// A configuration problem, naming where it is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {key}: {problem}")]
    Invalid {
        path: PathBuf,
        key: String,
        problem: String,
    },
}

/// The configuration file as written. Every field is optional; the comment on each states the
/// default that applies when it is absent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Directory of the SQLite database. Default `./data`.
    pub data_dir: Option<PathBuf>,
    /// How long samples, spans and logs are kept, e.g. `15d`. Default `15d`.
    pub retention: Option<String>,
    #[serde(default)]
    pub listen: RawListen,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub telemetry: RawTelemetry,
    #[serde(default)]
    pub rules: RawRules,
    #[serde(default)]
    pub notify: RawNotify,
    #[serde(default)]
    pub detect: RawDetect,
    #[serde(default)]
    pub incidents: RawIncidents,
    #[serde(default)]
    pub verification: RawVerification,
    /// Forwarding to upstream OTLP endpoints and remote_write receivers (`forward::config`).
    #[serde(default)]
    pub forward: crate::forward::config::RawForward,
    #[serde(default)]
    pub auth: RawAuth,
    pub tls: Option<RawTls>,
}

/// Bearer tokens (see `listen::auth`). Each file holds one token per line; a scope without a
/// file is open.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// Tokens accepted on the OTLP listeners (gRPC metadata or HTTP `Authorization: Bearer`).
    pub ingest_token_file: Option<PathBuf>,
    /// Tokens for the API's reads and `/metrics`.
    pub read_token_file: Option<PathBuf>,
    /// Tokens for the API's changes (and reads).
    pub write_token_file: Option<PathBuf>,
}

/// TLS on the listeners (rustls). Certificates are re-read on SIGHUP.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// PEM certificate chain, leaf first.
    pub cert_file: Option<PathBuf>,
    /// PEM private key.
    pub key_file: Option<PathBuf>,
    /// PEM CA certificates; when set, the listeners in `client_auth_listeners` require a
    /// client certificate signed by one of them (mTLS).
    pub client_ca_file: Option<PathBuf>,
    /// Listeners that speak TLS: any of `otlp_grpc`, `otlp_http`, `http`. Default: all three.
    pub listeners: Option<Vec<String>>,
    /// Listeners that require client certificates when `client_ca_file` is set. Default
    /// `[otlp_grpc, otlp_http]` (agents carry certificates; people with browsers rarely do).
    pub client_auth_listeners: Option<Vec<String>>,
}

/// Post-deploy verification and rollback (see `verify`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVerification {
    /// How long after a deployment finishes its indicators are analysed. Default `10m`.
    pub analysis_window: Option<String>,
    /// The window before the deployment started that is the baseline. Default `30m`.
    pub baseline_window: Option<String>,
    /// Analyses repeat this often through the analysis window. Default `1m`.
    pub interval: Option<String>,
    /// Resolution of an indicator's samples (the range query's step). Default `15s`.
    pub step: Option<String>,
    /// Confidence of the Mann-Whitney U test, e.g. 0.98 (Kayenta's default). Default `0.98`.
    pub confidence: Option<f64>,
    /// Smallest relative worsening of the median that fails an analysis. Default `0.1`.
    pub effect_floor: Option<f64>,
    /// Fewer samples than this in a window (after outliers) is inconclusive. Default `5`.
    pub min_samples: Option<usize>,
    /// Consecutive failed analyses of one indicator that fail the deployment. Default `3`.
    pub failure_limit: Option<u32>,
    /// A firing incident linked to a deployment that finished at most this long before it
    /// also triggers a rollback decision. Default `2h`.
    pub incident_window: Option<String>,
    /// Per service (and environment): indicators and rollback policy.
    #[serde(default)]
    pub services: Vec<RawServiceVerification>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServiceVerification {
    pub service: String,
    /// Only deployments to this environment; default every environment.
    pub environment: Option<String>,
    #[serde(default)]
    pub indicators: Vec<RawIndicator>,
    #[serde(default)]
    pub rollback: Option<RawRollback>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIndicator {
    pub name: String,
    /// A PromQL expression; every sample of every series it returns is a sample.
    pub query: String,
    /// `higher_is_worse` or `lower_is_worse`.
    pub direction: crate::verify::Direction,
    /// An absolute limit in the worse direction.
    pub limit: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRollback {
    /// `off` (default), `dry-run`, `approval` or `auto`.
    #[serde(default)]
    pub mode: crate::verify::rollback::Mode,
    /// Only deployments to these environments are rolled back. Required unless mode is off.
    #[serde(default)]
    pub environments: Vec<String>,
    /// Default `30m`.
    pub cooldown: Option<String>,
    /// At most this many rollbacks of the service per `per`. Default 3 per `24h`.
    pub max_rollbacks: Option<u32>,
    pub per: Option<String>,
    /// How long an approval is waited for. Default `30m`.
    pub approval_timeout: Option<String>,
    #[serde(default)]
    pub hooks: Vec<RawHook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHook {
    /// Run this argv (no shell); the context arrives in `REDLINE_*` variables and as JSON on
    /// stdin.
    pub exec: Option<Vec<String>>,
    /// POST the context JSON here, HMAC-signed, through the notification outbox.
    pub webhook: Option<String>,
    /// A file holding the webhook's HMAC secret (`X-Redline-Signature`).
    pub hmac_secret_file: Option<PathBuf>,
    /// Default `5m` for exec, `10s` per webhook attempt.
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIncidents {
    /// An incident whose alerts have all resolved and stayed resolved this long resolves
    /// itself. Default `5m`.
    pub resolve_after: Option<String>,
    /// A deployment of the incident's service and environment that finished at most this long
    /// before an incident opened is linked as its suspected cause. Default `2h`.
    pub suspect_window: Option<String>,
    /// Alerts with the same values of these labels share an incident. Default: none, i.e.
    /// alerts of the same notification group (route group key) share an incident.
    pub group_by: Option<Vec<String>>,
    /// A file holding the secret GitHub signs `deployment_status` webhooks with
    /// (`X-Hub-Signature-256`). Default: none, and `/api/v1/webhooks/github` answers 404.
    pub github_secret_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDetect {
    /// Whether anomaly scores, span metrics and forecasts are computed. Default `true`.
    pub enabled: Option<bool>,
    /// PromQL selectors of the series to score, e.g. `system_cpu_utilization_ratio` or
    /// `'{__name__=~"app_.*", job="api"}'`. Default: the agent's host metrics and the
    /// trace-derived RED metrics (`derive::default_selectors`).
    pub series: Option<Vec<String>>,
    /// A score at or above this counts a series as anomalous in `anomaly_rate`. Default `0.75`
    /// (a tail probability of about 10⁻⁴ for the series).
    pub threshold: Option<f64>,
    /// How often span metrics, anomaly rates and forecasts are written. Default `15s`.
    pub interval: Option<String>,
    /// How long a score counts in `anomaly_rate`. Default `5m`.
    pub rate_window: Option<String>,
    /// History replayed into the detectors at start. Default `6h`.
    pub warmup: Option<String>,
    /// Most series scored; further series are not scored (counted). Default 100000.
    pub max_series: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    /// The routing configuration: a file in Alertmanager's `alertmanager.yml` format (route,
    /// receivers, inhibit_rules, time_intervals). Relative paths are relative to the working
    /// directory. Default: none — alerts, silences and the API work, nothing is sent.
    pub config_file: Option<PathBuf>,
    /// First retry delay of a failed delivery. Default `1s`.
    pub initial_backoff: Option<String>,
    /// Longest retry delay (before jitter). Default `1m`.
    pub max_backoff: Option<String>,
    /// A notification still undelivered this long after it was decided is given up on and
    /// recorded as failed. Default `1h`.
    pub give_up_after: Option<String>,
    /// How long finished notifications, their attempts, expired silences and the notification
    /// log are kept. Default `5d` (Alertmanager's `--data.retention` is 120h).
    pub retention: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRules {
    /// Rule files and directories of rule files (`*.yml`, `*.yaml`), in Prometheus' format.
    /// Default `["./rules"]`; a missing default directory just means no rules.
    pub paths: Option<Vec<PathBuf>>,
    /// How often groups without their own `interval` are evaluated. Default `1m`, as
    /// Prometheus' `evaluation_interval`.
    pub evaluation_interval: Option<String>,
    /// How long a group waits after new samples of the metrics it reads before it evaluates
    /// early, gathering writes that arrive together. Default `20ms`.
    pub evaluate_on_write_debounce: Option<String>,
    /// Labels added to alerts' `$externalLabels`, as Prometheus' `external_labels`.
    pub external_labels: Option<std::collections::BTreeMap<String, String>>,
    /// The URL alerts link back to (`generatorURL`). Default `http://<hostname>:9190`.
    pub external_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListen {
    /// OTLP/gRPC listener. Default `0.0.0.0:14317`.
    pub otlp_grpc: Option<String>,
    /// OTLP/HTTP listener. Default `0.0.0.0:14318`.
    pub otlp_http: Option<String>,
    /// HTTP API, `/metrics` and health. Default `0.0.0.0:9190`.
    pub http: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Largest OTLP request body after decompression, in bytes. Default 4194304 (4 MiB).
    pub max_request_bytes: Option<usize>,
    /// Most series one query may touch. Default 10000.
    pub query_max_series: Option<usize>,
    /// Most samples one query may load. Default 50000000.
    pub query_max_samples: Option<usize>,
    /// Longest a query may run, e.g. `2m`. Default `2m`.
    pub query_timeout: Option<String>,
    /// OTLP requests being read or committed at once (both OTLP listeners together); more are
    /// answered 429 / `RESOURCE_EXHAUSTED` with a retry delay. Default 64.
    pub max_concurrent_requests: Option<usize>,
    /// HTTP API requests in progress at once (queries, writes; not the health probes); more are
    /// answered 429 with `Retry-After`. Default 64.
    pub api_max_concurrent_requests: Option<usize>,
    /// Series in one OTLP request; a larger request is refused whole. Default 100000.
    pub max_series_per_request: Option<usize>,
    /// Labels of one series (the metric name included); such series are refused. Default 64.
    pub max_labels_per_series: Option<usize>,
    /// Bytes in a label name. Default 1024.
    pub max_label_name_length: Option<usize>,
    /// Bytes in a label value. Default 4096.
    pub max_label_value_length: Option<usize>,
    /// How far ahead of the receive time a timestamp may be, e.g. `10m`. Default `10m`.
    pub max_future: Option<String>,
    /// Series in the store; samples of new series beyond it are refused. Default 2000000.
    pub max_series: Option<usize>,
    /// Series with one `host_name` (one agent's host). Default 50000.
    pub max_series_per_host: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// How often un-flushed samples are folded into compressed chunks. Default `30m`.
    pub head_flush_interval: Option<String>,
    /// How many writes may wait for the writer. Default 256.
    pub write_queue: Option<usize>,
    /// Most bytes the database file may use, e.g. `10GiB` or a number of bytes; at least
    /// `1MiB`. When reached, ingest is refused with UNAVAILABLE/503 (clients keep their data and
    /// retry) until retention frees space or the bound is raised; the `-wal` file, bounded by
    /// checkpoints, comes on top. Default: no bound but the disk.
    pub max_size: Option<RawSize>,
}

/// A size in bytes: a plain number, or a number with a unit (`512MiB`, `10GiB`, `2GB`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawSize {
    Bytes(u64),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTelemetry {
    /// `text` or `json` on stderr. Default: native journal entries with structured fields when
    /// stderr is the journal (under systemd), `text` otherwise.
    pub log_format: Option<String>,
    /// OTLP/gRPC endpoint for the collector's own spans, e.g. `http://127.0.0.1:4317`.
    /// Default: not exported.
    pub otlp_traces_endpoint: Option<String>,
}

/// This host's name, for the default external URL.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Query limits.
#[derive(Clone, Debug)]
pub struct QueryLimits {
    pub max_series: usize,
    pub max_samples: usize,
    pub timeout: Duration,
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Notification settings.
#[derive(Clone, Debug)]
pub struct NotifyConfig {
    pub config_file: Option<PathBuf>,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub give_up_after: Duration,
    pub retention: Duration,
}

/// Anomaly detection and derived series settings.
#[derive(Clone, Debug)]
pub struct DetectConfig {
    pub enabled: bool,
    pub series: Vec<String>,
    pub threshold: f64,
    pub interval: Duration,
    pub flush_interval: Duration,
    pub rate_window: Duration,
    pub warmup: Duration,
    pub max_series: usize,
    pub max_span_keys: usize,
}

/// Incident settings.
#[derive(Clone, Debug)]
pub struct IncidentsConfig {
    pub resolve_after: Duration,
    pub suspect_window: Duration,
    pub group_by: Option<Vec<String>>,
    pub github_secret_file: Option<PathBuf>,
}

impl IncidentsConfig {
    /// The GitHub webhook secret from `github_secret_file` (surrounding whitespace trimmed),
    /// or why it cannot be used.
    pub fn read_github_secret(&self) -> Result<Option<Vec<u8>>, String> {
        let Some(path) = &self.github_secret_file else {
            return Ok(None);
        };
        let text = std::fs::read(path).map_err(|e| {
            format!(
                "incidents.github_secret_file: cannot read {}: {e}",
                path.display()
            )
        })?;
        let secret = text.trim_ascii().to_vec();
        if secret.is_empty() {
            return Err(format!(
                "incidents.github_secret_file: {} is empty",
                path.display()
            ));
        }
        Ok(Some(secret))
    }
}

/// A validated indicator, rollback policy and hooks of one service.
#[derive(Clone, Debug)]
pub struct ServiceVerification {
    pub service: String,
    pub environment: Option<String>,
    pub indicators: Vec<crate::verify::judge::IndicatorSpec>,
    pub rollback: crate::verify::rollback::Policy,
    pub exec_hooks: Vec<crate::verify::hooks::ExecHook>,
    pub webhook_hooks: Vec<crate::notify::config::WebhookConfig>,
}

/// Verification settings.
#[derive(Clone, Debug)]
pub struct VerificationConfig {
    pub analysis_window: Duration,
    pub baseline_window: Duration,
    pub interval: Duration,
    pub step: Duration,
    pub incident_window: Duration,
    pub settings: crate::verify::judge::Settings,
    pub services: Vec<ServiceVerification>,
}

impl VerificationConfig {
    /// The entry for a deployment's service and environment: an entry naming the environment
    /// wins over one for every environment.
    pub fn for_service(&self, service: &str, environment: &str) -> Option<&ServiceVerification> {
        self.services
            .iter()
            .filter(|s| s.service == service)
            .find(|s| s.environment.as_deref() == Some(environment))
            .or_else(|| {
                self.services
                    .iter()
                    .find(|s| s.service == service && s.environment.is_none())
            })
    }
}

/// Rule evaluation settings.
#[derive(Clone, Debug)]
pub struct RulesConfig {
    pub paths: Vec<PathBuf>,
    /// Whether `paths` are the default, so a missing directory is not an error.
    pub default_paths: bool,
    pub evaluation_interval: Duration,
    pub debounce: Duration,
    pub external_labels: std::collections::BTreeMap<String, String>,
    pub external_url: String,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub retention: Duration,
    pub otlp_grpc_listen: SocketAddr,
    pub otlp_http_listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub max_request_bytes: usize,
    pub max_concurrent_requests: usize,
    pub api_max_concurrent_requests: usize,
    pub ingest_limits: crate::receiver::limits::IngestLimits,
    pub series_limits: crate::store::SeriesLimits,
    pub query: QueryLimits,
    pub head_flush_interval: Duration,
    pub write_queue: usize,
    /// `store.max_size` in bytes; `None` when unbounded.
    pub store_max_size: Option<u64>,
    pub log_format: Option<LogFormat>,
    pub otlp_traces_endpoint: Option<String>,
    pub rules: RulesConfig,
    pub notify: NotifyConfig,
    pub detect: DetectConfig,
    pub incidents: IncidentsConfig,
    pub verification: VerificationConfig,
    pub forward: crate::forward::config::ForwardConfig,
    pub security: SecurityConfig,
}

/// One of the collector's three listeners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenerName {
    OtlpGrpc,
    OtlpHttp,
    Http,
}

impl ListenerName {
    pub const ALL: [ListenerName; 3] = [
        ListenerName::OtlpGrpc,
        ListenerName::OtlpHttp,
        ListenerName::Http,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ListenerName::OtlpGrpc => "otlp_grpc",
            ListenerName::OtlpHttp => "otlp_http",
            ListenerName::Http => "http",
        }
    }
}

/// TLS settings as validated.
#[derive(Clone, Debug, PartialEq)]
pub struct TlsConfig {
    pub files: crate::listen::TlsFiles,
    pub listeners: Vec<ListenerName>,
    pub client_auth_listeners: Vec<ListenerName>,
}

/// Tokens and TLS.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SecurityConfig {
    pub tokens: crate::listen::TokenFiles,
    pub tls: Option<TlsConfig>,
}

impl SecurityConfig {
    /// Reads every token, certificate and key file the way the running collector would, so
    /// `validate` fails on what would fail at start.
    pub fn check_files(&self) -> Result<(), String> {
        crate::listen::Tokens::load(&self.tokens).map_err(|e| e.to_string())?;
        if let Some(tls) = &self.tls {
            for name in &tls.listeners {
                let require = tls.client_auth_listeners.contains(name);
                crate::listen::ServerTls::load(&tls.files, require, &[])
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}

fn listener_names(
    path: &Path,
    key: &str,
    names: Option<&Vec<String>>,
    default: &[ListenerName],
) -> Result<Vec<ListenerName>, ConfigError> {
    let Some(names) = names else {
        return Ok(default.to_vec());
    };
    names
        .iter()
        .map(|n| {
            ListenerName::ALL
                .into_iter()
                .find(|l| l.as_str() == n)
                .ok_or_else(|| ConfigError::Invalid {
                    path: path.to_owned(),
                    key: key.to_owned(),
                    problem: format!("{n:?} is not one of otlp_grpc, otlp_http, http"),
                })
        })
        .collect()
}

fn security(
    raw_auth: RawAuth,
    raw_tls: Option<RawTls>,
    path: &Path,
) -> Result<SecurityConfig, ConfigError> {
    let tokens = crate::listen::TokenFiles {
        ingest: raw_auth.ingest_token_file,
        read: raw_auth.read_token_file,
        write: raw_auth.write_token_file,
    };
    let tls = match raw_tls {
        None => None,
        Some(t) => {
            let missing = |key: &str| ConfigError::Invalid {
                path: path.to_owned(),
                key: format!("tls.{key}"),
                problem: "required when tls is set".into(),
            };
            let cert_file = t.cert_file.ok_or_else(|| missing("cert_file"))?;
            let key_file = t.key_file.ok_or_else(|| missing("key_file"))?;
            let listeners = listener_names(
                path,
                "tls.listeners",
                t.listeners.as_ref(),
                &ListenerName::ALL,
            )?;
            let client_auth_listeners = listener_names(
                path,
                "tls.client_auth_listeners",
                t.client_auth_listeners.as_ref(),
                &[ListenerName::OtlpGrpc, ListenerName::OtlpHttp],
            )?;
            if t.client_ca_file.is_some()
                && let Some(l) = client_auth_listeners
                    .iter()
                    .find(|l| !listeners.contains(l))
            {
                return Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    key: "tls.client_auth_listeners".into(),
                    problem: format!(
                        "{} is not in tls.listeners, so it has no TLS to ask a client certificate in",
                        l.as_str()
                    ),
                });
            }
            let client_auth_listeners = if t.client_ca_file.is_some() {
                client_auth_listeners
            } else {
                Vec::new()
            };
            Some(TlsConfig {
                files: crate::listen::TlsFiles {
                    cert_file,
                    key_file,
                    client_ca_file: t.client_ca_file,
                },
                listeners,
                client_auth_listeners,
            })
        }
    };
    Ok(SecurityConfig { tokens, tls })
}

impl Default for Config {
    fn default() -> Self {
        // The raw defaults always validate; the fallback only guards against a typo here.
        Config::from_raw(RawConfig::default(), Path::new("<defaults>")).unwrap_or_else(|e| {
            panic!("built-in defaults are invalid: {e}");
        })
    }
}

fn parse_duration(path: &Path, key: &str, text: &str) -> Result<Duration, ConfigError> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| ConfigError::Invalid {
        path: path.to_owned(),
        key: key.to_owned(),
        problem: format!("{text:?} is not a duration ({e}); write e.g. 30s, 5m, 15d"),
    })?;
    if d.is_zero() {
        return Err(ConfigError::Invalid {
            path: path.to_owned(),
            key: key.to_owned(),
            problem: "must be greater than zero".to_owned(),
        });
    }
    Ok(d)
}

/// Reads a size (`RawSize`) of at least `min` bytes. Units are binary (KiB, MiB, GiB, TiB) or
/// decimal (KB, MB, GB, TB), case-insensitive; a bare number is bytes.
fn parse_size(path: &Path, key: &str, size: &RawSize, min: u64) -> Result<u64, ConfigError> {
    let invalid = |problem: String| ConfigError::Invalid {
        path: path.to_owned(),
        key: key.to_owned(),
        problem,
    };
    let bytes = match size {
        RawSize::Bytes(n) => *n,
        RawSize::Text(text) => {
            let t = text.trim();
            let split = t
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(t.len());
            let (number, unit) = (t[..split].trim(), t[split..].trim());
            let factor: u64 = match unit.to_ascii_lowercase().as_str() {
                "" | "b" => 1,
                "kib" => 1 << 10,
                "mib" => 1 << 20,
                "gib" => 1 << 30,
                "tib" => 1 << 40,
                "kb" => 1_000,
                "mb" => 1_000_000,
                "gb" => 1_000_000_000,
                "tb" => 1_000_000_000_000,
                _ => {
                    return Err(invalid(format!(
                        "{text:?} has an unknown unit {unit:?}; write e.g. 512MiB, 10GiB"
                    )));
                }
            };
            let number: f64 = number.parse().map_err(|_| {
                invalid(format!("{text:?} is not a size; write e.g. 512MiB, 10GiB"))
            })?;
            let bytes = number * factor as f64;
            if !bytes.is_finite() || bytes >= u64::MAX as f64 {
                return Err(invalid(format!("{text:?} is too large")));
            }
            bytes as u64
        }
    };
    if bytes < min {
        return Err(invalid(format!(
            "{bytes} bytes is below the minimum of {min} bytes"
        )));
    }
    Ok(bytes)
}

fn parse_addr(path: &Path, key: &str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.trim().parse().map_err(|e| ConfigError::Invalid {
        path: path.to_owned(),
        key: key.to_owned(),
        problem: format!("{text:?} is not an address like 127.0.0.1:9190 ({e})"),
    })
}

fn verification(path: &Path, raw: RawVerification) -> Result<VerificationConfig, ConfigError> {
    let invalid = |key: String, problem: String| ConfigError::Invalid {
        path: path.to_owned(),
        key,
        problem,
    };
    let dur = |key: &str, v: &Option<String>, default: &str| {
        parse_duration(path, key, v.as_deref().unwrap_or(default))
    };
    let confidence = raw.confidence.unwrap_or(0.98);
    if !(confidence > 0.5 && confidence < 1.0) {
        return Err(invalid(
            "verification.confidence".into(),
            format!("{confidence} is not between 0.5 and 1 (exclusive)"),
        ));
    }
    let effect_floor = raw.effect_floor.unwrap_or(0.1);
    if !(effect_floor.is_finite() && effect_floor >= 0.0) {
        return Err(invalid(
            "verification.effect_floor".into(),
            format!("{effect_floor} must be 0 or more"),
        ));
    }
    let settings = crate::verify::judge::Settings {
        confidence,
        effect_floor,
        min_samples: positive(
            path,
            "verification.min_samples",
            raw.min_samples.unwrap_or(5),
        )?,
        outlier_k: 1.5,
        failure_limit: positive(
            path,
            "verification.failure_limit",
            raw.failure_limit.unwrap_or(3) as usize,
        )? as u32,
    };
    let mut services = Vec::new();
    for (i, s) in raw.services.into_iter().enumerate() {
        let at = format!("verification.services[{i}]");
        if s.service.trim().is_empty() {
            return Err(invalid(format!("{at}.service"), "must not be empty".into()));
        }
        let mut indicators = Vec::new();
        for (j, ind) in s.indicators.into_iter().enumerate() {
            if let Err(e) = crate::query::parse(&ind.query) {
                return Err(invalid(
                    format!("{at}.indicators[{j}].query"),
                    e.to_string(),
                ));
            }
            indicators.push(crate::verify::judge::IndicatorSpec {
                name: ind.name,
                query: ind.query,
                direction: ind.direction,
                limit: ind.limit,
            });
        }
        let rb = s.rollback.unwrap_or(RawRollback {
            mode: crate::verify::rollback::Mode::Off,
            environments: Vec::new(),
            cooldown: None,
            max_rollbacks: None,
            per: None,
            approval_timeout: None,
            hooks: Vec::new(),
        });
        let mode = rb.mode;
        if mode != crate::verify::rollback::Mode::Off && rb.environments.is_empty() {
            return Err(invalid(
                format!("{at}.rollback.environments"),
                "list the environments where rollbacks are allowed".into(),
            ));
        }
        let ms = |d: Duration| d.as_millis() as i64;
        let policy = crate::verify::rollback::Policy {
            mode,
            environments: rb.environments,
            cooldown_ms: ms(dur(
                &format!("{at}.rollback.cooldown"),
                &rb.cooldown,
                "30m",
            )?),
            max_rollbacks: rb.max_rollbacks.unwrap_or(3),
            per_ms: ms(dur(&format!("{at}.rollback.per"), &rb.per, "24h")?),
            approval_timeout_ms: ms(dur(
                &format!("{at}.rollback.approval_timeout"),
                &rb.approval_timeout,
                "30m",
            )?),
        };
        let mut exec_hooks = Vec::new();
        let mut webhook_hooks = Vec::new();
        for (k, h) in rb.hooks.into_iter().enumerate() {
            let key = format!("{at}.rollback.hooks[{k}]");
            match (h.exec, h.webhook) {
                (Some(argv), None) => {
                    if argv.is_empty() || argv[0].is_empty() {
                        return Err(invalid(format!("{key}.exec"), "needs a program".into()));
                    }
                    if !Path::new(&argv[0]).is_absolute() {
                        return Err(invalid(
                            format!("{key}.exec"),
                            format!(
                                "{:?} must be an absolute path (hooks get no PATH lookup you control)",
                                argv[0]
                            ),
                        ));
                    }
                    exec_hooks.push(crate::verify::hooks::ExecHook {
                        argv,
                        timeout: dur(&format!("{key}.timeout"), &h.timeout, "5m")?,
                    });
                }
                (None, Some(url)) => {
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err(invalid(
                            format!("{key}.webhook"),
                            format!("{url:?} is not an http(s) URL"),
                        ));
                    }
                    let hmac_secret = match &h.hmac_secret_file {
                        Some(file) => Some(
                            std::fs::read_to_string(file)
                                .map_err(|e| {
                                    invalid(
                                        format!("{key}.hmac_secret_file"),
                                        format!("cannot read {}: {e}", file.display()),
                                    )
                                })?
                                .trim()
                                .to_owned(),
                        ),
                        None => None,
                    };
                    webhook_hooks.push(crate::notify::config::WebhookConfig {
                        send_resolved: false,
                        url,
                        http: crate::notify::config::HttpClientConfig::default(),
                        max_alerts: 0,
                        timeout: dur(&format!("{key}.timeout"), &h.timeout, "10s")?,
                        headers: Default::default(),
                        hmac_secret,
                    });
                }
                _ => {
                    return Err(invalid(
                        key,
                        "a hook has exactly one of `exec` (an argv) and `webhook` (a URL)".into(),
                    ));
                }
            }
        }
        services.push(ServiceVerification {
            service: s.service,
            environment: s.environment,
            indicators,
            rollback: policy,
            exec_hooks,
            webhook_hooks,
        });
    }
    Ok(VerificationConfig {
        analysis_window: dur("verification.analysis_window", &raw.analysis_window, "10m")?,
        baseline_window: dur("verification.baseline_window", &raw.baseline_window, "30m")?,
        interval: dur("verification.interval", &raw.interval, "1m")?,
        step: dur("verification.step", &raw.step, "15s")?,
        incident_window: dur("verification.incident_window", &raw.incident_window, "2h")?,
        settings,
        services,
    })
}

fn positive(path: &Path, key: &str, v: usize) -> Result<usize, ConfigError> {
    if v == 0 {
        return Err(ConfigError::Invalid {
            path: path.to_owned(),
            key: key.to_owned(),
            problem: "must be greater than zero".to_owned(),
        });
    }
    Ok(v)
}

impl Config {
    /// Parses YAML text; `path` only names the source in errors.
    pub fn from_yaml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig::default()
        } else {
            yaml_serde::from_str(text).map_err(|e| ConfigError::Parse {
                path: path.to_owned(),
                message: e.to_string(),
            })?
        };
        Config::from_raw(raw, path)
    }

    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_yaml(&text, path)
    }

    pub fn from_raw(raw: RawConfig, path: &Path) -> Result<Config, ConfigError> {
        let log_format = match raw.telemetry.log_format.as_deref() {
            None => None,
            Some("text") => Some(LogFormat::Text),
            Some("json") => Some(LogFormat::Json),
            Some(other) => {
                return Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    key: "telemetry.log_format".into(),
                    problem: format!("{other:?} is not one of text, json"),
                });
            }
        };
        if let Some(endpoint) = &raw.telemetry.otlp_traces_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                key: "telemetry.otlp_traces_endpoint".into(),
                problem: format!("{endpoint:?} must be an http:// or https:// URL"),
            });
        }
        let http_listen = parse_addr(
            path,
            "listen.http",
            raw.listen.http.as_deref().unwrap_or("0.0.0.0:9190"),
        )?;
        for name in raw.rules.external_labels.iter().flatten().map(|(k, _)| k) {
            let valid = name
                .chars()
                .enumerate()
                .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
            if !valid || name.is_empty() {
                return Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    key: format!("rules.external_labels.{name}"),
                    problem: "is not a valid label name".into(),
                });
            }
        }
        let rules = RulesConfig {
            default_paths: raw.rules.paths.is_none(),
            paths: raw
                .rules
                .paths
                .unwrap_or_else(|| vec![PathBuf::from("./rules")]),
            evaluation_interval: parse_duration(
                path,
                "rules.evaluation_interval",
                raw.rules.evaluation_interval.as_deref().unwrap_or("1m"),
            )?,
            debounce: parse_duration(
                path,
                "rules.evaluate_on_write_debounce",
                raw.rules
                    .evaluate_on_write_debounce
                    .as_deref()
                    .unwrap_or("20ms"),
            )?,
            external_labels: raw.rules.external_labels.unwrap_or_default(),
            external_url: match raw.rules.external_url {
                Some(url) if url.starts_with("http://") || url.starts_with("https://") => url,
                Some(url) => {
                    return Err(ConfigError::Invalid {
                        path: path.to_owned(),
                        key: "rules.external_url".into(),
                        problem: format!("{url:?} must be an http:// or https:// URL"),
                    });
                }
                None => format!("http://{}:{}", hostname(), http_listen.port()),
            },
        };
        let notify = NotifyConfig {
            config_file: raw.notify.config_file,
            initial_backoff: parse_duration(
                path,
                "notify.initial_backoff",
                raw.notify.initial_backoff.as_deref().unwrap_or("1s"),
            )?,
            max_backoff: parse_duration(
                path,
                "notify.max_backoff",
                raw.notify.max_backoff.as_deref().unwrap_or("1m"),
            )?,
            give_up_after: parse_duration(
                path,
                "notify.give_up_after",
                raw.notify.give_up_after.as_deref().unwrap_or("1h"),
            )?,
            retention: parse_duration(
                path,
                "notify.retention",
                raw.notify.retention.as_deref().unwrap_or("5d"),
            )?,
        };
        let series = raw
            .detect
            .series
            .unwrap_or_else(crate::derive::default_selectors);
        if let Err(e) = crate::derive::Selectors::parse(&series) {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                key: "detect.series".into(),
                problem: e,
            });
        }
        let threshold = raw.detect.threshold.unwrap_or(0.75);
        if !(0.0..=1.0).contains(&threshold) {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                key: "detect.threshold".into(),
                problem: format!("{threshold} is not between 0 and 1"),
            });
        }
        let detect = DetectConfig {
            enabled: raw.detect.enabled.unwrap_or(true),
            series,
            threshold,
            interval: parse_duration(
                path,
                "detect.interval",
                raw.detect.interval.as_deref().unwrap_or("15s"),
            )?,
            flush_interval: Duration::from_secs(1),
            rate_window: parse_duration(
                path,
                "detect.rate_window",
                raw.detect.rate_window.as_deref().unwrap_or("5m"),
            )?,
            warmup: parse_duration(
                path,
                "detect.warmup",
                raw.detect.warmup.as_deref().unwrap_or("6h"),
            )?,
            max_series: positive(
                path,
                "detect.max_series",
                raw.detect.max_series.unwrap_or(100_000),
            )?,
            max_span_keys: 10_000,
        };
        if let Some(names) = &raw.incidents.group_by {
            for name in names {
                let valid = !name.is_empty()
                    && name.chars().enumerate().all(|(i, c)| {
                        c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())
                    });
                if !valid {
                    return Err(ConfigError::Invalid {
                        path: path.to_owned(),
                        key: "incidents.group_by".into(),
                        problem: format!("{name:?} is not a valid label name"),
                    });
                }
            }
        }
        let incidents = IncidentsConfig {
            resolve_after: parse_duration(
                path,
                "incidents.resolve_after",
                raw.incidents.resolve_after.as_deref().unwrap_or("5m"),
            )?,
            suspect_window: parse_duration(
                path,
                "incidents.suspect_window",
                raw.incidents.suspect_window.as_deref().unwrap_or("2h"),
            )?,
            group_by: raw.incidents.group_by,
            github_secret_file: raw.incidents.github_secret_file,
        };
        let verification = verification(path, raw.verification)?;
        let forward = crate::forward::config::validate(raw.forward, path)?;
        let security = security(raw.auth, raw.tls, path)?;
        let retention =
            parse_duration(path, "retention", raw.retention.as_deref().unwrap_or("15d"))?;
        let l = &raw.limits;
        let defaults = crate::receiver::limits::IngestLimits::default();
        let ingest_limits = crate::receiver::limits::IngestLimits {
            max_series_per_request: positive(
                path,
                "limits.max_series_per_request",
                l.max_series_per_request
                    .unwrap_or(defaults.max_series_per_request),
            )?,
            max_labels_per_series: positive(
                path,
                "limits.max_labels_per_series",
                l.max_labels_per_series
                    .unwrap_or(defaults.max_labels_per_series),
            )?,
            max_label_name_length: positive(
                path,
                "limits.max_label_name_length",
                l.max_label_name_length
                    .unwrap_or(defaults.max_label_name_length),
            )?,
            max_label_value_length: positive(
                path,
                "limits.max_label_value_length",
                l.max_label_value_length
                    .unwrap_or(defaults.max_label_value_length),
            )?,
            max_future: parse_duration(
                path,
                "limits.max_future",
                l.max_future.as_deref().unwrap_or("10m"),
            )?,
            max_past: retention,
        };
        let series_defaults = crate::store::SeriesLimits::default();
        let series_limits = crate::store::SeriesLimits {
            max_series: positive(
                path,
                "limits.max_series",
                l.max_series.unwrap_or(series_defaults.max_series),
            )?,
            max_series_per_host: positive(
                path,
                "limits.max_series_per_host",
                l.max_series_per_host
                    .unwrap_or(series_defaults.max_series_per_host),
            )?,
        };
        let api_max_concurrent_requests = positive(
            path,
            "limits.api_max_concurrent_requests",
            l.api_max_concurrent_requests.unwrap_or(64),
        )?;
        let max_concurrent_requests = positive(
            path,
            "limits.max_concurrent_requests",
            l.max_concurrent_requests.unwrap_or(64),
        )?;
        Ok(Config {
            security,
            rules,
            notify,
            detect,
            incidents,
            verification,
            forward,
            data_dir: raw.data_dir.unwrap_or_else(|| PathBuf::from("./data")),
            retention,
            ingest_limits,
            series_limits,
            max_concurrent_requests,
            api_max_concurrent_requests,
            otlp_grpc_listen: parse_addr(
                path,
                "listen.otlp_grpc",
                raw.listen.otlp_grpc.as_deref().unwrap_or("0.0.0.0:14317"),
            )?,
            otlp_http_listen: parse_addr(
                path,
                "listen.otlp_http",
                raw.listen.otlp_http.as_deref().unwrap_or("0.0.0.0:14318"),
            )?,
            http_listen,
            max_request_bytes: positive(
                path,
                "limits.max_request_bytes",
                raw.limits.max_request_bytes.unwrap_or(4 << 20),
            )?,
            query: QueryLimits {
                max_series: positive(
                    path,
                    "limits.query_max_series",
                    raw.limits.query_max_series.unwrap_or(10_000),
                )?,
                max_samples: positive(
                    path,
                    "limits.query_max_samples",
                    raw.limits.query_max_samples.unwrap_or(50_000_000),
                )?,
                timeout: parse_duration(
                    path,
                    "limits.query_timeout",
                    raw.limits.query_timeout.as_deref().unwrap_or("2m"),
                )?,
            },
            head_flush_interval: parse_duration(
                path,
                "store.head_flush_interval",
                raw.store.head_flush_interval.as_deref().unwrap_or("30m"),
            )?,
            write_queue: positive(
                path,
                "store.write_queue",
                raw.store.write_queue.unwrap_or(256),
            )?,
            store_max_size: raw
                .store
                .max_size
                .as_ref()
                .map(|size| parse_size(path, "store.max_size", size, 1 << 20))
                .transpose()?,
            log_format,
            otlp_traces_endpoint: raw.telemetry.otlp_traces_endpoint,
        })
    }

    /// Applies the store-related settings.
    pub fn store_options(&self) -> crate::store::StoreOptions {
        let mut options = crate::store::StoreOptions::new(&self.data_dir);
        options.retention = self.retention;
        options.head_flush_interval = self.head_flush_interval;
        options.write_queue = self.write_queue;
        options.max_size = self.store_max_size;
        options.series_limits = self.series_limits;
        options.forward = crate::forward::queues(&self.forward, &self.rules.external_labels);
        options
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::from_yaml("", Path::new("c.yaml")).unwrap();
        assert_eq!(c.retention, Duration::from_secs(15 * 86400));
        assert_eq!(c.http_listen.port(), 9190);
        assert_eq!(c.otlp_grpc_listen.port(), 14317);
    }

    #[test]
    fn store_max_size_takes_units_and_refuses_nonsense() {
        let size = |yaml: &str| Config::from_yaml(yaml, Path::new("c.yaml"));
        assert_eq!(Config::default().store_max_size, None);
        assert_eq!(
            size("store: {max_size: 10GiB}").unwrap().store_max_size,
            Some(10 << 30)
        );
        assert_eq!(
            size("store: {max_size: 1.5 GB}").unwrap().store_max_size,
            Some(1_500_000_000)
        );
        assert_eq!(
            size("store: {max_size: 2097152}").unwrap().store_max_size,
            Some(2 << 20)
        );
        assert_eq!(
            size("store: {max_size: 2MiB}")
                .unwrap()
                .store_options()
                .max_size,
            Some(2 << 20)
        );
        for (yaml, problem) in [
            ("store: {max_size: 10 parsecs}", "unknown unit"),
            ("store: {max_size: GiB}", "not a size"),
            ("store: {max_size: 4KiB}", "below the minimum"),
        ] {
            let e = size(yaml).unwrap_err().to_string();
            assert!(
                e.contains("store.max_size") && e.contains(problem),
                "{yaml}: {e}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let e = Config::from_yaml("retention: 1d\nlisten:\n  grpc: 1\n", Path::new("c.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("c.yaml"), "{e}");
        assert!(e.contains("unknown field `grpc`"), "{e}");
        assert!(e.contains("line 3"), "{e}");
    }

    #[test]
    fn bad_values_name_the_key() {
        for (yaml, key) in [
            ("retention: soon", "retention"),
            ("retention: 0s", "retention"),
            ("listen: {http: nowhere}", "listen.http"),
            ("limits: {query_max_series: 0}", "limits.query_max_series"),
            ("telemetry: {log_format: xml}", "telemetry.log_format"),
            ("incidents: {group_by: [\"a-b\"]}", "incidents.group_by"),
            ("verification: {confidence: 1.5}", "verification.confidence"),
            (
                "verification: {services: [{service: a, indicators: [{name: e, query: 'rate(', direction: higher_is_worse}]}]}",
                "verification.services[0].indicators[0].query",
            ),
            (
                "verification: {services: [{service: a, rollback: {mode: auto}}]}",
                "verification.services[0].rollback.environments",
            ),
            (
                "verification: {services: [{service: a, rollback: {mode: auto, environments: [prod], hooks: [{exec: [rollback.sh]}]}}]}",
                "verification.services[0].rollback.hooks[0].exec",
            ),
            (
                "verification: {services: [{service: a, rollback: {mode: auto, environments: [prod], hooks: [{exec: [/bin/true], webhook: 'http://x'}]}}]}",
                "verification.services[0].rollback.hooks[0]",
            ),
        ] {
            let e = Config::from_yaml(yaml, Path::new("c.yaml"))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(&format!("c.yaml: {key}: ")), "{yaml} -> {e}");
        }
    }
}
