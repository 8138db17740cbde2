//! `redline-collector rollback …`: rollbacks on a running collector, over its HTTP API.

use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand, Debug)]
pub enum RollbackCommand {
    /// List rollbacks (decided, awaiting approval, run), newest first.
    List {
        #[arg(long)]
        service: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Approve a rollback that waits for approval: its hooks run now (if the guards allow).
    Approve {
        id: i64,
        #[arg(long, default_value_t = default_actor())]
        actor: String,
    },
    /// Block every rollback until a time (maintenance).
    Block {
        /// RFC 3339 or Unix seconds.
        #[arg(long)]
        until: String,
        #[arg(long)]
        reason: String,
        #[arg(long, default_value_t = default_actor())]
        actor: String,
    },
    /// Lift the block.
    Unblock,
}

fn default_actor() -> String {
    std::env::var("USER").unwrap_or_else(|_| "cli".to_owned())
}

async fn call(
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> Result<Value, crate::incident::cli::CliError> {
    crate::incident::cli::call(method, url, body).await
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

pub async fn run(
    url: &str,
    command: RollbackCommand,
) -> Result<String, crate::incident::cli::CliError> {
    use reqwest::Method;
    let root = format!("{}/api/v1/rollbacks", url.trim_end_matches('/'));
    match command {
        RollbackCommand::List { service, json } => {
            let query = service
                .map(|s| {
                    format!(
                        "?service={}",
                        form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                    )
                })
                .unwrap_or_default();
            let v = call(Method::GET, format!("{root}{query}"), None).await?;
            if json {
                return Ok(serde_json::to_string_pretty(&v).unwrap_or_default() + "\n");
            }
            let mut out = format!(
                "{:<5} {:<18} {:<16} {:<12} {:<24} REASON\n",
                "ID", "STATE", "SERVICE", "ENVIRONMENT", "DEPLOYMENT"
            );
            for r in v.as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "{:<5} {:<18} {:<16} {:<12} {:<24} {}\n",
                    r["id"],
                    s(r, "state"),
                    s(r, "service"),
                    s(r, "environment"),
                    s(r, "deployment_id"),
                    s(r, "reason")
                ));
            }
            Ok(out)
        }
        RollbackCommand::Approve { id, actor } => {
            let v = call(
                Method::POST,
                format!("{root}/{id}/approve"),
                Some(json!({"actor": actor})),
            )
            .await?;
            Ok(format!("rollback {} {}\n", v["id"], s(&v, "state")))
        }
        RollbackCommand::Block {
            until,
            reason,
            actor,
        } => {
            let until = crate::incident::time::parse(&until)
                .map_err(crate::incident::cli::CliError::Usage)?;
            let v = call(
                Method::POST,
                format!("{root}/block"),
                Some(json!({"until": until as f64 / 1000.0, "reason": reason, "actor": actor})),
            )
            .await?;
            Ok(format!(
                "rollbacks blocked until {}\n",
                s(&v["block"], "until")
            ))
        }
        RollbackCommand::Unblock => {
            call(Method::DELETE, format!("{root}/block"), None).await?;
            Ok("rollbacks unblocked\n".to_owned())
        }
    }
}
