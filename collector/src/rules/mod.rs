//! Rule files in Prometheus' format: loading with file:line:column errors, templates, and
//! evaluation. Grows with the rules issue.

pub mod template;
