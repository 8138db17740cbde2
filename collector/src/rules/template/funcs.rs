//! Template functions: Go's builtins, Prometheus 2.42's (`template/template.go`) and
//! Alertmanager's (`template/template.go` `DefaultFuncs`), plus the methods of the value types
//! that have them (Alertmanager's `KV`, `time.Time`). Each function declares Go's parameter
//! types so the executor can check arguments with Go's messages; implementations return
//! `Err(message)`, which the executor reports as `error calling NAME: message`.

use std::collections::BTreeMap;

use super::{Env, Library, Struct, Value, gofmt, gotime};

/// Go's type name of a `query` sample, a pointer to Prometheus' `template.sample`.
pub(super) const SAMPLE_TYPE: &str = "*template.sample";

const PAIR_TYPE: &str = "template.Pair";

/// The message of a nil pointer dereference, which Go recovers into the template error.
const NIL_DEREFERENCE: &str = "runtime error: invalid memory address or nil pointer dereference";

pub(super) fn is_sample(v: &Value) -> bool {
    matches!(v, Value::Struct(s) if s.type_name == SAMPLE_TYPE)
}

/// Go's parameter types, as far as checking arguments needs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Param {
    /// `interface{}` / `reflect.Value`: anything; number literals become `int` or `float64`.
    Any,
    Str,
    /// `*template.sample`.
    Sample,
    /// `template.queryResult` (a list of samples).
    QueryResult,
    /// `[]string`.
    StrList,
    /// `time.Time`.
    Time,
}

impl Param {
    pub(super) fn go_name(self) -> &'static str {
        match self {
            Param::Any => "interface {}",
            Param::Str => "string",
            Param::Sample => SAMPLE_TYPE,
            Param::QueryResult => "template.queryResult",
            Param::StrList => "[]string",
            Param::Time => "time.Time",
        }
    }

    /// Whether Go lets `nil` stand for this type (pointers, slices, interfaces).
    pub(super) fn can_be_nil(self) -> bool {
        !matches!(self, Param::Str | Param::Time)
    }

    /// Whether a (non-literal) value may be passed for this parameter.
    pub(super) fn accepts(self, v: &Value) -> bool {
        match self {
            Param::Any => true,
            Param::Str => matches!(v, Value::Str(_)),
            Param::Sample => is_sample(v),
            Param::QueryResult => matches!(v, Value::List(_) | Value::ListWithFields(..)),
            Param::StrList => match v {
                Value::List(items) | Value::ListWithFields(items, _) => {
                    items.iter().all(|i| matches!(i, Value::Str(_)))
                }
                _ => false,
            },
            Param::Time => matches!(v, Value::Time(_)),
        }
    }
}

/// A function's or method's signature.
#[derive(Clone, Copy, Debug)]
pub(super) struct Spec {
    pub params: &'static [Param],
    /// The element type of a final variadic parameter.
    pub variadic: Option<Param>,
    /// Go's builtin `and` / `or`, which evaluate their arguments lazily.
    pub short_circuit: bool,
}

const fn fixed(params: &'static [Param]) -> Spec {
    Spec {
        params,
        variadic: None,
        short_circuit: false,
    }
}

const fn variadic(params: &'static [Param], rest: Param) -> Spec {
    Spec {
        params,
        variadic: Some(rest),
        short_circuit: false,
    }
}

use Param::{Any, QueryResult, Sample, Str, StrList, Time};

fn builtin(name: &str) -> Option<Spec> {
    Some(match name {
        "and" | "or" => Spec {
            params: &[Any],
            variadic: Some(Any),
            short_circuit: true,
        },
        "not" | "len" => fixed(&[Any]),
        "index" | "slice" | "call" | "eq" => variadic(&[Any], Any),
        "ne" | "lt" | "le" | "gt" | "ge" => fixed(&[Any, Any]),
        "html" | "js" | "print" | "println" | "urlquery" => variadic(&[], Any),
        "printf" => variadic(&[Str], Any),
        _ => return None,
    })
}

