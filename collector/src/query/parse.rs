//! Parsing with Prometheus-style errors. promql-parser reports syntax errors without a
//! position (often just "invalid promql query"); Prometheus answers
//! `1:5: parse error: unexpected end of input`. This module finds the position itself:
//!
//! - For a syntax error it tokenizes the query and looks for the first token after which no
//!   completion from a small set ("", " x", `="x"`, `5m`, …, then closing the open brackets)
//!   parses: that token is "unexpected"; if every prefix can be completed, the input ended too
//!   early ("unexpected end of input").
//! - For a lexical error (unterminated string, unclosed parenthesis, bad character) it reports
//!   the end of input for errors about the end, otherwise the shortest prefix that fails the
//!   same way.
//! - For a semantic error (wrong argument type, …) it reports the token ending the shortest
//!   prefix that, with its brackets closed, fails with the same message.
//!
//! This is a best effort: positions match Prometheus' for the common cases (missing operands,
//! unclosed brackets, wrong argument types) and are near it otherwise.

use std::sync::Once;

use promql_parser::parser::value::ValueType;
use promql_parser::parser::{self, Expr, Function};

use super::QueryError;

const INVALID: &str = "invalid promql query";

/// Candidate completions tried after a prefix, before closing its open brackets.
const COMPLETIONS: &[&str] = &[
    "", " x", "=\"x\"", "\"x\"", "5m", " 5m", " 1", " (x)", " (a) (x)", " (a) x", "(x)",
];

/// Queries longer than this get the end-of-input position without the search.
const MAX_SEARCH_TOKENS: usize = 256;

/// The deepest expression a query may hold (operators, calls, aggregations, parentheses and
/// subqueries nested in one another; `a + b + c` is two levels, as `+` groups to the left).
/// The parser, the planner, the evaluator and dropping the tree all recurse once per level,
/// on threads with 2 MiB stacks: without a bound, a long enough `a+a+…+a` overflowed a stack
/// and aborted the process. Prometheus has no such limit (Go stacks grow); real queries stay
/// far below it.
pub const MAX_DEPTH: usize = 200;

/// Operators and brackets a query may hold before it is parsed at all: an upper bound of
/// the depth, checked first because the parser itself recurses on long operator chains.
const MAX_NESTING_TOKENS: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Identifier,
    Number,
    Str,
    Open(char),
    Close(char),
    Other,
}

#[derive(Clone, Copy, Debug)]
struct Token {
    start: usize,
    end: usize,
    kind: Kind,
}

/// A small PromQL tokenizer, only for positions.
fn tokenize(s: &str) -> Vec<Token> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let kind = match c {
            // promql-parser's lexer skips exactly `is_ascii_whitespace` (form feed included):
            // anything else between `offset` and its number would hide the number from
            // `check_durations`.
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' | b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != c {
                    if bytes[i] == b'\\' && c != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
                i = (i + 1).min(bytes.len());
                Kind::Str
            }
            b'(' | b'[' | b'{' => {
                i += 1;
                Kind::Open(c as char)
            }
            b')' | b']' | b'}' => {
                i += 1;
                Kind::Close(c as char)
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':')
                {
                    i += 1;
                }
                Kind::Identifier
            }
            c if c.is_ascii_digit() || c == b'.' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                    i += 1;
                }
                Kind::Number
            }
            _ => {
                let two = s.get(i..i + 2).unwrap_or("");
                i += if ["==", "!=", ">=", "<=", "=~", "!~"].contains(&two) {
                    2
                } else {
                    // One character, UTF-8 aware.
                    s[i..].chars().next().map_or(1, char::len_utf8)
                };
                Kind::Other
            }
        };
        out.push(Token {
            start,
            end: i,
            kind,
        });
    }
    out
}

/// The closing brackets the open ones in `s` need, innermost first.
fn closers(s: &str) -> String {
    let mut stack = Vec::new();
    for t in tokenize(s) {
        match t.kind {
            Kind::Open(c) => stack.push(c),
            Kind::Close(_) => {
                stack.pop();
            }
            _ => {}
        }
    }
    stack
        .iter()
        .rev()
        .map(|c| match c {
            '(' => ')',
            '[' => ']',
            _ => '}',
        })
        .collect()
}

