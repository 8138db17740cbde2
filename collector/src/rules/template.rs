//! Go's `text/template` with Prometheus' and Alertmanager's template functions: the language of
//! alert labels and annotations in rule files, and of notification templates.
//!
//! Who calls it: `rules::file` parses every label and annotation template of an alerting rule
//! once, at load ([`Template::parse`]); `rules::eval` renders them per alert with [`Data`]
//! ([`Template::render`]). Notification templates (Alertmanager-style email subjects and
//! bodies) parse with [`Template::parse_with`]`(src, `[`Library::Alertmanager`]`)` and render
//! any data the caller builds as a [`Value`] with [`Template::render_with`]. Parsing and
//! rendering are pure; the only way out is the [`Env::query`] callback that `query` calls.
//!
//! # The language (Go 1.19's `text/template`, as Prometheus 2.42 runs it)
//!
//! - Text and actions `{{ … }}`, trim markers `{{- ` / ` -}}` (ASCII white space only),
//!   comments `{{/* … */}}`; actions may span lines.
//! - Pipelines `cmd | cmd | …` (the value of one command is the last argument of the next);
//!   operands: `.`, `.Field.Chain`, `$`, `$var.Field`, `(pipeline).Field`, strings (`"…"` with
//!   Go's escapes, `` `raw` ``), numbers (`1`, `1.5`, `1e3`, `0x1F`, `'a'`, with Go's int/float
//!   distinction: `{{ printf "%d" 1.5 }}` prints `%!d(float64=1.5)` and `gt $value 90` is an
//!   error, as in Prometheus), `true`, `false`, `nil`.
//! - `{{ if }}` / `{{ else if }}` / `{{ else }}` / `{{ end }}`, `{{ with }}` (dot becomes the
//!   value; `{{ else with }}` too, a Go 1.23 addition), `{{ range }}` over lists (in order) and
//!   maps (in key order) with `{{ else }}`, `{{ range $e := … }}`, `{{ range $i, $e := … }}`,
//!   `{{ break }}`, `{{ continue }}`; truth is Go's (false, 0, nil, empty string, list or map).
//! - Variables: `{{ $x := pipeline }}` declares, `{{ $x = pipeline }}` assigns the nearest
//!   `$x`; a variable declared inside a control structure ends at its `{{ end }}`; `$` is the
//!   data passed in. Alert templates start with Prometheus' own prelude
//!   `{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL :=
//!   .ExternalURL}}{{$value := .Value}}`, so these are ordinary variables.
//! - `{{ define "name" }}…{{ end }}`, `{{ template "name" pipeline }}`, `{{ block }}`.
//! - Go's builtins: `and`, `or` (short-circuit), `not`, `eq` (several arguments), `ne`, `lt`,
//!   `le`, `gt`, `ge` (Go's type rules), `len`, `index`, `slice`, `print`, `printf` (Go's verbs,
//!   flags, width, precision, `%[n]`, `*`), `println`, `html`, `js`, `urlquery`. `call` parses
//!   but fails when run: there are no function values in template data.
//! - [`Library::Prometheus`] (rule templates): `query`, `first`, `label`, `value`, `strvalue`,
//!   `sortByLabel`, `args`, `humanize`, `humanize1024`, `humanizeDuration`,
//!   `humanizePercentage`, `humanizeTimestamp`, `toTime`, `parseDuration`, `title`, `toUpper`,
//!   `toLower`, `match`, `reReplaceAll`, `safeHtml`, `stripPort`, `graphLink`, `tableLink`,
//!   `externalURL`, `pathPrefix`.
//! - [`Library::Alertmanager`] (notification templates): `toUpper`, `toLower`, `title`,
//!   `trimSpace`, `join`, `match`, `reReplaceAll`, `safeHtml`, `stringSlice`, `date`,
//!   `humanizeDuration`. Methods: a [`Value::Kv`] has `.SortedPairs` (a list of `.Name`/`.Value`
//!   pairs with `.Names` and `.Values`), `.Names`, `.Values`, `.Remove (stringSlice "k")`; a
//!   [`Value::Time`] has `.Format "2006-01-02"` (Go layouts, UTC), `.Unix`, `.UnixMilli`,
//!   `.UTC`, `.Local`, `.IsZero`, `.String`; a [`Value::ListWithFields`] answers its named
//!   fields (`.Alerts.Firing`, `.Alerts.Resolved`).
//!
//! Unknown functions and undefined variables are refused at parse time with the byte offset,
//! as Go refuses them. Everything else Go checks while running (a missing field of a struct, a
//! wrong argument type, a failing function) is a render error carrying Go's message, the node
//! and its position; [`Template::exec_error_text`] formats it exactly as Go does, so alert
//! annotations read `<error expanding template: …>` as in Prometheus.
//!
//! # Rendering arbitrary data
//!
//! ```text
//! let t = Template::parse_with(src, Library::Alertmanager)?;
//! let dot = Value::Struct(Struct::new("template.Data", vec![
//!     ("Status", Value::from("firing")),
//!     ("Alerts", Value::ListWithFields(alerts, BTreeMap::from([("Firing".into(), firing), …]))),
//!     ("CommonLabels", Value::Kv(common_labels)),
//!     ("ExternalURL", Value::from(url)),
//! ]));
//! let text = t.render_with(&dot, &Env::default())?;
//! ```
//!
//! Differences from Go and Prometheus, all deliberate: `html/template`'s contextual escaping
//! is not done (callers of HTML bodies escape with `html` or build safe values); times are
//! UTC; query results come in label order (Prometheus gives storage order; `sortByLabel` is the
//! portable way); a list of samples prints as `[&{…} …]` and `eq` compares samples by content
//! where Go prints and compares pointers; regular expressions are the `regex` crate's (RE2
//! syntax, Unicode classes) and so are the less common compile-error texts; complex and
//! hexadecimal floating-point literals (`1i`, `0x1p4`) are refused at parse (`complex numbers
//! are not supported: "1i"`, `illegal number syntax: "0x1p4"`); `printf`'s `%x`, `%b` and
//! `%p` of floats print as bad verbs (`%!x(float64=1.5)`). Limits that Go does not have turn
//! runaway templates into errors: parentheses and control structures nest at most 50 deep in a
//! template and 100 deep across `{{template}}` calls (`max expression depth exceeded`), one
//! render runs at most 10 million steps (`template execution exceeded 10000000 steps`) and
//! writes at most 16 MiB (`template output exceeds 16 MiB`).

