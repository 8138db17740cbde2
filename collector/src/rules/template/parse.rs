//! The parser: Go's `text/template/parse/parse.go`. It builds the tree, resolves function
//! names against the library and variable names against their scopes, and keeps every node's
//! byte offset so render errors can say where they happened, as Go's do.

use std::collections::BTreeMap;
use std::fmt;

use super::lex::{Kw, Tok, lex};
use super::{Library, TemplateError, Value, err, funcs};

/// The deepest nesting of control structures and parentheses a template may have. Go allows
/// more; the recursive parser needs up to 10 KiB of stack per level in debug builds, and rules
/// load on the runtime's threads, whose stacks are 2 MiB.
const MAX_DEPTH: usize = 50;

/// A parsed template: the main list and the templates it defines.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Tree {
    pub root: Vec<Node>,
    pub defs: BTreeMap<String, Vec<Node>>,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Node {
    Text(String),
    /// `{{ pipeline }}`, with its offset.
    Action(usize, Pipe),
    If(Branch),
    With(Branch),
    Range(Branch),
    Break,
    Continue,
    /// `{{ template "name" pipeline }}`; the offset is the name's.
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub(super) struct Branch {
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) struct Pipe {
    pub pos: usize,
    /// `$x = …` rather than `$x := …`.
    pub is_assign: bool,
    pub decl: Vec<String>,
    pub cmds: Vec<Command>,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) struct Command {
    pub pos: usize,
    pub args: Vec<Arg>,
}

/// An operand.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Arg {
    /// `.A.B`. As in Go, a chain's offset is that of its second element.
    Field {
        pos: usize,
        idents: Vec<String>,
    },
    /// `$x.A.B` (`name` includes the `$`).
    Variable {
        pos: usize,
        name: String,
        idents: Vec<String>,
    },
    /// `(pipeline).A.B` or `func.A`.
    Chain {
        pos: usize,
        node: Box<Arg>,
        fields: Vec<String>,
    },
    Dot(usize),
    Nil(usize),
    Bool(usize, bool),
    /// A number literal: its text, and the value Go gives it when it is not converted to a
    /// parameter's type (an `int` unless it looks like a float), or Go's overflow message.
    Number {
        pos: usize,
        text: String,
        value: Result<Value, String>,
    },
    Str {
        pos: usize,
        quoted: String,
        value: String,
    },
    Ident(usize, String),
    Pipe(Box<Pipe>),
}

impl Arg {
    pub(super) fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. }
            | Arg::Variable { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Number { pos, .. }
            | Arg::Str { pos, .. }
            | Arg::Dot(pos)
            | Arg::Nil(pos)
            | Arg::Bool(pos, _)
            | Arg::Ident(pos, _) => *pos,
            Arg::Pipe(p) => p.pos,
        }
    }
}

