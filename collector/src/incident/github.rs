//! GitHub's `deployment_status` webhook as a source of deployment records.
//!
//! A repository (or organisation) webhook sends one delivery per deployment status. This
//! module checks the delivery's signature and turns a finished deployment into a
//! [`PostableDeployment`], which the caller validates with `.validate("github")` and stores
//! like any other record. It does no I/O: the HTTP handler limits the body size, reads the
//! `X-Hub-Signature-256` and `X-GitHub-Event` headers and calls [`verify_signature`] before
//! [`parse_delivery`].
//!
//! The mapping from a delivery to a record is:
//!
//! - `id` is `github:{repository.full_name}:{deployment.id}`, so every status of one GitHub
//!   deployment names the same record, and the first terminal status wins.
//! - `service` is `deployment.payload.service` when it is a non-empty string, otherwise
//!   `repository.name`.
//! - `environment` is `deployment_status.environment`, otherwise `deployment.environment`.
//! - `version` is `deployment.payload.version` when it is a non-empty string, otherwise
//!   `deployment.ref`, otherwise `deployment.sha`.
//! - `status` is `success` for the state `success`, and `failure` for `failure` and `error`.
//!   The states `pending`, `queued`, `in_progress` and `inactive` do not finish a deployment,
//!   so such deliveries produce no record.
//! - `started_at` is `deployment.created_at` and `finished_at` is
//!   `deployment_status.created_at`.
//! - `commits` come from `deployment.payload.commits` when that is an array of
//!   `{"sha": …, "committed_at": …}` objects. GitHub itself sends no commit times, so lead
//!   time for changes needs a pipeline that puts them into the payload, or a record sent
//!   through the API or the CLI instead.
//! - `rollback_of` comes from `deployment.payload.rollback_of` (a record id as a string, or
//!   a GitHub deployment id as an integer, which is expanded to this module's id format), and
//!   `fixes_incident` from `deployment.payload.fixes_incident` (an integer).
//!
//! `deployment.payload` is whatever the creator of the deployment chose to send. It is used
//! when it is a JSON object, or a string holding a JSON object (which is what GitHub stores
//! when the payload was passed as a string); anything else, such as an empty string, counts
//! as no payload. Unknown fields anywhere in the delivery are ignored.

use serde_json::{Map, Value};

use crate::incident::deployment::{DeploymentStatus, PostableCommit, PostableDeployment};
use crate::incident::time::Timestamp;

/// The prefix GitHub puts before the hex digest in `X-Hub-Signature-256`.
const SIGNATURE_PREFIX: &str = "sha256=";

/// The length of an HMAC-SHA256 digest in bytes.
const DIGEST_LEN: usize = 32;

/// The most characters of a client-chosen event name kept in an error message.
const MAX_EVENT_NAME_IN_ERROR: usize = 64;

/// Why a webhook delivery was refused.
///
/// [`WebhookError::status`] gives the HTTP status to answer with. GitHub shows that status
/// in the webhook's "Recent Deliveries" page, which is where a user debugging the setup
/// will look, so the messages say what to fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The configured secret is empty, so no delivery can be authenticated.
    #[error("the GitHub webhook secret is empty; configure a secret before accepting deliveries")]
    EmptySecret,
    /// The delivery has no `X-Hub-Signature-256` header.
    #[error("the X-Hub-Signature-256 header is missing; set a secret on the GitHub webhook")]
    MissingSignature,
    /// The header is present but is not `sha256=` followed by 64 hex digits.
    #[error("the X-Hub-Signature-256 header is malformed: {0}")]
    MalformedSignature(String),
    /// The header is well formed but does not match the body under the configured secret.
    #[error("the X-Hub-Signature-256 header does not match the body; check the webhook secret")]
    BadSignature,
    /// The delivery has no `X-GitHub-Event` header.
    #[error("the X-GitHub-Event header is missing")]
    MissingEvent,
    /// The delivery is for an event this endpoint does not record.
    #[error(
        "the event {0:?} is not supported; subscribe the webhook to \"Deployment statuses\" only"
    )]
    UnsupportedEvent(String),
    /// The body is not a JSON object.
    #[error("the body is not a JSON object: {0}")]
    InvalidJson(String),
    /// A field the mapping needs is missing or has the wrong type; `field` is its dotted path.
    #[error("{field}: {problem}")]
    Malformed { field: String, problem: String },
}

