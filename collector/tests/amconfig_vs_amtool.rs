//! Redline's reading of `alertmanager.yml` checked against Alertmanager's own tool, `amtool`
//! (Debian's `prometheus-alertmanager`, 0.25, which `.ci/run` installs):
//!
//! - every configuration under `tests/fixtures/alertmanager/` is valid for both or invalid for
//!   both, except the two documented differences: `redline-refuses/` (integrations Redline
//!   does not implement, which Alertmanager accepts) and `redline-extensions/` (Redline's
//!   extra webhook keys, which Alertmanager refuses);
//! - for each valid configuration, the routing tree `amtool config routes` prints (matchers as
//!   Alertmanager prints them, `continue`, receivers) is the tree Redline builds;
//! - for a list of label sets per configuration, the receivers an alert goes to, in order, are
//!   those `amtool config routes test` prints;
//! - `redline-collector config check` answers like `amtool check-config`.
//!
//! Without `amtool` the tests fail, saying how to get it: skipping would hide a regression.

use std::path::{Path, PathBuf};
use std::process::Command;

use redline_collector::alert::amconfig::{self, AmConfig};
use redline_collector::alert::matcher::DisplayMatchers;
use redline_collector::notify::LabelSet;

const BIN: &str = env!("CARGO_BIN_EXE_redline-collector");

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alertmanager")
}

/// The `*.yml` files of a fixture directory, sorted.
fn configs(sub: &str) -> Vec<PathBuf> {
    let dir = fixtures().join(sub);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

/// Runs `amtool` with these arguments; a missing `amtool` fails the test with the fix.
fn amtool(args: &[&str]) -> std::process::Output {
    Command::new("amtool")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run amtool ({e}): run .ci/run, which installs the Debian package \
             prometheus-alertmanager (amtool 0.25)"
            )
        })
}