/// How a candidate parse ended. A candidate is new text, so it passes the same pre-parse
/// checks as a query: cutting `x[5m:1e35.0m]` after its number leaves the plain `1e35`, which
/// promql-parser panics on (found by the promql fuzz target).
fn attempt(text: &str) -> Result<(), String> {
    precheck(text).map_err(|e| e.to_string())?;
    parser::parse(text).map(|_| ())
}

/// Whether the prefix can be completed into a syntactically valid query (a semantic error
/// counts as valid syntax).
fn viable(prefix: &str) -> bool {
    COMPLETIONS.iter().any(|c| {
        let mut text = format!("{prefix}{c}");
        text.push_str(&closers(&text));
        match attempt(&text) {
            Ok(()) => true,
            Err(e) => e != INVALID && parser::lexer(&text).is_ok(),
        }
    })
}

/// Whether the prefix with its brackets closed fails with exactly `msg`.
fn reproduces(prefix: &str, msg: &str) -> bool {
    let text = format!("{prefix}{}", closers(prefix));
    attempt(&text).err().as_deref() == Some(msg)
}

fn describe(s: &str, t: &Token) -> String {
    let text = &s[t.start..t.end];
    match t.kind {
        Kind::Identifier => format!("identifier {text:?}"),
        Kind::Number => format!("number {text:?}"),
        Kind::Str => format!("string {text:?}"),
        _ => format!("{text:?}"),
    }
}

/// `line:col` of a byte offset, both 1-based, columns in bytes as Prometheus counts them.
fn position(s: &str, offset: usize) -> String {
    let offset = offset.min(s.len());
    let before = &s[..offset];
    let line = before.matches('\n').count() + 1;
    let col = match before.rfind('\n') {
        Some(nl) => offset - nl,
        None => offset + 1,
    };
    format!("{line}:{col}")
}

/// Rewords promql-parser's messages the way Prometheus words them.
fn reword(msg: &str) -> String {
    let types = |t: &str| match t {
        "matrix" => "range vector".to_owned(),
        "vector" => "instant vector".to_owned(),
        other => other.to_owned(),
    };
    let msg = if let Some(rest) = msg.strip_prefix("expected type ")
        && let Some((expected, rest)) = rest.split_once(" in ")
        && let Some((context, got)) = rest.rsplit_once(", got ")
    {
        // promql-parser says "aggregation expression" for the parameter too.
        let context = if context == "aggregation expression" && expected != "vector" {
            "aggregation parameter"
        } else {
            context
        };
        format!(
            "expected type {} in {context}, got {}",
            types(expected),
            types(got)
        )
    } else {
        msg.to_owned()
    };
    // Prometheus quotes names with double quotes.
    let parts: Vec<&str> = msg.split('\'').collect();
    if parts.len() % 2 == 1 {
        parts.join("\"")
    } else {
        msg
    }
}

fn is_binary_operator(text: &str) -> bool {
    matches!(
        text,
        "+" | "-"
            | "*"
            | "/"
            | "%"
            | "^"
            | "=="
            | "!="
            | ">"
            | "<"
            | ">="
            | "<="
            | "and"
            | "or"
            | "unless"
            | "atan2"
    )
}

