//! The Alertmanager configuration file (`alertmanager.yml` of Alertmanager 0.25), loaded into
//! Redline's routing tree, receivers, inhibit rules and time intervals, with every problem
//! reported as `file:line:column: field: message`.
//!
//! What is read: `global` (`resolve_timeout` default 5m, `http_config`, `smtp_from`,
//! `smtp_hello` default `localhost`, `smtp_smarthost`, `smtp_auth_username`,
//! `smtp_auth_password`, `smtp_auth_password_file`, `smtp_require_tls` default true; the
//! settings of integrations Redline does not implement, such as `slack_api_url`, are accepted
//! and unused), `route` (see `route`), `receivers` with `email_configs` and `webhook_configs`
//! (filled into `notify::config`, global settings merged in, every `*_file` read),
//! `inhibit_rules` (`source_matchers`, `target_matchers`, `equal` and the legacy
//! `source_match`, `source_match_re`, `target_match`, `target_match_re`), `time_intervals`
//! and the legacy `mute_time_intervals`, and `templates` (the globs are recorded, resolved
//! against the file's directory; like Alertmanager, a glob that matches nothing is no error).
//! Redline extensions: on `webhook_configs`, `headers` (a map), `hmac_secret` or
//! `hmac_secret_file`, `timeout` (default 10s) and `url_file` (as in Alertmanager 0.26); on
//! `email_configs`, `timeout` (default 30s).
//!
//! Validation is Alertmanager's (`config/config.go`, `config/notifiers.go`, the `timeinterval`
//! package and `prometheus/common`'s HTTP client settings), with its messages: strict keys
//! (an unknown key is an error, as with Go's `yaml.UnmarshalStrict`); the root route has a
//! receiver and no matchers, time intervals or `continue`; every receiver and time interval a
//! route names exists; receiver and time-interval names are unique; `group_by` holds valid
//! label names, without duplicates, and `...` only alone; `group_interval` and
//! `repeat_interval` are not zero; durations are in Prometheus' syntax; matchers and regular
//! expressions parse; email configs have `to`, and a `from` and `smarthost` of their own or
//! from `global`; webhook URLs are `http` or `https` with a host.
//!
//! Refused, each with an error naming the place: receiver integrations Redline does not
//! implement (`slack_configs is not supported by Redline; use a webhook`, and likewise for
//! PagerDuty, Opsgenie, …), `oauth2` and `proxy_connect_header` in `http_config`, and SMTP
//! `auth_secret` (CRAM-MD5) or an `auth_identity` other than the user name. Where Alertmanager
//! only fails when it sends (an unreadable password file, a client certificate without its
//! key, an SMTP port that is neither a number nor `smtp`, `submission` or `smtps`), Redline
//! fails at load, since it reads every file then. Accepted and unused: `enable_http2` (the
//! client negotiates HTTP/2 itself). The YAML is read as Go's `yaml.v2` reads it where that
//! matters (YAML 1.1 booleans such as `yes`/`off`, any scalar as a string, duplicate keys are
//! errors, anchors and merge keys), by `yaml-rust2`; the two parsers may still disagree on
//! exotic syntax (libyaml refuses `[a!="", b]`, a flow sequence with quotes inside a plain
//! scalar, which is accepted here).
//!
//! The configuration is all or nothing, as in Alertmanager: with any error, [`load`] returns
//! every error found and no configuration, and the caller keeps the one in force. Called at
//! start and on reload by the alert dispatcher, and by `redline-collector config check`
//! ([`check_files`]). Reading the file and its `*_file` secrets is the only I/O; [`parse`]
//! takes the secrets reader as a parameter so tests need no files.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use marked_yaml::Node;
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};

use super::inhibit::{InhibitRule, Inhibitor};
use super::matcher::{Matcher, MatcherError, parse_matchers};
use super::route::{GroupBy, RouteNode, RouteSpec, RouteTree};
use super::timeinterval::{self, TimeInterval};
use crate::notify::config::{
    EmailConfig, HttpClientConfig, Receiver, SmtpSecurity, TlsConfig, TlsVersion, WebhookConfig,
};
use crate::rules::file::{is_valid_label_name, parse_duration};
use crate::rules::yaml::{
    self, GoYaml, Pos, is_null, node_is_null, node_pos, scalar_pos, yaml11_bool,
};

/// Alertmanager's default `resolve_timeout`.
pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Redline's default timeout of one webhook delivery attempt.
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// Redline's default timeout of one email delivery attempt.
pub const DEFAULT_EMAIL_TIMEOUT: Duration = Duration::from_secs(30);

/// A loaded, valid configuration.
#[derive(Clone, Debug)]
pub struct AmConfig {
    pub file: PathBuf,
    pub global: GlobalConfig,
    pub route: RouteTree,
    pub receivers: Vec<Receiver>,
    pub inhibit_rules: Vec<InhibitRule>,
    /// `time_intervals` and `mute_time_intervals` together, by name.
    pub time_intervals: BTreeMap<String, Vec<TimeInterval>>,
    /// The `templates` globs, relative ones joined to the file's directory.
    pub templates: Vec<PathBuf>,
}

/// What remains of `global` once its defaults are merged into the receivers.
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalConfig {
    /// How long an alert received without `endsAt` stays firing unless refreshed.
    pub resolve_timeout: Duration,
}

impl AmConfig {
    /// The receiver with this name.
    pub fn receiver(&self, name: &str) -> Option<&Receiver> {
        self.receivers.iter().find(|r| r.name == name)
    }

    /// The inhibit rules, ready to ask.
    pub fn inhibitor(&self) -> Inhibitor {
        Inhibitor::new(self.inhibit_rules.clone())
    }

    /// Whether a route sends nothing at `now_ms`: one of its `mute_time_intervals` contains
    /// the instant, or it has `active_time_intervals` and none contains it (Alertmanager's
    /// `TimeMuteStage` and `TimeActiveStage`).
    pub fn route_muted(&self, route: &RouteNode, now_ms: i64) -> bool {
        let contains = |name: &String| {
            self.time_intervals
                .get(name)
                .is_some_and(|tis| timeinterval::any_contains(tis, now_ms))
        };
        if route.opts.mute_time_intervals.iter().any(contains) {
            return true;
        }
        !route.opts.active_time_intervals.is_empty()
            && !route.opts.active_time_intervals.iter().any(contains)
    }
}

/// A problem in a configuration file at a 1-based line and column (0 when it concerns the
/// whole file), with the dotted path of the field (`route.routes[0].receiver`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one file, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads a `*_file` secret or certificate (a path already joined to the file's directory).
pub type FileReader<'a> = &'a dyn Fn(&Path) -> io::Result<Vec<u8>>;

/// Reads and parses a configuration file, its `*_file` secrets from the file system.
pub fn load(path: &Path) -> Result<AmConfig, ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path, &text, &|p: &Path| std::fs::read(p)),
        Err(e) => Err(ConfigErrors {
            errors: vec![ConfigError {
                file: path.to_path_buf(),
                line: 0,
                column: 0,
                field: String::new(),
                message: format!("cannot read the file: {e}"),
            }],
        }),
    }
}

/// Parses the text of the configuration file `path` (used in messages, and as the base of
/// relative paths); `read` reads the `*_file` secrets and certificates.
pub fn parse(path: &Path, text: &str, read: FileReader<'_>) -> Result<AmConfig, ConfigErrors> {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut cx = Cx {
        file: path,
        dir,
        read,
        errors: Vec::new(),
    };
    let config = cx.config(text);
    let mut errors = cx.errors;
    if errors.is_empty()
        && let Some(config) = config
    {
        return Ok(config);
    }
    errors.sort_by_key(|e| (e.line, e.column));
    errors.dedup();
    Err(ConfigErrors { errors })
}

/// The outcome of `config check`: the text to print and whether every file was valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    pub text: String,
    pub ok: bool,
}

/// `redline-collector config check FILE…`, shaped like `amtool check-config`: per file
/// `Checking 'FILE'  SUCCESS` and what was found, or `  FAILED:` with each problem as
/// `file:line:column: field: message`.
pub fn check_files(paths: &[PathBuf]) -> CheckReport {
    let mut text = String::new();
    let mut failed = 0;
    for path in paths {
        text.push_str(&format!("Checking '{}'", path.display()));
        match load(path) {
            Ok(c) => {
                text.push_str("  SUCCESS\nFound:\n - global config\n - route\n");
                text.push_str(&format!(" - {} inhibit rules\n", c.inhibit_rules.len()));
                text.push_str(&format!(" - {} receivers\n", c.receivers.len()));
                text.push_str(&format!(" - {} templates\n", c.templates.len()));
                for t in &c.templates {
                    text.push_str(&format!("   - {}\n", t.display()));
                }
            }
            Err(e) => {
                failed += 1;
                let n = e.errors.len();
                let plural = if n == 1 { "" } else { "s" };
                text.push_str(&format!("  FAILED: {n} error{plural}\n"));
                for err in &e.errors {
                    text.push_str(&format!("  {err}\n"));
                }
            }
        }
        text.push('\n');
    }
    if failed > 0 {
        text.push_str(&format!("failed to validate {failed} file(s)\n"));
    }
    CheckReport {
        text,
        ok: failed == 0,
    }
}

// ---------------------------------------------------------------------------------------------
// The walk over the document, built by `rules::yaml` as Go's `yaml.v2` reads it.

/// The message `yaml.v2` gives when a node has the wrong type.
fn cannot_unmarshal(node: &Node, into: &str) -> String {
    GoYaml::V2.cannot_unmarshal(node, into)
}

/// The loading context of one file.
struct Cx<'a> {
    file: &'a Path,
    /// The file's directory: relative `*_file` paths and templates are joined to it.
    dir: PathBuf,
    read: FileReader<'a>,
    errors: Vec<ConfigError>,
}

/// A scalar value with where it is.
#[derive(Clone, Debug)]
struct Str {
    value: String,
    pos: Pos,
}

/// A reference from a route to a receiver or a time interval, checked once all are known.
struct Reference {
    name: String,
    pos: Pos,
    field: String,
}

/// `authorization`'s `type`, `credentials`, `credentials_file`, and where it is.
type AuthorizationKeys = (Option<Str>, Option<Str>, Option<Str>, Pos);

/// `global` as written, before it is merged into receivers.
#[derive(Default)]
struct RawGlobal {
    resolve_timeout: Option<Duration>,
    http_config: Option<HttpClientConfig>,
    smtp_from: Option<Str>,
    smtp_hello: Option<Str>,
    smtp_smarthost: Option<(Str, String, u16)>,
    /// Whether `smtp_smarthost` was set (even if it did not parse).
    smtp_smarthost_given: bool,
    smtp_auth_username: Option<Str>,
    smtp_auth_password: Option<Str>,
    smtp_auth_password_file: Option<Str>,
    smtp_auth_identity: Option<Str>,
    smtp_require_tls: Option<bool>,
}

