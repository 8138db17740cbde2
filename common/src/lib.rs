#![forbid(unsafe_code)]
//! What the agent and the collector share, so each rule is written once: the service
//! manager's side of a `Type=notify` unit (`systemd`), the OTLP specification's retry rules
//! and the `google.rpc` messages that carry a retry delay (`retry`), and the report of what a
//! configuration reload changed (`reload`), and the Prometheus names of OTLP metrics and
//! attributes (`naming`), and TLS client pieces (`tls`). Nothing here knows either program's
//! configuration or state; each takes what it needs as arguments.

pub mod naming;
pub mod reload;
pub mod retry;
pub mod systemd;
pub mod tls;