fn prometheus(name: &str) -> Option<Spec> {
    Some(match name {
        "query" | "safeHtml" | "title" | "toUpper" | "toLower" | "graphLink" | "tableLink"
        | "stripPort" | "parseDuration" => fixed(&[Str]),
        "first" => fixed(&[QueryResult]),
        "label" => fixed(&[Str, Sample]),
        "value" | "strvalue" => fixed(&[Sample]),
        "args" => variadic(&[], Any),
        "reReplaceAll" => fixed(&[Str, Str, Str]),
        "match" => fixed(&[Str, Str]),
        "sortByLabel" => fixed(&[Str, QueryResult]),
        "humanize" | "humanize1024" | "humanizeDuration" | "humanizePercentage"
        | "humanizeTimestamp" | "toTime" => fixed(&[Any]),
        "pathPrefix" | "externalURL" => fixed(&[]),
        _ => return None,
    })
}

fn alertmanager(name: &str) -> Option<Spec> {
    Some(match name {
        "toUpper" | "toLower" | "title" | "trimSpace" | "safeHtml" => fixed(&[Str]),
        "join" => fixed(&[Str, StrList]),
        "match" => fixed(&[Str, Str]),
        "reReplaceAll" => fixed(&[Str, Str, Str]),
        "stringSlice" => variadic(&[], Str),
        "date" => fixed(&[Str, Time]),
        "humanizeDuration" => fixed(&[Any]),
        _ => return None,
    })
}

/// The signature of function `name` in `library` (Go's builtins included).
pub(super) fn spec(library: Library, name: &str) -> Option<Spec> {
    builtin(name).or_else(|| match library {
        Library::Prometheus => prometheus(name),
        Library::Alertmanager => alertmanager(name),
    })
}

pub(super) fn exists(library: Library, name: &str) -> bool {
    spec(library, name).is_some()
}

/// The signature of method `name` of `recv`, if its type has one.
pub(super) fn method(recv: &Value, name: &str) -> Option<Spec> {
    match recv {
        Value::Kv(_) => match name {
            "SortedPairs" | "Names" | "Values" => Some(fixed(&[])),
            "Remove" => Some(fixed(&[StrList])),
            _ => None,
        },
        Value::Time(_) => match name {
            "Format" => Some(fixed(&[Str])),
            "Unix" | "UnixMilli" | "UTC" | "Local" | "IsZero" | "String" => Some(fixed(&[])),
            _ => None,
        },
        _ => None,
    }
}

/// Calls method `name` of `recv` with checked arguments.
pub(super) fn call_method(recv: &Value, name: &str, args: Vec<Value>) -> Result<Value, String> {
    match (recv, name) {
        (Value::Kv(m), "SortedPairs") => Ok(pairs(m)),
        (Value::Kv(m), "Names") => Ok(strings(m.keys())),
        (Value::Kv(m), "Values") => Ok(strings(m.values())),
        (Value::Kv(m), "Remove") => {
            let mut m = m.clone();
            for key in str_list(&args[0]) {
                m.remove(&key);
            }
            Ok(Value::Kv(m))
        }
        (Value::Time(t), "Format") => Ok(Value::Str(gotime::format(
            t.as_nanosecond(),
            &str_arg(&args[0]),
        ))),
        (Value::Time(t), "Unix") => Ok(Value::Int(t.as_second())),
        (Value::Time(t), "UnixMilli") => Ok(Value::Int(t.as_millisecond())),
        (Value::Time(t), "UTC" | "Local") => Ok(Value::Time(*t)),
        (Value::Time(t), "IsZero") => Ok(Value::Bool(t.as_second() == GO_ZERO_TIME_SECONDS)),
        (Value::Time(t), "String") => Ok(Value::Str(gotime::string(t.as_nanosecond()))),
        _ => Err(format!("no method {name}")),
    }
}

