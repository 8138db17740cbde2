//! Alert label and annotation templates: the subset of Go's `text/template` that Prometheus
//! rule files use, with Prometheus' template functions.
//!
//! Supported: text with `{{ … }}` actions and `{{-`/`-}}` trimming; pipelines with `|`;
//! operands `$labels`, `$labels.name`, `$value`, `$externalLabels.name`, `.Labels.name`,
//! `.Value`, `.ExternalLabels.name`, string (`"…"`, `` `…` ``), number and boolean literals,
//! parenthesised pipelines; `{{ if }}`/`{{ else if }}`/`{{ else }}`/`{{ end }}`; comments
//! `{{/* … */}}`; functions `humanize`, `humanize1024`, `humanizeDuration`,
//! `humanizePercentage`, `humanizeTimestamp`, `printf`, `toUpper`, `toLower`, `title`,
//! `reReplaceAll`, `match`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `and`, `or`, `not`, `len`,
//! `index`, `stripPort`. Anything else (`range`, `with`, `query`, variables) is refused when
//! the rule loads, with the position, rather than rendered wrongly.
//!
//! Parsing happens once per rule at load; `Template::render` is pure.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A template error, with the byte offset in the template text where it was found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("template: {message} (at offset {offset})")]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

fn err(offset: usize, message: impl Into<String>) -> TemplateError {
    TemplateError {
        offset,
        message: message.into(),
    }
}

/// The data a template sees.
pub struct Data<'a> {
    pub labels: &'a BTreeMap<String, String>,
    pub external_labels: &'a BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Clone, Debug, PartialEq)]
enum Value {
    Str(String),
    Num(f64),
    Bool(bool),
    Map(BTreeMap<String, String>),
}

impl Value {
    fn truthy(&self) -> bool {
        match self {
            Value::Str(s) => !s.is_empty(),
            Value::Num(n) => *n != 0.0,
            Value::Bool(b) => *b,
            Value::Map(m) => !m.is_empty(),
        }
    }

    fn render(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Num(n) => go_float(*n),
            Value::Bool(b) => b.to_string(),
            Value::Map(m) => {
                let inner: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("map[{}]", inner.join(" "))
            }
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Value::Num(n) => Some(*n),
            Value::Str(s) => s.trim().parse().ok(),
            Value::Bool(_) | Value::Map(_) => None,
        }
    }
}

/// How Go prints a float64 with `%v`: shortest representation, exponent for large/small.
fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
        let s = format!("{v:e}");
        if let Some((m, e)) = s.split_once('e') {
            let (sign, digits) = e.strip_prefix('-').map_or(('+', e), |d| ('-', d));
            return format!("{m}e{sign}{digits:0>2}");
        }
    }
    format!("{v}")
}

/// Go's `%.{prec}g`.
fn go_g(v: f64, prec: usize) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let prec = prec.max(1);
    if v == 0.0 {
        return "0".into();
    }
    // Round to `prec` significant digits first, then pick the notation from the exponent.
    let sci = format!("{:.*e}", prec - 1, v);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let mant = trim_zeros(mant);
        let (sign, digits) = if exp < 0 { ('-', -exp) } else { ('+', exp) };
        return format!("{mant}e{sign}{digits:02}");
    }
    let decimals = (prec as i32 - 1 - exp).max(0) as usize;
    trim_zeros(&format!("{v:.decimals$}")).to_owned()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

pub fn humanize(v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return go_g(v, 4);
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
    format!("{}{prefix}", go_g(v, 4))
}

pub fn humanize1024(v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return go_g(v, 4);
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
    format!("{}{prefix}", go_g(v, 4))
}

pub fn humanize_duration(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return go_g(v, 4);
    }
    if v == 0.0 {
        return format!("{}s", go_g(v, 4));
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
        return format!("{sign}{}s", go_g(v, 4));
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
    format!("{}{prefix}s", go_g(v, 4))
}

pub fn humanize_percentage(v: f64) -> String {
    format!("{}%", go_g(v * 100.0, 4))
}

