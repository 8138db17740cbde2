//! The alert state machine of one alerting rule, as a pure function.
//!
//! `step` takes the rule's alerts as they were, the result of one evaluation and the time of
//! that evaluation, and returns the alerts as they are now plus the transitions that happened.
//! It does no I/O and never reads the clock, so every path is tested exhaustively below. The
//! semantics are Prometheus' (`rules/alerting.go`, 2.42 with `keep_firing_for`):
//!
//! - an element of the result with no alert yet starts one in `Pending` (active since now);
//! - a `Pending` alert becomes `Firing` once it has been active for `for` (at once when
//!   `for` is zero);
//! - an alert whose labels are missing from the result: `Pending` is dropped; `Firing` keeps
//!   firing while it has been missing for less than `keep_firing_for`, then becomes `Inactive`
//!   (resolved) and is kept for `RESOLVED_RETENTION` so notifiers can still send "resolved";
//! - an `Inactive` alert that shows up again starts over as a new `Pending` alert.

use std::collections::BTreeMap;

use crate::model::Labels;

/// How long a resolved alert is kept, as in Prometheus.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Pending,
    Firing,
    /// Resolved; kept for `RESOLVED_RETENTION_MS`.
    Inactive,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Firing => "firing",
            State::Inactive => "inactive",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        Some(match s {
            "pending" => State::Pending,
            "firing" => State::Firing,
            "inactive" => State::Inactive,
            _ => return None,
        })
    }
}

/// One alert of a rule, identified by its labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub state: State,
    /// The value of the expression at the last evaluation that returned this alert.
    pub value: f64,
    /// When the alert became pending (ms).
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    /// When the expression stopped returning this firing alert, while `keep_firing_for` holds
    /// it firing.
    pub keep_firing_since: Option<i64>,
    /// The last evaluation that returned this alert.
    pub last_seen: i64,
}

/// The timing parameters of a rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timing {
    pub for_ms: i64,
    pub keep_firing_for_ms: i64,
}

/// One element of an evaluation result, with its labels and annotations already templated.
#[derive(Clone, Debug, PartialEq)]
pub struct Element {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub value: f64,
}

/// A change of an alert's state, for notification and incident handling.
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    /// A new alert started pending (or firing at once, which is reported as `Fired`).
    Pending(Alert),
    Fired(Alert),
    Resolved(Alert),
    /// A pending alert disappeared before it fired.
    Cancelled(Alert),
}

/// The alerts of one rule, keyed by their label set.
pub type Alerts = BTreeMap<Labels, Alert>;

