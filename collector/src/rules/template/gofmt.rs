//! Go's `fmt` as templates meet it: how values print (`{{ . }}`, `print`), `printf`'s verbs,
//! flags, width, precision and error forms (`%!d(string=x)`, `%!s(MISSING)`), and Go's type
//! names for messages.

use super::{Value, gotime};

/// Go's name of a value's type, as `%T` and error messages show it.
pub(super) fn type_name(v: &Value) -> String {
    match v {
        Value::Nil => "<nil>".to_owned(),
        Value::Bool(_) => "bool".to_owned(),
        Value::Int(_) => "int".to_owned(),
        Value::Float(_) => "float64".to_owned(),
        Value::Str(_) => "string".to_owned(),
        Value::Time(_) => "time.Time".to_owned(),
        Value::List(items) | Value::ListWithFields(items, _) => {
            if !items.is_empty() && items.iter().all(|i| matches!(i, Value::Str(_))) {
                "[]string".to_owned()
            } else if !items.is_empty() && items.iter().all(super::funcs::is_sample) {
                "template.queryResult".to_owned()
            } else {
                "[]interface {}".to_owned()
            }
        }
        Value::Map(_) => "map[string]interface {}".to_owned(),
        Value::Labels(_) => "map[string]string".to_owned(),
        Value::Kv(_) => "template.KV".to_owned(),
        Value::Struct(s) => s.type_name.clone(),
    }
}

/// How a template action prints its value: nil is `<no value>` and a pointer is printed as
/// what it points to.
pub(super) fn print_top(v: &Value) -> String {
    match v {
        Value::Nil => "<no value>".to_owned(),
        Value::Struct(s) if s.type_name.starts_with('*') => {
            let inner = Value::Struct(super::Struct {
                type_name: s.type_name[1..].to_owned(),
                fields: s.fields.clone(),
            });
            print_arg(&inner, 'v', &Flags::default())
        }
        other => print_arg(other, 'v', &Flags::default()),
    }
}

/// Go's `fmt.Sprint`: a space between operands when neither is a string.
pub(super) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = matches!(a, Value::Str(_));
        if i > 0 && !is_string && !prev_string {
            out.push(' ');
        }
        out.push_str(&print_arg(a, 'v', &Flags::default()));
        prev_string = is_string;
    }
    out
}

/// Go's `fmt.Sprintln`: spaces between all operands and a newline.
pub(super) fn sprintln(args: &[Value]) -> String {
    let parts: Vec<String> = args
        .iter()
        .map(|a| print_arg(a, 'v', &Flags::default()))
        .collect();
    format!("{}\n", parts.join(" "))
}

/// `%v` of a float64: Go's `%g` with the shortest digits, so an exponent below -4 or of 6 and
/// more switches to `%e` form (`1e+06`, `1e-05`).
pub(super) fn float_v(v: f64) -> String {
    let s = strconv_float(v, 'g', None);
    match s.strip_prefix('+') {
        Some(rest) if !v.is_infinite() => rest.to_owned(),
        _ => s,
    }
}

#[derive(Clone, Copy, Default)]
struct Flags {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    /// `%+v`: struct field names.
    plus_v: bool,
    /// `%#v`: Go syntax (only strings are quoted here).
    sharp_v: bool,
    wid: Option<usize>,
    prec: Option<usize>,
}

impl Flags {
    fn pad(&self, s: &str) -> String {
        let Some(w) = self.wid else {
            return s.to_owned();
        };
        let n = s.chars().count();
        if n >= w {
            return s.to_owned();
        }
        let fill: String = std::iter::repeat_n(if self.zero { '0' } else { ' ' }, w - n).collect();
        if self.minus {
            format!("{s}{}", " ".repeat(w - n))
        } else {
            format!("{fill}{s}")
        }
    }
}

