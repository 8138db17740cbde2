//! Request parameters the way the Prometheus HTTP API reads them: repeated keys (`match[]`),
//! times as RFC 3339 or Unix seconds with decimals, durations as seconds or `5m`-style.

use crate::model::Matcher;

pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn from_query(query: &str) -> Params {
        Params {
            pairs: form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        }
    }

    pub fn extend_from_form(&mut self, body: &[u8]) {
        self.pairs.extend(form_urlencoded::parse(body).into_owned());
    }

    /// The last value of a key (the query string comes first, the form body after).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn time(&self, key: &str, default: i64) -> Result<i64, String> {
        Ok(self.optional_time(key)?.unwrap_or(default))
    }

    pub fn required_time(&self, key: &str) -> Result<i64, String> {
        self.optional_time(key)?
            .ok_or_else(|| format!("invalid parameter {key:?}: missing"))
    }

    pub fn optional_time(&self, key: &str) -> Result<Option<i64>, String> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => parse_time_ms(v)
                .map(Some)
                .map_err(|e| format!("invalid parameter {key:?}: {e}")),
        }
    }

    pub fn duration(&self, key: &str) -> Result<i64, String> {
        match self.get(key) {
            None | Some("") => Err(format!("invalid parameter {key:?}: missing")),
            Some(v) => parse_duration_ms(v).map_err(|e| format!("invalid parameter {key:?}: {e}")),
        }
    }

    pub fn limit(&self, key: &str, default: usize, max: usize) -> Result<usize, String> {
        match self.get(key) {
            None | Some("") => Ok(default),
            Some(v) => match v.parse::<usize>() {
                Ok(0) => Ok(default),
                Ok(n) => Ok(n.min(max)),
                Err(_) => Err(format!("invalid parameter {key:?}: {v:?} is not a count")),
            },
        }
    }
}

/// Parses Unix seconds (`1700000000.123`) or RFC 3339 (`2026-11-26T10:00:00Z`,
/// `…+02:00`) into milliseconds.
pub fn parse_time_ms(text: &str) -> Result<i64, String> {
    if let Ok(secs) = text.parse::<f64>() {
        if !secs.is_finite() || secs.abs() > 9.2e15 {
            return Err(format!("cannot parse {text:?} to a valid timestamp"));
        }
        return Ok((secs * 1000.0).round() as i64);
    }
    // humantime understands UTC (`Z`); apply a numeric offset ourselves.
    let (base, offset_ms) = match text
        .len()
        .checked_sub(6)
        .and_then(|i| text.get(i..).map(|t| (i, t)))
    {
        Some((i, tail))
            if (tail.starts_with('+') || tail.starts_with('-'))
                && tail.as_bytes().get(3) == Some(&b':') =>
        {
            let sign = if tail.starts_with('-') { -1 } else { 1 };
            let h: i64 = tail[1..3]
                .parse()
                .map_err(|_| format!("cannot parse {text:?} to a valid timestamp"))?;
            let m: i64 = tail[4..6]
                .parse()
                .map_err(|_| format!("cannot parse {text:?} to a valid timestamp"))?;
            (
                format!("{}Z", &text[..i]),
                sign * (h * 3600 + m * 60) * 1000,
            )
        }
        _ => (text.to_owned(), 0),
    };
    let t = humantime::parse_rfc3339_weak(base.trim_end_matches('Z'))
        .map_err(|_| format!("cannot parse {text:?} to a valid timestamp"))?;
    let ms = match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    };
    Ok(ms - offset_ms)
}

/// Parses a duration: seconds with decimals (`15`, `0.5`) or Prometheus units (`1h30m`, `5m`,
/// `100ms`, `1d`, `1w`, `1y`).
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    if let Ok(secs) = text.parse::<f64>() {
        if !secs.is_finite() || secs.abs() > 9.2e15 {
            return Err(format!("cannot parse {text:?} to a valid duration"));
        }
        return Ok((secs * 1000.0).round() as i64);
    }
    let bad = || format!("cannot parse {text:?} to a valid duration");
    let mut total: i64 = 0;
    let mut rest = text;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return Err(bad()),
        };
        total = total
            .checked_add(n.checked_mul(unit).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

pub fn selector_matchers(text: &str) -> Result<Vec<Matcher>, String> {
    crate::query::selector_matchers(text)
}

/// OTLP severity number from a number or a name (the lowest number of that name's range).
pub fn severity_number(text: &str) -> Option<i32> {
    if let Ok(n) = text.parse::<i32>() {
        return (1..=24).contains(&n).then_some(n);
    }
    Some(match text.to_ascii_uppercase().as_str() {
        "TRACE" => 1,
        "DEBUG" => 5,
        "INFO" => 9,
        "WARN" | "WARNING" => 13,
        "ERROR" => 17,
        "FATAL" => 21,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time_ms("1700000000.5").unwrap(), 1_700_000_000_500);
        assert_eq!(
            parse_time_ms("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_time_ms("2023-11-14T22:13:20.250Z").unwrap(),
            1_700_000_000_250
        );
        assert_eq!(
            parse_time_ms("2023-11-15T00:13:20+02:00").unwrap(),
            1_700_000_000_000
        );
        assert!(parse_time_ms("yesterday").is_err());
        assert!(parse_time_ms("NaN").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("15").unwrap(), 15_000);
        assert_eq!(parse_duration_ms("0.5").unwrap(), 500);
        assert_eq!(parse_duration_ms("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration_ms("100ms").unwrap(), 100);
        assert!(parse_duration_ms("5 minutes").is_err());
        assert!(parse_duration_ms("").is_err());
        assert!(parse_duration_ms("m").is_err());
    }

    #[test]
    fn repeated_keys() {
        let p = Params::from_query("match[]=up&match[]=down&x=%7Ba%7D");
        assert_eq!(p.all("match[]").collect::<Vec<_>>(), vec!["up", "down"]);
        assert_eq!(p.get("x"), Some("{a}"));
    }
}
