//! What a reload (SIGHUP, `systemctl reload`) changes in a running agent. Pure: the reload
//! task in `lib.rs` reads the file and hands the result to the tasks.
//!
//! A reload re-reads `agent.yaml` (with the same command-line overrides) and validates it as
//! `validate` does; a file that does not load changes nothing. Otherwise:
//!
//! - Applied now: where and how data is shipped (`exporter.endpoint`, `protocol`, `timeout`,
//!   `token_file`, `tls`: a new export client, used from the next delivery attempt; what is
//!   spooled is delivered to the new endpoint), the token and TLS files of the relay and
//!   `/metrics` listeners (and whether they speak TLS: each connection reads the newest), and
//!   all of `host_metrics` (the collector is rebuilt, so utilisation ratios, which need two
//!   readings, start again at the next collection).
//! - Fixed until a restart: listen addresses, the spool (`exporter.queue`), the batch size,
//!   the retry policy, the drain timeout and the relay's body limit. A reload that finds one of
//!   these changed keeps the running value and logs a warning naming it.

use crate::config::Config;

/// The settings a reload found changed, by their names in the configuration file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Applied by the reload.
    pub applied: Vec<&'static str>,
    /// Changed in the file, but in force only after a restart; the running values stay.
    pub restart_required: Vec<&'static str>,
}

/// Compares the configuration in force with a freshly loaded one.
pub fn changes(running: &Config, fresh: &Config) -> Changes {
    let (a, b) = (running, fresh);
    let (ea, eb) = (&a.exporter, &b.exporter);
    let mut out = Changes::default();
    let mut live = |name: &'static str, changed: bool| {
        if changed {
            out.applied.push(name);
        }
    };
    live("exporter.endpoint", ea.endpoint != eb.endpoint);
    live("exporter.protocol", ea.protocol != eb.protocol);
    live("exporter.timeout", ea.timeout != eb.timeout);
    live("exporter.token_file", ea.token_file != eb.token_file);
    live("exporter.tls", ea.tls != eb.tls);
    live("relay.tls", a.relay.tls != b.relay.tls);
    live("relay.token_file", a.relay.token_file != b.relay.token_file);
    live("telemetry.tls", a.telemetry.tls != b.telemetry.tls);
    live(
        "telemetry.token_file",
        a.telemetry.token_file != b.telemetry.token_file,
    );
    live("host_metrics", a.host_metrics != b.host_metrics);
    let mut restart = |name: &'static str, changed: bool| {
        if changed {
            out.restart_required.push(name);
        }
    };
    restart("exporter.queue", ea.queue != eb.queue);
    restart(
        "exporter.max_batch_items",
        ea.max_batch_items != eb.max_batch_items,
    );
    restart("exporter.retry", ea.retry != eb.retry);
    restart(
        "exporter.drain_timeout",
        ea.drain_timeout != eb.drain_timeout,
    );
    restart(
        "relay.grpc_listen",
        a.relay.grpc_listen != b.relay.grpc_listen,
    );
    restart(
        "relay.http_listen",
        a.relay.http_listen != b.relay.http_listen,
    );
    restart(
        "relay.max_request_bytes",
        a.relay.max_request_bytes != b.relay.max_request_bytes,
    );
    restart("telemetry.listen", a.telemetry.listen != b.telemetry.listen);
    out
}

/// `running` with the settings of `fresh` that a reload applies; the others keep their
/// running values.
pub fn apply(running: &Config, fresh: &Config) -> Config {
    let mut next = running.clone();
    next.warnings = fresh.warnings.clone();
    next.exporter.endpoint = fresh.exporter.endpoint.clone();
    next.exporter.protocol = fresh.exporter.protocol;
    next.exporter.timeout = fresh.exporter.timeout;
    next.exporter.token_file = fresh.exporter.token_file.clone();
    next.exporter.tls = fresh.exporter.tls.clone();
    next.relay.tls = fresh.relay.tls.clone();
    next.relay.token_file = fresh.relay.token_file.clone();
    next.telemetry.tls = fresh.telemetry.tls.clone();
    next.telemetry.token_file = fresh.telemetry.token_file.clone();
    next.host_metrics = fresh.host_metrics.clone();
    next
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    fn config(yaml: &str) -> Config {
        Config::from_yaml_str(yaml).unwrap()
    }

    #[test]
    fn the_same_file_changes_nothing() {
        let shipped = include_str!("../../packaging/agent.yaml");
        assert_eq!(
            changes(&config(shipped), &config(shipped)),
            Changes::default()
        );
    }

    #[test]
    fn live_settings_apply_and_the_others_wait_for_a_restart() {
        let running = config("exporter:\n  endpoint: http://127.0.0.1:4317\n");
        let fresh = config(
            "exporter:\n  endpoint: http://10.0.0.2:4317\n  max_batch_items: 10\nhost_metrics:\n  interval: 5s\nrelay:\n  grpc_listen: 127.0.0.1:5317\n",
        );
        let c = changes(&running, &fresh);
        assert_eq!(c.applied, vec!["exporter.endpoint", "host_metrics"]);
        assert_eq!(
            c.restart_required,
            vec!["exporter.max_batch_items", "relay.grpc_listen"]
        );
        let next = apply(&running, &fresh);
        assert_eq!(next.exporter.endpoint, fresh.exporter.endpoint);
        assert_eq!(next.host_metrics.interval, Duration::from_secs(5));
        assert_eq!(
            next.exporter.max_batch_items,
            running.exporter.max_batch_items
        );
        assert_eq!(next.relay.grpc_listen, running.relay.grpc_listen);
        let again = changes(&next, &fresh);
        assert!(again.applied.is_empty());
        assert_eq!(again.restart_required, c.restart_required);
    }
}