/// Advances the alerts of one rule by one evaluation at `now`.
pub fn step(
    mut alerts: Alerts,
    result: Vec<Element>,
    now: i64,
    timing: Timing,
) -> (Alerts, Vec<Transition>) {
    let mut transitions = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for element in result {
        seen.insert(element.labels.clone());
        match alerts.get_mut(&element.labels) {
            Some(alert) if alert.state != State::Inactive => {
                alert.value = element.value;
                alert.annotations = element.annotations;
                alert.last_seen = now;
                alert.keep_firing_since = None;
            }
            _ => {
                let alert = Alert {
                    labels: element.labels.clone(),
                    annotations: element.annotations,
                    state: State::Pending,
                    value: element.value,
                    active_at: now,
                    fired_at: None,
                    resolved_at: None,
                    keep_firing_since: None,
                    last_seen: now,
                };
                alerts.insert(element.labels, alert);
            }
        }
    }
    let mut dropped = Vec::new();
    for (labels, alert) in alerts.iter_mut() {
        if !seen.contains(labels) {
            match alert.state {
                State::Pending => {
                    transitions.push(Transition::Cancelled(alert.clone()));
                    dropped.push(labels.clone());
                    continue;
                }
                State::Firing => {
                    let since = *alert.keep_firing_since.get_or_insert(now);
                    if now - since < timing.keep_firing_for_ms {
                        // Held firing by keep_firing_for.
                        continue;
                    }
                    alert.state = State::Inactive;
                    alert.resolved_at = Some(now);
                    alert.keep_firing_since = None;
                    transitions.push(Transition::Resolved(alert.clone()));
                    continue;
                }
                State::Inactive => {
                    if alert
                        .resolved_at
                        .is_none_or(|r| now - r > RESOLVED_RETENTION_MS)
                    {
                        dropped.push(labels.clone());
                    }
                    continue;
                }
            }
        }
        if alert.state == State::Pending {
            if now - alert.active_at >= timing.for_ms {
                alert.state = State::Firing;
                alert.fired_at = Some(now);
                transitions.push(Transition::Fired(alert.clone()));
            } else if alert.active_at == now {
                transitions.push(Transition::Pending(alert.clone()));
            }
        }
    }
    for labels in dropped {
        alerts.remove(&labels);
    }
    (alerts, transitions)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn labels(instance: &str) -> Labels {
        Labels::new(vec![
            ("alertname".into(), "HighCPU".into()),
            ("instance".into(), instance.into()),
        ])
    }

    fn el(instance: &str, value: f64) -> Element {
        Element {
            labels: labels(instance),
            annotations: BTreeMap::from([("summary".into(), format!("{instance} at {value}"))]),
            value,
        }
    }

    fn kinds(t: &[Transition]) -> Vec<(&'static str, String)> {
        t.iter()
            .map(|t| match t {
                Transition::Pending(a) => ("pending", a.labels.get("instance").unwrap().to_owned()),
                Transition::Fired(a) => ("fired", a.labels.get("instance").unwrap().to_owned()),
                Transition::Resolved(a) => {
                    ("resolved", a.labels.get("instance").unwrap().to_owned())
                }
                Transition::Cancelled(a) => {
                    ("cancelled", a.labels.get("instance").unwrap().to_owned())
                }
            })
            .collect()
    }

    const FOR: Timing = Timing {
        for_ms: 60_000,
        keep_firing_for_ms: 0,
    };

    #[test]
    fn for_zero_fires_at_once() {
        let (alerts, t) = step(Alerts::new(), vec![el("a", 1.0)], 0, Timing::default());
        assert_eq!(kinds(&t), vec![("fired", "a".into())]);
        let a = &alerts[&labels("a")];
        assert_eq!(a.state, State::Firing);
        assert_eq!(a.fired_at, Some(0));
        assert_eq!(a.active_at, 0);
    }

    #[test]
    fn pending_then_firing_after_for() {
        let (alerts, t) = step(Alerts::new(), vec![el("a", 1.0)], 0, FOR);
        assert_eq!(kinds(&t), vec![("pending", "a".into())]);
        let (alerts, t) = step(alerts, vec![el("a", 2.0)], 30_000, FOR);
        assert!(t.is_empty());
        assert_eq!(alerts[&labels("a")].state, State::Pending);
        assert_eq!(alerts[&labels("a")].value, 2.0);
        let (alerts, t) = step(alerts, vec![el("a", 3.0)], 60_000, FOR);
        assert_eq!(kinds(&t), vec![("fired", "a".into())]);
        assert_eq!(alerts[&labels("a")].annotations["summary"], "a at 3");
        assert_eq!(alerts[&labels("a")].active_at, 0);
    }

    #[test]
    fn pending_that_disappears_is_cancelled_and_forgotten() {
        let (alerts, _) = step(Alerts::new(), vec![el("a", 1.0)], 0, FOR);
        let (alerts, t) = step(alerts, vec![], 30_000, FOR);
        assert_eq!(kinds(&t), vec![("cancelled", "a".into())]);
        assert!(alerts.is_empty());
        // Coming back restarts the `for` timer.
        let (alerts, _) = step(alerts, vec![el("a", 1.0)], 40_000, FOR);
        assert_eq!(alerts[&labels("a")].active_at, 40_000);
    }

    #[test]
    fn firing_resolves_and_is_kept_for_retention() {
        let (alerts, _) = step(Alerts::new(), vec![el("a", 1.0)], 0, Timing::default());
        let (alerts, t) = step(alerts, vec![], 10_000, Timing::default());
        assert_eq!(kinds(&t), vec![("resolved", "a".into())]);
        let a = &alerts[&labels("a")];
        assert_eq!(a.state, State::Inactive);
        assert_eq!(a.resolved_at, Some(10_000));
        let (alerts, t) = step(
            alerts,
            vec![],
            10_000 + RESOLVED_RETENTION_MS,
            Timing::default(),
        );
        assert!(t.is_empty());
        assert_eq!(alerts.len(), 1, "kept through the retention");
        let (alerts, _) = step(
            alerts,
            vec![],
            10_001 + RESOLVED_RETENTION_MS,
            Timing::default(),
        );
        assert!(alerts.is_empty(), "dropped after the retention");
    }

    #[test]
    fn resolved_alert_that_returns_starts_over() {
        let (alerts, _) = step(Alerts::new(), vec![el("a", 1.0)], 0, FOR);
        let (alerts, _) = step(alerts, vec![el("a", 1.0)], 60_000, FOR);
        let (alerts, _) = step(alerts, vec![], 70_000, FOR);
        let (alerts, t) = step(alerts, vec![el("a", 1.0)], 80_000, FOR);
        assert_eq!(kinds(&t), vec![("pending", "a".into())]);
        let a = &alerts[&labels("a")];
        assert_eq!(
            (a.state, a.active_at, a.fired_at, a.resolved_at),
            (State::Pending, 80_000, None, None)
        );
    }

    #[test]
    fn keep_firing_for_holds_a_flapping_alert() {
        let timing = Timing {
            for_ms: 0,
            keep_firing_for_ms: 30_000,
        };
        let (alerts, _) = step(Alerts::new(), vec![el("a", 1.0)], 0, timing);
        let (alerts, t) = step(alerts, vec![], 10_000, timing);
        assert!(t.is_empty());
        assert_eq!(alerts[&labels("a")].state, State::Firing);
        assert_eq!(alerts[&labels("a")].keep_firing_since, Some(10_000));
        // Back in the result: the hold resets.
        let (alerts, _) = step(alerts, vec![el("a", 1.0)], 20_000, timing);
        assert_eq!(alerts[&labels("a")].keep_firing_since, None);
        let (alerts, t) = step(alerts, vec![], 30_000, timing);
        assert!(t.is_empty());
        let (alerts, t) = step(alerts, vec![], 59_999, timing);
        assert!(t.is_empty());
        let (alerts, t) = step(alerts, vec![], 60_000, timing);
        assert_eq!(kinds(&t), vec![("resolved", "a".into())]);
        assert_eq!(alerts[&labels("a")].resolved_at, Some(60_000));
    }

    #[test]
    fn independent_alerts_per_label_set() {
        let (alerts, t) = step(Alerts::new(), vec![el("a", 1.0), el("b", 1.0)], 0, FOR);
        assert_eq!(
            kinds(&t),
            vec![("pending", "a".into()), ("pending", "b".into())]
        );
        let (alerts, t) = step(alerts, vec![el("b", 1.0)], 60_000, FOR);
        assert_eq!(
            kinds(&t),
            vec![("cancelled", "a".into()), ("fired", "b".into())]
        );
        assert_eq!(alerts.len(), 1);
    }

    /// Every (state, present-in-result, timer-elapsed) combination against a reference table.
    #[test]
    fn exhaustive_single_alert_table() {
        let timing = Timing {
            for_ms: 100,
            keep_firing_for_ms: 50,
        };
        let base = |state: State| Alert {
            labels: labels("a"),
            annotations: BTreeMap::new(),
            state,
            value: 0.0,
            active_at: 0,
            fired_at: (state != State::Pending).then_some(100),
            resolved_at: (state == State::Inactive).then_some(200),
            keep_firing_since: None,
            last_seen: 100,
        };
        // (state before, present, now) -> (state after or None when dropped, transition kind)
        type Case = (State, bool, i64, Option<State>, Option<&'static str>);
        let cases: &[Case] = &[
            (State::Pending, true, 50, Some(State::Pending), None),
            (
                State::Pending,
                true,
                100,
                Some(State::Firing),
                Some("fired"),
            ),
            (State::Pending, false, 50, None, Some("cancelled")),
            (State::Pending, false, 100, None, Some("cancelled")),
            (State::Firing, true, 150, Some(State::Firing), None),
            (State::Firing, false, 150, Some(State::Firing), None), // held by keep_firing_for
            (
                State::Inactive,
                true,
                300,
                Some(State::Pending),
                Some("pending"),
            ),
            (State::Inactive, false, 300, Some(State::Inactive), None),
            (
                State::Inactive,
                false,
                200 + RESOLVED_RETENTION_MS + 1,
                None,
                None,
            ),
        ];
        for &(before, present, now, after, kind) in cases {
            let alerts = Alerts::from([(labels("a"), base(before))]);
            let result = if present { vec![el("a", 1.0)] } else { vec![] };
            let (alerts, t) = step(alerts, result, now, timing);
            assert_eq!(
                alerts.get(&labels("a")).map(|a| a.state),
                after,
                "{before:?} {present} {now}"
            );
            assert_eq!(
                kinds(&t).first().map(|k| k.0),
                kind,
                "{before:?} {present} {now}"
            );
        }
        // Firing, absent long enough: resolved.
        let mut firing = base(State::Firing);
        firing.keep_firing_since = Some(100);
        let (alerts, t) = step(Alerts::from([(labels("a"), firing)]), vec![], 150, timing);
        assert_eq!(kinds(&t), vec![("resolved", "a".into())]);
        assert_eq!(alerts[&labels("a")].state, State::Inactive);
    }
}
