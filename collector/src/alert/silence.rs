//! The silence model of Alertmanager's API v2 (`silence/silence.go` and `api/v2` of
//! Alertmanager 0.25): a silence mutes the alerts all of its matchers match while it is
//! active, that is from `startsAt` to `endsAt` inclusive.
//!
//! This module owns the pure part: the [`Silence`] value, its state at `now` (pending,
//! active, expired), Alertmanager's validation with its messages, whether it mutes a label
//! set, and the JSON shapes of the API (`postableSilence` in, `gettableSilence` out, matchers
//! as `{name, value, isRegex, isEqual}`, times as RFC 3339 with milliseconds). Storing
//! silences, generating ids and serving `/api/v2/silences` belong to the store and the API,
//! which call [`Silence::from_postable`], [`Silence::to_gettable`] and [`Silence::mutes`].
//! No I/O, no clock: `now` is a parameter.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::matcher::{MatchType, Matcher, MatcherError};
use crate::notify::LabelSet;

/// A silence as stored (`silencepb.Silence`).
#[derive(Clone, Debug, PartialEq)]
pub struct Silence {
    /// Assigned by the store (a UUID in Alertmanager); empty for a silence not yet created.
    pub id: String,
    pub matchers: Vec<Matcher>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub updated_at_ms: i64,
    pub created_by: String,
    pub comment: String,
}

/// Where a silence is in its life at some instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    Pending,
    Active,
    Expired,
}

impl SilenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

/// Why a silence is refused. Texts are Alertmanager's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    #[error("at least one matcher required")]
    NoMatchers,
    #[error("invalid label matcher {index}: invalid label name {name:?}")]
    InvalidLabelName { index: usize, name: String },
    #[error("invalid label matcher {index}: invalid regular expression {pattern:?}: {message}")]
    InvalidRegex {
        index: usize,
        pattern: String,
        message: String,
    },
    #[error("at least one matcher must not match the empty string")]
    AllMatchEmpty,
    #[error("end time must not be before start time")]
    EndBeforeStart,
    #[error("start time must be before end time")]
    StartNotBeforeEnd,
    #[error("end time can't be in the past")]
    EndInPast,
    #[error("invalid {field} timestamp {value:?}: {message}")]
    InvalidTimestamp {
        field: &'static str,
        value: String,
        message: String,
    },
}

/// Whether the matcher matches the empty string as Alertmanager's `matchesEmpty` decides it:
/// only `=` and `=~` matchers can; `!=` and `!~` are never counted, even `foo!="bar"`.
fn matches_empty(m: &Matcher) -> bool {
    match m.op {
        MatchType::Equal => m.value.is_empty(),
        MatchType::Regexp => m.matches_value(""),
        MatchType::NotEqual | MatchType::NotRegexp => false,
    }
}

impl Silence {
    /// The state at `now_ms`: pending before `startsAt`, expired after `endsAt`, active in
    /// between, both ends included (Alertmanager's `getState`).
    pub fn state(&self, now_ms: i64) -> SilenceState {
        if now_ms < self.starts_at_ms {
            SilenceState::Pending
        } else if now_ms > self.ends_at_ms {
            SilenceState::Expired
        } else {
            SilenceState::Active
        }
    }

    /// Alertmanager's `validateSilence` (without the id, which the store assigns): at least
    /// one matcher, valid label names, not every matcher matching the empty string, and an end
    /// not before the start.
    pub fn validate(&self) -> Result<(), SilenceError> {
        if self.matchers.is_empty() {
            return Err(SilenceError::NoMatchers);
        }
        for (index, m) in self.matchers.iter().enumerate() {
            if !crate::rules::file::is_valid_label_name(&m.name) {
                return Err(SilenceError::InvalidLabelName {
                    index,
                    name: m.name.clone(),
                });
            }
        }
        if self.matchers.iter().all(matches_empty) {
            return Err(SilenceError::AllMatchEmpty);
        }
        if self.ends_at_ms < self.starts_at_ms {
            return Err(SilenceError::EndBeforeStart);
        }
        Ok(())
    }

