//! `redline-collector incident …`, `deploy` and `dora`: the incident, deployment and DORA API
//! from the command line (and from CI pipelines), over a running collector's HTTP API.
//!
//! Each command returns the text to print, or an error naming the URL and the server's answer.

use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::time;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{url}: {message}")]
    Request { url: String, message: String },
    #[error("{0}")]
    Usage(String),
}

#[derive(Subcommand, Debug)]
pub enum IncidentCommand {
    /// List incidents, newest first.
    List {
        /// triggered, acknowledged or resolved.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        service: Option<String>,
        #[arg(long)]
        environment: Option<String>,
        /// Opened at or after (RFC 3339 or Unix seconds).
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one incident (JSON).
    Show { id: i64 },
    /// Show an incident's timeline.
    Timeline {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Report an incident by hand; prints its id.
    Open {
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        service: String,
        #[arg(long, default_value = "")]
        environment: String,
        /// SEV1 … SEV4 (default SEV3).
        #[arg(long)]
        severity: Option<String>,
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        actor: Actor,
    },
    /// Acknowledge an incident.
    Ack {
        id: i64,
        #[command(flatten)]
        actor: Actor,
    },
    /// Record that an incident is mitigated.
    Mitigate {
        id: i64,
        /// When it was mitigated (default now).
        #[arg(long)]
        at: Option<String>,
        #[command(flatten)]
        actor: Actor,
    },
    /// Resolve an incident.
    Resolve {
        id: i64,
        #[command(flatten)]
        actor: Actor,
    },
    /// Add a note to an incident's timeline.
    Note {
        id: i64,
        text: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// Link a deployment to the incident as a cause (or confirm a suspected link).
    Link {
        id: i64,
        deployment: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// Remove a deployment link.
    Unlink {
        id: i64,
        deployment: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// Change severity, owner or title.
    Set {
        id: i64,
        #[arg(long)]
        severity: Option<String>,
        /// An empty owner clears it.
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        title: Option<String>,
        #[command(flatten)]
        actor: Actor,
    },
}

#[derive(Args, Debug)]
pub struct Actor {
    /// Who does this (recorded on the timeline as `user:<name>`).
    #[arg(long, default_value_t = default_actor())]
    pub actor: String,
}

fn default_actor() -> String {
    std::env::var("USER").unwrap_or_else(|_| "cli".to_owned())
}

/// `redline-collector deploy`: record a deployment, e.g. at the end of a CI pipeline.
#[derive(Args, Debug)]
pub struct DeployArgs {
    #[arg(long)]
    pub id: String,
    #[arg(long)]
    pub service: String,
    #[arg(long)]
    pub environment: String,
    #[arg(long, default_value = "")]
    pub version: String,
    /// success or failure.
    #[arg(long, default_value = "success")]
    pub status: String,
    /// RFC 3339 or Unix seconds (default: the finish).
    #[arg(long)]
    pub started_at: Option<String>,
    /// RFC 3339 or Unix seconds (default: now).
    #[arg(long)]
    pub finished_at: Option<String>,
    /// A commit as `SHA@TIME` (TIME in RFC 3339 or Unix seconds); repeat for each commit.
    #[arg(long = "commit")]
    pub commits: Vec<String>,
    #[arg(long)]
    pub rollback_of: Option<String>,
    #[arg(long)]
    pub fixes_incident: Option<i64>,
}

/// `redline-collector dora`.
#[derive(Args, Debug)]
pub struct DoraArgs {
    #[arg(long)]
    pub service: String,
    #[arg(long, default_value = "")]
    pub environment: String,
    /// Window start (default: 30 days before `--to`).
    #[arg(long)]
    pub from: Option<String>,
    /// Window end (default: now).
    #[arg(long)]
    pub to: Option<String>,
    #[arg(long)]
    pub json: bool,
}

fn client() -> Result<reqwest::Client, CliError> {
    crate::listen::client::api_client(Duration::from_secs(30)).map_err(|message| {
        CliError::Request {
            url: String::new(),
            message,
        }
    })
}

/// One request to the API: the JSON answer, or an error naming the URL and the answer.
pub async fn call(
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> Result<Value, CliError> {
    let fail = |message: String| CliError::Request {
        url: url.clone(),
        message,
    };
    let mut request = client()?.request(method, &url);
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request.send().await.map_err(|e| fail(e.to_string()))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| fail(e.to_string()))?;
    if !status.is_success() {
        return Err(fail(format!("{status}: {}", text.trim())));
    }
    serde_json::from_str(&text).map_err(|e| fail(format!("unreadable answer: {e}")))
}

fn base(url: &str) -> String {
    url.trim_end_matches('/').to_owned()
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Runs an incident command against the collector at `url`.
pub async fn incident(url: &str, command: IncidentCommand) -> Result<String, CliError> {
    use reqwest::Method;
    let root = format!("{}/api/v1/incidents", base(url));
    let post = |path: String, body: Value| call(Method::POST, path, Some(body));
    let id_line = |v: Value| format!("{} {}\n", v["id"], s(&v, "status"));
    match command {
        IncidentCommand::List {
            status,
            service,
            environment,
            since,
            json,
        } => {
            let mut query = Vec::new();
            for (k, v) in [
                ("status", status),
                ("service", service),
                ("environment", environment),
                ("since", since),
            ] {
                if let Some(v) = v {
                    query.push(format!("{k}={}", encode(&v)));
                }
            }
            let v = call(Method::GET, format!("{root}?{}", query.join("&")), None).await?;
            if json {
                return Ok(pretty(&v));
            }
            let mut out = format!(
                "{:<6} {:<13} {:<5} {:<16} {:<12} {:<21} TITLE\n",
                "ID", "STATUS", "SEV", "SERVICE", "ENVIRONMENT", "OPENED"
            );
            for i in v.as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "{:<6} {:<13} {:<5} {:<16} {:<12} {:<21} {}\n",
                    i["id"],
                    s(i, "status"),
                    s(i, "severity"),
                    s(i, "service"),
                    s(i, "environment"),
                    s(i, "opened_at"),
                    s(i, "title")
                ));
            }
            Ok(out)
        }
        IncidentCommand::Show { id } => Ok(pretty(
            &call(Method::GET, format!("{root}/{id}"), None).await?,
        )),
        IncidentCommand::Timeline { id, json } => {
            let v = call(Method::GET, format!("{root}/{id}/timeline"), None).await?;
            if json {
                return Ok(pretty(&v));
            }
            let mut out = String::new();
            for e in v.as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "{:<25} {:<22} {:<30} {}\n",
                    s(e, "at"),
                    s(e, "kind"),
                    s(e, "actor"),
                    s(e, "message")
                ));
            }
            Ok(out)
        }
        IncidentCommand::Open {
            title,
            service,
            environment,
            severity,
            note,
            actor,
        } => {
            let body = json!({"title": title, "service": service, "environment": environment,
                "severity": severity, "note": note, "actor": actor.actor});
            post(root, body).await.map(id_line)
        }
        IncidentCommand::Ack { id, actor } => {
            post(format!("{root}/{id}/ack"), json!({"actor": actor.actor}))
                .await
                .map(id_line)
        }
        IncidentCommand::Mitigate { id, at, actor } => {
            let at = at
                .map(|t| time::parse(&t).map(|ms| ms as f64 / 1000.0))
                .transpose()
                .map_err(CliError::Usage)?;
            post(
                format!("{root}/{id}/mitigate"),
                json!({"actor": actor.actor, "at": at}),
            )
            .await
            .map(id_line)
        }
        IncidentCommand::Resolve { id, actor } => post(
            format!("{root}/{id}/resolve"),
            json!({"actor": actor.actor}),
        )
        .await
        .map(id_line),
        IncidentCommand::Note { id, text, actor } => post(
            format!("{root}/{id}/notes"),
            json!({"text": text, "actor": actor.actor}),
        )
        .await
        .map(id_line),
        IncidentCommand::Link {
            id,
            deployment,
            actor,
        } => post(
            format!("{root}/{id}/deployments"),
            json!({"deployment_id": deployment, "action": "link", "actor": actor.actor}),
        )
        .await
        .map(id_line),
        IncidentCommand::Unlink {
            id,
            deployment,
            actor,
        } => post(
            format!("{root}/{id}/deployments"),
            json!({"deployment_id": deployment, "action": "unlink", "actor": actor.actor}),
        )
        .await
        .map(id_line),
        IncidentCommand::Set {
            id,
            severity,
            owner,
            title,
            actor,
        } => call(
            Method::PATCH,
            format!("{root}/{id}"),
            Some(
                json!({"severity": severity, "owner": owner, "title": title, "actor": actor.actor}),
            ),
        )
        .await
        .map(id_line),
    }
}

