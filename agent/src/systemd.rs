//! The service manager's view of the agent (a systemd `Type=notify` unit, see
//! `systemd/redline-agent.service`). `main.rs` calls [`ready`] once `bind` has opened the
//! spool and bound the relay and `/metrics` listeners, so `systemctl start` returns only when
//! the agent accepts connections, and [`stopping`] when shutdown starts. [`Agent::run`]
//! spawns [`watchdog`] and aborts it when shutdown starts: it pings systemd's watchdog only
//! after the exporter task's loop answered a round trip ([`QueueHandle::ping`]), so a dead or
//! wedged exporter (the one task that owns the spool) gets the agent restarted. The
//! notifications and the watchdog loop are `redline_common::systemd`.
//!
//! [`Agent::run`]: crate::Agent::run

pub use redline_common::systemd::{ready, stderr_is_journal, stopping};

use crate::export::QueueHandle;

/// Pings the watchdog while the exporter's loop answers; returns at once when systemd asked
/// for no watchdog. Runs until aborted ([`Agent::run`] aborts it when shutdown starts).
///
/// [`Agent::run`]: crate::Agent::run
pub async fn watchdog(queue: QueueHandle) {
    redline_common::systemd::watchdog("exporter", || {
        let queue = queue.clone();
        async move { queue.ping().await }
    })
    .await;
}