    /// The extra checks of `POST /api/v2/silences` for a silence being created or updated at
    /// `now_ms`: the start strictly before the end, and the end not in the past; then
    /// [`Silence::validate`].
    pub fn validate_new(&self, now_ms: i64) -> Result<(), SilenceError> {
        if self.starts_at_ms >= self.ends_at_ms {
            return Err(SilenceError::StartNotBeforeEnd);
        }
        if self.ends_at_ms < now_ms {
            return Err(SilenceError::EndInPast);
        }
        self.validate()
    }

    /// Whether the silence mutes an alert with these labels at `now_ms`: it is active and
    /// every matcher matches (a missing label is the empty string).
    pub fn mutes(&self, labels: &LabelSet, now_ms: i64) -> bool {
        self.state(now_ms) == SilenceState::Active
            && !self.matchers.is_empty()
            && self.matchers.iter().all(|m| m.matches(labels))
    }

    /// The silence a `POST /api/v2/silences` body describes, checked as the API checks it at
    /// `now_ms` ([`Silence::validate_new`]). `updated_at_ms` is `now_ms`; the id is the
    /// body's (empty for a new silence).
    pub fn from_postable(body: &PostableSilence, now_ms: i64) -> Result<Silence, SilenceError> {
        let mut silence = Silence::from_stored(body, now_ms)?;
        silence.accept_at(now_ms)?;
        Ok(silence)
    }

    /// Checks a silence built by [`Silence::from_stored`] as a new or updated one at
    /// `now_ms`, which becomes its update time. The dispatcher calls it at its own time on a
    /// silence the API built (and compiled) off its task.
    pub fn accept_at(&mut self, now_ms: i64) -> Result<(), SilenceError> {
        self.updated_at_ms = now_ms;
        self.validate_new(now_ms)
    }

    /// The silence a stored body describes, with its stored update time and none of the
    /// checks of a new silence (it may have expired meanwhile, or been expired by hand with
    /// its start equal to its end).
    pub fn from_stored(
        body: &PostableSilence,
        updated_at_ms: i64,
    ) -> Result<Silence, SilenceError> {
        let mut matchers = Vec::with_capacity(body.matchers.len());
        for (index, m) in body.matchers.iter().enumerate() {
            let op = MatchType::from_flags(m.is_regex, m.is_equal);
            let matcher = Matcher::new(op, &m.name, &m.value).map_err(|e| match e {
                MatcherError::Regex { pattern, message } => SilenceError::InvalidRegex {
                    index,
                    pattern,
                    message,
                },
                // `Matcher::new` fails only on regular expressions.
                other => SilenceError::InvalidRegex {
                    index,
                    pattern: m.value.clone(),
                    message: other.to_string(),
                },
            })?;
            matchers.push(matcher);
        }
        Ok(Silence {
            id: body.id.clone(),
            matchers,
            starts_at_ms: parse_time("startsAt", &body.starts_at)?,
            ends_at_ms: parse_time("endsAt", &body.ends_at)?,
            updated_at_ms,
            created_by: body.created_by.clone(),
            comment: body.comment.clone(),
        })
    }

    /// The API's view of the silence at `now_ms`.
    pub fn to_gettable(&self, now_ms: i64) -> GettableSilence {
        GettableSilence {
            id: self.id.clone(),
            status: SilenceStatus {
                state: self.state(now_ms),
            },
            updated_at: format_time(self.updated_at_ms),
            matchers: self.matchers.iter().map(MatcherDto::from).collect(),
            starts_at: format_time(self.starts_at_ms),
            ends_at: format_time(self.ends_at_ms),
            created_by: self.created_by.clone(),
            comment: self.comment.clone(),
        }
    }
}

/// An RFC 3339 time (any offset, any fraction) as ms since the epoch, fractions below a
/// millisecond truncated.
fn parse_time(field: &'static str, value: &str) -> Result<i64, SilenceError> {
    value
        .parse::<Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| SilenceError::InvalidTimestamp {
            field,
            value: value.to_owned(),
            message: e.to_string(),
        })
}

