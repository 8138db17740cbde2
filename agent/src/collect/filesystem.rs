//! Filesystem family: `system.filesystem.usage` (states `used`, `free`, `reserved`) and
//! `system.filesystem.utilization`, attributes `device`, `mountpoint`, `type`, `mode`.
//!
//! Mounts come from `/proc/self/mounts` (parsed here, zero-copy except for escaped mount
//! points); sizes from `statvfs(2)` through rustix's safe wrapper, because sysinfo does not
//! expose the root-reserved blocks. Pseudo filesystems are skipped by type and by mount point
//! before any `statvfs` call. A `statvfs` on a hung network mount blocks: the collection runs
//! on a blocking thread so that stalls collection, never the relay or `/metrics`.

use std::borrow::Cow;

use super::otlp::{Desc, Kind, MetricBuilder, Stamp, kv};
use crate::config::under_any;
use opentelemetry_proto::tonic::metrics::v1::Metric;

/// One line of `/proc/self/mounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount<'a> {
    pub device: &'a str,
    pub mountpoint: Cow<'a, str>,
    pub fstype: &'a str,
    pub read_only: bool,
}

/// Undoes the kernel's octal escaping of spaces, tabs, newlines and backslashes (`\040`).
pub fn unescape_octal(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Parses `/proc/self/mounts` lazily; `Err(())` for a malformed line.
pub fn parse_mounts(text: &str) -> impl Iterator<Item = Result<Mount<'_>, ()>> {
    text.lines().filter(|l| !l.trim().is_empty()).map(|line| {
        let mut f = line.split_ascii_whitespace();
        let device = f.next().ok_or(())?;
        let mountpoint = unescape_octal(f.next().ok_or(())?);
        let fstype = f.next().ok_or(())?;
        let options = f.next().ok_or(())?;
        let read_only = options.split(',').any(|o| o == "ro");
        Ok(Mount {
            device,
            mountpoint,
            fstype,
            read_only,
        })
    })
}

/// The `statvfs` figures used, in blocks of `frsize` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsSizes {
    pub frsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
}

/// Bytes `(used, free, reserved)` as the hostmetrics receiver and `df` define them: `free` is
/// what unprivileged users may still write, `reserved` is the root-only remainder.
pub fn usage(s: &FsSizes) -> (u64, u64, u64) {
    let used = s.blocks.saturating_sub(s.bfree).saturating_mul(s.frsize);
    let free = s.bavail.saturating_mul(s.frsize);
    let reserved = s.bfree.saturating_sub(s.bavail).saturating_mul(s.frsize);
    (used, free, reserved)
}

/// `statvfs(2)` of a real path.
pub fn statvfs(path: &str) -> std::io::Result<FsSizes> {
    let s = rustix::fs::statvfs(path)?;
    Ok(FsSizes {
        frsize: if s.f_frsize > 0 {
            s.f_frsize
        } else {
            s.f_bsize
        },
        blocks: s.f_blocks,
        bfree: s.f_bfree,
        bavail: s.f_bavail,
    })
}

const USAGE: Desc = Desc {
    name: "system.filesystem.usage",
    unit: "By",
    description: "Filesystem space by state: used, free (available to unprivileged users), reserved (root only).",
    kind: Kind::UpDown,
};
const UTILIZATION: Desc = Desc {
    name: "system.filesystem.utilization",
    unit: "1",
    description: "Fraction of the filesystem space available to users that is used (as df reports).",
    kind: Kind::Gauge,
};

/// Filters for [`metrics()`].
pub struct Filters<'a> {
    pub types: &'a [String],
    pub mountpoints: &'a [String],
}

