//! Rollback decisions (pure): whether a failed (or suspected) deployment is rolled back, under
//! the guards an operator sets per service and environment.
//!
//! Guards, in the order they are checked (the first that applies decides):
//! 1. mode `off`: nothing is recorded;
//! 2. a rollback for this deployment already exists (triggers repeat: verification and a
//!    linked incident can both fire): nothing new;
//! 3. the deployment is itself a rollback (`rollback_of` set): never rolled back — skipped;
//! 4. the environment is not listed in `environments`: skipped;
//! 5. rollbacks are blocked by hand (maintenance) until a time: skipped;
//! 6. the trigger is an inconclusive verification: paused, and people are told;
//! 7. a rollback of the same service ran less than `cooldown` ago: skipped;
//! 8. `max_rollbacks` of the same service ran within `per`: skipped;
//! 9. then by mode: `dry-run` records the decision and does nothing; `approval` waits for a
//!    person until `approval_timeout`; `auto` runs the hooks.
//!
//! An approval re-checks guards 5, 7 and 8 at the time it is given.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    #[default]
    Off,
    DryRun,
    Approval,
    Auto,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::DryRun => "dry-run",
            Mode::Approval => "approval",
            Mode::Auto => "auto",
        }
    }
}

/// The guards of one service (and environment).
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub mode: Mode,
    /// Only deployments to these environments are rolled back.
    pub environments: Vec<String>,
    pub cooldown_ms: i64,
    pub max_rollbacks: u32,
    pub per_ms: i64,
    pub approval_timeout_ms: i64,
}

/// Why a rollback is considered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    /// Verification failed: the summary of the failing indicators.
    VerificationFailed { summary: String },
    /// Verification could not tell.
    VerificationInconclusive { summary: String },
    /// An incident linked to the deployment fires within the window after it.
    Incident { incident_id: i64 },
}

impl Trigger {
    pub fn reason(&self) -> String {
        match self {
            Trigger::VerificationFailed { summary } => format!("verification failed: {summary}"),
            Trigger::VerificationInconclusive { summary } => {
                format!("verification inconclusive: {summary}")
            }
            Trigger::Incident { incident_id } => {
                format!("incident {incident_id} is linked to the deployment")
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Skipped,
    Paused,
    DryRun,
    AwaitingApproval,
    Running,
    Succeeded,
    Failed,
    Expired,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Skipped => "skipped",
            State::Paused => "paused",
            State::DryRun => "dry_run",
            State::AwaitingApproval => "awaiting_approval",
            State::Running => "running",
            State::Succeeded => "succeeded",
            State::Failed => "failed",
            State::Expired => "expired",
        }
    }

    /// Whether hooks ran (or are running): what cooldown and the per-window maximum count.
    pub fn executed(self) -> bool {
        matches!(self, State::Running | State::Succeeded | State::Failed)
    }
}

/// What the guards know of past rollbacks of the service.
#[derive(Clone, Debug, PartialEq)]
pub struct PastRollback {
    pub deployment_id: String,
    pub service: String,
    pub state: State,
    /// When its hooks started (for executed ones) or it was decided.
    pub at: i64,
}

/// A block set by hand (maintenance).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    #[serde(with = "crate::incident::time::rfc3339")]
    pub until: i64,
    pub reason: String,
    pub by: String,
}

/// The deployment a rollback is considered for.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate<'a> {
    pub deployment_id: &'a str,
    pub service: &'a str,
    pub environment: &'a str,
    pub is_rollback: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Nothing to record (mode off, or already handled).
    Nothing,
    /// Recorded with the reason; nothing runs.
    Record { state: State, reason: String },
    /// Wait for approval until `expires_at`.
    AwaitApproval { expires_at: i64 },
    /// Run the hooks now.
    Execute,
}

fn blocked(block: Option<&Block>, now: i64) -> Option<String> {
    block.filter(|b| b.until > now).map(|b| {
        format!(
            "rollbacks are blocked by {} until {}: {}",
            b.by,
            crate::incident::time::format(b.until),
            b.reason
        )
    })
}

/// Guards 5, 7 and 8: the ones that depend on time and on other rollbacks.
fn timing_guards(
    policy: &Policy,
    service: &str,
    past: &[PastRollback],
    block: Option<&Block>,
    now: i64,
) -> Option<String> {
    if let Some(reason) = blocked(block, now) {
        return Some(reason);
    }
    let executed = past
        .iter()
        .filter(|p| p.service == service && p.state.executed());
    if let Some(last) = executed.clone().map(|p| p.at).max()
        && now - last < policy.cooldown_ms
    {
        return Some(format!(
            "cooldown: a rollback of {service} ran {} s ago (cooldown {} s)",
            (now - last) / 1000,
            policy.cooldown_ms / 1000
        ));
    }
    let in_window = executed.filter(|p| now - p.at < policy.per_ms).count();
    if in_window >= policy.max_rollbacks as usize {
        return Some(format!(
            "{in_window} rollbacks of {service} within {} s, the most allowed is {}",
            policy.per_ms / 1000,
            policy.max_rollbacks
        ));
    }
    None
}