/// Go's zero `time.Time`, 0001-01-01 00:00:00 UTC, in Unix seconds.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// Alertmanager's `KV.SortedPairs()`: `Pairs` of `Name`/`Value`, with `.Names` and `.Values`.
fn pairs(m: &BTreeMap<String, String>) -> Value {
    let items = m
        .iter()
        .map(|(k, v)| {
            Value::Struct(Struct::new(
                PAIR_TYPE,
                vec![
                    ("Name", Value::from(k.as_str())),
                    ("Value", Value::from(v.as_str())),
                ],
            ))
        })
        .collect();
    let fields = BTreeMap::from([
        ("Names".to_owned(), strings(m.keys())),
        ("Values".to_owned(), strings(m.values())),
    ]);
    Value::ListWithFields(items, fields)
}

fn strings<'a>(it: impl Iterator<Item = &'a String>) -> Value {
    Value::List(it.map(|s| Value::Str(s.clone())).collect())
}

fn str_arg(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        _ => String::new(),
    }
}

fn str_list(v: &Value) -> Vec<String> {
    match v {
        Value::List(items) | Value::ListWithFields(items, _) => items.iter().map(str_arg).collect(),
        _ => Vec::new(),
    }
}

/// Calls function `name` of `library` with checked arguments (`and`/`or` never get here).
pub(super) fn call(
    library: Library,
    name: &str,
    args: Vec<Value>,
    env: &Env<'_>,
) -> Result<Value, String> {
    if let Some(v) = call_builtin(name, &args)? {
        return Ok(v);
    }
    match library {
        Library::Prometheus => call_prometheus(name, args, env),
        Library::Alertmanager => call_alertmanager(name, args),
    }
}

fn call_builtin(name: &str, args: &[Value]) -> Result<Option<Value>, String> {
    use std::cmp::Ordering;
    Ok(Some(match name {
        "not" => Value::Bool(!args[0].truthy()),
        "len" => Value::Int(length(&args[0])? as i64),
        "index" => index(&args[0], &args[1..])?,
        "slice" => slice(&args[0], &args[1..])?,
        "call" => {
            return Err(match &args[0] {
                Value::Nil => "call of nil".to_owned(),
                other => format!("non-function of type {}", gofmt::type_name(other)),
            });
        }
        "print" => Value::Str(gofmt::sprint(args)),
        "println" => Value::Str(gofmt::sprintln(args)),
        "printf" => Value::Str(gofmt::sprintf(&str_arg(&args[0]), &args[1..])),
        "html" => Value::Str(html_escape(&eval_args(args))),
        "js" => Value::Str(js_escape(&eval_args(args))),
        "urlquery" => Value::Str(query_escape(&eval_args(args))),
        "eq" => Value::Bool(eq(&args[0], &args[1..])?),
        "ne" => Value::Bool(!eq(&args[0], &args[1..])?),
        "lt" => Value::Bool(less(&args[0], &args[1])? == Ordering::Less),
        "le" => Value::Bool(le(&args[0], &args[1])?),
        "gt" => Value::Bool(!le(&args[0], &args[1])?),
        "ge" => Value::Bool(less(&args[0], &args[1])? != Ordering::Less),
        _ => return Ok(None),
    }))
}

