//! Accessibility of the HTML post-mortem: the sample post-mortems (rich and bare) rendered to
//! temporary files and checked by axe-core with the WCAG 2.1 A and AA rules in a real browser
//! (`tests/a11y/check.js`: puppeteer-core driving the system's Chromium), which also fails on
//! any request the file makes beyond itself.
//!
//! Needs Node.js, `npm ci` run in `tests/a11y`, and Chromium at `/usr/bin/chromium` (Debian
//! package `chromium`) or `$CHROMIUM`. Without them the test fails and says what to install.
//! Set `REDLINE_A11Y_SCREENSHOT=/path/file.png` to save a screenshot of the rich sample, with
//! the sample itself next to it (`/path/file.html`, `.md` and `.json`) to look at.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use redline_collector::postmortem::{
    render_html, render_json, render_markdown, sample_input, sample_input_bare,
};

fn a11y_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/a11y")
}

/// Fails with the set-up steps when something the check needs is missing.
fn check_prerequisites() {
    let dir = a11y_dir();
    let install = format!(
        "to set up the accessibility check, install Node.js and Chromium \
         (`apt-get install -y nodejs npm chromium` on Debian) and run `npm ci` in {}",
        dir.display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "node is not on PATH: {install}"
    );
    for module in ["axe-core", "puppeteer-core"] {
        assert!(
            dir.join("node_modules").join(module).is_dir(),
            "{module} is missing from {}/node_modules: {install}",
            dir.display()
        );
    }
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        chromium.is_file(),
        "no Chromium at {} (set CHROMIUM to use another): {install}",
        chromium.display()
    );
}

/// Runs the check on `html`; returns its report. Panics with the report on violations.
fn check(name: &str, html: &str, screenshot: Option<&Path>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{name}.html"));
    std::fs::write(&file, html).unwrap();
    let mut cmd = Command::new("node");
    cmd.arg(a11y_dir().join("check.js")).arg(&file);
    if let Some(png) = screenshot {
        cmd.arg(png);
    }
    let out = cmd.output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the {name} post-mortem fails the accessibility check (exit {:?}):\n{report}",
        out.status.code()
    );
    report
}

#[test]
fn postmortem_html_passes_axe_wcag21_aa() {
    check_prerequisites();
    let screenshot = std::env::var_os("REDLINE_A11Y_SCREENSHOT").map(PathBuf::from);
    let rich = render_html(&sample_input());
    if let Some(png) = &screenshot {
        std::fs::write(png.with_extension("html"), &rich).unwrap();
        std::fs::write(png.with_extension("md"), render_markdown(&sample_input())).unwrap();
        let json = serde_json::to_string_pretty(&render_json(&sample_input())).unwrap();
        std::fs::write(png.with_extension("json"), json).unwrap();
    }
    let report = check("rich", &rich, screenshot.as_deref());
    assert!(report.contains(" 0 violated"), "{report}");
    println!("rich: {report}");
    let report = check("bare", &render_html(&sample_input_bare()), None);
    assert!(report.contains(" 0 violated"), "{report}");
    println!("bare: {report}");
}
