//! Rule files in Prometheus' format (`rulefmt`): groups of alerting and recording rules,
//! loaded with `file:line:column` errors.
//!
//! The YAML is walked by hand (see `yaml`) rather than deserialised, so that every problem
//! names where it is, unknown keys included (`field x not found in type rulefmt.RuleNode`, as
//! Prometheus words it). Validation is Prometheus' `rulefmt` (2.42), plus group `labels`
//! (Prometheus 3): group names non-empty and unique per file; exactly one of `alert` and
//! `record`; `expr` set and valid PromQL; `record` a valid metric name; no `for`,
//! `keep_firing_for` or `annotations` on recording rules; valid label and annotation names;
//! templates of alerting rules parse; durations in Prometheus' syntax.
//!
//! Loading is partial: a bad rule is reported and skipped while the rest of its group loads; a
//! group with a bad group-level field (name, interval, limit, labels, unknown key) is reported
//! and skipped while the other groups load; a file that is not YAML is reported with its
//! position while the other files load. Messages follow Prometheus' (`group "g", rule 2,
//! "Name": could not parse expression: 1:7: parse error: …`), prefixed by the position in the
//! file. For an invalid expression the position is that of the PromQL error inside the file:
//! exact for one-line plain or quoted values and block scalars (see `yaml::value_position`).
//!
//! Called by the collector's rule manager (at start and on reload), by `redline-collector
//! rules check` and by the unit-test runner. Reading files is the only I/O; [`parse_file`] is
//! pure.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use marked_yaml::Node;
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use promql_parser::parser::Expr;

use super::template::Template;
use super::yaml::{self, Pos};
use crate::alert::state::Timing;

/// The rule groups that loaded, and the problems found in everything else.
#[derive(Debug, Default)]
pub struct Loaded {
    pub groups: Vec<RuleGroup>,
    pub errors: Vec<RuleError>,
}

impl Loaded {
    /// The number of rules that loaded.
    pub fn rule_count(&self) -> usize {
        self.groups.iter().map(|g| g.rules.len()).sum()
    }

    fn extend(&mut self, other: Loaded) {
        self.groups.extend(other.groups);
        self.errors.extend(other.errors);
    }
}

/// A problem in a rule file, at a 1-based line and column (both 0 when it concerns the whole
/// file, such as a file that cannot be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

impl std::error::Error for RuleError {}

/// A group of rules evaluated together, in order, at one interval.
#[derive(Debug, Clone)]
pub struct RuleGroup {
    pub file: PathBuf,
    pub name: String,
    /// `interval`; `None` (or `0s`) means the configured global evaluation interval.
    pub interval: Option<Duration>,
    /// `limit`: the most series a recording rule, or alerts an alerting rule, may produce per
    /// evaluation; 0 means no limit.
    pub limit: usize,
    /// `labels` (Prometheus 3): added to every rule's output; rule labels override them.
    pub labels: BTreeMap<String, String>,
    pub rules: Vec<Rule>,
    /// Where the group starts in its file (1-based).
    pub line: usize,
    pub column: usize,
}

impl RuleGroup {
    /// The group's interval, or `default` when it has none.
    pub fn interval_or(&self, default: Duration) -> Duration {
        self.interval.unwrap_or(default)
    }
}

/// One rule, validated and with its expression parsed.
#[derive(Debug, Clone)]
pub struct Rule {
    pub kind: RuleKind,
    pub expr: Expr,
    /// The expression as written in the file.
    pub expr_text: String,
    /// Where the rule starts in its file (1-based).
    pub line: usize,
    pub column: usize,
    /// The rule's 1-based position in its group, as Prometheus counts in messages.
    pub index: usize,
}

#[derive(Debug, Clone)]
pub enum RuleKind {
    Alerting {
        name: String,
        for_ms: i64,
        keep_firing_for_ms: i64,
        /// Label templates, expanded per alert with `$labels`, `$value`, `$externalLabels`.
        labels: BTreeMap<String, Template>,
        annotations: BTreeMap<String, Template>,
        /// The label and annotation templates as written (for the rules API).
        labels_text: BTreeMap<String, String>,
        annotations_text: BTreeMap<String, String>,
    },
    Recording {
        name: String,
        labels: BTreeMap<String, String>,
    },
}

