//! Times at the incident and deployment API: accepted as RFC 3339 text or Unix seconds,
//! kept as Unix milliseconds, written as RFC 3339 in UTC.

use serde::{Deserialize, Serialize};

/// A time as a client sends it.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Timestamp {
    Seconds(f64),
    Text(String),
}

impl Timestamp {
    /// Unix milliseconds, or a description of what is wrong (the caller adds the field name).
    pub fn millis(&self) -> Result<i64, String> {
        match self {
            Timestamp::Seconds(s) if s.is_finite() && s.abs() < 1e13 => {
                Ok((s * 1000.0).round() as i64)
            }
            Timestamp::Seconds(s) => Err(format!("{s} is not a usable Unix time in seconds")),
            Timestamp::Text(t) => parse(t),
        }
    }
}

/// Parses RFC 3339 text or a decimal number of Unix seconds.
pub fn parse(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(s) = text.parse::<f64>() {
        return Timestamp::Seconds(s).millis();
    }
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| format!("{text:?} is neither RFC 3339 nor Unix seconds ({e})"))
}

/// RFC 3339 in UTC with the precision the value needs.
pub fn format(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.to_string(),
        Err(_) => ms.to_string(),
    }
}

/// `#[serde(with = "…::rfc3339")]` for an `i64` of Unix milliseconds.
pub mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*ms))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let t = super::Timestamp::deserialize(d)?;
        t.millis().map_err(serde::de::Error::custom)
    }
}

/// The same for `Option<i64>`.
pub mod rfc3339_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match ms {
            Some(ms) => s.serialize_str(&super::format(*ms)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Option::<super::Timestamp>::deserialize(d)? {
            Some(t) => t.millis().map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        assert_eq!(parse("1700000000"), Ok(1_700_000_000_000));
        assert_eq!(parse("1700000000.5"), Ok(1_700_000_000_500));
        assert_eq!(parse("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert!(parse("tomorrow").is_err());
        assert_eq!(format(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(format(1_700_000_000_250), "2023-11-14T22:13:20.25Z");
    }
}
