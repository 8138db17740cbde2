//! The post-mortem as one self-contained, accessible HTML file: inline CSS, an inline SVG
//! chart, no script and no external request of any kind (no stylesheet, font, image or
//! script URL), so it can be attached to a ticket or opened offline.
//!
//! Accessibility (WCAG 2.1 AA, checked with axe-core by `collector/tests/postmortem_a11y.rs`):
//! `lang`, a `<title>`, `header`/`nav`/`main`/`footer` landmarks, one `h1` then `h2`/`h3` in
//! order, every table with a `<caption>` and `<th scope>`, text colours of at least 4.5:1
//! against their background, milestones marked by a symbol and words as well as by weight and
//! colour, and the chart an `<svg role="img">` with a `<title>` and a `<desc>` that says in
//! words what it shows.

use std::fmt::Write as _;

use super::document::{Block, Document, Inline, Table, build};
use super::{Input, SCHEMA, chart, key_moments};

/// Escapes text for HTML element content and quoted attribute values.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Text with its newlines kept as line breaks.
fn escape_lines(s: &str) -> String {
    escape(s)
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "<br>")
}

const CSS: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #ffffff; color: #1a1a1a;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "DejaVu Sans", Arial, sans-serif; }
header, main, footer { max-width: 88rem; margin: 0 auto; padding: 0 1.5rem; }
header { padding-top: 1.25rem; padding-bottom: 0.75rem; border-bottom: 2px solid #d0d7de; }
.kicker { margin: 0; font-size: 0.8rem; font-weight: 600; letter-spacing: 0.08em; text-transform: uppercase; color: #4b5563; }
h1 { margin: 0.2rem 0 0.4rem; font-size: 1.9rem; line-height: 1.25; overflow-wrap: anywhere; }
h2 { margin: 2.25rem 0 0.6rem; padding-bottom: 0.3rem; font-size: 1.45rem; border-bottom: 1px solid #d0d7de; }
h3 { margin: 1.5rem 0 0.5rem; font-size: 1.15rem; }
p, li { max-width: 60rem; overflow-wrap: anywhere; }
.byline { margin: 0 0 0.5rem; color: #4b5563; }
nav ul { display: flex; flex-wrap: wrap; gap: 0.2rem 1.1rem; margin: 0.5rem 0 0; padding: 0; list-style: none; font-size: 0.9rem; }
a { color: #0b57d0; text-decoration: underline; }
a:focus-visible { outline: 3px solid #1a1a1a; outline-offset: 2px; }
.skip { position: absolute; left: -10000px; top: 0; }
.skip:focus { left: 1rem; top: 0.5rem; padding: 0.3rem 0.6rem; background: #ffffff; }
.table-scroll { margin: 0.75rem 0 1.25rem; overflow-x: auto; }
.table-scroll:focus-visible { outline: 3px solid #1a1a1a; outline-offset: 2px; }
table { width: 100%; border-collapse: collapse; font-size: 0.875rem; }
table.fields { width: auto; min-width: 50%; }
caption { padding: 0.2rem 0; text-align: left; font-weight: 600; }
th, td { padding: 0.3rem 0.5rem; border: 1px solid #c4ccd5; text-align: left; vertical-align: top; }
td { overflow-wrap: break-word; }
td:last-child { min-width: 11rem; overflow-wrap: anywhere; }
tbody td:empty { height: 2.2rem; }
thead th { background: #eef1f4; }
tbody th { background: #f6f8fa; font-weight: 600; }
tr.milestone td { background: #fff5c2; font-weight: 700; }
time { white-space: nowrap; }
code { padding: 0.05em 0.3em; border-radius: 4px; background: #eef1f4; overflow-wrap: anywhere;
  font: 0.85em/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; }
.tbd { color: #4b5563; }
figure { margin: 1rem 0 1.5rem; }
figcaption { margin-top: 0.3rem; color: #4b5563; font-size: 0.9rem; }
svg { display: block; width: 100%; height: auto; }
footer { margin-top: 2.5rem; padding-top: 0.75rem; padding-bottom: 2rem; border-top: 1px solid #d0d7de; color: #4b5563; font-size: 0.85rem; }
@media print { nav, .skip { display: none; } h2 { break-after: avoid; } tr { break-inside: avoid; } }
"#;

/// The post-mortem as one self-contained HTML file with the same content as the Markdown,
/// plus an inline SVG chart of `Input::chart` with the deployments and key moments marked.
pub fn render_html(input: &Input) -> String {
    let doc = build(input);
    let chart = chart::svg(input, &key_moments(input));
    html(&doc, chart.as_deref(), input)
}

fn html(doc: &Document, chart: Option<&str>, input: &Input) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = escape(&doc.title.replace(['\n', '\r'], " "));
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"Redline ({SCHEMA})\">\n\
         <title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n\
         <a class=\"skip\" href=\"#content\">Skip to the post-mortem</a>\n\
         <header id=\"top\">\n<p class=\"kicker\">Redline post-mortem</p>\n<h1>{title}</h1>\n\
         <p class=\"byline\">{}</p>\n",
        line(&doc.byline)
    );
    out.push_str("<nav aria-label=\"Sections\">\n<ul>\n");
    for (id, text) in doc.sections() {
        let _ = writeln!(
            out,
            "<li><a href=\"#{}\">{}</a></li>",
            escape(id),
            escape(text)
        );
    }
    out.push_str("</ul>\n</nav>\n</header>\n<main id=\"content\">\n");

    let mut open_section = false;
    let mut tables = 0;
    for block in &doc.blocks {
        match block {
            Block::Heading { level: 2, id, text } => {
                if open_section {
                    out.push_str("</section>\n");
                }
                let id = escape(id);
                let _ = write!(
                    out,
                    "<section aria-labelledby=\"{id}\">\n<h2 id=\"{id}\">{}</h2>\n",
                    escape(text)
                );
                open_section = true;
            }
            Block::Heading { level, id, text } => {
                let _ = writeln!(
                    out,
                    "<h{level} id=\"{}\">{}</h{level}>",
                    escape(id),
                    escape(text)
                );
            }
            Block::Para(l) => {
                let _ = writeln!(out, "<p>{}</p>", line(l));
            }
            Block::List(items) => {
                out.push_str("<ul>\n");
                for item in items {
                    let _ = writeln!(out, "<li>{}</li>", line(item));
                }
                out.push_str("</ul>\n");
            }
            Block::Table(t) => {
                tables += 1;
                table(&mut out, t, tables);
            }
            Block::Chart => figure(&mut out, chart, input),
        }
    }
    if open_section {
        out.push_str("</section>\n");
    }
    let _ = write!(
        out,
        "</main>\n<footer>\n<p>Generated by Redline at <time datetime=\"{0}\">{0}</time>. \
         The same post-mortem is available as Markdown and as JSON (schema <code>{SCHEMA}</code>).</p>\n\
         </footer>\n</body>\n</html>\n",
        escape(&super::rfc3339(input.generated_at))
    );
    out
}

fn figure(out: &mut String, chart: Option<&str>, input: &Input) {
    match (chart, &input.chart) {
        (Some(svg), Some(c)) => {
            let unit = if c.unit.trim().is_empty() {
                String::new()
            } else {
                format!(" ({})", c.unit)
            };
            let _ = write!(
                out,
                "<figure>\n{svg}\n<figcaption>{}{}: the series around the incident. Dashed vertical \
                 lines mark the deployments (long dashes), the impact start (dots) and the \
                 detection, acknowledgement, mitigation and resolution (dash-dot), each labelled \
                 above the chart; the shaded band runs from the impact start to the mitigation.\
                 </figcaption>\n</figure>\n",
                escape_lines(&c.title),
                escape(&unit)
            );
        }
        (None, Some(_)) => out.push_str("<p>The charted series has no values to draw.</p>\n"),
        (_, None) => out.push_str("<p>No series was charted for this incident.</p>\n"),
    }
}

/// A table in a container that scrolls sideways when the table is wider than the page (the
/// container is focusable and named by the caption, so keyboard users can scroll it).
fn table(out: &mut String, t: &Table, number: usize) {
    let class = if t.row_headers && t.head.len() == 2 {
        " class=\"fields\""
    } else {
        ""
    };
    let _ = write!(
        out,
        "<div class=\"table-scroll\" role=\"region\" aria-labelledby=\"table-{number}\" tabindex=\"0\">\n\
         <table{class}>\n<caption id=\"table-{number}\">{}</caption>\n<thead>\n<tr>",
        escape_lines(&t.caption)
    );
    for h in &t.head {
        let _ = write!(out, "<th scope=\"col\">{}</th>", escape_lines(h));
    }
    out.push_str("</tr>\n</thead>\n<tbody>\n");
    for row in &t.rows {
        let mut attrs = String::new();
        if let Some(id) = &row.id {
            let _ = write!(attrs, " id=\"{}\"", escape(id));
        }
        if row.strong {
            attrs.push_str(" class=\"milestone\"");
        }
        let _ = write!(out, "<tr{attrs}>");
        for n in 0..t.head.len() {
            let content = row.cells.get(n).map(|c| line(c)).unwrap_or_default();
            if t.row_headers && n == 0 {
                let _ = write!(out, "<th scope=\"row\">{content}</th>");
            } else {
                let _ = write!(out, "<td>{content}</td>");
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</div>\n");
}

fn line(l: &[Inline]) -> String {
    let mut out = String::new();
    for inline in l {
        match inline {
            Inline::Text(s) => out.push_str(&escape_lines(s)),
            Inline::Strong(s) => {
                let _ = write!(out, "<strong>{}</strong>", escape_lines(s));
            }
            Inline::Em(s) => {
                let _ = write!(out, "<em class=\"tbd\">{}</em>", escape_lines(s));
            }
            Inline::Code(s) => {
                let _ = write!(out, "<code>{}</code>", escape_lines(s));
            }
            Inline::Time(s) => {
                let s = escape(s);
                let _ = write!(out, "<time datetime=\"{s}\">{s}</time>");
            }
        }
    }
    out
}
