//! The post-mortem as GitHub-flavoured Markdown. All text from the data is escaped: Markdown
//! punctuation gets a backslash, `<` and `&` cannot start HTML or entities, and in tables `|`
//! is escaped and newlines become `<br>`.

use std::fmt::Write as _;

use super::Input;
use super::document::{Block, Document, Inline, Table, build};

/// The post-mortem as Markdown that renders well on GitHub: the title, a header table, the key
/// moments with their durations, the timeline with its milestones in bold and marked ◆, the
/// change (deployments, commits, verification analyses and verdict), the leads, then the
/// SRE-book sections, filled from the data where it says something and headed blanks
/// (`_To be written._`) otherwise.
pub fn render_markdown(input: &Input) -> String {
    markdown(&build(input))
}

fn markdown(doc: &Document) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {}\n",
        escape_with(&one_line(&doc.title), false, false)
    );
    let _ = writeln!(out, "{}\n", line(&doc.byline, false));
    for block in &doc.blocks {
        match block {
            Block::Heading { level, text, .. } => {
                let hashes = "#".repeat(usize::from(*level));
                let _ = writeln!(
                    out,
                    "{hashes} {}\n",
                    escape_with(&one_line(text), false, false)
                );
            }
            Block::Para(l) => {
                let _ = writeln!(out, "{}\n", line(l, false));
            }
            Block::List(items) => {
                for item in items {
                    let _ = writeln!(out, "- {}", line(item, false));
                }
                out.push('\n');
            }
            Block::Table(t) => table(&mut out, t),
            Block::Chart => {}
        }
    }
    // One newline at the end.
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn table(out: &mut String, t: &Table) {
    if t.md_caption {
        let _ = writeln!(
            out,
            "**{}**\n",
            escape_with(&one_line(&t.caption), false, false)
        );
    }
    let head: Vec<String> = t.head.iter().map(|h| cell_text(h)).collect();
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(t.head.len()));
    for row in &t.rows {
        let cells: Vec<String> = (0..t.head.len())
            .map(|n| {
                let cell = row.cells.get(n).map(Vec::as_slice).unwrap_or(&[]);
                let text = line(cell, true);
                let header = t.row_headers && n == 0;
                if (row.strong || header) && !text.is_empty() {
                    format!("**{text}**")
                } else {
                    text
                }
            })
            .collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
}

fn cell_text(s: &str) -> String {
    escape_cell(&escape_with(s, false, false))
}

/// In a table cell a newline would end the row (`|` is escaped with the rest of the
/// punctuation).
fn escape_cell(s: &str) -> String {
    s.replace("\r\n", "<br>").replace(['\n', '\r'], "<br>")
}

fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn line(l: &[Inline], in_table: bool) -> String {
    let mut out = String::new();
    for (n, inline) in l.iter().enumerate() {
        let esc = |s: &str| escape_with(s, n == 0, !in_table);
        let piece = match inline {
            Inline::Text(s) | Inline::Time(s) => esc(s),
            Inline::Strong(s) if s.is_empty() => String::new(),
            Inline::Strong(s) => format!("**{}**", escape_with(s, false, !in_table)),
            Inline::Em(s) if s.is_empty() => String::new(),
            Inline::Em(s) => format!("_{}_", escape_with(s, false, !in_table)),
            Inline::Code(s) => code_span(s, in_table),
        };
        out.push_str(&piece);
    }
    if in_table {
        escape_cell(&out)
    } else {
        // A newline in a paragraph or list item: a hard line break, indented so a list item
        // goes on.
        out.replace("\r\n", "\n")
            .replace('\r', "\n")
            .replace('\n', "<br>\n  ")
    }
}

/// A code span that holds `s` whatever backticks it contains (CommonMark: a fence longer
/// than any run inside, with spaces when it starts or ends with a backtick). In a table, `|`
/// is escaped (GitHub splits cells before it reads code spans, and reads `\|` as `|` inside
/// them); text with a backslash before a `|` cannot be written that way and becomes escaped
/// plain text.
fn code_span(s: &str, in_table: bool) -> String {
    let mut s = one_line(s);
    if s.is_empty() {
        return String::new();
    }
    if in_table {
        if s.contains("\\|") {
            return escape_with(&s, false, false);
        }
        s = s.replace('|', "\\|");
    }
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// Escapes text so Markdown shows it as it is: a backslash before every ASCII punctuation
/// character that means something inline, `<` and `&` included (no raw HTML, no entities),
/// and before a character that would start a block (`-`, `+`, `=`, `1.`) at the start.
///
/// `at_start` says whether the text begins a line, and `blocks` whether a line can begin a
/// block at all (it cannot in a table cell or a heading).
fn escape_with(s: &str, at_start: bool, blocks: bool) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut at_start = at_start && blocks;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '~' | '&' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '-' | '+' | '=' if at_start => {
                out.push('\\');
                out.push(c);
            }
            '0'..='9' if at_start => {
                // `1.` or `1)` at the start of a line is an ordered list.
                out.push(c);
                while let Some(&d) = chars.peek() {
                    if d.is_ascii_digit() {
                        out.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if let Some(&d) = chars.peek()
                    && (d == '.' || d == ')')
                {
                    out.push('\\');
                    out.push(d);
                    chars.next();
                }
            }
            _ => out.push(c),
        }
        at_start = blocks && (c == '\n' || (at_start && c == ' '));
    }
    out
}
