//! The shipped rules (`rules/host.yml`, `rules/anomaly.yml`) and their unit tests
//! (`rules/*_test.yml`): Redline's
//! `rules check` and `rules test` pass them, and so do `promtool check rules` and
//! `promtool test rules`, so the file is plain Prometheus. Without promtool the promtool half
//! is skipped with a note, unless `CI` is set, where it fails.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use redline_collector::rules::unittest::parse_test_file;
use redline_collector::rules::{RuleKind, load_file};

const BIN: &str = env!("CARGO_BIN_EXE_redline-collector");

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules")
}

fn run(program: &str, args: &[&str], file: &Path) -> (bool, String) {
    let out = Command::new(program).args(args).arg(file).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// `promtool` on PATH; `None` (with a note) when absent outside CI; a failure in CI.
fn promtool() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("promtool"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is required in CI (Debian package `prometheus`)"
        );
        eprintln!("note: promtool not found; skipping the promtool half of this test");
    }
    found
}

/// Each shipped rule file, its unit-test file and its number of rules.
const SHIPPED: [(&str, &str, usize); 2] = [
    ("host.yml", "host_test.yml", 9),
    ("anomaly.yml", "anomaly_test.yml", 5),
];

#[test]
fn redline_checks_and_tests_the_shipped_rules() {
    for (rules, tests, count) in SHIPPED {
        let (ok, text) = run(BIN, &["rules", "check"], &rules_dir().join(rules));
        assert!(ok, "{text}");
        assert!(
            text.contains(&format!("SUCCESS: {count} rules found")),
            "{text}"
        );
        let (ok, text) = run(BIN, &["rules", "test"], &rules_dir().join(tests));
        assert!(ok, "{text}");
        assert!(text.contains("SUCCESS"), "{text}");
    }
    // The folder as the collector loads it: the unit-test files are skipped.
    let (ok, text) = run(BIN, &["rules", "check"], &rules_dir());
    assert!(ok, "{text}");
    assert!(!text.contains("_test.yml"), "{text}");
}

#[test]
fn promtool_accepts_the_shipped_rules_and_tests() {
    let Some(promtool) = promtool() else {
        return;
    };
    let promtool = promtool.to_str().unwrap();
    for (rules, tests, _) in SHIPPED {
        let (ok, text) = run(promtool, &["check", "rules"], &rules_dir().join(rules));
        assert!(ok, "{text}");
        let (ok, text) = run(promtool, &["test", "rules"], &rules_dir().join(tests));
        assert!(ok, "{text}");
    }
}

/// Every shipped alert has a test where it fires and one where it does not.
#[test]
fn every_shipped_alert_is_tested_firing_and_quiet() {
    for (rules, tests, count) in SHIPPED {
        every_alert_tested(rules, tests, count);
    }
}

fn every_alert_tested(rules: &str, tests: &str, count: usize) {
    let loaded = load_file(&rules_dir().join(rules));
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let alerts: BTreeSet<String> = loaded
        .groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter(|r| matches!(r.kind, RuleKind::Alerting { .. }))
        .map(|r| r.name().to_owned())
        .collect();
    assert_eq!(alerts.len(), count, "{rules}");
    let path = rules_dir().join(tests);
    let text = std::fs::read_to_string(&path).unwrap();
    let tests = parse_test_file(&path, &text).unwrap();
    let mut seen: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for group in &tests.tests {
        for case in &group.alert_rule_tests {
            let entry = seen.entry(case.alertname.clone()).or_default();
            if case.exp_alerts.is_empty() {
                entry.1 = true;
            } else {
                entry.0 = true;
            }
        }
    }
    for alert in &alerts {
        assert_eq!(
            seen.get(alert),
            Some(&(true, true)),
            "{alert} needs a firing and a quiet test case"
        );
    }
    // Every severity is one the routing understands.
    for rule in loaded.groups.iter().flat_map(|g| &g.rules) {
        if let RuleKind::Alerting { labels_text, .. } = &rule.kind {
            let severity = labels_text.get("severity").map(String::as_str);
            assert!(
                matches!(severity, Some("warning" | "critical")),
                "{}: severity {severity:?}",
                rule.name()
            );
        }
    }
}