/// ms since the epoch as go-openapi's `strfmt.DateTime` prints UTC times:
/// `2024-01-15T08:00:00.000Z`.
pub fn format_time(ms: i64) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(t) => format!(
            "{}.{:03}Z",
            t.strftime("%Y-%m-%dT%H:%M:%S"),
            ms.rem_euclid(1000)
        ),
        // Outside jiff's range (years beyond ±9999): the nearest representable instant.
        Err(_) => if ms < 0 {
            Timestamp::MIN
        } else {
            Timestamp::MAX
        }
        .to_string(),
    }
}

fn default_true() -> bool {
    true
}

/// A matcher in the API (`matcher` of the OpenAPI spec). `isEqual` defaults to true when
/// absent, as in Alertmanager.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatcherDto {
    pub name: String,
    pub value: String,
    pub is_regex: bool,
    #[serde(default = "default_true")]
    pub is_equal: bool,
}

impl From<&Matcher> for MatcherDto {
    fn from(m: &Matcher) -> Self {
        MatcherDto {
            name: m.name.clone(),
            value: m.value.clone(),
            is_regex: m.op.is_regex(),
            is_equal: m.op.is_equal(),
        }
    }
}

/// The body of `POST /api/v2/silences` (`postableSilence`): with an `id`, it updates that
/// silence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableSilence {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub matchers: Vec<MatcherDto>,
    pub starts_at: String,
    pub ends_at: String,
    pub created_by: String,
    pub comment: String,
}

/// `silenceStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceStatus {
    pub state: SilenceState,
}