/// Where Prometheus points for a semantic error found by the prefix ending at token `i`:
/// the operator for operator errors, the start of the left operand for operand-type errors,
/// the function for arity errors, the argument for argument-type errors.
fn semantic_offset(query: &str, tokens: &[Token], i: usize, msg: &str) -> usize {
    let text = |t: &Token| &query[t.start..t.end];
    // Open brackets at token i: (index of the bracket, index of the last comma in it).
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for (k, t) in tokens.iter().enumerate().take(i + 1) {
        match t.kind {
            Kind::Open(_) => stack.push((k, k)),
            Kind::Close(_) => {
                stack.pop();
            }
            _ if text(t) == "," => {
                if let Some(top) = stack.last_mut() {
                    top.1 = k;
                }
            }
            _ => {}
        }
    }
    let operator = tokens[..=i].iter().rposition(|t| {
        matches!(t.kind, Kind::Other | Kind::Identifier) && is_binary_operator(text(t))
    });
    let operator_errors = [
        "comparisons between scalars",
        "must not occur in ON and GROUP",
        "bool modifier can only be used",
        "no grouping allowed",
        "vector matching only allowed",
        "set operator",
    ];
    if operator_errors.iter().any(|e| msg.contains(e))
        && let Some(op) = operator
    {
        return tokens[op].start;
    }
    if msg.starts_with("binary expression must contain only")
        && let Some(op) = operator
    {
        // Walk back over the left operand: bracketed groups and the names before them.
        let mut k = op;
        while k > 0 {
            let prev = &tokens[k - 1];
            match prev.kind {
                Kind::Close(_) => {
                    let mut depth = 0usize;
                    let mut j = k - 1;
                    loop {
                        match tokens[j].kind {
                            Kind::Close(_) => depth += 1,
                            Kind::Open(_) => depth -= 1,
                            _ => {}
                        }
                        if depth == 0 || j == 0 {
                            break;
                        }
                        j -= 1;
                    }
                    k = j;
                }
                Kind::Identifier | Kind::Number | Kind::Str if !is_binary_operator(text(prev)) => {
                    k -= 1;
                }
                _ => break,
            }
        }
        return tokens[k].start;
    }
    let innermost_call = stack
        .iter()
        .rev()
        .find(|(open, _)| text(&tokens[*open]) == "(")
        .copied();
    if msg.contains("argument(s) in call to")
        && let Some((open, _)) = innermost_call
    {
        return tokens[open.saturating_sub(1)].start;
    }
    if let Some(rest) = msg.strip_prefix("expected type ") {
        if let Some(name) = rest
            .split("call to function '")
            .nth(1)
            .and_then(|r| r.split('\'').next())
            && let Some(&(_, comma)) = stack.iter().rev().find(|(open, _)| {
                *open > 0 && text(&tokens[*open]) == "(" && text(&tokens[open - 1]) == name
            })
        {
            return tokens[(comma + 1).min(i)].start;
        }
        if rest.contains("aggregation")
            && let Some((open, comma)) = innermost_call
        {
            let first_arg = !rest.starts_with("vector");
            return tokens[if first_arg { open + 1 } else { comma + 1 }.min(i)].start;
        }
    }
    tokens[i].start
}

/// Where lexing `query` fails: the start of the character at which the shortest prefix that
/// `fails_the_same_way` ends. The lexer reads left to right and stops at the first error, so
/// short prefixes lex (or fail at their end) and every prefix that reaches the offending
/// character fails exactly as the whole query does: a binary search over the prefixes finds
/// it with O(log n) lexer runs. (A scan of every prefix made a long query with a bad character
/// near its end cost quadratic time, found by the `collector_config` fuzz target.)
fn lex_error_offset(query: &str, fails_the_same_way: impl Fn(&str) -> bool) -> usize {
    let ends: Vec<usize> = query
        .char_indices()
        .map(|(i, c)| i + c.len_utf8())
        .collect();
    let first = ends.partition_point(|&end| !fails_the_same_way(&query[..end]));
    match ends.get(first) {
        Some(&end) => query[..end].char_indices().last().map_or(0, |(i, _)| i),
        None => query.len(),
    }
}

/// The query with each regex matcher's pattern overwritten with as many `a`s: the same tokens
/// at the same offsets, but patterns that compile in microseconds. Every candidate parse in
/// the position search compiles every regex in it, and a bad query of 256 tokens can take a
/// few thousand candidates: with real patterns that was seconds of CPU for one query.
fn without_regexes(query: &str, tokens: &[Token]) -> String {
    let mut bytes = query.as_bytes().to_vec();
    for (i, t) in tokens.iter().enumerate().skip(1) {
        let op = &query[tokens[i - 1].start..tokens[i - 1].end];
        // Only whole, terminated strings: their quotes are ASCII, so the bytes between them
        // are whole characters and the result stays UTF-8.
        let terminated = t.end - t.start >= 2 && bytes[t.start] == bytes[t.end - 1];
        if t.kind == Kind::Str && matches!(op, "=~" | "!~") && terminated {
            bytes[t.start + 1..t.end - 1].fill(b'a');
        }
    }
    String::from_utf8(bytes).unwrap_or_else(|_| query.to_owned())
}

