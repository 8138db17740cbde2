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

pub use redline_common::reload::Changes;
use redline_common::reload::changed;

use crate::config::Config;

/// Compares the configuration in force with a freshly loaded one.
pub fn changes(running: &Config, fresh: &Config) -> Changes {
    let applied = redline_common::compare!(running, fresh;
        "exporter.endpoint" => |c| &c.exporter.endpoint,
        "exporter.protocol" => |c| c.exporter.protocol,
        "exporter.timeout" => |c| c.exporter.timeout,
        "exporter.token_file" => |c| &c.exporter.token_file,
        "exporter.tls" => |c| &c.exporter.tls,
        "relay.tls" => |c| &c.relay.tls,
        "relay.token_file" => |c| &c.relay.token_file,
        "telemetry.tls" => |c| &c.telemetry.tls,
        "telemetry.token_file" => |c| &c.telemetry.token_file,
        "host_metrics" => |c| &c.host_metrics,
    );
    let restart_required = redline_common::compare!(running, fresh;
        "exporter.queue" => |c| &c.exporter.queue,
        "exporter.max_batch_items" => |c| c.exporter.max_batch_items,
        "exporter.retry" => |c| c.exporter.retry,
        "exporter.drain_timeout" => |c| c.exporter.drain_timeout,
        "relay.grpc_listen" => |c| c.relay.grpc_listen,
        "relay.http_listen" => |c| c.relay.http_listen,
        "relay.max_request_bytes" => |c| c.relay.max_request_bytes,
        "telemetry.listen" => |c| c.telemetry.listen,
    );
    Changes {
        applied: changed(applied),
        restart_required: changed(restart_required),
    }
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