impl WebhookError {
    /// The HTTP status to answer the delivery with.
    ///
    /// Signature problems are 401 (the sender is not authenticated), an empty configured
    /// secret is 500 (the fault is ours, not the sender's), a missing event header, a body
    /// that is not JSON and missing or mistyped fields are 400, and an unsupported event is
    /// 422 (the request is well formed and authentic, but this endpoint does not process
    /// that kind of event).
    pub fn status(&self) -> u16 {
        match self {
            WebhookError::EmptySecret => 500,
            WebhookError::MissingSignature
            | WebhookError::MalformedSignature(_)
            | WebhookError::BadSignature => 401,
            WebhookError::MissingEvent
            | WebhookError::InvalidJson(_)
            | WebhookError::Malformed { .. } => 400,
            WebhookError::UnsupportedEvent(_) => 422,
        }
    }
}

fn malformed(field: impl Into<String>, problem: impl Into<String>) -> WebhookError {
    WebhookError::Malformed {
        field: field.into(),
        problem: problem.into(),
    }
}

/// Verifies GitHub's `X-Hub-Signature-256: sha256=<hex>` header over the exact body bytes.
///
/// The comparison is done in constant time by `ring::hmac::verify`. Upper- and lower-case
/// hex digits are both accepted, and whitespace around the header value is ignored. An
/// empty `secret` is refused with [`WebhookError::EmptySecret`] whatever the header says,
/// because anybody could compute a signature under it.
pub fn verify_signature(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), WebhookError> {
    if secret.is_empty() {
        return Err(WebhookError::EmptySecret);
    }
    let header = header.ok_or(WebhookError::MissingSignature)?.trim();
    if header.is_empty() {
        return Err(WebhookError::MissingSignature);
    }
    let hex = header.strip_prefix(SIGNATURE_PREFIX).ok_or_else(|| {
        WebhookError::MalformedSignature(format!("it does not start with {SIGNATURE_PREFIX:?}"))
    })?;
    let tag = decode_hex(hex).ok_or_else(|| {
        WebhookError::MalformedSignature(format!(
            "after {SIGNATURE_PREFIX:?} it must be {} hex digits",
            DIGEST_LEN * 2
        ))
    })?;
    if tag.len() != DIGEST_LEN {
        return Err(WebhookError::MalformedSignature(format!(
            "after {SIGNATURE_PREFIX:?} it must be {} hex digits",
            DIGEST_LEN * 2
        )));
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    ring::hmac::verify(&key, body, &tag).map_err(|_| WebhookError::BadSignature)
}

/// Decodes an even number of hex digits (either case) into bytes.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    fn digit(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// Turns a GitHub webhook delivery into a deployment record.
///
/// `event` is the `X-GitHub-Event` header and `body` the delivery's body, whose signature
/// the caller has already checked with [`verify_signature`]. A `ping` (sent when the
/// webhook is created) and a `deployment_status` whose state does not finish the deployment
/// (`pending`, `queued`, `in_progress`, `inactive`) give `Ok(None)`. A `deployment_status`
/// with the state `success`, `failure` or `error` gives the record described in the module
/// documentation; the caller still validates it. Any other event is
/// [`WebhookError::UnsupportedEvent`], and a state GitHub does not document is
/// [`WebhookError::Malformed`], so that a change on GitHub's side shows up as failed
/// deliveries rather than silently missing deployments.
pub fn parse_delivery(
    event: Option<&str>,
    body: &[u8],
) -> Result<Option<PostableDeployment>, WebhookError> {
    let event = event.map(str::trim).unwrap_or_default();
    match event {
        "" => Err(WebhookError::MissingEvent),
        "ping" => Ok(None),
        "deployment_status" => parse_deployment_status(body),
        other => Err(WebhookError::UnsupportedEvent(
            other.chars().take(MAX_EVENT_NAME_IN_ERROR).collect(),
        )),
    }
}

fn parse_deployment_status(body: &[u8]) -> Result<Option<PostableDeployment>, WebhookError> {
    let root: Value =
        serde_json::from_slice(body).map_err(|e| WebhookError::InvalidJson(e.to_string()))?;
    if !root.is_object() {
        return Err(WebhookError::InvalidJson(format!(
            "the top level is {}",
            kind(&root)
        )));
    }

    let state = required_str(&root, "deployment_status.state")?;
    let status = match state.trim().to_ascii_lowercase().as_str() {
        "success" => DeploymentStatus::Success,
        "failure" | "error" => DeploymentStatus::Failure,
        "pending" | "queued" | "in_progress" | "inactive" => return Ok(None),
        _ => {
            return Err(malformed(
                "deployment_status.state",
                format!(
                    "{:?} is not one of success, failure, error, pending, queued, in_progress, \
                     inactive",
                    truncate(state, MAX_EVENT_NAME_IN_ERROR)
                ),
            ));
        }
    };

    let full_name = required_str(&root, "repository.full_name")?;
    let deployment_id = deployment_id(&root)?;
    let id = format!("github:{full_name}:{deployment_id}");

    let payload = payload(&root);
    let payload_str = |key: &str| {
        payload
            .as_ref()
            .and_then(|p| p.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
    };

    let service = match payload_str("service") {
        Some(service) => service.to_owned(),
        None => required_str(&root, "repository.name")?.to_owned(),
    };

    let environment = match optional_str(&root, "deployment_status.environment")? {
        Some(environment) => environment.to_owned(),
        None => required_str(&root, "deployment.environment")?.to_owned(),
    };

    let version = match payload_str("version") {
        Some(version) => version.to_owned(),
        None => match optional_str(&root, "deployment.ref")? {
            Some(git_ref) => git_ref.to_owned(),
            None => optional_str(&root, "deployment.sha")?
                .unwrap_or_default()
                .to_owned(),
        },
    };

    let started_at = Timestamp::Text(required_str(&root, "deployment.created_at")?.to_owned());
    let finished_at =
        Timestamp::Text(required_str(&root, "deployment_status.created_at")?.to_owned());

    let commits = payload
        .as_ref()
        .and_then(|p| p.get("commits"))
        .and_then(commits)
        .unwrap_or_default();

    let rollback_of = payload
        .as_ref()
        .and_then(|p| p.get("rollback_of"))
        .and_then(|v| match v {
            Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
            Value::Number(n) => n.as_u64().map(|n| format!("github:{full_name}:{n}")),
            _ => None,
        });

    let fixes_incident = payload
        .as_ref()
        .and_then(|p| p.get("fixes_incident"))
        .and_then(Value::as_i64);

    Ok(Some(PostableDeployment {
        id,
        service,
        environment,
        version,
        status,
        started_at,
        finished_at,
        commits,
        rollback_of,
        fixes_incident,
    }))
}

/// `deployment.id` as text: GitHub sends an integer; a non-empty string is accepted too.
fn deployment_id(root: &Value) -> Result<String, WebhookError> {
    const FIELD: &str = "deployment.id";
    match lookup(root, FIELD)? {
        Some(Value::Number(n)) => n
            .as_u64()
            .map(|n| n.to_string())
            .ok_or_else(|| malformed(FIELD, format!("{n} is not a non-negative integer"))),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(malformed(FIELD, "must not be empty")),
        Some(other) => Err(malformed(
            FIELD,
            format!("must be an integer, not {}", kind(other)),
        )),
        None => Err(malformed(FIELD, "is missing")),
    }
}

/// `deployment.payload` as an object: an object as is, or a string holding a JSON object.
fn payload(root: &Value) -> Option<Map<String, Value>> {
    match root.get("deployment")?.get("payload")? {
        Value::Object(map) => Some(map.clone()),
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Some(map),
            _ => None,
        },
        _ => None,
    }
}

/// `payload.commits` when every entry is an object with a non-empty string `sha` and a
/// `committed_at` that is a string or a number; `None` otherwise, so that a payload written
/// for some other tool does not cost the deployment record.
fn commits(value: &Value) -> Option<Vec<PostableCommit>> {
    value
        .as_array()?
        .iter()
        .map(|entry| {
            let sha = entry
                .get("sha")?
                .as_str()
                .filter(|s| !s.trim().is_empty())?;
            let committed_at = match entry.get("committed_at")? {
                Value::String(s) => Timestamp::Text(s.clone()),
                Value::Number(n) => Timestamp::Seconds(n.as_f64()?),
                _ => return None,
            };
            Some(PostableCommit {
                sha: sha.to_owned(),
                committed_at,
            })
        })
        .collect()
}

/// Follows a dotted path through nested objects. A missing key or a JSON `null` is
/// `Ok(None)`; an intermediate value that is not an object is an error naming the path up
/// to that value, and so is a missing intermediate object.
fn lookup<'a>(root: &'a Value, path: &str) -> Result<Option<&'a Value>, WebhookError> {
    let mut current = root;
    // `path[..end]` names `current`; an empty name is the whole body.
    let mut end = 0;
    let mut segments = path.split('.').peekable();
    while let Some(segment) = segments.next() {
        let Value::Object(map) = current else {
            let name = if end == 0 { "body" } else { &path[..end] };
            return Err(malformed(
                name,
                format!("must be an object, not {}", kind(current)),
            ));
        };
        end += segment.len() + usize::from(end > 0);
        match map.get(segment) {
            Some(Value::Null) | None if segments.peek().is_some() => {
                return Err(malformed(&path[..end], "is missing"));
            }
            Some(Value::Null) | None => return Ok(None),
            Some(next) => current = next,
        }
    }
    Ok(Some(current))
}

