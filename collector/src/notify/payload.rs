//! The Alertmanager webhook payload, version "4", built from a `Notification`: the JSON body
//! `webhook::send` posts and that existing Alertmanager webhook receivers parse unchanged.
//!
//! The outbox worker calls `encode` once per webhook delivery (before the first attempt, so
//! every retry posts the same bytes and the same HMAC signature); `build` gives the value for
//! tests and for anyone who wants the fields. The output matches Alertmanager 0.25 byte for
//! byte: the field order of its `webhook.Message` (with `template.Data` embedded), times as Go
//! marshals `time.Time` (RFC 3339 with trailing fractional zeros trimmed, `Z`), the zero time
//! `0001-01-01T00:00:00Z` as the end of a firing alert, map keys sorted, Go's HTML-safe string
//! escaping (`<` is `\u003c`), and the newline `json.Encoder` writes after the object.

use std::io;

use serde::{Deserialize, Serialize};
use serde_json::ser::{CharEscape, CompactFormatter, Formatter};

use super::{LabelSet, Notification, NotifyAlert};

/// The payload's `version`: Alertmanager's webhook protocol version.
pub const VERSION: &str = "4";

/// Go's zero `time.Time`, which Alertmanager sends as the end of a firing alert.
pub const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Alertmanager's `webhook.Message`: `template.Data`'s fields, then `version`, `groupKey`,
/// `truncatedAlerts`. The field order here is the order on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookMessage {
    pub receiver: String,
    pub status: String,
    pub alerts: Vec<WebhookAlert>,
    pub group_labels: LabelSet,
    pub common_labels: LabelSet,
    pub common_annotations: LabelSet,
    #[serde(rename = "externalURL")]
    pub external_url: String,
    pub version: String,
    pub group_key: String,
    pub truncated_alerts: u64,
}

/// Alertmanager's `template.Alert`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    pub status: String,
    pub labels: LabelSet,
    pub annotations: LabelSet,
    pub starts_at: String,
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    /// Alertmanager's label fingerprint, 16 lower-case hex digits.
    pub fingerprint: String,
}

/// The payload for `notification`, keeping at most `max_alerts` alerts (0: all).
///
/// Like Alertmanager, the alerts are truncated *first* and everything else (status, common
/// labels and annotations) is computed over the alerts that are sent; `truncatedAlerts` counts
/// the rest. Firing alerts come first in a `Notification`, so truncation drops resolved ones
/// before firing ones.
pub fn build(notification: &Notification, max_alerts: usize) -> WebhookMessage {
    let total = notification.alerts.len();
    let kept = if max_alerts != 0 && total > max_alerts {
        &notification.alerts[..max_alerts]
    } else {
        &notification.alerts[..]
    };
    let now = notification.now_ms;
    // Recompute over the kept alerts through a Notification so status and common sets use the
    // same definitions as everywhere else.
    let sent = Notification {
        receiver: String::new(),
        group_key: String::new(),
        group_labels: LabelSet::new(),
        alerts: kept.to_vec(),
        now_ms: now,
        external_url: String::new(),
        raw_body: None,
    };
    WebhookMessage {
        // Alertmanager's `template.Data` passes the receiver name through `regexp.QuoteMeta`
        // (it is used to build a filter URL), so the payload carries the escaped name.
        receiver: quote_meta(&notification.receiver),
        status: sent.status().as_str().to_owned(),
        alerts: kept.iter().map(|a| alert(a, now)).collect(),
        group_labels: notification.group_labels.clone(),
        common_labels: sent.common_labels(),
        common_annotations: sent.common_annotations(),
        external_url: notification.external_url.clone(),
        version: VERSION.to_owned(),
        group_key: notification.group_key.clone(),
        truncated_alerts: (total - kept.len()) as u64,
    }
}

/// The exact body Alertmanager would post for `notification`: `build` serialized the way Go's
/// `json.NewEncoder(w).Encode` does (HTML-safe escapes, trailing newline).
pub fn encode(
    notification: &Notification,
    max_alerts: usize,
) -> Result<Vec<u8>, serde_json::Error> {
    to_go_json(&build(notification, max_alerts))
}

/// Serializes `value` as Go's `json.Encoder` (with its default `SetEscapeHTML(true)`) does,
/// including the newline it appends.
pub fn to_go_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(1024);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    value.serialize(&mut ser)?;
    out.push(b'\n');
    Ok(out)
}

