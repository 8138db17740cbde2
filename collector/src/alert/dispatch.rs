//! The pure core of notification dispatch: Alertmanager's aggregation groups, deduplication
//! against the notification log, and the mute stages, as a state machine driven by `now`.
//!
//! Owned by the dispatcher task (`alert::dispatcher`), which feeds it alerts (from the rule
//! manager and `POST /api/v2/alerts`), asks it when the next group is due, and persists what
//! `flush_due` returns (outbox entries plus notification-log entries, in one transaction)
//! before handing them to the outbox worker. Everything about the configuration it needs —
//! routes, receivers, silences, inhibition, time intervals — comes through the `Policy` trait,
//! so this module does no I/O, reads no clock and is tested exhaustively below.
//!
//! Semantics follow Alertmanager 0.25 (`dispatch/dispatch.go`, `notify/notify.go`):
//! - an alert goes to every route that matches it; per route it joins the aggregation group of
//!   its `group_by` labels; a new group flushes after `group_wait`, or at once when its alert
//!   started more than `group_wait` ago; then every `group_interval`;
//! - at a flush each integration of the route's receiver gets a notification unless the route
//!   is muted by a time interval now, or the notification log says nothing changed (no new
//!   firing alert, no newly resolved alert for `send_resolved` integrations) and the last
//!   notification is younger than `repeat_interval`;
//! - silenced and inhibited *firing* alerts are left out. Unlike Alertmanager, a *resolved*
//!   alert is never muted: when the receiver was told it fired, it is told it resolved, even if
//!   a silence was added meanwhile (alertmanager#226);
//! - resolved alerts leave their groups after the flush that reported them; empty groups end.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::notify::{LabelSet, Notification, NotifyAlert, fingerprint};
use crate::store::{NotificationLogEntry, OutboxEntry};

/// What the dispatcher needs to know about one matching route.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupRoute {
    /// Alertmanager 0.25's route key (`{}/{severity="page"}`): the prefix of group keys.
    pub route_key: String,
    /// The route's unique id in the tree (`{}/{severity="page"}/0`), for its mute times.
    pub route_id: String,
    pub receiver: String,
    /// `None` means `group_by: ['...']` (every label).
    pub group_by: Option<Vec<String>>,
    pub group_wait_ms: i64,
    pub group_interval_ms: i64,
    pub repeat_interval_ms: i64,
}

/// One integration (one `email_configs` or `webhook_configs` entry) of a receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntegrationRef {
    /// `receiver/kind/index`, e.g. `ops/webhook/0`.
    pub id: String,
    pub send_resolved: bool,
}

/// The configuration and mute state the core consults. Implemented over the loaded
/// Alertmanager configuration and the silences by the dispatcher task; by fixtures in tests.
pub trait Policy {
    /// Every route that takes an alert with these labels (at least the root).
    fn routes(&self, labels: &LabelSet) -> Vec<GroupRoute>;
    /// The integrations of a receiver (empty for an unknown receiver).
    fn integrations(&self, receiver: &str) -> Vec<IntegrationRef>;
    /// Whether a route (by id) is muted at `now_ms` by its `mute_time_intervals`, or outside
    /// its `active_time_intervals`.
    fn route_muted(&self, route_id: &str, now_ms: i64) -> bool;
    /// Ids of the active silences that match these labels at `now_ms`.
    fn silenced_by(&self, labels: &LabelSet, now_ms: i64) -> Vec<String>;
    /// Whether an inhibit rule mutes `labels` given the firing alerts.
    fn inhibited(&self, labels: &LabelSet, firing: &mut dyn Iterator<Item = &LabelSet>) -> bool;
}

/// One aggregation group.
#[derive(Clone, Debug)]
struct Group {
    route: GroupRoute,
    labels: LabelSet,
    key: String,
    alerts: BTreeSet<u64>,
    next_flush_ms: i64,
}

/// A notification ready to persist and deliver.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    /// `None` when the log changed but nothing is sent (e.g. everything resolved and the
    /// integration does not want resolved notices): the log entry must still be persisted.
    pub entry: Option<OutboxEntry>,
    pub log: NotificationLogEntry,
}

/// Why an alert is not being notified, for `GET /api/v2/alerts`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertStatus {
    pub silenced_by: Vec<String>,
    pub inhibited: bool,
    pub receivers: Vec<String>,
}

