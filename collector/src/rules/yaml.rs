//! YAML with positions: the thin layer between the YAML parser and the rule-file and unit-test
//! loaders, which walk the tree by hand so every error can name `line:column`.
//!
//! [`parse_document`] builds `marked-yaml` nodes (every scalar a string with the position where
//! it starts) from `yaml-rust2`'s events. On top of that this module gives the loaders the
//! position of a mapping (its first key, which is where Prometheus points), Go-yaml-like type
//! names for "cannot unmarshal" messages, null detection, and [`value_position`], which maps an
//! offset inside a scalar's value (a PromQL or template error position) back to the file.
//!
//! The Alertmanager configuration loader (`alert::amconfig`) uses it too, as Go's `yaml.v2`
//! ([`GoYaml::V2`]) where that differs from Prometheus' `yaml.v3`.

use std::collections::HashMap;

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, MarkedSequenceNode};
use marked_yaml::{Marker, Node, Span};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker as ScanMarker, ScanError, TScalarStyle};

/// A 1-based line and column (columns count characters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// The Go YAML library a loader imitates where the two differ: Prometheus reads rule files with
/// `yaml.v3`, Alertmanager reads its configuration with `yaml.v2`, which resolves YAML 1.1
/// booleans (`yes`, `off`, …) and words its duplicate-key error differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoYaml {
    V2,
    V3,
}

impl GoYaml {
    /// The message this library gives when a node has the wrong type.
    pub fn cannot_unmarshal(self, node: &Node, into: &str) -> String {
        format!("cannot unmarshal {} into {into}", self.describe(node))
    }

    /// The YAML tag this library would resolve a node to, for "cannot unmarshal" messages.
    fn describe(self, node: &Node) -> String {
        match node {
            Node::Mapping(_) => "!!map".to_owned(),
            Node::Sequence(_) => "!!seq".to_owned(),
            Node::Scalar(s) => {
                let v = s.as_str();
                let tag = if !s.may_coerce() {
                    "!!str"
                } else if is_null(s) {
                    return "!!null".to_owned();
                } else if self.is_bool(v) {
                    "!!bool"
                } else if v.parse::<i64>().is_ok() {
                    "!!int"
                } else if v.parse::<f64>().is_ok() {
                    "!!float"
                } else {
                    "!!str"
                };
                format!("{tag} `{v}`")
            }
        }
    }

    fn is_bool(self, plain: &str) -> bool {
        match self {
            GoYaml::V2 => yaml11_bool(plain).is_some(),
            GoYaml::V3 => matches!(
                plain,
                "true" | "false" | "True" | "False" | "TRUE" | "FALSE"
            ),
        }
    }

    fn duplicate_key(self, key: &str, first_line: usize) -> String {
        match self {
            GoYaml::V2 => format!("yaml: key {key:?} already set in map (at line {first_line})"),
            GoYaml::V3 => format!("yaml: mapping key {key:?} already defined at line {first_line}"),
        }
    }
}

/// YAML 1.1 booleans, which Go's `yaml.v2` reads.
pub fn yaml11_bool(plain: &str) -> Option<bool> {
    match plain {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Some(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Some(false)
        }
        _ => None,
    }
}

/// Deepest nesting accepted (the loader recurses once per level).
const MAX_DEPTH: usize = 200;
/// Most nodes a document may expand to, aliases included (a guard against alias bombs).
const MAX_NODES: usize = 1_000_000;

/// Parses the first YAML document of `text` into `marked-yaml` nodes with positions, as the
/// rule loaders want it: `Ok(None)` for an empty document, which Prometheus accepts as
/// "nothing", and an error unless the top level is a mapping.
pub fn parse_document(text: &str) -> Result<Option<Node>, (Pos, String)> {
    match parse_root(text, GoYaml::V3)? {
        Some(Node::Mapping(m)) => Ok(Some(Node::Mapping(m))),
        Some(other) => Err((
            node_pos(&other),
            "yaml: the top level must be a mapping".into(),
        )),
        None => Ok(None),
    }
}

/// The root node of the first YAML document of `text`, with positions; `Ok(None)` for an empty
/// document or a null one.
///
/// The tree is built here from `yaml-rust2`'s events rather than by `marked_yaml::parse_yaml`,
/// because Prometheus (Go's yaml.v3) accepts what that loader refuses: anchors and aliases
/// (expanded here), merge keys (`<<: *defaults`) and tags (ignored; a tagged scalar is a
/// string). As in yaml.v3, duplicate keys are errors and only the first document is read.
/// Scalars keep whether they were plain (`may_coerce`), which null detection and error
/// positions inside values rely on. `go` only words the errors.
pub fn parse_root(text: &str, go: GoYaml) -> Result<Option<Node>, (Pos, String)> {
    let mut loader = Loader {
        parser: Parser::new_from_str(text),
        go,
        anchors: HashMap::new(),
        nodes: 0,
    };
    loader.document()
}