fn call_prometheus(name: &str, args: Vec<Value>, env: &Env<'_>) -> Result<Value, String> {
    let s = |i: usize| str_arg(&args[i]);
    Ok(match name {
        "query" => {
            let Some(query) = env.query else {
                return Err("query is not available in this template".to_owned());
            };
            let samples = query(&s(0))?;
            Value::List(samples.iter().map(Value::sample).collect())
        }
        "first" => match &args[0] {
            Value::List(items) | Value::ListWithFields(items, _) if !items.is_empty() => {
                items[0].clone()
            }
            _ => return Err("first() called on vector with no elements".to_owned()),
        },
        "label" => Value::Str(sample_label(&args[1], &s(0))?),
        "value" => match &args[0] {
            Value::Struct(st) => st.field("Value").cloned().unwrap_or(Value::Float(0.0)),
            _ => return Err(NIL_DEREFERENCE.to_owned()),
        },
        "strvalue" => Value::Str(sample_label(&args[0], "__value__")?),
        "args" => Value::Map(
            args.into_iter()
                .enumerate()
                .map(|(i, a)| (format!("arg{i}"), a))
                .collect(),
        ),
        "reReplaceAll" => re_replace_all(&s(0), &s(1), &s(2))?,
        "match" => regex_match(&s(0), &s(1))?,
        "safeHtml" => Value::Str(s(0)),
        "title" => Value::Str(go_title(&s(0))),
        "toUpper" => Value::Str(map_runes(&s(0), char::to_uppercase)),
        "toLower" => Value::Str(map_runes(&s(0), char::to_lowercase)),
        "graphLink" => Value::Str(format!("/graph?g0.expr={}&g0.tab=0", query_escape(&s(0)))),
        "tableLink" => Value::Str(format!("/graph?g0.expr={}&g0.tab=1", query_escape(&s(0)))),
        "sortByLabel" => {
            let label = s(0);
            let mut items = match &args[1] {
                Value::List(items) | Value::ListWithFields(items, _) => items.clone(),
                _ => Vec::new(),
            };
            // A stable sort, as Go's sort.Stable.
            items.sort_by_cached_key(|sample| sample_label(sample, &label).unwrap_or_default());
            Value::List(items)
        }
        "stripPort" => Value::Str(strip_port(&s(0))),
        "humanize" => Value::Str(humanize(to_float(&args[0])?)),
        "humanize1024" => Value::Str(humanize1024(to_float(&args[0])?)),
        "humanizeDuration" => Value::Str(humanize_duration(to_float(&args[0])?)),
        "humanizePercentage" => Value::Str(humanize_percentage(to_float(&args[0])?)),
        "humanizeTimestamp" => {
            let v = to_float(&args[0])?;
            if v.is_nan() || v.is_infinite() {
                Value::Str(g4(v))
            } else {
                Value::Str(gotime::string(unix_millis_time(v)?))
            }
        }
        "toTime" => {
            let v = to_float(&args[0])?;
            if v.is_nan() || v.is_infinite() {
                return Err("value is NaN or Inf".to_owned());
            }
            let nanos = unix_millis_time(v)?;
            Value::Time(jiff::Timestamp::from_nanosecond(nanos).map_err(|e| e.to_string())?)
        }
        "externalURL" => Value::Str(env.external_url.ok_or(NIL_DEREFERENCE)?.to_owned()),
        "pathPrefix" => Value::Str(url_path(env.external_url.ok_or(NIL_DEREFERENCE)?)),
        "parseDuration" => {
            let ms = crate::rules::file::parse_duration(&s(0))?;
            Value::Float(ms as f64 / 1000.0)
        }
        other => return Err(format!("function {other:?} not defined")),
    })
}

fn call_alertmanager(name: &str, args: Vec<Value>) -> Result<Value, String> {
    let s = |i: usize| str_arg(&args[i]);
    Ok(match name {
        "toUpper" => Value::Str(map_runes(&s(0), char::to_uppercase)),
        "toLower" => Value::Str(map_runes(&s(0), char::to_lowercase)),
        "title" => Value::Str(cases_title(&s(0))),
        "trimSpace" => Value::Str(s(0).trim().to_owned()),
        "join" => Value::Str(str_list(&args[1]).join(&s(0))),
        "match" => regex_match(&s(0), &s(1))?,
        "reReplaceAll" => re_replace_all(&s(0), &s(1), &s(2))?,
        "safeHtml" => Value::Str(s(0)),
        "stringSlice" => Value::List(args),
        "date" => match &args[1] {
            Value::Time(t) => Value::Str(gotime::format(t.as_nanosecond(), &s(0))),
            _ => return Err(NIL_DEREFERENCE.to_owned()),
        },
        "humanizeDuration" => Value::Str(humanize_duration(to_float(&args[0])?)),
        other => return Err(format!("function {other:?} not defined")),
    })
}

