//! Alertmanager's label matchers (`pkg/labels` of Alertmanager 0.25): the `matchers` list
//! syntax of routes, inhibit rules and silences (`foo="bar"`, `foo!="bar"`, `foo=~"re"`,
//! `foo!~"re"`, unquoted values, the `{a="b", c=~"d"}` braces form, `\"` `\\` `\n` escapes),
//! the legacy `match` / `match_re` maps, matching against an alert's label set (a missing
//! label is the empty string), and printing back in Alertmanager's form (`foo=~"re"`).
//!
//! Parsing follows `labels.ParseMatchers` / `labels.ParseMatcher` character for character,
//! quirks included (only one leading `{` and one trailing `}` are stripped; an empty element
//! between two commas is an error; a spurious escape such as `\d` keeps its backslash), so
//! that every matcher Alertmanager accepts means the same here. Regular expressions are fully
//! anchored (`^(?:re)$`) as in Alertmanager; they are compiled by the `regex` crate, whose
//! syntax is RE2's like Go's, except that `\d`, `\w`, `\s` and `\b` are Unicode-aware here
//! and ASCII-only in Go.
//!
//! Called by `amconfig` (routes and inhibit rules), `silence` (silence matchers) and, through
//! them, by `route` and `inhibit`. Pure.

use std::cmp::Ordering;
use std::fmt;

use regex::Regex;

use crate::notify::LabelSet;

/// The four match operators, in Alertmanager's order (which sorting relies on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchType {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regexp,
    /// `!~`
    NotRegexp,
}

impl MatchType {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regexp => "=~",
            MatchType::NotRegexp => "!~",
        }
    }

    /// Whether the value is a regular expression (`=~`, `!~`).
    pub fn is_regex(self) -> bool {
        matches!(self, MatchType::Regexp | MatchType::NotRegexp)
    }

    /// Whether the operator is positive (`=`, `=~`); the API's `isEqual`.
    pub fn is_equal(self) -> bool {
        matches!(self, MatchType::Equal | MatchType::Regexp)
    }

    /// The operator from the API's `isRegex` / `isEqual` flags.
    pub fn from_flags(is_regex: bool, is_equal: bool) -> MatchType {
        match (is_regex, is_equal) {
            (false, true) => MatchType::Equal,
            (false, false) => MatchType::NotEqual,
            (true, true) => MatchType::Regexp,
            (true, false) => MatchType::NotRegexp,
        }
    }
}

impl fmt::Display for MatchType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a matcher could not be parsed or built. The texts are Alertmanager's, except for
/// regular-expression errors, whose detail comes from the `regex` crate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    #[error("bad matcher format: {0}")]
    BadFormat(String),
    #[error("matcher value contains unescaped double quote: {0}")]
    UnescapedQuote(String),
    #[error("invalid label name {0:?}")]
    InvalidLabelName(String),
    #[error("error parsing regexp {pattern:?}: {message}")]
    Regex { pattern: String, message: String },
}

/// One label matcher. Equality and order ignore the compiled expression (it follows from the
/// value); the order is Alertmanager's (`labels.Matchers.Less`: name, value, then operator),
/// which fixes how routes print in their keys.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchType,
    pub value: String,
    /// `^(?:value)$`, for `=~` and `!~` only.
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

impl PartialOrd for Matcher {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Matcher {
    fn cmp(&self, other: &Self) -> Ordering {
        self.name
            .cmp(&other.name)
            .then_with(|| self.value.cmp(&other.value))
            .then_with(|| self.op.cmp(&other.op))
    }
}

/// Compiles `^(?:pattern)$` as Alertmanager does for every regex matcher, refusing first
/// what Go refuses for its repetition counts (see [`crate::regex_limits`]).
pub fn anchored_regex(pattern: &str) -> Result<Regex, MatcherError> {
    crate::regex_limits::check(pattern).map_err(|e| MatcherError::Regex {
        pattern: pattern.to_owned(),
        message: e.to_string(),
    })?;
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| MatcherError::Regex {
        pattern: pattern.to_owned(),
        message: regex_message(&e),
    })
}

/// The last line of a `regex` error (the first lines repeat the pattern with a caret).
fn regex_message(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map_or(text.clone(), |l| {
            l.trim().trim_start_matches("error: ").to_owned()
        })
}

