//! End-to-end tests: a collector and an agent running in this process on `127.0.0.1:0`, fed
//! by this host's metrics and by the real OpenTelemetry Python SDK, read back through the
//! collector's Prometheus- and Jaeger-shaped HTTP API, with both `/metrics` outputs checked by
//! `promtool`. One test binary (modules below) so the workspace links it once.
//!
//! External tools (`REDLINE_PYTHON` with the SDK, `promtool`) are installed by `.ci/run`; see
//! `support` for what happens when they are missing.

mod agent;
mod host_metrics;
mod outage;
mod promtool;
mod sdk_signals;
mod secure;
mod support;
mod traces;
