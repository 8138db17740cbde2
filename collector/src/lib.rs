#![forbid(unsafe_code)]
//! redline-collector: receives OTLP, stores it durably in SQLite and serves it back in the
//! shapes Prometheus and Jaeger clients speak.
//!
//! Modules in reading order:
//! - `model`: labels, matchers, samples, spans and logs, the vocabulary of the rest.
//! - `store`: the only module with SQL. Writes are committed by one writer thread (group
//!   commit); reads use the shared in-memory index and head plus read-only connections.
//! - `receiver`: OTLP over gRPC and HTTP; `receiver::convert` is the pure translation of OTLP
//!   into store batches (Prometheus' OTLP naming rules).
//! - `query`: evaluation of queries over the store (plain selectors for now), the boundary
//!   PromQL grows behind.
//! - `api`: the HTTP API (Prometheus- and Jaeger-shaped reads), `/metrics`, health.
//! - `config`: the typed, validated configuration.
//! - `telemetry`: the collector's own metrics, logs and spans.
//!
//! Data flow: receiver → convert → store.write (acknowledged after commit) → query/api reads.


pub mod model;
pub mod store;
pub mod receiver;