/// The dotted path of `key` under `parent` (`route.routes[0]` + `receiver`).
fn field_of(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// Receiver keys of integrations Redline does not implement, and what they are.
const UNSUPPORTED_INTEGRATIONS: &[&str] = &[
    "discord_configs",
    "pagerduty_configs",
    "slack_configs",
    "opsgenie_configs",
    "wechat_configs",
    "pushover_configs",
    "victorops_configs",
    "sns_configs",
    "telegram_configs",
    "webex_configs",
    // Added after Alertmanager 0.25; named here so the message is as clear.
    "msteams_configs",
    "msteamsv2_configs",
    "jira_configs",
    "rocketchat_configs",
    "incidentio_configs",
    "mattermost_configs",
];

/// `global` keys of integrations Redline does not implement: accepted (so that a file written
/// for Alertmanager loads), type-checked, and unused.
const IGNORED_GLOBALS: &[&str] = &[
    "slack_api_url",
    "slack_api_url_file",
    "pagerduty_url",
    "opsgenie_api_url",
    "opsgenie_api_key",
    "opsgenie_api_key_file",
    "wechat_api_url",
    "wechat_api_secret",
    "wechat_api_corp_id",
    "victorops_api_url",
    "victorops_api_key",
    "victorops_api_key_file",
    "telegram_api_url",
    "webex_api_url",
];

impl Cx<'_> {
    fn error(&mut self, pos: Pos, field: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line: pos.line,
            column: pos.column,
            field: field.to_owned(),
            message: message.into(),
        });
    }

    fn unknown(&mut self, key: &MarkedScalarNode, parent: &str, go_type: &str) {
        let field = field_of(parent, key.as_str());
        self.error(
            scalar_pos(key),
            &field,
            format!("field {} not found in type {go_type}", key.as_str()),
        );
    }

    /// A mapping, `None` for null; an error for anything else.
    fn mapping<'n>(
        &mut self,
        node: &'n Node,
        field: &str,
        go_type: &str,
    ) -> Result<Option<&'n MarkedMappingNode>, ()> {
        match node {
            Node::Mapping(m) => Ok(Some(m)),
            n if node_is_null(n) => Ok(None),
            other => {
                self.error(node_pos(other), field, cannot_unmarshal(other, go_type));
                Err(())
            }
        }
    }

    /// A sequence (empty for null); an error for anything else.
    fn sequence<'n>(
        &mut self,
        node: &'n Node,
        field: &str,
        go_type: &str,
    ) -> Result<Vec<&'n Node>, ()> {
        match node {
            Node::Sequence(s) => Ok(s.iter().collect()),
            n if node_is_null(n) => Ok(Vec::new()),
            other => {
                self.error(node_pos(other), field, cannot_unmarshal(other, go_type));
                Err(())
            }
        }
    }

    /// A string: any scalar's text, as `yaml.v2` gives it (`None` for null).
    fn string(&mut self, node: &Node, field: &str) -> Option<Str> {
        match node {
            Node::Scalar(s) if is_null(s) => None,
            Node::Scalar(s) => Some(Str {
                value: s.as_str().to_owned(),
                pos: scalar_pos(s),
            }),
            other => {
                self.error(node_pos(other), field, cannot_unmarshal(other, "string"));
                None
            }
        }
    }

    /// A non-empty string (empty and null are `None`).
    fn non_empty(&mut self, node: &Node, field: &str) -> Option<Str> {
        self.string(node, field).filter(|s| !s.value.is_empty())
    }

    fn bool(&mut self, node: &Node, field: &str) -> Option<bool> {
        match node {
            Node::Scalar(s) if is_null(s) => None,
            Node::Scalar(s) if s.may_coerce() => match yaml11_bool(s.as_str()) {
                Some(b) => Some(b),
                None => {
                    self.error(scalar_pos(s), field, cannot_unmarshal(node, "bool"));
                    None
                }
            },
            other => {
                self.error(node_pos(other), field, cannot_unmarshal(other, "bool"));
                None
            }
        }
    }

    fn uint(&mut self, node: &Node, field: &str) -> Option<u64> {
        let parsed = match node {
            Node::Scalar(s) if is_null(s) => return None,
            Node::Scalar(s) if s.may_coerce() => {
                let t = s.as_str().replace('_', "");
                let t = t.strip_prefix('+').unwrap_or(&t);
                match t.strip_prefix("0x") {
                    Some(hex) => u64::from_str_radix(hex, 16).ok(),
                    None => t.parse::<u64>().ok(),
                }
            }
            _ => None,
        };
        if parsed.is_none() {
            self.error(node_pos(node), field, cannot_unmarshal(node, "uint64"));
        }
        parsed
    }

    /// A duration in Prometheus' syntax (`model.Duration`); `None` for null or an error.
    fn duration(&mut self, node: &Node, field: &str) -> Option<Duration> {
        let s = self.string(node, field)?;
        match parse_duration(&s.value) {
            Ok(ms) => Some(Duration::from_millis(ms.unsigned_abs())),
            Err(e) => {
                self.error(s.pos, field, e);
                None
            }
        }
    }

    /// A list of strings (`[]string`).
    fn string_list(&mut self, node: &Node, field: &str) -> Vec<Str> {
        let Ok(items) = self.sequence(node, field, "[]string") else {
            return Vec::new();
        };
        items
            .into_iter()
            .enumerate()
            .filter_map(|(i, n)| match self.string(n, &format!("{field}[{i}]")) {
                Some(s) => Some(s),
                // A null item is the empty string in Go.
                None if node_is_null(n) => Some(Str {
                    value: String::new(),
                    pos: node_pos(n),
                }),
                None => None,
            })
            .collect()
    }

    /// A `map[string]string`: (key, value) with positions; null values are empty strings.
    fn string_map(&mut self, node: &Node, field: &str) -> Vec<(Str, Str)> {
        let Ok(Some(m)) = self.mapping(node, field, "map[string]string") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in m.iter() {
            let key = Str {
                value: k.as_str().to_owned(),
                pos: scalar_pos(k),
            };
            let f = field_of(field, k.as_str());
            match self.string(v, &f) {
                Some(value) => out.push((key, value)),
                None if node_is_null(v) => out.push((
                    key.clone(),
                    Str {
                        value: String::new(),
                        pos: key.pos,
                    },
                )),
                None => {}
            }
        }
        out
    }

    /// Reads a `*_file`: the path joined to the file's directory, the content as UTF-8 with a
    /// trailing line break removed (so that `echo secret > file` works).
    fn read_text(&mut self, path: &Str, field: &str) -> Option<String> {
        let bytes = self.read_bytes(path, field)?;
        match String::from_utf8(bytes) {
            Ok(mut s) => {
                if s.ends_with('\n') {
                    s.pop();
                    if s.ends_with('\r') {
                        s.pop();
                    }
                }
                Some(s)
            }
            Err(_) => {
                self.error(
                    path.pos,
                    field,
                    format!("{} is not valid UTF-8", path.value),
                );
                None
            }
        }
    }

    fn read_bytes(&mut self, path: &Str, field: &str) -> Option<Vec<u8>> {
        let p = self.join(&path.value);
        match (self.read)(&p) {
            Ok(b) => Some(b),
            Err(e) => {
                self.error(path.pos, field, format!("cannot read {}: {e}", p.display()));
                None
            }
        }
    }

    fn join(&self, p: &str) -> PathBuf {
        let path = Path::new(p);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.dir.join(path)
        }
    }

    // -----------------------------------------------------------------------------------------

    fn config(&mut self, text: &str) -> Option<AmConfig> {
        let root = match yaml::parse_root(text, GoYaml::V2) {
            Ok(r) => r,
            Err((pos, message)) => {
                self.error(pos, "", message);
                return None;
            }
        };
        if let Some(other) = root.as_ref().filter(|n| !matches!(n, Node::Mapping(_))) {
            self.error(
                node_pos(other),
                "",
                cannot_unmarshal(other, "config.Config"),
            );
            return None;
        }
        let mut top: BTreeMap<&str, &Node> = BTreeMap::new();
        if let Some(Node::Mapping(m)) = &root {
            for (k, v) in m.iter() {
                match k.as_str() {
                    "global"
                    | "route"
                    | "inhibit_rules"
                    | "receivers"
                    | "templates"
                    | "mute_time_intervals"
                    | "time_intervals" => {
                        top.insert(k.as_str(), v);
                    }
                    _ => self.unknown(k, "", "config.Config"),
                }
            }
        }
        let global = match top.get("global") {
            Some(n) => self.global(n),
            None => RawGlobal::default(),
        };
        let receivers = match top.get("receivers") {
            Some(n) => self.receivers(n, &global),
            None => Vec::new(),
        };
        let receiver_names: BTreeSet<String> = receivers.iter().map(|r| r.name.clone()).collect();
        let mut time_intervals = BTreeMap::new();
        for key in ["mute_time_intervals", "time_intervals"] {
            if let Some(n) = top.get(key) {
                self.named_time_intervals(n, key, &mut time_intervals);
            }
        }
        let inhibit_rules = match top.get("inhibit_rules") {
            Some(n) => self.inhibit_rules(n),
            None => Vec::new(),
        };
        let templates = match top.get("templates") {
            Some(n) => self
                .string_list(n, "templates")
                .into_iter()
                .map(|s| self.join(&s.value))
                .collect(),
            None => Vec::new(),
        };
        let route_node = top.get("route").filter(|n| !node_is_null(n));
        let Some(route_node) = route_node else {
            let pos = root.as_ref().map_or(Pos { line: 1, column: 1 }, node_pos);
            self.error(pos, "route", "no route provided in config");
            return None;
        };
        let mut receiver_refs = Vec::new();
        let mut interval_refs = Vec::new();
        // References are checked even when the tree has other errors, to report everything.
        let spec = self.route(
            route_node,
            "route",
            true,
            &mut receiver_refs,
            &mut interval_refs,
        );
        for r in receiver_refs {
            if !receiver_names.contains(&r.name) {
                self.error(
                    r.pos,
                    &r.field,
                    format!("undefined receiver {:?} used in route", r.name),
                );
            }
        }
        for r in interval_refs {
            if !time_intervals.contains_key(&r.name) {
                self.error(
                    r.pos,
                    &r.field,
                    format!("undefined time interval {:?} used in route", r.name),
                );
            }
        }
        let spec = spec?;
        Some(AmConfig {
            file: self.file.to_path_buf(),
            global: GlobalConfig {
                resolve_timeout: global.resolve_timeout.unwrap_or(DEFAULT_RESOLVE_TIMEOUT),
            },
            route: RouteTree::new(&spec),
            receivers,
            inhibit_rules,
            time_intervals,
            templates,
        })
    }

    fn global(&mut self, node: &Node) -> RawGlobal {
        let mut g = RawGlobal::default();
        let Ok(Some(m)) = self.mapping(node, "global", "config.GlobalConfig") else {
            return g;
        };
        // The settings of unsupported integrations, for the "at most one of" checks.
        let mut ignored: BTreeMap<&str, Str> = BTreeMap::new();
        for (k, v) in m.iter() {
            let f = field_of("global", k.as_str());
            match k.as_str() {
                "resolve_timeout" => g.resolve_timeout = self.duration(v, &f),
                "http_config" => g.http_config = self.http_config(v, &f),
                "smtp_from" => g.smtp_from = self.non_empty(v, &f),
                "smtp_hello" => g.smtp_hello = self.non_empty(v, &f),
                "smtp_smarthost" => {
                    g.smtp_smarthost_given = true;
                    g.smtp_smarthost = self.non_empty(v, &f).and_then(|s| self.host_port(s, &f));
                }
                "smtp_auth_username" => g.smtp_auth_username = self.non_empty(v, &f),
                "smtp_auth_password" => g.smtp_auth_password = self.non_empty(v, &f),
                "smtp_auth_password_file" => g.smtp_auth_password_file = self.non_empty(v, &f),
                "smtp_auth_secret" => {
                    if let Some(s) = self.non_empty(v, &f) {
                        self.error(
                            s.pos,
                            &f,
                            "CRAM-MD5 authentication (smtp_auth_secret) is not supported by \
                             Redline; use smtp_auth_username and smtp_auth_password",
                        );
                    }
                }
                "smtp_auth_identity" => g.smtp_auth_identity = self.non_empty(v, &f),
                "smtp_require_tls" => g.smtp_require_tls = self.bool(v, &f),
                key if IGNORED_GLOBALS.contains(&key) => {
                    if let Some(s) = self.non_empty(v, &f) {
                        if key.ends_with("_url")
                            && let Err(e) = check_http_url(&s.value)
                        {
                            self.error(s.pos, &f, e);
                        }
                        ignored.insert(key, s);
                    }
                }
                _ => self.unknown(k, "global", "config.GlobalConfig"),
            }
        }
        for (a, b) in [
            ("slack_api_url", "slack_api_url_file"),
            ("opsgenie_api_key", "opsgenie_api_key_file"),
            ("victorops_api_key", "victorops_api_key_file"),
        ] {
            if let (Some(_), Some(file)) = (ignored.get(a), ignored.get(b)) {
                let pos = file.pos;
                self.error(
                    pos,
                    &format!("global.{b}"),
                    format!("at most one of {a} & {b} must be configured"),
                );
            }
        }
        if let (Some(_), Some(file)) = (&g.smtp_auth_password, &g.smtp_auth_password_file) {
            let pos = file.pos;
            self.error(
                pos,
                "global.smtp_auth_password_file",
                "at most one of smtp_auth_password & smtp_auth_password_file must be configured",
            );
        }
        g
    }

    /// `host:port` (Go's `net.SplitHostPort`); Redline needs the port as a number.
    fn host_port(&mut self, s: Str, field: &str) -> Option<(Str, String, u16)> {
        match split_host_port(&s.value) {
            Ok((host, port)) => {
                if port.is_empty() {
                    self.error(
                        s.pos,
                        field,
                        format!("address {:?}: port cannot be empty", s.value),
                    );
                    return None;
                }
                // The service names Go's resolver would look up for SMTP.
                let number = match port.as_str() {
                    "smtp" => Ok(25),
                    "submission" => Ok(587),
                    "smtps" | "submissions" => Ok(465),
                    p => p.parse::<u16>(),
                };
                match number {
                    Ok(p) => Some((s, host, p)),
                    Err(_) => {
                        self.error(
                            s.pos,
                            field,
                            format!(
                                "port {port:?} of {:?} is not a number (Redline needs a numeric port)",
                                s.value
                            ),
                        );
                        None
                    }
                }
            }
            Err(e) => {
                self.error(s.pos, field, e);
                None
            }
        }
    }

    fn receivers(&mut self, node: &Node, global: &RawGlobal) -> Vec<Receiver> {
        let Ok(items) = self.sequence(node, "receivers", "[]*config.Receiver") else {
            return Vec::new();
        };
        let mut out: Vec<Receiver> = Vec::new();
        let mut names: BTreeSet<String> = BTreeSet::new();
        for (i, item) in items.into_iter().enumerate() {
            let path = format!("receivers[{i}]");
            let Ok(Some(m)) = self.mapping(item, &path, "config.Receiver") else {
                if node_is_null(item) {
                    self.error(node_pos(item), &path, "missing name in receiver");
                }
                continue;
            };
            let name = m
                .get_node("name")
                .and_then(|n| self.string(n, &field_of(&path, "name")))
                .filter(|s| !s.value.is_empty());
            let Some(name) = name else {
                self.error(node_pos(item), &path, "missing name in receiver");
                continue;
            };
            let mut receiver = Receiver {
                name: name.value.clone(),
                email: Vec::new(),
                webhook: Vec::new(),
            };
            for (k, v) in m.iter() {
                let f = field_of(&path, k.as_str());
                match k.as_str() {
                    "name" => {}
                    "email_configs" => {
                        let Ok(list) = self.sequence(v, &f, "[]*config.EmailConfig") else {
                            continue;
                        };
                        for (j, e) in list.into_iter().enumerate() {
                            if let Some(c) = self.email(e, &format!("{f}[{j}]"), global) {
                                receiver.email.push(c);
                            }
                        }
                    }
                    "webhook_configs" => {
                        let Ok(list) = self.sequence(v, &f, "[]*config.WebhookConfig") else {
                            continue;
                        };
                        for (j, w) in list.into_iter().enumerate() {
                            if let Some(c) = self.webhook(w, &format!("{f}[{j}]"), global) {
                                receiver.webhook.push(c);
                            }
                        }
                    }
                    key if UNSUPPORTED_INTEGRATIONS.contains(&key) => {
                        // An empty list configures nothing; anything else would silently
                        // drop notifications, so it is refused.
                        let empty =
                            node_is_null(v) || matches!(v, Node::Sequence(s) if s.is_empty());
                        if !empty {
                            self.error(
                                scalar_pos(k),
                                &f,
                                format!(
                                    "receiver {:?}: {key} is not supported by Redline; use a webhook",
                                    name.value
                                ),
                            );
                        }
                    }
                    _ => self.unknown(k, &path, "config.Receiver"),
                }
            }
            if !names.insert(name.value.clone()) {
                self.error(
                    name.pos,
                    &field_of(&path, "name"),
                    format!("notification config name {:?} is not unique", name.value),
                );
                continue;
            }
            out.push(receiver);
        }
        out
    }

    fn email(&mut self, node: &Node, path: &str, global: &RawGlobal) -> Option<EmailConfig> {
        let pos = node_pos(node);
        let m = match self.mapping(node, path, "config.EmailConfig") {
            Ok(Some(m)) => m,
            Ok(None) => {
                self.error(pos, path, "missing to address in email config");
                return None;
            }
            Err(()) => return None,
        };
        let before = self.errors.len();
        let mut send_resolved = false;
        let mut to = None;
        let mut from = None;
        let mut hello = None;
        let mut smarthost = None;
        let mut smarthost_given = false;
        let mut username = None;
        let mut password = None;
        let mut password_file = None;
        let mut identity = None;
        let mut headers = Vec::new();
        let mut html = None;
        let mut text = None;
        let mut require_tls = None;
        let mut tls = TlsConfig::default();
        let mut timeout = DEFAULT_EMAIL_TIMEOUT;
        for (k, v) in m.iter() {
            let f = field_of(path, k.as_str());
            match k.as_str() {
                "send_resolved" => send_resolved = self.bool(v, &f).unwrap_or(false),
                "to" => to = self.non_empty(v, &f),
                "from" => from = self.non_empty(v, &f),
                "hello" => hello = self.non_empty(v, &f),
                "smarthost" => {
                    let given = self.non_empty(v, &f);
                    smarthost_given |= given.is_some();
                    smarthost = given.and_then(|s| self.host_port(s, &f));
                }
                "auth_username" => username = self.non_empty(v, &f),
                "auth_password" => password = self.non_empty(v, &f),
                "auth_password_file" => password_file = self.non_empty(v, &f),
                "auth_secret" => {
                    if let Some(s) = self.non_empty(v, &f) {
                        self.error(
                            s.pos,
                            &f,
                            "CRAM-MD5 authentication (auth_secret) is not supported by Redline; \
                             use auth_username and auth_password",
                        );
                    }
                }
                "auth_identity" => identity = self.non_empty(v, &f),
                "headers" => headers = self.string_map(v, &f),
                "html" => html = self.string(v, &f).map(|s| s.value),
                "text" => text = self.non_empty(v, &f).map(|s| s.value),
                "require_tls" => require_tls = self.bool(v, &f),
                "tls_config" => {
                    if let Some(t) = self.tls_config(v, &f) {
                        tls = t;
                    }
                }
                "timeout" => {
                    if let Some(d) = self.positive_duration(v, &f) {
                        timeout = d;
                    }
                }
                _ => self.unknown(k, path, "config.EmailConfig"),
            }
        }
        let Some(to) = to else {
            self.error(pos, path, "missing to address in email config");
            return None;
        };
        // Header names are case-insensitive: canonicalise, then refuse collisions.
        let mut canonical = BTreeMap::new();
        for (k, v) in headers {
            let name = canonical_mime_header_key(&k.value);
            if canonical.insert(name.clone(), v.value).is_some() {
                self.error(
                    k.pos,
                    &field_of(&field_of(path, "headers"), &k.value),
                    format!("duplicate header {name:?} in email config"),
                );
            }
        }
        let smarthost = match smarthost.or_else(|| global.smtp_smarthost.clone()) {
            Some(s) => s,
            // A smarthost that did not parse is already reported.
            None if smarthost_given || global.smtp_smarthost_given => return None,
            None => {
                self.error(pos, path, "no global SMTP smarthost set");
                return None;
            }
        };
        let from = match from.or_else(|| global.smtp_from.clone()) {
            Some(f) => f.value,
            None => {
                self.error(pos, path, "no global SMTP from set");
                return None;
            }
        };
        let username = username.or_else(|| global.smtp_auth_username.clone());
        // The password and its file come from `global` only as a pair, and the file wins
        // over the password, as in Alertmanager.
        let (password, password_file, password_field) =
            if password.is_none() && password_file.is_none() {
                (
                    global.smtp_auth_password.clone(),
                    global.smtp_auth_password_file.clone(),
                    "global.smtp_auth_password_file".to_owned(),
                )
            } else {
                (
                    password,
                    password_file,
                    field_of(path, "auth_password_file"),
                )
            };
        let auth_password = match password_file {
            Some(file) => self.read_text(&file, &password_field),
            None => password.map(|p| p.value),
        };
        // PLAIN's authorization identity cannot be sent separately by Redline's SMTP client;
        // one equal to the user name means the same as none.
        let identity = match identity {
            Some(i) => Some((i, field_of(path, "auth_identity"))),
            None => global
                .smtp_auth_identity
                .clone()
                .map(|i| (i, "global.smtp_auth_identity".to_owned())),
        };
        if let Some((identity, field)) = identity
            && username.as_ref().is_none_or(|u| u.value != identity.value)
        {
            self.error(
                identity.pos,
                &field,
                "an auth_identity other than the auth_username is not supported by Redline",
            );
        }
        let require_tls = require_tls.or(global.smtp_require_tls).unwrap_or(true);
        let (_, host, port) = smarthost;
        let security = if port == 465 {
            SmtpSecurity::ImplicitTls
        } else if require_tls {
            SmtpSecurity::StartTls
        } else {
            SmtpSecurity::Opportunistic
        };
        if self.errors.len() > before {
            return None;
        }
        Some(EmailConfig {
            send_resolved,
            to: to.value,
            from,
            smarthost_host: host,
            smarthost_port: port,
            hello: hello
                .or_else(|| global.smtp_hello.clone())
                .map_or_else(|| "localhost".to_owned(), |h| h.value),
            auth_username: username.map(|u| u.value),
            auth_password,
            security,
            tls,
            headers: canonical,
            html: html.filter(|h| !h.is_empty()),
            text,
            timeout,
        })
    }

    /// A Redline `timeout`: a Prometheus duration greater than zero.
    fn positive_duration(&mut self, node: &Node, field: &str) -> Option<Duration> {
        let d = self.duration(node, field)?;
        if d.is_zero() {
            self.error(node_pos(node), field, "timeout must be greater than zero");
            return None;
        }
        Some(d)
    }

    fn webhook(&mut self, node: &Node, path: &str, global: &RawGlobal) -> Option<WebhookConfig> {
        let pos = node_pos(node);
        let m = match self.mapping(node, path, "config.WebhookConfig") {
            Ok(Some(m)) => m,
            Ok(None) => {
                self.error(pos, path, "missing URL in webhook config");
                return None;
            }
            Err(()) => return None,
        };
        let before = self.errors.len();
        let mut send_resolved = true;
        let mut url = None;
        let mut url_file = None;
        let mut http = None;
        let mut max_alerts = 0u64;
        let mut timeout = DEFAULT_WEBHOOK_TIMEOUT;
        let mut headers = Vec::new();
        let mut hmac_secret = None;
        let mut hmac_secret_file = None;
        for (k, v) in m.iter() {
            let f = field_of(path, k.as_str());
            match k.as_str() {
                "send_resolved" => send_resolved = self.bool(v, &f).unwrap_or(false),
                "url" => url = self.non_empty(v, &f),
                "url_file" => url_file = self.non_empty(v, &f),
                "http_config" => http = self.http_config(v, &f),
                "max_alerts" => max_alerts = self.uint(v, &f).unwrap_or(0),
                "timeout" => {
                    if let Some(d) = self.positive_duration(v, &f) {
                        timeout = d;
                    }
                }
                "headers" => headers = self.string_map(v, &f),
                "hmac_secret" => hmac_secret = self.string(v, &f),
                "hmac_secret_file" => hmac_secret_file = self.non_empty(v, &f),
                _ => self.unknown(k, path, "config.WebhookConfig"),
            }
        }
        let url = match (url, url_file) {
            (Some(_), Some(file)) => {
                self.error(
                    file.pos,
                    &field_of(path, "url_file"),
                    "at most one of url & url_file must be configured",
                );
                None
            }
            (Some(u), None) => {
                if let Err(e) = check_http_url(&u.value) {
                    self.error(u.pos, &field_of(path, "url"), e);
                }
                Some(u.value)
            }
            (None, Some(file)) => {
                let field = field_of(path, "url_file");
                let text = self.read_text(&file, &field);
                if let Some(u) = &text
                    && let Err(e) = check_http_url(u.trim())
                {
                    self.error(file.pos, &field, format!("{}: {e}", file.value));
                }
                text.map(|t| t.trim().to_owned())
            }
            (None, None) => {
                self.error(pos, path, "missing URL in webhook config");
                None
            }
        };
        let mut header_map = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for (k, v) in headers {
            let field = field_of(&field_of(path, "headers"), &k.value);
            if let Err(e) = check_header(&k.value, &v.value) {
                self.error(k.pos, &field, e);
            } else if !seen.insert(k.value.to_ascii_lowercase()) {
                self.error(
                    k.pos,
                    &field,
                    format!("duplicate header {:?} in webhook config", k.value),
                );
            } else {
                header_map.insert(k.value, v.value);
            }
        }
        let hmac_secret = match (hmac_secret, hmac_secret_file) {
            (Some(_), Some(file)) => {
                self.error(
                    file.pos,
                    &field_of(path, "hmac_secret_file"),
                    "at most one of hmac_secret & hmac_secret_file must be configured",
                );
                None
            }
            (Some(s), None) => Some((s.value, s.pos, field_of(path, "hmac_secret"))),
            (None, Some(file)) => {
                let field = field_of(path, "hmac_secret_file");
                self.read_text(&file, &field).map(|s| (s, file.pos, field))
            }
            (None, None) => None,
        };
        let hmac_secret = match hmac_secret {
            Some((s, pos, field)) if s.is_empty() => {
                self.error(pos, &field, "the HMAC secret must not be empty");
                None
            }
            Some((s, _, _)) => Some(s),
            None => None,
        };
        if self.errors.len() > before {
            return None;
        }
        Some(WebhookConfig {
            send_resolved,
            url: url?,
            http: http
                .or_else(|| global.http_config.clone())
                .unwrap_or_else(default_http_config),
            max_alerts: usize::try_from(max_alerts).unwrap_or(usize::MAX),
            timeout,
            headers: header_map,
            hmac_secret,
        })
    }

    /// `http_config` (`prometheus/common`'s `HTTPClientConfig`, the parts Redline supports),
    /// with its `Validate` checks and messages.
    fn http_config(&mut self, node: &Node, path: &str) -> Option<HttpClientConfig> {
        let m = match self.mapping(node, path, "config.HTTPClientConfig") {
            Ok(Some(m)) => m,
            Ok(None) => return Some(default_http_config()),
            Err(()) => return None,
        };
        let pos = node_pos(node);
        let before = self.errors.len();
        let mut c = default_http_config();
        // (username, password, password_file, where) and (type, credentials,
        // credentials_file, where), checked together once every key is read.
        let mut basic_auth: Option<(Str, Option<Str>, Option<Str>, Pos)> = None;
        let mut authorization: Option<AuthorizationKeys> = None;
        let mut bearer_token = None;
        let mut bearer_token_file = None;
        for (k, v) in m.iter() {
            let f = field_of(path, k.as_str());
            match k.as_str() {
                "basic_auth" => {
                    let Ok(Some(b)) = self.mapping(v, &f, "config.BasicAuth") else {
                        continue;
                    };
                    let mut username = Str {
                        value: String::new(),
                        pos: node_pos(v),
                    };
                    let (mut password, mut password_file) = (None, None);
                    for (bk, bv) in b.iter() {
                        let bf = field_of(&f, bk.as_str());
                        match bk.as_str() {
                            "username" => {
                                if let Some(u) = self.string(bv, &bf) {
                                    username = u;
                                }
                            }
                            "password" => password = self.non_empty(bv, &bf),
                            "password_file" => password_file = self.non_empty(bv, &bf),
                            _ => self.unknown(bk, &f, "config.BasicAuth"),
                        }
                    }
                    basic_auth = Some((username, password, password_file, scalar_pos(k)));
                }
                "authorization" => {
                    let Ok(Some(a)) = self.mapping(v, &f, "config.Authorization") else {
                        continue;
                    };
                    let (mut kind, mut credentials, mut credentials_file) = (None, None, None);
                    for (ak, av) in a.iter() {
                        let af = field_of(&f, ak.as_str());
                        match ak.as_str() {
                            "type" => kind = self.string(av, &af),
                            "credentials" => credentials = self.non_empty(av, &af),
                            "credentials_file" => credentials_file = self.non_empty(av, &af),
                            _ => self.unknown(ak, &f, "config.Authorization"),
                        }
                    }
                    authorization = Some((kind, credentials, credentials_file, scalar_pos(k)));
                }
                "bearer_token" => bearer_token = self.non_empty(v, &f),
                "bearer_token_file" => bearer_token_file = self.non_empty(v, &f),
                "oauth2" => {
                    if !node_is_null(v) {
                        self.error(
                            scalar_pos(k),
                            &f,
                            "oauth2 is not supported by Redline; use authorization or basic_auth",
                        );
                    }
                }
                "proxy_url" => {
                    if let Some(u) = self.non_empty(v, &f) {
                        if u.value.chars().any(char::is_control) {
                            self.error(u.pos, &f, "net/url: invalid control character in URL");
                        }
                        c.proxy_url = Some(u.value);
                    }
                }
                "proxy_connect_header" => {
                    let empty = node_is_null(v) || matches!(v, Node::Mapping(m) if m.is_empty());
                    if !empty {
                        self.error(
                            scalar_pos(k),
                            &f,
                            "proxy_connect_header is not supported by Redline",
                        );
                    }
                }
                "tls_config" => {
                    if let Some(t) = self.tls_config(v, &f) {
                        c.tls = t;
                    }
                }
                "follow_redirects" => {
                    if let Some(b) = self.bool(v, &f) {
                        c.follow_redirects = b;
                    }
                }
                // HTTP/2 is negotiated by the client; the setting is accepted and unused.
                "enable_http2" => {
                    let _ = self.bool(v, &f);
                }
                _ => self.unknown(k, path, "config.HTTPClientConfig"),
            }
        }
        if bearer_token.is_some() && bearer_token_file.is_some() {
            self.error(
                pos,
                path,
                "at most one of bearer_token & bearer_token_file must be configured",
            );
        }
        let has_bearer = bearer_token.is_some() || bearer_token_file.is_some();
        if basic_auth.is_some() && has_bearer {
            self.error(
                pos,
                path,
                "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured",
            );
        }
        if let Some((username, password, password_file, bpos)) = basic_auth {
            let field = field_of(path, "basic_auth");
            if password.is_some() && password_file.is_some() {
                self.error(
                    bpos,
                    &field,
                    "at most one of basic_auth password & password_file must be configured",
                );
            }
            let password = match password_file {
                Some(file) => self.read_text(&file, &field_of(&field, "password_file")),
                None => password.map(|p| p.value),
            };
            c.basic_auth = Some((username.value, password));
        }
        if let Some((kind, credentials, credentials_file, apos)) = authorization {
            let field = field_of(path, "authorization");
            if has_bearer {
                self.error(
                    apos,
                    &field,
                    "authorization is not compatible with bearer_token & bearer_token_file",
                );
            }
            if credentials.is_some() && credentials_file.is_some() {
                self.error(
                    apos,
                    &field,
                    "at most one of authorization credentials & credentials_file must be configured",
                );
            }
            let kind = kind
                .map(|k| k.value.trim().to_owned())
                .filter(|k| !k.is_empty())
                .unwrap_or_else(|| "Bearer".to_owned());
            if kind.eq_ignore_ascii_case("basic") {
                self.error(
                    apos,
                    &field,
                    "authorization type cannot be set to \"basic\", use \"basic_auth\" instead",
                );
            }
            if c.basic_auth.is_some() {
                self.error(
                    apos,
                    &field,
                    "at most one of basic_auth, oauth2 & authorization must be configured",
                );
            }
            let credentials = match credentials_file {
                Some(file) => self.read_text(&file, &field_of(&field, "credentials_file")),
                None => credentials.map(|c| c.value),
            };
            c.authorization = credentials.map(|cred| format!("{kind} {cred}"));
        } else if let Some(token) = bearer_token {
            c.authorization = Some(format!("Bearer {}", token.value));
        } else if let Some(file) = bearer_token_file {
            c.authorization = self
                .read_text(&file, &field_of(path, "bearer_token_file"))
                .map(|t| format!("Bearer {t}"));
        }
        if self.errors.len() > before {
            return None;
        }
        Some(c)
    }

    /// `tls_config`, with the CA, certificate and key files read.
    fn tls_config(&mut self, node: &Node, path: &str) -> Option<TlsConfig> {
        let m = match self.mapping(node, path, "config.TLSConfig") {
            Ok(Some(m)) => m,
            Ok(None) => return Some(TlsConfig::default()),
            Err(()) => return None,
        };
        let before = self.errors.len();
        let mut t = TlsConfig::default();
        let (mut cert_file, mut key_file) = (None, None);
        for (k, v) in m.iter() {
            let f = field_of(path, k.as_str());
            match k.as_str() {
                "ca_file" => {
                    if let Some(p) = self.non_empty(v, &f) {
                        t.ca_pem = self.read_bytes(&p, &f);
                    }
                }
                "cert_file" => cert_file = self.non_empty(v, &f),
                "key_file" => key_file = self.non_empty(v, &f),
                "server_name" => t.server_name = self.non_empty(v, &f).map(|s| s.value),
                "insecure_skip_verify" => {
                    t.insecure_skip_verify = self.bool(v, &f).unwrap_or(false);
                }
                "min_version" | "max_version" => {
                    let Some(s) = self.non_empty(v, &f) else {
                        continue;
                    };
                    let version = match s.value.as_str() {
                        "TLS10" => TlsVersion::Tls10,
                        "TLS11" => TlsVersion::Tls11,
                        "TLS12" => TlsVersion::Tls12,
                        "TLS13" => TlsVersion::Tls13,
                        other => {
                            self.error(s.pos, &f, format!("unknown TLS version: {other}"));
                            continue;
                        }
                    };
                    if k.as_str() == "min_version" {
                        t.min_version = Some(version);
                    } else {
                        t.max_version = Some(version);
                    }
                }
                _ => self.unknown(k, path, "config.TLSConfig"),
            }
        }
        match (cert_file, key_file) {
            (Some(cert), None) => self.error(
                cert.pos,
                &field_of(path, "cert_file"),
                format!(
                    "client cert file {:?} specified without client key file",
                    cert.value
                ),
            ),
            (None, Some(key)) => self.error(
                key.pos,
                &field_of(path, "key_file"),
                format!(
                    "client key file {:?} specified without client cert file",
                    key.value
                ),
            ),
            (Some(cert), Some(key)) => {
                t.client_cert_pem = self.read_bytes(&cert, &field_of(path, "cert_file"));
                t.client_key_pem = self.read_bytes(&key, &field_of(path, "key_file"));
            }
            (None, None) => {}
        }
        if self.errors.len() > before {
            return None;
        }
        Some(t)
    }

    /// One route and its children. `refs` collect the receivers and time intervals it names.
    fn route(
        &mut self,
        node: &Node,
        path: &str,
        root: bool,
        receiver_refs: &mut Vec<Reference>,
        interval_refs: &mut Vec<Reference>,
    ) -> Option<RouteSpec> {
        let m = match self.mapping(node, path, "config.Route") {
            Ok(Some(m)) => m,
            // Alertmanager accepts a null child route and then crashes on it.
            Ok(None) if !root => {
                self.error(node_pos(node), path, "a route must be a mapping, not null");
                return None;
            }
            _ => return None,
        };
        let pos = node_pos(node);
        let mut spec = RouteSpec::default();
        let mut ok = true;
        let mut receiver_pos = pos;
        let mut continue_pos = pos;
        let mut mute_pos = None;
        let mut active_pos = None;
        for (k, v) in m.iter() {
            let f = field_of(path, k.as_str());
            let before = self.errors.len();
            match k.as_str() {
                "receiver" => {
                    if let Some(r) = self.non_empty(v, &f) {
                        receiver_pos = r.pos;
                        receiver_refs.push(Reference {
                            name: r.value.clone(),
                            pos: r.pos,
                            field: f.clone(),
                        });
                        spec.receiver = Some(r.value);
                    }
                }
                "group_by" => spec.group_by = self.group_by(v, &f),
                "match" => spec.matchers.extend(self.match_eq(v, &f)),
                "match_re" => spec.matchers.extend(self.match_re(v, &f)),
                "matchers" => spec.matchers.extend(self.matchers(v, &f)),
                "mute_time_intervals" | "active_time_intervals" => {
                    let names = self.string_list(v, &f);
                    if let Some(first) = names.first() {
                        if k.as_str() == "mute_time_intervals" {
                            mute_pos = Some(first.pos);
                        } else {
                            active_pos = Some(first.pos);
                        }
                    }
                    let mut list = Vec::new();
                    for (i, n) in names.into_iter().enumerate() {
                        interval_refs.push(Reference {
                            name: n.value.clone(),
                            pos: n.pos,
                            field: format!("{f}[{i}]"),
                        });
                        list.push(n.value);
                    }
                    if k.as_str() == "mute_time_intervals" {
                        spec.mute_time_intervals = list;
                    } else {
                        spec.active_time_intervals = list;
                    }
                }
                "continue" => {
                    continue_pos = scalar_pos(k);
                    spec.continue_matching = self.bool(v, &f).unwrap_or(false);
                }
                "routes" => {
                    let Ok(children) = self.sequence(v, &f, "[]*config.Route") else {
                        continue;
                    };
                    for (i, child) in children.into_iter().enumerate() {
                        match self.route(
                            child,
                            &format!("{f}[{i}]"),
                            false,
                            receiver_refs,
                            interval_refs,
                        ) {
                            Some(c) => spec.routes.push(c),
                            None => ok = false,
                        }
                    }
                }
                "group_wait" => spec.group_wait = self.duration(v, &f),
                "group_interval" | "repeat_interval" => {
                    let d = self.duration(v, &f);
                    if d.is_some_and(|d| d.is_zero()) {
                        self.error(node_pos(v), &f, format!("{} cannot be zero", k.as_str()));
                    }
                    if k.as_str() == "group_interval" {
                        spec.group_interval = d;
                    } else {
                        spec.repeat_interval = d;
                    }
                }
                _ => self.unknown(k, path, "config.Route"),
            }
            ok &= self.errors.len() == before;
        }
        spec.matchers.sort();
        if root {
            if spec.receiver.is_none() {
                self.error(
                    receiver_pos,
                    &field_of(path, "receiver"),
                    "root route must specify a default receiver",
                );
                ok = false;
            }
            if !spec.matchers.is_empty() {
                self.error(pos, path, "root route must not have any matchers");
                ok = false;
            }
            if let Some(p) = mute_pos {
                self.error(
                    p,
                    &field_of(path, "mute_time_intervals"),
                    "root route must not have any mute time intervals",
                );
                ok = false;
            }
            if let Some(p) = active_pos {
                self.error(
                    p,
                    &field_of(path, "active_time_intervals"),
                    "root route must not have any active time intervals",
                );
                ok = false;
            }
            if spec.continue_matching {
                self.error(
                    continue_pos,
                    &field_of(path, "continue"),
                    "cannot have continue in root route",
                );
                ok = false;
            }
        }
        ok.then_some(spec)
    }

    /// `group_by`: valid label names, no duplicates, `...` only alone. An empty list is
    /// `None` (inherit), as Alertmanager's nil list.
    fn group_by(&mut self, node: &Node, field: &str) -> Option<GroupBy> {
        let items = self.string_list(node, field);
        let mut all = false;
        let mut labels = Vec::new();
        let mut seen = BTreeSet::new();
        for item in &items {
            if item.value == "..." {
                all = true;
            } else if !is_valid_label_name(&item.value) {
                self.error(
                    item.pos,
                    field,
                    format!("invalid label name {:?} in group_by list", item.value),
                );
            } else if !seen.insert(item.value.clone()) {
                self.error(
                    item.pos,
                    field,
                    format!("duplicated label {:?} in group_by", item.value),
                );
            } else {
                labels.push(item.value.clone());
            }
        }
        if all && !labels.is_empty() {
            self.error(
                node_pos(node),
                field,
                "cannot have wildcard group_by (`...`) and other other labels at the same time",
            );
        }
        if all {
            Some(GroupBy::All)
        } else if labels.is_empty() {
            None
        } else {
            Some(GroupBy::Labels(labels))
        }
    }

    /// A `matchers` list: each string holds one or more matchers.
    fn matchers(&mut self, node: &Node, field: &str) -> Vec<Matcher> {
        let mut out = Vec::new();
        for (i, s) in self.string_list(node, field).into_iter().enumerate() {
            match parse_matchers(&s.value) {
                Ok(ms) => out.extend(ms),
                Err(e) => self.error(s.pos, &format!("{field}[{i}]"), e.to_string()),
            }
        }
        out
    }

    /// A legacy `*_match_re` map: valid label names, values compiled anchored.
    fn match_re(&mut self, node: &Node, field: &str) -> Vec<Matcher> {
        let Ok(Some(m)) = self.mapping(node, field, "config.MatchRegexps") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in m.iter() {
            let f = field_of(field, k.as_str());
            if !is_valid_label_name(k.as_str()) {
                self.error(
                    scalar_pos(k),
                    &f,
                    format!("invalid label name {:?}", k.as_str()),
                );
                continue;
            }
            if node_is_null(v) {
                self.error(
                    scalar_pos(k),
                    &f,
                    format!("invalid regexp value for {:?}", k.as_str()),
                );
                continue;
            }
            let Some(value) = self.string(v, &f) else {
                continue;
            };
            match Matcher::legacy(k.as_str(), &value.value, true) {
                Ok(mt) => out.push(mt),
                Err(MatcherError::Regex { message, .. }) => {
                    self.error(value.pos, &f, format!("error parsing regexp: {message}"));
                }
                Err(e) => self.error(value.pos, &f, e.to_string()),
            }
        }
        out
    }

    /// A legacy `*_match` map.
    fn match_eq(&mut self, node: &Node, field: &str) -> Vec<Matcher> {
        let mut out = Vec::new();
        for (key, value) in self.string_map(node, field) {
            match Matcher::legacy(&key.value, &value.value, false) {
                Ok(mt) => out.push(mt),
                Err(e) => self.error(key.pos, &field_of(field, &key.value), e.to_string()),
            }
        }
        out
    }

    fn inhibit_rules(&mut self, node: &Node) -> Vec<InhibitRule> {
        let Ok(items) = self.sequence(node, "inhibit_rules", "[]*config.InhibitRule") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let path = format!("inhibit_rules[{i}]");
            // A null rule is accepted by Alertmanager's loader; it inhibits nothing.
            let Ok(Some(m)) = self.mapping(item, &path, "config.InhibitRule") else {
                continue;
            };
            let before = self.errors.len();
            let mut rule = InhibitRule::default();
            for (k, v) in m.iter() {
                let f = field_of(&path, k.as_str());
                match k.as_str() {
                    "source_match" => rule.source_matchers.extend(self.match_eq(v, &f)),
                    "source_match_re" => rule.source_matchers.extend(self.match_re(v, &f)),
                    "source_matchers" => rule.source_matchers.extend(self.matchers(v, &f)),
                    "target_match" => rule.target_matchers.extend(self.match_eq(v, &f)),
                    "target_match_re" => rule.target_matchers.extend(self.match_re(v, &f)),
                    "target_matchers" => rule.target_matchers.extend(self.matchers(v, &f)),
                    "equal" => {
                        for name in self.string_list(v, &f) {
                            if is_valid_label_name(&name.value) {
                                rule.equal.insert(name.value);
                            } else {
                                self.error(
                                    name.pos,
                                    &f,
                                    format!("{:?} is not a valid label name", name.value),
                                );
                            }
                        }
                    }
                    _ => self.unknown(k, &path, "config.InhibitRule"),
                }
            }
            if self.errors.len() == before {
                rule.source_matchers.sort();
                rule.target_matchers.sort();
                out.push(rule);
            }
        }
        out
    }

    /// `time_intervals` or `mute_time_intervals`: named lists of entries, names unique across
    /// both.
    fn named_time_intervals(
        &mut self,
        node: &Node,
        key: &str,
        out: &mut BTreeMap<String, Vec<TimeInterval>>,
    ) {
        let (go_type, what) = if key == "time_intervals" {
            ("config.TimeInterval", "time interval")
        } else {
            ("config.MuteTimeInterval", "mute time interval")
        };
        let Ok(items) = self.sequence(node, key, &format!("[]{go_type}")) else {
            return;
        };
        for (i, item) in items.into_iter().enumerate() {
            let path = format!("{key}[{i}]");
            let Ok(m) = self.mapping(item, &path, go_type) else {
                continue;
            };
            let mut name = None;
            let mut entries = Vec::new();
            for (k, v) in m.into_iter().flat_map(|m| m.iter()) {
                let f = field_of(&path, k.as_str());
                match k.as_str() {
                    "name" => name = self.non_empty(v, &f),
                    "time_intervals" => {
                        let Ok(list) = self.sequence(v, &f, "[]timeinterval.TimeInterval") else {
                            continue;
                        };
                        for (j, e) in list.into_iter().enumerate() {
                            if let Some(ti) = self.time_interval(e, &format!("{f}[{j}]")) {
                                entries.push(ti);
                            }
                        }
                    }
                    _ => self.unknown(k, &path, go_type),
                }
            }
            let Some(name) = name else {
                self.error(node_pos(item), &path, format!("missing name in {what}"));
                continue;
            };
            if out.contains_key(&name.value) {
                self.error(
                    name.pos,
                    &field_of(&path, "name"),
                    format!("{what} {:?} is not unique", name.value),
                );
                continue;
            }
            out.insert(name.value, entries);
        }
    }

    fn time_interval(&mut self, node: &Node, path: &str) -> Option<TimeInterval> {
        let m = match self.mapping(node, path, "timeinterval.TimeInterval") {
            Ok(Some(m)) => m,
            Ok(None) => return Some(TimeInterval::default()),
            Err(()) => return None,
        };
        let before = self.errors.len();
        let mut ti = TimeInterval::default();
        for (k, v) in m.iter() {
            let f = field_of(path, k.as_str());
            match k.as_str() {
                "times" => {
                    let Ok(list) = self.sequence(v, &f, "[]timeinterval.TimeRange") else {
                        continue;
                    };
                    let mut ranges = Vec::new();
                    for (j, t) in list.into_iter().enumerate() {
                        let tf = format!("{f}[{j}]");
                        let Ok(tm) = self.mapping(t, &tf, "timeinterval.yamlTimeRange") else {
                            continue;
                        };
                        let (mut start, mut end) = (String::new(), String::new());
                        for (tk, tv) in tm.into_iter().flat_map(|m| m.iter()) {
                            let kf = field_of(&tf, tk.as_str());
                            match tk.as_str() {
                                "start_time" => {
                                    start =
                                        self.string(tv, &kf).map(|s| s.value).unwrap_or_default();
                                }
                                "end_time" => {
                                    end = self.string(tv, &kf).map(|s| s.value).unwrap_or_default();
                                }
                                _ => self.unknown(tk, &tf, "timeinterval.yamlTimeRange"),
                            }
                        }
                        match timeinterval::parse_time_range(&start, &end) {
                            Ok(r) => ranges.push(r),
                            Err(e) => self.error(node_pos(t), &tf, e),
                        }
                    }
                    ti.times = Some(ranges);
                }
                "weekdays" => {
                    ti.weekdays = Some(self.ranges(v, &f, timeinterval::parse_weekday_range))
                }
                "days_of_month" => {
                    ti.days_of_month =
                        Some(self.ranges(v, &f, timeinterval::parse_day_of_month_range));
                }
                "months" => ti.months = Some(self.ranges(v, &f, timeinterval::parse_month_range)),
                "years" => ti.years = Some(self.ranges(v, &f, timeinterval::parse_year_range)),
                "location" => {
                    if let Some(s) = self.string(v, &f) {
                        match timeinterval::parse_location(&s.value) {
                            Ok(tz) => ti.location = Some(tz),
                            Err(e) => self.error(s.pos, &f, e),
                        }
                    }
                }
                _ => self.unknown(k, path, "timeinterval.TimeInterval"),
            }
        }
        // A null list (`weekdays:`) does not restrict, as Go's nil slice.
        for (key, slot) in [
            ("times", ti.times.is_some()),
            ("weekdays", ti.weekdays.is_some()),
            ("days_of_month", ti.days_of_month.is_some()),
            ("months", ti.months.is_some()),
            ("years", ti.years.is_some()),
        ] {
            if slot && m.get_node(key).is_some_and(node_is_null) {
                match key {
                    "times" => ti.times = None,
                    "weekdays" => ti.weekdays = None,
                    "days_of_month" => ti.days_of_month = None,
                    "months" => ti.months = None,
                    _ => ti.years = None,
                }
            }
        }
        (self.errors.len() == before).then_some(ti)
    }

    fn ranges(
        &mut self,
        node: &Node,
        field: &str,
        parse: fn(&str) -> Result<timeinterval::InclusiveRange, String>,
    ) -> Vec<timeinterval::InclusiveRange> {
        let mut out = Vec::new();
        for (i, s) in self.string_list(node, field).into_iter().enumerate() {
            match parse(&s.value) {
                Ok(r) => out.push(r),
                Err(e) => self.error(s.pos, &format!("{field}[{i}]"), e),
            }
        }
        out
    }
}