fn sample_label(sample: &Value, label: &str) -> Result<String, String> {
    match sample {
        Value::Struct(st) => Ok(match st.field("Labels") {
            Some(Value::Labels(m)) => m.get(label).cloned().unwrap_or_default(),
            _ => String::new(),
        }),
        _ => Err(NIL_DEREFERENCE.to_owned()),
    }
}

fn regex_match(pattern: &str, text: &str) -> Result<Value, String> {
    Ok(Value::Bool(compile(pattern)?.is_match(text)))
}

/// `reReplaceAll`, the same in both template languages: `regexp.MustCompile(pattern)
/// .ReplaceAllString(text, replacement)`, whose panic Go's template engine reports as the
/// call's error.
fn re_replace_all(pattern: &str, replacement: &str, text: &str) -> Result<Value, String> {
    let re =
        compile(pattern).map_err(|e| format!("regexp: Compile({}): {e}", backquote(pattern)))?;
    Ok(Value::Str(re.replace_all(text, replacement).into_owned()))
}

/// `regexp.Compile`: Go's limits on repetition counts first (the regex crate would spend a
/// 10 MiB program's worth of work on `a{3333333}` before refusing it), then the regex crate.
fn compile(pattern: &str) -> Result<regex::Regex, String> {
    crate::regex_limits::check(pattern).map_err(|e| format!("error parsing regexp: {e}"))?;
    regex::Regex::new(pattern).map_err(|e| regexp_error(&e, pattern))
}

/// A compile error in Go's shape (`error parsing regexp: missing closing ): `(``), with Go's
/// words for the common problems and the `regex` crate's for the rest.
fn regexp_error(e: &regex::Error, pattern: &str) -> String {
    let text = e.to_string();
    let what = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or(text.trim());
    let what = match what {
        "unclosed character class" => "missing closing ]",
        "unclosed group" => "missing closing )",
        "unopened group" => "unexpected )",
        "repetition operator missing expression" => "missing argument to repetition operator",
        "invalid character class range, the start must be <= the end" => {
            "invalid character class range"
        }
        other => other,
    };
    format!("error parsing regexp: {what}: `{pattern}`")
}

/// Go's `%#q`-style quoting used by `regexp.MustCompile`'s panic: backquotes when possible.
fn backquote(s: &str) -> String {
    if s.contains('`') || s.chars().any(|c| c != '\t' && c.is_control()) {
        gofmt::quote(s, false)
    } else {
        format!("`{s}`")
    }
}