/// Appends the filesystem metrics for the mounts in `text` to `out`, calling `stat` for each
/// kept mount point. Returns the number of errors (malformed lines, failed `stat` calls).
pub fn metrics(
    text: &str,
    filters: &Filters<'_>,
    mut stat: impl FnMut(&str) -> std::io::Result<FsSizes>,
    stamp: Stamp,
    out: &mut Vec<Metric>,
) -> u32 {
    let mut errors = 0;
    let mut mounts: Vec<Mount<'_>> = Vec::new();
    for m in parse_mounts(text) {
        match m {
            Ok(m) => {
                if filters.types.iter().any(|t| t == m.fstype)
                    || under_any(filters.mountpoints, &m.mountpoint)
                {
                    continue;
                }
                // A later mount on the same point hides the earlier one: keep the last.
                mounts.retain(|old| old.mountpoint != m.mountpoint);
                mounts.push(m);
            }
            Err(()) => errors += 1,
        }
    }
    let mut use_b = MetricBuilder::with_capacity(USAGE, stamp, mounts.len() * 3);
    let mut util_b = MetricBuilder::with_capacity(UTILIZATION, stamp, mounts.len());
    for m in &mounts {
        let sizes = match stat(&m.mountpoint) {
            Ok(s) => s,
            Err(_) => {
                errors += 1;
                continue;
            }
        };
        if sizes.blocks == 0 {
            continue; // no storage behind it
        }
        let (used, free, reserved) = usage(&sizes);
        let attrs = |state: Option<&str>| {
            let mut v = Vec::with_capacity(5);
            v.push(kv("device", m.device));
            v.push(kv("mountpoint", m.mountpoint.as_ref()));
            v.push(kv("type", m.fstype));
            v.push(kv("mode", if m.read_only { "ro" } else { "rw" }));
            if let Some(s) = state {
                v.push(kv("state", s));
            }
            v
        };
        use_b.int(attrs(Some("used")), used);
        use_b.int(attrs(Some("free")), free);
        use_b.int(attrs(Some("reserved")), reserved);
        if used + free > 0 {
            util_b.double(attrs(None), used as f64 / (used + free) as f64);
        }
    }
    use_b.finish_into(out);
    util_b.finish_into(out);
    errors
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::{DEFAULT_EXCLUDED_FS_TYPES, DEFAULT_EXCLUDED_MOUNTPOINTS};

    const MOUNTS: &str = "sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
/dev/sda1 / ext4 rw,relatime,errors=remount-ro 0 0
tmpfs /run tmpfs rw,nosuid,nodev,size=1000k 0 0
/dev/sda2 /mnt/my\\040disk xfs ro,relatime 0 0
/dev/loop0 /snap/core/1 squashfs ro,nodev 0 0
overlay /var/lib/docker/overlay2/x/merged overlay rw 0 0
/dev/sdb1 /data ext4 rw 0 0
/dev/sdc1 /data ext4 rw 0 0
";

    fn owned(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_and_unescapes() {
        let v: Vec<_> = parse_mounts(MOUNTS).collect::<Result<_, _>>().unwrap();
        assert_eq!(v[4].mountpoint, "/mnt/my disk");
        assert!(v[4].read_only);
        assert!(!v[2].read_only);
        assert_eq!(unescape_octal("a\\134b\\"), "a\\b\\");
        assert_eq!(unescape_octal("\\9"), "\\9");
        assert!(parse_mounts("only-two fields\n").next().unwrap().is_err());
    }

    #[test]
    fn usage_states() {
        let s = FsSizes {
            frsize: 4096,
            blocks: 1000,
            bfree: 300,
            bavail: 250,
        };
        assert_eq!(usage(&s), (700 * 4096, 250 * 4096, 50 * 4096));
        // Inconsistent figures never underflow.
        let s = FsSizes {
            frsize: 1,
            blocks: 1,
            bfree: 5,
            bavail: 9,
        };
        assert_eq!(usage(&s), (0, 9, 0));
    }

    #[test]
    fn filters_and_stats() {
        let types = owned(DEFAULT_EXCLUDED_FS_TYPES);
        let mps = owned(DEFAULT_EXCLUDED_MOUNTPOINTS);
        let filters = Filters {
            types: &types,
            mountpoints: &mps,
        };
        let mut seen = Vec::new();
        let mut out = Vec::new();
        let errors = metrics(
            MOUNTS,
            &filters,
            |p| {
                seen.push(p.to_string());
                if p == "/mnt/my disk" {
                    return Err(std::io::Error::other("gone"));
                }
                Ok(FsSizes {
                    frsize: 4096,
                    blocks: 100,
                    bfree: 50,
                    bavail: 40,
                })
            },
            Stamp {
                start_ns: 0,
                now_ns: 1,
            },
            &mut out,
        );
        assert_eq!(seen, ["/", "/mnt/my disk", "/data"]);
        assert_eq!(errors, 1);
        assert_eq!(out.len(), 2);
        let Some(opentelemetry_proto::tonic::metrics::v1::metric::Data::Sum(s)) = &out[0].data
        else {
            panic!()
        };
        assert_eq!(s.data_points.len(), 6);
        // The later /data mount (sdc1) hides the earlier one.
        let dev = &s.data_points[3].attributes[0];
        assert_eq!(
            dev.value.as_ref().unwrap().value,
            Some(
                opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                    "/dev/sdc1".into()
                )
            )
        );
    }

    #[test]
    fn statvfs_of_root_works() {
        let s = statvfs("/").unwrap();
        assert!(s.blocks > 0 && s.frsize > 0);
    }
}
