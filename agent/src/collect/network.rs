//! Network family: `system.network.io`, `system.network.packets`, `system.network.errors`
//! and `system.network.dropped` from `/proc/net/dev` (read directly: one small file, cheaper
//! than sysinfo), attributes `device` and `direction` (`receive` / `transmit`).
//!
//! `lo` is reported by default (as node_exporter does); `host_metrics.exclude_network_devices`
//! skips interfaces by name or `prefix*`.

use super::otlp::{Desc, Kind, MetricBuilder, Stamp, kv};
use crate::config::matches_name;
use opentelemetry_proto::tonic::metrics::v1::Metric;

/// One interface line of `/proc/net/dev` (the fields the agent reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetDev<'a> {
    pub name: &'a str,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// Parses `/proc/net/dev` lazily, skipping the two header lines; `Err(())` for a malformed
/// interface line.
pub fn parse_net_dev(text: &str) -> impl Iterator<Item = Result<NetDev<'_>, ()>> {
    text.lines()
        .filter(|l| l.contains(':') && !l.contains('|'))
        .map(|line| {
            // Old kernels print "eth0:123" without a space, so split on the colon.
            let (name, rest) = line.split_once(':').ok_or(())?;
            let mut n = [0u64; 16];
            let mut f = rest.split_ascii_whitespace();
            for slot in &mut n {
                *slot = f.next().ok_or(())?.parse().map_err(|_| ())?;
            }
            Ok(NetDev {
                name: name.trim(),
                rx_bytes: n[0],
                rx_packets: n[1],
                rx_errors: n[2],
                rx_dropped: n[3],
                tx_bytes: n[8],
                tx_packets: n[9],
                tx_errors: n[10],
                tx_dropped: n[11],
            })
        })
}

const IO: Desc = Desc {
    name: "system.network.io",
    unit: "By",
    description: "Bytes received and transmitted by each network interface.",
    kind: Kind::Counter,
};
const PACKETS: Desc = Desc {
    name: "system.network.packets",
    unit: "{packet}",
    description: "Packets received and transmitted by each network interface.",
    kind: Kind::Counter,
};
const ERRORS: Desc = Desc {
    name: "system.network.errors",
    unit: "{error}",
    description: "Receive and transmit errors of each network interface.",
    kind: Kind::Counter,
};
const DROPPED: Desc = Desc {
    name: "system.network.dropped",
    unit: "{packet}",
    description: "Packets dropped on receive and transmit by each network interface.",
    kind: Kind::Counter,
};

/// Appends the network metrics for `text` (the contents of `/proc/net/dev`) to `out`; returns
/// the number of malformed lines.
pub fn metrics(text: &str, exclude: &[String], stamp: Stamp, out: &mut Vec<Metric>) -> u32 {
    let mut errors = 0;
    let mut io = MetricBuilder::new(IO, stamp);
    let mut packets = MetricBuilder::new(PACKETS, stamp);
    let mut errs = MetricBuilder::new(ERRORS, stamp);
    let mut dropped = MetricBuilder::new(DROPPED, stamp);
    for d in parse_net_dev(text) {
        let Ok(d) = d else {
            errors += 1;
            continue;
        };
        if matches_name(exclude, d.name) {
            continue;
        }
        let attrs = |dir: &str| vec![kv("device", d.name), kv("direction", dir)];
        io.int(attrs("receive"), d.rx_bytes);
        io.int(attrs("transmit"), d.tx_bytes);
        packets.int(attrs("receive"), d.rx_packets);
        packets.int(attrs("transmit"), d.tx_packets);
        errs.int(attrs("receive"), d.rx_errors);
        errs.int(attrs("transmit"), d.tx_errors);
        dropped.int(attrs("receive"), d.rx_dropped);
        dropped.int(attrs("transmit"), d.tx_dropped);
    }
    for b in [io, packets, errs, dropped] {
        b.finish_into(out);
    }
    errors
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0:123456789 9876 1 2 0 0 0 5 987654321 8765 3 4 0 0 0 0
";

    #[test]
    fn parses_both_layouts() {
        let v: Vec<_> = parse_net_dev(NET_DEV).collect::<Result<_, _>>().unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].name, "lo");
        assert_eq!(v[1].name, "eth0");
        assert_eq!(v[1].rx_bytes, 123456789);
        assert_eq!(v[1].rx_dropped, 2);
        assert_eq!(v[1].tx_bytes, 987654321);
        assert_eq!(v[1].tx_dropped, 4);
    }

    #[test]
    fn metrics_and_exclusion() {
        let mut out = Vec::new();
        let errors = metrics(
            NET_DEV,
            &["lo".into()],
            Stamp {
                start_ns: 0,
                now_ns: 1,
            },
            &mut out,
        );
        assert_eq!(errors, 0);
        assert_eq!(out.len(), 4);
        let Some(opentelemetry_proto::tonic::metrics::v1::metric::Data::Sum(s)) = &out[0].data
        else {
            panic!()
        };
        assert_eq!(s.data_points.len(), 2);
        assert!(s.is_monotonic);
    }

    #[test]
    fn malformed_lines_are_counted() {
        let mut out = Vec::new();
        let errors = metrics(
            "eth0: 1 2 3\nx: a b\n",
            &[],
            Stamp {
                start_ns: 0,
                now_ns: 1,
            },
            &mut out,
        );
        assert_eq!(errors, 2);
        assert!(out.is_empty());
    }
}