/// `prometheus/common`'s defaults: redirects followed.
fn default_http_config() -> HttpClientConfig {
    HttpClientConfig {
        follow_redirects: true,
        ..HttpClientConfig::default()
    }
}

/// Go's `net.SplitHostPort`, with its messages.
fn split_host_port(s: &str) -> Result<(String, String), String> {
    let err = |why: &str| format!("address {s}: {why}");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return Err(err("missing ']' in address"));
        };
        let host = &rest[..end];
        let after = &rest[end + 1..];
        match after.strip_prefix(':') {
            Some(port) => (host, port),
            None if after.is_empty() => return Err(err("missing port in address")),
            None => return Err(err("unexpected ']' in address")),
        }
    } else {
        let Some(colon) = s.rfind(':') else {
            return Err(err("missing port in address"));
        };
        let host = &s[..colon];
        if host.contains(':') {
            return Err(err("too many colons in address"));
        }
        (host, &s[colon + 1..])
    };
    if host.contains(['[', ']']) || port.contains(['[', ']']) {
        return Err(err("unexpected '[' in address"));
    }
    Ok((host.to_owned(), port.to_owned()))
}

/// Alertmanager's URL check (`parseURL`): Go's `url.Parse`, then an `http` or `https` scheme
/// and a host.
pub fn check_http_url(s: &str) -> Result<(), String> {
    if s.chars().any(|c| c.is_ascii_control()) {
        return Err("net/url: invalid control character in URL".to_owned());
    }
    let scheme_end = s.find(':');
    let scheme = match scheme_end {
        Some(0) => return Err("missing protocol scheme".to_owned()),
        Some(i)
            if s[..i].starts_with(|c: char| c.is_ascii_alphabetic())
                && s[..i]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            s[..i].to_ascii_lowercase()
        }
        _ => String::new(),
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!("unsupported scheme {scheme:?} for URL"));
    }
    let rest = &s[scheme.len() + 1..];
    let Some(authority) = rest.strip_prefix("//") else {
        return Err("missing host for URL".to_owned());
    };
    let end = authority.find(['/', '?', '#']).unwrap_or(authority.len());
    let authority = &authority[..end];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        host_port.find(']').map_or(host_port, |i| &host_port[..=i])
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    if let Some(port) = host_port
        .strip_prefix(host)
        .and_then(|p| p.strip_prefix(':'))
        && !port.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!("invalid port \":{port}\" after host"));
    }
    if let Some(c) = host.chars().find(|c| {
        matches!(
            c,
            ' ' | '<' | '>' | '"' | '{' | '}' | '|' | '\\' | '^' | '`'
        )
    }) {
        return Err(format!(
            "invalid character {:?} in host name",
            c.to_string()
        ));
    }
    if host.is_empty() {
        return Err("missing host for URL".to_owned());
    }
    Ok(())
}

