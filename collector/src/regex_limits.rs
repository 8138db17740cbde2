//! Go's limit on repetition counts, checked before the regex crate compiles a pattern.
//!
//! Prometheus and Alertmanager compile label regexes with Go's `regexp/syntax`, which refuses
//! a counted repetition (`{n}`, `{n,}`, `{n,m}`) with a count over 1000, and a nest of counted
//! repetitions that would copy the innermost expression more than 1000 times
//! (`(a{100}){100}`), both with "invalid repeat count". The regex crate accepts such counts and
//! refuses the result only when its compiled program outgrows the size limit (10 MiB), after
//! building that much of it: about 20 ms in a release build for `a{3333333}`, 10 to 15 s in
//! the instrumented fuzzing build, and promql-parser compiles a refused pattern twice. A
//! query, a rule file or a silence may hold many such patterns.
//!
//! [`check`] reads the pattern's syntax tree (no compilation; microseconds) and applies Go's
//! rule, so these patterns are refused at once, with the message Prometheus gives. Patterns
//! within the rule can still be large (Unicode classes such as `\w` compile to hundreds of
//! states in the regex crate, where Go's are ASCII): the regex crate's own size limit bounds
//! those, at some 0.1 to 0.2 s of compilation in a release build.

use regex_syntax::ast::{self, Ast, RepetitionKind, RepetitionRange};

/// The largest count Go's `regexp/syntax` accepts in a counted repetition, and the most copies
/// of one expression that nested counted repetitions may make.
pub const MAX_REPEAT: u32 = 1000;

/// A pattern Go would refuse for its repetition counts. The text is the repetition operator
/// as written (`{3333333}`), as in Go's error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid repeat count: `{0}`")]
pub struct InvalidRepeatCount(pub String);

/// Checks `pattern` against Go's repetition limits. A pattern that does not parse passes:
/// the regex crate refuses it cheaply, with its own message, when it is compiled.
pub fn check(pattern: &str) -> Result<(), InvalidRepeatCount> {
    // The regex crate parses with this parser's defaults (nest limit 250), so the recursion
    // below is as deep as the compile's own at most.
    match ast::parse::Parser::new().parse(pattern) {
        Ok(tree) => walk(&tree, pattern),
        Err(_) => Ok(()),
    }
}

/// The counts of a counted repetition, as Go keeps them: `max` is `None` when unbounded.
fn counts(kind: &RepetitionKind) -> Option<(u32, Option<u32>)> {
    match kind {
        RepetitionKind::Range(RepetitionRange::Exactly(n)) => Some((*n, Some(*n))),
        RepetitionKind::Range(RepetitionRange::AtLeast(n)) => Some((*n, None)),
        RepetitionKind::Range(RepetitionRange::Bounded(m, n)) => Some((*m, Some(*n))),
        // `*`, `+` and `?` are not counted repetitions: Go does not limit them.
        RepetitionKind::ZeroOrOne | RepetitionKind::ZeroOrMore | RepetitionKind::OneOrMore => None,
    }
}

/// Every counted repetition in the tree, checked as Go's parser checks each one it builds:
/// inner ones first, so the error quotes the one Go quotes.
fn walk(tree: &Ast, pattern: &str) -> Result<(), InvalidRepeatCount> {
    children(tree).try_for_each(|child| walk(child, pattern))?;
    if let Ast::Repetition(rep) = tree
        && let Some((min, max)) = counts(&rep.op.kind)
    {
        let span = &pattern[rep.op.span.start.offset..rep.op.span.end.offset];
        // Go quotes the braces alone when a count is too big, and with a lazy `?` when the
        // nest is.
        if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT) {
            return Err(InvalidRepeatCount(span.trim_end_matches('?').to_owned()));
        }
        if (min >= 2 || max.is_some_and(|m| m >= 2)) && !copies_within(tree, MAX_REPEAT) {
            return Err(InvalidRepeatCount(span.to_owned()));
        }
    }
    Ok(())
}

/// Go's `repeatIsValid`: whether the counted repetitions in `tree`, nested in one another,
/// make at most `budget` copies of their innermost expression. Go calls it only for
/// repetitions of at least 2, and each such level at least halves the budget, so no subtree
/// is walked more than about ten times.
fn copies_within(tree: &Ast, mut budget: u32) -> bool {
    if let Ast::Repetition(rep) = tree
        && let Some((min, max)) = counts(&rep.op.kind)
    {
        let copies = max.unwrap_or(min);
        if max == Some(0) {
            return true;
        }
        if copies > budget {
            return false;
        }
        // `{0,}` copies nothing more than its minimum: the budget stays.
        budget = budget.checked_div(copies).unwrap_or(budget);
    }
    children(tree).all(|child| copies_within(child, budget))
}

/// The direct subexpressions of a node.
fn children(tree: &Ast) -> Box<dyn Iterator<Item = &Ast> + '_> {
    match tree {
        Ast::Repetition(rep) => Box::new(std::iter::once(rep.ast.as_ref())),
        Ast::Group(group) => Box::new(std::iter::once(group.ast.as_ref())),
        Ast::Alternation(alt) => Box::new(alt.asts.iter()),
        Ast::Concat(concat) => Box::new(concat.asts.iter()),
        Ast::Empty(_)
        | Ast::Flags(_)
        | Ast::Literal(_)
        | Ast::Dot(_)
        | Ast::Assertion(_)
        | Ast::ClassUnicode(_)
        | Ast::ClassPerl(_)
        | Ast::ClassBracketed(_) => Box::new(std::iter::empty()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn refused(pattern: &str) -> Option<String> {
        check(pattern).err().map(|e| e.to_string())
    }

    /// Cases from Go's `regexp/syntax` tests (`invalidRegexps`, `TestParseInvalidRegexps` and
    /// the repeat-size cases of `TestToStringEquivalentParse`) and Prometheus' matcher tests.
    #[test]
    fn counts_over_1000_are_refused_as_go_refuses_them() {
        for ok in [
            "a{1000}",
            "a{0,1000}",
            "a{1000,}",
            "(a{10}){100}",
            "((a{10}){10}){10}",
            "(a{1000}){0}",
            "(a{1000})?",
            "(a{1000})*",
            "(a{1000})+",
            "(a*){1000}",
            "(?:a{500}|b{1000})",
            "a{2}{0,1}",
            "x{1,1000}y{1000}",
        ] {
            assert_eq!(refused(ok), None, "{ok}");
        }
        for (bad, quoted) in [
            ("a{1001}", "{1001}"),
            ("a{0,1001}", "{0,1001}"),
            ("a{1001,}", "{1001,}"),
            ("a{3333333}", "{3333333}"),
            ("a{3333333}?", "{3333333}"),
            ("x(a{100}){11}", "{11}"),
            ("((a{10}){10}){11}", "{11}"),
            ("(a{2}){1001}", "{1001}"),
            ("(a{2000}){2}", "{2000}"),
            ("((a{1000}){1}){2}?", "{2}?"),
            ("(?i)(b{500}){3}", "{3}"),
        ] {
            assert_eq!(
                refused(bad),
                Some(format!("invalid repeat count: `{quoted}`")),
                "{bad}"
            );
        }
    }

    #[test]
    fn patterns_that_do_not_parse_are_left_to_the_compiler() {
        for pattern in ["a{", "(", "a{1", "[z-a]", "a{2,1}"] {
            assert_eq!(check(pattern), Ok(()), "{pattern}");
        }
    }
}
