//! Rule files in Prometheus' format: loading with `file:line:column` errors, templates,
//! evaluation, and promtool's unit-test format.
//!
//! Modules in reading order:
//! - `file`: the loader. `load_paths` reads files and directories and returns the groups that
//!   loaded plus an error for everything else (one bad rule or file never blocks the others).
//! - `template`: the Go-template subset of alert labels and annotations.
//! - `eval`: pure evaluation of one rule's query result: recorded samples, alert elements for
//!   the alert state machine, the `ALERTS`/`ALERTS_FOR_STATE` series; and an in-memory group
//!   driver (`eval_group_in_memory`) that writes results back as Prometheus does.
//! - `series`: promtool's expanding notation for input series (`1+2x3 _ stale`).
//! - `unittest`: promtool's rule unit tests (`rules test`), run on the in-memory driver.
//! - `cli`: the `rules check` and `rules test` commands' output.
//!
//! Who calls what: the collector's rule manager loads groups with `file::load_paths`,
//! evaluates each rule's expression through `query::Engine::instant_expr`, and hands the value
//! to `eval::record_samples` or `eval::eval_alerting`; nothing here does I/O except reading
//! rule and test files, and nothing reads the clock.

pub mod cli;
pub mod eval;
pub mod file;
pub mod series;
pub mod template;
pub mod unittest;
pub(crate) mod yaml;

pub use eval::{
    AlertingOutcome, GroupState, MemoryStorage, RuleEvalError, RuleFailure, alert_elements,
    alerts_series, eval_alerting, eval_group_in_memory, record_samples,
};
pub use file::{
    Loaded, Rule, RuleError, RuleGroup, RuleKind, format_duration, load_file, load_paths,
    parse_duration, parse_file,
};