struct Loader<'a> {
    parser: Parser<std::str::Chars<'a>>,
    go: GoYaml,
    /// Anchored nodes by the parser's anchor id, with their size in nodes.
    anchors: HashMap<usize, (Node, usize)>,
    /// Nodes built so far, aliases counted at their expanded size.
    nodes: usize,
}

type Fail = (Pos, String);

fn pos_of(m: ScanMarker) -> Pos {
    Pos {
        line: m.line(),
        column: m.col() + 1,
    }
}

fn marker(m: ScanMarker) -> Marker {
    Marker::new(0, m.index(), m.line(), m.col() + 1)
}

fn scan_error(e: &ScanError) -> Fail {
    (pos_of(*e.marker()), format!("yaml: {}", e.info()))
}

fn size(node: &Node) -> usize {
    match node {
        Node::Scalar(_) => 1,
        Node::Sequence(s) => 1 + s.iter().map(size).sum::<usize>(),
        Node::Mapping(m) => 1 + m.iter().map(|(_, v)| 1 + size(v)).sum::<usize>(),
    }
}

impl Loader<'_> {
    fn next(&mut self) -> Result<(Event, ScanMarker), Fail> {
        self.parser.next_token().map_err(|e| scan_error(&e))
    }

    fn document(&mut self) -> Result<Option<Node>, Fail> {
        loop {
            match self.next()? {
                (Event::StreamStart | Event::DocumentStart, _) => {}
                (Event::StreamEnd | Event::DocumentEnd, _) => return Ok(None),
                (event, mark) => {
                    let node = self.node(event, mark, 0)?;
                    return Ok(Some(node).filter(|n| !node_is_null(n)));
                }
            }
        }
    }

    fn count(&mut self, n: usize, mark: ScanMarker) -> Result<(), Fail> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err((
                pos_of(mark),
                format!("yaml: the document expands to more than {MAX_NODES} nodes"),
            ));
        }
        Ok(())
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), size(node)));
        }
    }

    fn node(&mut self, event: Event, mark: ScanMarker, depth: usize) -> Result<Node, Fail> {
        if depth > MAX_DEPTH {
            return Err((
                pos_of(mark),
                format!("yaml: nesting deeper than {MAX_DEPTH} levels"),
            ));
        }
        self.count(1, mark)?;
        match event {
            Event::Scalar(value, style, anchor, tag) => {
                let mut s = MarkedScalarNode::new(Span::new_start(marker(mark)), value);
                s.set_coerce(style == TScalarStyle::Plain && tag.is_none());
                let node = Node::Scalar(s);
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::Alias(id) => {
                let Some((node, n)) = self.anchors.get(&id).cloned() else {
                    return Err((pos_of(mark), "yaml: unknown anchor".into()));
                };
                self.count(n, mark)?;
                Ok(node)
            }
            Event::SequenceStart(anchor, _tag) => {
                let mut items = Vec::new();
                let end = loop {
                    match self.next()? {
                        (Event::SequenceEnd, end) => break end,
                        (event, m) => items.push(self.node(event, m, depth + 1)?),
                    }
                };
                let node = Node::Sequence(MarkedSequenceNode::new(
                    Span::new_with_marks(marker(mark), marker(end)),
                    items,
                ));
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::MappingStart(anchor, _tag) => {
                let mut map = MarkedMappingNode::new_empty(Span::new_start(marker(mark)));
                let mut merges = Vec::new();
                let end = loop {
                    let (event, m) = self.next()?;
                    let key = match event {
                        Event::MappingEnd => break m,
                        event => self.node(event, m, depth + 1)?,
                    };
                    let Node::Scalar(key) = key else {
                        return Err((pos_of(m), "yaml: mapping keys must be scalars".into()));
                    };
                    let (event, vm) = self.next()?;
                    let value = self.node(event, vm, depth + 1)?;
                    if key.as_str() == "<<" && key.may_coerce() {
                        merges.push((value, vm));
                        continue;
                    }
                    if let Some((first, _)) = map.get_key_value(key.as_str()) {
                        let line = first.span().start().map_or(0, |s| s.line());
                        return Err((pos_of(m), self.go.duplicate_key(key.as_str(), line)));
                    }
                    map.insert(key, value);
                };
                // Merge keys: entries of the merged mappings that the mapping does not set.
                for (value, vm) in merges {
                    let sources = match value {
                        Node::Mapping(m) => vec![m],
                        Node::Sequence(s) => s
                            .iter()
                            .map(|n| match n {
                                Node::Mapping(m) => Ok(m.clone()),
                                _ => Err((
                                    pos_of(vm),
                                    "yaml: map merge requires map or sequence of maps as the value"
                                        .to_owned(),
                                )),
                            })
                            .collect::<Result<_, _>>()?,
                        _ => {
                            return Err((
                                pos_of(vm),
                                "yaml: map merge requires map or sequence of maps as the value"
                                    .into(),
                            ));
                        }
                    };
                    for source in sources {
                        for (k, v) in source.iter() {
                            if !map.contains_key(k.as_str()) {
                                map.insert(k.clone(), v.clone());
                            }
                        }
                    }
                }
                *map.span_mut() = Span::new_with_marks(marker(mark), marker(end));
                let node = Node::Mapping(map);
                self.remember(anchor, &node);
                Ok(node)
            }
            other => Err((pos_of(mark), format!("yaml: unexpected {other:?}"))),
        }
    }
}

/// Where a node starts. For a block mapping that is its first key (`marked-yaml` marks the
/// first `:`), which is also where Prometheus points for a group or rule.
pub fn node_pos(node: &Node) -> Pos {
    if let Node::Mapping(m) = node
        && let Some((k, _)) = m.iter().next()
    {
        return scalar_pos(k);
    }
    node.span().start().map_or(Pos::default(), |m| Pos {
        line: m.line(),
        column: m.column(),
    })
}

pub fn scalar_pos(s: &MarkedScalarNode) -> Pos {
    s.span().start().map_or(Pos::default(), |m| Pos {
        line: m.line(),
        column: m.column(),
    })
}

/// A plain `~`, `null` or empty scalar: YAML's null.
pub fn is_null(s: &MarkedScalarNode) -> bool {
    s.may_coerce() && matches!(s.as_str(), "" | "~" | "null" | "Null" | "NULL")
}

/// Whether the node is a null scalar.
pub fn node_is_null(n: &Node) -> bool {
    matches!(n, Node::Scalar(s) if is_null(s))
}

/// The message Go's yaml.v3 gives when a node has the wrong type.
pub fn cannot_unmarshal(node: &Node, into: &str) -> String {
    GoYaml::V3.cannot_unmarshal(node, into)
}

/// The file position of the byte `offset` inside the value of `scalar`, found by walking the
/// source from where the scalar starts and matching the value's characters one by one
/// (whitespace matches any whitespace, other characters must be equal; quotes, escapes,
/// indentation and folded line breaks are skipped over). Exact for plain and quoted one-line
/// scalars and for block scalars (`|`, `>`), whose content keeps its characters in order;
/// escapes such as `\n` in double-quoted strings can shift it. An offset at the end of the
/// value maps to just after its last character.
pub fn value_position(text: &str, scalar: &MarkedScalarNode, offset: usize) -> Pos {
    let Some(marker) = scalar.span().start() else {
        return Pos::default();
    };
    let value = scalar.as_str();
    let mut offset = offset.min(value.len());
    while !value.is_char_boundary(offset) {
        offset -= 1;
    }
    let target = value[..offset].chars().count();
    let mut pos = Pos {
        line: marker.line(),
        column: marker.column(),
    };
    let mut source = text.chars().skip(marker.character()).peekable();
    // Quoted scalars are marked at the opening quote.
    if !scalar.may_coerce() && matches!(source.peek(), Some('"' | '\'')) {
        source.next();
        pos.column += 1;
    }
    let advance = |pos: &mut Pos, c: char| {
        if c == '\n' {
            pos.line += 1;
            pos.column = 1;
        } else {
            pos.column += 1;
        }
    };
    let mut last = None;
    for (i, want) in value.chars().enumerate() {
        let found = loop {
            let Some(c) = source.next() else {
                break None;
            };
            let here = pos;
            advance(&mut pos, c);
            if c == want || (want.is_whitespace() && c.is_whitespace()) {
                break Some(here);
            }
        };
        let Some(here) = found else {
            break;
        };
        if i == target {
            return here;
        }
        last = Some(here);
    }
    match last {
        Some(p) => Pos {
            line: p.line,
            column: p.column + 1,
        },
        None => Pos {
            line: marker.line(),
            column: marker.column(),
        },
    }
}

/// Converts a `line:col` (1-based, columns in bytes as Prometheus counts them) inside `value`
/// into a byte offset.
pub fn line_col_offset(value: &str, line: usize, col: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match value[start..].find('\n') {
            Some(nl) => start += nl + 1,
            None => return value.len(),
        }
    }
    (start + col.saturating_sub(1)).min(value.len())
}