// Go's `String()` of nodes, which render errors quote as their context.

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Field { idents, .. } => {
                for i in idents {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Variable { name, idents, .. } => {
                f.write_str(name)?;
                for i in idents {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Chain { node, fields, .. } => {
                match node.as_ref() {
                    Arg::Pipe(p) => write!(f, "({p})")?,
                    other => write!(f, "{other}")?,
                }
                for i in fields {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Dot(_) => f.write_str("."),
            Arg::Nil(_) => f.write_str("nil"),
            Arg::Bool(_, b) => write!(f, "{b}"),
            Arg::Number { text, .. } => f.write_str(text),
            Arg::Str { quoted, .. } => f.write_str(quoted),
            Arg::Ident(_, name) => f.write_str(name),
            Arg::Pipe(p) => write!(f, "{p}"),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            match arg {
                Arg::Pipe(p) => write!(f, "({p})")?,
                other => write!(f, "{other}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl Tree {
    pub(super) fn uses_function(&self, name: &str) -> bool {
        fn in_arg(a: &Arg, name: &str) -> bool {
            match a {
                Arg::Ident(_, n) => n == name,
                Arg::Chain { node, .. } => in_arg(node, name),
                Arg::Pipe(p) => in_pipe(p, name),
                _ => false,
            }
        }
        fn in_pipe(p: &Pipe, name: &str) -> bool {
            p.cmds.iter().flat_map(|c| &c.args).any(|a| in_arg(a, name))
        }
        fn in_list(l: &[Node], name: &str) -> bool {
            l.iter().any(|n| match n {
                Node::Action(_, p) => in_pipe(p, name),
                Node::If(b) | Node::With(b) | Node::Range(b) => {
                    in_pipe(&b.pipe, name)
                        || in_list(&b.list, name)
                        || b.else_list.as_deref().is_some_and(|l| in_list(l, name))
                }
                Node::Template { pipe, .. } => pipe.as_ref().is_some_and(|p| in_pipe(p, name)),
                Node::Text(_) | Node::Break | Node::Continue => false,
            })
        }
        in_list(&self.root, name) || self.defs.values().any(|l| in_list(l, name))
    }
}

/// What ended a list of nodes.
enum End {
    End,
    /// `{{else}}`, or the offset of the `if`/`with` of `{{else if …}}`/`{{else with …}}` (left
    /// for the caller to parse).
    Else(Option<(usize, Kw)>),
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    i: usize,
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
    library: Library,
    defs: BTreeMap<String, Vec<Node>>,
}

type PResult<T> = Result<T, TemplateError>;

/// Parses `src`, with the variables `vars` (and `$`) declared.
pub(super) fn parse(src: &str, library: Library, vars: &[&str]) -> PResult<Tree> {
    let mut p = Parser {
        toks: lex(src),
        i: 0,
        vars: std::iter::once("$")
            .chain(vars.iter().copied())
            .map(str::to_owned)
            .collect(),
        range_depth: 0,
        depth: 0,
        library,
        defs: BTreeMap::new(),
    };
    let mut root = Vec::new();
    loop {
        if matches!(p.peek(), Tok::Eof) {
            break;
        }
        // `{{define}}` is only allowed at the top level.
        if matches!(p.peek(), Tok::LeftDelim) {
            let save = p.i;
            p.next();
            if matches!(p.peek_non_space(), Tok::Kw(Kw::Define)) {
                p.next_non_space();
                p.definition()?;
                continue;
            }
            p.i = save;
        }
        match p.text_or_action()? {
            Item::Node(n) => root.push(n),
            Item::End(pos, End::End) => return Err(err(pos, "unexpected {{end}}")),
            Item::End(pos, End::Else(_)) => return Err(err(pos, "unexpected {{else}}")),
        }
    }
    Ok(Tree { root, defs: p.defs })
}

enum Item {
    Node(Node),
    End(usize, End),
}

impl Parser {
    fn peek(&self) -> &Tok {
        self.toks.get(self.i).map_or(&Tok::Eof, |(_, t)| t)
    }

    fn pos(&self) -> usize {
        self.toks.get(self.i).map_or(0, |(p, _)| *p)
    }

    fn next(&mut self) -> (usize, Tok) {
        let t = self.toks.get(self.i).cloned().unwrap_or((0, Tok::Eof));
        if self.i < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Tok::Space) {
            self.i += 1;
        }
    }

    fn peek_non_space(&mut self) -> &Tok {
        self.skip_space();
        self.peek()
    }

    fn next_non_space(&mut self) -> (usize, Tok) {
        self.skip_space();
        self.next()
    }

    /// Go's `unexpected`: an error token is reported as itself.
    fn unexpected(&self, pos: usize, tok: &Tok, context: &str) -> TemplateError {
        match tok {
            Tok::Error(e) => err(pos, e.clone()),
            t => err(pos, format!("unexpected {} in {context}", t.describe())),
        }
    }

    fn expect_right_delim(&mut self, context: &str) -> PResult<usize> {
        match self.next_non_space() {
            (pos, Tok::RightDelim) => Ok(pos),
            (pos, t) => Err(self.unexpected(pos, &t, context)),
        }
    }

    fn deeper(&mut self, pos: usize) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(pos, "max expression depth exceeded"));
        }
        Ok(())
    }

    fn text_or_action(&mut self) -> PResult<Item> {
        match self.next_non_space() {
            (_, Tok::Text(t)) => Ok(Item::Node(Node::Text(t))),
            (_, Tok::LeftDelim) => self.action(),
            (pos, t) => Err(self.unexpected(pos, &t, "input")),
        }
    }

    /// The inside of `{{ … }}` after the left delimiter.
    fn action(&mut self) -> PResult<Item> {
        let (pos, tok) = {
            self.skip_space();
            (self.pos(), self.peek().clone())
        };
        match tok {
            Tok::Kw(Kw::Block) => {
                self.next();
                self.block(pos)
            }
            Tok::Kw(Kw::Break) => {
                self.next();
                self.expect_right_delim("{{break}}")?;
                if self.range_depth == 0 {
                    return Err(err(pos, "{{break}} outside {{range}}"));
                }
                Ok(Item::Node(Node::Break))
            }
            Tok::Kw(Kw::Continue) => {
                self.next();
                self.expect_right_delim("{{continue}}")?;
                if self.range_depth == 0 {
                    return Err(err(pos, "{{continue}} outside {{range}}"));
                }
                Ok(Item::Node(Node::Continue))
            }
            Tok::Kw(Kw::Else) => {
                self.next();
                // `{{else if …}}` and `{{else with …}}` leave the keyword to the caller.
                match self.peek_non_space().clone() {
                    Tok::Kw(k @ (Kw::If | Kw::With)) => {
                        let kpos = self.pos();
                        Ok(Item::End(pos, End::Else(Some((kpos, k)))))
                    }
                    _ => {
                        self.expect_right_delim("else")?;
                        Ok(Item::End(pos, End::Else(None)))
                    }
                }
            }
            Tok::Kw(Kw::End) => {
                self.next();
                self.expect_right_delim("end")?;
                Ok(Item::End(pos, End::End))
            }
            Tok::Kw(Kw::If) => {
                self.next();
                Ok(Item::Node(self.control(Kw::If, pos)?))
            }
            Tok::Kw(Kw::Range) => {
                self.next();
                Ok(Item::Node(self.control(Kw::Range, pos)?))
            }
            Tok::Kw(Kw::With) => {
                self.next();
                Ok(Item::Node(self.control(Kw::With, pos)?))
            }
            Tok::Kw(Kw::Template) => {
                self.next();
                self.template_call().map(Item::Node)
            }
            Tok::Kw(Kw::Define) => Err(err(pos, "unexpected <define> in command")),
            _ => {
                let pipe = self.pipeline("command", true)?;
                Ok(Item::Node(Node::Action(pos, pipe)))
            }
        }
    }

    /// Nodes up to `{{end}}` or `{{else…}}`.
    fn item_list(&mut self) -> PResult<(Vec<Node>, usize, End)> {
        let mut list = Vec::new();
        loop {
            if matches!(self.peek_non_space(), Tok::Eof) {
                return Err(err(self.pos(), "unexpected EOF"));
            }
            if let Tok::Error(e) = self.peek() {
                return Err(err(self.pos(), e.clone()));
            }
            match self.text_or_action()? {
                Item::Node(n) => list.push(n),
                Item::End(pos, end) => return Ok((list, pos, end)),
            }
        }
    }

    /// `if`, `with` or `range` after the keyword, up to its `{{end}}`.
    fn control(&mut self, kind: Kw, pos: usize) -> PResult<Node> {
        self.deeper(pos)?;
        let vars = self.vars.len();
        let context = super::lex::kw_name(kind);
        let pipe = self.pipeline(context, true)?;
        if kind == Kw::Range {
            self.range_depth += 1;
        }
        let listed = self.item_list();
        if kind == Kw::Range {
            self.range_depth -= 1;
        }
        let (list, _, end) = listed?;
        let else_list = match end {
            End::End => None,
            // `{{if a}}…{{else if b}}…{{end}}` is `{{if a}}…{{else}}{{if b}}…{{end}}{{end}}`
            // with one `{{end}}`; the same for `with` (Go 1.23).
            End::Else(Some((kpos, k))) if k == kind && kind != Kw::Range => {
                self.next_non_space();
                Some(vec![self.control(kind, kpos)?])
            }
            End::Else(_) => {
                let (else_list, epos, end) = self.item_list()?;
                if !matches!(end, End::End) {
                    return Err(err(epos, "expected end; found {{else}}"));
                }
                Some(else_list)
            }
        };
        self.vars.truncate(vars);
        self.depth -= 1;
        let branch = Branch {
            pipe,
            list,
            else_list,
        };
        Ok(match kind {
            Kw::If => Node::If(branch),
            Kw::With => Node::With(branch),
            _ => Node::Range(branch),
        })
    }

    /// A template name (a string constant).
    fn template_name(&mut self, context: &str) -> PResult<(usize, String)> {
        match self.next_non_space() {
            (pos, Tok::Str(q)) => Ok((pos, unquote(&q).map_err(|m| err(pos, m))?)),
            (pos, Tok::RawStr(q)) => Ok((pos, unquote_raw(&q))),
            (pos, t) => Err(self.unexpected(pos, &t, context)),
        }
    }

    /// `{{template "name" pipeline}}` after the keyword.
    fn template_call(&mut self) -> PResult<Node> {
        let (pos, name) = self.template_name("template clause")?;
        let pipe = if matches!(self.peek_non_space(), Tok::RightDelim) {
            self.next();
            None
        } else {
            Some(self.pipeline("template clause", true)?)
        };
        Ok(Node::Template { pos, name, pipe })
    }

    /// `{{define "name"}}…{{end}}` after the keyword.
    fn definition(&mut self) -> PResult<()> {
        let (pos, name) = self.template_name("define clause")?;
        self.expect_right_delim("define clause")?;
        let vars = std::mem::replace(&mut self.vars, vec!["$".to_owned()]);
        let range_depth = std::mem::take(&mut self.range_depth);
        let listed = self.item_list();
        self.vars = vars;
        self.range_depth = range_depth;
        let (list, epos, end) = listed?;
        if !matches!(end, End::End) {
            return Err(err(epos, "unexpected {{else}} in define clause"));
        }
        self.add_def(pos, name, list)
    }

    fn add_def(&mut self, pos: usize, name: String, list: Vec<Node>) -> PResult<()> {
        let empty = |l: &[Node]| {
            l.iter()
                .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()))
        };
        match self.defs.get(&name) {
            Some(old) if !empty(old) && !empty(&list) => Err(err(
                pos,
                format!("template: multiple definition of template {name:?}"),
            )),
            Some(_) if empty(&list) => Ok(()),
            _ => {
                self.defs.insert(name, list);
                Ok(())
            }
        }
    }

    /// `{{block "name" pipeline}}…{{end}}`: a definition and a call.
    fn block(&mut self, _pos: usize) -> PResult<Item> {
        let (pos, name) = self.template_name("block clause")?;
        let pipe = self.pipeline("block clause", true)?;
        self.deeper(pos)?;
        let vars = std::mem::replace(&mut self.vars, vec!["$".to_owned()]);
        let range_depth = std::mem::take(&mut self.range_depth);
        let listed = self.item_list();
        self.vars = vars;
        self.range_depth = range_depth;
        self.depth -= 1;
        let (list, epos, end) = listed?;
        if !matches!(end, End::End) {
            return Err(err(epos, "unexpected {{else}} in block clause"));
        }
        self.add_def(pos, name.clone(), list)?;
        Ok(Item::Node(Node::Template {
            pos,
            name,
            pipe: Some(pipe),
        }))
    }

    /// A pipeline up to `}}` (`delim`) or `)`.
    fn pipeline(&mut self, context: &str, delim: bool) -> PResult<Pipe> {
        self.skip_space();
        let mut pipe = Pipe {
            pos: self.pos(),
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        // Declarations: `$x :=`, `$x =`, `$i, $e :=` (range only).
        loop {
            self.skip_space();
            let (vpos, Tok::Variable(name)) = (self.pos(), self.peek().clone()) else {
                break;
            };
            let save = self.i;
            self.next();
            match self.peek_non_space().clone() {
                Tok::Declare | Tok::Assign => {
                    pipe.is_assign = matches!(self.peek(), Tok::Assign);
                    self.next();
                    pipe.decl.push(name.clone());
                    self.vars.push(name);
                    break;
                }
                Tok::Char(',') => {
                    self.next();
                    pipe.decl.push(name.clone());
                    self.vars.push(name);
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space() {
                            Tok::Variable(_) | Tok::RightDelim | Tok::RightParen => continue,
                            _ => {
                                return Err(err(vpos, "range can only initialize variables"));
                            }
                        }
                    }
                    return Err(err(vpos, format!("too many declarations in {context}")));
                }
                _ => {
                    self.i = save;
                    break;
                }
            }
        }
        loop {
            let (pos, tok) = self.next_non_space();
            match tok {
                Tok::RightDelim if delim => break,
                Tok::RightParen if !delim => break,
                Tok::Bool(_)
                | Tok::CharConst(_)
                | Tok::Dot
                | Tok::Field(_)
                | Tok::Ident(_)
                | Tok::Number(_)
                | Tok::Nil
                | Tok::RawStr(_)
                | Tok::Str(_)
                | Tok::Variable(_)
                | Tok::LeftParen => {
                    self.i -= 1;
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                t => return Err(self.unexpected(pos, &t, context)),
            }
        }
        if pipe.cmds.is_empty() {
            return Err(err(pipe.pos, format!("missing value for {context}")));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args[0],
                Arg::Bool(..) | Arg::Dot(_) | Arg::Nil(_) | Arg::Number { .. } | Arg::Str { .. }
            ) {
                return Err(err(
                    c.pos,
                    format!("non executable command in pipeline stage {}", i + 1),
                ));
            }
        }
        Ok(pipe)
    }

    /// Go's `command`: operands separated by spaces, up to `|`, `)` or `}}`.
    fn command(&mut self) -> PResult<Command> {
        self.skip_space();
        let mut cmd = Command {
            pos: self.pos(),
            args: Vec::new(),
        };
        loop {
            self.skip_space();
            if let Some(arg) = self.operand()? {
                cmd.args.push(arg);
            }
            let (pos, tok) = self.next();
            match tok {
                Tok::Space => continue,
                Tok::RightDelim | Tok::RightParen => self.i -= 1,
                Tok::Pipe => {}
                t => return Err(self.unexpected(pos, &t, "operand")),
            }
            break;
        }
        if cmd.args.is_empty() {
            return Err(err(cmd.pos, "empty command"));
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if !matches!(self.peek(), Tok::Field(_)) {
            return Ok(Some(node));
        }
        let chain_pos = self.pos();
        let mut fields = Vec::new();
        while let Tok::Field(f) = self.peek().clone() {
            self.next();
            fields.push(f[1..].to_owned());
        }
        Ok(Some(match node {
            Arg::Field { mut idents, .. } => {
                idents.extend(fields);
                Arg::Field {
                    pos: chain_pos,
                    idents,
                }
            }
            Arg::Variable {
                name, mut idents, ..
            } => {
                idents.extend(fields);
                Arg::Variable {
                    pos: chain_pos,
                    name,
                    idents,
                }
            }
            n @ (Arg::Bool(..)
            | Arg::Str { .. }
            | Arg::Number { .. }
            | Arg::Nil(_)
            | Arg::Dot(_)) => {
                return Err(err(
                    chain_pos,
                    format!("unexpected . after term {:?}", n.to_string()),
                ));
            }
            n => Arg::Chain {
                pos: chain_pos,
                node: Box::new(n),
                fields,
            },
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        self.skip_space();
        let (pos, tok) = (self.pos(), self.peek().clone());
        let arg = match tok {
            Tok::Ident(name) => {
                if !funcs::exists(self.library, &name) {
                    return Err(err(pos, format!("function {name:?} not defined")));
                }
                Arg::Ident(pos, name)
            }
            Tok::Dot => Arg::Dot(pos),
            Tok::Nil => Arg::Nil(pos),
            Tok::Variable(name) => {
                if !self.vars.contains(&name) {
                    return Err(err(pos, format!("undefined variable {name:?}")));
                }
                Arg::Variable {
                    pos,
                    name,
                    idents: Vec::new(),
                }
            }
            Tok::Field(f) => Arg::Field {
                pos,
                idents: vec![f[1..].to_owned()],
            },
            Tok::Bool(b) => Arg::Bool(pos, b),
            Tok::Number(text) => number(pos, text, false)?,
            Tok::CharConst(text) => number(pos, text, true)?,
            Tok::LeftParen => {
                self.next();
                self.deeper(pos)?;
                let pipe = self.pipeline("parenthesized pipeline", false)?;
                self.depth -= 1;
                return Ok(Some(Arg::Pipe(Box::new(pipe))));
            }
            Tok::Str(q) => Arg::Str {
                pos,
                value: unquote(&q).map_err(|m| err(pos, m))?,
                quoted: q,
            },
            Tok::RawStr(q) => Arg::Str {
                pos,
                value: unquote_raw(&q),
                quoted: q,
            },
            Tok::Error(e) => return Err(err(pos, e)),
            _ => return Ok(None),
        };
        self.next();
        Ok(Some(arg))
    }
}

/// Go's `newNumber` plus `idealConstant`: the value a literal has when nothing converts it.
fn number(pos: usize, text: String, char_const: bool) -> PResult<Arg> {
    let value = if char_const {
        let inner = &text[1..text.len() - 1];
        let s = unescape(inner, '\'').map_err(|m| err(pos, m))?;
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Ok(Value::Int(i64::from(u32::from(c)))),
            _ => return Err(err(pos, format!("malformed character constant: {text}"))),
        }
    } else {
        if text.ends_with('i') {
            return Err(err(
                pos,
                format!("complex numbers are not supported: {text:?}"),
            ));
        }
        let looks_float = !is_hex_int(&text) && text.contains(['.', 'e', 'E', 'p', 'P']);
        match (parse_int(&text), looks_float) {
            (Some(Ok(i)), false) => Ok(Value::Int(i)),
            (Some(Err(())), false) => Err(format!("{text} overflows int")),
            (_, _) => match parse_float(&text) {
                Some(f) if looks_float => Ok(Value::Float(f)),
                Some(_) => return Err(err(pos, format!("integer overflow: {text:?}"))),
                None => return Err(err(pos, format!("illegal number syntax: {text:?}"))),
            },
        }
    };
    Ok(Arg::Number { pos, text, value })
}

fn is_hex_int(s: &str) -> bool {
    let s = s.trim_start_matches(['+', '-']);
    s.len() > 2 && (s.starts_with("0x") || s.starts_with("0X")) && !s.contains(['p', 'P'])
}

/// Go's `strconv.ParseInt(text, 0, 64)`: `Some(Ok)` for an integer, `Some(Err)` for one that
/// overflows, `None` for anything else.
fn parse_int(text: &str) -> Option<Result<i64, ()>> {
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d, true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d, true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d, true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..], true)
    } else {
        (10, lower.as_str(), false)
    };
    // Underscores may only separate digits (and follow a base prefix).
    let bad_underscore =
        digits.starts_with('_') && !prefixed || digits.ends_with('_') || digits.contains("__");
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if clean.is_empty() || bad_underscore || !clean.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u128::from_str_radix(&clean, radix).ok();
    Some(match magnitude {
        Some(m) if neg && m <= 1u128 << 63 => Ok((m as i128).wrapping_neg() as i64),
        Some(m) if !neg && m <= i64::MAX as u128 => Ok(m as i64),
        _ => Err(()),
    })
}

/// Go's `strconv.ParseFloat` for decimal literals (hexadecimal floats are refused).
fn parse_float(text: &str) -> Option<f64> {
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    if clean.contains(['x', 'X']) {
        return None;
    }
    clean.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Go's `strconv.Unquote` of a `"…"` literal.
pub(super) fn unquote(quoted: &str) -> Result<String, String> {
    unescape(&quoted[1..quoted.len() - 1], '"')
}

/// A raw string's value: the text between the backquotes, carriage returns dropped.
fn unquote_raw(quoted: &str) -> String {
    quoted[1..quoted.len() - 1].replace('\r', "")
}

fn unescape(inner: &str, quote: char) -> Result<String, String> {
    let invalid = || "invalid syntax".to_owned();
    let mut out: Vec<u8> = Vec::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    let push = |out: &mut Vec<u8>, c: char| {
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            push(&mut out, c);
            continue;
        }
        let Some(e) = chars.next() else {
            return Err(invalid());
        };
        let mut hex = |n: usize| -> Result<u32, String> {
            let digits: String = (0..n).filter_map(|_| chars.next()).collect();
            if digits.len() != n {
                return Err(invalid());
            }
            u32::from_str_radix(&digits, 16).map_err(|_| invalid())
        };
        match e {
            'a' => out.push(7),
            'b' => out.push(8),
            'f' => out.push(12),
            'n' => out.push(b'\n'),
            'r' => out.push(b'\r'),
            't' => out.push(b'\t'),
            'v' => out.push(11),
            '\\' => out.push(b'\\'),
            '\'' | '"' if e == quote => out.push(e as u8),
            'x' => out.push(hex(2)? as u8),
            'u' => push(&mut out, char::from_u32(hex(4)?).ok_or_else(invalid)?),
            'U' => push(&mut out, char::from_u32(hex(8)?).ok_or_else(invalid)?),
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let d = chars
                        .next()
                        .and_then(|d| d.to_digit(8))
                        .ok_or_else(invalid)?;
                    v = v * 8 + d;
                }
                if v > 255 {
                    return Err(invalid());
                }
                out.push(v as u8);
            }
            _ => return Err(invalid()),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}
