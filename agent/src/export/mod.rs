//! Export: on-disk spool → batcher → OTLP client, with retries.
//!
//! [`Exporter`] is the one task that owns the [`spool::Spool`]. Inputs (the collect task and
//! the relay handlers) hold a [`QueueHandle`], a cheap clone of the sending side of a bounded
//! `mpsc` channel of [`Command`]s; the exporter answers relay offers through a `oneshot` once
//! the batch is durable on disk (written and fdatasync'ed), so the relay acknowledges an
//! application only when a crash can no longer lose its data. Offers that arrive together are
//! written together and share one fdatasync (group commit).
//!
//! The task's loop does four things concurrently: admit offers (never blocked by the
//! network), keep exactly one delivery in flight (the oldest spooled records of one signal,
//! merged by [`spool::Spool::next_batch`]), drop records older than `exporter.queue.max_age`
//! (checked every [`EXPIRY_CHECK`]), and watch for the close signal. A delivery ([`deliver`])
//! retries retryable failures with exponential backoff and full jitter (or the server's
//! RetryInfo / Retry-After) for as long as it takes: the records stay in the spool until the
//! delivery is over, and leave it only when delivered, refused permanently (bad data),
//! evicted as the oldest when the spool is full, or expired. An authentication failure keeps
//! the data and retries every `retry_max_backoff` (see [`retry`]). One delivery at a time
//! keeps the order (oldest first) and bounds the load on a recovering collector.
//!
//! The client is read from a `watch` channel at every attempt: a reload (SIGHUP, see
//! [`crate::Agent::reloader`]) publishes a client built with fresh tokens and certificates,
//! and a delivery waiting out a backoff retries at once with it. Nothing spooled is touched
//! by a reload.
//!
//! Shutdown: [`crate::Agent::run`] stops the inputs first, then sends the drain deadline on the
//! close channel. The exporter closes its receiver (late offers fail fast and the relay answers
//! UNAVAILABLE), spools what was already sent, keeps delivering until the spool is empty or
//! the deadline passes, and returns; what is left stays on disk for the next start. Only
//! offers still unread in the channel at the deadline are lost (reason `shutdown`).

pub mod batch;
pub mod client;
pub mod retry;
pub mod spool;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::config::{ExporterConfig, RetryConfig};
use crate::telemetry::{DropReason, Outcome, Telemetry};
use batch::{Batch, Origin, Payload};
use client::{Client, FailureReason};
use spool::{DropCause, Dropped, Recovery, Spool};

/// Capacity of the command channel in front of the exporter. Offers are handled in
/// microseconds plus one fdatasync per group, so this only smooths bursts.
const COMMAND_CAPACITY: usize = 128;

/// Most offers written under one fdatasync.
const GROUP_COMMIT: usize = 64;

/// How often spooled records are checked against `exporter.queue.max_age` (also checked at
/// every offer).
pub const EXPIRY_CHECK: Duration = Duration::from_secs(10);

/// Messages to the exporter task.
#[derive(Debug)]
pub enum Command {
    /// Spool this batch. `reply` is `Some` for relayed data (the relay waits for the answer)
    /// and `None` for host metrics (fire and forget).
    Offer {
        batch: Batch,
        reply: Option<oneshot::Sender<Admission>>,
    },
    /// Answer once the exporter's loop reaches this command: the systemd watchdog's liveness
    /// probe (see [`QueueHandle::ping`]).
    Ping(oneshot::Sender<()>),
}

/// The answer to a relay offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Durable in the spool; the application may consider it delivered.
    Accepted,
    /// The spool cannot take it (larger than the whole spool, or a disk error); the
    /// application should retry later.
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
    /// spool is full the oldest data is evicted (counted), and after shutdown the request is
    /// discarded.
    pub async fn offer_host(&self, request: ExportMetricsServiceRequest) {
        let batch = Batch::new(Payload::Metrics(request), Origin::Host);
        let _ = self.tx.send(Command::Offer { batch, reply: None }).await;
    }

    /// Offers relayed data and waits until it is durably spooled or refused.
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

    /// Round-trips a no-op through the exporter task's loop; true once it answered. A loop
    /// that is gone, closed for shutdown or stuck (in a spool write or sync, or behind a full
    /// queue that never drains) does not answer, and the watchdog then withholds its ping.
    pub async fn ping(&self) -> bool {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Command::Ping(reply)).await.is_ok() && answer.await.is_ok()
    }
}

