//! Process family: `system.processes.count` and `system.processes.created`.
//!
//! `status="running"` and `status="blocked"` are the kernel's runnable and I/O-blocked task
//! counts from `/proc/stat` (`procs_running`, `procs_blocked`; these count threads), as the
//! hostmetrics receiver reports on Linux. `status="total"` is the number of processes, from the
//! numeric directories of `/proc`. Because `total` overlaps the other two, summing over
//! `status` is meaningless. `system.processes.created` is `/proc/stat`'s `processes` (forks
//! since boot).

use std::path::Path;

use super::cpu::StatSummary;
use super::otlp::{Desc, Kind, MetricBuilder, Stamp, kv};
use opentelemetry_proto::tonic::metrics::v1::Metric;

/// Counts the processes in a procfs directory (entries whose name is all digits). Reads only
/// directory entries, never a per-process file.
pub fn count_processes(proc_root: &Path) -> std::io::Result<u64> {
    let mut n = 0;
    for entry in std::fs::read_dir(proc_root)? {
        let entry = entry?;
        let name = entry.file_name();
        let b = name.as_encoded_bytes();
        if !b.is_empty() && b.iter().all(u8::is_ascii_digit) {
            n += 1;
        }
    }
    Ok(n)
}

const COUNT: Desc = Desc {
    name: "system.processes.count",
    unit: "{process}",
    description: "Runnable (running) and I/O-blocked (blocked) tasks, and all processes (total).",
    kind: Kind::UpDown,
};
const CREATED: Desc = Desc {
    name: "system.processes.created",
    unit: "{process}",
    description: "Processes and threads created since boot.",
    kind: Kind::Counter,
};

/// Appends the process metrics to `out`.
pub fn metrics(stat: &StatSummary, total: Option<u64>, stamp: Stamp, out: &mut Vec<Metric>) {
    let mut count = MetricBuilder::with_capacity(COUNT, stamp, 3);
    if let Some(v) = stat.procs_running {
        count.int(vec![kv("status", "running")], v);
    }
    if let Some(v) = stat.procs_blocked {
        count.int(vec![kv("status", "blocked")], v);
    }
    if let Some(v) = total {
        count.int(vec![kv("status", "total")], v);
    }
    count.finish_into(out);
    if let Some(v) = stat.processes {
        let mut created = MetricBuilder::with_capacity(CREATED, stamp, 1);
        created.int(Vec::new(), v);
        created.finish_into(out);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn counts_numeric_dirs_only() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["1", "42", "self", "net", "4x"] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        std::fs::write(dir.path().join("stat"), "").unwrap();
        assert_eq!(count_processes(dir.path()).unwrap(), 2);
        assert!(count_processes(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn metrics_shape() {
        let stat = StatSummary {
            processes: Some(10),
            procs_running: Some(2),
            procs_blocked: Some(0),
            ..Default::default()
        };
        let mut out = Vec::new();
        metrics(
            &stat,
            Some(7),
            Stamp {
                start_ns: 0,
                now_ns: 1,
            },
            &mut out,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].name, "system.processes.count");
        assert_eq!(out[1].name, "system.processes.created");
        let mut out = Vec::new();
        metrics(
            &StatSummary::default(),
            None,
            Stamp {
                start_ns: 0,
                now_ns: 1,
            },
            &mut out,
        );
        assert!(out.is_empty());
    }
}
