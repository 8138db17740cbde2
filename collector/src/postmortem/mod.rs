//! Post-mortem export of an incident (pure): the data the collector gathered (`Input`) rendered
//! as JSON (a versioned schema), Markdown (for GitHub) and one self-contained HTML file.
//!
//! The structure follows the Google SRE book's example post-mortem: a header, the key moments
//! and their durations, the timeline, the change that is suspected to have triggered the
//! incident (with its verification), the series that moved first, then the written sections
//! (Summary, Impact, Root causes, Trigger, Resolution, Detection, Action items, Lessons
//! learned). A section is filled from the data where the data says it (the trigger is the
//! suspected deployment, the detection is the alert that opened the incident, the resolution
//! is the rollback or the manual resolution on the timeline) and left as a headed blank
//! (`_To be written._`) otherwise.
//!
//! The API handler (`GET /api/v1/incidents/{id}/postmortem`) gathers the `Input` from the
//! store and calls one of the three renderers. Rendering never does I/O and never reads the
//! clock: `Input::generated_at` is the time the document says it was generated, so the same
//! input always renders to the same bytes.
//!
//! # Key moments and durations
//!
//! - **Impact start** (`Input::impact_start`): the first anomalous sample of the incident's
//!   series, or the start of its first alert; unknown when the caller found neither.
//! - **Detected**: when the incident was opened (`Incident::opened_at`).
//! - **Acknowledged**, **mitigated**, **resolved**: `Incident::acknowledged_at`,
//!   `mitigated_at` and `resolved_at`.
//! - **Time to detect** = detected − impact start (unknown without an impact start).
//! - **Time to acknowledge** = acknowledged − detected.
//! - **Time to mitigate** = mitigated − impact start, or mitigated − detected when the impact
//!   start is unknown.
//! - **Time to resolve** = resolved − impact start, or resolved − detected when the impact
//!   start is unknown.
//! - **Failed deployment recovery time** = `Input::recovery_seconds` as the caller computed it
//!   (DORA's definition: from the failed deployment to its recovery).
//!
//! A duration is unknown when either end is unknown. Durations are not clamped: a negative one
//! means the recorded times disagree, and the document shows it as it is.
//!
//! # Layout
//!
//! - `document`: the content shared by Markdown and HTML, as a small tree of blocks (headings,
//!   paragraphs, lists, tables) holding plain, unescaped text.
//! - `markdown`, `html`: the two renderers of that tree; each escapes every piece of text for
//!   its own syntax. `chart` draws the inline SVG chart of the HTML file.
//! - `json`: the versioned JSON schema (see `render_json`).
//! - `sample`: a rich and a bare `Input` for tests and for the accessibility check
//!   (`collector/tests/postmortem_a11y.rs`).

mod chart;
mod document;
mod html;
mod json;
mod markdown;
#[doc(hidden)]
pub mod sample;
#[cfg(test)]
mod tests;

pub use html::render_html;
pub use json::render_json;
pub use markdown::render_markdown;
#[doc(hidden)]
pub use sample::{sample_input, sample_input_bare};

use crate::incident::deployment::Deployment;
use crate::incident::{EntryKind, Incident, LinkKind, TimelineEntry};
use crate::notify::LabelSet;
use crate::verify::{Analysis, Outcome};

/// A deployment linked to the incident, with its verification.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkedDeployment {
    pub deployment: Deployment,
    pub link: LinkKind,
    /// Verification analyses of the deployment, in time order.
    pub analyses: Vec<Analysis>,
    /// The verification verdict, when one was reached.
    pub verdict: Option<Outcome>,
}

/// A series whose anomaly score rose early: a lead for the root cause.
#[derive(Clone, Debug, PartialEq)]
pub struct Lead {
    /// The scored series' labels (`__name__` is the metric).
    pub series: LabelSet,
    /// When its score first reached the anomaly threshold in the hour before detection (ms).
    pub first_anomalous_at: i64,
    /// Its highest score in that hour.
    pub peak_score: f64,
}

/// The series to chart around the incident.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// What the series is (e.g. the alert's expression or the metric with its labels).
    pub title: String,
    pub unit: String,
    /// (Unix ms, value), in time order.
    pub points: Vec<(i64, f64)>,
}

/// Everything a post-mortem is made of, gathered by the caller.
#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    pub incident: Incident,
    /// The incident's timeline, in time order.
    pub timeline: Vec<TimelineEntry>,
    pub deployments: Vec<LinkedDeployment>,
    /// Ranked: earliest first.
    pub leads: Vec<Lead>,
    pub chart: Option<Chart>,
    /// Impact start: the first anomalous sample of the incident's series, or the start of its
    /// first alert.
    pub impact_start: Option<i64>,
    /// Failed deployment recovery time (s), when a deployment caused the incident and recovered.
    pub recovery_seconds: Option<f64>,
    pub generated_at: i64,
}

/// The version of the JSON document `render_json` writes. A change that removes or renames a
/// field, or changes its meaning, gets a new version; added fields do not.
pub const SCHEMA: &str = "redline.postmortem/v1";

/// The incident's key moments (Unix ms) and the durations between them (ms), as defined in the
/// module documentation. `None` is unknown.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyMoments {
    pub impact_start: Option<i64>,
    /// When the incident was opened.
    pub detected: i64,
    pub acknowledged: Option<i64>,
    pub mitigated: Option<i64>,
    pub resolved: Option<i64>,
    /// Detected − impact start.
    pub time_to_detect_ms: Option<i64>,
    /// Acknowledged − detected.
    pub time_to_acknowledge_ms: Option<i64>,
    /// Mitigated − impact start (or detected).
    pub time_to_mitigate_ms: Option<i64>,
    /// Resolved − impact start (or detected).
    pub time_to_resolve_ms: Option<i64>,
    /// `Input::recovery_seconds`.
    pub failed_deployment_recovery_seconds: Option<f64>,
}