/// Runs blocking file I/O (the spool's writes and fdatasyncs, a few milliseconds) on the
/// exporter task without stalling the runtime: on a multi-thread runtime the worker hands its
/// other tasks (relay, `/metrics`) to another worker meanwhile.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Drop episodes, so that a full spool, expiring data or a failing disk is logged once when
/// it starts and once when it ends, not per batch (the counters have every drop).
#[derive(Debug, Default)]
struct Episodes {
    /// Items dropped in the current episode of [`DropCause::Full`], `TooOld`, `Corrupt`
    /// (by index); `None` when no episode is going on.
    items: [Option<u64>; 3],
}

impl Episodes {
    fn index(c: DropCause) -> usize {
        match c {
            DropCause::Full => 0,
            DropCause::TooOld => 1,
            DropCause::Corrupt => 2,
        }
    }

    fn note(&mut self, d: &Dropped, spool: &Spool) {
        let slot = &mut self.items[Self::index(d.cause)];
        if slot.is_none() {
            match d.cause {
                DropCause::Full => tracing::warn!(
                    max_bytes = spool.max_bytes(),
                    "export spool is full; dropping the oldest data until it has room (counted in redline_agent_dropped_total{{reason=\"spool_full\"}})"
                ),
                DropCause::TooOld => tracing::warn!(
                    "spooled data passed exporter.queue.max_age; dropping it (counted in redline_agent_dropped_total{{reason=\"max_age\"}})"
                ),
                DropCause::Corrupt => tracing::warn!(
                    "unreadable spool records; dropping them (counted in redline_agent_dropped_total{{reason=\"spool_error\"}})"
                ),
            }
        }
        *slot = Some(slot.unwrap_or(0) + d.items);
    }

    fn end(&mut self, cause: DropCause) {
        if let Some(items) = self.items[Self::index(cause)].take() {
            let what = match cause {
                DropCause::Full => "export spool has room again",
                DropCause::TooOld => "no more spooled data past exporter.queue.max_age",
                DropCause::Corrupt => "spool records readable again",
            };
            tracing::info!(dropped_items = items, "{what}");
        }
    }
}

fn drop_reason(c: DropCause) -> DropReason {
    match c {
        DropCause::Full => DropReason::SpoolFull,
        DropCause::TooOld => DropReason::MaxAge,
        DropCause::Corrupt => DropReason::SpoolError,
    }
}

/// The exporter task's state.
pub struct Exporter {
    /// Offers from the inputs; closed by this task when the close signal arrives.
    rx: mpsc::Receiver<Command>,
    spool: Spool,
    /// The current client; the sender is held by the agent's reload task.
    client: watch::Receiver<Client>,
    retry: RetryConfig,
    max_batch_items: usize,
    drain_timeout: Duration,
    telemetry: Arc<Telemetry>,
    episodes: Episodes,
    /// Set while spool writes fail, so the failure is logged once per episode.
    write_failing: bool,
}