/// Decides what to do about `candidate` after `trigger`.
pub fn decide(
    policy: &Policy,
    trigger: &Trigger,
    candidate: &Candidate<'_>,
    past: &[PastRollback],
    block: Option<&Block>,
    now: i64,
) -> Decision {
    if policy.mode == Mode::Off {
        return Decision::Nothing;
    }
    if past
        .iter()
        .any(|p| p.deployment_id == candidate.deployment_id)
    {
        return Decision::Nothing;
    }
    let skip = |reason: String| Decision::Record {
        state: State::Skipped,
        reason,
    };
    if candidate.is_rollback {
        return skip(format!(
            "deployment {} is itself a rollback; rollbacks are never rolled back",
            candidate.deployment_id
        ));
    }
    if !policy
        .environments
        .iter()
        .any(|e| e == candidate.environment)
    {
        return skip(format!(
            "environment {:?} is not one where rollbacks are allowed ({})",
            candidate.environment,
            policy.environments.join(", ")
        ));
    }
    if let Some(reason) = blocked(block, now) {
        return skip(reason);
    }
    if let Trigger::VerificationInconclusive { .. } = trigger {
        return Decision::Record {
            state: State::Paused,
            reason: format!("{}; paused instead of rolling back", trigger.reason()),
        };
    }
    if let Some(reason) = timing_guards(policy, candidate.service, past, block, now) {
        return skip(reason);
    }
    match policy.mode {
        Mode::Off => Decision::Nothing,
        Mode::DryRun => Decision::Record {
            state: State::DryRun,
            reason: format!("{}; dry run: would roll back", trigger.reason()),
        },
        Mode::Approval => Decision::AwaitApproval {
            expires_at: now + policy.approval_timeout_ms,
        },
        Mode::Auto => Decision::Execute,
    }
}

/// Whether an approval given at `now` may run the rollback: `Err` with the reason otherwise.
pub fn approve(
    policy: &Policy,
    service: &str,
    state: State,
    expires_at: Option<i64>,
    past: &[PastRollback],
    block: Option<&Block>,
    now: i64,
) -> Result<(), String> {
    if state != State::AwaitingApproval {
        return Err(format!(
            "the rollback is {}, not awaiting approval",
            state.as_str()
        ));
    }
    if expires_at.is_some_and(|e| e <= now) {
        return Err("the approval window has expired".to_owned());
    }
    match timing_guards(policy, service, past, block, now) {
        Some(reason) => Err(reason),
        None => Ok(()),
    }
}

/// A rollback as recorded: decided, awaiting approval, run, or skipped with its reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RollbackRecord {
    pub id: i64,
    pub deployment_id: String,
    pub service: String,
    pub environment: String,
    pub version: String,
    #[serde(default)]
    pub previous_version: Option<String>,
    #[serde(default)]
    pub incident_id: Option<i64>,
    pub trigger: Trigger,
    pub reason: String,
    pub mode: Mode,
    pub state: State,
    #[serde(with = "crate::incident::time::rfc3339")]
    pub created_at: i64,
    #[serde(with = "crate::incident::time::rfc3339")]
    pub updated_at: i64,
    #[serde(default, with = "crate::incident::time::rfc3339_opt")]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub approved_by: Option<String>,
    #[serde(default)]
    pub hooks: Vec<super::hooks::HookResult>,
    /// The deployment recorded for the rollback (with `rollback_of` set).
    #[serde(default)]
    pub rollback_deployment_id: Option<String>,
}