/// Go's `fmt.Sprintf`.
pub(super) fn sprintf(format: &str, args: &[Value]) -> String {
    let b = format.as_bytes();
    let end = b.len();
    let mut out = String::new();
    let mut arg_num = 0usize;
    let mut reordered = false;
    let mut i = 0;
    while i < end {
        let last = i;
        while i < end && b[i] != b'%' {
            i += 1;
        }
        if i > last {
            out.push_str(&format[last..i]);
        }
        if i >= end {
            break;
        }
        i += 1;
        let mut f = Flags::default();
        while i < end {
            match b[i] {
                b'#' => f.sharp = true,
                b'0' => f.zero = !f.minus,
                b'+' => f.plus = true,
                b'-' => {
                    f.minus = true;
                    f.zero = false;
                }
                b' ' => f.space = true,
                _ => break,
            }
            i += 1;
        }
        let mut good_arg_num = true;
        let mut after_index;
        (arg_num, i, after_index) = arg_number(
            arg_num,
            format,
            i,
            args.len(),
            &mut reordered,
            &mut good_arg_num,
        );
        if i < end && b[i] == b'*' {
            i += 1;
            match int_from_arg(args, arg_num) {
                (Some(w), n) => {
                    arg_num = n;
                    if w < 0 {
                        f.minus = true;
                        f.zero = false;
                        f.wid = Some(w.unsigned_abs() as usize);
                    } else {
                        f.wid = Some(w as usize);
                    }
                }
                (None, n) => {
                    arg_num = n;
                    out.push_str("%!(BADWIDTH)");
                }
            }
            after_index = false;
        } else {
            let (w, ni) = parse_num(format, i);
            if w.is_some() && after_index {
                good_arg_num = false;
            }
            f.wid = w;
            i = ni;
        }
        if i < end && b[i] == b'.' {
            i += 1;
            if after_index {
                good_arg_num = false;
            }
            (arg_num, i, after_index) = arg_number(
                arg_num,
                format,
                i,
                args.len(),
                &mut reordered,
                &mut good_arg_num,
            );
            if i < end && b[i] == b'*' {
                i += 1;
                match int_from_arg(args, arg_num) {
                    (Some(p), n) => {
                        arg_num = n;
                        f.prec = (p >= 0).then_some(p as usize);
                    }
                    (None, n) => {
                        arg_num = n;
                        out.push_str("%!(BADPREC)");
                    }
                }
                after_index = false;
            } else {
                let (p, ni) = parse_num(format, i);
                f.prec = Some(p.unwrap_or(0));
                i = ni;
            }
        }
        if !after_index {
            (arg_num, i, _) = arg_number(
                arg_num,
                format,
                i,
                args.len(),
                &mut reordered,
                &mut good_arg_num,
            );
        }
        let Some(verb) = format[i..].chars().next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        i += verb.len_utf8();
        if verb == '%' {
            out.push('%');
        } else if !good_arg_num {
            out.push_str(&format!("%!{verb}(BADINDEX)"));
        } else if arg_num >= args.len() {
            out.push_str(&format!("%!{verb}(MISSING)"));
        } else {
            if verb == 'v' {
                f.sharp_v = f.sharp;
                f.sharp = false;
                f.plus_v = f.plus;
                f.plus = false;
            }
            out.push_str(&print_arg(&args[arg_num], verb, &f));
            arg_num += 1;
        }
    }
    if !reordered && arg_num < args.len() {
        out.push_str("%!(EXTRA ");
        for (k, a) in args[arg_num..].iter().enumerate() {
            if k > 0 {
                out.push_str(", ");
            }
            if matches!(a, Value::Nil) {
                out.push_str("<nil>");
            } else {
                out.push_str(&type_name(a));
                out.push('=');
                out.push_str(&print_arg(a, 'v', &Flags::default()));
            }
        }
        out.push(')');
    }
    out
}

/// Go's `argNumber`: an explicit `[n]` argument index.
fn arg_number(
    arg_num: usize,
    format: &str,
    i: usize,
    num_args: usize,
    reordered: &mut bool,
    good: &mut bool,
) -> (usize, usize, bool) {
    let b = format.as_bytes();
    if i >= b.len() || b[i] != b'[' {
        return (arg_num, i, false);
    }
    *reordered = true;
    let rest = &format[i..];
    let (index, wid, ok) = match rest.find(']') {
        Some(close) if rest.len() >= 3 => match parse_num(rest, 1) {
            (Some(n), ni) if ni == close => (n as i64 - 1, close + 1, true),
            _ => (0, close + 1, false),
        },
        _ => (0, 1, false),
    };
    if ok && 0 <= index && (index as usize) < num_args {
        return (index as usize, i + wid, true);
    }
    *good = false;
    (arg_num, i + wid, ok)
}

fn parse_num(s: &str, start: usize) -> (Option<usize>, usize) {
    let b = s.as_bytes();
    let mut i = start;
    let mut n: usize = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        n = n
            .saturating_mul(10)
            .saturating_add(usize::from(b[i] - b'0'));
        if n > 1_000_000 {
            return (None, b.len());
        }
        i += 1;
    }
    ((i > start).then_some(n), i)
}