/// The state of dispatch: alerts, groups and the notification log.
#[derive(Default, Debug)]
pub struct Dispatch {
    alerts: HashMap<u64, NotifyAlert>,
    /// Keyed by group key (route key + group labels), so iteration order is stable.
    groups: BTreeMap<String, Group>,
    log: HashMap<(String, String), NotificationLogEntry>,
    external_url: String,
    /// Notifications made, for unique idempotency keys within one millisecond.
    sequence: u64,
}

pub use super::route::group_key;

fn group_labels(labels: &LabelSet, group_by: &Option<Vec<String>>) -> LabelSet {
    match group_by {
        None => labels.clone(),
        Some(names) => names
            .iter()
            .filter_map(|n| labels.get(n).map(|v| (n.clone(), v.clone())))
            .collect(),
    }
}

impl Dispatch {
    pub fn new(external_url: impl Into<String>) -> Self {
        Dispatch {
            external_url: external_url.into(),
            ..Dispatch::default()
        }
    }

    /// Restores the notification log persisted by earlier runs.
    pub fn restore_log(&mut self, entries: impl IntoIterator<Item = NotificationLogEntry>) {
        for e in entries {
            self.log
                .insert((e.group_key.clone(), e.integration.clone()), e);
        }
    }

    /// Adds or updates an alert (same labels = same alert, as in Alertmanager: the earliest
    /// start is kept, the rest is replaced) and puts it into the groups of its routes.
    pub fn insert(&mut self, alert: NotifyAlert, policy: &dyn Policy, now_ms: i64) {
        let fp = fingerprint(&alert.labels);
        let alert = match self.alerts.get(&fp) {
            // A resolved alert that fires again is a new alert with its own start.
            Some(old) if !old.resolved_at(now_ms) => NotifyAlert {
                starts_at_ms: old.starts_at_ms.min(alert.starts_at_ms),
                ..alert
            },
            _ => alert,
        };
        let resolved = alert.resolved_at(now_ms);
        for route in policy.routes(&alert.labels) {
            let labels = group_labels(&alert.labels, &route.group_by);
            let key = group_key(&route.route_key, &labels);
            if resolved && !self.groups.contains_key(&key) {
                // A resolution for a group that no longer exists: nobody heard of it firing
                // from this group (or heard already), so it would only start an empty group.
                if !self.log_mentions(&key, fp) {
                    continue;
                }
            }
            let group = self.groups.entry(key.clone()).or_insert_with(|| {
                // Alertmanager flushes a new group at once when its first alert started more
                // than `group_wait` ago (e.g. after a restart, or a rule with `for`).
                let wait_over = alert.starts_at_ms + route.group_wait_ms <= now_ms;
                Group {
                    next_flush_ms: if wait_over {
                        now_ms
                    } else {
                        now_ms + route.group_wait_ms
                    },
                    route: route.clone(),
                    labels,
                    key,
                    alerts: BTreeSet::new(),
                }
            });
            // A reload may have changed the timings of the route.
            group.route = route;
            group.alerts.insert(fp);
        }
        self.alerts.insert(fp, alert);
    }

    fn log_mentions(&self, group_key: &str, fp: u64) -> bool {
        self.log
            .iter()
            .any(|((g, _), e)| g == group_key && e.firing.contains(&fp))
    }

    /// Re-routes every alert after the routing changed, as Alertmanager rebuilds its groups on
    /// reload: groups start afresh under the new routes; the notification log is kept, so what
    /// receivers were told is not told again.
    pub fn reroute(&mut self, policy: &dyn Policy, now_ms: i64) {
        self.groups.clear();
        let alerts: Vec<NotifyAlert> = self.alerts.drain().map(|(_, a)| a).collect();
        for alert in alerts {
            self.insert(alert, policy, now_ms);
        }
    }

    /// Forgets log entries last written before `cutoff_ms` (the store prunes its copy with the
    /// same retention); a group that still fires refreshes its entry at every repeat.
    pub fn prune_log(&mut self, cutoff_ms: i64) -> usize {
        let before = self.log.len();
        self.log.retain(|_, e| e.sent_at >= cutoff_ms);
        before - self.log.len()
    }

    /// When the next group is due, if any.
    pub fn next_due(&self) -> Option<i64> {
        self.groups.values().map(|g| g.next_flush_ms).min()
    }

