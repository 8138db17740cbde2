//! Inhibition (`inhibit/inhibit.go` of Alertmanager 0.25): an alert matching a rule's target
//! matchers is muted while some firing alert matches the rule's source matchers and has the
//! same values for the rule's `equal` labels (a label missing on both sides counts as equal,
//! since a missing label is the empty string).
//!
//! One Alertmanager subtlety is kept: when the target alert itself also matches the source
//! matchers, source alerts that also match the target matchers are not considered, so that an
//! alert matching both sides of a rule cannot inhibit itself nor be inhibited by its peers
//! (`hasEqual(lset, excludeTwoSidedMatch)`).
//!
//! `amconfig` builds the rules from `inhibit_rules` (with the legacy `source_match`,
//! `source_match_re`, `target_match` and `target_match_re` folded into matchers); the
//! dispatcher asks [`Inhibitor::is_inhibited`] with the currently firing alerts. Pure.

use std::collections::BTreeSet;

use super::matcher::{Matcher, matches_all};
use crate::notify::LabelSet;

/// One `inhibit_rules` entry.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InhibitRule {
    pub source_matchers: Vec<Matcher>,
    pub target_matchers: Vec<Matcher>,
    /// Labels whose values must be equal in the source and the target.
    pub equal: BTreeSet<String>,
}

impl InhibitRule {
    /// The first of `firing_sources` that makes this rule mute `target`, if any.
    pub fn inhibiting_source<'a>(
        &self,
        target: &LabelSet,
        firing_sources: &[&'a LabelSet],
    ) -> Option<&'a LabelSet> {
        if !matches_all(&self.target_matchers, target) {
            return None;
        }
        let exclude_two_sided = matches_all(&self.source_matchers, target);
        let value = |ls: &LabelSet, name: &str| ls.get(name).map_or(String::new(), Clone::clone);
        firing_sources.iter().copied().find(|source| {
            matches_all(&self.source_matchers, source)
                && self
                    .equal
                    .iter()
                    .all(|name| value(source, name) == value(target, name))
                && !(exclude_two_sided && matches_all(&self.target_matchers, source))
        })
    }
}

/// The inhibit rules of one configuration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inhibitor {
    pub rules: Vec<InhibitRule>,
}

impl Inhibitor {
    pub fn new(rules: Vec<InhibitRule>) -> Self {
        Inhibitor { rules }
    }