fn humanize_timestamp(v: f64) -> String {
    if v.is_nan() || v.is_infinite() || v < 0.0 {
        return go_g(v, 4);
    }
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(v);
    let s = humantime::format_rfc3339_nanos(t).to_string();
    // Go prints "2006-01-02 15:04:05.999999999 +0000 UTC" with trailing zeros removed.
    let s = s.trim_end_matches('Z').replace('T', " ");
    let s = match s.split_once('.') {
        Some((a, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                a.to_owned()
            } else {
                format!("{a}.{frac}")
            }
        }
        None => s,
    };
    format!("{s} +0000 UTC")
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%s %v %d %f %g %e %x %q %t %%`, with
/// width, precision and the `-`, `+`, `0` flags.
fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = chars.peek() {
            if "-+0 #".contains(f) {
                flags.push(f);
                chars.next();
            } else {
                break;
            }
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut precision: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            precision = Some(p.parse().unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        let body = match (verb, arg) {
            ('d', a) => match a.number() {
                Some(n) => format!("{}", n.trunc() as i64),
                None => format!("%!d({})", a.render()),
            },
            ('f' | 'F', a) => match a.number() {
                Some(n) => format!("{n:.*}", precision.unwrap_or(6)),
                None => format!("%!f({})", a.render()),
            },
            ('e', a) => match a.number() {
                Some(n) => {
                    let s = format!("{n:.*e}", precision.unwrap_or(6));
                    match s.split_once('e') {
                        Some((m, e)) => {
                            let (sign, d) = e.strip_prefix('-').map_or(('+', e), |d| ('-', d));
                            format!("{m}e{sign}{d:0>2}")
                        }
                        None => s,
                    }
                }
                None => format!("%!e({})", a.render()),
            },
            ('g', a) => match a.number() {
                Some(n) => match precision {
                    Some(p) => go_g(n, p),
                    None => go_float(n),
                },
                None => format!("%!g({})", a.render()),
            },
            ('x', a) => match a {
                Value::Num(n) => format!("{:x}", n.trunc() as i64),
                other => other.render().bytes().map(|b| format!("{b:02x}")).collect(),
            },
            ('q', a) => format!("{:?}", a.render()),
            ('t', Value::Bool(b)) => b.to_string(),
            ('s' | 'v' | 't', a) => {
                let s = a.render();
                match precision {
                    Some(p) if verb == 's' => s.chars().take(p).collect(),
                    _ => s,
                }
            }
            (v, a) => format!("%!{v}({})", a.render()),
        };
        let width: usize = width.parse().unwrap_or(0);
        let body = if flags.contains('+')
            && matches!(verb, 'd' | 'f' | 'e' | 'g')
            && !body.starts_with('-')
        {
            format!("+{body}")
        } else {
            body
        };
        let len = body.chars().count();
        if len < width {
            let pad = width - len;
            if flags.contains('-') {
                out.push_str(&body);
                out.extend(std::iter::repeat_n(' ', pad));
            } else if flags.contains('0') && matches!(verb, 'd' | 'f' | 'e' | 'g') {
                let (sign, digits) = match body.strip_prefix(['-', '+']) {
                    Some(rest) => (&body[..1], rest),
                    None => ("", body.as_str()),
                };
                out.push_str(sign);
                out.extend(std::iter::repeat_n('0', pad));
                out.push_str(digits);
            } else {
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(&body);
            }
        } else {
            out.push_str(&body);
        }
    }
    for extra in args {
        let _ = write!(out, "%!(EXTRA {})", extra.render());
    }
    out
}

// ---- parsing ----

#[derive(Clone, Debug, PartialEq)]
enum Operand {
    Literal(Value),
    /// `$labels`, `$value`, `$externalLabels`, `.Labels`, `.Value`, `.ExternalLabels`, with
    /// an optional field (`$labels.instance`).
    Var(Var, Option<String>),
    Pipeline(Box<Pipeline>),
    Func(String),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Var {
    Labels,
    Value,
    ExternalLabels,
}

/// `cmd | cmd | …`; each command is an operand followed by arguments.
#[derive(Clone, Debug, PartialEq)]
struct Pipeline {
    offset: usize,
    commands: Vec<Vec<Operand>>,
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Text(String),
    Action(Pipeline),
    If {
        branches: Vec<(Pipeline, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

const FUNCS: &[&str] = &[
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "printf",
    "toUpper",
    "toLower",
    "title",
    "reReplaceAll",
    "match",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "and",
    "or",
    "not",
    "len",
    "index",
    "stripPort",
    "print",
];

enum Token {
    Text(String),
    Action { offset: usize, body: String },
}

fn tokenize(src: &str) -> Result<Vec<Token>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = src;
    let mut offset = 0;
    let mut trim_next_text = false;
    while let Some(start) = rest.find("{{") {
        let mut text = rest[..start].to_owned();
        if trim_next_text {
            text = text.trim_start().to_owned();
        }
        let after = &rest[start + 2..];
        let trim_left =
            after.starts_with("- ") || after.starts_with("-\t") || after.starts_with("-\n");
        if trim_left {
            text = text.trim_end().to_owned();
        }
        if !text.is_empty() {
            out.push(Token::Text(text));
        }
        let Some(end) = after.find("}}") else {
            return Err(err(offset + start, "unclosed action: missing }}"));
        };
        let mut body = &after[..end];
        if trim_left {
            body = &body[1..];
        }
        trim_next_text = body.ends_with(" -") || body.ends_with("\t-") || body.ends_with("\n-");
        if trim_next_text {
            body = &body[..body.len() - 1];
        }
        out.push(Token::Action {
            offset: offset + start,
            body: body.trim().to_owned(),
        });
        let consumed = start + 2 + end + 2;
        offset += consumed;
        rest = &rest[consumed..];
    }
    let mut text = rest.to_owned();
    if trim_next_text {
        text = text.trim_start().to_owned();
    }
    if !text.is_empty() {
        out.push(Token::Text(text));
    }
    Ok(out)
}

/// Splits an action body into words, keeping string literals and parentheses whole.
fn words(body: &str, offset: usize) -> Result<Vec<String>, TemplateError> {
    let mut out = Vec::new();
    let chars: Vec<char> = body.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '`' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != c {
                if c == '"' && chars[j] == '\\' {
                    j += 1;
                }
                j += 1;
            }
            if j >= chars.len() {
                return Err(err(offset, "unterminated string literal"));
            }
            out.push(chars[i..=j].iter().collect());
            i = j + 1;
        } else if c == '(' {
            let mut depth = 0;
            let mut j = i;
            while j < chars.len() {
                match chars[j] {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    '"' => {
                        j += 1;
                        while j < chars.len() && chars[j] != '"' {
                            if chars[j] == '\\' {
                                j += 1;
                            }
                            j += 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            if j >= chars.len() {
                return Err(err(offset, "unclosed parenthesis"));
            }
            out.push(chars[i..=j].iter().collect());
            i = j + 1;
        } else if c == '|' {
            out.push("|".into());
            i += 1;
        } else {
            let mut j = i;
            while j < chars.len() && !chars[j].is_whitespace() && chars[j] != '|' && chars[j] != '('
            {
                j += 1;
            }
            out.push(chars[i..j].iter().collect());
            i = j;
        }
    }
    Ok(out)
}

fn unquote(word: &str, offset: usize) -> Result<String, TemplateError> {
    if let Some(raw) = word.strip_prefix('`').and_then(|w| w.strip_suffix('`')) {
        return Ok(raw.to_owned());
    }
    let inner = &word[1..word.len() - 1];
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some(other) => {
                return Err(err(
                    offset,
                    format!("unsupported escape \\{other} in string"),
                ));
            }
            None => return Err(err(offset, "dangling backslash in string")),
        }
    }
    Ok(out)
}

