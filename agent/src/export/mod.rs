//! Export: bounded queue → batcher → OTLP client, with retries.
//!
//! [`Exporter`] is the one task that owns the [`queue::Queue`]. Inputs (the collect task and
//! the relay handlers) hold a [`QueueHandle`], a cheap clone of the sending side of a bounded
//! `mpsc` channel of [`Command`]s; the exporter answers relay offers through a `oneshot`, so
//! the relay acknowledges an application only once its batch is in the queue.
//!
//! The task's loop does three things concurrently: admit offers (never blocked by the
//! network), keep exactly one delivery in flight (the oldest queued batches of one signal,
//! merged by [`queue::Queue::pop_batch`]), and watch for the close signal. A delivery
//! ([`deliver`]) retries retryable failures with exponential backoff and full jitter (or the
//! server's RetryInfo / Retry-After) until `exporter.retry_max_elapsed`, then drops the batch
//! and counts it. One delivery at a time keeps the order of host samples and bounds the load
//! on a recovering collector; the queue absorbs bursts.
//!
//! Shutdown: [`crate::Agent::run`] stops the inputs first, then sends the drain deadline on the
//! close channel. The exporter closes its receiver (late offers fail fast and the relay answers
//! UNAVAILABLE), keeps delivering what is queued until the queue is empty or the deadline
//! passes, counts whatever is left as dropped with reason `shutdown`, and returns.
//!
//! **Spool seam:** a disk spool goes where [`queue::Queue`] is (same five calls, see its doc),
//! and a batch whose delivery gave up with `retries_exhausted` would be spooled instead of
//! dropped. Nothing outside this module changes.

pub mod batch;
pub mod client;
pub mod queue;
pub mod retry;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::config::{ExporterConfig, RetryConfig};
use crate::telemetry::{DropReason, Outcome, Telemetry};
use batch::{Batch, Origin, Payload, Signal};
use client::Client;
use queue::Queue;

/// Capacity of the command channel in front of the exporter. Offers are handled in
/// microseconds, so this only smooths bursts; it does not add buffering worth counting.
const COMMAND_CAPACITY: usize = 128;

/// Messages to the exporter task.
#[derive(Debug)]
pub enum Command {
    /// Queue this batch. `reply` is `Some` for relayed data (the relay waits for the answer)
    /// and `None` for host metrics (fire and forget; evicts older host batches when full).
    Offer {
        batch: Batch,
        reply: Option<oneshot::Sender<Admission>>,
    },
}

/// The answer to a relay offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// In the queue; the application may consider it delivered.
    Accepted,
    /// The queue is full; the application should retry later.
    QueueFull,
    /// The exporter is shutting down or gone.
    Closed,
}

/// The inputs' side of the export queue. Dropping every handle is not required for shutdown
/// (the exporter closes on its own signal), but a dropped handle never delays it.
#[derive(Debug, Clone)]
pub struct QueueHandle {
    tx: mpsc::Sender<Command>,
}

impl QueueHandle {
    /// Offers one host collection. Never fails from the caller's point of view: when the
    /// queue is full older host batches are evicted (counted), and after shutdown the request
    /// is discarded.
    pub async fn offer_host(&self, request: ExportMetricsServiceRequest) {
        let batch = Batch::new(Payload::Metrics(request), Origin::Host);
        let _ = self.tx.send(Command::Offer { batch, reply: None }).await;
    }

    /// Offers relayed data and waits until it is queued or refused.
    pub async fn offer_relay(&self, payload: Payload) -> Admission {
        let (reply, answer) = oneshot::channel();
        let batch = Batch::new(payload, Origin::Relay);
        let cmd = Command::Offer {
            batch,
            reply: Some(reply),
        };
        if self.tx.send(cmd).await.is_err() {
            return Admission::Closed;
        }
        answer.await.unwrap_or(Admission::Closed)
    }
}

/// The exporter task's state.
pub struct Exporter {
    /// Offers from the inputs; closed by this task when the close signal arrives.
    rx: mpsc::Receiver<Command>,
    queue: Queue,
    client: Client,
    retry: RetryConfig,
    max_batch_items: usize,
    drain_timeout: Duration,
    telemetry: Arc<Telemetry>,
}