fn amtool_accepts(file: &Path) -> (bool, String) {
    let out = amtool(&["check-config", &file.to_string_lossy()]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn load(file: &Path) -> AmConfig {
    amconfig::load(file).unwrap_or_else(|e| panic!("Redline refuses {}:\n{e}", file.display()))
}

#[test]
fn valid_configs_are_valid_for_both() {
    for file in configs("") {
        let (ok, text) = amtool_accepts(&file);
        assert!(ok, "amtool refuses {}:\n{text}", file.display());
        load(&file);
    }
}

#[test]
fn invalid_configs_are_invalid_for_both() {
    for file in configs("invalid") {
        let (ok, text) = amtool_accepts(&file);
        assert!(!ok, "amtool accepts {}:\n{text}", file.display());
        let errors = match amconfig::load(&file) {
            Ok(_) => panic!("Redline accepts {}, amtool says:\n{text}", file.display()),
            Err(e) => e.errors,
        };
        // Every problem has a place in the file.
        for e in &errors {
            assert!(e.line > 0 && e.column > 0, "{e}");
            assert_eq!(e.file, file);
        }
    }
}

#[test]
fn redline_refuses_integrations_it_does_not_implement() {
    for file in configs("redline-refuses") {
        let (ok, text) = amtool_accepts(&file);
        assert!(ok, "amtool refuses {}:\n{text}", file.display());
        let err = match amconfig::load(&file) {
            Ok(_) => panic!("Redline accepts {}", file.display()),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("is not supported by Redline"), "{err}");
    }
    let err = amconfig::load(&fixtures().join("redline-refuses/slack.yml"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.ends_with(
            "slack.yml:7:5: receivers[0].slack_configs: receiver \"chat\": slack_configs is not \
             supported by Redline; use a webhook"
        ),
        "{err}"
    );
}

#[test]
fn redline_extensions_are_refused_by_alertmanager() {
    for file in configs("redline-extensions") {
        let (ok, _) = amtool_accepts(&file);
        assert!(!ok, "amtool accepts {}", file.display());
        let c = load(&file);
        let hook = &c.receivers[0].webhook[0];
        assert_eq!(hook.hmac_secret.as_deref(), Some("hmac-key"));
        assert_eq!(
            hook.headers.get("X-Team").map(String::as_str),
            Some("platform")
        );
        assert_eq!(hook.timeout, std::time::Duration::from_secs(5));
    }
}

/// The tree as `amtool config routes` prints it, one route per line: matchers (or
/// `default-route`), `continue: true`, `receiver: R`.
fn amtool_tree(file: &Path) -> Vec<String> {
    let out = amtool(&[
        "config",
        "routes",
        &format!("--config.file={}", file.display()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip_while(|l| *l != ".")
        .skip(1)
        .map(|l| {
            l.trim_start_matches(['│', '├', '└', '─', ' ', '\u{a0}'])
                .to_owned()
        })
        .filter(|l| !l.is_empty())
        .collect()
}

fn our_tree(config: &AmConfig) -> Vec<String> {
    config
        .route
        .nodes()
        .iter()
        .map(|n| {
            let mut slug = if n.matchers.is_empty() {
                "default-route".to_owned()
            } else {
                DisplayMatchers(&n.matchers).to_string()
            };
            if n.continue_matching {
                slug.push_str("  continue: true");
            }
            slug.push_str("  receiver: ");
            slug.push_str(&n.opts.receiver);
            slug
        })
        .collect()
}

#[test]
fn routing_trees_print_like_amtool() {
    for file in configs("") {
        assert_eq!(
            our_tree(&load(&file)),
            amtool_tree(&file),
            "{}",
            file.display()
        );
    }
}

/// A label set and the receivers it goes to, joined by commas.
type Case = (Vec<(&'static str, &'static str)>, &'static str);

/// Label sets to route, per configuration, with the receivers Redline's own reading of the
/// file expects (amtool is asked too, and must agree).
fn cases() -> Vec<(&'static str, Vec<Case>)> {
    vec![
        (
            "simple.yml",
            vec![
                (vec![("service", "foo1")], "team-X-mails"),
                (
                    vec![("service", "foo2"), ("severity", "critical")],
                    "team-X-pager",
                ),
                (
                    vec![("service", "files"), ("severity", "critical")],
                    "team-Y-pager",
                ),
                (
                    vec![("service", "files"), ("severity", "warning")],
                    "team-Y-mails",
                ),
                (
                    vec![("service", "database"), ("owner", "team-X")],
                    "team-X-pager",
                ),
                (
                    vec![("service", "database"), ("owner", "team-Y")],
                    "team-Y-pager",
                ),
                (vec![("service", "database")], "team-DB-pager"),
                (vec![("service", "foo1x")], "team-X-mails"),
                (vec![], "team-X-mails"),
            ],
        ),
        (
            "teams.yml",
            vec![
                (
                    vec![("severity", "critical"), ("namespace", "payments")],
                    "oncall-bridge,payments",
                ),
                (
                    vec![("severity", "critical"), ("team", "sre")],
                    "oncall-bridge,sre-pages",
                ),
                (
                    vec![
                        ("severity", "page"),
                        ("team", "platform"),
                        ("ticket", "T-1"),
                    ],
                    "sre-pages,sre-tickets",
                ),
                (vec![("team", "sre"), ("ticket", "NONE")], "sre"),
                (vec![("team", "sre"), ("ticket", "T-2")], "sre-tickets"),
                (
                    vec![("namespace", "billing"), ("component", "database")],
                    "payments-db",
                ),
                (
                    vec![("namespace", "billing"), ("severity", "warning")],
                    "payments-business-hours",
                ),
                (vec![("namespace", "payments"), ("team", "sre")], "sre"),
                (vec![("alertname", "Watchdog")], "blackhole"),
                (
                    vec![("alertname", "Watchdog"), ("severity", "critical")],
                    "oncall-bridge,blackhole",
                ),
                (vec![("team", "sre-x")], "fallback"),
                (vec![], "fallback"),
            ],
        ),
        (
            "legacy.yml",
            vec![
                (vec![("severity", "page")], "ops-pager"),
                (vec![("service", "api-gw"), ("env", "prod")], "web-team"),
                (
                    vec![
                        ("service", "web-1"),
                        ("env", "prod"),
                        ("severity", "warning"),
                    ],
                    "web-team-quiet",
                ),
                (
                    vec![("service", "api-gw"), ("env", "staging")],
                    "ops-mail,dev-null",
                ),
                (vec![("env", "dev")], "dev-null"),
                (vec![("service", "xapi-gw"), ("env", "prod")], "ops-mail"),
                (vec![("severity", "page"), ("env", "staging")], "ops-pager"),
                (vec![("env", "production")], "ops-mail"),
            ],
        ),
    ]
}

/// `name="value"` as amtool's label arguments take them.
fn label_arg(name: &str, value: &str) -> String {
    format!(
        "{name}=\"{}\"",
        value.replace('\\', "\\\\").replace('"', "\\\"")
    )
}

#[test]
fn routing_agrees_with_amtool() {
    for (name, label_sets) in cases() {
        let file = fixtures().join(name);
        let config = load(&file);
        for (pairs, expected) in label_sets {
            let labels: LabelSet = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            let ours = config.route.receivers(&labels).join(",");
            let mut args = vec![
                "config".to_owned(),
                "routes".to_owned(),
                "test".to_owned(),
                format!("--config.file={}", file.display()),
                format!("--verify.receivers={ours}"),
            ];
            args.extend(pairs.iter().map(|(k, v)| label_arg(k, v)));
            let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = amtool(&arg_refs);
            let theirs = String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            assert_eq!(ours, theirs, "{name} {pairs:?}");
            assert!(out.status.success(), "{name} {pairs:?}: amtool disagrees");
            assert_eq!(ours, expected, "{name} {pairs:?}");
        }
    }
}

#[test]
fn config_check_answers_like_amtool_check_config() {
    let good = fixtures().join("simple.yml");
    let bad = fixtures().join("invalid/undefined_receiver.yml");
    let out = Command::new(BIN)
        .args(["config", "check"])
        .arg(&good)
        .output()
        .unwrap_or_else(|e| panic!("{BIN}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.starts_with(&format!(
            "Checking '{}'  SUCCESS\nFound:\n - global config\n - route\n - 1 inhibit rules\n \
             - 5 receivers\n - 1 templates\n",
            good.display()
        )),
        "{text}"
    );
    let (_, theirs) = amtool_accepts(&good);
    assert!(
        theirs.contains(" - 1 inhibit rules\n - 5 receivers\n - 1 templates\n"),
        "{theirs}"
    );

    let out = Command::new(BIN)
        .args(["config", "check"])
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap_or_else(|e| panic!("{BIN}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "Checking '{0}'  FAILED: 1 error\n  {0}:5:17: route.routes[0].receiver: undefined \
             receiver \"db-team\" used in route\n",
            bad.display()
        )),
        "{text}"
    );
    assert!(text.ends_with("failed to validate 1 file(s)\n"), "{text}");
}