fn operand(word: &str, offset: usize) -> Result<Operand, TemplateError> {
    if word.starts_with('"') || word.starts_with('`') {
        return Ok(Operand::Literal(Value::Str(unquote(word, offset)?)));
    }
    if let Some(inner) = word.strip_prefix('(').and_then(|w| w.strip_suffix(')')) {
        return Ok(Operand::Pipeline(Box::new(pipeline(inner, offset)?)));
    }
    if word == "true" || word == "false" {
        return Ok(Operand::Literal(Value::Bool(word == "true")));
    }
    if let Ok(n) = word.parse::<f64>() {
        return Ok(Operand::Literal(Value::Num(n)));
    }
    let (head, field) = match word.strip_prefix('.') {
        Some(w) => match w.split_once('.') {
            Some((h, f)) => (format!(".{h}"), Some(f.to_owned())),
            None => (word.to_owned(), None),
        },
        None => match word.split_once('.') {
            Some((h, f)) => (h.to_owned(), Some(f.to_owned())),
            None => (word.to_owned(), None),
        },
    };
    let var = match head.as_str() {
        "$labels" | ".Labels" => Some(Var::Labels),
        "$value" | ".Value" => Some(Var::Value),
        "$externalLabels" | ".ExternalLabels" => Some(Var::ExternalLabels),
        _ => None,
    };
    if let Some(var) = var {
        if var == Var::Value && field.is_some() {
            return Err(err(offset, format!("{word}: $value has no fields")));
        }
        return Ok(Operand::Var(var, field));
    }
    if FUNCS.contains(&word) {
        return Ok(Operand::Func(word.to_owned()));
    }
    if word.starts_with('$') {
        return Err(err(offset, format!("undefined variable {word:?}")));
    }
    Err(err(offset, format!("function {word:?} not defined")))
}