/// Locates and words a parse error of `query` whose promql-parser message is `msg`.
fn locate(query: &str, msg: &str) -> String {
    if query.trim().is_empty() || msg.starts_with("no expression found") {
        return format!(
            "{}: parse error: no expression found in input",
            position(query, 0)
        );
    }
    let tokens = tokenize(query);
    if let Err(lex) = parser::lexer(query) {
        let at_end = lex.contains("end of input")
            || lex.contains("unclosed")
            || lex.contains("unterminated")
            || lex.contains("not terminated")
            || lex.contains("can not be at the end");
        let offset = if at_end {
            query.len()
        } else {
            lex_error_offset(query, |prefix| {
                parser::lexer(prefix).err().as_deref() == Some(lex.as_str())
            })
        };
        return format!("{}: parse error: {lex}", position(query, offset));
    }
    if tokens.len() > MAX_SEARCH_TOKENS {
        return format!(
            "{}: parse error: {}",
            position(query, query.len()),
            reword(msg)
        );
    }
    // The search parses up to thousands of candidates. A regex error is about the pattern
    // itself, so only then are the patterns kept.
    let searched = if msg.starts_with("illegal regex") {
        query.to_owned()
    } else {
        without_regexes(query, &tokens)
    };
    if msg == INVALID {
        for t in &tokens {
            if !viable(&searched[..t.end]) {
                return format!(
                    "{}: parse error: unexpected {}",
                    position(query, t.start),
                    describe(query, t)
                );
            }
        }
        return format!(
            "{}: parse error: unexpected end of input",
            position(query, query.len())
        );
    }
    let offset = tokens
        .iter()
        .position(|t| reproduces(&searched[..t.end], msg))
        .map_or(0, |i| semantic_offset(query, &tokens, i, msg));
    format!("{}: parse error: {}", position(query, offset), reword(msg))
}

/// Teaches promql-parser (which follows Prometheus 3) the 2.x name `holt_winters`, once per
/// process; the evaluator treats it as `double_exponential_smoothing`.
fn register_2x_functions() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only if a later promql-parser makes it built-in, which is as good.
        let _ = parser::register_extra_functions(vec![Function::new(
            "holt_winters",
            vec![ValueType::Matrix, ValueType::Scalar, ValueType::Scalar],
            0,
            ValueType::Vector,
            false,
        )]);
    });
}

/// Parses a query; errors read like Prometheus' (`1:5: parse error: …`).
pub fn parse(query: &str) -> Result<Expr, QueryError> {
    register_2x_functions();
    precheck(query)?;
    let expr = parser::parse(query).map_err(|msg| QueryError::Parse(locate(query, &msg)))?;
    let depth = depth(&expr);
    if depth > MAX_DEPTH {
        return Err(too_deep(query, &format!("{depth} levels")));
    }
    Ok(expr)
}

fn too_deep(query: &str, found: &str) -> QueryError {
    QueryError::Parse(format!(
        "{}: parse error: the expression nests {found} deep, more than the limit of {MAX_DEPTH} (split it, e.g. into recording rules)",
        position(query, 0)
    ))
}

/// What is checked before promql-parser sees a query, on one tokenization: durations it would
/// panic on, nesting it would recurse too deep on, and regexes it would spend long compiling
/// only to refuse them.
pub(super) fn precheck(query: &str) -> Result<(), QueryError> {
    let tokens = tokenize(query);
    check_durations(query, &tokens)?;
    check_nesting_tokens(query, &tokens)?;
    check_regexes(query, &tokens)
}