fn int_from_arg(args: &[Value], arg_num: usize) -> (Option<i64>, usize) {
    match args.get(arg_num) {
        Some(Value::Int(n)) if n.unsigned_abs() <= 1_000_000 => (Some(*n), arg_num + 1),
        Some(_) => (None, arg_num + 1),
        None => (None, arg_num),
    }
}

/// Go's `printArg` for one operand and verb.
fn print_arg(v: &Value, verb: char, f: &Flags) -> String {
    if verb == 'T' {
        return f.pad(&type_name(v));
    }
    match v {
        Value::Nil => match verb {
            'v' => f.pad("<nil>"),
            _ => bad_verb(v, verb, f),
        },
        Value::Bool(b) => match verb {
            't' | 'v' => f.pad(&b.to_string()),
            _ => bad_verb(v, verb, f),
        },
        Value::Int(i) => fmt_integer(*i, verb, f).unwrap_or_else(|| bad_verb(v, verb, f)),
        Value::Float(x) => fmt_float(*x, verb, f).unwrap_or_else(|| bad_verb(v, verb, f)),
        Value::Str(s) => fmt_string(s, verb, f).unwrap_or_else(|| bad_verb(v, verb, f)),
        Value::Time(t) => match verb {
            // time.Time is a Stringer.
            'v' | 's' | 'q' | 'x' | 'X' => fmt_string(&gotime::string(t.as_nanosecond()), verb, f)
                .unwrap_or_else(|| bad_verb(v, verb, f)),
            _ => bad_verb(v, verb, f),
        },
        Value::List(items) | Value::ListWithFields(items, _) => {
            let parts: Vec<String> = items.iter().map(|i| print_arg(i, verb, f)).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Map(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}:{}", key(k, verb, f), print_arg(v, verb, f)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
        Value::Labels(m) | Value::Kv(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}:{}", key(k, verb, f), key(v, verb, f)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
        Value::Struct(s) => {
            let parts: Vec<String> = s
                .fields
                .iter()
                .map(|(name, v)| {
                    let value = print_arg(v, verb, f);
                    if f.plus_v {
                        format!("{name}:{value}")
                    } else {
                        value
                    }
                })
                .collect();
            let amp = if s.type_name.starts_with('*') {
                "&"
            } else {
                ""
            };
            format!("{amp}{{{}}}", parts.join(" "))
        }
    }
}

fn key(s: &str, verb: char, f: &Flags) -> String {
    fmt_string(s, verb, f).unwrap_or_else(|| bad_verb(&Value::Str(s.to_owned()), verb, f))
}

/// Go's `badVerb`: `%!d(string=x)`.
fn bad_verb(v: &Value, verb: char, f: &Flags) -> String {
    match v {
        Value::Nil => format!("%!{verb}(<nil>)"),
        other => format!(
            "%!{verb}({}={})",
            type_name(other),
            print_arg(other, 'v', f)
        ),
    }
}

fn fmt_string(s: &str, verb: char, f: &Flags) -> Option<String> {
    let truncated = |s: &str| -> String {
        match f.prec {
            Some(p) => s.chars().take(p).collect(),
            None => s.to_owned(),
        }
    };
    Some(match verb {
        'v' if f.sharp_v => f.pad(&quote(s, false)),
        'v' | 's' => f.pad(&truncated(s)),
        'q' => {
            let s = truncated(s);
            if f.sharp
                && !s.contains(['`', '\r'])
                && s.chars().all(|c| c == '\t' || !c.is_control())
            {
                f.pad(&format!("`{s}`"))
            } else {
                f.pad(&quote(&s, f.plus))
            }
        }
        'x' | 'X' => {
            let bytes = s.as_bytes();
            let bytes = match f.prec {
                Some(p) => &bytes[..p.min(bytes.len())],
                None => bytes,
            };
            let mut out = String::new();
            for (i, byte) in bytes.iter().enumerate() {
                if f.space && i > 0 {
                    out.push(' ');
                }
                if f.sharp && (f.space || i == 0) {
                    out.push_str(if verb == 'x' { "0x" } else { "0X" });
                }
                if verb == 'x' {
                    out.push_str(&format!("{byte:02x}"));
                } else {
                    out.push_str(&format!("{byte:02X}"));
                }
            }
            f.pad(&out)
        }
        _ => return None,
    })
}

fn fmt_integer(i: i64, verb: char, f: &Flags) -> Option<String> {
    let (base, upper) = match verb {
        'v' | 'd' => (10, false),
        'b' => (2, false),
        'o' | 'O' => (8, false),
        'x' => (16, false),
        'X' => (16, true),
        'c' => {
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            return Some(f.pad(&c.to_string()));
        }
        'q' => {
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            return Some(f.pad(&quote_rune(c)));
        }
        'U' => {
            let mut s = format!("U+{:04X}", i);
            if f.sharp
                && let Some(c) = u32::try_from(i).ok().and_then(char::from_u32)
                && is_print(c)
            {
                s.push_str(&format!(" '{c}'"));
            }
            return Some(f.pad(&s));
        }
        _ => return None,
    };
    let negative = i < 0;
    let u = i.unsigned_abs();
    let mut digits = match (base, upper) {
        (2, _) => format!("{u:b}"),
        (8, _) => format!("{u:o}"),
        (16, false) => format!("{u:x}"),
        (16, true) => format!("{u:X}"),
        _ => u.to_string(),
    };
    // Two ways to ask for leading zeros: a precision, or the 0 flag with a width.
    let mut prec = 0;
    if let Some(p) = f.prec {
        prec = p;
        if p == 0 && u == 0 {
            let mut g = *f;
            g.zero = false;
            return Some(g.pad(""));
        }
    } else if f.zero
        && let Some(w) = f.wid
    {
        prec = w;
        if negative || f.plus || f.space {
            prec = prec.saturating_sub(1);
        }
    }
    if digits.len() < prec {
        digits = format!("{}{digits}", "0".repeat(prec - digits.len()));
    }
    if f.sharp {
        match base {
            2 => digits = format!("0b{digits}"),
            8 if !digits.starts_with('0') => digits = format!("0{digits}"),
            16 => digits = format!("{}{digits}", if upper { "0X" } else { "0x" }),
            _ => {}
        }
    }
    if verb == 'O' {
        digits = format!("0o{digits}");
    }
    if negative {
        digits = format!("-{digits}");
    } else if f.plus {
        digits = format!("+{digits}");
    } else if f.space {
        digits = format!(" {digits}");
    }
    let mut g = *f;
    g.zero = false;
    Some(g.pad(&digits))
}

fn fmt_float(x: f64, verb: char, f: &Flags) -> Option<String> {
    let (v, prec) = match verb {
        'v' => ('g', f.prec),
        'g' | 'G' => (verb, f.prec),
        'f' | 'F' => ('f', Some(f.prec.unwrap_or(6))),
        'e' | 'E' => (verb, Some(f.prec.unwrap_or(6))),
        _ => return None,
    };
    let mut num = strconv_float(x, v, prec);
    if f.space && num.starts_with('+') && !f.plus {
        num.replace_range(..1, " ");
    }
    if x.is_nan() || x.is_infinite() {
        if x.is_nan() && !f.space && !f.plus {
            num.remove(0);
        }
        let mut g = *f;
        g.zero = false;
        return Some(g.pad(&num));
    }
    if f.plus || !num.starts_with('+') {
        if f.zero
            && let Some(w) = f.wid
            && w > num.len()
        {
            let (sign, rest) = num.split_at(1);
            return Some(format!("{sign}{}{rest}", "0".repeat(w - num.len())));
        }
        return Some(f.pad(&num));
    }
    Some(f.pad(&num[1..]))
}

/// Go's `strconv.FormatFloat` with a sign always present (`+` for positive numbers and
/// infinity, as `fmt` reserves it), for the verbs `e`, `E`, `f`, `g`, `G`; `prec` `None` is
/// the shortest representation.
fn strconv_float(v: f64, verb: char, prec: Option<usize>) -> String {
    if v.is_nan() {
        return "+NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    let sign = if v.is_sign_negative() { '-' } else { '+' };
    let a = v.abs();
    let upper = verb == 'E' || verb == 'G';
    let body = match verb {
        'f' => {
            let prec = prec.unwrap_or(6);
            let mut s = format!("{a:.*}", prec.min(MAX_EXACT_DIGITS));
            s.extend(std::iter::repeat_n(
                '0',
                prec.saturating_sub(MAX_EXACT_DIGITS),
            ));
            s
        }
        'e' | 'E' => {
            let (digits, exp) = decimal_digits(a, prec.map(|p| p + 1));
            exp_form(
                &digits,
                exp,
                prec.unwrap_or(digits.len().saturating_sub(1)),
                upper,
            )
        }
        _ => {
            // %g: the digits rounded to the precision (shortest when none), then %e form for
            // exponents below -4 or at least the precision (6 for the shortest), else %f form.
            let p = prec.map(|p| p.max(1));
            let (digits, exp) = decimal_digits(a, p);
            let digits = digits.trim_end_matches('0');
            let digits = if digits.is_empty() { "0" } else { digits };
            let eprec = p.unwrap_or(6) as i32;
            if exp < -4 || exp >= eprec {
                exp_form(digits, exp, digits.len() - 1, upper)
            } else {
                fixed_form(digits, exp)
            }
        }
    };
    format!("{sign}{body}")
}

/// More digits than any `f64` has: its exact decimal expansion ends at most 1074 digits after
/// the point and has at most 767 significant digits, so every digit past this one is `0`.
/// Rust's formatter refuses precisions above `u16::MAX` (a panic), Go's `fmt` allows up to
/// 10⁶: longer precisions are formatted to this many digits and padded with zeros.
const MAX_EXACT_DIGITS: usize = 1100;

/// The significant digits of `a >= 0` (rounded to `n` digits, or the shortest that
/// round-trips; at most [`MAX_EXACT_DIGITS`], the callers pad) and the decimal exponent of
/// the first digit.
fn decimal_digits(a: f64, n: Option<usize>) -> (String, i32) {
    let s = match n {
        Some(n) => format!("{:.*e}", n.clamp(1, MAX_EXACT_DIGITS) - 1, a),
        None => format!("{a:e}"),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    (digits, exp.parse().unwrap_or(0))
}

/// `d.ddde±XX` with `frac` digits after the point.
fn exp_form(digits: &str, exp: i32, frac: usize, upper: bool) -> String {
    let mut s = String::new();
    s.push_str(&digits[..1]);
    if frac > 0 {
        s.push('.');
        let rest = &digits[1..];
        s.push_str(rest);
        for _ in rest.len()..frac {
            s.push('0');
        }
    }
    s.push(if upper { 'E' } else { 'e' });
    s.push(if exp < 0 { '-' } else { '+' });
    s.push_str(&format!("{:02}", exp.unsigned_abs()));
    s
}

/// The digits with the decimal point placed for exponent `exp`.
fn fixed_form(digits: &str, exp: i32) -> String {
    if exp < 0 {
        return format!("0.{}{digits}", "0".repeat((-exp - 1) as usize));
    }
    let int_len = exp as usize + 1;
    if digits.len() <= int_len {
        format!("{digits}{}", "0".repeat(int_len - digits.len()))
    } else {
        format!("{}.{}", &digits[..int_len], &digits[int_len..])
    }
}

/// Go's `unicode.IsPrint`, closely enough: graphic characters and the ASCII space.
pub(super) fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c,
        '\u{AD}'
        | '\u{600}'..='\u{605}'
        | '\u{61C}'
        | '\u{6DD}'
        | '\u{70F}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{E000}'..='\u{F8FF}'
        | '\u{F0000}'..='\u{10FFFF}')
}

fn escape_rune(out: &mut String, c: char, quote: char, ascii_only: bool) {
    if c == quote || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if (ascii_only && c.is_ascii() && is_print(c)) || (!ascii_only && is_print(c)) {
        out.push(c);
        return;
    }
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// Go's `strconv.Quote` (or `QuoteToASCII`).
pub(super) fn quote(s: &str, ascii_only: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        escape_rune(&mut out, c, '"', ascii_only);
    }
    out.push('"');
    out
}

/// Go's `strconv.QuoteRune`.
fn quote_rune(c: char) -> String {
    let mut out = String::from("'");
    escape_rune(&mut out, c, '\'', false);
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `template` fuzz target: precisions above `u16::MAX` (Go allows up to
    /// 10⁶) panicked in Rust's formatter ("Formatting argument out of range").
    #[test]
    fn precisions_past_u16_max_format_as_go_does() {
        let one_and_a_half = [Value::Float(1.5)];
        assert_eq!(
            sprintf("%.70000f", &one_and_a_half),
            format!("1.5{}", "0".repeat(69_999))
        );
        let e = sprintf("%.70000e", &one_and_a_half);
        assert_eq!(e.len(), "1.".len() + 70_000 + "e+00".len());
        assert!(e.starts_with("1.5000") && e.ends_with("0e+00"), "{e:.20}");
        // %g drops trailing zeros: the exact value of 0.1, as Go prints it.
        assert_eq!(
            sprintf("%.70000g", &[Value::Float(0.1)]),
            "0.1000000000000000055511151231257827021181583404541015625"
        );
        let crash = "%07.3f|%.|+e2% .199999$99999999999999999999999f|%x|%X";
        let args = [-1.23456, 12345.678, 2.0, -255.0, -255.0].map(Value::Float);
        assert!(sprintf(crash, &args).starts_with("-01.235|"));
    }
}
