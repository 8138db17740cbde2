//! Uptime family: `system.uptime` (seconds since boot, a gauge) from `/proc/uptime`.

use super::otlp::{Desc, Kind, MetricBuilder, Stamp};
use opentelemetry_proto::tonic::metrics::v1::Metric;

/// Parses the first field of `/proc/uptime`.
pub fn parse_uptime(text: &str) -> Option<f64> {
    text.split_ascii_whitespace()
        .next()?
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
}

const UPTIME: Desc = Desc {
    name: "system.uptime",
    unit: "s",
    description: "Seconds since the host booted.",
    kind: Kind::Gauge,
};

/// Appends `system.uptime` to `out`.
pub fn metrics(seconds: f64, stamp: Stamp, out: &mut Vec<Metric>) {
    let mut b = MetricBuilder::with_capacity(UPTIME, stamp, 1);
    b.double(Vec::new(), seconds);
    b.finish_into(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse_uptime("350735.47 234388.90\n"), Some(350735.47));
        assert_eq!(parse_uptime("x 1"), None);
        assert_eq!(parse_uptime("-1 1"), None);
        assert_eq!(parse_uptime(""), None);
    }
}