/// A string field that may be absent; present but not a string is an error, and an empty
/// string counts as absent.
fn optional_str<'a>(root: &'a Value, path: &str) -> Result<Option<&'a str>, WebhookError> {
    match lookup(root, path)? {
        None => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(malformed(
            path,
            format!("must be a string, not {}", kind(other)),
        )),
    }
}

/// A string field that must be present and non-empty.
fn required_str<'a>(root: &'a Value, path: &str) -> Result<&'a str, WebhookError> {
    match lookup(root, path)? {
        None => Err(malformed(path, "is missing")),
        Some(Value::String(s)) if s.trim().is_empty() => Err(malformed(path, "must not be empty")),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(malformed(
            path,
            format!("must be a string, not {}", kind(other)),
        )),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `deployment_status` delivery in the shape GitHub documents, with the extra fields
    /// (`sender`, `installation`, `organization`, URLs, node ids) that must be ignored.
    const DELIVERY: &str = r#"{
      "action": "created",
      "deployment_status": {
        "url": "https://api.github.com/repos/octo-org/octo-repo/deployments/1234567890/statuses/9876543210",
        "id": 9876543210,
        "node_id": "DES_kwDOA0Qd6s8AAAACTL1Qsg",
        "state": "success",
        "creator": {"login": "github-actions[bot]", "id": 41898282, "type": "Bot", "site_admin": false},
        "description": "",
        "environment": "production",
        "target_url": "https://github.com/octo-org/octo-repo/actions/runs/9000000001/job/24000000001",
        "created_at": "2024-05-01T12:06:30Z",
        "updated_at": "2024-05-01T12:06:30Z",
        "deployment_url": "https://api.github.com/repos/octo-org/octo-repo/deployments/1234567890",
        "repository_url": "https://api.github.com/repos/octo-org/octo-repo",
        "environment_url": "https://octo-repo.example.com",
        "log_url": "https://github.com/octo-org/octo-repo/actions/runs/9000000001/job/24000000001",
        "performed_via_github_app": null
      },
      "deployment": {
        "url": "https://api.github.com/repos/octo-org/octo-repo/deployments/1234567890",
        "id": 1234567890,
        "node_id": "DE_kwDOA0Qd6s5JlFxS",
        "task": "deploy",
        "original_environment": "production",
        "environment": "production",
        "description": null,
        "created_at": "2024-05-01T12:00:00Z",
        "updated_at": "2024-05-01T12:06:30Z",
        "statuses_url": "https://api.github.com/repos/octo-org/octo-repo/deployments/1234567890/statuses",
        "repository_url": "https://api.github.com/repos/octo-org/octo-repo",
        "creator": {"login": "github-actions[bot]", "id": 41898282, "type": "Bot", "site_admin": false},
        "sha": "a10867b14bb761a232cd80139fbd4c0d33264240",
        "ref": "main",
        "payload": {},
        "transient_environment": false,
        "production_environment": true,
        "performed_via_github_app": null
      },
      "check_run": null,
      "workflow": null,
      "workflow_run": null,
      "repository": {
        "id": 54634986,
        "node_id": "R_kgDOA0Qd6g",
        "name": "octo-repo",
        "full_name": "octo-org/octo-repo",
        "private": true,
        "owner": {"login": "octo-org", "id": 6811672, "type": "Organization"},
        "html_url": "https://github.com/octo-org/octo-repo",
        "default_branch": "main"
      },
      "organization": {"login": "octo-org", "id": 6811672},
      "sender": {"login": "octocat", "id": 1, "type": "User", "site_admin": false},
      "installation": {"id": 12345678, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMTIzNDU2Nzg="}
    }"#;

    fn delivery() -> Value {
        serde_json::from_str(DELIVERY).expect("the fixture is JSON")
    }

    fn parse(value: &Value) -> Result<Option<PostableDeployment>, WebhookError> {
        let body = serde_json::to_vec(value).expect("serialises");
        parse_delivery(Some("deployment_status"), &body)
    }

    fn record(value: &Value) -> PostableDeployment {
        parse(value)
            .expect("parses")
            .expect("a finished deployment")
    }

    fn sign(secret: &[u8], body: &[u8]) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let tag = ring::hmac::sign(&key, body);
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256={hex}")
    }

    #[test]
    fn maps_a_documented_delivery() {
        let d = record(&delivery());
        assert_eq!(d.id, "github:octo-org/octo-repo:1234567890");
        assert_eq!(d.service, "octo-repo");
        assert_eq!(d.environment, "production");
        assert_eq!(d.version, "main");
        assert_eq!(d.status, DeploymentStatus::Success);
        assert_eq!(d.started_at, Timestamp::Text("2024-05-01T12:00:00Z".into()));
        assert_eq!(
            d.finished_at,
            Timestamp::Text("2024-05-01T12:06:30Z".into())
        );
        assert!(d.commits.is_empty());
        assert_eq!(d.rollback_of, None);
        assert_eq!(d.fixes_incident, None);

        let valid = d.validate("github").expect("validates");
        assert_eq!(valid.source, "github");
        assert_eq!(valid.started_at, 1_714_564_800_000);
        assert_eq!(valid.finished_at, 1_714_565_190_000);
    }

    #[test]
    fn the_payload_overrides_service_and_version_and_carries_extras() {
        let mut v = delivery();
        v["deployment"]["payload"] = serde_json::json!({
            "service": "checkout",
            "version": "v2.3.1",
            "commits": [
                {"sha": "a10867b", "committed_at": "2024-05-01T11:30:00Z"},
                {"sha": "9f0e1d2", "committed_at": 1714556400}
            ],
            "rollback_of": "github:octo-org/octo-repo:1234567000",
            "fixes_incident": 42,
            "unrelated": {"deep": [1, 2, 3]}
        });
        let d = record(&v);
        assert_eq!(d.service, "checkout");
        assert_eq!(d.version, "v2.3.1");
        assert_eq!(d.commits.len(), 2);
        assert_eq!(d.commits[0].sha, "a10867b");
        assert_eq!(
            d.commits[0].committed_at,
            Timestamp::Text("2024-05-01T11:30:00Z".into())
        );
        assert_eq!(
            d.commits[1].committed_at,
            Timestamp::Seconds(1_714_556_400.0)
        );
        assert_eq!(
            d.rollback_of.as_deref(),
            Some("github:octo-org/octo-repo:1234567000")
        );
        assert_eq!(d.fixes_incident, Some(42));
        let valid = d.validate("github").expect("validates");
        assert_eq!(valid.commits[1].committed_at, 1_714_556_400_000);
    }

    #[test]
    fn an_integer_rollback_of_names_a_github_deployment() {
        let mut v = delivery();
        v["deployment"]["payload"] = serde_json::json!({"rollback_of": 1234567000});
        assert_eq!(
            record(&v).rollback_of.as_deref(),
            Some("github:octo-org/octo-repo:1234567000")
        );
    }

    #[test]
    fn unusable_payload_fields_are_ignored() {
        let mut v = delivery();
        v["deployment"]["payload"] = serde_json::json!({
            "service": "  ",
            "version": 7,
            "commits": [{"sha": "abc", "committed_at": "2024-05-01T11:30:00Z"}, "def"],
            "rollback_of": "",
            "fixes_incident": "42"
        });
        let d = record(&v);
        assert_eq!(d.service, "octo-repo");
        assert_eq!(d.version, "main");
        assert!(
            d.commits.is_empty(),
            "a partly malformed list is dropped whole"
        );
        assert_eq!(d.rollback_of, None);
        assert_eq!(d.fixes_incident, None);
    }

    #[test]
    fn a_payload_string_is_read_as_json_or_ignored() {
        let mut v = delivery();
        v["deployment"]["payload"] = Value::String(r#"{"service":"billing"}"#.into());
        assert_eq!(record(&v).service, "billing");

        for text in ["", "deploy please", "[1,2]"] {
            v["deployment"]["payload"] = Value::String(text.into());
            let d = record(&v);
            assert_eq!(d.service, "octo-repo", "{text:?}");
            assert_eq!(d.version, "main", "{text:?}");
        }

        v["deployment"]["payload"] = Value::Null;
        assert_eq!(record(&v).service, "octo-repo");
        v["deployment"]
            .as_object_mut()
            .expect("object")
            .remove("payload");
        assert_eq!(record(&v).service, "octo-repo");
    }

    #[test]
    fn environment_and_version_fall_back() {
        let mut v = delivery();
        v["deployment_status"]
            .as_object_mut()
            .expect("object")
            .remove("environment");
        v["deployment"]["environment"] = "staging".into();
        v["deployment"]["ref"] = Value::Null;
        let d = record(&v);
        assert_eq!(d.environment, "staging");
        assert_eq!(d.version, "a10867b14bb761a232cd80139fbd4c0d33264240");

        v["deployment"]["sha"] = Value::Null;
        assert_eq!(record(&v).version, "");
    }

    #[test]
    fn failure_and_error_are_failures() {
        for state in ["failure", "error"] {
            let mut v = delivery();
            v["deployment_status"]["state"] = state.into();
            assert_eq!(record(&v).status, DeploymentStatus::Failure, "{state}");
        }
    }

    #[test]
    fn unfinished_states_and_pings_give_nothing() {
        for state in ["pending", "queued", "in_progress", "inactive"] {
            let mut v = delivery();
            v["deployment_status"]["state"] = state.into();
            assert!(parse(&v).expect(state).is_none(), "{state}");
        }
        assert!(
            parse_delivery(
                Some("ping"),
                br#"{"zen":"Keep it logically awesome.","hook_id":1}"#
            )
            .expect("ping")
            .is_none()
        );
    }

    #[test]
    fn an_unknown_state_is_refused() {
        let mut v = delivery();
        v["deployment_status"]["state"] = "exploded".into();
        let err = parse(&v).expect_err("unknown state");
        assert!(
            matches!(&err, WebhookError::Malformed { field, .. } if field == "deployment_status.state"),
            "{err:?}"
        );
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn other_events_are_refused() {
        let err = parse_delivery(Some("push"), b"{}").expect_err("push");
        assert_eq!(err, WebhookError::UnsupportedEvent("push".into()));
        assert_eq!(err.status(), 422);
        let err = parse_delivery(None, b"{}").expect_err("no event");
        assert_eq!(err, WebhookError::MissingEvent);
        assert_eq!(err.status(), 400);
        let long = "x".repeat(10_000);
        match parse_delivery(Some(&long), b"{}") {
            Err(WebhookError::UnsupportedEvent(name)) => assert_eq!(name.len(), 64),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_and_mistyped_fields_are_named() {
        type Mutation = fn(&mut Value);
        let cases: [(&str, Mutation); 8] = [
            ("deployment", |v| {
                v.as_object_mut().expect("object").remove("deployment");
            }),
            ("deployment", |v| v["deployment"] = "nope".into()),
            ("deployment.id", |v| {
                v["deployment"]
                    .as_object_mut()
                    .expect("object")
                    .remove("id");
            }),
            ("deployment.id", |v| v["deployment"]["id"] = (-3).into()),
            ("deployment.created_at", |v| {
                v["deployment"]["created_at"] = 1_714_564_800.into()
            }),
            ("deployment_status.created_at", |v| {
                v["deployment_status"]
                    .as_object_mut()
                    .expect("object")
                    .remove("created_at");
            }),
            ("deployment_status", |v| {
                v.as_object_mut()
                    .expect("object")
                    .remove("deployment_status");
            }),
            ("repository.full_name", |v| {
                v["repository"]["full_name"] = "".into()
            }),
        ];
        for (field, mutate) in cases {
            let mut v = delivery();
            mutate(&mut v);
            match parse(&v) {
                Err(WebhookError::Malformed { field: got, .. }) => assert_eq!(got, field),
                other => panic!("expected {field} to be named, got {other:?}"),
            }
        }

        let mut v = delivery();
        v["deployment_status"]
            .as_object_mut()
            .expect("object")
            .remove("environment");
        v["deployment"]
            .as_object_mut()
            .expect("object")
            .remove("environment");
        let err = parse(&v).expect_err("no environment");
        assert_eq!(
            err,
            malformed("deployment.environment", "is missing"),
            "{err}"
        );
        assert_eq!(err.to_string(), "deployment.environment: is missing");
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_refused() {
        for body in [&b"not json"[..], b"[1,2,3]", b"", b"\"text\""] {
            let err = parse_delivery(Some("deployment_status"), body).expect_err("refused");
            assert!(matches!(err, WebhookError::InvalidJson(_)), "{err:?}");
            assert_eq!(err.status(), 400);
        }
    }

    #[test]
    fn githubs_documented_signature_vector() {
        let secret = b"It's a Secret to Everybody";
        let body = b"Hello, World!";
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(secret, body), header);
        assert_eq!(verify_signature(secret, body, Some(header)), Ok(()));
        assert_eq!(
            verify_signature(
                secret,
                body,
                Some(&header.to_ascii_uppercase().replace("SHA256=", "sha256="))
            ),
            Ok(())
        );
        assert_eq!(
            verify_signature(secret, b"Hello, World?", Some(header)),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn signatures_are_checked_over_the_exact_body() {
        let secret = b"s3cr3t";
        let body = DELIVERY.as_bytes();
        let header = sign(secret, body);
        assert_eq!(verify_signature(secret, body, Some(&header)), Ok(()));
        assert_eq!(
            verify_signature(secret, body, Some(&format!("  {header}\t"))),
            Ok(())
        );

        let err = verify_signature(b"wrong", body, Some(&header)).expect_err("wrong secret");
        assert_eq!(err, WebhookError::BadSignature);
        assert_eq!(err.status(), 401);

        let mut reformatted = body.to_vec();
        reformatted.push(b'\n');
        assert_eq!(
            verify_signature(secret, &reformatted, Some(&header)),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn missing_and_malformed_headers_are_refused() {
        let secret = b"s3cr3t";
        let body = b"{}";
        let good = sign(secret, body);
        let hex = good.trim_start_matches("sha256=");

        assert_eq!(
            verify_signature(secret, body, None),
            Err(WebhookError::MissingSignature)
        );
        assert_eq!(
            verify_signature(secret, body, Some("  ")),
            Err(WebhookError::MissingSignature)
        );
        let bad_headers = [
            hex.to_owned(),
            format!("sha1={hex}"),
            format!("SHA256={hex}"),
            format!("sha256={}", &hex[..62]),
            format!("sha256={hex}00"),
            format!("sha256={}zz", &hex[..62]),
            format!("sha256={}é", &hex[..62]),
            "sha256=".to_owned(),
        ];
        for header in &bad_headers {
            let err = verify_signature(secret, body, Some(header)).expect_err(header);
            assert!(
                matches!(err, WebhookError::MalformedSignature(_)),
                "{header}: {err:?}"
            );
            assert_eq!(err.status(), 401);
        }
        for status in [WebhookError::MissingSignature, WebhookError::BadSignature] {
            assert_eq!(status.status(), 401);
        }
    }

    #[test]
    fn an_empty_secret_accepts_nothing() {
        let header = sign(b"", b"{}");
        let err = verify_signature(b"", b"{}", Some(&header)).expect_err("empty secret");
        assert_eq!(err, WebhookError::EmptySecret);
        assert_eq!(err.status(), 500);
    }
}