mod exec;
mod funcs;
mod gofmt;
mod gotime;
mod lex;
mod parse;

use std::collections::BTreeMap;

pub use funcs::{humanize, humanize_duration, humanize_percentage, humanize1024};

/// A template error: at load, a parse error; at render, Go's execution error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("template: {message} (at offset {offset})")]
pub struct TemplateError {
    /// Byte offset in the template text: where parsing failed, or the node being executed.
    pub offset: usize,
    /// For render errors: the node being executed, as Go prints it (`humanize "abc"`).
    pub context: Option<String>,
    /// Go's message (`function "bogus" not defined`, `error calling humanize: …`).
    pub message: String,
}

fn err(offset: usize, message: impl Into<String>) -> TemplateError {
    TemplateError {
        offset,
        context: None,
        message: message.into(),
    }
}

/// A value templates work on, standing in for Go's dynamically typed data.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Go's nil: what a missing key of a [`Value::Map`] reads as. Prints `<no value>`.
    Nil,
    Bool(bool),
    /// Go's `int`: integer literals, `len`, `index` of a string.
    Int(i64),
    /// Go's `float64`: `$value`, float literals, sample values.
    Float(f64),
    Str(String),
    /// A point in time (Go's `time.Time`), shown in UTC.
    Time(jiff::Timestamp),
    List(Vec<Value>),
    /// A list that also answers named fields, as a Go slice type with methods does:
    /// Alertmanager's `.Alerts` ranges over every alert and has `.Firing` and `.Resolved`.
    ListWithFields(Vec<Value>, BTreeMap<String, Value>),
    /// Go's `map[string]interface{}`: a missing key reads as [`Value::Nil`].
    Map(BTreeMap<String, Value>),
    /// Go's `map[string]string`, e.g. Prometheus' labels: a missing key reads as `""`.
    Labels(BTreeMap<String, String>),
    /// Alertmanager's `KV`: a `map[string]string` with the methods `SortedPairs`, `Names`,
    /// `Values` and `Remove`.
    Kv(BTreeMap<String, String>),
    /// A Go struct: named fields in declaration order; a missing field is an error.
    Struct(Struct),
}