/// A silence as `GET /api/v2/silences` returns it (`gettableSilence`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GettableSilence {
    pub id: String,
    pub status: SilenceStatus,
    pub updated_at: String,
    pub matchers: Vec<MatcherDto>,
    pub starts_at: String,
    pub ends_at: String,
    pub created_by: String,
    pub comment: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::alert::matcher::parse_matchers;
    use crate::notify::test_labels as labels;

    fn silence(matchers: &str, start: i64, end: i64) -> Silence {
        Silence {
            id: "s1".into(),
            matchers: parse_matchers(matchers).unwrap(),
            starts_at_ms: start,
            ends_at_ms: end,
            updated_at_ms: start,
            created_by: "me".into(),
            comment: "maintenance".into(),
        }
    }

    #[test]
    fn states_include_both_ends_in_active() {
        let s = silence("job=api", 1000, 2000);
        assert_eq!(s.state(999), SilenceState::Pending);
        assert_eq!(s.state(1000), SilenceState::Active);
        assert_eq!(s.state(2000), SilenceState::Active);
        assert_eq!(s.state(2001), SilenceState::Expired);
        assert_eq!(SilenceState::Expired.as_str(), "expired");
    }

    #[test]
    fn mutes_only_while_active_and_matching() {
        let s = silence(r#"job="api", instance=~"h[12]""#, 1000, 2000);
        let alert = labels(&[("job", "api"), ("instance", "h1"), ("sev", "page")]);
        assert!(s.mutes(&alert, 1500));
        assert!(!s.mutes(&alert, 500));
        assert!(!s.mutes(&alert, 2500));
        assert!(!s.mutes(&labels(&[("job", "api"), ("instance", "h3")]), 1500));
        // A missing label is the empty string.
        let absent = silence(r#"job="api", team="""#, 1000, 2000);
        assert!(absent.mutes(&labels(&[("job", "api")]), 1500));
        assert!(!absent.mutes(&labels(&[("job", "api"), ("team", "x")]), 1500));
    }

    #[test]
    fn validation_like_alertmanager() {
        assert_eq!(silence("", 0, 1).validate(), Err(SilenceError::NoMatchers));
        assert_eq!(
            silence(r#"job="""#, 0, 1).validate(),
            Err(SilenceError::AllMatchEmpty)
        );
        assert_eq!(
            silence(r#"job=~".*", x=~"a*""#, 0, 1).validate(),
            Err(SilenceError::AllMatchEmpty)
        );
        // `!=` never counts as matching the empty string, as in Alertmanager.
        assert_eq!(silence(r#"job!="api""#, 0, 1).validate(), Ok(()));
        assert_eq!(silence(r#"job=~".*", a="b""#, 0, 1).validate(), Ok(()));
        assert_eq!(
            silence("a:b=c", 0, 1).validate(),
            Err(SilenceError::InvalidLabelName {
                index: 0,
                name: "a:b".into()
            })
        );
        assert_eq!(
            silence("a=b", 2, 1).validate(),
            Err(SilenceError::EndBeforeStart)
        );
        assert_eq!(silence("a=b", 1, 1).validate(), Ok(()));
        assert_eq!(
            silence("a=b", 1, 1).validate_new(0),
            Err(SilenceError::StartNotBeforeEnd)
        );
        assert_eq!(
            silence("a=b", 1, 2).validate_new(3),
            Err(SilenceError::EndInPast)
        );
        assert_eq!(silence("a=b", 1, 2).validate_new(2), Ok(()));
        assert_eq!(
            SilenceError::AllMatchEmpty.to_string(),
            "at least one matcher must not match the empty string"
        );
    }

    #[test]
    fn api_json_round_trip() {
        let body = r#"{
            "matchers": [
                {"name": "job", "value": "api", "isRegex": false},
                {"name": "instance", "value": "h[12]", "isRegex": true, "isEqual": false}
            ],
            "startsAt": "2024-01-15T08:00:00Z",
            "endsAt": "2024-01-15T10:00:00.5+01:00",
            "createdBy": "alice",
            "comment": "deploy"
        }"#;
        let post: PostableSilence = serde_json::from_str(body).unwrap();
        assert!(post.id.is_empty());
        assert!(post.matchers[0].is_equal);
        let now = "2024-01-15T07:00:00Z"
            .parse::<Timestamp>()
            .unwrap()
            .as_millisecond();
        let mut s = Silence::from_postable(&post, now).unwrap();
        assert_eq!(s.matchers[1].op, MatchType::NotRegexp);
        assert_eq!(s.ends_at_ms - s.starts_at_ms, 3_600_000 + 500);
        s.id = "5f2ba9d6-5b5b-4a4c-8f8a-1e0d5d0f6c1e".into();
        let got = s.to_gettable(now);
        let json = serde_json::to_value(&got).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": "5f2ba9d6-5b5b-4a4c-8f8a-1e0d5d0f6c1e",
                "status": {"state": "pending"},
                "updatedAt": "2024-01-15T07:00:00.000Z",
                "matchers": [
                    {"name": "job", "value": "api", "isRegex": false, "isEqual": true},
                    {"name": "instance", "value": "h[12]", "isRegex": true, "isEqual": false}
                ],
                "startsAt": "2024-01-15T08:00:00.000Z",
                "endsAt": "2024-01-15T09:00:00.500Z",
                "createdBy": "alice",
                "comment": "deploy"
            })
        );
        let back: GettableSilence = serde_json::from_value(json).unwrap();
        assert_eq!(back, got);
        // Posting with an id keeps it (an update).
        let mut update = post.clone();
        update.id = "abc".into();
        assert_eq!(Silence::from_postable(&update, now).unwrap().id, "abc");
        assert!(
            serde_json::to_string(&post)
                .unwrap()
                .starts_with(r#"{"matchers""#)
        );
    }

    #[test]
    fn api_errors() {
        let mut post = PostableSilence {
            id: String::new(),
            matchers: vec![MatcherDto {
                name: "job".into(),
                value: "(".into(),
                is_regex: true,
                is_equal: true,
            }],
            starts_at: "2024-01-15T08:00:00Z".into(),
            ends_at: "2024-01-15T09:00:00Z".into(),
            created_by: "a".into(),
            comment: "c".into(),
        };
        let err = Silence::from_postable(&post, 0).unwrap_err();
        assert!(
            matches!(&err, SilenceError::InvalidRegex { index: 0, pattern, .. } if pattern == "("),
            "{err}"
        );
        post.matchers[0].value = "api".into();
        post.ends_at = "yesterday".into();
        assert!(matches!(
            Silence::from_postable(&post, 0),
            Err(SilenceError::InvalidTimestamp {
                field: "endsAt",
                ..
            })
        ));
        post.ends_at = "2024-01-15T07:00:00Z".into();
        assert_eq!(
            Silence::from_postable(&post, 0),
            Err(SilenceError::StartNotBeforeEnd)
        );
        assert_eq!(format_time(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
    }
}
