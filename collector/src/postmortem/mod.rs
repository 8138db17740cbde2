//! Post-mortem export of an incident (pure): the data the collector gathered (`Input`) rendered
//! as JSON (a versioned schema), Markdown (for GitHub) and one self-contained HTML file.
//!
//! The structure follows the Google SRE book's example post-mortem. The renderers land with
//! the post-mortem export; these are the inputs the collector gathers for them.

use crate::incident::deployment::Deployment;
use crate::incident::{Incident, LinkKind, TimelineEntry};
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
