//! CPU family: `system.cpu.time` and `system.cpu.utilization` from `/proc/stat`.
//!
//! [`parse_stat`] also extracts the non-CPU lines of `/proc/stat` (boot time, forks, running and
//! blocked tasks) that the `process` family and the cumulative start time need, so the file is
//! read once per cycle. The previous cycle's per-CPU ticks live in the [`super::HostCollector`]
//! and are swapped with the current ones, so no buffer is reallocated in steady state.

use super::otlp::{Desc, Kind, MetricBuilder, Stamp, kv};
use opentelemetry_proto::tonic::metrics::v1::Metric;

/// CPU states in `/proc/stat` column order, as `state` attribute values. `guest` and
/// `guest_nice` are already included in `user` and `nice`, so they are not reported.
pub const STATES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

/// Ticks per state of one CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    /// CPU number (`cpuN`).
    pub cpu: u32,
    /// Ticks in [`STATES`] order.
    pub ticks: [u64; 8],
}

/// The non-CPU figures of `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatSummary {
    /// Boot time, Unix seconds (`btime`).
    pub btime: Option<u64>,
    /// Forks since boot (`processes`).
    pub processes: Option<u64>,
    /// Runnable tasks (`procs_running`).
    pub procs_running: Option<u64>,
    /// Tasks blocked on I/O (`procs_blocked`).
    pub procs_blocked: Option<u64>,
    /// Malformed lines seen.
    pub errors: u32,
}

/// Parses `/proc/stat` into `cpus` (cleared first; per-CPU lines only, not the `cpu` total) and
/// a [`StatSummary`]. Never panics; malformed lines are skipped and counted.
pub fn parse_stat(text: &str, cpus: &mut Vec<CpuTimes>) -> StatSummary {
    cpus.clear();
    let mut s = StatSummary::default();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(key) = fields.next() else { continue };
        if let Some(n) = key.strip_prefix("cpu") {
            if n.is_empty() {
                continue; // the all-CPU total line
            }
            let Ok(cpu) = n.parse::<u32>() else {
                s.errors += 1;
                continue;
            };
            let mut t = CpuTimes { cpu, ticks: [0; 8] };
            let mut ok = true;
            let mut seen = 0;
            for (slot, f) in t.ticks.iter_mut().zip(&mut fields) {
                match f.parse::<u64>() {
                    Ok(v) => *slot = v,
                    Err(_) => ok = false,
                }
                seen += 1;
            }
            // Kernels since 2.6.11 have at least 8 columns; older ones lack steal and are fine
            // with zeros, but fewer than 4 (idle) is not a CPU line we understand.
            if ok && seen >= 4 {
                cpus.push(t);
            } else {
                s.errors += 1;
            }
            continue;
        }
        let slot = match key {
            "btime" => &mut s.btime,
            "processes" => &mut s.processes,
            "procs_running" => &mut s.procs_running,
            "procs_blocked" => &mut s.procs_blocked,
            _ => continue,
        };
        match fields.next().map(str::parse::<u64>) {
            Some(Ok(v)) => *slot = Some(v),
            _ => s.errors += 1,
        }
    }
    s
}

const CPU_TIME: Desc = Desc {
    name: "system.cpu.time",
    unit: "s",
    description: "Seconds each logical CPU spent on each mode.",
    kind: Kind::Counter,
};

const CPU_UTILIZATION: Desc = Desc {
    name: "system.cpu.utilization",
    unit: "1",
    description: "Fraction of time each logical CPU spent on each mode over the last interval.",
    kind: Kind::Gauge,
};

/// Name of CPU `n` as the `cpu` attribute value (`cpu0`, ...).
fn cpu_name(n: u32) -> String {
    format!("cpu{n}")
}

/// `system.cpu.time` from the current ticks; `ticks_per_second` is USER_HZ.
pub fn time_metric(cpus: &[CpuTimes], ticks_per_second: f64, stamp: Stamp) -> Option<Metric> {
    let mut b = MetricBuilder::with_capacity(CPU_TIME, stamp, cpus.len() * STATES.len());
    for c in cpus {
        for (state, ticks) in STATES.iter().zip(c.ticks) {
            b.double(
                vec![kv("cpu", cpu_name(c.cpu)), kv("state", *state)],
                ticks as f64 / ticks_per_second,
            );
        }
    }
    b.finish()
}

/// Per-CPU, per-state share of the interval between `prev` and `cur`. CPUs missing from `prev`
/// (hot-plugged) or whose counters went backwards are skipped.
pub fn utilization(prev: &[CpuTimes], cur: &[CpuTimes]) -> Vec<(u32, [f64; 8])> {
    let mut out = Vec::with_capacity(cur.len());
    for c in cur {
        let Some(p) = prev.iter().find(|p| p.cpu == c.cpu) else {
            continue;
        };
        let mut delta = [0u64; 8];
        let mut backwards = false;
        for ((d, now), before) in delta.iter_mut().zip(c.ticks).zip(p.ticks) {
            match now.checked_sub(before) {
                Some(v) => *d = v,
                None => backwards = true,
            }
        }
        // In u128: eight deltas near u64::MAX (a corrupt or hostile stat file) must not
        // overflow the sum.
        let total: u128 = delta.iter().map(|d| u128::from(*d)).sum();
        if backwards || total == 0 {
            continue;
        }
        out.push((c.cpu, delta.map(|d| d as f64 / total as f64)));
    }
    out
}