/// Splits a leading `line:col: ` off a message (PromQL errors start with one).
pub fn split_line_col(message: &str) -> Option<(usize, usize)> {
    let (line, rest) = message.split_once(':')?;
    let (col, _) = rest.split_once(':')?;
    Some((line.trim().parse().ok()?, col.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn scalar_at<'a>(node: &'a Node, path: &[&str]) -> &'a MarkedScalarNode {
        let mut n = node;
        for key in path {
            n = match n {
                Node::Mapping(m) => m.get_node(key).unwrap(),
                Node::Sequence(s) => s.get_node(key.parse().unwrap()).unwrap(),
                Node::Scalar(_) => panic!("scalar"),
            };
        }
        n.as_scalar().unwrap()
    }

    #[test]
    fn positions_inside_plain_quoted_and_block_scalars() {
        let text = "a: sum(up\nb: \"rate(x)\"\nc: |\n  sum(up)\n    + )\nd: >-\n  foo\n  bar\n";
        let doc = parse_document(text).unwrap().unwrap();
        let a = scalar_at(&doc, &["a"]);
        assert_eq!(value_position(text, a, 0), Pos { line: 1, column: 4 });
        assert_eq!(
            value_position(text, a, 6),
            Pos {
                line: 1,
                column: 10
            }
        );
        let b = scalar_at(&doc, &["b"]);
        assert_eq!(
            value_position(text, b, 5),
            Pos {
                line: 2,
                column: 10
            }
        );
        let c = scalar_at(&doc, &["c"]);
        let off = line_col_offset(c.as_str(), 2, 5);
        assert_eq!(&c.as_str()[off..off + 1], ")");
        assert_eq!(value_position(text, c, off), Pos { line: 5, column: 7 });
        let d = scalar_at(&doc, &["d"]);
        assert_eq!(d.as_str(), "foo bar");
        assert_eq!(value_position(text, d, 4), Pos { line: 8, column: 3 });
    }

    #[test]
    fn empty_and_broken_documents() {
        for empty in ["", "# nothing\n---\n", "~\n", "---\n...\n"] {
            assert!(parse_document(empty).unwrap().is_none(), "{empty:?}");
        }
        let (pos, msg) = parse_document("groups: [\n").unwrap_err();
        assert_eq!(pos, Pos { line: 2, column: 1 });
        assert!(msg.starts_with("yaml: "), "{msg}");
        let (pos, msg) = parse_document("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(pos, Pos { line: 3, column: 1 });
        assert_eq!(msg, "yaml: mapping key \"a\" already defined at line 1");
        let (pos, msg) = parse_document("- a\n").unwrap_err();
        assert_eq!(pos, Pos { line: 1, column: 1 });
        assert_eq!(msg, "yaml: the top level must be a mapping");
        let (_, msg) = parse_document("? [a]\n: b\n").unwrap_err();
        assert_eq!(msg, "yaml: mapping keys must be scalars");
        // Only the first document counts.
        assert!(parse_document("a: 1\n---\nb: [[[\n").is_ok());
    }

    #[test]
    fn yaml_v2_words_and_resolves_as_alertmanager_reads_it() {
        let (pos, msg) = parse_root("a: 1\nb: 2\na: 3\n", GoYaml::V2).unwrap_err();
        assert_eq!(pos, Pos { line: 3, column: 1 });
        assert_eq!(msg, "yaml: key \"a\" already set in map (at line 1)");
        let root = parse_root("- yes\n", GoYaml::V2).unwrap().unwrap();
        assert_eq!(node_pos(&root), Pos { line: 1, column: 1 });
        let Node::Sequence(items) = &root else {
            panic!("{root:?}")
        };
        let yes = &items[0];
        assert_eq!(
            GoYaml::V2.cannot_unmarshal(yes, "int"),
            "cannot unmarshal !!bool `yes` into int"
        );
        assert_eq!(
            cannot_unmarshal(yes, "int"),
            "cannot unmarshal !!str `yes` into int"
        );
        assert!(parse_root("~\n", GoYaml::V2).unwrap().is_none());
    }

    #[test]
    fn line_col_helpers() {
        assert_eq!(split_line_col("1:7: parse error: x"), Some((1, 7)));
        assert_eq!(split_line_col("parse error"), None);
        assert_eq!(line_col_offset("ab\ncd", 2, 2), 4);
        assert_eq!(line_col_offset("ab", 1, 9), 2);
    }
}
