//! Rollback hooks. An `exec` hook runs a configured argv directly (no shell) with a clean
//! environment: only `PATH` and the `REDLINE_*` variables of the context, the context as JSON
//! on stdin, a timeout after which the process is killed, and its exit status and the first
//! `OUTPUT_LIMIT` bytes of its output recorded. Values from alerts and deployments reach a hook
//! only as environment variables and stdin JSON: they are never part of argv, a path or a URL.
//! (`webhook` hooks go through the notification outbox; see `task.rs`.)

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bytes of a hook's output kept.
pub const OUTPUT_LIMIT: usize = 4096;
/// The only inherited variable: where programs are found.
pub const HOOK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a hook is told.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HookContext {
    pub rollback_id: i64,
    pub service: String,
    pub environment: String,
    pub deployment_id: String,
    pub version: String,
    pub previous_version: Option<String>,
    pub incident_id: Option<i64>,
    pub reason: String,
    pub mode: String,
}

impl HookContext {
    /// The environment of an `exec` hook (besides `PATH`).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("REDLINE_ROLLBACK_ID", self.rollback_id.to_string()),
            ("REDLINE_SERVICE", self.service.clone()),
            ("REDLINE_ENVIRONMENT", self.environment.clone()),
            ("REDLINE_DEPLOYMENT_ID", self.deployment_id.clone()),
            ("REDLINE_VERSION", self.version.clone()),
            (
                "REDLINE_PREVIOUS_VERSION",
                self.previous_version.clone().unwrap_or_default(),
            ),
            (
                "REDLINE_INCIDENT_ID",
                self.incident_id.map(|i| i.to_string()).unwrap_or_default(),
            ),
            ("REDLINE_REASON", self.reason.clone()),
        ]
    }

    /// The JSON document on stdin (and the webhook body).
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "version": "1",
            "kind": "redline.rollback",
            "rollback_id": self.rollback_id,
            "service": self.service,
            "environment": self.environment,
            "deployment_id": self.deployment_id,
            "deployment_version": self.version,
            "previous_version": self.previous_version,
            "incident_id": self.incident_id,
            "reason": self.reason,
            "mode": self.mode,
        })
    }
}

/// A configured `exec` hook.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecHook {
    pub argv: Vec<String>,
    pub timeout: Duration,
}

/// What running a hook did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HookResult {
    /// `exec` or `webhook`.
    pub kind: String,
    /// The program (`argv[0]`) or the integration.
    pub target: String,
    pub ok: bool,
    #[serde(default)]
    pub exit_status: Option<i32>,
    #[serde(default)]
    pub timed_out: bool,
    pub duration_ms: i64,
    /// The first bytes of stdout then stderr (lossy UTF-8).
    #[serde(default)]
    pub output: String,
    #[serde(default)]
    pub error: String,
}

async fn read_limited(mut r: impl AsyncReadExt + Unpin) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = OUTPUT_LIMIT.saturating_sub(out.len());
                out.extend_from_slice(&buf[..n.min(room)]);
                // Keep reading (and discarding) so the child never blocks on a full pipe.
            }
        }
    }
    out
}

