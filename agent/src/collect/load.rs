//! Load family: `system.cpu.load_average.1m`, `.5m` and `.15m` from `/proc/loadavg`.

use super::otlp::{Desc, Kind, MetricBuilder, Stamp};
use opentelemetry_proto::tonic::metrics::v1::Metric;

/// Parses the first three fields of `/proc/loadavg`. `None` on malformed input.
pub fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut f = text.split_ascii_whitespace().map(str::parse::<f64>);
    match (f.next(), f.next(), f.next()) {
        (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => Some([a, b, c]),
        _ => None,
    }
}

const NAMES: [(&str, &str); 3] = [
    (
        "system.cpu.load_average.1m",
        "Average number of runnable and uninterruptible tasks over 1 minute.",
    ),
    (
        "system.cpu.load_average.5m",
        "Average number of runnable and uninterruptible tasks over 5 minutes.",
    ),
    (
        "system.cpu.load_average.15m",
        "Average number of runnable and uninterruptible tasks over 15 minutes.",
    ),
];

/// Appends the three load-average gauges to `out`.
pub fn metrics(load: [f64; 3], stamp: Stamp, out: &mut Vec<Metric>) {
    for ((name, description), value) in NAMES.iter().zip(load) {
        let desc = Desc {
            name,
            unit: "{thread}",
            description,
            kind: Kind::Gauge,
        };
        let mut b = MetricBuilder::with_capacity(desc, stamp, 1);
        b.double(Vec::new(), value);
        b.finish_into(out);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            parse_loadavg("0.52 0.58 0.59 1/467 12345\n"),
            Some([0.52, 0.58, 0.59])
        );
        assert_eq!(parse_loadavg("0.52 x 0.59"), None);
        assert_eq!(parse_loadavg(""), None);
    }

    #[test]
    fn three_gauges() {
        let mut out = Vec::new();
        metrics(
            [1.0, 2.0, 3.0],
            Stamp {
                start_ns: 0,
                now_ns: 1,
            },
            &mut out,
        );
        assert_eq!(out.len(), 3);
        assert_eq!(out[2].name, "system.cpu.load_average.15m");
        assert_eq!(out[2].unit, "{thread}");
    }
}