fn pipeline(body: &str, offset: usize) -> Result<Pipeline, TemplateError> {
    let mut commands = vec![Vec::new()];
    for w in words(body, offset)? {
        if w == "|" {
            commands.push(Vec::new());
        } else if let Some(last) = commands.last_mut() {
            last.push(operand(&w, offset)?);
        }
    }
    if commands.iter().any(Vec::is_empty) {
        return Err(err(offset, "missing command in pipeline"));
    }
    Ok(Pipeline { offset, commands })
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let tokens = tokenize(src)?;
        let mut iter = tokens.into_iter().peekable();
        let (nodes, end) = parse_nodes(&mut iter)?;
        if let Some((offset, word)) = end {
            return Err(err(offset, format!("unexpected {{{{{word}}}}}")));
        }
        Ok(Template { nodes })
    }

    /// Renders with the given data. Runtime errors (a bad argument to a function) come back as
    /// errors so the caller can report them, as Prometheus reports "error expanding template".
    pub fn render(&self, data: &Data<'_>) -> Result<String, TemplateError> {
        let mut out = String::new();
        render_nodes(&self.nodes, data, &mut out)?;
        Ok(out)
    }
}

type Tokens = std::iter::Peekable<std::vec::IntoIter<Token>>;

/// Nodes parsed up to a block keyword, and that keyword (`end`, `else …`) with its offset.
type Block = (Vec<Node>, Option<(usize, String)>);

/// Parses nodes until `{{end}}`/`{{else…}}` (returned with its offset and text) or the end.
fn parse_nodes(tokens: &mut Tokens) -> Result<Block, TemplateError> {
    let mut nodes = Vec::new();
    while let Some(token) = tokens.next() {
        match token {
            Token::Text(t) => nodes.push(Node::Text(t)),
            Token::Action { offset, body } => {
                if body.starts_with("/*") {
                    if !body.ends_with("*/") {
                        return Err(err(offset, "unclosed comment"));
                    }
                    continue;
                }
                let keyword = body.split_whitespace().next().unwrap_or("");
                match keyword {
                    "end" | "else" => return Ok((nodes, Some((offset, body)))),
                    "if" => nodes.push(parse_if(tokens, offset, &body[2..])?),
                    "range" | "with" | "define" | "template" | "block" | "break" | "continue" => {
                        return Err(err(
                            offset,
                            format!("{{{{{keyword}}}}} is not supported in Redline templates"),
                        ));
                    }
                    "" => return Err(err(offset, "missing value for command")),
                    _ => {
                        if body.contains(":=") || (body.starts_with('$') && body.contains(" = ")) {
                            return Err(err(offset, "template variables are not supported"));
                        }
                        nodes.push(Node::Action(pipeline(&body, offset)?));
                    }
                }
            }
        }
    }
    Ok((nodes, None))
}