/// Go's `strings.ToUpper`/`ToLower`: Unicode's simple, rune-by-rune case mapping. Rust
/// gives the full mapping, which differs only where it maps to several runes: then Go keeps
/// the rune, except that `İ` lowers to `i`.
fn map_runes<I: Iterator<Item = char> + ExactSizeIterator>(s: &str, f: fn(char) -> I) -> String {
    s.chars()
        .map(|c| {
            if c == '\u{130}' {
                let lower = f('\u{130}').len() > 1;
                return if lower { 'i' } else { c };
            }
            let mut m = f(c);
            if m.len() == 1 {
                m.next().unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

/// Go's `strings.Title`: upper-cases every letter that follows a separator.
fn go_title(s: &str) -> String {
    let is_separator = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else if c.is_alphanumeric() {
            false
        } else {
            c.is_whitespace()
        }
    };
    let mut prev = ' ';
    s.chars()
        .map(|c| {
            let out = if is_separator(prev) {
                map_runes(&c.to_string(), char::to_uppercase)
                    .chars()
                    .next()
                    .unwrap_or(c)
            } else {
                c
            };
            prev = c;
            out
        })
        .collect()
}

/// Alertmanager's `title` (`cases.Title`): words start upper case, the rest is lower case.
fn cases_title(s: &str) -> String {
    let mut prev_in_word = false;
    s.chars()
        .map(|c| {
            let in_word = c.is_alphanumeric() || (prev_in_word && c == '\'');
            let out = if in_word && !prev_in_word {
                map_runes(&c.to_string(), char::to_uppercase)
            } else if in_word {
                map_runes(&c.to_string(), char::to_lowercase)
            } else {
                c.to_string()
            };
            prev_in_word = in_word;
            out
        })
        .collect()
}

/// Go's `net.SplitHostPort` host, or the input when it has no port.
fn strip_port(hostport: &str) -> String {
    let Some(i) = hostport.rfind(':') else {
        return hostport.to_owned();
    };
    let (host, j, k) = if hostport.starts_with('[') {
        let Some(end) = hostport.find(']') else {
            return hostport.to_owned();
        };
        if end + 1 != i {
            return hostport.to_owned();
        }
        (&hostport[1..end], 1, end + 1)
    } else {
        let host = &hostport[..i];
        if host.contains(':') {
            return hostport.to_owned();
        }
        (host, 0, 0)
    };
    if hostport[j..].contains('[') || hostport[k..].contains(']') {
        return hostport.to_owned();
    }
    host.to_owned()
}

/// The path of a URL (Go's `url.URL.Path`), for `pathPrefix`.
fn url_path(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path_start = after_scheme.find('/').unwrap_or(after_scheme.len());
    let path = &after_scheme[path_start..];
    path.split(['?', '#']).next().unwrap_or("").to_owned()
}

/// Prometheus' `convertToFloat`.
fn to_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => parse_float(s),
        other => Err(format!(
            "can't convert {} to float",
            gofmt::type_name(other)
        )),
    }
}

/// Go's `strconv.ParseFloat(s, 64)` with its error messages.
fn parse_float(s: &str) -> Result<f64, String> {
    let lower = s.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    let word = matches!(body, "inf" | "infinity" | "nan");
    let numeric = !body.is_empty()
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'));
    if !word && !numeric {
        return Err(format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            gofmt::quote(s, false)
        ));
    }
    match s.parse::<f64>() {
        Ok(f) if f.is_infinite() && !word => Err(format!(
            "strconv.ParseFloat: parsing {}: value out of range",
            gofmt::quote(s, false)
        )),
        Ok(f) => Ok(f),
        Err(_) => Err(format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            gofmt::quote(s, false)
        )),
    }
}

/// Prometheus' conversion of seconds to a time: nanoseconds (truncated), then milliseconds
/// (`model.TimeFromUnixNano`, truncated), as nanoseconds since the epoch.
fn unix_millis_time(v: f64) -> Result<i128, String> {
    let ns = v * 1e9;
    if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            gofmt::float_v(v)
        ));
    }
    let ms = (ns as i64) / 1_000_000;
    Ok(i128::from(ms) * 1_000_000)
}

fn length(v: &Value) -> Result<usize, String> {
    match v {
        Value::Str(s) => Ok(s.len()),
        Value::List(l) | Value::ListWithFields(l, _) => Ok(l.len()),
        Value::Map(m) => Ok(m.len()),
        Value::Labels(m) | Value::Kv(m) => Ok(m.len()),
        Value::Nil => Err("reflect: call of reflect.Value.Type on zero Value".to_owned()),
        other => Err(format!("len of type {}", gofmt::type_name(other))),
    }
}

