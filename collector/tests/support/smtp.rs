//! tests/python/smtp_sink.py (aiosmtpd) as a real SMTP server for the notification tests.
//! Shared by the test crates that `mod support;` it; not every crate uses every item.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The venv's Python with aiosmtpd: `$REDLINE_PYTHON`, else `.venv/bin/python`. Fails (no
/// skip) without it; installs aiosmtpd into it when missing (a venv from before it was in
/// tests/python/requirements.txt).
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = PYTHON.get_or_init(|| {
        let python = match std::env::var_os("REDLINE_PYTHON") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => workspace_root().join(".venv/bin/python"),
        };
        if !python.is_file() {
            return Err(format!(
                "no Python venv at {}: run .ci/run once (it creates .venv from \
                 tests/python/requirements.txt), or set REDLINE_PYTHON",
                python.display()
            ));
        }
        let has = |python: &Path| {
            std::process::Command::new(python)
                .args(["-c", "import aiosmtpd"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !has(&python) {
            let out = std::process::Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-input",
                    "aiosmtpd==1.4.6",
                ])
                .output()
                .map_err(|e| format!("{}: {e}", python.display()))?;
            if !out.status.success() || !has(&python) {
                return Err(format!(
                    "aiosmtpd is missing from {} and installing it failed (run .ci/run): {}",
                    python.display(),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        Ok(python)
    });
    match found {
        Ok(p) => p.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// A running tests/python/smtp_sink.py; killed when dropped.
pub struct Sink {
    pub port: u16,
    pub dir: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl Sink {
    pub async fn start(args: &[&str]) -> Sink {
        let dir = tempfile::tempdir().unwrap();
        let script = workspace_root().join("tests/python/smtp_sink.py");
        let mut child = tokio::process::Command::new(python())
            .arg(&script)
            .arg("--dir")
            .arg(dir.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
        let port = match first {
            Ok(Ok(Some(line))) => line
                .strip_prefix("PORT ")
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or_else(|| panic!("smtp_sink.py said {line:?}")),
            other => {
                let _ = child.start_kill();
                let output = child.wait_with_output().await.unwrap();
                panic!(
                    "smtp_sink.py did not start ({other:?}): {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        };
        Sink {
            port,
            dir,
            _child: child,
        }
    }

    /// The summaries of the first `n` stored messages, waiting up to 10 s for them.
    pub async fn messages(&self, n: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let paths: Vec<PathBuf> = (1..=n)
                .map(|i| self.dir.path().join(format!("{i}.json")))
                .collect();
            if paths.iter().all(|p| p.is_file()) {
                return paths
                    .iter()
                    .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
                    .collect();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "fewer than {n} messages in {}",
                self.dir.path().display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn stored(&self) -> usize {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .count()
    }
}