fn parse_if(tokens: &mut Tokens, offset: usize, condition: &str) -> Result<Node, TemplateError> {
    let mut branches = Vec::new();
    let mut condition = pipeline(condition.trim(), offset)?;
    loop {
        let (body, end) = parse_nodes(tokens)?;
        let Some((end_offset, end)) = end else {
            return Err(err(
                offset,
                "unexpected end of template: {{if}} without {{end}}",
            ));
        };
        branches.push((condition, body));
        if end == "end" {
            return Ok(Node::If {
                branches,
                otherwise: Vec::new(),
            });
        }
        let rest = end.trim_start_matches("else").trim();
        if let Some(cond) = rest.strip_prefix("if ") {
            condition = pipeline(cond.trim(), end_offset)?;
            continue;
        }
        if !rest.is_empty() {
            return Err(err(end_offset, format!("unexpected {{{{{end}}}}}")));
        }
        let (otherwise, end) = parse_nodes(tokens)?;
        return match end {
            Some((_, e)) if e == "end" => Ok(Node::If {
                branches,
                otherwise,
            }),
            Some((o, e)) => Err(err(o, format!("unexpected {{{{{e}}}}} after {{{{else}}}}"))),
            None => Err(err(
                offset,
                "unexpected end of template: {{if}} without {{end}}",
            )),
        };
    }
}

fn render_nodes(nodes: &[Node], data: &Data<'_>, out: &mut String) -> Result<(), TemplateError> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => out.push_str(&eval_pipeline(p, data)?.render()),
            Node::If {
                branches,
                otherwise,
            } => {
                let mut taken = false;
                for (cond, body) in branches {
                    if eval_pipeline(cond, data)?.truthy() {
                        render_nodes(body, data, out)?;
                        taken = true;
                        break;
                    }
                }
                if !taken {
                    render_nodes(otherwise, data, out)?;
                }
            }
        }
    }
    Ok(())
}

fn eval_operand(op: &Operand, data: &Data<'_>, offset: usize) -> Result<Value, TemplateError> {
    Ok(match op {
        Operand::Literal(v) => v.clone(),
        Operand::Var(Var::Value, _) => Value::Num(data.value),
        Operand::Var(Var::Labels, None) => Value::Map(data.labels.clone()),
        Operand::Var(Var::ExternalLabels, None) => Value::Map(data.external_labels.clone()),
        // A missing label renders empty, as Go's map lookup of a missing key does in Prometheus.
        Operand::Var(Var::Labels, Some(f)) => {
            Value::Str(data.labels.get(f).cloned().unwrap_or_default())
        }
        Operand::Var(Var::ExternalLabels, Some(f)) => {
            Value::Str(data.external_labels.get(f).cloned().unwrap_or_default())
        }
        Operand::Pipeline(p) => eval_pipeline(p, data)?,
        Operand::Func(name) => call(name, &[], offset)?,
    })
}

fn eval_pipeline(p: &Pipeline, data: &Data<'_>) -> Result<Value, TemplateError> {
    let mut carried: Option<Value> = None;
    for command in &p.commands {
        let value = match &command[0] {
            Operand::Func(name) => {
                let mut args = Vec::with_capacity(command.len());
                for op in &command[1..] {
                    args.push(eval_operand(op, data, p.offset)?);
                }
                if let Some(prev) = carried.take() {
                    args.push(prev);
                }
                call(name, &args, p.offset)?
            }
            op => {
                if command.len() > 1 {
                    return Err(err(p.offset, "can't give argument to non-function"));
                }
                if carried.is_some() {
                    return Err(err(p.offset, "can't pipe into a value"));
                }
                eval_operand(op, data, p.offset)?
            }
        };
        carried = Some(value);
    }
    carried.ok_or_else(|| err(p.offset, "empty pipeline"))
}

fn num_arg(name: &str, args: &[Value], offset: usize) -> Result<f64, TemplateError> {
    match args {
        [v] => v.number().ok_or_else(|| {
            err(
                offset,
                format!("{name}: cannot convert {:?} to a number", v.render()),
            )
        }),
        _ => Err(err(
            offset,
            format!("{name} takes 1 argument, got {}", args.len()),
        )),
    }
}

fn str_arg(name: &str, args: &[Value], i: usize, offset: usize) -> Result<String, TemplateError> {
    args.get(i)
        .map(Value::render)
        .ok_or_else(|| err(offset, format!("{name}: missing argument {}", i + 1)))
}