/// Go's `indexArg`: an integer index within `0..=cap`.
fn index_arg(index: &Value, cap: usize) -> Result<usize, String> {
    let x = match index {
        Value::Int(i) => *i,
        Value::Nil => return Err("cannot index slice/array with nil".to_owned()),
        other => {
            return Err(format!(
                "cannot index slice/array with type {}",
                gofmt::type_name(other)
            ));
        }
    };
    if x < 0 || x as u64 > cap as u64 {
        return Err(format!("index out of range: {x}"));
    }
    Ok(x as usize)
}

fn map_key(index: &Value) -> Result<String, String> {
    match index {
        Value::Str(s) => Ok(s.clone()),
        Value::Nil => Err("value is nil; should be of type string".to_owned()),
        other => Err(format!(
            "value has type {}; should be string",
            gofmt::type_name(other)
        )),
    }
}

/// Go's builtin `index`.
fn index(item: &Value, indexes: &[Value]) -> Result<Value, String> {
    if matches!(item, Value::Nil) {
        return Err("index of untyped nil".to_owned());
    }
    let mut item = item.clone();
    for index in indexes {
        item = match &item {
            Value::List(l) | Value::ListWithFields(l, _) => {
                let x = index_arg(index, l.len())?;
                l.get(x)
                    .cloned()
                    .ok_or("reflect: slice index out of range")?
            }
            Value::Str(s) => {
                let x = index_arg(index, s.len())?;
                let byte = s
                    .as_bytes()
                    .get(x)
                    .ok_or("reflect: string index out of range")?;
                Value::Int(i64::from(*byte))
            }
            Value::Map(m) => m.get(&map_key(index)?).cloned().unwrap_or(Value::Nil),
            Value::Labels(m) | Value::Kv(m) => {
                Value::Str(m.get(&map_key(index)?).cloned().unwrap_or_default())
            }
            Value::Nil => return Err("index of nil pointer".to_owned()),
            other => {
                return Err(format!(
                    "can't index item of type {}",
                    gofmt::type_name(other)
                ));
            }
        };
    }
    Ok(item)
}

/// Go's builtin `slice`.
fn slice(item: &Value, indexes: &[Value]) -> Result<Value, String> {
    if matches!(item, Value::Nil) {
        return Err("slice of untyped nil".to_owned());
    }
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    let len = match item {
        Value::Str(s) => {
            if indexes.len() == 3 {
                return Err("cannot 3-index slice a string".to_owned());
            }
            s.len()
        }
        Value::List(l) | Value::ListWithFields(l, _) => l.len(),
        other => {
            return Err(format!(
                "can't slice item of type {}",
                gofmt::type_name(other)
            ));
        }
    };
    let mut idx = [0, len, len];
    for (i, index) in indexes.iter().enumerate() {
        idx[i] = index_arg(index, len)?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    Ok(match item {
        Value::Str(s) => {
            Value::Str(String::from_utf8_lossy(&s.as_bytes()[idx[0]..idx[1]]).into_owned())
        }
        Value::List(l) | Value::ListWithFields(l, _) => Value::List(l[idx[0]..idx[1]].to_vec()),
        _ => Value::Nil,
    })
}

#[derive(PartialEq)]
enum Kind {
    Bool,
    Int,
    Float,
    Str,
    /// Not a basic kind (nil, lists, maps, structs, times).
    Other,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::Str(_) => Kind::Str,
        _ => Kind::Other,
    }
}

fn comparable(v: &Value) -> bool {
    match v {
        Value::List(_)
        | Value::ListWithFields(..)
        | Value::Map(_)
        | Value::Labels(_)
        | Value::Kv(_) => false,
        Value::Struct(s) => {
            s.type_name.starts_with('*') || s.fields.iter().all(|(_, f)| comparable(f))
        }
        _ => true,
    }
}