/// One of the key moments, in the order they are listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moment {
    ImpactStart,
    Detected,
    Acknowledged,
    Mitigated,
    Resolved,
}

impl Moment {
    /// Every moment, in the order the documents list them.
    pub const ALL: [Moment; 5] = [
        Moment::ImpactStart,
        Moment::Detected,
        Moment::Acknowledged,
        Moment::Mitigated,
        Moment::Resolved,
    ];

    /// The moment's name in the JSON schema.
    pub fn as_str(self) -> &'static str {
        match self {
            Moment::ImpactStart => "impact_start",
            Moment::Detected => "detected",
            Moment::Acknowledged => "acknowledged",
            Moment::Mitigated => "mitigated",
            Moment::Resolved => "resolved",
        }
    }

    /// The moment's name for people.
    pub fn label(self) -> &'static str {
        match self {
            Moment::ImpactStart => "Impact started",
            Moment::Detected => "Detected",
            Moment::Acknowledged => "Acknowledged",
            Moment::Mitigated => "Mitigated",
            Moment::Resolved => "Resolved",
        }
    }

    /// The milestone a timeline entry of this kind marks, if any.
    pub fn of_entry(kind: EntryKind) -> Option<Moment> {
        match kind {
            EntryKind::Opened => Some(Moment::Detected),
            EntryKind::Acknowledged => Some(Moment::Acknowledged),
            EntryKind::Mitigated => Some(Moment::Mitigated),
            EntryKind::Resolved => Some(Moment::Resolved),
            _ => None,
        }
    }
}

impl KeyMoments {
    /// When `moment` happened, if known.
    pub fn at(&self, moment: Moment) -> Option<i64> {
        match moment {
            Moment::ImpactStart => self.impact_start,
            Moment::Detected => Some(self.detected),
            Moment::Acknowledged => self.acknowledged,
            Moment::Mitigated => self.mitigated,
            Moment::Resolved => self.resolved,
        }
    }

    /// The duration that ends at `moment` (time to detect, acknowledge, mitigate, resolve),
    /// with its name; `None` for the impact start, which ends no duration.
    pub fn duration_to(&self, moment: Moment) -> Option<(&'static str, Option<i64>)> {
        match moment {
            Moment::ImpactStart => None,
            Moment::Detected => Some(("Time to detect", self.time_to_detect_ms)),
            Moment::Acknowledged => Some(("Time to acknowledge", self.time_to_acknowledge_ms)),
            Moment::Mitigated => Some(("Time to mitigate", self.time_to_mitigate_ms)),
            Moment::Resolved => Some(("Time to resolve", self.time_to_resolve_ms)),
        }
    }
}

/// The key moments of the incident and the durations between them (see the module
/// documentation for the definitions).
pub fn key_moments(input: &Input) -> KeyMoments {
    let i = &input.incident;
    let detected = i.opened_at;
    let start = input.impact_start.unwrap_or(detected);
    let since = |from: Option<i64>, to: Option<i64>| Some(to? - from?);
    KeyMoments {
        impact_start: input.impact_start,
        detected,
        acknowledged: i.acknowledged_at,
        mitigated: i.mitigated_at,
        resolved: i.resolved_at,
        time_to_detect_ms: since(input.impact_start, Some(detected)),
        time_to_acknowledge_ms: since(Some(detected), i.acknowledged_at),
        time_to_mitigate_ms: since(Some(start), i.mitigated_at),
        time_to_resolve_ms: since(Some(start), i.resolved_at),
        failed_deployment_recovery_seconds: input.recovery_seconds,
    }
}

/// RFC 3339 in UTC.
fn rfc3339(ms: i64) -> String {
    crate::incident::time::format(ms)
}

/// A duration for people: `1d 2h 3m 4s`, `45s`, `250 ms`, with a leading `-` when negative.
fn human_duration(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    if abs < 1000 {
        return if abs == 0 {
            "0s".to_owned()
        } else {
            format!("{sign}{abs} ms")
        };
    }
    let mut secs = (abs + 500) / 1000;
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= size {
            parts.push(format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    if secs > 0 || parts.is_empty() {
        parts.push(format!("{secs}s"));
    }
    format!("{sign}{}", parts.join(" "))
}

/// A duration in seconds (for `recovery_seconds`), for people.
fn human_seconds(seconds: f64) -> String {
    if seconds.is_finite() && seconds.abs() < 1e12 {
        human_duration((seconds * 1000.0).round() as i64)
    } else {
        "unknown".to_owned()
    }
}

/// A label set as PromQL writes a selector: `name{a="b", c="d"}`.
fn series_name(labels: &LabelSet) -> String {
    let name = labels.get("__name__").map(String::as_str).unwrap_or("");
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    if rest.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{}}}", rest.join(", "))
    }
}

/// Whether a linked deployment is a fix (a rollback, or one that says it fixes the incident)
/// rather than a candidate cause.
fn is_fix(input: &Input, d: &LinkedDeployment) -> bool {
    d.deployment.rollback_of.is_some() || d.deployment.fixes_incident == Some(input.incident.id)
}

fn outcome_str(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "fail",
        Outcome::Inconclusive => "inconclusive",
    }
}

fn link_str(l: LinkKind) -> &'static str {
    match l {
        LinkKind::Suspected => "suspected",
        LinkKind::Confirmed => "confirmed",
    }
}