/// Refuses a regex matcher whose repetition counts Go refuses (`x{a=~"a{3333333}"}`), before
/// promql-parser compiles it (see [`crate::regex_limits`]), with Prometheus' message at the
/// matcher's label.
fn check_regexes(query: &str, tokens: &[Token]) -> Result<(), QueryError> {
    let text = |t: &Token| &query[t.start..t.end];
    for (i, t) in tokens.iter().enumerate().skip(1) {
        let op = &tokens[i - 1];
        if t.kind != Kind::Str || !matches!(text(op), "=~" | "!~") {
            continue;
        }
        // A string the parser cannot unquote is its error to report. promql-parser's
        // `unquote_string` panics on a backslash before a non-ASCII character (it slices inside
        // the character); its lexer refuses that escape before the parser unquotes anything,
        // so such a string is left to the parse too.
        if !escapes_are_ascii(text(t)) {
            continue;
        }
        let Ok(pattern) = promql_parser::util::unquote_string(text(t)) else {
            continue;
        };
        if let Err(e) = crate::regex_limits::check(&pattern) {
            let label = i
                .checked_sub(2)
                .map(|k| &tokens[k])
                .filter(|l| matches!(l.kind, Kind::Identifier | Kind::Str))
                .unwrap_or(op);
            return Err(QueryError::Parse(format!(
                "{}: parse error: error parsing regexp: {e}",
                position(query, label.start)
            )));
        }
    }
    Ok(())
}

/// Refuses, before parsing, a query with more operators (outside label matchers) plus
/// bracket nesting than [`MAX_NESTING_TOKENS`]: the parser recurses on operator chains.
fn check_nesting_tokens(query: &str, tokens: &[Token]) -> Result<(), QueryError> {
    let (mut open, mut deepest, mut in_braces, mut operators) = (0usize, 0usize, 0usize, 0usize);
    for t in tokens {
        match t.kind {
            Kind::Open(c) => {
                open += 1;
                deepest = deepest.max(open);
                in_braces += usize::from(c == '{');
            }
            Kind::Close(c) => {
                open = open.saturating_sub(1);
                if c == '}' {
                    in_braces = in_braces.saturating_sub(1);
                }
            }
            Kind::Other if in_braces == 0 => operators += 1,
            Kind::Identifier
                if matches!(
                    query[t.start..t.end].to_ascii_lowercase().as_str(),
                    "and" | "or" | "unless" | "atan2"
                ) =>
            {
                operators += 1
            }
            _ => {}
        }
    }
    if operators + deepest > MAX_NESTING_TOKENS {
        return Err(too_deep(
            query,
            &format!("up to {} levels", operators + deepest),
        ));
    }
    Ok(())
}

/// Whether every backslash escape in a quoted string is followed by an ASCII character.
fn escapes_are_ascii(quoted: &str) -> bool {
    if quoted.starts_with('`') {
        return true; // Raw: a backslash is a backslash.
    }
    let bytes = quoted.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if bytes.get(i + 1).is_some_and(|c| !c.is_ascii()) {
                return false;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    true
}

/// The depth of an expression tree, walked with an explicit stack (recursion is what the
/// limit protects against).
fn depth(expr: &Expr) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(expr, 1usize)];
    while let Some((e, d)) = stack.pop() {
        deepest = deepest.max(d);
        match e {
            Expr::Aggregate(a) => {
                stack.push((&a.expr, d + 1));
                if let Some(p) = &a.param {
                    stack.push((p, d + 1));
                }
            }
            Expr::Unary(u) => stack.push((&u.expr, d + 1)),
            Expr::Binary(b) => {
                stack.push((&b.lhs, d + 1));
                stack.push((&b.rhs, d + 1));
            }
            Expr::Paren(p) => stack.push((&p.expr, d + 1)),
            Expr::Subquery(q) => stack.push((&q.expr, d + 1)),
            Expr::Call(c) => stack.extend(c.args.args.iter().map(|a| (a.as_ref(), d + 1))),
            Expr::NumberLiteral(_)
            | Expr::StringLiteral(_)
            | Expr::VectorSelector(_)
            | Expr::MatrixSelector(_)
            | Expr::Extension(_) => {}
        }
    }
    deepest
}

