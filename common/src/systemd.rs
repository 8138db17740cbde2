//! The service manager's side of a systemd `Type=notify` unit (`systemd/*.service`): each
//! program calls [`ready`] once its listeners are bound and its state is open, so
//! `systemctl start` returns only when it accepts connections; [`stopping`] when shutdown
//! starts; and spawns [`watchdog`] with a probe of the one task whose stall matters (the
//! collector's store writer, the agent's exporter). The watchdog sends `WATCHDOG=1` at half of
//! `WatchdogSec` only after the probe answered, so a wedged task, or a wedged runtime, stops
//! the pings and systemd restarts the program (`Restart=on-failure`).
//!
//! Without `NOTIFY_SOCKET` (not under systemd) every call does nothing; without
//! `WATCHDOG_USEC` (no `WatchdogSec=`) [`watchdog`] returns at once.

use std::future::Future;
use std::time::Duration;

use sd_notify::NotifyState;

/// Tells the service manager the program is up (`READY=1`).
pub fn ready() {
    send(&NotifyState::Ready);
}

/// Tells the service manager shutdown has started (`STOPPING=1`). systemd stops enforcing the
/// watchdog from here on; `TimeoutStopSec=` bounds the drain instead.
pub fn stopping() {
    send(&NotifyState::Stopping);
}

fn send(state: &NotifyState<'_>) {
    // A failed notification is not fatal: systemd then times the start out (or restarts on a
    // missed watchdog), which is the right outcome for a socket that stopped working.
    if let Err(e) = sd_notify::notify(std::slice::from_ref(state)) {
        tracing::warn!(error = %e, state = %state, "cannot notify the service manager");
    }
}

/// Pings the watchdog while `probe` answers true; returns at once when systemd asked for no
/// watchdog. Runs until aborted (each program aborts it when shutdown starts). `probed` names
/// what the probe checks, for the log ("store writer", "exporter").
pub async fn watchdog<F>(probed: &'static str, probe: impl FnMut() -> F)
where
    F: Future<Output = bool>,
{
    let Some(timeout) = sd_notify::watchdog_enabled() else {
        return;
    };
    let period = timeout / 2;
    tracing::debug!(?period, "systemd watchdog enabled");
    run_watchdog(period, probed, probe, || send(&NotifyState::Watchdog)).await;
}

/// The watchdog loop with its probe and its ping passed in, so tests drive it with paused
/// time. Every `period` it waits up to `period` for `probe` and pings only if the probe
/// answered true in time. A probe that hangs delays the next one: missed ticks are not made
/// up, since a late burst of pings would hide exactly the stall the watchdog is for.
async fn run_watchdog<F>(
    period: Duration,
    probed: &'static str,
    mut probe: impl FnMut() -> F,
    mut ping: impl FnMut(),
) -> !
where
    F: Future<Output = bool>,
{
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Set while pings are withheld, so the problem is logged once per episode.
    let mut withholding = false;
    loop {
        ticks.tick().await;
        let answered = tokio::time::timeout(period, probe()).await;
        if matches!(answered, Ok(true)) {
            if withholding {
                tracing::info!("{probed} answers again; watchdog pings resumed");
                withholding = false;
            }
            ping();
        } else if !withholding {
            let why = match answered {
                Err(_) => "did not answer in time",
                Ok(_) => "has stopped",
            };
            tracing::error!(
                ?period,
                "{probed} {why}; withholding the systemd watchdog ping (systemd restarts the service after WatchdogSec without one)"
            );
            withholding = true;
        }
    }
}

/// True when stderr is the stream systemd connected to the journal. `JOURNAL_STREAM` holds
/// its `device:inode` (systemd.exec(5)); a shell started from a service inherits the variable
/// with stderr elsewhere (a terminal, a pipe), where text is what a person wants.
pub fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    // A duplicate of fd 2, so dropping the `File` leaves stderr open.
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    let Ok(meta) = std::fs::File::from(fd).metadata() else {
        return false;
    };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;

    /// Pings follow a live probe at the period, stop while it hangs, and resume after.
    #[tokio::test(start_paused = true)]
    async fn pings_only_while_the_probe_answers() {
        let pings = Arc::new(AtomicUsize::new(0));
        let wedged = Arc::new(AtomicBool::new(false));
        let (p, w) = (pings.clone(), wedged.clone());
        let task = tokio::spawn(run_watchdog(
            Duration::from_secs(15),
            "probe",
            move || {
                let w = w.clone();
                async move {
                    if w.load(Ordering::SeqCst) {
                        std::future::pending::<()>().await;
                    }
                    true
                }
            },
            move || {
                p.fetch_add(1, Ordering::SeqCst);
            },
        ));
        // Ticks at 0, 15 and 30 s.
        tokio::time::sleep(Duration::from_secs(31)).await;
        assert_eq!(pings.load(Ordering::SeqCst), 3);
        wedged.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert_eq!(pings.load(Ordering::SeqCst), 3, "pinged while wedged");
        wedged.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(31)).await;
        assert!(pings.load(Ordering::SeqCst) >= 4, "pings did not resume");
        task.abort();
    }

    /// A probe that answers false (the probed task is gone) never pings.
    #[tokio::test(start_paused = true)]
    async fn a_stopped_task_never_pings() {
        let pings = Arc::new(AtomicUsize::new(0));
        let p = pings.clone();
        let task = tokio::spawn(run_watchdog(
            Duration::from_secs(15),
            "probe",
            || async { false },
            move || {
                p.fetch_add(1, Ordering::SeqCst);
            },
        ));
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert_eq!(pings.load(Ordering::SeqCst), 0);
        task.abort();
    }
}