/// Go's `textproto.CanonicalMIMEHeaderKey`: `content-type` → `Content-Type`; keys with
/// characters outside HTTP's token set are returned unchanged.
pub fn canonical_mime_header_key(key: &str) -> String {
    if !key.bytes().all(is_token_byte) {
        return key.to_owned();
    }
    let mut upper = true;
    key.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Headers a webhook config may not set: the framing of the request is the client's, and the
/// signature is Redline's.
const RESERVED_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
    "x-redline-signature",
];

/// A Redline webhook header: a token name, not reserved, and a value without line breaks.
fn check_header(name: &str, value: &str) -> Result<(), String> {
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(format!("invalid header name {name:?}"));
    }
    if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "header {name:?} is set by Redline and cannot be configured"
        ));
    }
    if value.contains(['\r', '\n', '\0']) {
        return Err(format!(
            "the value of header {name:?} contains a line break"
        ));
    }
    Ok(())
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::alert::route::DEFAULT_GROUP_WAIT;
    use crate::notify::test_labels as labels;

    /// The `*_file`s the tests refer to, relative to `/etc/am` (the directory of the
    /// configuration file `/etc/am/am.yml`).
    fn files(path: &Path) -> io::Result<Vec<u8>> {
        let content: &[u8] = match path.to_str().unwrap_or_default() {
            "/etc/am/smtp_password" => b"hunter2\n",
            "/etc/am/token" => b"t0ken\r\n",
            "/secrets/hmac" => b"k3y",
            "/etc/am/empty" => b"",
            "/etc/am/url" => b"https://hooks.example.org/from-file\n",
            "/etc/am/ca.pem" => b"CA PEM",
            "/etc/am/client.pem" => b"CERT",
            "/etc/am/client.key" => b"KEY",
            "/etc/am/latin1" => b"\xe9t\xe9",
            _ => return Err(io::Error::new(io::ErrorKind::NotFound, "no such file")),
        };
        Ok(content.to_vec())
    }

    fn parse_ok(text: &str) -> AmConfig {
        match parse(Path::new("/etc/am/am.yml"), text, &files) {
            Ok(c) => c,
            Err(e) => panic!("{e}\n---\n{text}"),
        }
    }

    fn parse_err(text: &str) -> Vec<ConfigError> {
        match parse(Path::new("/etc/am/am.yml"), text, &files) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.errors,
        }
    }

    /// The one error of `text`, as `line:col: field: message` (file name left out).
    fn one_error(text: &str) -> String {
        let errors = parse_err(text);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        let e = &errors[0];
        format!("{}:{}: {}: {}", e.line, e.column, e.field, e.message)
    }

    const RECEIVERS: &str = "receivers:\n- name: r\n- name: s\n";

    #[test]
    fn defaults_of_a_minimal_file() {
        let c = parse_ok("route:\n  receiver: r\nreceivers:\n- name: r\n");
        assert_eq!(c.global.resolve_timeout, DEFAULT_RESOLVE_TIMEOUT);
        assert_eq!(c.receivers.len(), 1);
        assert!(c.receivers[0].email.is_empty() && c.receivers[0].webhook.is_empty());
        let root = c.route.root();
        assert_eq!(root.opts.receiver, "r");
        assert_eq!(root.opts.group_wait, DEFAULT_GROUP_WAIT);
        assert_eq!(root.key, "{}");
        assert!(c.inhibit_rules.is_empty() && c.time_intervals.is_empty());
        assert!(c.templates.is_empty());
        assert_eq!(c.file, Path::new("/etc/am/am.yml"));
    }

    #[test]
    fn email_settings_merge_global_defaults() {
        let c = parse_ok(
            r#"
global:
  resolve_timeout: 1m
  smtp_from: am@example.org
  smtp_smarthost: mail.example.org:587
  smtp_hello: am.example.org
  smtp_auth_username: am
  smtp_auth_password_file: smtp_password
route: {receiver: mail}
receivers:
- name: mail
  email_configs:
  - to: ops@example.org
    headers: {subject: 'Hi {{ .Status }}', x-team: ops}
  - to: b@example.org
    from: other@example.org
    smarthost: 'smtps.example.org:465'
    auth_username: u
    auth_password: p
    send_resolved: yes
    html: '<b>x</b>'
    text: 'x'
    timeout: 1m
  - to: c@example.org
    smarthost: '[::1]:25'
    require_tls: false
    hello: me
    auth_identity: am
    tls_config:
      ca_file: ca.pem
      cert_file: /etc/am/client.pem
      key_file: client.key
      server_name: mail
      insecure_skip_verify: true
      min_version: TLS12
      max_version: TLS13
"#,
        );
        assert_eq!(c.global.resolve_timeout, Duration::from_secs(60));
        let mail = c.receiver("mail").unwrap();
        let [a, b, d] = mail.email.as_slice() else {
            panic!("{mail:?}");
        };
        assert!(!a.send_resolved);
        assert_eq!(a.from, "am@example.org");
        assert_eq!(
            (a.smarthost_host.as_str(), a.smarthost_port),
            ("mail.example.org", 587)
        );
        assert_eq!(a.hello, "am.example.org");
        assert_eq!(a.auth_username.as_deref(), Some("am"));
        // Read from the file, relative to the configuration's directory, newline removed.
        assert_eq!(a.auth_password.as_deref(), Some("hunter2"));
        assert_eq!(a.security, SmtpSecurity::StartTls);
        assert_eq!(a.timeout, DEFAULT_EMAIL_TIMEOUT);
        assert_eq!(
            a.headers,
            BTreeMap::from([
                ("Subject".to_owned(), "Hi {{ .Status }}".to_owned()),
                ("X-Team".to_owned(), "ops".to_owned())
            ])
        );
        assert_eq!((a.html.as_deref(), a.text.as_deref()), (None, None));

        assert!(b.send_resolved);
        assert_eq!(b.from, "other@example.org");
        assert_eq!(b.security, SmtpSecurity::ImplicitTls);
        assert_eq!(b.auth_username.as_deref(), Some("u"));
        // Its own password, not the global file.
        assert_eq!(b.auth_password.as_deref(), Some("p"));
        assert_eq!(b.html.as_deref(), Some("<b>x</b>"));
        assert_eq!(b.text.as_deref(), Some("x"));
        assert_eq!(b.timeout, Duration::from_secs(60));

        assert_eq!((d.smarthost_host.as_str(), d.smarthost_port), ("::1", 25));
        assert_eq!(d.security, SmtpSecurity::Opportunistic);
        assert_eq!(d.hello, "me");
        assert_eq!(d.tls.ca_pem.as_deref(), Some(&b"CA PEM"[..]));
        assert_eq!(d.tls.client_cert_pem.as_deref(), Some(&b"CERT"[..]));
        assert_eq!(d.tls.client_key_pem.as_deref(), Some(&b"KEY"[..]));
        assert_eq!(d.tls.server_name.as_deref(), Some("mail"));
        assert!(d.tls.insecure_skip_verify);
        assert_eq!(d.tls.min_version, Some(TlsVersion::Tls12));
        assert_eq!(d.tls.max_version, Some(TlsVersion::Tls13));
    }

    #[test]
    fn webhook_settings_and_http_config() {
        let c = parse_ok(
            r#"
global:
  http_config:
    bearer_token_file: token
    follow_redirects: false
    enable_http2: false
    proxy_url: http://proxy:3128
route: {receiver: hooks}
receivers:
- name: hooks
  webhook_configs:
  - url: https://hooks.example.org/a
  - url: http://127.0.0.1:9000/b
    send_resolved: false
    max_alerts: 5
    http_config:
      basic_auth: {username: u, password: p}
  - url_file: url
    http_config:
      authorization: {credentials: abc}
      tls_config: {insecure_skip_verify: true}
    headers: {X-Env: prod}
    hmac_secret_file: /secrets/hmac
    timeout: 2s
  - url: https://h/c
    http_config:
      authorization: {type: Token, credentials_file: token}
    hmac_secret: inline
  - url: https://h/d
    http_config:
      basic_auth: {username: u, password_file: smtp_password}
  - url: https://h/e
    http_config: {}
"#,
        );
        let hooks = &c.receiver("hooks").unwrap().webhook;
        assert_eq!(hooks.len(), 6);
        let a = &hooks[0];
        assert!(a.send_resolved);
        assert_eq!(a.max_alerts, 0);
        assert_eq!(a.timeout, DEFAULT_WEBHOOK_TIMEOUT);
        // No http_config of its own: the global one, whole.
        assert_eq!(a.http.authorization.as_deref(), Some("Bearer t0ken"));
        assert!(!a.http.follow_redirects);
        assert_eq!(a.http.proxy_url.as_deref(), Some("http://proxy:3128"));
        assert!(a.headers.is_empty() && a.hmac_secret.is_none());
        let b = &hooks[1];
        assert!(!b.send_resolved);
        assert_eq!(b.max_alerts, 5);
        assert_eq!(
            b.http.basic_auth,
            Some(("u".to_owned(), Some("p".to_owned())))
        );
        // Its own http_config replaces the global one: redirects followed by default.
        assert!(b.http.follow_redirects && b.http.authorization.is_none());
        let d = &hooks[2];
        assert_eq!(d.url, "https://hooks.example.org/from-file");
        assert_eq!(d.http.authorization.as_deref(), Some("Bearer abc"));
        assert!(d.http.tls.insecure_skip_verify);
        assert_eq!(d.headers.get("X-Env").map(String::as_str), Some("prod"));
        assert_eq!(d.hmac_secret.as_deref(), Some("k3y"));
        assert_eq!(d.timeout, Duration::from_secs(2));
        assert_eq!(hooks[3].http.authorization.as_deref(), Some("Token t0ken"));
        assert_eq!(hooks[3].hmac_secret.as_deref(), Some("inline"));
        assert_eq!(
            hooks[4].http.basic_auth,
            Some(("u".to_owned(), Some("hunter2".to_owned())))
        );
        assert_eq!(hooks[5].http, default_http_config());
    }

    #[test]
    fn routes_inherit_and_match() {
        let c = parse_ok(&format!(
            r#"
route:
  receiver: r
  group_by: [alertname]
  group_wait: 10s
  group_interval: 1m
  repeat_interval: 2h
  routes:
  - match: {{team: db}}
    match_re: {{severity: 'critical|page'}}
    matchers: ['env=~"prod|stage"', 'x!="", y!~"z"']
    receiver: s
    continue: true
    group_by: ['...']
    mute_time_intervals: [nights]
  - matchers: ['{{team="db"}}']
    group_by: []
    active_time_intervals: [days]
    routes:
    - {{}}
time_intervals:
- name: days
  time_intervals: [{{times: [{{start_time: '08:00', end_time: '20:00'}}]}}]
mute_time_intervals:
- name: nights
  time_intervals: [{{times: [{{start_time: '20:00', end_time: '24:00'}}]}}]
{RECEIVERS}"#
        ));
        let nodes = c.route.nodes();
        assert_eq!(nodes.len(), 4);
        let first = &nodes[1];
        assert_eq!(
            first.key,
            r#"{}/{env=~"prod|stage",severity=~"^(?:critical|page)$",team="db",x!="",y!~"z"}"#
        );
        assert!(first.continue_matching && first.opts.group_by_all);
        assert_eq!(first.opts.group_wait, Duration::from_secs(10));
        assert_eq!(first.opts.mute_time_intervals, vec!["nights"]);
        let second = &nodes[2];
        assert_eq!(second.opts.receiver, "r");
        // `group_by: []` inherits.
        assert_eq!(
            second.opts.group_by,
            BTreeSet::from(["alertname".to_owned()])
        );
        assert!(!second.opts.group_by_all);
        assert_eq!(second.opts.active_time_intervals, vec!["days"]);
        assert_eq!(nodes[3].key, r#"{}/{team="db"}/{}"#);
        let alert = labels(&[
            ("team", "db"),
            ("severity", "page"),
            ("env", "prod"),
            ("x", "1"),
        ]);
        let matched: Vec<&str> = c
            .route
            .matching_routes(&alert)
            .iter()
            .map(|n| n.key.as_str())
            .collect();
        assert_eq!(matched, vec![first.key.as_str(), r#"{}/{team="db"}/{}"#]);
        // The inherited `group_by: [alertname]`; the alert has no such label.
        assert_eq!(nodes[3].group_key(&alert), r#"{}/{team="db"}/{}:{}"#);
        assert_eq!(
            first.group_key(&alert),
            format!(
                "{}:{{env=\"prod\", severity=\"page\", team=\"db\", x=\"1\"}}",
                first.key
            )
        );
        // Time intervals: `days` is 08:00–20:00 UTC, `nights` 20:00–24:00 UTC.
        let at = |t: &str| t.parse::<jiff::Timestamp>().unwrap().as_millisecond();
        assert!(c.route_muted(first, at("2024-01-01T21:00:00Z")));
        assert!(!c.route_muted(first, at("2024-01-01T12:00:00Z")));
        assert!(!c.route_muted(second, at("2024-01-01T12:00:00Z")));
        assert!(c.route_muted(second, at("2024-01-01T21:00:00Z")));
        assert!(!c.route_muted(c.route.root(), at("2024-01-01T21:00:00Z")));
    }

    #[test]
    fn inhibit_rules_from_new_and_legacy_keys() {
        let c = parse_ok(&format!(
            r#"
route: {{receiver: r}}
inhibit_rules:
- source_matchers: [severity="critical"]
  target_matchers: ['severity=~"warning|info"']
  equal: [alertname, cluster]
- source_match: {{alertname: NodeDown}}
  source_match_re: {{job: 'node.*'}}
  target_match: {{job: node}}
  target_match_re: {{alertname: '(Disk|CPU).*'}}
  equal: [instance]
- ~
{RECEIVERS}"#
        ));
        assert_eq!(c.inhibit_rules.len(), 2);
        let inh = c.inhibitor();
        let critical = labels(&[
            ("severity", "critical"),
            ("alertname", "A"),
            ("cluster", "c"),
        ]);
        let warning = labels(&[
            ("severity", "warning"),
            ("alertname", "A"),
            ("cluster", "c"),
        ]);
        assert!(inh.is_inhibited(&warning, [&critical].into_iter()));
        let down = labels(&[
            ("alertname", "NodeDown"),
            ("job", "node-exp"),
            ("instance", "h"),
        ]);
        let disk = labels(&[
            ("alertname", "DiskFull"),
            ("job", "node"),
            ("instance", "h"),
        ]);
        assert!(inh.is_inhibited(&disk, [&down].into_iter()));
        assert_eq!(
            c.inhibit_rules[1].equal,
            BTreeSet::from(["instance".to_owned()])
        );
    }

    #[test]
    fn templates_and_time_intervals() {
        let c = parse_ok(&format!(
            r#"
templates: ['tmpl/*.tmpl', /abs/x.tmpl]
route: {{receiver: r}}
time_intervals:
- name: office
  time_intervals:
  - weekdays: ['Monday:Friday']
    days_of_month: ['1:15', '-1']
    months: ['january:march', 12]
    years: [2024]
    location: Europe/Paris
  - weekdays:
  - {{}}
{RECEIVERS}"#
        ));
        assert_eq!(
            c.templates,
            vec![
                PathBuf::from("/etc/am/tmpl/*.tmpl"),
                PathBuf::from("/abs/x.tmpl")
            ]
        );
        let office = &c.time_intervals["office"];
        assert_eq!(office.len(), 3);
        assert_eq!(office[0].weekdays.as_ref().map(Vec::len), Some(1));
        assert_eq!(office[0].days_of_month.as_ref().map(Vec::len), Some(2));
        assert_eq!(office[0].months.as_ref().map(Vec::len), Some(2));
        assert!(office[0].location.is_some());
        // `weekdays:` (null) restricts nothing, like `{}`.
        assert_eq!(office[1], TimeInterval::default());
        assert_eq!(office[2], TimeInterval::default());
    }

    #[test]
    fn errors_name_the_place_and_the_field() {
        let cases: Vec<(String, &str)> = vec![
            (
                format!("route: {{receiver: r}}\n{RECEIVERS}bogus: 1\n"),
                "5:1: bogus: field bogus not found in type config.Config",
            ),
            (
                format!("route:\n  receiver: r\n  grop_by: [a]\n{RECEIVERS}"),
                "3:3: route.grop_by: field grop_by not found in type config.Route",
            ),
            (
                RECEIVERS.to_owned(),
                "1:1: route: no route provided in config",
            ),
            (
                format!("route:\n  group_by: [a]\n{RECEIVERS}"),
                "2:3: route.receiver: root route must specify a default receiver",
            ),
            (
                format!("route:\n  receiver: r\n  matchers: [a=b]\n{RECEIVERS}"),
                "2:3: route: root route must not have any matchers",
            ),
            (
                format!("route:\n  receiver: r\n  continue: true\n{RECEIVERS}"),
                "3:3: route.continue: cannot have continue in root route",
            ),
            (
                format!("route:\n  receiver: r\n  routes:\n  - receiver: nope\n{RECEIVERS}"),
                "4:15: route.routes[0].receiver: undefined receiver \"nope\" used in route",
            ),
            (
                format!(
                    "route:\n  receiver: r\n  routes:\n  - mute_time_intervals: [x]\n{RECEIVERS}"
                ),
                "4:27: route.routes[0].mute_time_intervals[0]: undefined time interval \"x\" \
                 used in route",
            ),
            (
                format!("route:\n  receiver: r\n  group_by: ['...', a]\n{RECEIVERS}"),
                "3:13: route.group_by: cannot have wildcard group_by (`...`) and other other \
                 labels at the same time",
            ),
            (
                format!("route:\n  receiver: r\n  group_by: [a, b, a]\n{RECEIVERS}"),
                "3:20: route.group_by: duplicated label \"a\" in group_by",
            ),
            (
                format!("route:\n  receiver: r\n  group_by: [a.b]\n{RECEIVERS}"),
                "3:14: route.group_by: invalid label name \"a.b\" in group_by list",
            ),
            (
                format!("route:\n  receiver: r\n  repeat_interval: 0s\n{RECEIVERS}"),
                "3:20: route.repeat_interval: repeat_interval cannot be zero",
            ),
            (
                format!("route:\n  receiver: r\n  group_interval: 0\n{RECEIVERS}"),
                "3:19: route.group_interval: group_interval cannot be zero",
            ),
            (
                format!("route:\n  receiver: r\n  group_wait: 1x\n{RECEIVERS}"),
                "3:15: route.group_wait: not a valid duration string: \"1x\"",
            ),
            (
                format!(
                    "route:\n  receiver: r\n  routes:\n  - matchers: ['a=\"b']\n{RECEIVERS}"
                ),
                "4:16: route.routes[0].matchers[0]: matcher value contains unescaped double \
                 quote: \"b",
            ),
            (
                format!("route:\n  receiver: r\n  routes:\n  - match: {{a-b: c}}\n{RECEIVERS}"),
                "4:13: route.routes[0].match.a-b: invalid label name \"a-b\"",
            ),
            (
                format!("route:\n  receiver: r\n  routes:\n  - match_re: {{a: '(x'}}\n{RECEIVERS}"),
                "4:19: route.routes[0].match_re.a: error parsing regexp: unclosed group",
            ),
            (
                format!("route:\n  receiver: r\n  routes:\n  - match_re: {{a: }}\n{RECEIVERS}"),
                "4:16: route.routes[0].match_re.a: invalid regexp value for \"a\"",
            ),
            (
                format!("route:\n  receiver: r\n  routes:\n  - continue: 'yes'\n{RECEIVERS}"),
                "4:15: route.routes[0].continue: cannot unmarshal !!str `yes` into bool",
            ),
            (
                format!("route:\n  receiver: r\n  routes: [~]\n{RECEIVERS}"),
                "3:12: route.routes[0]: a route must be a mapping, not null",
            ),
            (
                "route: {receiver: r}\nreceivers:\n- name: r\n- name: r\n".to_owned(),
                "4:9: receivers[1].name: notification config name \"r\" is not unique",
            ),
            (
                "route: {receiver: r}\nreceivers:\n- name: r\n- email_configs: []\n".to_owned(),
                "4:3: receivers[1]: missing name in receiver",
            ),
            (
                "route: {receiver: r}\nreceivers:\n- name: r\n  slack_configs:\n  - channel: x\n"
                    .to_owned(),
                "4:3: receivers[0].slack_configs: receiver \"r\": slack_configs is not \
                 supported by Redline; use a webhook",
            ),
            (
                "route: {receiver: r}\nreceivers:\n- name: r\n  pagerduty_configs: [{}]\n"
                    .to_owned(),
                "4:3: receivers[0].pagerduty_configs: receiver \"r\": pagerduty_configs is not \
                 supported by Redline; use a webhook",
            ),
            (
                "route: {receiver: r}\nreceivers:\n- name: r\n  webhook_configs: [{}]\n"
                    .to_owned(),
                "4:21: receivers[0].webhook_configs[0]: missing URL in webhook config",
            ),
            (
                "route: {receiver: r}\nreceivers:\n- name: r\n  webhook_configs:\n  - url: 'ftp://x'\n"
                    .to_owned(),
                "5:10: receivers[0].webhook_configs[0].url: unsupported scheme \"ftp\" for URL",
            ),
            (
                "route: {receiver: r}\nreceivers:\n- name: r\n  webhook_configs:\n  - url: 'http://h/'\n    max_alerts: many\n"
                    .to_owned(),
                "6:17: receivers[0].webhook_configs[0].max_alerts: cannot unmarshal !!str `many` \
                 into uint64",
            ),
            (
                "route: {receiver: r}\nreceivers:\n- name: r\n  email_configs:\n  - to: a@b\n"
                    .to_owned(),
                "5:5: receivers[0].email_configs[0]: no global SMTP smarthost set",
            ),
            (
                "global: {smtp_smarthost: 'h:25'}\nroute: {receiver: r}\nreceivers:\n- name: r\n  email_configs:\n  - to: a@b\n"
                    .to_owned(),
                "6:5: receivers[0].email_configs[0]: no global SMTP from set",
            ),
            (
                "global: {smtp_smarthost: 'h', smtp_from: a@b}\nroute: {receiver: r}\nreceivers:\n- name: r\n  email_configs:\n  - to: a@b\n"
                    .to_owned(),
                "1:26: global.smtp_smarthost: address h: missing port in address",
            ),
            (
                "global: {smtp_smarthost: 'h:25', smtp_from: a@b}\nroute: {receiver: r}\nreceivers:\n- name: r\n  email_configs:\n  - from: x@y\n"
                    .to_owned(),
                "6:5: receivers[0].email_configs[0]: missing to address in email config",
            ),
            (
                "global: {smtp_smarthost: 'h:25', smtp_from: a@b}\nroute: {receiver: r}\nreceivers:\n- name: r\n  email_configs:\n  - to: x@y\n    auth_secret: s\n"
                    .to_owned(),
                "7:18: receivers[0].email_configs[0].auth_secret: CRAM-MD5 authentication \
                 (auth_secret) is not supported by Redline; use auth_username and auth_password",
            ),
            (
                "global: {smtp_smarthost: 'h:25', smtp_from: a@b}\nroute: {receiver: r}\nreceivers:\n- name: r\n  email_configs:\n  - to: x@y\n    auth_password_file: missing\n"
                    .to_owned(),
                "7:25: receivers[0].email_configs[0].auth_password_file: cannot read \
                 /etc/am/missing: no such file",
            ),
            (
                "global: {smtp_smarthost: 'h:25', smtp_from: a@b}\nroute: {receiver: r}\nreceivers:\n- name: r\n  email_configs:\n  - to: x@y\n    headers: {to: a, To: b}\n"
                    .to_owned(),
                "7:22: receivers[0].email_configs[0].headers.To: duplicate header \"To\" in \
                 email config",
            ),
            (
                "global:\n  smtp_smarthost: 'h:25'\n  smtp_from: a@b\n  smtp_auth_username: u\n  smtp_auth_identity: v\nroute: {receiver: r}\nreceivers:\n- name: r\n  email_configs: [{to: x@y}]\n"
                    .to_owned(),
                "5:23: global.smtp_auth_identity: an auth_identity other than the \
                 auth_username is not supported by Redline",
            ),
            (
                "global:\n  smtp_auth_password: a\n  smtp_auth_password_file: b\nroute: {receiver: r}\nreceivers: [{name: r}]\n"
                    .to_owned(),
                "3:28: global.smtp_auth_password_file: at most one of smtp_auth_password & \
                 smtp_auth_password_file must be configured",
            ),
            (
                "global:\n  http_config: {oauth2: {client_id: a}}\nroute: {receiver: r}\nreceivers: [{name: r}]\n"
                    .to_owned(),
                "2:17: global.http_config.oauth2: oauth2 is not supported by Redline; use \
                 authorization or basic_auth",
            ),
            (
                "global:\n  http_config: {authorization: {type: basic}}\nroute: {receiver: r}\nreceivers: [{name: r}]\n"
                    .to_owned(),
                "2:17: global.http_config.authorization: authorization type cannot be set to \
                 \"basic\", use \"basic_auth\" instead",
            ),
            (
                "global:\n  http_config: {tls_config: {cert_file: c}}\nroute: {receiver: r}\nreceivers: [{name: r}]\n"
                    .to_owned(),
                "2:41: global.http_config.tls_config.cert_file: client cert file \"c\" \
                 specified without client key file",
            ),
            (
                "global:\n  http_config: {tls_config: {min_version: SSL3}}\nroute: {receiver: r}\nreceivers: [{name: r}]\n"
                    .to_owned(),
                "2:43: global.http_config.tls_config.min_version: unknown TLS version: SSL3",
            ),
            (
                "route: {receiver: r}\nreceivers:\n- name: r\n  webhook_configs:\n  - url: http://h/\n    headers: {Host: x}\n"
                    .to_owned(),
                "6:15: receivers[0].webhook_configs[0].headers.Host: header \"Host\" is set by \
                 Redline and cannot be configured",
            ),
            (
                "route: {receiver: r}\nreceivers:\n- name: r\n  webhook_configs:\n  - url: http://h/\n    hmac_secret: a\n    hmac_secret_file: b\n"
                    .to_owned(),
                "7:23: receivers[0].webhook_configs[0].hmac_secret_file: at most one of \
                 hmac_secret & hmac_secret_file must be configured",
            ),
            (
                "route: {receiver: r}\nreceivers:\n- name: r\n  webhook_configs:\n  - url: http://h/\n    hmac_secret_file: empty\n"
                    .to_owned(),
                "6:23: receivers[0].webhook_configs[0].hmac_secret_file: the HMAC secret must \
                 not be empty",
            ),
            (
                "route: {receiver: r}\nreceivers:\n- name: r\n  webhook_configs:\n  - url: http://h/\n    timeout: 0s\n"
                    .to_owned(),
                "6:14: receivers[0].webhook_configs[0].timeout: timeout must be greater than \
                 zero",
            ),
            (
                "route: {receiver: r}\nreceivers:\n- name: r\n  webhook_configs:\n  - url: http://h/\n    url_file: url\n"
                    .to_owned(),
                "6:15: receivers[0].webhook_configs[0].url_file: at most one of url & url_file \
                 must be configured",
            ),
            (
                "route: {receiver: r}\nreceivers:\n- name: r\n  webhook_configs:\n  - url_file: latin1\n"
                    .to_owned(),
                "5:15: receivers[0].webhook_configs[0].url_file: latin1 is not valid UTF-8",
            ),
            (
                format!("route: {{receiver: r}}\ninhibit_rules:\n- equal: [a-b]\n{RECEIVERS}"),
                "3:11: inhibit_rules[0].equal: \"a-b\" is not a valid label name",
            ),
            (
                format!("route: {{receiver: r}}\ninhibit_rules:\n- source_matcher: [a=b]\n{RECEIVERS}"),
                "3:3: inhibit_rules[0].source_matcher: field source_matcher not found in type \
                 config.InhibitRule",
            ),
            (
                format!(
                    "route: {{receiver: r}}\ntime_intervals:\n- name: t\n  time_intervals:\n  - weekdays: [funday]\n{RECEIVERS}"
                ),
                "5:16: time_intervals[0].time_intervals[0].weekdays[0]: funday is not a valid \
                 weekday",
            ),
            (
                format!(
                    "route: {{receiver: r}}\ntime_intervals:\n- name: t\n  time_intervals:\n  - times: [{{start_time: '10:00', end_time: '09:00'}}]\n{RECEIVERS}"
                ),
                "5:14: time_intervals[0].time_intervals[0].times[0]: start time cannot be equal \
                 or greater than end time",
            ),
            (
                format!(
                    "route: {{receiver: r}}\ntime_intervals:\n- name: t\n  time_intervals:\n  - location: Nowhere/Town\n{RECEIVERS}"
                ),
                "5:15: time_intervals[0].time_intervals[0].location: unknown time zone \
                 Nowhere/Town",
            ),
            (
                format!(
                    "route: {{receiver: r}}\ntime_intervals:\n- name: t\nmute_time_intervals:\n- name: t\n{RECEIVERS}"
                ),
                "3:9: time_intervals[0].name: time interval \"t\" is not unique",
            ),
            (
                format!("route: {{receiver: r}}\ntime_intervals:\n- time_intervals: []\n{RECEIVERS}"),
                "3:3: time_intervals[0]: missing name in time interval",
            ),
            (
                format!("route: {{receiver: r}}\nroute: {{receiver: s}}\n{RECEIVERS}"),
                "2:1: : yaml: key \"route\" already set in map (at line 1)",
            ),
            (
                "route:\n\treceiver: r\n".to_owned(),
                "2:2: : yaml: tabs disallowed within this context (block indentation)",
            ),
            (
                "- route\n".to_owned(),
                "1:1: : cannot unmarshal !!seq into config.Config",
            ),
            (
                format!("route: {{receiver: r}}\ntemplates: x.tmpl\n{RECEIVERS}"),
                "2:12: templates: cannot unmarshal !!str `x.tmpl` into []string",
            ),
            (
                format!("global: {{resolve_timeout: [1]}}\nroute: {{receiver: r}}\n{RECEIVERS}"),
                "1:27: global.resolve_timeout: cannot unmarshal !!seq into string",
            ),
            (
                "global: {slack_api_url: 'mailto:x'}\nroute: {receiver: r}\nreceivers: [{name: r}]\n"
                    .to_owned(),
                "1:25: global.slack_api_url: unsupported scheme \"mailto\" for URL",
            ),
        ];
        let mut wrong = Vec::new();
        for (text, want) in cases {
            let got = std::panic::catch_unwind(|| one_error(&text))
                .unwrap_or_else(|_| "(not exactly one error)".to_owned());
            if got != want {
                wrong.push(format!("{text}\n  want {want}\n  got  {got}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
    }

    #[test]
    fn every_error_is_reported_in_file_order() {
        let errors = parse_err(
            "route:\n  receiver: nope\n  group_wait: soon\nreceivers:\n- name: r\n  foo: 1\n",
        );
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec![
                "/etc/am/am.yml:2:13: route.receiver: undefined receiver \"nope\" used in route",
                "/etc/am/am.yml:3:15: route.group_wait: not a valid duration string: \"soon\"",
                "/etc/am/am.yml:6:3: receivers[0].foo: field foo not found in type \
                 config.Receiver",
            ]
        );
        let all = ConfigErrors { errors }.to_string();
        assert_eq!(all.lines().count(), 3);
    }

    #[test]
    fn what_alertmanager_accepts_redline_accepts() {
        for text in [
            // Empty lists of unsupported integrations configure nothing.
            "route: {receiver: r}\nreceivers:\n- name: r\n  slack_configs: []\n",
            // Settings of unsupported integrations in `global` are accepted and unused.
            "global: {slack_api_url: 'https://hooks.slack.com/x', opsgenie_api_key: k}\nroute: {receiver: r}\nreceivers: [{name: r}]\n",
            // Booleans as yaml.v2 reads them; matchers on the root that are empty lists.
            "route: {receiver: r, matchers: [], match: {}, continue: no}\nreceivers: [{name: r}]\n",
            // Numbers as strings, `0` as a duration, `group_wait: 0s`.
            "route: {receiver: 1, group_wait: 0}\nreceivers: [{name: 1}]\n",
            // Anchors and merge keys inside the known keys.
            "route: {receiver: r}\nreceivers:\n- name: r\n  webhook_configs:\n  - &h {url: 'http://h/', max_alerts: 0x10}\n  - <<: *h\n    send_resolved: off\n",
            // Only the first document counts.
            "route: {receiver: r}\nreceivers: [{name: r}]\n---\nbogus: 1\n",
            // An auth_identity equal to the user name means the same with or without it.
            "global: {smtp_smarthost: 'h:smtp', smtp_from: a@b, smtp_auth_username: u}\nroute: {receiver: r}\nreceivers:\n- name: r\n  email_configs: [{to: x@y, auth_identity: u}]\n",
        ] {
            parse_ok(text);
        }
        let c = parse_ok(
            "route: {receiver: r}\nreceivers:\n- name: r\n  webhook_configs:\n  - &h {url: 'http://h/', max_alerts: 0x10}\n  - <<: *h\n    send_resolved: off\n",
        );
        let hooks = &c.receivers[0].webhook;
        assert_eq!(hooks[0].max_alerts, 16);
        assert_eq!(hooks[1].max_alerts, 16);
        assert!(!hooks[1].send_resolved);
    }

    #[test]
    fn never_panics_on_truncated_or_mangled_input() {
        let text = r#"
global:
  smtp_smarthost: 'mail:25'
  smtp_from: a@b
  http_config: {authorization: {credentials: x}, tls_config: {ca_file: ca.pem}}
route:
  receiver: r
  group_by: ['...']
  routes:
  - matchers: ['a=~"b|c"', '{d!="e"}']
    match_re: {f: 'g.*'}
    mute_time_intervals: [t]
    continue: true
inhibit_rules: [{source_matchers: [x=y], target_match: {z: w}, equal: [q]}]
time_intervals:
- name: t
  time_intervals: [{times: [{start_time: '01:00', end_time: '02:00'}], weekdays: ['monday:friday'], days_of_month: ['-3:-1'], months: [may], years: ['2020:2030'], location: UTC}]
receivers:
- name: r
  email_configs: [{to: x@y, headers: {a: b}}]
  webhook_configs: [{url: 'http://h:1/', headers: {X-A: b}, hmac_secret: k}]
"#;
        parse_ok(text);
        let chars: Vec<char> = text.chars().collect();
        for cut in 0..chars.len() {
            let prefix: String = chars[..cut].iter().collect();
            let _ = parse(Path::new("/etc/am/am.yml"), &prefix, &files);
            // Drop one character instead.
            let mangled: String = chars
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != cut)
                .map(|(_, c)| c)
                .collect();
            let _ = parse(Path::new("/etc/am/am.yml"), &mangled, &files);
        }
        // An alias bomb is refused, not expanded.
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let errors = parse_err(&bomb);
        assert!(
            errors
                .iter()
                .any(|e| e.message.contains("expands to more than")),
            "{errors:?}"
        );
    }

    #[test]
    fn helpers_match_go() {
        assert_eq!(
            split_host_port("h:25"),
            Ok(("h".to_owned(), "25".to_owned()))
        );
        assert_eq!(
            split_host_port("[::1]:25"),
            Ok(("::1".to_owned(), "25".to_owned()))
        );
        assert_eq!(
            split_host_port("::1:25").unwrap_err(),
            "address ::1:25: too many colons in address"
        );
        assert_eq!(
            split_host_port("[::1]").unwrap_err(),
            "address [::1]: missing port in address"
        );
        assert_eq!(
            split_host_port("[::1").unwrap_err(),
            "address [::1: missing ']' in address"
        );
        assert_eq!(check_http_url("https://h.example:8443/x?y#z"), Ok(()));
        assert_eq!(check_http_url("HTTP://user:pw@h/"), Ok(()));
        assert_eq!(check_http_url("http://[::1]:80/"), Ok(()));
        assert_eq!(
            check_http_url("http://h:x/").unwrap_err(),
            "invalid port \":x\" after host"
        );
        assert_eq!(
            check_http_url("h:9093/x").unwrap_err(),
            "unsupported scheme \"h\" for URL"
        );
        assert_eq!(
            check_http_url("//h/x").unwrap_err(),
            "unsupported scheme \"\" for URL"
        );
        assert_eq!(check_http_url(":x").unwrap_err(), "missing protocol scheme");
        assert_eq!(
            check_http_url("http:x").unwrap_err(),
            "missing host for URL"
        );
        assert_eq!(
            check_http_url("http://a b/").unwrap_err(),
            "invalid character \" \" in host name"
        );
        assert_eq!(
            check_http_url("http://h/\n").unwrap_err(),
            "net/url: invalid control character in URL"
        );
        assert_eq!(canonical_mime_header_key("x-team-NAME"), "X-Team-Name");
        assert_eq!(canonical_mime_header_key("subject"), "Subject");
        assert_eq!(canonical_mime_header_key("bad key"), "bad key");
        assert_eq!(check_header("X-A", "b"), Ok(()));
        assert!(check_header("X A", "b").is_err());
        assert!(check_header("X-A", "b\r\nInjected: 1").is_err());
        assert!(check_header("content-length", "1").is_err());
    }

    #[test]
    fn check_report_like_amtool() {
        let dir =
            std::env::temp_dir().join(format!("redline-amconfig-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.yml");
        let bad = dir.join("bad.yml");
        std::fs::write(
            &good,
            "templates: ['*.tmpl']\nroute: {receiver: r}\ninhibit_rules: [{equal: [a]}]\nreceivers: [{name: r}, {name: s}]\n",
        )
        .unwrap();
        std::fs::write(&bad, "route: {receiver: x}\nreceivers: [{name: r}]\n").unwrap();
        let report = check_files(&[good.clone(), bad.clone(), dir.join("missing.yml")]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!report.ok);
        let want = format!(
            "Checking '{g}'  SUCCESS\nFound:\n - global config\n - route\n - 1 inhibit rules\n \
             - 2 receivers\n - 1 templates\n   - {d}/*.tmpl\n\n\
             Checking '{b}'  FAILED: 1 error\n  {b}:1:19: route.receiver: undefined receiver \
             \"x\" used in route\n\n\
             Checking '{m}'  FAILED: 1 error\n  {m}: cannot read the file: No such file or \
             directory (os error 2)\n\n\
             failed to validate 2 file(s)\n",
            g = good.display(),
            b = bad.display(),
            d = dir.display(),
            m = dir.join("missing.yml").display(),
        );
        assert_eq!(report.text, want);
        assert_eq!(report.to_string(), want);
    }
}
