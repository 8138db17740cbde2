//! Relay: OTLP receivers for applications on this host (gRPC on 4317, HTTP on 4318 by
//! default), so they can point their SDK at `localhost` and let the agent ship their traces,
//! metrics and logs with its queue and retries.
//!
//! Both servers decode the request, then hand the payload to the export queue through
//! [`RelayState::accept`], and answer only once the queue has accepted it. A full queue is
//! answered UNAVAILABLE (gRPC, with `RetryInfo`) or 503 with `Retry-After` (HTTP), so the
//! application's exporter keeps the data and retries; the refusal is counted. Data is relayed
//! unchanged (no host attributes are added).
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
use crate::telemetry::{RejectReason, RelayProtocol, Telemetry};

/// How long applications are told to wait when the queue is full.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Why a relayed request was not accepted (after it decoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Export queue full: retry later.
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