fn alert(a: &NotifyAlert, now_ms: i64) -> WebhookAlert {
    let resolved = a.resolved_at(now_ms);
    WebhookAlert {
        status: if resolved { "resolved" } else { "firing" }.to_owned(),
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        starts_at: go_time(a.starts_at_ms),
        // Alertmanager hides an end that has not been reached yet (`types.Alerts`): a firing
        // alert always ends at the zero time on the wire.
        ends_at: match a.ends_at_ms {
            Some(end) if resolved => go_time(end),
            _ => GO_ZERO_TIME.to_owned(),
        },
        generator_url: a.generator_url.clone(),
        fingerprint: format!("{:016x}", a.fingerprint()),
    }
}

/// Go's `time.Time.MarshalJSON` of a UTC time given in ms since the epoch: RFC 3339 with
/// the fractional seconds' trailing zeros trimmed (`RFC3339Nano`) and `Z`.
///
/// Go refuses years outside 0000..=9999; we clamp into 0001..=9999 instead of failing, so an
/// absurd timestamp from outside still yields a valid payload.
pub fn go_time(ms: i64) -> String {
    // 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z.
    const MIN_MS: i64 = -62_135_596_800_000;
    const MAX_MS: i64 = 253_402_300_799_999;
    let ms = ms.clamp(MIN_MS, MAX_MS);
    let secs = ms.div_euclid(1000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
    let frac = ms.rem_euclid(1000);
    if frac != 0 {
        let digits = format!(".{frac:03}");
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`): total over the clamped range, so formatting never fails.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Go's `regexp.QuoteMeta`: a backslash before each of `\.+*?()|[]{}^$`.
fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A compact JSON formatter that escapes strings like Go's `encoding/json` (as of Go 1.20,
/// which Alertmanager 0.25 is built with): `<`, `>`, `&`, U+2028 and U+2029 as `\u` escapes,
/// and backspace and form feed as `\u0008`/`\u000c` (Go 1.22 later added `\b` and `\f`).
struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escaped = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escaped.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        char_escape: CharEscape,
    ) -> io::Result<()> {
        match char_escape {
            CharEscape::Backspace => writer.write_all(b"\\u0008"),
            CharEscape::FormFeed => writer.write_all(b"\\u000c"),
            other => CompactFormatter.write_char_escape(writer, other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::test_labels as set;

    fn ms(rfc3339: &str) -> i64 {
        match rfc3339.parse::<jiff::Timestamp>() {
            Ok(ts) => ts.as_millisecond(),
            Err(e) => panic!("{rfc3339}: {e}"),
        }
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/fixtures")
            .join(name);
        match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }

    /// The notification behind ../shared/fixtures/alertmanager_webhook_*example.json, which a
    /// real Alertmanager 0.25 posted.
    fn high_cpu(ends_at_ms: Option<i64>, now_ms: i64) -> Notification {
        Notification {
            receiver: "webhook".into(),
            group_key: "{}:{alertname=\"HighCPU\", instance=\"host1:9100\"}".into(),
            group_labels: set(&[("alertname", "HighCPU"), ("instance", "host1:9100")]),
            alerts: vec![NotifyAlert {
                labels: set(&[
                    ("alertname", "HighCPU"),
                    ("instance", "host1:9100"),
                    ("job", "node"),
                    ("severity", "warning"),
                ]),
                annotations: set(&[
                    ("description", "CPU > 90% for 5m"),
                    ("summary", "High CPU on host1"),
                ]),
                starts_at_ms: ms("2026-11-26T09:44:53Z"),
                ends_at_ms,
                generator_url: "http://127.0.0.1:9090/graph?g0.expr=cpu".into(),
            }],
            now_ms,
            external_url: "http://vm:9093".into(),
            raw_body: None,
        }
    }

    fn assert_same(ours: &[u8], theirs: &[u8]) {
        let a: serde_json::Value = serde_json::from_slice(ours).expect("our JSON parses");
        let b: serde_json::Value = serde_json::from_slice(theirs).expect("fixture parses");
        assert_eq!(a, b, "JSON values differ");
        // Byte equality also pins key order, escapes and the trailing newline.
        assert_eq!(
            String::from_utf8_lossy(ours),
            String::from_utf8_lossy(theirs),
            "serialization differs"
        );
    }

    #[test]
    fn firing_matches_alertmanager_0_25() {
        // Prometheus sends firing alerts with an end in the future (now + 4 × resend delay);
        // Alertmanager hides it.
        let n = high_cpu(Some(ms("2026-11-26T09:49:53Z")), ms("2026-11-26T09:45:00Z"));
        let ours = encode(&n, 0).expect("encodes");
        assert_same(&ours, &fixture("alertmanager_webhook_example.json"));
        let n = high_cpu(None, ms("2026-11-26T09:45:00Z"));
        assert_same(
            &encode(&n, 0).expect("encodes"),
            &fixture("alertmanager_webhook_example.json"),
        );
    }

    #[test]
    fn resolved_matches_alertmanager_0_25() {
        let n = high_cpu(Some(ms("2026-11-26T09:45:02Z")), ms("2026-11-26T09:45:10Z"));
        let ours = encode(&n, 0).expect("encodes");
        assert_same(
            &ours,
            &fixture("alertmanager_webhook_resolved_example.json"),
        );
    }

    #[test]
    fn go_time_formats() {
        assert_eq!(go_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(go_time(1_500), "1970-01-01T00:00:01.5Z");
        assert_eq!(go_time(1_120), "1970-01-01T00:00:01.12Z");
        assert_eq!(go_time(1_123), "1970-01-01T00:00:01.123Z");
        assert_eq!(go_time(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(go_time(i64::MIN), GO_ZERO_TIME);
        assert_eq!(go_time(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(go_time(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(
            go_time(ms("2026-11-26T09:44:53.07Z")),
            "2026-11-26T09:44:53.07Z"
        );
        // Every day over four centuries agrees with jiff.
        for day in -73_000..73_000_i64 {
            let t = day * 86_400_000 + 43_210_987;
            let want = jiff::Timestamp::from_millisecond(t)
                .expect("in range")
                .to_string();
            assert_eq!(go_time(t), want);
        }
    }

    #[test]
    fn go_string_escapes() {
        let s = "<a href=\"x\">&</a>\u{8}\u{c}\n\t\u{1}\u{7f}\u{2028}\u{2029}é\\";
        let out = to_go_json(s).expect("encodes");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "\"\\u003ca href=\\\"x\\\"\\u003e\\u0026\\u003c/a\\u003e\\u0008\\u000c\\n\\t\\u0001\u{7f}\\u2028\\u2029é\\\\\"\n"
        );
    }

    #[test]
    fn receiver_name_is_quote_meta_escaped() {
        assert_eq!(quote_meta("team.a+b"), "team\\.a\\+b");
        assert_eq!(quote_meta("plain-name_1"), "plain-name_1");
    }

    #[test]
    fn truncation_counts_and_recomputes_common_sets() {
        let alert = |i: &str, end: Option<i64>| NotifyAlert {
            labels: set(&[("alertname", "A"), ("instance", i)]),
            annotations: LabelSet::new(),
            starts_at_ms: 0,
            ends_at_ms: end,
            generator_url: String::new(),
        };
        let n = Notification {
            receiver: "r".into(),
            group_key: "{}:{alertname=\"A\"}".into(),
            group_labels: set(&[("alertname", "A")]),
            alerts: vec![alert("a", None), alert("b", None), alert("c", Some(5))],
            now_ms: 10,
            external_url: String::new(),
            raw_body: None,
        };
        let m = build(&n, 1);
        assert_eq!(m.alerts.len(), 1);
        assert_eq!(m.truncated_alerts, 2);
        assert_eq!(m.status, "firing");
        // Over the one alert sent, its instance is common.
        assert_eq!(
            m.common_labels,
            set(&[("alertname", "A"), ("instance", "a")])
        );
        let all = build(&n, 0);
        assert_eq!(all.truncated_alerts, 0);
        assert_eq!(all.alerts[2].status, "resolved");
        assert_eq!(all.alerts[2].ends_at, "1970-01-01T00:00:00.005Z");
        assert_eq!(all.common_labels, set(&[("alertname", "A")]));
        let json = String::from_utf8(encode(&n, 5).expect("encodes")).expect("utf-8");
        assert!(json.contains("\"annotations\":{}"), "{json}");
        assert!(json.contains("\"commonAnnotations\":{}"), "{json}");
    }
}
