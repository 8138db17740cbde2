//! The agent's pure parsers of `/proc` and `/etc` text (`collect::*`), each given the same
//! input, and the metric builders that consume their output: `/proc/stat` (CPU times, the
//! utilisation between two readings), `/proc/meminfo`, `/proc/diskstats`, `/proc/net/dev`,
//! `/proc/mounts` (octal escapes, filters, a fake statvfs), `/proc/loadavg`, `/proc/uptime`,
//! `/etc/os-release`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redline_agent::collect::otlp::Stamp;
use redline_agent::collect::{
    cpu, disk, filesystem, load, memory, network, process, resource, uptime,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let stamp = Stamp {
        start_ns: 1_699_000_000_000_000_000,
        now_ns: 1_700_000_000_000_000_000,
    };
    let mut out = Vec::new();

    let mut prev = Vec::new();
    let summary = cpu::parse_stat(text, &mut prev);
    // A second reading that moved on: every tick count doubled (saturating), so utilisation
    // sees both growth and, where the input is at the top of u64, no growth.
    let mut cur = prev.clone();
    for c in &mut cur {
        for t in c.ticks.iter_mut() {
            *t = t.saturating_mul(2);
        }
    }
    let _ = cpu::time_metric(&cur, 100.0, stamp);
    // `utilization` once overflowed summing deltas near u64::MAX
    // (corpus/proc_parsers/crash-cpu-utilization-overflow); both directions are fuzzed.
    let _ = cpu::utilization(&prev, &cur);
    let _ = cpu::utilization_metric(&prev, &cur, stamp);
    let _ = cpu::utilization_metric(&cur, &prev, stamp);
    process::metrics(&summary, Some(7), stamp, &mut out);

    let (mem, _errors) = memory::parse_meminfo(text);
    let _ = memory::memory_states(&mem);
    memory::metrics(&mem, stamp, &mut out);

    let exclude = vec!["loop*".to_owned(), "ram*".to_owned(), "lo".to_owned()];
    for d in disk::parse_diskstats(text) {
        let _ = d;
    }
    let _ = disk::metrics(text, &exclude, stamp, &mut out);
    for n in network::parse_net_dev(text) {
        let _ = n;
    }
    let _ = network::metrics(text, &exclude, stamp, &mut out);

    let types = vec!["tmpfs".to_owned(), "proc".to_owned()];
    let mountpoints = vec!["/proc".to_owned(), "/sys".to_owned()];
    let filters = filesystem::Filters {
        types: &types,
        mountpoints: &mountpoints,
    };
    let fake_statvfs = |path: &str| {
        let n = path.len() as u64;
        Ok(filesystem::FsSizes {
            frsize: 4096,
            blocks: n.wrapping_mul(1_000_003),
            bfree: n.wrapping_mul(700_001),
            bavail: n.wrapping_mul(650_003),
        })
    };
    let _ = filesystem::metrics(text, &filters, fake_statvfs, stamp, &mut out);
    let _ = filesystem::unescape_octal(text);

    if let Some(l) = load::parse_loadavg(text) {
        load::metrics(l, stamp, &mut out);
    }
    if let Some(u) = uptime::parse_uptime(text) {
        uptime::metrics(u, stamp, &mut out);
    }
    let _ = resource::parse_os_release(text);
});