    /// Makes every group holding an alert these labels match flush at `now_ms`; used when a
    /// silence expires while its alerts fire, so the receivers hear at once that they still do.
    pub fn flush_now_where(&mut self, matches: impl Fn(&LabelSet) -> bool, now_ms: i64) -> usize {
        let mut touched = 0;
        for group in self.groups.values_mut() {
            let hit = group.alerts.iter().any(|fp| {
                self.alerts
                    .get(fp)
                    .is_some_and(|a| !a.resolved_at(now_ms) && matches(&a.labels))
            });
            if hit {
                group.next_flush_ms = group.next_flush_ms.min(now_ms);
                touched += 1;
            }
        }
        touched
    }

    /// Flushes every group due at `now_ms`; returns the notifications to persist and deliver.
    pub fn flush_due(&mut self, policy: &dyn Policy, now_ms: i64) -> Vec<Outgoing> {
        let due: Vec<String> = self
            .groups
            .values()
            .filter(|g| g.next_flush_ms <= now_ms)
            .map(|g| g.key.clone())
            .collect();
        let mut out = Vec::new();
        for key in due {
            self.flush_group(&key, policy, now_ms, &mut out);
        }
        self.collect_garbage(now_ms);
        out
    }

    fn flush_group(
        &mut self,
        key: &str,
        policy: &dyn Policy,
        now_ms: i64,
        out: &mut Vec<Outgoing>,
    ) {
        let Some(group) = self.groups.get_mut(key) else {
            return;
        };
        group.next_flush_ms = now_ms + group.route.group_interval_ms.max(1);
        let group = group.clone();
        let mut alerts: Vec<&NotifyAlert> = group
            .alerts
            .iter()
            .filter_map(|fp| self.alerts.get(fp))
            .collect();
        // Alertmanager's order within a notification follows its alert store; label order is
        // stable and readable.
        alerts.sort_by(|a, b| a.labels.cmp(&b.labels));
        let firing_all: Vec<&LabelSet> = self
            .alerts
            .values()
            .filter(|a| !a.resolved_at(now_ms))
            .map(|a| &a.labels)
            .collect();
        // Mute state per alert, once per flush (it does not depend on the integration).
        let alerts: Vec<(u64, &NotifyAlert, bool, bool)> = alerts
            .into_iter()
            .map(|a| {
                let resolved = a.resolved_at(now_ms);
                let muted = !resolved
                    && (!policy.silenced_by(&a.labels, now_ms).is_empty()
                        || policy.inhibited(
                            &a.labels,
                            &mut firing_all.iter().copied().filter(|l| *l != &a.labels),
                        ));
                (fingerprint(&a.labels), a, resolved, muted)
            })
            .collect();
        let route_muted = policy.route_muted(&group.route.route_id, now_ms);
        for integration in policy.integrations(&group.route.receiver) {
            if route_muted {
                continue;
            }
            let log_key = (group.key.clone(), integration.id.clone());
            let entry = self.log.get(&log_key);
            let told = |fp: u64| entry.is_some_and(|e| e.firing.contains(&fp));
            let mut firing = Vec::new();
            let mut resolved = Vec::new();
            // Firing alerts the receiver was told about and that are muted now: not sent again,
            // but still firing as far as the log goes, so their resolution is reported
            // (alertmanager#226) and nothing is re-sent when the mute ends.
            let mut still_told = BTreeSet::new();
            for (fp, alert, is_resolved, muted) in &alerts {
                if *is_resolved {
                    resolved.push((*fp, *alert));
                } else if !muted {
                    firing.push((*fp, *alert));
                } else if told(*fp) {
                    still_told.insert(*fp);
                }
            }
            let sendable: BTreeSet<u64> = firing.iter().map(|(fp, _)| *fp).collect();
            let firing_set: BTreeSet<u64> = sendable.union(&still_told).copied().collect();
            let resolved_set: BTreeSet<u64> = resolved.iter().map(|(fp, _)| *fp).collect();
            if !needs_update(
                entry,
                &firing_set,
                &resolved_set,
                integration.send_resolved,
                group.route.repeat_interval_ms,
                now_ms,
            ) {
                continue;
            }
            let mut sent: Vec<NotifyAlert> = firing.iter().map(|(_, a)| (*a).clone()).collect();
            if integration.send_resolved {
                sent.extend(resolved.iter().map(|(_, a)| (*a).clone()));
            }
            let log = NotificationLogEntry {
                group_key: group.key.clone(),
                integration: integration.id.clone(),
                firing: firing_set.iter().copied().collect(),
                resolved: resolved_set.iter().copied().collect(),
                sent_at: now_ms,
            };
            self.log.insert(log_key, log.clone());
            if sent.is_empty() {
                // Nothing to send (everything left is resolved and this integration does not
                // want resolved notices, or only muted alerts remain): the log still changed
                // and is persisted.
                out.push(Outgoing { entry: None, log });
                continue;
            }
            self.sequence += 1;
            out.push(Outgoing {
                entry: Some(OutboxEntry {
                    integration: integration.id.clone(),
                    idempotency_key: format!(
                        "{:016x}-{now_ms}-{}",
                        fingerprint(&LabelSet::from([
                            ("group".to_owned(), group.key.clone()),
                            ("integration".to_owned(), integration.id.clone()),
                        ])),
                        self.sequence
                    ),
                    notification: Notification {
                        receiver: group.route.receiver.clone(),
                        group_key: group.key.clone(),
                        group_labels: group.labels.clone(),
                        alerts: sent,
                        now_ms,
                        external_url: self.external_url.clone(),
                        raw_body: None,
                    },
                    created_at: now_ms,
                }),
                log,
            });
        }
        // Resolved alerts leave the group once a flush has looked at them (Alertmanager
        // deletes them after a successful notify; ours is durable once enqueued).
        if let Some(g) = self.groups.get_mut(key) {
            for (fp, _, is_resolved, _) in &alerts {
                if *is_resolved {
                    g.alerts.remove(fp);
                }
            }
            if g.alerts.is_empty() {
                self.groups.remove(key);
            }
        }
    }

