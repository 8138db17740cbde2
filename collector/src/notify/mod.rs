//! Notifications: what the alert dispatcher hands to receivers, and the receivers themselves.
//!
//! The dispatcher (`alert::dispatch`) decides *what* to send and *when* (routing, grouping,
//! silences, inhibition, the notification log); this module owns *how*: the Alertmanager
//! webhook payload (`payload`), webhook delivery (`webhook`), email (`email`), and the
//! durable outbox worker that retries deliveries (`outbox`). A `Notification` is a plain value
//! so that it can be written to the outbox in SQLite before it is attempted.

pub mod config;
pub mod email;
pub mod integrations;
pub mod outbox;
pub mod payload;
pub mod template;
pub mod webhook;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Label names and values of an alert, sorted by name (Alertmanager's `LabelSet`).
pub type LabelSet = BTreeMap<String, String>;

/// One alert as receivers see it: Alertmanager's `types.Alert`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotifyAlert {
    pub labels: LabelSet,
    pub annotations: LabelSet,
    /// When the alert started firing (ms since the epoch).
    pub starts_at_ms: i64,
    /// When the alert resolved, or, for alerts from outside, when it will be considered
    /// resolved unless refreshed (ms). `None` while firing with no known end.
    pub ends_at_ms: Option<i64>,
    pub generator_url: String,
}

impl NotifyAlert {
    /// Alertmanager's fingerprint of the alert's labels.
    pub fn fingerprint(&self) -> u64 {
        fingerprint(&self.labels)
    }

    /// Whether the alert is resolved at `now_ms` (its end is known and not in the future).
    pub fn resolved_at(&self, now_ms: i64) -> bool {
        self.ends_at_ms.is_some_and(|end| end <= now_ms)
    }
}

/// Whether a notification reports firing alerts or only resolved ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// One notification for one receiver: the alerts of one aggregation group at one flush.
/// `alerts` hold firing alerts first, then resolved ones, each sorted as Alertmanager does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The receiver's name in the routing configuration.
    pub receiver: String,
    /// The aggregation group's key: `{route path}:{group labels}`, as Alertmanager forms it.
    pub group_key: String,
    pub group_labels: LabelSet,
    pub alerts: Vec<NotifyAlert>,
    /// The time of the flush that produced this notification (ms); an alert is resolved in
    /// it when `resolved_at(now_ms)`.
    pub now_ms: i64,
    /// The collector's external URL (`rules.external_url`).
    pub external_url: String,
    /// When set, webhook integrations POST this JSON instead of Alertmanager's payload (the
    /// rollback hooks' context document, delivered through the same outbox and retries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_body: Option<serde_json::Value>,
}

impl Notification {
    /// `firing` when any alert fires at `now_ms`, else `resolved`.
    pub fn status(&self) -> Status {
        if self.alerts.iter().any(|a| !a.resolved_at(self.now_ms)) {
            Status::Firing
        } else {
            Status::Resolved
        }
    }

    pub fn firing(&self) -> impl Iterator<Item = &NotifyAlert> {
        self.alerts.iter().filter(|a| !a.resolved_at(self.now_ms))
    }

    pub fn resolved(&self) -> impl Iterator<Item = &NotifyAlert> {
        self.alerts.iter().filter(|a| a.resolved_at(self.now_ms))
    }

    /// Labels every alert shares with the same value.
    pub fn common_labels(&self) -> LabelSet {
        common(self.alerts.iter().map(|a| &a.labels))
    }

    /// Annotations every alert shares with the same value.
    pub fn common_annotations(&self) -> LabelSet {
        common(self.alerts.iter().map(|a| &a.annotations))
    }
}

fn common<'a>(mut sets: impl Iterator<Item = &'a LabelSet>) -> LabelSet {
    let Some(first) = sets.next() else {
        return LabelSet::new();
    };
    let mut out = first.clone();
    for set in sets {
        out.retain(|k, v| set.get(k) == Some(v));
    }
    out
}

/// Alertmanager's (Prometheus `model.LabelSet`) fingerprint: FNV-1a 64 over the label names and
/// values in name order, each followed by the separator byte 0xff. Formatted as `{:016x}`.
pub fn fingerprint(labels: &LabelSet) -> u64 {
    const OFFSET: u64 = 14695981039346656037;
    const PRIME: u64 = 1099511628211;
    let mut hash = OFFSET;
    let mut add = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    for (name, value) in labels {
        add(name.as_bytes());
        add(&[0xff]);
        add(value.as_bytes());
        add(&[0xff]);
    }
    hash
}

/// A label set from pairs, for unit tests.
#[cfg(test)]
pub(crate) fn test_labels(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::test_labels as set;
    use super::*;

    #[test]
    fn fingerprint_matches_alertmanager() {
        // From ../shared/fixtures/alertmanager_webhook_example.json (Alertmanager 0.25).
        let labels = set(&[
            ("alertname", "HighCPU"),
            ("instance", "host1:9100"),
            ("job", "node"),
            ("severity", "warning"),
        ]);
        assert_eq!(format!("{:016x}", fingerprint(&labels)), "6ee76221cead2762");
    }

    #[test]
    fn status_and_common_labels() {
        let alert = |name: &str, end: Option<i64>| NotifyAlert {
            labels: set(&[("alertname", "A"), ("instance", name)]),
            annotations: set(&[("summary", "s")]),
            starts_at_ms: 0,
            ends_at_ms: end,
            generator_url: String::new(),
        };
        let mut n = Notification {
            receiver: "r".into(),
            group_key: "{}:{}".into(),
            group_labels: LabelSet::new(),
            alerts: vec![alert("a", None), alert("b", Some(5))],
            now_ms: 10,
            external_url: String::new(),
            raw_body: None,
        };
        assert_eq!(n.status(), Status::Firing);
        assert_eq!(n.common_labels(), set(&[("alertname", "A")]));
        assert_eq!(n.common_annotations(), set(&[("summary", "s")]));
        n.alerts.remove(0);
        assert_eq!(n.status(), Status::Resolved);
    }
}