/// A Go struct value.
#[derive(Clone, Debug, PartialEq)]
pub struct Struct {
    /// Go's name of the type, for messages (`template.Alert`). A leading `*` makes it a
    /// pointer to a struct, which `printf "%v"` shows as `&{…}`.
    pub type_name: String,
    pub fields: Vec<(String, Value)>,
}

impl Struct {
    pub fn new(type_name: impl Into<String>, fields: Vec<(&str, Value)>) -> Struct {
        Struct {
            type_name: type_name.into(),
            fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        }
    }

    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}

impl Value {
    /// Go's truth: false, 0, nil and empty strings, lists and maps are false; structs and
    /// times are true.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Time(_) | Value::Struct(_) => true,
            Value::List(l) | Value::ListWithFields(l, _) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Labels(m) | Value::Kv(m) => !m.is_empty(),
        }
    }

    /// The value as Go's template output prints it (`{{ . }}`).
    pub fn to_text(&self) -> String {
        gofmt::print_top(self)
    }

    /// A query result sample as Prometheus' templates see it (`.Labels`, `.Value`).
    pub fn sample(sample: &QuerySample) -> Value {
        Value::Struct(Struct::new(
            funcs::SAMPLE_TYPE,
            vec![
                ("Labels", Value::Labels(sample.labels.clone())),
                ("Value", Value::Float(sample.value)),
            ],
        ))
    }
}

/// One element of a `query` result.
#[derive(Clone, Debug, PartialEq)]
pub struct QuerySample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Evaluates a PromQL instant query for a template's `query` function, at the time the
/// caller chose; an error is shown as the template error `error calling query: …`.
pub type QueryFn<'a> = dyn Fn(&str) -> Result<Vec<QuerySample>, String> + 'a;

/// What template functions reach outside the data.
#[derive(Clone, Copy, Default)]
pub struct Env<'a> {
    /// `query`; without it `query` fails with a render error.
    pub query: Option<&'a QueryFn<'a>>,
    /// What `externalURL` and `pathPrefix` read. Without it they fail as they do under
    /// `promtool test rules`, which has no external URL.
    pub external_url: Option<&'a str>,
}

/// The data of an alerting rule's label and annotation templates, for one element of the
/// rule's result.
pub struct Data<'a> {
    /// The element's labels (`$labels`, `.Labels`), with `__name__` when it has one.
    pub labels: &'a BTreeMap<String, String>,
    pub external_labels: &'a BTreeMap<String, String>,
    /// `$externalURL`, `.ExternalURL`, and what `externalURL` returns.
    pub external_url: &'a str,
    pub value: f64,
    /// `query`, evaluated at the rule's evaluation time.
    pub query: Option<&'a QueryFn<'a>>,
}

/// Go's name of the struct Prometheus passes to alert templates, for messages.
const ALERT_DATA_TYPE: &str = "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value float64 }";

impl Data<'_> {
    /// The data as Prometheus' `AlertTemplateData` struct.
    pub fn to_value(&self) -> Value {
        Value::Struct(Struct::new(
            ALERT_DATA_TYPE,
            vec![
                ("Labels", Value::Labels(self.labels.clone())),
                (
                    "ExternalLabels",
                    Value::Labels(self.external_labels.clone()),
                ),
                ("ExternalURL", Value::Str(self.external_url.to_owned())),
                ("Value", Value::Float(self.value)),
            ],
        ))
    }
}