impl Matcher {
    /// `labels.NewMatcher`: builds a matcher, compiling the value of a regex matcher. The name
    /// is not checked (the `matchers` syntax allows `:` in names; the legacy maps do not), see
    /// [`Matcher::legacy`].
    pub fn new(op: MatchType, name: &str, value: &str) -> Result<Matcher, MatcherError> {
        let re = if op.is_regex() {
            Some(anchored_regex(value)?)
        } else {
            None
        };
        Ok(Matcher {
            name: name.to_owned(),
            op,
            value: value.to_owned(),
            re,
        })
    }

    /// A matcher from a legacy `match` (`regex == false`) or `match_re` map entry, whose keys
    /// must be valid Prometheus label names (`[a-zA-Z_][a-zA-Z0-9_]*`).
    ///
    /// Alertmanager builds a `match_re` matcher from the *compiled* expression's text, so its
    /// value is the anchored `^(?:value)$` (anchored once more when matching, which changes
    /// nothing). That text shows in route keys and hence in group keys
    /// (`{}/{severity=~"^(?:critical|page)$"}`), so it is kept here too.
    pub fn legacy(name: &str, value: &str, regex: bool) -> Result<Matcher, MatcherError> {
        if !crate::rules::file::is_valid_label_name(name) {
            return Err(MatcherError::InvalidLabelName(name.to_owned()));
        }
        if regex {
            anchored_regex(value)?;
            Matcher::new(MatchType::Regexp, name, &format!("^(?:{value})$"))
        } else {
            Matcher::new(MatchType::Equal, name, value)
        }
    }

    /// Whether the matcher accepts this label value.
    pub fn matches_value(&self, value: &str) -> bool {
        match (self.op, &self.re) {
            (MatchType::Equal, _) => value == self.value,
            (MatchType::NotEqual, _) => value != self.value,
            (MatchType::Regexp, Some(re)) => re.is_match(value),
            (MatchType::NotRegexp, Some(re)) => !re.is_match(value),
            // Unreachable: `new` compiles every regex matcher. Refusing is the safe answer.
            (MatchType::Regexp | MatchType::NotRegexp, None) => false,
        }
    }

    /// Whether the matcher accepts the label set (a missing label is the empty string).
    pub fn matches(&self, labels: &LabelSet) -> bool {
        self.matches_value(labels.get(&self.name).map_or("", String::as_str))
    }
}

impl fmt::Display for Matcher {
    /// `name="value"` with `\`, newline and `"` escaped, as Alertmanager prints a matcher.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}\"{}\"",
            self.name,
            self.op,
            escape_value(&self.value)
        )
    }
}

/// Alertmanager's `openMetricsEscape`: `\` → `\\`, newline → `\n`, `"` → `\"`.
pub fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// Whether every matcher accepts the label set (true for no matchers).
pub fn matches_all(matchers: &[Matcher], labels: &LabelSet) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

/// A list of matchers printed as Alertmanager prints `labels.Matchers`: `{a="b",c=~"d"}`
/// (no space after the comma), the form route keys are made of.
pub struct DisplayMatchers<'a>(pub &'a [Matcher]);

impl fmt::Display for DisplayMatchers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{m}")?;
        }
        f.write_str("}")
    }
}

/// Go's `unicode.IsSpace` restricted to what RE2's `\s` means: `[\t\n\f\r ]`.
fn is_go_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

/// `labels.ParseMatchers`: a comma-separated list of matchers, optionally in braces. Commas
/// inside double quotes do not separate. An empty input is an empty list.
pub fn parse_matchers(s: &str) -> Result<Vec<Matcher>, MatcherError> {
    // Exactly one `{` and one `}` are stripped, with no trimming first, as in Alertmanager.
    let s = s.strip_prefix('{').unwrap_or(s);
    let s = s.strip_suffix('}').unwrap_or(s);
    let mut inside_quotes = false;
    let mut escaped = false;
    let mut token = String::new();
    let mut tokens = Vec::new();
    for c in s.chars() {
        match c {
            ',' if !inside_quotes => {
                tokens.push(std::mem::take(&mut token));
                continue;
            }
            // A comma inside quotes leaves `escaped` as it was (Go's `switch` has no
            // fallthrough into `default` there).
            ',' => {}
            '"' => {
                if escaped {
                    escaped = false;
                } else {
                    inside_quotes = !inside_quotes;
                }
            }
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
        token.push(c);
    }
    let last = token.trim_matches(is_go_space);
    if !last.is_empty() {
        tokens.push(last.to_owned());
    }
    tokens.iter().map(|t| parse_matcher(t)).collect()
}

/// `labels.ParseMatcher`: one `name op value` matcher. The value may be double-quoted; inside
/// it `\"`, `\\` and `\n` are escapes and any other backslash is literal.
pub fn parse_matcher(s: &str) -> Result<Matcher, MatcherError> {
    let bad = || MatcherError::BadFormat(s.to_owned());
    // ^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|=|!=|!~)\s*((?s).*?)\s*$, by hand.
    let rest = s.trim_start_matches(is_go_space);
    let name_len = rest
        .char_indices()
        .find(|&(i, c)| {
            let ok =
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit());
            !ok
        })
        .map_or(rest.len(), |(i, _)| i);
    if name_len == 0 {
        return Err(bad());
    }
    let (name, rest) = rest.split_at(name_len);
    let rest = rest.trim_start_matches(is_go_space);
    let (op, rest) = if let Some(r) = rest.strip_prefix("=~") {
        (MatchType::Regexp, r)
    } else if let Some(r) = rest.strip_prefix('=') {
        (MatchType::Equal, r)
    } else if let Some(r) = rest.strip_prefix("!=") {
        (MatchType::NotEqual, r)
    } else if let Some(r) = rest.strip_prefix("!~") {
        (MatchType::NotRegexp, r)
    } else {
        return Err(bad());
    };
    let raw = rest.trim_matches(is_go_space);
    let value = unescape_value(raw)?;
    Matcher::new(op, name, &value)
}