/// Runs an `exec` hook to completion or its timeout.
pub async fn run_exec(hook: &ExecHook, ctx: &HookContext) -> HookResult {
    let started = Instant::now();
    let target = hook.argv.first().cloned().unwrap_or_default();
    let mut result = HookResult {
        kind: "exec".to_owned(),
        target: target.clone(),
        ok: false,
        exit_status: None,
        timed_out: false,
        duration_ms: 0,
        output: String::new(),
        error: String::new(),
    };
    let Some((program, args)) = hook.argv.split_first() else {
        result.error = "the hook has an empty argv".to_owned();
        return result;
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env_clear()
        .env("PATH", HOOK_PATH)
        .envs(ctx.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            result.error = format!("cannot start {program}: {e}");
            result.duration_ms = started.elapsed().as_millis() as i64;
            return result;
        }
    };
    let stdin_json = ctx.json().to_string();
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read stdin closes it early: that is fine.
        let _ = stdin.write_all(stdin_json.as_bytes()).await;
        let _ = stdin.shutdown().await;
    }
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let outputs = async {
        let out = match stdout {
            Some(s) => read_limited(s).await,
            None => Vec::new(),
        };
        let err = match stderr {
            Some(s) => read_limited(s).await,
            None => Vec::new(),
        };
        (out, err)
    };
    let waited = tokio::time::timeout(hook.timeout, async {
        let (outputs, status) = tokio::join!(outputs, child.wait());
        (outputs, status)
    })
    .await;
    match waited {
        Ok(((out, err), status)) => {
            let mut bytes = out;
            bytes.extend_from_slice(&err);
            bytes.truncate(OUTPUT_LIMIT);
            result.output = String::from_utf8_lossy(&bytes).into_owned();
            match status {
                Ok(status) => {
                    result.exit_status = status.code();
                    result.ok = status.success();
                    if !status.success() {
                        result.error = format!("{program} exited with {status}");
                    }
                }
                Err(e) => result.error = format!("waiting for {program}: {e}"),
            }
        }
        Err(_) => {
            result.timed_out = true;
            let _ = child.kill().await;
            result.error = format!("{program} did not finish within {:?}; killed", hook.timeout);
        }
    }
    result.duration_ms = started.elapsed().as_millis() as i64;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(reason: &str) -> HookContext {
        HookContext {
            rollback_id: 3,
            service: "api; rm -rf /".into(),
            environment: "../../etc/passwd".into(),
            deployment_id: "$(touch /tmp/pwned)".into(),
            version: "`id`".into(),
            previous_version: Some("1.0".into()),
            incident_id: Some(9),
            reason: reason.into(),
            mode: "auto".into(),
        }
    }

    fn sh(script: &str) -> ExecHook {
        ExecHook {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            timeout: Duration::from_secs(10),
        }
    }

    #[tokio::test]
    async fn context_arrives_as_environment_and_stdin_only() {
        // The hook's own script (configured by the operator) prints what it got; the hostile
        // values are data, never code.
        let r = run_exec(
            &sh("env | sort; echo ---; cat"),
            &ctx("errors > 5 && $(reboot)"),
        )
        .await;
        assert!(r.ok, "{r:?}");
        assert_eq!(r.exit_status, Some(0));
        assert!(
            r.output.contains("REDLINE_SERVICE=api; rm -rf /"),
            "{}",
            r.output
        );
        assert!(
            r.output
                .contains("REDLINE_DEPLOYMENT_ID=$(touch /tmp/pwned)")
        );
        assert!(r.output.contains("REDLINE_INCIDENT_ID=9"));
        // A clean environment: nothing of ours leaks (HOME, USER, CARGO_*).
        assert!(!r.output.contains("CARGO_"), "{}", r.output);
        assert!(!r.output.contains("HOME="), "{}", r.output);
        let json_part = r.output.split("---\n").nth(1).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(json_part.trim()).expect("stdin JSON");
        assert_eq!(v["environment"], "../../etc/passwd");
        assert!(!std::path::Path::new("/tmp/pwned").exists());
    }

    #[tokio::test]
    async fn failures_timeouts_and_missing_programs_are_recorded() {
        let r = run_exec(&sh("echo nope >&2; exit 3"), &ctx("x")).await;
        assert!(!r.ok);
        assert_eq!(r.exit_status, Some(3));
        assert!(r.output.contains("nope"));
        let slow = ExecHook {
            timeout: Duration::from_millis(200),
            ..sh("sleep 30")
        };
        let r = run_exec(&slow, &ctx("x")).await;
        assert!(r.timed_out && !r.ok, "{r:?}");
        let r = run_exec(
            &ExecHook {
                argv: vec!["/nonexistent/rollback".into()],
                timeout: Duration::from_secs(1),
            },
            &ctx("x"),
        )
        .await;
        assert!(!r.ok && r.error.contains("cannot start"), "{r:?}");
        let r = run_exec(&sh("head -c 100000 /dev/zero | tr '\\0' x"), &ctx("x")).await;
        assert!(r.ok);
        assert_eq!(r.output.len(), OUTPUT_LIMIT);
    }
}