impl Rule {
    /// The alert name or the recorded metric name.
    pub fn name(&self) -> &str {
        match &self.kind {
            RuleKind::Alerting { name, .. } | RuleKind::Recording { name, .. } => name,
        }
    }

    pub fn is_alerting(&self) -> bool {
        matches!(self.kind, RuleKind::Alerting { .. })
    }

    /// `for` and `keep_firing_for` of an alerting rule (zero for a recording rule).
    pub fn timing(&self) -> Timing {
        match &self.kind {
            RuleKind::Alerting {
                for_ms,
                keep_firing_for_ms,
                ..
            } => Timing {
                for_ms: *for_ms,
                keep_firing_for_ms: *keep_firing_for_ms,
            },
            RuleKind::Recording { .. } => Timing::default(),
        }
    }
}

/// Whether a file is a rule file when a directory is loaded: `*.yml` or `*.yaml`, except unit
/// tests (`*_test.yml`, `*_test.yaml`), which live beside the rules they test.
fn is_rule_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let stem = name
        .strip_suffix(".yml")
        .or_else(|| name.strip_suffix(".yaml"));
    stem.is_some_and(|s| !s.ends_with("_test"))
}

/// Expands `paths`: files as given, directories to their rule files (`*.yml`, `*.yaml`, not
/// `*_test.yml`; not recursive), sorted by name. Paths that cannot be listed are reported.
pub fn rule_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<RuleError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let whole = |file: &Path, message: String| RuleError {
        file: file.to_path_buf(),
        line: 0,
        column: 0,
        message,
    };
    for path in paths {
        if path.is_dir() {
            match std::fs::read_dir(path) {
                Ok(entries) => {
                    let mut found: Vec<PathBuf> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.is_file() && is_rule_file(p))
                        .collect();
                    found.sort();
                    files.extend(found);
                }
                Err(e) => errors.push(whole(path, format!("cannot list the directory: {e}"))),
            }
        } else {
            files.push(path.clone());
        }
    }
    (files, errors)
}

/// Loads every rule file among `paths` (files and directories, see [`rule_files`]).
pub fn load_paths(paths: &[PathBuf]) -> Loaded {
    let (files, errors) = rule_files(paths);
    let mut loaded = Loaded {
        groups: Vec::new(),
        errors,
    };
    for file in files {
        loaded.extend(load_file(&file));
    }
    loaded
}

/// Reads and parses one rule file.
pub fn load_file(path: &Path) -> Loaded {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_file(path, &text),
        Err(e) => Loaded {
            groups: Vec::new(),
            errors: vec![RuleError {
                file: path.to_path_buf(),
                line: 0,
                column: 0,
                message: format!("cannot read the file: {e}"),
            }],
        },
    }
}

/// Parses the text of a rule file named `path` (used only in messages).
pub fn parse_file(path: &Path, text: &str) -> Loaded {
    let mut cx = Cx {
        file: path,
        text,
        errors: Vec::new(),
    };
    let groups = cx.file_groups();
    Loaded {
        groups,
        errors: cx.errors,
    }
}

/// Parses a duration in Prometheus' syntax (`1h30m`, `5m`, `90s`, `1d`, `0`), to ms. Units
/// from largest to smallest, each at most once: `y` (365d), `w`, `d`, `h`, `m`, `s`, `ms`.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    match s {
        "0" => return Ok(0),
        "" => return Err("empty duration string".to_owned()),
        _ => {}
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3600 * 1000),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("m", 60 * 1000),
        ("s", 1000),
        ("ms", 1),
    ];
    let invalid = || format!("not a valid duration string: {s:?}");
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(invalid());
        }
        let n: i64 = s[start..i].parse().map_err(|_| "duration out of range")?;
        let rest = &s[i..];
        // "ms" must be tried before "m".
        let unit = UNITS
            .iter()
            .enumerate()
            .skip(next_unit)
            .filter(|(_, (u, _))| rest.starts_with(u))
            .max_by_key(|(_, (u, _))| u.len())
            .ok_or_else(invalid)?;
        let (index, (name, ms)) = unit;
        // "m" followed by "s" is "ms", never "m" then "s".
        if *name == "m" && rest.starts_with("ms") {
            return Err(invalid());
        }
        total = n
            .checked_mul(*ms)
            .and_then(|v| total.checked_add(v))
            .ok_or("duration out of range")?;
        i += name.len();
        next_unit = index + 1;
    }
    Ok(total)
}