/// Go's builtin `eq`: whether `a` equals any of `others`.
fn eq(a: &Value, others: &[Value]) -> Result<bool, String> {
    if others.is_empty() {
        return Err("missing argument for comparison".to_owned());
    }
    let k1 = kind(a);
    for b in others {
        let k2 = kind(b);
        let is_nil = |v: &Value| matches!(v, Value::Nil);
        let truth = if k1 != k2 {
            if !is_nil(a) && !is_nil(b) {
                return Err("incompatible types for comparison".to_owned());
            }
            false
        } else {
            match (a, b) {
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::Int(x), Value::Int(y)) => x == y,
                (Value::Float(x), Value::Float(y)) => x == y,
                (Value::Str(x), Value::Str(y)) => x == y,
                _ if is_nil(a) || is_nil(b) => is_nil(a) && is_nil(b),
                _ => {
                    if gofmt::type_name(a) != gofmt::type_name(b) {
                        return Err(format!(
                            "non-comparable types {}: {}, {}: {}",
                            gofmt::print_top(a),
                            gofmt::type_name(a),
                            gofmt::type_name(b),
                            gofmt::print_top(b)
                        ));
                    }
                    if !comparable(b) {
                        return Err(format!(
                            "non-comparable type {}: {}",
                            gofmt::print_top(b),
                            gofmt::type_name(b)
                        ));
                    }
                    a == b
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Go's builtin `lt`, as an ordering (`Less` or not).
fn less(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    use std::cmp::Ordering;
    let bad_type = || "invalid type for comparison".to_owned();
    let (k1, k2) = (kind(a), kind(b));
    if k1 == Kind::Other || k2 == Kind::Other {
        return Err(bad_type());
    }
    if k1 != k2 {
        return Err("incompatible types for comparison".to_owned());
    }
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => {
            if x < y {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        _ => return Err(bad_type()),
    })
}

fn le(a: &Value, b: &Value) -> Result<bool, String> {
    if less(a, b)? == std::cmp::Ordering::Less {
        return Ok(true);
    }
    eq(a, std::slice::from_ref(b))
}

/// Go's `evalArgs` for `html`, `js`, `urlquery`: one string as is, else `fmt.Sprint` of the
/// printable values.
fn eval_args(args: &[Value]) -> String {
    if let [Value::Str(s)] = args {
        return s.clone();
    }
    let printable: Vec<Value> = args
        .iter()
        .map(|a| match a {
            Value::Nil => Value::Str("<no value>".to_owned()),
            Value::Struct(s) if s.type_name.starts_with('*') => Value::Struct(Struct {
                type_name: s.type_name[1..].to_owned(),
                fields: s.fields.clone(),
            }),
            other => other.clone(),
        })
        .collect();
    gofmt::sprint(&printable)
}

/// Go's `template.HTMLEscapeString`.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u00{:02X}", c as u32)),
            c if c.is_ascii() || gofmt::is_print(c) => out.push(c),
            c => out.push_str(&format!("\\u{:04X}", c as u32)),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub(super) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `%.4g`.
fn g4(v: f64) -> String {
    gofmt::sprintf("%.4g", &[Value::Float(v)])
}

/// Prometheus' `humanize`: SI prefixes, four significant digits.
pub fn humanize(v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut v = v;
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", g4(v))
}

/// Prometheus' `humanize1024`: binary prefixes.
pub fn humanize1024(v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", g4(v))
}

/// Prometheus' `humanizeDuration`: seconds as `1d 2h 3m 4s`, or with SI prefixes below one.
pub fn humanize_duration(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let (sign, v) = if v < 0.0 { ("-", -v) } else { ("", v) };
        let d = v as i64;
        let (s, m, h, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        if days != 0 {
            return format!("{sign}{days}d {h}h {m}m {s}s");
        }
        if h != 0 {
            return format!("{sign}{h}h {m}m {s}s");
        }
        if m != 0 {
            return format!("{sign}{m}m {s}s");
        }
        return format!("{sign}{}s", g4(v));
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", g4(v))
}

/// Prometheus' `humanizePercentage`: a ratio as a percentage.
pub fn humanize_percentage(v: f64) -> String {
    format!("{}%", g4(v * 100.0))
}