/// `system.cpu.utilization`, or `None` on the first cycle (no previous reading).
pub fn utilization_metric(prev: &[CpuTimes], cur: &[CpuTimes], stamp: Stamp) -> Option<Metric> {
    let shares = utilization(prev, cur);
    let mut b = MetricBuilder::with_capacity(CPU_UTILIZATION, stamp, shares.len() * STATES.len());
    for (cpu, s) in shares {
        for (state, v) in STATES.iter().zip(s) {
            b.double(vec![kv("cpu", cpu_name(cpu)), kv("state", *state)], v);
        }
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn utilization_survives_tick_deltas_that_sum_past_u64() {
        // Found by the proc_parsers fuzz target.
        let prev = vec![CpuTimes {
            cpu: 0,
            ticks: [0; 8],
        }];
        let cur = vec![CpuTimes {
            cpu: 0,
            ticks: [u64::MAX, 1, 0, 0, 0, 0, 0, 0],
        }];
        let shares = utilization(&prev, &cur);
        assert_eq!(shares.len(), 1);
        let sum: f64 = shares[0].1.iter().sum();
        assert!((sum - 1.0).abs() < 1e-9, "{shares:?}");
    }

    const STAT: &str = "cpu  10132153 290696 3084719 46828483 16683 0 25195 0 175628 0
cpu0 1393280 32966 572056 13343292 6130 0 17875 0 23933 0
cpu1 1335212 30393 383930 13358546 3524 0 2355 0 23933 0
intr 199292262 47 0 0 0 0 0 0 0 1 0
ctxt 441154823
btime 1700000000
processes 1234567
procs_running 3
procs_blocked 1
softirq 12345 1 2 3
";

    #[test]
    fn parses_cpus_and_summary() {
        let mut cpus = Vec::new();
        let s = parse_stat(STAT, &mut cpus);
        assert_eq!(cpus.len(), 2);
        assert_eq!(cpus[0].cpu, 0);
        assert_eq!(cpus[0].ticks[0], 1393280);
        assert_eq!(cpus[1].ticks[3], 13358546);
        assert_eq!(s.btime, Some(1_700_000_000));
        assert_eq!(s.processes, Some(1_234_567));
        assert_eq!(s.procs_running, Some(3));
        assert_eq!(s.procs_blocked, Some(1));
        assert_eq!(s.errors, 0);
    }

    #[test]
    fn malformed_lines_are_counted_not_fatal() {
        let mut cpus = vec![CpuTimes::default(); 3];
        let s = parse_stat(
            "cpuX 1 2 3 4\ncpu0 1 2 x 4\ncpu1 1 2\ncpu2 1 2 3 4\nbtime\n",
            &mut cpus,
        );
        assert_eq!(cpus.len(), 1);
        assert_eq!(cpus[0].cpu, 2);
        assert_eq!(s.errors, 4);
        assert_eq!(s.btime, None);
        let s = parse_stat("", &mut cpus);
        assert!(cpus.is_empty());
        assert_eq!(s, StatSummary::default());
    }

    #[test]
    fn utilization_from_deltas() {
        let prev = [CpuTimes {
            cpu: 0,
            ticks: [100, 0, 100, 800, 0, 0, 0, 0],
        }];
        let cur = [
            CpuTimes {
                cpu: 0,
                ticks: [150, 0, 125, 825, 0, 0, 0, 0],
            },
            CpuTimes {
                cpu: 1,
                ticks: [1; 8],
            },
        ];
        let u = utilization(&prev, &cur);
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].0, 0);
        assert!((u[0].1[0] - 0.5).abs() < 1e-9);
        assert!((u[0].1[2] - 0.25).abs() < 1e-9);
        assert!((u[0].1[3] - 0.25).abs() < 1e-9);
        // Counters going backwards (e.g. a hot-unplugged CPU coming back) give no point.
        assert!(utilization(&cur, &prev).is_empty());
        assert!(
            utilization_metric(
                &[],
                &cur,
                Stamp {
                    start_ns: 0,
                    now_ns: 1
                }
            )
            .is_none()
        );
    }

    #[test]
    fn time_metric_shape() {
        let mut cpus = Vec::new();
        parse_stat(STAT, &mut cpus);
        let m = time_metric(
            &cpus,
            100.0,
            Stamp {
                start_ns: 5,
                now_ns: 9,
            },
        )
        .unwrap();
        assert_eq!(m.name, "system.cpu.time");
        assert_eq!(m.unit, "s");
        let Some(opentelemetry_proto::tonic::metrics::v1::metric::Data::Sum(sum)) = m.data else {
            panic!("not a sum");
        };
        assert!(sum.is_monotonic);
        assert_eq!(sum.data_points.len(), 16);
        assert_eq!(sum.data_points[0].start_time_unix_nano, 5);
    }
}