    /// Drops alerts no group holds any more once they are resolved.
    fn collect_garbage(&mut self, now_ms: i64) {
        let held: BTreeSet<u64> = self
            .groups
            .values()
            .flat_map(|g| g.alerts.iter().copied())
            .collect();
        self.alerts
            .retain(|fp, a| held.contains(fp) || !a.resolved_at(now_ms));
    }

    /// Every alert with its status, for the API.
    pub fn alerts(&self, policy: &dyn Policy, now_ms: i64) -> Vec<(NotifyAlert, AlertStatus)> {
        let firing: Vec<&LabelSet> = self
            .alerts
            .values()
            .filter(|a| !a.resolved_at(now_ms))
            .map(|a| &a.labels)
            .collect();
        let mut out: Vec<(NotifyAlert, AlertStatus)> = self
            .alerts
            .values()
            .map(|a| {
                let status = AlertStatus {
                    silenced_by: policy.silenced_by(&a.labels, now_ms),
                    inhibited: policy.inhibited(
                        &a.labels,
                        &mut firing.iter().copied().filter(|l| *l != &a.labels),
                    ),
                    receivers: policy
                        .routes(&a.labels)
                        .into_iter()
                        .map(|r| r.receiver)
                        .collect(),
                };
                (a.clone(), status)
            })
            .collect();
        out.sort_by(|a, b| a.0.labels.cmp(&b.0.labels));
        out
    }

    /// The number of alerts and of aggregation groups, for `/metrics`.
    pub fn sizes(&self) -> (usize, usize) {
        (self.alerts.len(), self.groups.len())
    }

    /// Drops alerts (from outside) whose end passed long ago without a refresh and that no
    /// group holds; called periodically.
    pub fn expire(&mut self, now_ms: i64) {
        self.collect_garbage(now_ms);
    }
}

/// Alertmanager's `DedupStage.needsUpdate`.
fn needs_update(
    entry: Option<&NotificationLogEntry>,
    firing: &BTreeSet<u64>,
    resolved: &BTreeSet<u64>,
    send_resolved: bool,
    repeat_ms: i64,
    now_ms: i64,
) -> bool {
    let Some(entry) = entry else {
        // Never notified: notify unless everything is already resolved.
        return !firing.is_empty();
    };
    if firing.iter().any(|fp| !entry.firing.contains(fp)) {
        // A firing alert the receiver has not heard of.
        return true;
    }
    if firing.is_empty() {
        // All resolved: notify when the receiver was told something fired (done whatever
        // `send_resolved` says, so the log forgets the firing alerts).
        return !entry.firing.is_empty();
    }
    if send_resolved && resolved.iter().any(|fp| !entry.resolved.contains(fp)) {
        return true;
    }
    entry.sent_at <= now_ms - repeat_ms
}

#[cfg(test)]
mod tests;