/// A delivery in progress (see [`deliver`]), with what to count if it is abandoned.
struct InFlight {
    signal: Signal,
    items: usize,
    fut: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Exporter {
    /// Creates the exporter and the handle inputs use. Must run inside a tokio runtime (the
    /// gRPC channel is created lazily there).
    pub fn new(
        cfg: &ExporterConfig,
        telemetry: Arc<Telemetry>,
    ) -> anyhow::Result<(QueueHandle, Exporter)> {
        let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
        let client = Client::new(cfg)?;
        telemetry.queue_capacity.set(cfg.queue_capacity as f64);
        let exporter = Exporter {
            rx,
            queue: Queue::new(cfg.queue_capacity, cfg.queue_max_bytes),
            client,
            retry: cfg.retry,
            max_batch_items: cfg.max_batch_items,
            drain_timeout: cfg.drain_timeout,
            telemetry,
        };
        Ok((QueueHandle { tx }, exporter))
    }

    fn publish_depth(&self) {
        self.telemetry.queue_depth.set(self.queue.len() as f64);
        self.telemetry.queue_bytes.set(self.queue.bytes() as f64);
    }

    fn admit(&mut self, cmd: Command) {
        let Command::Offer { batch, reply } = cmd;
        let offer = self.queue.offer(batch);
        for old in offer.evicted {
            self.telemetry
                .dropped(old.signal(), DropReason::QueueFull)
                .increment(old.items as u64);
        }
        let admission = match offer.rejected {
            None => Admission::Accepted,
            Some(b) => {
                if reply.is_none() {
                    // Host data nobody waits for: dropped here. Relay rejections are counted by
                    // the relay, which answers the application.
                    self.telemetry
                        .dropped(b.signal(), DropReason::QueueFull)
                        .increment(b.items as u64);
                }
                Admission::QueueFull
            }
        };
        if let Some(reply) = reply {
            // The application may have gone away; the batch stays queued regardless.
            let _ = reply.send(admission);
        }
        self.publish_depth();
    }

    /// Runs until closed and drained (or the drain deadline passes). `close` carries the drain
    /// deadline; if its sender is dropped, the deadline is now + `drain_timeout`.
    pub async fn run(mut self, close: oneshot::Receiver<Instant>) {
        let mut close = Some(close);
        // Set once closing starts; after it, whatever is left is dropped.
        let mut deadline: Option<Instant> = None;
        // True once `recv` returned `None`: closed and the channel buffer consumed.
        let mut inputs_done = false;
        let mut inflight: Option<InFlight> = None;
        loop {
            if inflight.is_none() {
                if let Some(b) = self.queue.pop_batch(self.max_batch_items) {
                    inflight = Some(InFlight {
                        signal: b.signal(),
                        items: b.items,
                        fut: Box::pin(deliver(
                            self.client.clone(),
                            b.payload,
                            b.items,
                            self.retry,
                            self.telemetry.clone(),
                        )),
                    });
                    self.publish_depth();
                } else if inputs_done {
                    break; // nothing queued, nothing in flight, nothing more coming: drained
                }
            }
            tokio::select! {
                cmd = self.rx.recv(), if !inputs_done => match cmd {
                    Some(cmd) => self.admit(cmd),
                    None => {
                        inputs_done = true;
                        deadline.get_or_insert_with(|| Instant::now() + self.drain_timeout);
                    }
                },
                () = poll_inflight(&mut inflight), if inflight.is_some() => {
                    inflight = None;
                }
                at = async { match close.as_mut() { Some(c) => c.await, None => std::future::pending().await } }, if close.is_some() => {
                    close = None;
                    deadline = Some(at.unwrap_or_else(|_| Instant::now() + self.drain_timeout));
                    // Late offers now fail fast; buffered ones are still received.
                    self.rx.close();
                    tracing::debug!(queued = self.queue.len(), "exporter draining");
                }
                () = sleep_until_opt(deadline), if deadline.is_some() => {
                    self.abandon(inflight.take());
                    break;
                }
            }
        }
        self.publish_depth();
        tracing::debug!("exporter stopped");
    }

    /// Counts everything still held as dropped with reason `shutdown`.
    fn abandon(&mut self, inflight: Option<InFlight>) {
        let mut lost = 0usize;
        if let Some(f) = inflight {
            self.telemetry
                .dropped(f.signal, DropReason::Shutdown)
                .increment(f.items as u64);
            lost += f.items;
        }
        // Offers still buffered in the channel were never acknowledged to anyone waiting
        // (relay handlers see their reply dropped and answer UNAVAILABLE).
        while let Ok(Command::Offer { batch, .. }) = self.rx.try_recv() {
            self.telemetry
                .dropped(batch.signal(), DropReason::Shutdown)
                .increment(batch.items as u64);
            lost += batch.items;
        }
        for b in self.queue.drain() {
            self.telemetry
                .dropped(b.signal(), DropReason::Shutdown)
                .increment(b.items as u64);
            lost += b.items;
        }
        if lost > 0 {
            tracing::warn!(items = lost, "drain deadline passed; dropped queued data");
        }
    }
}

/// Completes when the in-flight delivery does (pending forever when there is none).
async fn poll_inflight(inflight: &mut Option<InFlight>) {
    match inflight.as_mut() {
        Some(f) => f.fut.as_mut().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Delivers one batch: attempts, classifies, backs off, gives up; records every attempt and
/// the final fate of the items in telemetry.
pub async fn deliver(
    client: Client,
    payload: Payload,
    items: usize,
    policy: RetryConfig,
    telemetry: Arc<Telemetry>,
) {
    let signal = payload.signal();
    let started = Instant::now();
    let mut attempt: u32 = 0;
    loop {
        match client.export(&payload).await {
            Ok(acc) => {
                let rejected = usize::try_from(acc.rejected)
                    .unwrap_or(usize::MAX)
                    .min(items);
                if rejected > 0 || !acc.message.is_empty() {
                    telemetry
                        .export_request(signal, Outcome::PartialSuccess)
                        .increment(1);
                    if rejected > 0 {
                        telemetry
                            .dropped(signal, DropReason::RejectedByCollector)
                            .increment(rejected as u64);
                        tracing::warn!(signal = signal.as_str(), rejected, message = %acc.message, "collector rejected part of an export");
                    }
                } else {
                    telemetry
                        .export_request(signal, Outcome::Success)
                        .increment(1);
                }
                telemetry
                    .exported(signal)
                    .increment((items - rejected) as u64);
                if attempt > 0 {
                    tracing::info!(
                        signal = signal.as_str(),
                        attempts = attempt + 1,
                        "export succeeded after retrying"
                    );
                }
                return;
            }
            Err(e) => {
                let outcome = if e.retryable {
                    Outcome::RetryableError
                } else {
                    Outcome::PermanentError
                };
                telemetry.export_request(signal, outcome).increment(1);
                telemetry.export_failure(signal, e.reason).increment(1);
                let unit: f64 = rand::random();
                match retry::next_step(
                    &policy,
                    e.retryable,
                    attempt,
                    started.elapsed(),
                    e.retry_after,
                    unit,
                ) {
                    retry::Next::RetryAfter(delay) => {
                        if attempt == 0 {
                            tracing::warn!(signal = signal.as_str(), error = %e, "export failed; retrying");
                        } else {
                            tracing::debug!(signal = signal.as_str(), attempt, ?delay, error = %e, "export retry failed");
                        }
                        tokio::time::sleep(delay).await;
                        attempt = attempt.saturating_add(1);
                    }
                    retry::Next::GiveUpPermanent => {
                        telemetry
                            .dropped(signal, DropReason::PermanentError)
                            .increment(items as u64);
                        tracing::warn!(signal = signal.as_str(), items, error = %e, "export failed permanently; dropped");
                        return;
                    }
                    retry::Next::GiveUpExhausted => {
                        telemetry
                            .dropped(signal, DropReason::RetriesExhausted)
                            .increment(items as u64);
                        tracing::warn!(signal = signal.as_str(), items, attempts = attempt + 1, error = %e, "export retries exhausted; dropped");
                        return;
                    }
                }
            }
        }
    }
}