/// Fetches a post-mortem and writes it to `output` (or returns it for standard output).
pub async fn export_postmortem(
    url: &str,
    id: i64,
    format: &str,
    output: Option<&std::path::Path>,
) -> Result<String, CliError> {
    if !matches!(format, "markdown" | "json" | "html") {
        return Err(CliError::Usage(format!(
            "--format {format:?}: expected markdown, json or html"
        )));
    }
    let target = format!(
        "{}/api/v1/incidents/{id}/postmortem?format={format}",
        base(url)
    );
    let fail = |message: String| CliError::Request {
        url: target.clone(),
        message,
    };
    let response = client()?
        .get(&target)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| fail(e.to_string()))?;
    if !status.is_success() {
        return Err(fail(format!("{status}: {}", text.trim())));
    }
    match output {
        Some(path) => {
            std::fs::write(path, &text)
                .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
            Ok(format!(
                "post-mortem of incident {id} written to {}
",
                path.display()
            ))
        }
        None => Ok(text),
    }
}

fn encode(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

fn seconds(text: &str, what: &str) -> Result<f64, CliError> {
    time::parse(text)
        .map(|ms| ms as f64 / 1000.0)
        .map_err(|e| CliError::Usage(format!("--{what}: {e}")))
}

/// The request body of `deploy`, at `now_ms`.
pub fn deploy_body(args: &DeployArgs, now_ms: i64) -> Result<Value, CliError> {
    let finished = match &args.finished_at {
        Some(t) => seconds(t, "finished-at")?,
        None => now_ms as f64 / 1000.0,
    };
    let started = match &args.started_at {
        Some(t) => seconds(t, "started-at")?,
        None => finished,
    };
    let mut commits = Vec::new();
    for c in &args.commits {
        let Some((sha, at)) = c.split_once('@') else {
            return Err(CliError::Usage(format!(
                "--commit {c:?}: expected SHA@TIME"
            )));
        };
        commits.push(json!({"sha": sha, "committed_at": seconds(at, "commit")?}));
    }
    Ok(json!({
        "id": args.id, "service": args.service, "environment": args.environment,
        "version": args.version, "status": args.status, "started_at": started,
        "finished_at": finished, "commits": commits, "rollback_of": args.rollback_of,
        "fixes_incident": args.fixes_incident,
    }))
}

/// Records a deployment; prints whether it was new.
pub async fn deploy(url: &str, args: &DeployArgs, now_ms: i64) -> Result<String, CliError> {
    let body = deploy_body(args, now_ms)?;
    let v = call(
        reqwest::Method::POST,
        format!("{}/api/v1/deployments", base(url)),
        Some(body),
    )
    .await?;
    let created = v["created"].as_bool().unwrap_or(false);
    let differs = v["differs"].as_bool().unwrap_or(false);
    Ok(match (created, differs) {
        (true, _) => format!("deployment {} recorded\n", args.id),
        (false, false) => format!("deployment {} was already recorded\n", args.id),
        (false, true) => format!(
            "deployment {} was already recorded with different content; the first record stands\n",
            args.id
        ),
    })
}

/// Prints the DORA figures as a table (raw values beside their tiers) or JSON.
pub async fn dora(url: &str, args: &DoraArgs) -> Result<String, CliError> {
    let mut query = vec![
        format!("service={}", encode(&args.service)),
        format!("environment={}", encode(&args.environment)),
    ];
    if let Some(f) = &args.from {
        query.push(format!("from={}", encode(f)));
    }
    if let Some(t) = &args.to {
        query.push(format!("to={}", encode(t)));
    }
    let v = call(
        reqwest::Method::GET,
        format!("{}/api/v1/dora?{}", base(url), query.join("&")),
        None,
    )
    .await?;
    if args.json {
        return Ok(pretty(&v));
    }
    Ok(dora_table(&v))
}

/// The DORA report as a table.
pub fn dora_table(v: &Value) -> String {
    let num = |x: &Value| match x.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        Some(f) => format!("{f:.3}"),
        None => "-".to_owned(),
    };
    let tier = |x: &Value| x.as_str().unwrap_or("-").to_owned();
    let window = &v["window"];
    let mut out = format!(
        "DORA for {} {} from {} to {} (tiers: {})\n",
        s(v, "service"),
        s(v, "environment"),
        time::format(window["from"].as_i64().unwrap_or(0)),
        time::format(window["to"].as_i64().unwrap_or(0)),
        s(v, "tier_table")
    );
    out.push_str(&format!(
        "{:<40} {:>14} {:<8} {}\n",
        "METRIC", "VALUE", "TIER", "BASIS"
    ));
    let df = &v["deployment_frequency"];
    let lt = &v["change_lead_time"];
    let cf = &v["change_fail_rate"];
    let rt = &v["failed_deployment_recovery_time"];
    let rw = &v["deployment_rework_rate"];
    let tr = &v["time_to_restore"];
    let rows = [
        (
            "deployments per day",
            num(&df["per_day"]),
            tier(&df["tier"]),
            format!(
                "{} successful in {} days",
                num(&df["successful_deployments"]),
                num(&df["window_days"])
            ),
        ),
        (
            "change lead time, median (s)",
            num(&lt["median_seconds"]),
            tier(&lt["tier"]),
            format!("{} changes", num(&lt["changes"])),
        ),
        (
            "change lead time, p90 (s)",
            num(&lt["p90_seconds"]),
            "-".into(),
            String::new(),
        ),
        (
            "change fail rate",
            num(&cf["rate"]),
            tier(&cf["tier"]),
            format!(
                "{} of {} failed",
                num(&cf["failed_deployments"]),
                num(&cf["successful_deployments"])
            ),
        ),
        (
            "failed deployment recovery, median (s)",
            num(&rt["median_seconds"]),
            tier(&rt["tier"]),
            format!(
                "{} recovered, {} not yet",
                num(&rt["recovered"]),
                num(&rt["not_recovered"])
            ),
        ),
        (
            "deployment rework rate",
            num(&rw["rate"]),
            "-".into(),
            format!(
                "{} of {}",
                num(&rw["rework_deployments"]),
                num(&rw["successful_deployments"])
            ),
        ),
        (
            "time to restore, median (s)",
            num(&tr["median_seconds"]),
            "-".into(),
            format!(
                "{} resolved, {} open",
                num(&tr["resolved_incidents"]),
                num(&tr["unresolved_incidents"])
            ),
        ),
    ];
    for (name, value, t, basis) in rows {
        out.push_str(&format!("{name:<40} {value:>14} {t:<8} {basis}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_bodies_carry_commits_and_default_times() {
        let args = DeployArgs {
            id: "d1".into(),
            service: "api".into(),
            environment: "prod".into(),
            version: "1.2".into(),
            status: "success".into(),
            started_at: None,
            finished_at: Some("2026-01-01T00:10:00Z".into()),
            commits: vec!["abc@2026-01-01T00:00:00Z".into()],
            rollback_of: None,
            fixes_incident: None,
        };
        let body = deploy_body(&args, 0).expect("valid");
        assert_eq!(body["finished_at"], 1_767_226_200.0);
        assert_eq!(body["started_at"], body["finished_at"]);
        assert_eq!(body["commits"][0]["committed_at"], 1_767_225_600.0);
        let bad = DeployArgs {
            commits: vec!["abc".into()],
            ..args
        };
        assert!(matches!(deploy_body(&bad, 0), Err(CliError::Usage(_))));
    }
}
