//! Memory family: `system.memory.usage`, `system.memory.utilization` and
//! `system.paging.usage` from `/proc/meminfo`.
//!
//! States follow the hostmetrics receiver. `used` is computed as free(1) does:
//! `MemTotal - MemFree - Buffers - Cached - SReclaimable`, so `used + free + buffered + cached +
//! slab_reclaimable = MemTotal`; `slab_unreclaimable` is part of `used` and reported for
//! detail (summing over `state` therefore over-counts it).

use super::otlp::{Desc, Kind, MetricBuilder, Stamp, kv};
use opentelemetry_proto::tonic::metrics::v1::Metric;

/// The `/proc/meminfo` fields the agent uses, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemInfo {
    pub total: Option<u64>,
    pub free: Option<u64>,
    pub buffers: Option<u64>,
    pub cached: Option<u64>,
    pub sreclaimable: Option<u64>,
    pub sunreclaim: Option<u64>,
    pub swap_total: Option<u64>,
    pub swap_free: Option<u64>,
}

/// Parses `/proc/meminfo`; returns the figures and the number of malformed lines among the
/// ones it needs. Never panics.
pub fn parse_meminfo(text: &str) -> (MemInfo, u32) {
    let mut m = MemInfo::default();
    let mut errors = 0;
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let slot = match key {
            "MemTotal" => &mut m.total,
            "MemFree" => &mut m.free,
            "Buffers" => &mut m.buffers,
            "Cached" => &mut m.cached,
            "SReclaimable" => &mut m.sreclaimable,
            "SUnreclaim" => &mut m.sunreclaim,
            "SwapTotal" => &mut m.swap_total,
            "SwapFree" => &mut m.swap_free,
            _ => continue,
        };
        let mut parts = rest.split_ascii_whitespace();
        let value = parts.next().and_then(|v| v.parse::<u64>().ok());
        let mult = match parts.next() {
            Some("kB") => 1024,
            None => 1,
            Some(_) => 0,
        };
        match value {
            Some(v) if mult != 0 => *slot = Some(v.saturating_mul(mult)),
            _ => errors += 1,
        }
    }
    (m, errors)
}

const USAGE: Desc = Desc {
    name: "system.memory.usage",
    unit: "By",
    description: "Bytes of memory in use, by state.",
    kind: Kind::UpDown,
};
const UTILIZATION: Desc = Desc {
    name: "system.memory.utilization",
    unit: "1",
    description: "Fraction of memory in use, by state.",
    kind: Kind::Gauge,
};
const PAGING: Desc = Desc {
    name: "system.paging.usage",
    unit: "By",
    description: "Bytes of swap space in use, by state.",
    kind: Kind::UpDown,
};

/// `(state, bytes)` pairs of the memory states available in `m`; empty when `MemTotal` or
/// `MemFree` is missing.
pub fn memory_states(m: &MemInfo) -> Vec<(&'static str, u64)> {
    let (Some(total), Some(free)) = (m.total, m.free) else {
        return Vec::new();
    };
    let buffers = m.buffers.unwrap_or(0);
    let cached = m.cached.unwrap_or(0);
    let sreclaimable = m.sreclaimable.unwrap_or(0);
    let used = total
        .saturating_sub(free)
        .saturating_sub(buffers)
        .saturating_sub(cached)
        .saturating_sub(sreclaimable);
    let mut out = vec![("used", used), ("free", free)];
    if let Some(b) = m.buffers {
        out.push(("buffered", b));
    }
    if let Some(c) = m.cached {
        out.push(("cached", c));
    }
    if let Some(s) = m.sreclaimable {
        out.push(("slab_reclaimable", s));
    }
    if let Some(s) = m.sunreclaim {
        out.push(("slab_unreclaimable", s));
    }
    out
}

/// Appends the memory and paging metrics to `out`.
pub fn metrics(m: &MemInfo, stamp: Stamp, out: &mut Vec<Metric>) {
    let states = memory_states(m);
    let mut usage = MetricBuilder::with_capacity(USAGE, stamp, states.len());
    let mut util = MetricBuilder::with_capacity(UTILIZATION, stamp, states.len());
    let total = m.total.unwrap_or(0);
    for (state, bytes) in &states {
        usage.int(vec![kv("state", *state)], *bytes);
        if total > 0 {
            util.double(vec![kv("state", *state)], *bytes as f64 / total as f64);
        }
    }
    usage.finish_into(out);
    util.finish_into(out);

    if let (Some(st), Some(sf)) = (m.swap_total, m.swap_free) {
        let mut paging = MetricBuilder::with_capacity(PAGING, stamp, 2);
        paging.int(vec![kv("state", "used")], st.saturating_sub(sf));
        paging.int(vec![kv("state", "free")], sf);
        paging.finish_into(out);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MEMINFO: &str = "MemTotal:        8000000 kB
MemFree:         1000000 kB
MemAvailable:    5000000 kB
Buffers:          200000 kB
Cached:          3000000 kB
SwapCached:            0 kB
SwapTotal:       2000000 kB
SwapFree:        1500000 kB
SReclaimable:     300000 kB
SUnreclaim:       100000 kB
HugePages_Total:       0
";

    #[test]
    fn parses_and_derives_states() {
        let (m, errors) = parse_meminfo(MEMINFO);
        assert_eq!(errors, 0);
        assert_eq!(m.total, Some(8_000_000 * 1024));
        assert_eq!(m.sunreclaim, Some(100_000 * 1024));
        let s = memory_states(&m);
        let get = |k: &str| s.iter().find(|(n, _)| *n == k).unwrap().1;
        assert_eq!(get("used"), 3_500_000 * 1024);
        assert_eq!(
            get("used") + get("free") + get("buffered") + get("cached") + get("slab_reclaimable"),
            m.total.unwrap()
        );
    }

    #[test]
    fn paging_and_utilization() {
        let (m, _) = parse_meminfo(MEMINFO);
        let mut out = Vec::new();
        metrics(
            &m,
            Stamp {
                start_ns: 1,
                now_ns: 2,
            },
            &mut out,
        );
        let names: Vec<_> = out.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "system.memory.usage",
                "system.memory.utilization",
                "system.paging.usage"
            ]
        );
    }

    #[test]
    fn malformed_input_is_counted() {
        let (m, errors) = parse_meminfo("MemTotal: lots kB\nMemFree: 1 MB\ngarbage\n\n");
        assert_eq!(errors, 2);
        assert_eq!(m, MemInfo::default());
        assert!(memory_states(&m).is_empty());
        let mut out = Vec::new();
        metrics(
            &m,
            Stamp {
                start_ns: 0,
                now_ns: 0,
            },
            &mut out,
        );
        assert!(out.is_empty());
    }
}
