//! Deployments as data: what `POST /api/v1/deployments`, the CLI and GitHub's
//! `deployment_status` webhook record, validated before anything is stored.
//!
//! A deployment is identified by its `id`; recording the same id again changes nothing (the
//! first record wins, and the caller is told whether the two differ). Times are accepted as
//! RFC 3339 text or Unix seconds (a number), kept as Unix milliseconds, and given back as
//! RFC 3339 in UTC.

use serde::{Deserialize, Serialize};

/// Limits on one deployment record: a CI pipeline sends a few commits, never megabytes.
pub const MAX_ID_LEN: usize = 256;
pub const MAX_TEXT_LEN: usize = 1024;
pub const MAX_COMMITS: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentStatus {
    Success,
    Failure,
}

impl DeploymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Success => "success",
            DeploymentStatus::Failure => "failure",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    pub sha: String,
    /// Unix milliseconds.
    #[serde(with = "crate::incident::time::rfc3339")]
    pub committed_at: i64,
}

/// A validated deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: String,
    pub service: String,
    pub environment: String,
    pub version: String,
    pub status: DeploymentStatus,
    #[serde(with = "crate::incident::time::rfc3339")]
    pub started_at: i64,
    #[serde(with = "crate::incident::time::rfc3339")]
    pub finished_at: i64,
    #[serde(default)]
    pub commits: Vec<Commit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<String>,
    /// The incident this unplanned deployment addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixes_incident: Option<i64>,
    /// Where the record came from: `api`, `cli`, `github`.
    #[serde(default = "default_source")]
    pub source: String,
}

fn default_source() -> String {
    "api".to_owned()
}

/// The body of `POST /api/v1/deployments` as sent (times as RFC 3339 or Unix seconds).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostableDeployment {
    pub id: String,
    pub service: String,
    pub environment: String,
    #[serde(default)]
    pub version: String,
    pub status: DeploymentStatus,
    pub started_at: crate::incident::time::Timestamp,
    pub finished_at: crate::incident::time::Timestamp,
    #[serde(default)]
    pub commits: Vec<PostableCommit>,
    #[serde(default)]
    pub rollback_of: Option<String>,
    #[serde(default)]
    pub fixes_incident: Option<i64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostableCommit {
    pub sha: String,
    pub committed_at: crate::incident::time::Timestamp,
}

/// Why a deployment record was refused; `field` names the offending field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InvalidDeployment {
    pub field: String,
    pub problem: String,
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> InvalidDeployment {
    InvalidDeployment {
        field: field.into(),
        problem: problem.into(),
    }
}

fn check_text(
    field: &str,
    value: &str,
    max: usize,
    required: bool,
) -> Result<(), InvalidDeployment> {
    if required && value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.len() > max {
        return Err(invalid(
            field,
            format!("is {} bytes long; the limit is {max}", value.len()),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(())
}

impl PostableDeployment {
    /// Checks every field and converts the times. References to other deployments and
    /// incidents are checked by the caller, which can see the store.
    pub fn validate(self, source: &str) -> Result<Deployment, InvalidDeployment> {
        check_text("id", &self.id, MAX_ID_LEN, true)?;
        check_text("service", &self.service, MAX_TEXT_LEN, true)?;
        check_text("environment", &self.environment, MAX_TEXT_LEN, true)?;
        check_text("version", &self.version, MAX_TEXT_LEN, false)?;
        let started_at = self
            .started_at
            .millis()
            .map_err(|p| invalid("started_at", p))?;
        let finished_at = self
            .finished_at
            .millis()
            .map_err(|p| invalid("finished_at", p))?;
        if finished_at < started_at {
            return Err(invalid("finished_at", "is before started_at"));
        }
        if self.commits.len() > MAX_COMMITS {
            return Err(invalid(
                "commits",
                format!(
                    "has {} entries; the limit is {MAX_COMMITS}",
                    self.commits.len()
                ),
            ));
        }
        let mut commits = Vec::with_capacity(self.commits.len());
        for (i, c) in self.commits.into_iter().enumerate() {
            let field = format!("commits[{i}].sha");
            check_text(&field, &c.sha, MAX_ID_LEN, true)?;
            let field = format!("commits[{i}].committed_at");
            let committed_at = c.committed_at.millis().map_err(|p| invalid(&field, p))?;
            commits.push(Commit {
                sha: c.sha,
                committed_at,
            });
        }
        if let Some(r) = &self.rollback_of {
            check_text("rollback_of", r, MAX_ID_LEN, true)?;
            if *r == self.id {
                return Err(invalid("rollback_of", "names the deployment itself"));
            }
        }
        Ok(Deployment {
            id: self.id,
            service: self.service,
            environment: self.environment,
            version: self.version,
            status: self.status,
            started_at,
            finished_at,
            commits,
            rollback_of: self.rollback_of,
            fixes_incident: self.fixes_incident,
            source: source.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> PostableDeployment {
        serde_json::from_str(json).expect("parses")
    }

    #[test]
    fn times_are_rfc3339_or_unix_seconds() {
        let d = body(
            r#"{"id":"d1","service":"api","environment":"prod","version":"1.2","status":"success",
                "started_at":"2026-01-02T03:04:05Z","finished_at":1767323100,
                "commits":[{"sha":"abc","committed_at":"2026-01-01T00:00:00+01:00"}]}"#,
        )
        .validate("api")
        .expect("valid");
        assert_eq!(d.started_at, 1_767_323_045_000);
        assert_eq!(d.finished_at, 1_767_323_100_000);
        assert_eq!(d.commits[0].committed_at, 1_767_222_000_000);
        let json = serde_json::to_value(&d).expect("serialises");
        assert_eq!(json["started_at"], "2026-01-02T03:04:05Z");
    }

    #[test]
    fn bad_records_name_the_field() {
        let cases = [
            (r#""finished_at":1000,"started_at":2000"#, "finished_at"),
            (
                r#""finished_at":"yesterday","started_at":2000"#,
                "finished_at",
            ),
            (
                r#""finished_at":3000,"started_at":2000,"rollback_of":"d1""#,
                "rollback_of",
            ),
        ];
        for (extra, field) in cases {
            let json = format!(
                r#"{{"id":"d1","service":"api","environment":"prod","status":"success",{extra}}}"#
            );
            let err = body(&json).validate("api").expect_err(&json);
            assert_eq!(err.field, field, "{json}: {err}");
        }
        let empty = body(
            r#"{"id":" ","service":"api","environment":"prod","status":"success","started_at":1,"finished_at":2}"#,
        );
        assert_eq!(empty.validate("api").expect_err("empty id").field, "id");
        assert!(serde_json::from_str::<PostableDeployment>(
            r#"{"id":"d","service":"a","environment":"p","status":"ok","started_at":1,"finished_at":2}"#
        )
        .is_err());
    }
}
