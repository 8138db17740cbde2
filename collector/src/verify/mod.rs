//! Post-deploy verification: after a deployment finishes, each configured indicator's samples
//! in an analysis window after it are compared with a baseline window before it (Mann-Whitney
//! U after IQR outlier removal, with a confidence and an effect-size floor), repeatedly through
//! the analysis window; `failure_limit` consecutive failures make the verdict `fail`. Too few
//! samples or no data is `inconclusive`, never a pass and never a fail.
//!
//! - `stats` (pure): Mann-Whitney U, IQR filtering, summaries.
//! - `judge` (pure): one analysis of one indicator, and the verdict over a run of analyses.
//! - `rollback` (pure): the guards that decide whether a failed deployment is rolled back.

pub mod cli;
pub mod hooks;
pub mod judge;
pub mod rollback;
pub mod stats;
pub mod task;

use serde::{Deserialize, Serialize};

/// Which way an indicator gets worse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    HigherIsWorse,
    LowerIsWorse,
}

/// The outcome of one analysis of one indicator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    Inconclusive,
}

/// Descriptive statistics of one window's samples (after outlier removal).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Samples before outlier removal.
    pub raw_count: usize,
    /// Samples used (after removing IQR outliers).
    pub count: usize,
    pub median: Option<f64>,
    pub mean: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// One analysis of one indicator of one deployment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub deployment_id: String,
    pub indicator: String,
    pub query: String,
    pub direction: Direction,
    /// When the analysis ran (Unix ms).
    #[serde(with = "crate::incident::time::rfc3339")]
    pub at: i64,
    /// The n-th analysis of this indicator for this deployment (from 1).
    pub sequence: u32,
    pub baseline: Summary,
    pub analysis: Summary,
    /// One-sided p-value of the Mann-Whitney U test that the analysis window is worse.
    pub p_value: Option<f64>,
    /// Relative change of the median in the worse direction: (analysis − baseline) / |baseline|
    /// for higher-is-worse, the opposite for lower-is-worse; absolute change when the
    /// baseline median is 0.
    pub effect: Option<f64>,
    pub outcome: Outcome,
    /// Consecutive failures including this one.
    pub consecutive_failures: u32,
    pub reason: String,
}