/// Formats ms the way Prometheus prints a duration (`1h30m`, `0s`, `90d`, `2w`).
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".to_owned();
    }
    let (sign, mut ms) = if ms < 0 { ("-", -ms) } else { ("", ms) };
    let mut out = sign.to_owned();
    let units: [(&str, i64, bool); 7] = [
        ("y", 365 * 24 * 3600 * 1000, true),
        ("w", 7 * 24 * 3600 * 1000, true),
        ("d", 24 * 3600 * 1000, false),
        ("h", 3600 * 1000, false),
        ("m", 60 * 1000, false),
        ("s", 1000, false),
        ("ms", 1, false),
    ];
    for (unit, mult, exact) in units {
        if exact && ms % mult != 0 {
            continue;
        }
        let v = ms / mult;
        if v > 0 {
            out.push_str(&format!("{v}{unit}"));
            ms -= v * mult;
        }
    }
    out
}

/// `^[a-zA-Z_][a-zA-Z0-9_]*$`
pub fn is_valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `^[a-zA-Z_:][a-zA-Z0-9_:]*$`
pub fn is_valid_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// The loading context of one file: its name, text, and the errors found so far. The unit-test
/// loader walks its files with the same helpers.
pub(super) struct Cx<'a> {
    pub(super) file: &'a Path,
    pub(super) text: &'a str,
    pub(super) errors: Vec<RuleError>,
}

/// A scalar field that was present, with where its value starts.
pub(super) struct Field<'n> {
    pub(super) value: &'n MarkedScalarNode,
    pub(super) pos: Pos,
}

/// A `map[string]string` entry: key node, value (empty for null), value node (none for null).
pub(super) type MapEntry<'n> = (&'n MarkedScalarNode, String, Option<&'n MarkedScalarNode>);

