//! The lexer: Go's `text/template/parse/lex.go`, run to the end at once. A lexical error
//! becomes the last token, so the parser reports it only when it gets there, as Go does.

/// Keywords, which Go lexes as their own items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kw {
    Block,
    Break,
    Continue,
    Define,
    Else,
    End,
    If,
    Range,
    Template,
    With,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    Text(String),
    LeftDelim,
    RightDelim,
    Space,
    Bool(bool),
    /// `'a'`, as written.
    CharConst(String),
    /// A number as written.
    Number(String),
    /// `"…"` as written.
    Str(String),
    /// `` `…` `` as written.
    RawStr(String),
    /// `$` or `$name`.
    Variable(String),
    /// `.name` (one element of a field chain).
    Field(String),
    Dot,
    Nil,
    Ident(String),
    Kw(Kw),
    Pipe,
    Declare,
    Assign,
    LeftParen,
    RightParen,
    /// Any other printable ASCII character, e.g. the `,` of `$i, $e`.
    Char(char),
    Error(String),
    Eof,
}

impl Tok {
    /// How Go's `item.String()` shows a token in "unexpected …" messages.
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Eof => "EOF".to_owned(),
            Tok::Error(e) => e.clone(),
            Tok::Kw(k) => format!("<{}>", kw_name(*k)),
            Tok::Nil => "<nil>".to_owned(),
            Tok::Dot => "<.>".to_owned(),
            Tok::Text(s)
            | Tok::CharConst(s)
            | Tok::Number(s)
            | Tok::Str(s)
            | Tok::RawStr(s)
            | Tok::Variable(s)
            | Tok::Field(s)
            | Tok::Ident(s) => quote_short(s),
            Tok::Bool(b) => quote_short(if *b { "true" } else { "false" }),
            Tok::LeftDelim => "\"{{\"".to_owned(),
            Tok::RightDelim => "\"}}\"".to_owned(),
            Tok::Space => "\" \"".to_owned(),
            Tok::Pipe => "\"|\"".to_owned(),
            Tok::Declare => "\":=\"".to_owned(),
            Tok::Assign => "\"=\"".to_owned(),
            Tok::LeftParen => "\"(\"".to_owned(),
            Tok::RightParen => "\")\"".to_owned(),
            Tok::Char(c) => format!("{:?}", c.to_string()),
        }
    }
}

/// Go's `%.10q` of long items.
fn quote_short(s: &str) -> String {
    if s.chars().count() > 10 {
        format!("{:?}...", s.chars().take(10).collect::<String>())
    } else {
        format!("{s:?}")
    }
}

pub(super) fn kw_name(k: Kw) -> &'static str {
    match k {
        Kw::Block => "block",
        Kw::Break => "break",
        Kw::Continue => "continue",
        Kw::Define => "define",
        Kw::Else => "else",
        Kw::End => "end",
        Kw::If => "if",
        Kw::Range => "range",
        Kw::Template => "template",
        Kw::With => "with",
    }
}

const LEFT: &str = "{{";
const RIGHT: &str = "}}";

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

/// `- ` after `{{`.
fn has_left_trim(s: &str) -> bool {
    let mut c = s.chars();
    c.next() == Some('-') && c.next().is_some_and(is_space)
}

/// ` -` before `}}`.
fn has_right_trim(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(is_space) && c.next() == Some('-')
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    out: Vec<(usize, Tok)>,
    paren_depth: i32,
}

/// Lexes a whole template into tokens with their byte offsets; the last is `Eof` or `Error`.
pub(super) fn lex(src: &str) -> Vec<(usize, Tok)> {
    let mut l = Lexer {
        src,
        pos: 0,
        out: Vec::new(),
        paren_depth: 0,
    };
    if let Err((pos, msg)) = l.run() {
        l.out.push((pos, Tok::Error(msg)));
    } else {
        l.out.push((src.len(), Tok::Eof));
    }
    l.out
}

type LexResult = Result<(), (usize, String)>;