/// A delivery in progress (see [`deliver`]) and the last spool id it covers.
struct InFlight {
    last_id: u64,
    fut: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Exporter {
    /// Creates the exporter over an opened spool (see [`Spool::open`]) and the handle inputs
    /// use. `recovery` is what opening the spool found, counted and logged here.
    pub fn new(
        cfg: &ExporterConfig,
        spool: Spool,
        recovery: &Recovery,
        client: watch::Receiver<Client>,
        telemetry: Arc<Telemetry>,
    ) -> (QueueHandle, Exporter) {
        let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
        telemetry.spool_max_bytes.set(spool.max_bytes() as f64);
        telemetry
            .spool_truncated
            .increment(recovery.truncated.len() as u64);
        if recovery.records > 0 {
            tracing::info!(
                records = recovery.records,
                bytes = recovery.bytes,
                "resuming delivery of spooled data, oldest first"
            );
        }
        let exporter = Exporter {
            rx,
            spool,
            client,
            retry: cfg.retry,
            max_batch_items: cfg.max_batch_items,
            drain_timeout: cfg.drain_timeout,
            telemetry,
            episodes: Episodes::default(),
            write_failing: false,
        };
        exporter.publish_depth();
        (QueueHandle { tx }, exporter)
    }

    fn publish_depth(&self) {
        self.telemetry.spool_records.set(self.spool.len() as f64);
        self.telemetry.spool_bytes.set(self.spool.bytes() as f64);
    }

    fn count_drops(&mut self, dropped: &[Dropped]) {
        for d in dropped {
            self.telemetry
                .dropped(d.signal, drop_reason(d.cause))
                .increment(d.items);
            self.episodes.note(d, &self.spool);
        }
    }

    fn note_write_failure(&mut self, e: &spool::SpoolError) {
        if !self.write_failing {
            tracing::error!(error = %e, "cannot write the export spool; refusing relayed data (503) and dropping host batches until it works again");
            self.write_failing = true;
        }
    }

    /// Spools `first` and whatever else is waiting (up to [`GROUP_COMMIT`]), makes it durable
    /// with one sync, then answers. Returns true when an eviction cancelled the delivery in
    /// flight.
    fn admit(&mut self, first: Command) -> bool {
        let mut cmds = Vec::new();
        let mut next = Some(first);
        while let Some(cmd) = next.take() {
            match cmd {
                Command::Offer { batch, reply } => cmds.push((batch, reply)),
                // Reaching it is the answer: this loop is alive.
                Command::Ping(reply) => {
                    let _ = reply.send(());
                }
            }
            if cmds.len() < GROUP_COMMIT {
                next = self.rx.try_recv().ok();
            }
        }
        if cmds.is_empty() {
            return false;
        }
        let now = SystemTime::now();
        let mut cancels = false;
        let mut replies: Vec<(Option<oneshot::Sender<Admission>>, Admission)> =
            Vec::with_capacity(cmds.len());
        let mut any_written = false;
        let results = blocking(|| {
            cmds.into_iter()
                .map(|(batch, reply)| {
                    let r = self.spool.append(&batch, now);
                    (batch, reply, r)
                })
                .collect::<Vec<_>>()
        });
        for (batch, reply, r) in results {
            match r {
                Ok(a) => {
                    if a.dropped.is_empty() {
                        self.episodes.end(DropCause::Full);
                    }
                    self.count_drops(&a.dropped);
                    cancels |= a.cancels_inflight;
                    if a.stored {
                        any_written = true;
                        replies.push((reply, Admission::Accepted));
                    } else {
                        if reply.is_none() {
                            // Host data nobody waits for: dropped here. Relay refusals are
                            // counted by the relay, which answers the application.
                            self.telemetry
                                .dropped(batch.signal(), DropReason::SpoolFull)
                                .increment(batch.items as u64);
                        }
                        replies.push((reply, Admission::QueueFull));
                    }
                }
                Err(e) => {
                    self.note_write_failure(&e);
                    if reply.is_none() {
                        self.telemetry
                            .dropped(batch.signal(), DropReason::SpoolError)
                            .increment(batch.items as u64);
                    }
                    replies.push((reply, Admission::QueueFull));
                }
            }
        }
        // Durable before anyone hears "accepted".
        let synced = blocking(|| self.spool.sync());
        match synced {
            Ok(()) => {
                if any_written && self.write_failing {
                    tracing::info!("export spool writes work again");
                    self.write_failing = false;
                }
            }
            Err(e) => {
                // What was written may or may not be on disk: applications retry (a duplicate
                // at worst); host batches stay indexed and are delivered if readable.
                self.note_write_failure(&e);
                for (_, adm) in &mut replies {
                    *adm = Admission::QueueFull;
                }
            }
        }
        let (_, expiry_cancels) = self.expire(now);
        // Gauges first, so whoever hears "accepted" sees them include the batch.
        self.publish_depth();
        for (reply, admission) in replies {
            if let Some(reply) = reply {
                // The application may have gone away; the batch stays spooled regardless.
                let _ = reply.send(admission);
            }
        }
        cancels || expiry_cancels
    }

    /// Drops what passed `max_age`; returns (anything dropped, delivery in flight cancelled).
    fn expire(&mut self, now: SystemTime) -> (bool, bool) {
        let (dropped, cancels) = self.spool.expire(now);
        if dropped.is_empty() {
            self.episodes.end(DropCause::TooOld);
            return (false, false);
        }
        self.count_drops(&dropped);
        if let Err(e) = blocking(|| self.spool.sync()) {
            self.note_write_failure(&e);
        }
        self.publish_depth();
        (true, cancels)
    }

    /// Starts delivering the oldest spooled records, if any.
    fn start_delivery(&mut self) -> Option<InFlight> {
        let max = self.max_batch_items;
        let (taken, dropped) = blocking(|| self.spool.next_batch(max));
        if dropped.is_empty() {
            self.episodes.end(DropCause::Corrupt);
        }
        self.count_drops(&dropped);
        let t = taken?;
        Some(InFlight {
            last_id: t.last_id,
            fut: Box::pin(deliver(
                self.client.clone(),
                t.batch.payload,
                t.batch.items,
                self.retry,
                self.telemetry.clone(),
            )),
        })
    }

    /// Runs until closed and drained (or the drain deadline passes). `close` carries the drain
    /// deadline; if its sender is dropped, the deadline is now + `drain_timeout`.
    pub async fn run(mut self, close: oneshot::Receiver<Instant>) {
        let mut close = Some(close);
        // Set once closing starts; at it, the delivery in flight is abandoned (it stays
        // spooled).
        let mut deadline: Option<Instant> = None;
        // True once `recv` returned `None`: closed and the channel buffer consumed.
        let mut inputs_done = false;
        let mut inflight: Option<InFlight> = None;
        let mut expiry = tokio::time::interval(EXPIRY_CHECK);
        expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if inflight.is_none() {
                inflight = self.start_delivery();
                self.publish_depth();
                if inflight.is_none() && inputs_done {
                    break; // nothing spooled, nothing in flight, nothing more coming: drained
                }
            }
            tokio::select! {
                cmd = self.rx.recv(), if !inputs_done => match cmd {
                    Some(cmd) => {
                        if self.admit(cmd) {
                            // Its oldest records were evicted; the rest is handed out again.
                            inflight = None;
                        }
                    }
                    None => {
                        inputs_done = true;
                        deadline.get_or_insert_with(|| Instant::now() + self.drain_timeout);
                    }
                },
                () = poll_inflight(&mut inflight), if inflight.is_some() => {
                    if let Some(done) = inflight.take() {
                        let acked = blocking(|| self.spool.ack(done.last_id));
                        if let Err(e) = acked {
                            // Delivered but not recorded: sent again after a restart (the
                            // collector drops duplicates).
                            tracing::warn!(error = %e, "cannot record a delivery in the spool");
                        }
                        self.publish_depth();
                    }
                }
                _ = expiry.tick() => {
                    if self.expire(SystemTime::now()).1 {
                        inflight = None;
                    }
                }
                at = async { match close.as_mut() { Some(c) => c.await, None => std::future::pending().await } }, if close.is_some() => {
                    close = None;
                    deadline = Some(at.unwrap_or_else(|_| Instant::now() + self.drain_timeout));
                    // Late offers now fail fast; buffered ones are still received.
                    self.rx.close();
                    tracing::debug!(spooled = self.spool.len(), "exporter draining");
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

    /// At the drain deadline: the delivery in flight stays spooled; offers never read from the
    /// channel are lost (counted with reason `shutdown`; relay handlers see their reply
    /// dropped and answer UNAVAILABLE).
    fn abandon(&mut self, inflight: Option<InFlight>) {
        if inflight.is_some() {
            self.spool.release();
        }
        let mut lost = 0usize;
        while let Ok(cmd) = self.rx.try_recv() {
            let Command::Offer { batch, .. } = cmd else {
                continue;
            };
            self.telemetry
                .dropped(batch.signal(), DropReason::Shutdown)
                .increment(batch.items as u64);
            lost += batch.items;
        }
        if lost > 0 {
            tracing::warn!(
                items = lost,
                "drain deadline passed; dropped offers not yet spooled"
            );
        }
        if !self.spool.is_empty() {
            tracing::info!(
                records = self.spool.len(),
                bytes = self.spool.bytes(),
                "drain deadline passed; undelivered data stays spooled for the next start"
            );
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

/// Delivers one batch: attempts, classifies, backs off; returns once the batch is delivered
/// (possibly partially rejected) or refused permanently, recording every attempt and the
/// final fate of the items in telemetry. Retryable failures and refused credentials are
/// retried for as long as it takes (the exporter cancels the future if the spool drops the
/// records meanwhile). Each attempt uses the newest client in `client`; a new one (a reload)
/// cuts a backoff short.
pub async fn deliver(
    mut client: watch::Receiver<Client>,
    payload: Payload,
    items: usize,
    policy: RetryConfig,
    telemetry: Arc<Telemetry>,
) {
    let signal = payload.signal();
    let mut attempt: u32 = 0;
    let mut failures: u32 = 0;
    let mut auth_refused = false;
    loop {
        let current = client.borrow_and_update().clone();
        match current.export(&payload).await {
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
                if failures > 0 {
                    tracing::info!(
                        signal = signal.as_str(),
                        attempts = failures + 1,
                        "export succeeded after retrying"
                    );
                }
                return;
            }
            Err(e) => {
                // Refused credentials and failed handshakes (unknown CA, expired or refused
                // certificate) are fixed by an operator, not by time: keep the data, retry
                // slowly, and at once after a reload.
                let class = if matches!(
                    e.reason,
                    FailureReason::Unauthenticated | FailureReason::Tls
                ) {
                    retry::Class::Auth
                } else if e.retryable {
                    retry::Class::Retryable
                } else {
                    retry::Class::Permanent
                };
                let outcome = if e.retryable {
                    Outcome::RetryableError
                } else {
                    Outcome::PermanentError
                };
                telemetry.export_request(signal, outcome).increment(1);
                telemetry.export_failure(signal, e.reason).increment(1);
                let unit: f64 = rand::random();
                match retry::next_step(&policy, class, attempt, e.retry_after, unit) {
                    retry::Next::RetryAfter(delay) => {
                        if class == retry::Class::Auth && !auth_refused {
                            auth_refused = true;
                            tracing::error!(signal = signal.as_str(), error = %e, "authentication with the collector failed (token or TLS); data stays spooled and is retried every retry_max_backoff (fix exporter.token_file / exporter.tls, then send SIGHUP)");
                        } else if failures == 0 {
                            tracing::warn!(signal = signal.as_str(), error = %e, "export failed; retrying until delivered (the data is spooled)");
                        } else {
                            tracing::debug!(signal = signal.as_str(), attempt, ?delay, error = %e, "export retry failed");
                        }
                        failures = failures.saturating_add(1);
                        let reloaded = async {
                            if client.changed().await.is_err() {
                                // No reloads any more: wait out the backoff.
                                std::future::pending::<()>().await;
                            }
                        };
                        tokio::select! {
                            () = tokio::time::sleep(delay) => attempt = attempt.saturating_add(1),
                            () = reloaded => {
                                tracing::info!(signal = signal.as_str(), "credentials reloaded; retrying now");
                                attempt = 0;
                            }
                        }
                    }
                    retry::Next::GiveUpPermanent => {
                        telemetry
                            .dropped(signal, DropReason::PermanentError)
                            .increment(items as u64);
                        tracing::warn!(signal = signal.as_str(), items, error = %e, "export failed permanently; dropped");
                        return;
                    }
                }
            }
        }
    }
}