/// The function set a template is parsed against. Go resolves function names when it parses,
/// so an unknown name is a load error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Library {
    /// Prometheus 2.42's template functions, for rule labels and annotations.
    Prometheus,
    /// Alertmanager's template functions, for notification templates.
    Alertmanager,
}

/// Prometheus' prelude of alert templates: each variable with the field it is bound to.
const ALERT_PRELUDE: [(&str, &str); 4] = [
    ("$labels", "Labels"),
    ("$externalLabels", "ExternalLabels"),
    ("$externalURL", "ExternalURL"),
    ("$value", "Value"),
];

/// The length of Prometheus' prelude text, which Go's error positions count on line 1.
const ALERT_PRELUDE_LEN: usize = 112;

/// A parsed template.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    src: String,
    tree: parse::Tree,
    library: Library,
    /// Whether this is an alert template with Prometheus' prelude variables.
    prelude: bool,
}

impl Template {
    /// Parses an alerting rule's label or annotation template: Prometheus' functions, and its
    /// prelude variables `$labels`, `$externalLabels`, `$externalURL`, `$value` declared.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let vars: Vec<&str> = ALERT_PRELUDE.iter().map(|(v, _)| *v).collect();
        Ok(Template {
            src: src.to_owned(),
            tree: parse::parse(src, Library::Prometheus, &vars)?,
            library: Library::Prometheus,
            prelude: true,
        })
    }

    /// Parses a template against `library` with only `$` declared (notification templates).
    pub fn parse_with(src: &str, library: Library) -> Result<Template, TemplateError> {
        Ok(Template {
            src: src.to_owned(),
            tree: parse::parse(src, library, &[])?,
            library,
            prelude: false,
        })
    }

    /// Renders an alert template for one element. A render error comes back as an error;
    /// Prometheus puts `<error expanding template: …>` in place of the text (see
    /// [`Template::exec_error_text`]).
    pub fn render(&self, data: &Data<'_>) -> Result<String, TemplateError> {
        let env = Env {
            query: data.query,
            external_url: Some(data.external_url),
        };
        self.render_with(&data.to_value(), &env)
    }

    /// Renders with `dot` as the data (`.` and `$`).
    pub fn render_with(&self, dot: &Value, env: &Env<'_>) -> Result<String, TemplateError> {
        let mut vars = vec![("$".to_owned(), dot.clone())];
        if self.prelude {
            for (var, field) in ALERT_PRELUDE {
                let value = match dot {
                    Value::Struct(s) => s.field(field).cloned(),
                    Value::Map(m) => m.get(field).cloned(),
                    _ => None,
                };
                vars.push((var.to_owned(), value.unwrap_or(Value::Nil)));
            }
        }
        exec::execute(&self.tree, self.library, dot, vars, env)
    }

    /// Whether the template calls the function `name` anywhere (the rule manager runs
    /// templates that call `query` where they may wait for the query engine).
    pub fn uses_function(&self, name: &str) -> bool {
        self.tree.uses_function(name)
    }

    /// Go's text of a render error of this template named `name`:
    /// `template: NAME:LINE:COL: executing "NAME" at <CONTEXT>: MESSAGE`. Positions count as
    /// Go counts them, including Prometheus' prelude for alert templates.
    pub fn exec_error_text(&self, name: &str, e: &TemplateError) -> String {
        let Some(context) = &e.context else {
            return format!("template: {name}: {}", e.message);
        };
        let before = &self.src[..e.offset.min(self.src.len())];
        let line = 1 + before.matches('\n').count();
        let col = match before.rfind('\n') {
            Some(nl) => e.offset - (nl + 1),
            None if self.prelude => e.offset + ALERT_PRELUDE_LEN,
            None => e.offset,
        };
        format!(
            "template: {name}:{line}:{col}: executing {name:?} at <{context}>: {}",
            e.message
        )
    }
}

#[cfg(test)]
mod tests;