    /// Whether `target` is muted by some rule, given the alerts firing now (resolved alerts
    /// must not be passed; each rule picks the sources matching its source matchers).
    pub fn is_inhibited<'a>(
        &self,
        target: &LabelSet,
        firing_sources: impl Iterator<Item = &'a LabelSet>,
    ) -> bool {
        self.inhibited_by(target, firing_sources).is_some()
    }

    /// Like [`Inhibitor::is_inhibited`], naming the rule (its index) and the source alert,
    /// for the alerts API's `inhibitedBy`.
    pub fn inhibited_by<'a>(
        &self,
        target: &LabelSet,
        firing_sources: impl Iterator<Item = &'a LabelSet>,
    ) -> Option<(usize, &'a LabelSet)> {
        if self.rules.is_empty() {
            return None;
        }
        let sources: Vec<&'a LabelSet> = firing_sources.collect();
        self.rules.iter().enumerate().find_map(|(i, rule)| {
            rule.inhibiting_source(target, &sources)
                .map(|source| (i, source))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::alert::matcher::parse_matchers;
    use crate::notify::test_labels as labels;

    fn rule(source: &str, target: &str, equal: &[&str]) -> InhibitRule {
        InhibitRule {
            source_matchers: parse_matchers(source).unwrap(),
            target_matchers: parse_matchers(target).unwrap(),
            equal: equal.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn critical_inhibits_warning_on_the_same_cluster() {
        let inh = Inhibitor::new(vec![rule(
            "severity=critical",
            "severity=warning",
            &["alertname", "cluster"],
        )]);
        let critical = labels(&[
            ("alertname", "Down"),
            ("cluster", "eu"),
            ("severity", "critical"),
        ]);
        let warning = labels(&[
            ("alertname", "Down"),
            ("cluster", "eu"),
            ("severity", "warning"),
        ]);
        let other_cluster = labels(&[
            ("alertname", "Down"),
            ("cluster", "us"),
            ("severity", "warning"),
        ]);
        assert!(inh.is_inhibited(&warning, [&critical].into_iter()));
        assert!(!inh.is_inhibited(&other_cluster, [&critical].into_iter()));
        assert!(!inh.is_inhibited(&critical, [&critical, &warning].into_iter()));
        assert!(!inh.is_inhibited(&warning, std::iter::empty()));
        // A non-matching source does nothing.
        assert!(!inh.is_inhibited(&warning, [&warning].into_iter()));
        assert_eq!(
            inh.inhibited_by(&warning, [&other_cluster, &critical].into_iter()),
            Some((0, &critical))
        );
    }

    #[test]
    fn equal_labels_missing_on_both_sides_are_equal() {
        let inh = Inhibitor::new(vec![rule("a=source", "a=target", &["zone"])]);
        let source = labels(&[("a", "source")]);
        let target = labels(&[("a", "target")]);
        assert!(inh.is_inhibited(&target, [&source].into_iter()));
        // Missing on one side and empty on the other are equal too.
        let target_empty = labels(&[("a", "target"), ("zone", "")]);
        assert!(inh.is_inhibited(&target_empty, [&source].into_iter()));
        let target_zoned = labels(&[("a", "target"), ("zone", "z1")]);
        assert!(!inh.is_inhibited(&target_zoned, [&source].into_iter()));
        // No `equal` at all: any source inhibits any target.
        let any = Inhibitor::new(vec![rule("a=source", "a=target", &[])]);
        assert!(any.is_inhibited(&target_zoned, [&source].into_iter()));
    }

    #[test]
    fn an_alert_matching_both_sides_does_not_inhibit_itself() {
        // Source and target overlap: every `severity=~"warning|critical"` alert is a target,
        // and every `alertname=X` alert a source.
        let inh = Inhibitor::new(vec![rule(
            "alertname=X",
            r#"severity=~"warning|critical""#,
            &["cluster"],
        )]);
        let both = labels(&[
            ("alertname", "X"),
            ("cluster", "c"),
            ("severity", "warning"),
        ]);
        assert!(!inh.is_inhibited(&both, [&both].into_iter()));
        // Another alert matching both sides does not inhibit it either.
        let peer = labels(&[
            ("alertname", "X"),
            ("cluster", "c"),
            ("severity", "critical"),
        ]);
        assert!(!inh.is_inhibited(&both, [&peer].into_iter()));
        // A source that is not a target does.
        let pure_source = labels(&[("alertname", "X"), ("cluster", "c"), ("severity", "info")]);
        assert!(inh.is_inhibited(&both, [&pure_source].into_iter()));
        // And a target that is not a source is inhibited by a two-sided alert.
        let pure_target = labels(&[
            ("alertname", "Y"),
            ("cluster", "c"),
            ("severity", "warning"),
        ]);
        assert!(inh.is_inhibited(&pure_target, [&both].into_iter()));
    }

    #[test]
    fn any_rule_suffices() {
        let inh = Inhibitor::new(vec![
            rule("alertname=NodeDown", "job=node", &["instance"]),
            rule(
                "alertname=ClusterDown",
                r#"alertname!="ClusterDown""#,
                &["cluster"],
            ),
        ]);
        let cluster_down = labels(&[("alertname", "ClusterDown"), ("cluster", "eu")]);
        let disk = labels(&[("alertname", "Disk"), ("cluster", "eu"), ("instance", "h1")]);
        assert_eq!(
            inh.inhibited_by(&disk, [&cluster_down].into_iter()),
            Some((1, &cluster_down))
        );
        assert!(!Inhibitor::default().is_inhibited(&disk, [&cluster_down].into_iter()));
    }
}
