//! The service manager's view of the collector (a systemd `Type=notify` unit, see
//! `systemd/redline-collector.service`). `main.rs` calls [`ready`] once `bind` has opened the
//! store and bound every listener, so `systemctl start` returns only when the collector
//! accepts connections; [`stopping`] when shutdown starts; and spawns [`watchdog`], which
//! pings systemd's watchdog only after the store's writer thread answered a round trip
//! ([`Store::ping`]). The notifications and the watchdog loop are `redline_common::systemd`.

pub use redline_common::systemd::{ready, stopping};

use crate::store::Store;

/// Pings the watchdog while the store's writer answers; returns at once when systemd asked
/// for no watchdog. Runs until aborted (`main.rs` aborts it when shutdown starts).
pub async fn watchdog(store: Store) {
    redline_common::systemd::watchdog("store writer", || {
        let store = store.clone();
        async move { store.ping().await.is_ok() }
    })
    .await;
}
