//! `redline-collector silence add|query|expire`: silences from the command line, through a
//! running collector's Alertmanager API v2 (so the same commands work against an Alertmanager
//! too), with `amtool silence`'s arguments and output.
//!
//! Called by `main`; each function returns the text to print or an error naming the URL and
//! the server's answer.

use std::time::Duration;

use super::matcher::{Matcher, parse_matcher};
use super::silence::{GettableSilence, MatcherDto, PostableSilence, format_time};

/// The failure of a silence command.
#[derive(Debug, thiserror::Error)]
pub enum SilenceCliError {
    #[error("matcher {0:?}: {1}")]
    Matcher(String, String),
    #[error("{url}: {message}")]
    Request { url: String, message: String },
}

fn client() -> Result<reqwest::Client, SilenceCliError> {
    crate::listen::client::api_client(Duration::from_secs(30)).map_err(|message| {
        SilenceCliError::Request {
            url: String::new(),
            message,
        }
    })
}

async fn answer(
    url: &str,
    response: reqwest::Result<reqwest::Response>,
) -> Result<String, SilenceCliError> {
    let fail = |message: String| SilenceCliError::Request {
        url: url.to_owned(),
        message,
    };
    let response = response.map_err(|e| fail(e.to_string()))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| fail(e.to_string()))?;
    if !status.is_success() {
        return Err(fail(format!("{status}: {}", body.trim())));
    }
    Ok(body)
}

/// Creates a silence from `amtool`-style matchers (`alertname=HighCPU`, `instance=~"web.*"`;
/// a bare first word means `alertname=`). Returns the new silence's id.
pub async fn add(
    base: &str,
    matchers: &[String],
    comment: &str,
    author: &str,
    duration: Duration,
    now_ms: i64,
) -> Result<String, SilenceCliError> {
    let mut parsed: Vec<Matcher> = Vec::with_capacity(matchers.len());
    for (i, text) in matchers.iter().enumerate() {
        let text = if i == 0 && !text.contains(['=', '!', '~']) {
            format!("alertname={text}")
        } else {
            text.clone()
        };
        parsed
            .push(parse_matcher(&text).map_err(|e| SilenceCliError::Matcher(text, e.to_string()))?);
    }
    let body = PostableSilence {
        id: String::new(),
        matchers: parsed.iter().map(MatcherDto::from).collect(),
        starts_at: format_time(now_ms),
        ends_at: format_time(now_ms + duration.as_millis() as i64),
        created_by: author.to_owned(),
        comment: comment.to_owned(),
    };
    let url = format!("{}/api/v2/silences", base.trim_end_matches('/'));
    let text = answer(&url, client()?.post(&url).json(&body).send().await).await?;
    let id = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["silenceID"].as_str().map(str::to_owned))
        .ok_or_else(|| SilenceCliError::Request {
            url: url.clone(),
            message: format!("unexpected answer {text:?}"),
        })?;
    Ok(id)
}

/// Lists silences (active and pending; with `expired`, only expired ones) as `amtool silence
/// query` prints them, or as JSON.
pub async fn query(base: &str, expired: bool, json: bool) -> Result<String, SilenceCliError> {
    let url = format!("{}/api/v2/silences", base.trim_end_matches('/'));
    let text = answer(&url, client()?.get(&url).send().await).await?;
    let list: Vec<GettableSilence> =
        serde_json::from_str(&text).map_err(|e| SilenceCliError::Request {
            url: url.clone(),
            message: format!("unexpected answer: {e}"),
        })?;
    let list: Vec<GettableSilence> = list
        .into_iter()
        .filter(|s| (s.status.state.as_str() == "expired") == expired)
        .collect();
    if json {
        return serde_json::to_string(&list).map_err(|e| SilenceCliError::Request {
            url,
            message: e.to_string(),
        });
    }
    let mut out = format!(
        "{:<37} {:<40} {:<25} {:<15} {}\n",
        "ID", "Matchers", "Ends At", "Created By", "Comment"
    );
    for s in list {
        let matchers: Vec<String> = s
            .matchers
            .iter()
            .map(|m| {
                let op = match (m.is_equal, m.is_regex) {
                    (true, false) => "=",
                    (false, false) => "!=",
                    (true, true) => "=~",
                    (false, true) => "!~",
                };
                format!("{}{op}{:?}", m.name, m.value)
            })
            .collect();
        out.push_str(&format!(
            "{:<37} {:<40} {:<25} {:<15} {}\n",
            s.id,
            matchers.join(" "),
            s.ends_at,
            s.created_by,
            s.comment
        ));
    }
    Ok(out)
}

/// Expires silences by id.
pub async fn expire(base: &str, ids: &[String]) -> Result<(), SilenceCliError> {
    let client = client()?;
    for id in ids {
        let url = format!("{}/api/v2/silence/{id}", base.trim_end_matches('/'));
        answer(&url, client.delete(&url).send().await).await?;
    }
    Ok(())
}