impl Cx<'_> {
    pub(super) fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.errors.push(RuleError {
            file: self.file.to_path_buf(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
        });
    }

    fn file_groups(&mut self) -> Vec<RuleGroup> {
        let root = match yaml::parse_document(self.text) {
            Ok(Some(root)) => root,
            Ok(None) => return Vec::new(),
            Err((pos, message)) => {
                self.error(pos, message);
                return Vec::new();
            }
        };
        let Some(root) = self.mapping(&root, "rulefmt.RuleGroups") else {
            return Vec::new();
        };
        let mut groups_node = None;
        for (key, value) in root.iter() {
            match key.as_str() {
                "groups" => groups_node = Some(value),
                other => self.error(
                    yaml::scalar_pos(key),
                    format!("field {other} not found in type rulefmt.RuleGroups"),
                ),
            }
        }
        let Some(groups_node) = groups_node else {
            return Vec::new();
        };
        if yaml::node_is_null(groups_node) {
            return Vec::new();
        }
        let Node::Sequence(seq) = groups_node else {
            self.error(
                yaml::node_pos(groups_node),
                yaml::cannot_unmarshal(groups_node, "[]rulefmt.RuleGroup"),
            );
            return Vec::new();
        };
        let mut names = BTreeSet::new();
        let mut groups = Vec::new();
        for node in seq.iter() {
            if let Some(g) = self.group(node, &mut names) {
                groups.push(g);
            }
        }
        groups
    }

    /// The node as a mapping, or an error naming the Go type it should have been.
    pub(super) fn mapping<'n>(
        &mut self,
        node: &'n Node,
        into: &str,
    ) -> Option<&'n MarkedMappingNode> {
        match node {
            Node::Mapping(m) => Some(m),
            other => {
                self.error(yaml::node_pos(other), yaml::cannot_unmarshal(other, into));
                None
            }
        }
    }

    /// A scalar value (`None` for null), or an error.
    pub(super) fn scalar<'n>(
        &mut self,
        node: &'n Node,
        into: &str,
    ) -> Result<Option<Field<'n>>, ()> {
        match node {
            Node::Scalar(s) if yaml::is_null(s) => Ok(None),
            Node::Scalar(s) => Ok(Some(Field {
                value: s,
                pos: yaml::scalar_pos(s),
            })),
            other => {
                self.error(yaml::node_pos(other), yaml::cannot_unmarshal(other, into));
                Err(())
            }
        }
    }

    /// A `map[string]string` (null values become empty strings, as in Go).
    pub(super) fn string_map<'n>(&mut self, node: &'n Node) -> Result<Vec<MapEntry<'n>>, ()> {
        if yaml::node_is_null(node) {
            return Ok(Vec::new());
        }
        let Some(m) = self.mapping(node, "map[string]string") else {
            return Err(());
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (k, v) in m.iter() {
            match self.scalar(v, "string") {
                Ok(Some(f)) => out.push((k, f.value.as_str().to_owned(), Some(f.value))),
                Ok(None) => out.push((k, String::new(), None)),
                Err(()) => ok = false,
            }
        }
        if ok { Ok(out) } else { Err(()) }
    }

    pub(super) fn duration(&mut self, node: &Node) -> Result<i64, ()> {
        match self.scalar(node, "model.Duration")? {
            None => Ok(0),
            Some(f) => parse_duration(f.value.as_str()).map_err(|e| self.error(f.pos, e)),
        }
    }

    fn group(&mut self, node: &Node, names: &mut BTreeSet<String>) -> Option<RuleGroup> {
        let pos = yaml::node_pos(node);
        let m = self.mapping(node, "rulefmt.RuleGroup")?;
        let errors_before = self.errors.len();
        let mut name = String::new();
        let mut interval = None;
        let mut limit = 0usize;
        let mut labels = BTreeMap::new();
        let mut rules_node = None;
        for (key, value) in m.iter() {
            match key.as_str() {
                "name" => {
                    if let Ok(Some(f)) = self.scalar(value, "string") {
                        name = f.value.as_str().to_owned();
                    }
                }
                "interval" => {
                    if let Ok(ms) = self.duration(value) {
                        interval = (ms > 0).then(|| Duration::from_millis(ms.unsigned_abs()));
                    }
                }
                "limit" => {
                    if let Ok(Some(f)) = self.scalar(value, "int") {
                        match f.value.as_str().parse::<i64>() {
                            Ok(n) => limit = usize::try_from(n.max(0)).unwrap_or(usize::MAX),
                            Err(_) => {
                                self.error(f.pos, yaml::cannot_unmarshal(value, "int"));
                            }
                        }
                    }
                }
                "labels" => {
                    if let Ok(pairs) = self.string_map(value) {
                        for (k, v, _) in pairs {
                            let key_name = k.as_str();
                            if !is_valid_label_name(key_name) || key_name == "__name__" {
                                self.error(
                                    yaml::scalar_pos(k),
                                    format!("group {name:?}: invalid label name: {key_name}"),
                                );
                            } else {
                                labels.insert(key_name.to_owned(), v);
                            }
                        }
                    }
                }
                "rules" => rules_node = Some(value),
                other => self.error(
                    yaml::scalar_pos(key),
                    format!("field {other} not found in type rulefmt.RuleGroup"),
                ),
            }
        }
        if name.is_empty() {
            self.error(pos, "Groupname must not be empty");
        } else if !names.insert(name.clone()) {
            self.error(
                pos,
                format!("groupname: \"{name}\" is repeated in the same file"),
            );
        }
        // Group-level problems skip the whole group; its rules are still checked below so
        // that one run reports everything.
        let group_ok = self.errors.len() == errors_before;
        let mut rules = Vec::new();
        if let Some(rules_node) = rules_node
            && !yaml::node_is_null(rules_node)
        {
            match rules_node {
                Node::Sequence(seq) => {
                    for (i, r) in seq.iter().enumerate() {
                        if let Some(rule) = self.rule(&name, i + 1, r) {
                            rules.push(rule);
                        }
                    }
                }
                other => {
                    self.error(
                        yaml::node_pos(other),
                        yaml::cannot_unmarshal(other, "[]rulefmt.RuleNode"),
                    );
                    return None;
                }
            }
        }
        if !group_ok {
            return None;
        }
        Some(RuleGroup {
            file: self.file.to_path_buf(),
            name,
            interval,
            limit,
            labels,
            rules,
            line: pos.line,
            column: pos.column,
        })
    }

    fn rule(&mut self, group: &str, index: usize, node: &Node) -> Option<Rule> {
        let rule_pos = yaml::node_pos(node);
        let Node::Mapping(m) = node else {
            self.error(
                rule_pos,
                format!(
                    "{RULE_PREFIX}{group:?}, rule {index}: {}",
                    yaml::cannot_unmarshal(node, "rulefmt.RuleNode")
                ),
            );
            return None;
        };
        // The name used in messages: the alert's, else the record's, as Prometheus does.
        let name_of = |key: &str| {
            m.get_scalar(key)
                .filter(|s| !yaml::is_null(s))
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default()
        };
        let display_name = match name_of("alert") {
            a if !a.is_empty() => a,
            _ => name_of("record"),
        };
        let prefix = format!("{RULE_PREFIX}{group:?}, rule {index}, {display_name:?}: ");
        let errors_before = self.errors.len();
        let problem = |cx: &mut Self, pos: Pos, msg: String| {
            cx.error(pos, format!("{prefix}{msg}"));
        };

        let mut record: Option<Field> = None;
        let mut alert: Option<Field> = None;
        let mut expr: Option<Field> = None;
        let mut for_ms = 0;
        let mut keep_firing_for_ms = 0;
        let mut labels = Vec::new();
        let mut annotations = Vec::new();
        for (key, value) in m.iter() {
            let key_pos = yaml::scalar_pos(key);
            let mark = self.errors.len();
            match key.as_str() {
                "record" => record = self.scalar(value, "string").ok().flatten(),
                "alert" => alert = self.scalar(value, "string").ok().flatten(),
                "expr" => expr = self.scalar(value, "string").ok().flatten(),
                "for" => for_ms = self.duration(value).unwrap_or(0),
                "keep_firing_for" => keep_firing_for_ms = self.duration(value).unwrap_or(0),
                "labels" => labels = self.string_map(value).unwrap_or_default(),
                "annotations" => annotations = self.string_map(value).unwrap_or_default(),
                other => problem(
                    self,
                    key_pos,
                    format!("field {other} not found in type rulefmt.RuleNode"),
                ),
            }
            // Type and duration errors from the helpers get the rule's context too.
            for e in &mut self.errors[mark..] {
                if !e.message.starts_with(RULE_PREFIX) {
                    e.message = format!("{prefix}{}", e.message);
                }
            }
        }
        let non_empty = |f: &Option<Field>| f.as_ref().is_some_and(|f| !f.value.is_empty());
        match (non_empty(&record), non_empty(&alert)) {
            (true, true) => {
                let pos = record.as_ref().map_or(rule_pos, |f| f.pos);
                problem(
                    self,
                    pos,
                    "only one of 'record' and 'alert' must be set".to_owned(),
                );
            }
            (false, false) => problem(
                self,
                rule_pos,
                "one of 'record' or 'alert' must be set".to_owned(),
            ),
            _ => {}
        }
        let mut parsed = None;
        match &expr {
            Some(f) if !f.value.is_empty() => match crate::query::parse(f.value.as_str()) {
                Ok(e) => parsed = Some(e),
                Err(e) => {
                    let msg = e.to_string();
                    let pos = match yaml::split_line_col(&msg) {
                        Some((line, col)) => {
                            let offset = yaml::line_col_offset(f.value.as_str(), line, col);
                            yaml::value_position(self.text, f.value, offset)
                        }
                        None => f.pos,
                    };
                    problem(self, pos, format!("could not parse expression: {msg}"));
                }
            },
            Some(f) => problem(self, f.pos, "field 'expr' must be set in rule".to_owned()),
            None => problem(
                self,
                rule_pos,
                "field 'expr' must be set in rule".to_owned(),
            ),
        }
        let is_recording = non_empty(&record);
        if is_recording && let Some(rec) = &record {
            if !annotations.is_empty() {
                problem(
                    self,
                    rec.pos,
                    "invalid field 'annotations' in recording rule".to_owned(),
                );
            }
            if for_ms != 0 {
                problem(
                    self,
                    rec.pos,
                    "invalid field 'for' in recording rule".to_owned(),
                );
            }
            if keep_firing_for_ms != 0 {
                problem(
                    self,
                    rec.pos,
                    "invalid field 'keep_firing_for' in recording rule".to_owned(),
                );
            }
            if !is_valid_metric_name(rec.value.as_str()) {
                problem(
                    self,
                    rec.pos,
                    format!("invalid recording rule name: {}", rec.value.as_str()),
                );
            }
        }
        for (k, _, _) in &labels {
            if !is_valid_label_name(k.as_str()) || k.as_str() == "__name__" {
                problem(
                    self,
                    yaml::scalar_pos(k),
                    format!("invalid label name: {}", k.as_str()),
                );
            }
        }
        for (k, _, _) in &annotations {
            if !is_valid_label_name(k.as_str()) {
                problem(
                    self,
                    yaml::scalar_pos(k),
                    format!("invalid annotation name: {}", k.as_str()),
                );
            }
        }
        let mut label_templates = BTreeMap::new();
        let mut annotation_templates = BTreeMap::new();
        if !is_recording {
            for (what, pairs, out) in [
                ("label", &labels, &mut label_templates),
                ("annotation", &annotations, &mut annotation_templates),
            ] {
                for (k, text, node) in pairs {
                    match Template::parse(text) {
                        Ok(t) => {
                            out.insert(k.as_str().to_owned(), t);
                        }
                        Err(e) => {
                            let pos = node.map_or(yaml::scalar_pos(k), |n| {
                                yaml::value_position(self.text, n, e.offset)
                            });
                            problem(
                                self,
                                pos,
                                format!(
                                    "{what} {:?}: template: __alert_{display_name}: {}",
                                    k.as_str(),
                                    e.message
                                ),
                            );
                        }
                    }
                }
            }
        }
        if self.errors.len() > errors_before {
            return None;
        }
        let expr_field = expr?;
        let kind = if is_recording {
            RuleKind::Recording {
                name: record.map(|f| f.value.as_str().to_owned())?,
                labels: labels
                    .into_iter()
                    .map(|(k, v, _)| (k.as_str().to_owned(), v))
                    .collect(),
            }
        } else {
            RuleKind::Alerting {
                name: alert.map(|f| f.value.as_str().to_owned())?,
                for_ms,
                keep_firing_for_ms,
                labels: label_templates,
                annotations: annotation_templates,
                labels_text: labels
                    .into_iter()
                    .map(|(k, v, _)| (k.as_str().to_owned(), v))
                    .collect(),
                annotations_text: annotations
                    .into_iter()
                    .map(|(k, v, _)| (k.as_str().to_owned(), v))
                    .collect(),
            }
        };
        Some(Rule {
            kind,
            expr: parsed?,
            expr_text: expr_field.value.as_str().to_owned(),
            line: rule_pos.line,
            column: rule_pos.column,
            index,
        })
    }
}

/// Every rule-level message starts with this (`group "g", rule 2, "Name": …`).
const RULE_PREFIX: &str = "group ";

#[cfg(test)]
mod tests;
