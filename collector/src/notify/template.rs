//! Notification templates: configured email headers and bodies that contain `{{`, rendered
//! with the Go template engine (`rules::template`, Alertmanager's function set) over
//! Alertmanager's template data (`template.Data`), so templates written for Alertmanager work:
//! `.Status`, `.Receiver`, `.Alerts` (with `.Firing` and `.Resolved`; each alert with
//! `.Status`, `.Labels`, `.Annotations`, `.StartsAt`, `.EndsAt`, `.GeneratorURL`,
//! `.Fingerprint`), `.GroupLabels`, `.CommonLabels`, `.CommonAnnotations`, `.ExternalURL`.
//!
//! Used by `notify::integrations` through the email module's template seam. Named templates
//! from Alertmanager's `templates:` files (`{{ template "email.default.html" . }}`) are not
//! loaded; such a reference fails the delivery permanently with the engine's message, and the
//! defaults apply when no template is configured.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::email::TemplateField;
use super::integrations::TemplateRenderer;
use super::{Notification, NotifyAlert, fingerprint};
use crate::rules::template::{Env, Library, Struct, Template, Value};

fn time(ms: i64) -> Value {
    Value::Time(jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH))
}

fn alert(a: &NotifyAlert, now_ms: i64) -> Value {
    let resolved = a.resolved_at(now_ms);
    Value::Struct(Struct::new(
        "template.Alert",
        vec![
            (
                "Status",
                Value::from(if resolved { "resolved" } else { "firing" }),
            ),
            ("Labels", Value::Kv(a.labels.clone())),
            ("Annotations", Value::Kv(a.annotations.clone())),
            ("StartsAt", time(a.starts_at_ms)),
            (
                "EndsAt",
                match a.ends_at_ms {
                    Some(end) if resolved => time(end),
                    // Go's zero time, as Alertmanager shows a firing alert's end.
                    _ => Value::Time(
                        "0001-01-01T00:00:00Z"
                            .parse()
                            .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
                    ),
                },
            ),
            ("GeneratorURL", Value::from(a.generator_url.as_str())),
            (
                "Fingerprint",
                Value::from(format!("{:016x}", fingerprint(&a.labels)).as_str()),
            ),
        ],
    ))
}

/// Alertmanager's `template.Data` for a notification.
pub fn data(n: &Notification) -> Value {
    let all: Vec<Value> = n.alerts.iter().map(|a| alert(a, n.now_ms)).collect();
    let firing: Vec<Value> = n.firing().map(|a| alert(a, n.now_ms)).collect();
    let resolved: Vec<Value> = n.resolved().map(|a| alert(a, n.now_ms)).collect();
    Value::Struct(Struct::new(
        "template.Data",
        vec![
            ("Receiver", Value::from(n.receiver.as_str())),
            ("Status", Value::from(n.status().as_str())),
            (
                "Alerts",
                Value::ListWithFields(
                    all,
                    BTreeMap::from([
                        ("Firing".to_owned(), Value::List(firing)),
                        ("Resolved".to_owned(), Value::List(resolved)),
                    ]),
                ),
            ),
            ("GroupLabels", Value::Kv(n.group_labels.clone())),
            ("CommonLabels", Value::Kv(n.common_labels())),
            ("CommonAnnotations", Value::Kv(n.common_annotations())),
            ("ExternalURL", Value::from(n.external_url.as_str())),
        ],
    ))
}

/// Renders one configured template over a notification.
pub fn render(n: &Notification, field: TemplateField<'_>, text: &str) -> Result<String, String> {
    let template =
        Template::parse_with(text, Library::Alertmanager).map_err(|e| format!("{field}: {e}"))?;
    template
        .render_with(&data(n), &Env::default())
        .map_err(|e| {
            format!(
                "{field}: {}",
                template.exec_error_text(&field.to_string(), &e)
            )
        })
}

/// The renderer the integrations use.
pub fn renderer() -> TemplateRenderer {
    Arc::new(render)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::LabelSet;

    fn notification() -> Notification {
        let labels = |i: &str| -> LabelSet {
            LabelSet::from([
                ("alertname".to_owned(), "HighCPU".to_owned()),
                ("instance".to_owned(), i.to_owned()),
            ])
        };
        Notification {
            receiver: "ops".into(),
            group_key: "{}:{}".into(),
            group_labels: LabelSet::from([("alertname".to_owned(), "HighCPU".to_owned())]),
            alerts: vec![
                NotifyAlert {
                    labels: labels("a"),
                    annotations: LabelSet::from([("summary".to_owned(), "hot".to_owned())]),
                    starts_at_ms: 1_764_150_000_000,
                    ends_at_ms: None,
                    generator_url: "http://g".into(),
                },
                NotifyAlert {
                    labels: labels("b"),
                    annotations: LabelSet::new(),
                    starts_at_ms: 1_764_150_000_000,
                    ends_at_ms: Some(1_764_150_060_000),
                    generator_url: String::new(),
                },
            ],
            now_ms: 1_764_150_100_000,
            external_url: "http://redline".into(),
            raw_body: None,
        }
    }

    #[test]
    fn alertmanager_templates_render_over_the_notification() {
        let n = notification();
        let r = |t: &str| render(&n, TemplateField::Text, t);
        assert_eq!(
            r(
                r#"[{{ .Status | toUpper }}:{{ .Alerts.Firing | len }}] {{ .GroupLabels.SortedPairs.Values | join " " }}"#
            ),
            Ok("[FIRING:1] HighCPU".to_owned())
        );
        assert_eq!(
            r("{{ range .Alerts }}{{ .Labels.instance }}={{ .Status }} {{ end }}"),
            Ok("a=firing b=resolved ".to_owned())
        );
        assert_eq!(
            r(
                "{{ range .Alerts.Resolved }}{{ .EndsAt.Format \"15:04\" }}{{ end }} {{ .ExternalURL }} {{ .Receiver }}"
            ),
            Ok("09:41 http://redline ops".to_owned())
        );
        assert_eq!(
            r("{{ .CommonLabels.alertname }}/{{ len .CommonAnnotations }}"),
            Ok("HighCPU/0".to_owned())
        );
        let err = r("{{ .Nope }}").err().unwrap_or_default();
        assert!(err.contains("can't evaluate field Nope"), "{err}");
        let err = r("{{ template \"email.default.html\" . }}")
            .err()
            .unwrap_or_default();
        assert!(err.contains("email.default.html"), "{err}");
    }
}
