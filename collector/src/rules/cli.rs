//! The output of `redline-collector rules check` and `rules test`, shaped like promtool's
//! (`Checking FILE` / `  SUCCESS: N rules found`; `Unit Testing:  FILE` / `  SUCCESS`), with
//! every problem as `file:line:column: message` on the error stream. `main` only parses the
//! arguments and turns the returned success into an exit code.

use std::io::Write;
use std::path::PathBuf;

use super::file::{load_file, rule_files};
use super::unittest::run_file;

/// Checks rule files and directories; true when everything is valid.
pub fn check(paths: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> bool {
    let (files, errors) = rule_files(paths);
    let mut ok = errors.is_empty();
    for e in &errors {
        let _ = writeln!(err, "{e}");
    }
    for file in files {
        let _ = writeln!(out, "Checking {}", file.display());
        let loaded = load_file(&file);
        if loaded.errors.is_empty() {
            let _ = writeln!(out, "  SUCCESS: {} rules found", loaded.rule_count());
        } else {
            ok = false;
            let _ = writeln!(err, "  FAILED:");
            for e in &loaded.errors {
                let _ = writeln!(err, "{e}");
            }
        }
        let _ = writeln!(out);
    }
    ok
}

/// Runs unit-test files; true when every test passed.
pub fn test(files: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> bool {
    let mut ok = true;
    for file in files {
        let _ = writeln!(out, "Unit Testing:  {}", file.display());
        let report = run_file(file);
        if report.passed() {
            let _ = writeln!(out, "  SUCCESS");
        } else {
            ok = false;
            let _ = writeln!(err, "  FAILED:");
            for f in &report.failures {
                let _ = writeln!(err, "{f}\n");
            }
        }
        let _ = writeln!(out);
    }
    ok
}
