//! Relay: OTLP receivers for applications on this host (gRPC on 4317, HTTP on 4318 by
//! default), so they can point their SDK at `localhost` and let the agent ship their traces,
//! metrics and logs with its on-disk spool and retries.
//!
//! Both servers decode the request, then hand the payload to the exporter through
//! [`RelayState::accept`], and answer only once it is durable in the spool (written and
//! fdatasync'ed). A request the spool cannot take (larger than the whole spool, or a disk
//! error) is answered UNAVAILABLE (gRPC, with `RetryInfo`) or 503 with `Retry-After` (HTTP), so
//! the application's exporter keeps the data and retries; the refusal is counted. (A full
//! spool makes room by dropping its oldest data instead, see [`crate::export::spool`].) Data is relayed
//! unchanged (no host attributes are added).
//!
//! With `relay.token_file`, a request without the right `authorization: Bearer <token>` is
//! answered 401 / UNAUTHENTICATED before it is queued (counted in
//! `redline_agent_unauthenticated_total`); with `relay.tls`, both listeners speak TLS (see
//! [`crate::listen`]).
//!
//! Lifecycle: [`crate::Agent::run`] spawns [`grpc::serve`] and [`http::serve`] on listeners
//! bound by [`crate::bind`]; on shutdown they stop accepting connections and finish in-flight
//! requests, bounded by the drain deadline.

pub mod grpc;
pub mod http;

use std::sync::Arc;
use std::time::Duration;

use crate::export::batch::Payload;
use crate::export::{Admission, QueueHandle};
use crate::listen::Gate;
use crate::telemetry::{RejectReason, RelayProtocol, Telemetry};

/// How long applications are told to wait when the spool cannot take their request.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Why a relayed request was not accepted (after it decoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The spool cannot take it (too large, or a disk error): retry later.
    QueueFull,
    /// The agent is shutting down: retry later (possibly elsewhere).
    ShuttingDown,
}

/// What both relay servers share. Held in an `Arc` by every connection; holds a queue handle,
/// which the exporter closes on shutdown (then [`RelayState::accept`] answers `ShuttingDown`).
#[derive(Debug)]
pub struct RelayState {
    pub queue: QueueHandle,
    pub telemetry: Arc<Telemetry>,
    /// Largest accepted body, after decompression.
    pub max_request_bytes: usize,
    /// Bearer token checks of the gRPC and the HTTP listener (one token, `relay.token_file`;
    /// two gates so refusals are counted per listener).
    pub grpc_gate: Gate,
    pub http_gate: Gate,
}

impl RelayState {
    /// Offers a decoded payload to the export queue and counts the result.
    pub async fn accept(&self, payload: Payload, protocol: RelayProtocol) -> Result<(), Refusal> {
        let signal = payload.signal();
        let items = payload.items() as u64;
        match self.queue.offer_relay(payload).await {
            Admission::Accepted => {
                self.telemetry
                    .relay_received(signal, protocol)
                    .increment(items);
                Ok(())
            }
            Admission::QueueFull => {
                self.telemetry
                    .relay_rejected(RejectReason::QueueFull)
                    .increment(1);
                Err(Refusal::QueueFull)
            }
            Admission::Closed => {
                self.telemetry
                    .relay_rejected(RejectReason::ShuttingDown)
                    .increment(1);
                Err(Refusal::ShuttingDown)
            }
        }
    }
}