/// The value part of `ParseMatcher`: strips one leading quote (then a closing one must end
/// the value) and resolves escapes. `original` is the value as written, for messages.
fn unescape_value(original: &str) -> Result<String, MatcherError> {
    let (raw, mut expect_trailing_quote) = match original.strip_prefix('"') {
        Some(r) => (r, true),
        None => (original, false),
    };
    let unescaped_quote = || MatcherError::UnescapedQuote(original.to_owned());
    let mut value = String::with_capacity(raw.len());
    let mut escaped = false;
    // Positions are byte offsets, as Go's `range` over a string gives them.
    for (i, c) in raw.char_indices() {
        if escaped {
            escaped = false;
            match c {
                'n' => value.push('\n'),
                '"' | '\\' => value.push(c),
                c => {
                    // A spurious escape: the backslash is literal.
                    value.push('\\');
                    value.push(c);
                }
            }
            continue;
        }
        match c {
            '\\' if i < raw.len() - 1 => escaped = true,
            // A backslash as the last byte is literal.
            '\\' => value.push('\\'),
            '"' => {
                if !expect_trailing_quote || i < raw.len() - 1 {
                    return Err(unescaped_quote());
                }
                expect_trailing_quote = false;
            }
            c => value.push(c),
        }
    }
    if expect_trailing_quote {
        return Err(unescaped_quote());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::notify::test_labels as labels;

    fn m(op: MatchType, name: &str, value: &str) -> Matcher {
        Matcher::new(op, name, value).unwrap()
    }

    use MatchType::{Equal, NotEqual, NotRegexp, Regexp};

    /// The cases of Alertmanager's `pkg/labels/parse_test.go` (0.25), plus a few more.
    #[test]
    fn parse_matchers_like_alertmanager() {
        let ok: Vec<(&str, Vec<Matcher>)> = vec![
            ("{foo='bar'}", vec![m(Equal, "foo", "'bar'")]),
            (r#"{foo="bar"}"#, vec![m(Equal, "foo", "bar")]),
            (r#"{foo=~"bar.*"}"#, vec![m(Regexp, "foo", "bar.*")]),
            (r#"{foo!="bar"}"#, vec![m(NotEqual, "foo", "bar")]),
            (r#"{foo!~"bar.*"}"#, vec![m(NotRegexp, "foo", "bar.*")]),
            (
                r#"{foo="bar", baz!="quux"}"#,
                vec![m(Equal, "foo", "bar"), m(NotEqual, "baz", "quux")],
            ),
            (
                r#"{foo="bar", baz!~"quux.*"}"#,
                vec![m(Equal, "foo", "bar"), m(NotRegexp, "baz", "quux.*")],
            ),
            (
                r#"{foo="bar",baz!~".*quux", derp="wat"}"#,
                vec![
                    m(Equal, "foo", "bar"),
                    m(NotRegexp, "baz", ".*quux"),
                    m(Equal, "derp", "wat"),
                ],
            ),
            (
                r#"{foo="bar", baz!="quux", derp="wat"}"#,
                vec![
                    m(Equal, "foo", "bar"),
                    m(NotEqual, "baz", "quux"),
                    m(Equal, "derp", "wat"),
                ],
            ),
            (
                r#"{foo="bar", baz!~".*quux.*", derp="wat"}"#,
                vec![
                    m(Equal, "foo", "bar"),
                    m(NotRegexp, "baz", ".*quux.*"),
                    m(Equal, "derp", "wat"),
                ],
            ),
            (
                r#"{foo="bar", instance=~"some-api.*"}"#,
                vec![m(Equal, "foo", "bar"), m(Regexp, "instance", "some-api.*")],
            ),
            (r#"{foo=""}"#, vec![m(Equal, "foo", "")]),
            (
                r#"{foo="bar,quux", job="job1"}"#,
                vec![m(Equal, "foo", "bar,quux"), m(Equal, "job", "job1")],
            ),
            (
                r#"{foo = "bar", dings != "bums", }"#,
                vec![m(Equal, "foo", "bar"), m(NotEqual, "dings", "bums")],
            ),
            (
                r#"foo=bar,dings!=bums"#,
                vec![m(Equal, "foo", "bar"), m(NotEqual, "dings", "bums")],
            ),
            (
                r#"{quote="She said: \"Hi, ladies! That's gender-neutral…\""}"#,
                vec![m(
                    Equal,
                    "quote",
                    r#"She said: "Hi, ladies! That's gender-neutral…""#,
                )],
            ),
            (
                r#"tags=~"^(?:.*,)?foo(?:,.*)?$""#,
                vec![m(Regexp, "tags", "^(?:.*,)?foo(?:,.*)?$")],
            ),
            // Only one closing brace is stripped.
            (r#"{foo=bar}}"#, vec![m(Equal, "foo", "bar}")]),
            // Escapes in unquoted and quoted values; a spurious escape keeps its backslash;
            // a backslash as the last byte is literal.
            (r#"{foo=\\}"#, vec![m(Equal, "foo", "\\")]),
            (r#"{foo=\n}"#, vec![m(Equal, "foo", "\n")]),
            (r#"{foo=\d}"#, vec![m(Equal, "foo", "\\d")]),
            (r#"trailing=a\"#, vec![m(Equal, "trailing", "a\\")]),
            (r#"{foo="\\"}"#, vec![m(Equal, "foo", "\\")]),
            (r#"{foo="\""}"#, vec![m(Equal, "foo", "\"")]),
            (r#"{foo="\n"}"#, vec![m(Equal, "foo", "\n")]),
            (r#"{foo=~"\d+"}"#, vec![m(Regexp, "foo", "\\d+")]),
            (r#"{foo=~"\\d+"}"#, vec![m(Regexp, "foo", "\\d+")]),
            ("", vec![]),
            ("{}", vec![]),
            ("a:b=c", vec![m(Equal, "a:b", "c")]),
            ("  job  =~  api  ", vec![m(Regexp, "job", "api")]),
            ("x=\"a b\"", vec![m(Equal, "x", "a b")]),
            ("x=a b", vec![m(Equal, "x", "a b")]),
            ("x=é", vec![m(Equal, "x", "é")]),
        ];
        for (input, want) in ok {
            let got = parse_matchers(input);
            assert_eq!(got, Ok(want), "{input}");
        }
        let bad = [
            (r#"{foo=~"invalid[regexp"}"#, "error parsing regexp"),
            (r#"{foo="bar"}}"#, "unescaped double quote"),
            (r#"{foo=~"5.."#, "unescaped double quote"),
            (r#"statuscode=~"5.."#, "unescaped double quote"),
            (r#"{foo=bar""}"#, "unescaped double quote"),
            (r#"{foo="b"ar"}"#, "unescaped double quote"),
            (r#"{foo="bar",,baz="x"}"#, "bad matcher format: "),
            (r#"{foo}"#, "bad matcher format: foo"),
            (r#"{1foo="bar"}"#, "bad matcher format"),
            (r#"{foo=="bar"}"#, "unescaped double quote"),
            (r#" {foo="bar"}"#, "bad matcher format"),
            (r#"{foo-bar="x"}"#, "bad matcher format"),
            (r#"{foo<"x"}"#, "bad matcher format"),
            (r#"{foo="x",}"#, ""),
        ];
        for (input, want) in bad {
            match parse_matchers(input) {
                Err(e) => assert!(e.to_string().contains(want), "{input}: {e}"),
                Ok(v) if want.is_empty() => assert_eq!(v, vec![m(Equal, "foo", "x")]),
                Ok(v) => panic!("{input}: parsed as {v:?}"),
            }
        }
        assert_eq!(
            parse_matchers(r#"{foo=bar""}"#).unwrap_err(),
            MatcherError::UnescapedQuote("bar\"\"".to_owned())
        );
    }

    #[test]
    fn regexes_are_fully_anchored() {
        let re = m(Regexp, "job", "api|web");
        let ls = |v: &str| labels(&[("job", v)]);
        assert!(re.matches(&ls("api")));
        assert!(re.matches(&ls("web")));
        assert!(!re.matches(&ls("apiserver")));
        assert!(!re.matches(&ls("xweb")));
        let not = m(NotRegexp, "job", "api|web");
        assert!(!not.matches(&ls("api")));
        assert!(not.matches(&ls("apiserver")));
        // A pattern with its own anchors still works.
        assert!(m(Regexp, "job", "^api$").matches(&ls("api")));
    }

    #[test]
    fn repeat_counts_go_refuses_are_refused_before_compiling() {
        for (pattern, quoted) in [("a{3333333}", "{3333333}"), ("(x{100}){11}", "{11}")] {
            assert_eq!(
                Matcher::new(Regexp, "job", pattern).unwrap_err(),
                MatcherError::Regex {
                    pattern: pattern.to_owned(),
                    message: format!("invalid repeat count: `{quoted}`"),
                }
            );
        }
        assert!(Matcher::new(Regexp, "job", "x{1000}").is_ok());
    }

    #[test]
    fn a_missing_label_is_the_empty_string() {
        let empty = labels(&[]);
        assert!(m(Equal, "x", "").matches(&empty));
        assert!(!m(NotEqual, "x", "").matches(&empty));
        assert!(m(NotEqual, "x", "a").matches(&empty));
        assert!(m(Regexp, "x", ".*").matches(&empty));
        assert!(!m(Regexp, "x", ".+").matches(&empty));
        assert!(m(NotRegexp, "x", ".+").matches(&empty));
        assert!(matches_all(&[], &empty));
        let both = [m(Equal, "a", "1"), m(Regexp, "b", "2|3")];
        assert!(matches_all(&both, &labels(&[("a", "1"), ("b", "3")])));
        assert!(!matches_all(&both, &labels(&[("a", "1"), ("b", "4")])));
    }

    #[test]
    fn display_round_trips() {
        for (input, shown) in [
            ("foo=bar", r#"foo="bar""#),
            (r#"foo!="a\"b""#, r#"foo!="a\"b""#),
            (r#"foo=~"a\\b""#, r#"foo=~"a\\b""#),
            (r#"foo!~"a\nb""#, r#"foo!~"a\nb""#),
        ] {
            let parsed = parse_matcher(input).unwrap();
            assert_eq!(parsed.to_string(), shown);
            assert_eq!(parse_matcher(shown).unwrap(), parsed);
        }
        let list = parse_matchers(r#"{b=~"x", a="1"}"#).unwrap();
        assert_eq!(DisplayMatchers(&list).to_string(), r#"{b=~"x",a="1"}"#);
        assert_eq!(DisplayMatchers(&[]).to_string(), "{}");
    }

    #[test]
    fn order_is_name_value_then_operator() {
        let mut v = vec![
            m(Regexp, "b", "x"),
            m(NotEqual, "a", "1"),
            m(Equal, "a", "1"),
            m(Equal, "a", "0"),
        ];
        v.sort();
        assert_eq!(
            v,
            vec![
                m(Equal, "a", "0"),
                m(Equal, "a", "1"),
                m(NotEqual, "a", "1"),
                m(Regexp, "b", "x"),
            ]
        );
    }

    #[test]
    fn legacy_maps_need_prometheus_label_names() {
        assert_eq!(
            Matcher::legacy("a:b", "x", false).unwrap_err(),
            MatcherError::InvalidLabelName("a:b".to_owned())
        );
        let re = Matcher::legacy("service", "foo|bar", true).unwrap();
        assert_eq!(re.op, Regexp);
        assert_eq!(re.to_string(), r#"service=~"^(?:foo|bar)$""#);
        assert!(re.matches(&labels(&[("service", "bar")])));
        assert!(!re.matches(&labels(&[("service", "foobar")])));
        assert_eq!(
            Matcher::legacy("service", "x", false).unwrap().to_string(),
            r#"service="x""#
        );
        assert!(Matcher::legacy("service", "(", true).is_err());
    }

    #[test]
    fn api_flags() {
        for op in [Equal, NotEqual, Regexp, NotRegexp] {
            assert_eq!(MatchType::from_flags(op.is_regex(), op.is_equal()), op);
        }
    }
}
