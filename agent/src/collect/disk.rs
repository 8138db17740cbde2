//! Disk family: `system.disk.io`, `system.disk.operations`, `system.disk.io_time`,
//! `system.disk.operation_time`, `system.disk.merged` and `system.disk.pending_operations`
//! from `/proc/diskstats`, attributes `device` and (where it applies) `direction`.
//!
//! Whole disks and partitions are both reported, as the hostmetrics receiver does; devices
//! matching `host_metrics.exclude_disk_devices` (default `loop*`, `ram*`) are skipped.

use super::otlp::{Desc, Kind, MetricBuilder, Stamp, kv};
use crate::config::matches_name;
use opentelemetry_proto::tonic::metrics::v1::Metric;

/// `/proc/diskstats` always counts 512-byte sectors, whatever the device's sector size.
const SECTOR_BYTES: u64 = 512;

/// One line of `/proc/diskstats` (the fields the agent reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskStat<'a> {
    pub name: &'a str,
    pub reads: u64,
    pub reads_merged: u64,
    pub sectors_read: u64,
    pub read_ms: u64,
    pub writes: u64,
    pub writes_merged: u64,
    pub sectors_written: u64,
    pub write_ms: u64,
    pub in_progress: u64,
    pub io_ms: u64,
}

/// Parses `/proc/diskstats` lazily: one item per non-empty line, `Err(())` for a malformed one.
/// Borrows from `text`, so it allocates nothing.
pub fn parse_diskstats(text: &str) -> impl Iterator<Item = Result<DiskStat<'_>, ()>> {
    text.lines().filter(|l| !l.trim().is_empty()).map(|line| {
        let mut f = line.split_ascii_whitespace();
        let _major = f.next().ok_or(())?;
        let _minor = f.next().ok_or(())?;
        let name = f.next().ok_or(())?;
        let mut n = [0u64; 10];
        for slot in &mut n {
            *slot = f.next().ok_or(())?.parse().map_err(|_| ())?;
        }
        Ok(DiskStat {
            name,
            reads: n[0],
            reads_merged: n[1],
            sectors_read: n[2],
            read_ms: n[3],
            writes: n[4],
            writes_merged: n[5],
            sectors_written: n[6],
            write_ms: n[7],
            in_progress: n[8],
            io_ms: n[9],
        })
    })
}

const IO: Desc = Desc {
    name: "system.disk.io",
    unit: "By",
    description: "Bytes read from and written to each block device.",
    kind: Kind::Counter,
};
const OPERATIONS: Desc = Desc {
    name: "system.disk.operations",
    unit: "{operation}",
    description: "Read and write operations completed by each block device.",
    kind: Kind::Counter,
};
const IO_TIME: Desc = Desc {
    name: "system.disk.io_time",
    unit: "s",
    description: "Time each block device had I/O in flight (busy time).",
    kind: Kind::Counter,
};
const OPERATION_TIME: Desc = Desc {
    name: "system.disk.operation_time",
    unit: "s",
    description: "Time spent on read and write operations by each block device, summed over operations.",
    kind: Kind::Counter,
};
const MERGED: Desc = Desc {
    name: "system.disk.merged",
    unit: "{operation}",
    description: "Adjacent read and write requests merged by the block layer.",
    kind: Kind::Counter,
};
const PENDING: Desc = Desc {
    name: "system.disk.pending_operations",
    unit: "{operation}",
    description: "I/O operations in flight on each block device.",
    kind: Kind::UpDown,
};

/// Appends the disk metrics for `text` (the contents of `/proc/diskstats`) to `out`; returns
/// the number of malformed lines.
pub fn metrics(text: &str, exclude: &[String], stamp: Stamp, out: &mut Vec<Metric>) -> u32 {
    let mut errors = 0;
    let mut io = MetricBuilder::new(IO, stamp);
    let mut ops = MetricBuilder::new(OPERATIONS, stamp);
    let mut io_time = MetricBuilder::new(IO_TIME, stamp);
    let mut op_time = MetricBuilder::new(OPERATION_TIME, stamp);
    let mut merged = MetricBuilder::new(MERGED, stamp);
    let mut pending = MetricBuilder::new(PENDING, stamp);
    for d in parse_diskstats(text) {
        let Ok(d) = d else {
            errors += 1;
            continue;
        };
        if matches_name(exclude, d.name) {
            continue;
        }
        let rw = |dir: &str| vec![kv("device", d.name), kv("direction", dir)];
        io.int(rw("read"), d.sectors_read.saturating_mul(SECTOR_BYTES));
        io.int(rw("write"), d.sectors_written.saturating_mul(SECTOR_BYTES));
        ops.int(rw("read"), d.reads);
        ops.int(rw("write"), d.writes);
        io_time.double(vec![kv("device", d.name)], d.io_ms as f64 / 1000.0);
        op_time.double(rw("read"), d.read_ms as f64 / 1000.0);
        op_time.double(rw("write"), d.write_ms as f64 / 1000.0);
        merged.int(rw("read"), d.reads_merged);
        merged.int(rw("write"), d.writes_merged);
        pending.int(vec![kv("device", d.name)], d.in_progress);
    }
    for b in [io, ops, io_time, op_time, merged, pending] {
        b.finish_into(out);
    }
    errors
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const DISKSTATS: &str = "   7       0 loop0 100 0 200 5 0 0 0 0 0 8 5 0 0 0 0
   8       0 sda 5000 100 400000 3000 2000 50 160000 4000 2 6500 7000 0 0 0 0 0 0
   8       1 sda1 4900 100 399000 2900 1990 50 159000 3990 0 6400 6900 0 0 0 0
 259       0 nvme0n1 10 0 80 1 0 0 0 0 0 1 1
";

    #[test]
    fn parses_lines() {
        let v: Vec<_> = parse_diskstats(DISKSTATS)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(v.len(), 4);
        assert_eq!(v[1].name, "sda");
        assert_eq!(v[1].sectors_read, 400000);
        assert_eq!(v[1].in_progress, 2);
        assert_eq!(v[1].io_ms, 6500);
        // Pre-4.18 kernels print only 14 fields; that is enough.
        assert_eq!(v[3].name, "nvme0n1");
    }

    #[test]
    fn excludes_and_converts() {
        let mut out = Vec::new();
        let errors = metrics(
            DISKSTATS,
            &["loop*".to_string()],
            Stamp {
                start_ns: 0,
                now_ns: 1,
            },
            &mut out,
        );
        assert_eq!(errors, 0);
        assert_eq!(out.len(), 6);
        assert_eq!(out[0].name, "system.disk.io");
        let Some(opentelemetry_proto::tonic::metrics::v1::metric::Data::Sum(s)) = &out[0].data
        else {
            panic!()
        };
        assert_eq!(s.data_points.len(), 6); // sda, sda1, nvme0n1 x read/write
        assert_eq!(
            s.data_points[0].value,
            Some(
                opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(
                    400000 * 512
                )
            )
        );
    }

    #[test]
    fn malformed_lines_are_counted() {
        let mut out = Vec::new();
        let errors = metrics(
            "8 0 sda 1 2 x\n8 1\n\n",
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