impl Lexer<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn run(&mut self) -> LexResult {
        let mut trim_next = false;
        loop {
            if trim_next {
                let rest = self.rest();
                self.pos += rest.len() - rest.trim_start_matches(is_space).len();
            }
            let Some(x) = self.rest().find(LEFT) else {
                if self.pos < self.src.len() {
                    self.out.push((self.pos, Tok::Text(self.rest().to_owned())));
                }
                return Ok(());
            };
            let delim = self.pos + x;
            let mut text = &self.src[self.pos..delim];
            let after = &self.src[delim + LEFT.len()..];
            let left_trim = has_left_trim(after);
            if left_trim {
                text = text.trim_end_matches(is_space);
            }
            if !text.is_empty() {
                self.out.push((self.pos, Tok::Text(text.to_owned())));
            }
            self.pos = delim + LEFT.len() + if left_trim { 2 } else { 0 };
            if self.rest().starts_with("/*") {
                trim_next = self.comment()?;
                continue;
            }
            self.out.push((delim, Tok::LeftDelim));
            self.paren_depth = 0;
            trim_next = self.inside_action()?;
        }
    }

    /// Whether the input is at `}}` or ` -}}`; returns (at delimiter, with trim marker).
    fn at_right_delim(&self) -> (bool, bool) {
        let rest = self.rest();
        if has_right_trim(rest) && rest[2..].starts_with(RIGHT) {
            return (true, true);
        }
        (rest.starts_with(RIGHT), false)
    }

    /// A comment after `{{`; returns whether the right delimiter trims.
    fn comment(&mut self) -> Result<bool, (usize, String)> {
        let start = self.pos;
        let Some(end) = self.rest()[2..].find("*/") else {
            return Err((start, "unclosed comment".to_owned()));
        };
        self.pos += 2 + end + 2;
        let (delim, trim) = self.at_right_delim();
        if !delim {
            return Err((start, "comment ends before closing delimiter".to_owned()));
        }
        self.pos += if trim { 2 } else { 0 } + RIGHT.len();
        Ok(trim)
    }

    /// Tokens of one action up to and including its right delimiter; returns whether it
    /// trims the following text.
    fn inside_action(&mut self) -> Result<bool, (usize, String)> {
        loop {
            let (delim, trim) = self.at_right_delim();
            if delim {
                if self.paren_depth != 0 {
                    return Err((self.pos, "unclosed left paren".to_owned()));
                }
                let at = self.pos + if trim { 2 } else { 0 };
                self.out.push((at, Tok::RightDelim));
                self.pos = at + RIGHT.len();
                return Ok(trim);
            }
            let start = self.pos;
            let Some(c) = self.peek() else {
                return Err((start, "unclosed action".to_owned()));
            };
            match c {
                c if is_space(c) => self.space(),
                '=' => self.single(Tok::Assign),
                ':' => {
                    if !self.rest().starts_with(":=") {
                        return Err((start, "expected :=".to_owned()));
                    }
                    self.pos += 2;
                    self.out.push((start, Tok::Declare));
                }
                '|' => self.single(Tok::Pipe),
                '"' => self.quote('"', "unterminated quoted string", true)?,
                '`' => {
                    let Some(end) = self.rest()[1..].find('`') else {
                        return Err((start, "unterminated raw quoted string".to_owned()));
                    };
                    let text = self.rest()[..end + 2].to_owned();
                    self.pos += end + 2;
                    self.out.push((start, Tok::RawStr(text)));
                }
                '\'' => self.quote('\'', "unterminated character constant", false)?,
                '$' => {
                    self.pos += 1;
                    self.field_or_variable(start, true)?;
                }
                '.' => {
                    // ".5" is a number; "." or ".Field" is not.
                    let next = self.rest()[1..].chars().next();
                    if next.is_some_and(|d| d.is_ascii_digit()) {
                        self.number()?;
                    } else {
                        self.pos += 1;
                        self.field_or_variable(start, false)?;
                    }
                }
                '+' | '-' | '0'..='9' => self.number()?,
                c if is_alnum(c) => self.identifier()?,
                '(' => {
                    self.single(Tok::LeftParen);
                    self.paren_depth += 1;
                }
                ')' => {
                    self.single(Tok::RightParen);
                    self.paren_depth -= 1;
                    if self.paren_depth < 0 {
                        return Err((start, "unexpected right paren U+0029 ')'".to_owned()));
                    }
                }
                c if c.is_ascii() && !c.is_ascii_control() => self.single(Tok::Char(c)),
                c => {
                    return Err((
                        start,
                        format!("unrecognized character in action: {}", go_u(c)),
                    ));
                }
            }
        }
    }

    fn single(&mut self, tok: Tok) {
        self.out.push((self.pos, tok));
        self.pos += 1;
    }

    fn space(&mut self) {
        let start = self.pos;
        let rest = self.rest();
        let n = rest.len() - rest.trim_start_matches(is_space).len();
        self.pos += n;
        // Leave the space of a ` -}}` to the right delimiter.
        let before = &self.src[self.pos - 1..];
        if has_right_trim(before) && before[2..].starts_with(RIGHT) {
            self.pos -= 1;
            if n == 1 {
                return;
            }
        }
        self.out.push((start, Tok::Space));
    }

    fn quote(&mut self, q: char, unterminated: &str, string: bool) -> LexResult {
        let start = self.pos;
        let mut chars = self.rest().char_indices().skip(1);
        loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, c)) if c != '\n' => {}
                    _ => return Err((start, unterminated.to_owned())),
                },
                Some((_, '\n')) | None => return Err((start, unterminated.to_owned())),
                Some((i, c)) if c == q => {
                    let text = self.rest()[..i + 1].to_owned();
                    self.pos += i + 1;
                    self.out.push((
                        start,
                        if string {
                            Tok::Str(text)
                        } else {
                            Tok::CharConst(text)
                        },
                    ));
                    return Ok(());
                }
                Some(_) => {}
            }
        }
    }

    /// Whether the next character ends an operand.
    fn at_terminator(&self) -> bool {
        match self.peek() {
            None => true,
            Some(c) if is_space(c) => true,
            Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            Some(_) => self.rest().starts_with(RIGHT),
        }
    }

    /// `$name` / `.name` after the `$` or `.` (already consumed).
    fn field_or_variable(&mut self, start: usize, variable: bool) -> LexResult {
        if self.at_terminator() {
            self.out.push((
                start,
                if variable {
                    Tok::Variable("$".to_owned())
                } else {
                    Tok::Dot
                },
            ));
            return Ok(());
        }
        let rest = self.rest();
        let n = rest.len() - rest.trim_start_matches(is_alnum).len();
        self.pos += n;
        if !self.at_terminator() {
            let c = self.peek().unwrap_or(' ');
            return Err((start, format!("bad character {}", go_u(c))));
        }
        let text = self.src[start..self.pos].to_owned();
        self.out.push((
            start,
            if variable {
                Tok::Variable(text)
            } else {
                Tok::Field(text)
            },
        ));
        Ok(())
    }

    fn identifier(&mut self) -> LexResult {
        let start = self.pos;
        let rest = self.rest();
        let n = rest.len() - rest.trim_start_matches(is_alnum).len();
        self.pos += n;
        if !self.at_terminator() {
            let c = self.peek().unwrap_or(' ');
            return Err((start, format!("bad character {}", go_u(c))));
        }
        let word = &self.src[start..self.pos];
        let tok = match word {
            "block" => Tok::Kw(Kw::Block),
            "break" => Tok::Kw(Kw::Break),
            "continue" => Tok::Kw(Kw::Continue),
            "define" => Tok::Kw(Kw::Define),
            "else" => Tok::Kw(Kw::Else),
            "end" => Tok::Kw(Kw::End),
            "if" => Tok::Kw(Kw::If),
            "range" => Tok::Kw(Kw::Range),
            "template" => Tok::Kw(Kw::Template),
            "with" => Tok::Kw(Kw::With),
            "nil" => Tok::Nil,
            "true" => Tok::Bool(true),
            "false" => Tok::Bool(false),
            w => Tok::Ident(w.to_owned()),
        };
        self.out.push((start, tok));
        Ok(())
    }

    /// Go's `scanNumber`: the syntax only; the parser decides the value.
    fn number(&mut self) -> LexResult {
        let start = self.pos;
        let b = self.src.as_bytes();
        let mut i = self.pos;
        let accept = |i: &mut usize, set: &str| -> bool {
            if *i < b.len() && set.as_bytes().contains(&b[*i]) {
                *i += 1;
                true
            } else {
                false
            }
        };
        let accept_run = |i: &mut usize, set: &str| {
            while *i < b.len() && set.as_bytes().contains(&b[*i]) {
                *i += 1;
            }
        };
        accept(&mut i, "+-");
        let mut digits = "0123456789_";
        if accept(&mut i, "0") {
            if accept(&mut i, "xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if accept(&mut i, "oO") {
                digits = "01234567_";
            } else if accept(&mut i, "bB") {
                digits = "01_";
            }
        }
        accept_run(&mut i, digits);
        if accept(&mut i, ".") {
            accept_run(&mut i, digits);
        }
        if digits.len() == 11 && accept(&mut i, "eE") {
            accept(&mut i, "+-");
            accept_run(&mut i, "0123456789_");
        }
        if digits.len() == 23 && accept(&mut i, "pP") {
            accept(&mut i, "+-");
            accept_run(&mut i, "0123456789_");
        }
        accept(&mut i, "i");
        let next = self.src[i..].chars().next();
        if next.is_some_and(is_alnum) {
            let end = i + next.map_or(0, char::len_utf8);
            return Err((
                start,
                format!("bad number syntax: {:?}", &self.src[start..end]),
            ));
        }
        self.pos = i;
        self.out
            .push((start, Tok::Number(self.src[start..i].to_owned())));
        Ok(())
    }
}

/// Go's `%#U`: `U+0023 '#'`.
pub(super) fn go_u(c: char) -> String {
    format!("U+{:04X} '{c}'", c as u32)
}