impl RollbackRecord {
    pub fn past(&self) -> PastRollback {
        PastRollback {
            deployment_id: self.deployment_id.clone(),
            service: self.service.clone(),
            state: self.state,
            at: self.updated_at.min(self.created_at.max(self.updated_at)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn policy(mode: Mode) -> Policy {
        Policy {
            mode,
            environments: vec!["prod".into()],
            cooldown_ms: 30 * MIN,
            max_rollbacks: 2,
            per_ms: 24 * 60 * MIN,
            approval_timeout_ms: 15 * MIN,
        }
    }

    fn failed() -> Trigger {
        Trigger::VerificationFailed {
            summary: "errors".into(),
        }
    }

    fn candidate<'a>(id: &'a str, env: &'a str, is_rollback: bool) -> Candidate<'a> {
        Candidate {
            deployment_id: id,
            service: "api",
            environment: env,
            is_rollback,
        }
    }

    fn past(id: &str, state: State, at: i64) -> PastRollback {
        PastRollback {
            deployment_id: id.into(),
            service: "api".into(),
            state,
            at,
        }
    }

    fn state_of(d: &Decision) -> Option<State> {
        match d {
            Decision::Record { state, .. } => Some(*state),
            _ => None,
        }
    }

    #[test]
    fn modes() {
        let c = candidate("d1", "prod", false);
        assert_eq!(
            decide(&policy(Mode::Off), &failed(), &c, &[], None, 0),
            Decision::Nothing
        );
        assert_eq!(
            state_of(&decide(&policy(Mode::DryRun), &failed(), &c, &[], None, 0)),
            Some(State::DryRun)
        );
        assert_eq!(
            decide(&policy(Mode::Approval), &failed(), &c, &[], None, 0),
            Decision::AwaitApproval {
                expires_at: 15 * MIN
            }
        );
        assert_eq!(
            decide(&policy(Mode::Auto), &failed(), &c, &[], None, 0),
            Decision::Execute
        );
    }

    #[test]
    fn a_rollback_is_never_rolled_back() {
        let d = decide(
            &policy(Mode::Auto),
            &failed(),
            &candidate("r1", "prod", true),
            &[],
            None,
            0,
        );
        assert_eq!(state_of(&d), Some(State::Skipped));
    }

    #[test]
    fn only_listed_environments() {
        let d = decide(
            &policy(Mode::Auto),
            &failed(),
            &candidate("d1", "staging", false),
            &[],
            None,
            0,
        );
        assert_eq!(state_of(&d), Some(State::Skipped));
    }

    #[test]
    fn cooldown_per_service() {
        let p = policy(Mode::Auto);
        let history = [past("d0", State::Succeeded, 0)];
        let c = candidate("d1", "prod", false);
        let d = decide(&p, &failed(), &c, &history, None, 10 * MIN);
        assert_eq!(state_of(&d), Some(State::Skipped));
        assert_eq!(
            decide(&p, &failed(), &c, &history, None, 31 * MIN),
            Decision::Execute
        );
        // A skipped or dry-run decision is no rollback: no cooldown.
        let history = [past("d0", State::DryRun, 0)];
        assert_eq!(
            decide(&p, &failed(), &c, &history, None, MIN),
            Decision::Execute
        );
    }

    #[test]
    fn at_most_n_per_window() {
        let p = policy(Mode::Auto);
        let history = [
            past("d0", State::Succeeded, 0),
            past("d1", State::Failed, 60 * MIN),
        ];
        let d = decide(
            &p,
            &failed(),
            &candidate("d2", "prod", false),
            &history,
            None,
            120 * MIN,
        );
        assert_eq!(state_of(&d), Some(State::Skipped));
        // The first one leaves the window after a day.
        let d = decide(
            &p,
            &failed(),
            &candidate("d2", "prod", false),
            &history,
            None,
            24 * 60 * MIN + 1,
        );
        assert_eq!(d, Decision::Execute);
    }

    #[test]
    fn inconclusive_pauses() {
        let t = Trigger::VerificationInconclusive {
            summary: "no data".into(),
        };
        let d = decide(
            &policy(Mode::Auto),
            &t,
            &candidate("d1", "prod", false),
            &[],
            None,
            0,
        );
        assert_eq!(state_of(&d), Some(State::Paused));
    }

    #[test]
    fn a_maintenance_block_stops_everything_until_it_ends() {
        let block = Block {
            until: 60 * MIN,
            reason: "database migration".into(),
            by: "user:ann".into(),
        };
        let c = candidate("d1", "prod", false);
        let d = decide(
            &policy(Mode::Auto),
            &failed(),
            &c,
            &[],
            Some(&block),
            10 * MIN,
        );
        assert_eq!(state_of(&d), Some(State::Skipped));
        assert_eq!(
            decide(
                &policy(Mode::Auto),
                &failed(),
                &c,
                &[],
                Some(&block),
                60 * MIN
            ),
            Decision::Execute
        );
    }

    #[test]
    fn a_second_trigger_for_the_same_deployment_does_nothing() {
        let history = [past("d1", State::AwaitingApproval, 0)];
        let t = Trigger::Incident { incident_id: 4 };
        assert_eq!(
            decide(
                &policy(Mode::Auto),
                &t,
                &candidate("d1", "prod", false),
                &history,
                None,
                MIN
            ),
            Decision::Nothing
        );
    }

    #[test]
    fn approvals_recheck_the_guards() {
        let p = policy(Mode::Approval);
        assert!(
            approve(
                &p,
                "api",
                State::AwaitingApproval,
                Some(15 * MIN),
                &[],
                None,
                MIN
            )
            .is_ok()
        );
        assert!(
            approve(
                &p,
                "api",
                State::AwaitingApproval,
                Some(15 * MIN),
                &[],
                None,
                15 * MIN
            )
            .is_err()
        );
        assert!(approve(&p, "api", State::DryRun, None, &[], None, MIN).is_err());
        let history = [past("d0", State::Succeeded, 0)];
        assert!(
            approve(
                &p,
                "api",
                State::AwaitingApproval,
                Some(15 * MIN),
                &history,
                None,
                MIN
            )
            .is_err()
        );
    }
}