fn compare(name: &str, args: &[Value], offset: usize) -> Result<std::cmp::Ordering, TemplateError> {
    let [a, b] = args else {
        return Err(err(
            offset,
            format!("{name} takes 2 arguments, got {}", args.len()),
        ));
    };
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        _ => {
            let (x, y) = (a.number(), b.number());
            match (x, y) {
                (Some(x), Some(y)) => x
                    .partial_cmp(&y)
                    .ok_or_else(|| err(offset, format!("{name}: cannot compare NaN"))),
                _ => Err(err(
                    offset,
                    format!("{name}: incompatible types for comparison"),
                )),
            }
        }
    }
}

fn call(name: &str, args: &[Value], offset: usize) -> Result<Value, TemplateError> {
    use std::cmp::Ordering::*;
    Ok(match name {
        "humanize" => Value::Str(humanize(num_arg(name, args, offset)?)),
        "humanize1024" => Value::Str(humanize1024(num_arg(name, args, offset)?)),
        "humanizeDuration" => Value::Str(humanize_duration(num_arg(name, args, offset)?)),
        "humanizePercentage" => Value::Str(humanize_percentage(num_arg(name, args, offset)?)),
        "humanizeTimestamp" => Value::Str(humanize_timestamp(num_arg(name, args, offset)?)),
        "printf" => {
            let format = str_arg(name, args, 0, offset)?;
            Value::Str(sprintf(&format, &args[1..]))
        }
        "print" => Value::Str(args.iter().map(Value::render).collect::<Vec<_>>().join("")),
        "toUpper" => Value::Str(str_arg(name, args, 0, offset)?.to_uppercase()),
        "toLower" => Value::Str(str_arg(name, args, 0, offset)?.to_lowercase()),
        "title" => Value::Str(
            str_arg(name, args, 0, offset)?
                .split(' ')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "stripPort" => {
            let s = str_arg(name, args, 0, offset)?;
            Value::Str(match s.rsplit_once(':') {
                Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                _ => s,
            })
        }
        "reReplaceAll" => {
            let (pattern, replacement, text) = (
                str_arg(name, args, 0, offset)?,
                str_arg(name, args, 1, offset)?,
                str_arg(name, args, 2, offset)?,
            );
            let re = regex::Regex::new(&pattern)
                .map_err(|e| err(offset, format!("reReplaceAll: {e}")))?;
            Value::Str(re.replace_all(&text, replacement.as_str()).into_owned())
        }
        "match" => {
            let (pattern, text) = (
                str_arg(name, args, 0, offset)?,
                str_arg(name, args, 1, offset)?,
            );
            let re = regex::Regex::new(&pattern).map_err(|e| err(offset, format!("match: {e}")))?;
            Value::Bool(re.is_match(&text))
        }
        "eq" => Value::Bool(compare(name, args, offset)? == Equal),
        "ne" => Value::Bool(compare(name, args, offset)? != Equal),
        "lt" => Value::Bool(compare(name, args, offset)? == Less),
        "le" => Value::Bool(compare(name, args, offset)? != Greater),
        "gt" => Value::Bool(compare(name, args, offset)? == Greater),
        "ge" => Value::Bool(compare(name, args, offset)? != Less),
        "and" => args
            .iter()
            .find(|a| !a.truthy())
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Bool(false)),
        "or" => args
            .iter()
            .find(|a| a.truthy())
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Bool(false)),
        "not" => match args {
            [a] => Value::Bool(!a.truthy()),
            _ => return Err(err(offset, "not takes 1 argument")),
        },
        "len" => match args {
            [Value::Map(m)] => Value::Num(m.len() as f64),
            [Value::Str(s)] => Value::Num(s.len() as f64),
            _ => return Err(err(offset, "len of a value that has none")),
        },
        "index" => match args {
            [Value::Map(m), key] => Value::Str(m.get(&key.render()).cloned().unwrap_or_default()),
            _ => return Err(err(offset, "index takes a map and a key")),
        },
        other => return Err(err(offset, format!("function {other:?} not defined"))),
    })
}

#[cfg(test)]
mod tests;