/// Refuses a duration or `@` time written as a plain number that no `Duration` holds
/// (`x[1e300]`, `x[18446744073709551616]`, `x offset Inf`): promql-parser 0.11 hands such a
/// number to `Duration::from_secs_f64`, which panics. Durations with units (`5m`) are checked
/// by promql-parser itself.
fn check_durations(query: &str, tokens: &[Token]) -> Result<(), QueryError> {
    let text = |t: &Token| &query[t.start..t.end];
    for (i, t) in tokens.iter().enumerate() {
        if !matches!(t.kind, Kind::Number | Kind::Identifier) {
            continue;
        }
        // The token before, skipping one sign (`offset -5`, `@ -1e300`).
        let mut j = i;
        if j > 0 && matches!(text(&tokens[j - 1]), "-" | "+") {
            j -= 1;
        }
        // A subquery step lexes as one identifier with its colon (`:1e30` in `x[5m:1e30]`).
        let (start, step) = match text(t).strip_prefix(':') {
            Some(_) => (t.start + 1, true),
            None => (t.start, false),
        };
        // The number as promql-parser lexes it: `tokenize` splits `1e+300` at the sign.
        let rest = &query.as_bytes()[start..];
        let mut end = 0;
        while end < rest.len() {
            let c = rest[end];
            let exponent_sign = matches!(c, b'+' | b'-')
                && end > 0
                && matches!(rest[end - 1], b'e' | b'E')
                && !rest.starts_with(b"0x")
                && !rest.starts_with(b"0X");
            if !(c.is_ascii_alphanumeric() || c == b'.' || exponent_sign) {
                break;
            }
            end += 1;
        }
        let body = &query[start..start + end];
        let before = j.checked_sub(1).map(|k| &tokens[k]);
        let duration_position = step
            || before.is_some_and(|b| {
                matches!(b.kind, Kind::Open('['))
                    || matches!(text(b), ":" | "@")
                    || text(b).eq_ignore_ascii_case("offset")
            });
        let number = body.parse::<f64>().ok().or_else(|| {
            let hex = body.strip_prefix("0x").or(body.strip_prefix("0X"))?;
            u128::from_str_radix(hex, 16).ok().map(|v| v as f64)
        });
        if duration_position
            && let Some(v) = number
            && std::time::Duration::try_from_secs_f64(v.abs()).is_err()
        {
            return Err(QueryError::Parse(format!(
                "{}: parse error: duration out of range: {:?}",
                position(query, t.start),
                body
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn err(q: &str) -> String {
        parse(q).unwrap_err().to_string()
    }

    /// Found by the `collector_config` fuzz target (a verification indicator's query):
    /// promql-parser panicked on plain-number durations too large for a `Duration`.
    #[test]
    fn regex_repeat_counts_go_refuses_are_refused_before_compiling() {
        for (q, want) in [
            (
                r#"x{a=~"a{3333333}"}"#,
                "1:3: parse error: error parsing regexp: invalid repeat count: `{3333333}`",
            ),
            (
                r#"sum(x{job="j", "a"!~'(b{100}){11}'})"#,
                "1:16: parse error: error parsing regexp: invalid repeat count: `{11}`",
            ),
            (
                "{__name__=~`\\d{1001,}`}",
                "1:2: parse error: error parsing regexp: invalid repeat count: `{1001,}`",
            ),
            // An escape spells the count: the unquoted pattern is what is checked.
            (
                r#"x{a=~"a{\x31001}"}"#,
                "1:3: parse error: error parsing regexp: invalid repeat count: `{1001}`",
            ),
            // An escaped backslash before a non-ASCII character is unquoted and checked.
            (
                r#"x{a=~"\\\\é{1001}"}"#,
                "1:3: parse error: error parsing regexp: invalid repeat count: `{1001}`",
            ),
        ] {
            assert_eq!(err(q), want, "{q}");
        }
        for q in [
            r#"x{a=~"a{1000}"}"#,
            r#"x{a=~"(a{10}){100}"}"#,
            // A lone brace is a literal (Go, and promql-parser's fallback), not a repetition.
            r#"x{a=~"a{3333333"}"#,
            // Not a regex matcher: nothing to compile.
            r#"x{a="a{3333333}"}"#,
        ] {
            assert!(parse(q).is_ok(), "{q}: {:?}", parse(q).err());
        }
        // promql-parser's unquoting panics on a backslash before a non-ASCII character (found
        // by the rule_unittest fuzz target); its lexer refuses the escape first.
        assert_eq!(
            err(r#"x{a=~"\┢{3333333}"}"#),
            "1:8: parse error: unknown escape sequence '┢'"
        );
    }

    #[test]
    fn the_position_search_keeps_positions_with_regex_matchers() {
        // The same positions as a search on the real patterns (checked by hand).
        for (q, want) in [
            (
                r#"x{a=~"b.*"} +"#,
                "1:14: parse error: unexpected end of input",
            ),
            (
                r#"sum(x{a!~"é+|(c)"}) by (a) + * 2"#,
                "1:31: parse error: unexpected \"*\"",
            ),
            (
                r#"rate(x{a=~"\\w{1,100}z\\w{1,100}"})"#,
                "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector",
            ),
            // A bad pattern is the error; the search keeps the patterns.
            (
                r#"x{a=~"("} + y{b=~"c"}"#,
                "1:6: parse error: illegal regex for (",
            ),
        ] {
            assert_eq!(err(q), want, "{q}");
        }
    }

    #[test]
    fn the_position_search_prechecks_its_candidates() {
        // Cut after its number, the step leaves a plain 1e35, out of any duration's range.
        let q = "u[10:100000000000000000000000000000000000.0000000000000m]";
        assert_eq!(
            err(q),
            "1:42: parse error: not a valid duration string: 100000000000000000000000000000000000.0000000000000m"
        );
    }

    #[test]
    fn out_of_range_number_durations_are_errors() {
        for q in [
            "x[018446744073709551615]",
            "rate(x[1e300])",
            "x[5m:1e30]",
            "x offset 1e300",
            "x offset -Inf",
            "x[NaN]",
            "x[0xFFFFFFFFFFFFFFFFFF]",
            "x @ 1e300",
            "x[1e+4444]",
            "x[5m:1E+400]",
            "x offset -1e+400",
            // Found by the `promql` fuzz target: form feeds are whitespace to promql-parser.
            "u[] offset+\x0c\x0c1e308",
            "x offset\x0c1e300",
            "x[\x0c1e300]",
        ] {
            let e = parse(q).unwrap_err().to_string();
            assert!(e.contains("duration out of range"), "{q}: {e}");
        }
        // The `match[]` parameter goes to promql-parser through `selector_matchers`.
        let e = crate::query::selector_matchers("x[1e308]").unwrap_err();
        assert!(e.contains("duration out of range"), "{e}");
        assert!(parse("rate(x[300])").is_ok());
        assert!(parse("x[5m:30] offset 60").is_ok());
        assert!(parse("x[1e3]").is_ok());
        assert!(parse("x[1e+3]").is_ok());
        assert!(parse("x[5m] offset 1e-3").is_ok());
    }

    /// A bad character near the end of a long query is located with a few lexer runs, not one
    /// per character.
    #[test]
    fn lex_errors_are_located_with_logarithmically_many_lexer_runs() {
        let query = format!("sum({}$)", "a+".repeat(20_000));
        let runs = std::cell::Cell::new(0usize);
        let lex = parser::lexer(&query).err().expect("the query does not lex");
        let offset = lex_error_offset(&query, |prefix| {
            runs.set(runs.get() + 1);
            parser::lexer(prefix).err().as_deref() == Some(lex.as_str())
        });
        assert_eq!(offset, query.len() - 2, "the '$'");
        assert!(runs.get() <= 20, "{} lexer runs", runs.get());
        // Through `parse` (a long query that is not deep, so the nesting limit lets it by).
        let long = format!("{} $", "a".repeat(40_000));
        assert_eq!(
            err(&long),
            "1:40002: parse error: unexpected character: '$'"
        );
        // Multi-byte characters before the error keep offsets on character boundaries
        // (columns count bytes, as Prometheus' do).
        assert_eq!(
            err("\"é\" + $"),
            "1:8: parse error: unexpected character: '$'"
        );
    }

    /// Deep expressions are refused with an error naming the limit, before anything recurses
    /// too deep; the evaluation of one just inside the limit runs on a 2 MiB stack (a test
    /// thread's), unoptimised.
    #[test]
    fn deep_expressions_are_refused_before_they_overflow_a_stack() {
        let chain = |n: usize| format!("sum({}a)", "a+".repeat(n));
        for q in [
            chain(5_000),
            chain(MAX_DEPTH),
            format!(
                "{}a{}",
                "(".repeat(MAX_DEPTH + 1),
                ")".repeat(MAX_DEPTH + 1)
            ),
            format!("{}1", "-".repeat(MAX_NESTING_TOKENS + 1)),
        ] {
            let e = err(&q);
            assert!(
                e.starts_with("1:1: parse error: the expression nests")
                    && e.contains(&format!("limit of {MAX_DEPTH}")),
                "{e}"
            );
        }
        // Wide is fine: many operators side by side, each subtree shallow.
        let wide = vec!["(a+b)"; 150].join(" or ");
        assert!(parse(&wide).is_ok());
        // Label matchers do not count as operators.
        let matchers: Vec<String> = (0..600).map(|i| format!("l{i}=\"{i}\"")).collect();
        assert!(parse(&format!("x{{{}}}", matchers.join(","))).is_ok());
        // Just inside the limit: parsed, planned, evaluated and dropped on a 2 MiB stack.
        let deepest = chain(MAX_DEPTH - 2);
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let expr = parse(&deepest).expect("inside the limit");
                let options = crate::query::EvalOptions::default();
                crate::query::plan::plan(&expr, 0, 0, &options).expect("planned");
                let source = crate::query::MemorySource::new(Vec::new());
                crate::query::evaluate_instant(&expr, 0, &source, &options).expect("evaluated");
            })
            .expect("thread")
            .join()
            .expect("no overflow");
    }

    #[test]
    fn positions_like_prometheus() {
        assert_eq!(err("sum(up"), "1:7: parse error: unclosed left parenthesis");
        assert_eq!(
            err("up{"),
            "1:4: parse error: unexpected end of input inside braces"
        );
        assert_eq!(err("up +"), "1:5: parse error: unexpected end of input");
        assert_eq!(
            err("foo bar"),
            "1:5: parse error: unexpected identifier \"bar\""
        );
        assert_eq!(
            err("rate(up)"),
            "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector"
        );
        assert_eq!(err("1 +* 2"), "1:4: parse error: unexpected \"*\"");
        assert_eq!(
            err("sum(up)\n  + )"),
            "2:5: parse error: unexpected right parenthesis ')'"
        );
        assert_eq!(err(""), "1:1: parse error: no expression found in input");
        assert!(parse("sum by (a) (rate(x[5m]))").is_ok());
        // Semantic errors point where Prometheus points.
        assert_eq!(
            err("1 > 2"),
            "1:3: parse error: comparisons between scalars must use BOOL modifier"
        );
        assert_eq!(
            err("up[5m] + 1"),
            "1:1: parse error: binary expression must contain only scalar and instant vector types"
        );
        assert_eq!(
            err("absent(up, up)"),
            "1:1: parse error: expected 1 argument(s) in call to \"absent\", got 2"
        );
        assert_eq!(
            err("sum by (instance) (up) * on(instance) group_left(instance) up"),
            "1:24: parse error: label \"instance\" must not occur in ON and GROUP clause at once"
        );
        assert_eq!(
            err("topk(nope, up)"),
            "1:6: parse error: expected type scalar in aggregation parameter, got instant vector"
        );
        assert_eq!(
            err("x + rate(sum(y))"),
            "1:10: parse error: expected type range vector in call to function \"rate\", got instant vector"
        );
    }
}
