//! OTLP/gRPC load generator for `bench/collector_ingest.sh`: many simulated agents, each
//! sending one realistic host-metric batch per step to a collector, as fast as the collector
//! acknowledges them.
//!
//! Each simulated host owns a fixed set of series (`--series-per-host`, 500 by default, the
//! size of a node_exporter or OTel hostmetrics host: per-CPU time and utilisation, memory,
//! load, paging, disks, filesystems, network interfaces and connections, process counts and
//! per-process metrics) and sends them as one `ExportMetricsServiceRequest` per batch, gzip
//! compressed like the agent does. Batch `b` carries timestamp `start + b * step` (10 s by
//! default; `--jitter-ms` adds per-batch jitter the way a real timer would), counters grow by
//! plausible increments and gauges random-walk, and quiet series (idle CPU states and disks,
//! error counters, sleeping processes, rarely written filesystems) keep their value for most
//! steps, so the store's compression sees realistic data. The share of samples whose value
//! changed is printed (`changed_fraction`; an idle 2-CPU VM's real agent data measured 0.32).
//! Each host sends its batches in order and waits for the acknowledgement before the next one
//! (an agent has one export in flight); hosts run concurrently on `--threads` runtime threads.
//!
//! Output: progress on stderr; `key=value` lines on stdout at the end (samples acknowledged,
//! rejected, wall time, rate, the generator's own CPU time) for the bench script to parse.
//! The run is bounded by `--batches` and by `--max-seconds`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::Parser;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use tonic::codec::CompressionEncoding;
use tonic::transport::{Channel, Endpoint};

#[derive(Parser, Debug, Clone)]
#[command(about = "Send realistic host-metric batches to a collector over OTLP/gRPC")]
struct Args {
    /// OTLP gRPC endpoint of the collector.
    #[arg(long, default_value = "http://127.0.0.1:14317")]
    endpoint: String,
    /// Simulated hosts (agents), each with its own connection.
    #[arg(long, default_value_t = 100)]
    hosts: usize,
    /// Series per host; each batch of a host carries one sample of each.
    #[arg(long, default_value_t = 500)]
    series_per_host: usize,
    /// Batches each host sends.
    #[arg(long, default_value_t = 200)]
    batches: u64,
    /// Seconds between the timestamps of two consecutive batches.
    #[arg(long, default_value_t = 10)]
    step_seconds: u64,
    /// Random jitter added to each batch's timestamp, in milliseconds (0: aligned).
    #[arg(long, default_value_t = 0)]
    jitter_ms: u64,
    /// gzip (what the agent sends) or none.
    #[arg(long, default_value = "gzip", value_parser = ["gzip", "none"])]
    compression: String,
    /// Tokio worker threads of the generator.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Stop sending new batches after this many seconds.
    #[arg(long, default_value_t = 300)]
    max_seconds: u64,
}

/// xorshift64*: deterministic, dependency-free noise for values and jitter.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How one series' value evolves from batch to batch.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Monotonic counter: grows by about `mean` per step, a multiple of `quantum`
    /// (0.01 for CPU seconds in clock ticks, 1 for bytes and packets).
    Counter { mean: f64, quantum: f64 },
    /// Gauge: random walk of relative size `spread` around its start, a multiple of
    /// `quantum` (0: full-precision float such as a utilisation ratio).
    Gauge { spread: f64, quantum: f64, max: f64 },
}

struct SeriesDef {
    metric: usize,
    attrs: Vec<KeyValue>,
    behaviour: Behaviour,
    start: f64,
    int: bool,
    /// Probability that the value does not change in a step (an idle device, an error
    /// counter, a sleeping process).
    idle: f64,
}

struct MetricDef {
    name: &'static str,
    unit: &'static str,
    monotonic: Option<bool>,
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

fn kv_int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

#[derive(Default)]
struct Model {
    metrics: Vec<MetricDef>,
    series: Vec<SeriesDef>,
    /// The `idle` probability given to the series added next.
    idle: f64,
}

impl Model {
    fn metric(&mut self, name: &'static str, unit: &'static str, monotonic: Option<bool>) -> usize {
        self.metrics.push(MetricDef {
            name,
            unit,
            monotonic,
        });
        self.metrics.len() - 1
    }

    fn add(
        &mut self,
        metric: usize,
        attrs: Vec<KeyValue>,
        behaviour: Behaviour,
        start: f64,
        int: bool,
    ) {
        self.series.push(SeriesDef {
            metric,
            attrs,
            behaviour,
            start,
            int,
            idle: self.idle,
        });
    }
}

/// The series of one host, in the order an agent would emit them, cut at `limit`.
fn host_model(rng: &mut Rng, limit: usize) -> (Vec<MetricDef>, Vec<SeriesDef>) {
    let mut model = Model::default();
    let counter = |mean: f64, quantum: f64| Behaviour::Counter { mean, quantum };
    let gauge = |spread: f64, quantum: f64, max: f64| Behaviour::Gauge {
        spread,
        quantum,
        max,
    };

    let cpus = 8;
    let states = [
        ("user", 3.0),
        ("system", 1.0),
        ("idle", 5.5),
        ("iowait", 0.2),
        ("nice", 0.05),
        ("interrupt", 0.03),
        ("softirq", 0.1),
        ("steal", 0.02),
    ];
    // Rarely used CPU states stay still for most steps, as on a real host.
    let quiet_state = |state: &str| {
        if matches!(state, "nice" | "interrupt" | "steal") {
            0.8
        } else {
            0.0
        }
    };
    let m = model.metric("system.cpu.time", "s", Some(true));
    for cpu in 0..cpus {
        for (state, per_step) in states {
            model.idle = quiet_state(state);
            let attrs = vec![kv("cpu", &cpu.to_string()), kv("state", state)];
            let start = (per_step * 100_000.0 * (0.8 + 0.4 * rng.unit()) * 100.0).round() / 100.0;
            model.add(m, attrs, counter(per_step, 0.01), start, false);
        }
    }
    let m = model.metric("system.cpu.utilization", "1", None);
    for cpu in 0..cpus {
        for (state, per_step) in states {
            model.idle = quiet_state(state);
            let attrs = vec![kv("cpu", &cpu.to_string()), kv("state", state)];
            model.add(m, attrs, gauge(0.3, 0.0, 1.0), per_step / 10.0, false);
        }
    }
    model.idle = 0.0;
    let mem = [
        ("used", 9.0e9),
        ("free", 4.0e9),
        ("buffered", 3.0e8),
        ("cached", 1.0e10),
        ("slab_reclaimable", 5.0e8),
        ("slab_unreclaimable", 2.0e8),
    ];
    let m = model.metric("system.memory.usage", "By", Some(false));
    for (state, v) in mem {
        model.add(
            m,
            vec![kv("state", state)],
            gauge(0.01, 4096.0, 6.4e10),
            v,
            true,
        );
    }
    let m = model.metric("system.memory.utilization", "1", None);
    for (state, v) in mem {
        model.add(
            m,
            vec![kv("state", state)],
            gauge(0.01, 0.0, 1.0),
            v / 2.4e10,
            false,
        );
    }
    for name in [
        "system.cpu.load_average.1m",
        "system.cpu.load_average.5m",
        "system.cpu.load_average.15m",
    ] {
        let m = model.metric(name, "{thread}", None);
        model.add(m, vec![], gauge(0.1, 0.01, 64.0), 1.5, false);
    }
    model.idle = 0.9;
    let m = model.metric("system.paging.usage", "By", Some(false));
    model.add(
        m,
        vec![kv("state", "used")],
        gauge(0.001, 4096.0, 8.0e9),
        2.0e8,
        true,
    );
    model.add(
        m,
        vec![kv("state", "free")],
        gauge(0.001, 4096.0, 8.0e9),
        1.9e9,
        true,
    );
    model.idle = 0.3;
    let m = model.metric("system.paging.operations", "{operation}", Some(true));
    for dir in ["page_in", "page_out"] {
        for ty in ["major", "minor"] {
            let attrs = vec![kv("direction", dir), kv("type", ty)];
            model.add(m, attrs, counter(500.0, 1.0), 4.0e7, true);
        }
    }
    let m = model.metric("system.paging.faults", "{fault}", Some(true));
    model.idle = 0.95;
    model.add(m, vec![kv("type", "major")], counter(3.0, 1.0), 1.2e4, true);
    model.idle = 0.0;
    model.add(
        m,
        vec![kv("type", "minor")],
        counter(2.0e4, 1.0),
        9.0e8,
        true,
    );

    let disks = ["nvme0n1", "nvme1n1", "sda", "dm-0"];
    // Two busy disks, two mostly idle ones.
    let quiet_disk = |disk: &str| if disk.starts_with("nvme") { 0.1 } else { 0.7 };
    let disk_metrics: [(&str, &str, f64, f64); 4] = [
        ("system.disk.io", "By", 4.0e6, 4096.0),
        ("system.disk.operations", "{operation}", 300.0, 1.0),
        ("system.disk.operation_time", "s", 0.4, 0.001),
        ("system.disk.merged", "{operation}", 40.0, 1.0),
    ];
    for (name, unit, mean, quantum) in disk_metrics {
        let m = model.metric(name, unit, Some(true));
        for disk in disks {
            model.idle = quiet_disk(disk);
            for dir in ["read", "write"] {
                let attrs = vec![kv("device", disk), kv("direction", dir)];
                let int = quantum >= 1.0;
                model.add(m, attrs, counter(mean, quantum), mean * 1.0e5, int);
            }
        }
    }
    let m = model.metric("system.disk.io_time", "s", Some(true));
    for disk in disks {
        model.idle = quiet_disk(disk);
        model.add(
            m,
            vec![kv("device", disk)],
            counter(0.5, 0.001),
            5.0e4,
            false,
        );
    }
    let m = model.metric("system.disk.pending_operations", "{operation}", Some(false));
    for disk in disks {
        model.idle = quiet_disk(disk).max(0.5);
        model.add(
            m,
            vec![kv("device", disk)],
            gauge(1.0, 1.0, 64.0),
            1.0,
            true,
        );
    }

    let mounts = [
        ("/dev/nvme0n1p2", "/", "ext4"),
        ("/dev/nvme0n1p1", "/boot/efi", "vfat"),
        ("/dev/nvme1n1p1", "/var/lib/docker", "xfs"),
        ("/dev/sda1", "/srv", "ext4"),
        ("/dev/mapper/home", "/home", "ext4"),
        ("tmpfs", "/run", "tmpfs"),
    ];
    // Filesystems written all the time, and filesystems written now and then.
    let quiet_fs = |mp: &str| {
        if matches!(mp, "/" | "/var/lib/docker" | "/home") {
            0.2
        } else {
            0.95
        }
    };
    let m = model.metric("system.filesystem.usage", "By", Some(false));
    for (dev, mp, ty) in mounts {
        model.idle = quiet_fs(mp);
        for (state, v) in [("used", 2.0e11), ("free", 3.0e11), ("reserved", 2.5e10)] {
            let attrs = vec![
                kv("device", dev),
                kv("mountpoint", mp),
                kv("type", ty),
                kv("mode", "rw"),
                kv("state", state),
            ];
            let spread = if state == "reserved" { 0.0 } else { 0.0005 };
            model.add(m, attrs, gauge(spread, 4096.0, 1.0e12), v, true);
        }
    }
    let m = model.metric("system.filesystem.utilization", "1", None);
    for (dev, mp, ty) in mounts {
        model.idle = quiet_fs(mp);
        let attrs = vec![
            kv("device", dev),
            kv("mountpoint", mp),
            kv("type", ty),
            kv("mode", "rw"),
        ];
        model.add(m, attrs, gauge(0.0005, 0.0, 1.0), 0.4, false);
    }
    let m = model.metric("system.filesystem.inodes.usage", "{inode}", Some(false));
    for (dev, mp, ty) in mounts {
        model.idle = quiet_fs(mp);
        for (state, v) in [("used", 1.2e6), ("free", 3.0e7)] {
            let attrs = vec![
                kv("device", dev),
                kv("mountpoint", mp),
                kv("type", ty),
                kv("mode", "rw"),
                kv("state", state),
            ];
            model.add(m, attrs, gauge(0.0001, 1.0, 1.0e8), v, true);
        }
    }

    let nics = ["lo", "eth0", "eth1", "docker0"];
    // (name, unit, behaviour, idle probability on a busy interface)
    let net_metrics: [(&str, &str, Behaviour, f64); 4] = [
        ("system.network.io", "By", counter(2.0e6, 1.0), 0.0),
        (
            "system.network.packets",
            "{packet}",
            counter(2.0e3, 1.0),
            0.0,
        ),
        ("system.network.errors", "{error}", counter(2.0, 1.0), 0.97),
        (
            "system.network.dropped",
            "{packet}",
            counter(5.0, 1.0),
            0.95,
        ),
    ];
    for (name, unit, behaviour, idle) in net_metrics {
        let m = model.metric(name, unit, Some(true));
        for nic in nics {
            // eth1 and docker0 carry traffic now and then.
            model.idle = if matches!(nic, "lo" | "eth0") {
                idle
            } else {
                idle.max(0.7)
            };
            for dir in ["receive", "transmit"] {
                let attrs = vec![kv("device", nic), kv("direction", dir)];
                model.add(m, attrs, behaviour, 1.0e6 * (1.0 + rng.unit()), true);
            }
        }
    }
    model.idle = 0.5;
    let m = model.metric("system.network.connections", "{connection}", Some(false));
    for state in [
        "ESTABLISHED",
        "SYN_SENT",
        "SYN_RECV",
        "FIN_WAIT_1",
        "FIN_WAIT_2",
        "TIME_WAIT",
        "CLOSE",
        "CLOSE_WAIT",
        "LAST_ACK",
        "LISTEN",
        "CLOSING",
    ] {
        let attrs = vec![kv("protocol", "tcp"), kv("state", state)];
        model.add(m, attrs, gauge(0.2, 1.0, 1.0e5), 20.0, true);
    }
    model.add(
        m,
        vec![kv("protocol", "udp")],
        gauge(0.1, 1.0, 1.0e5),
        12.0,
        true,
    );

    model.idle = 0.3;
    let m = model.metric("system.processes.count", "{process}", Some(false));
    for (status, v) in [
        ("running", 3.0),
        ("sleeping", 410.0),
        ("stopped", 0.0),
        ("zombie", 1.0),
        ("blocked", 1.0),
    ] {
        model.add(
            m,
            vec![kv("status", status)],
            gauge(0.1, 1.0, 1.0e5),
            v,
            true,
        );
    }
    model.idle = 0.0;
    let m = model.metric("system.processes.created", "{process}", Some(true));
    model.add(m, vec![], counter(30.0, 1.0), 2.0e6, true);
    let m = model.metric("system.uptime", "s", None);
    model.add(m, vec![], counter(10.0, 10.0), 8.6e5, false);

    // The rest of the budget: per-process metrics of the busiest processes.
    let process_metrics: [(&str, &str, Option<bool>); 6] = [
        ("process.cpu.time", "s", Some(true)),
        ("process.memory.usage", "By", Some(false)),
        ("process.memory.virtual", "By", Some(false)),
        ("process.disk.io", "By", Some(true)),
        ("process.threads", "{thread}", Some(false)),
        ("process.open_file_descriptors", "{count}", Some(false)),
    ];
    let ids: Vec<usize> = process_metrics
        .iter()
        .map(|(n, u, mono)| model.metric(n, u, *mono))
        .collect();
    let executables = [
        "postgres",
        "java",
        "node",
        "nginx",
        "dockerd",
        "containerd",
        "python3",
        "redis-server",
        "sshd",
        "systemd",
        "journald",
        "chronyd",
        "envoy",
        "kubelet",
        "etcd",
    ];
    let mut pid = 1000;
    while model.series.len() < limit {
        pid += 7;
        let exe = executables[pid % executables.len()];
        let base = |extra: Vec<KeyValue>| {
            let mut a = vec![
                kv_int("process.pid", pid as i64),
                kv("process.executable.name", exe),
            ];
            a.extend(extra);
            a
        };
        let heavy = 0.2 + 3.0 * rng.unit();
        // Two processes in five are busy; the others sleep through most steps.
        let busy = rng.unit() < 0.4;
        model.idle = if busy { 0.1 } else { 0.85 };
        model.add(
            ids[0],
            base(vec![kv("state", "user")]),
            counter(heavy, 0.01),
            1.0e4,
            false,
        );
        model.add(
            ids[0],
            base(vec![kv("state", "system")]),
            counter(heavy / 4.0, 0.01),
            3.0e3,
            false,
        );
        model.idle = if busy { 0.2 } else { 0.6 };
        model.add(
            ids[1],
            base(vec![]),
            gauge(0.02, 4096.0, 3.2e10),
            4.0e8 * heavy,
            true,
        );
        model.add(
            ids[2],
            base(vec![]),
            gauge(0.005, 4096.0, 6.4e10),
            2.0e9 * heavy,
            true,
        );
        model.idle = if busy { 0.3 } else { 0.9 };
        model.add(
            ids[3],
            base(vec![kv("direction", "read")]),
            counter(1.0e5 * heavy, 4096.0),
            1.0e9,
            true,
        );
        model.add(
            ids[3],
            base(vec![kv("direction", "write")]),
            counter(3.0e5 * heavy, 4096.0),
            3.0e9,
            true,
        );
        model.idle = 0.95;
        model.add(ids[4], base(vec![]), gauge(0.05, 1.0, 4096.0), 40.0, true);
        model.add(ids[5], base(vec![]), gauge(0.05, 1.0, 65536.0), 120.0, true);
    }
    model.series.truncate(limit);
    (model.metrics, model.series)
}

/// One simulated host: its request template, with one data point per series, and the state
/// to advance it.
struct Host {
    request: ExportMetricsServiceRequest,
    slots: Vec<Slot>,
    rng: Rng,
}

/// Where one series lives in the request template, and its state.
struct Slot {
    /// Index of its metric in the request's `metrics`.
    metric: usize,
    /// Index of its data point in that metric.
    point: usize,
    behaviour: Behaviour,
    value: f64,
    int: bool,
    idle: f64,
}

impl Host {
    fn new(index: usize, series_per_host: usize, start_time: u64) -> Host {
        let mut rng =
            Rng(0x9e37_79b9_7f4a_7c15 ^ (index as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9));
        let (defs, series) = host_model(&mut rng, series_per_host);
        let mut metrics: Vec<Metric> = defs
            .iter()
            .map(|d| Metric {
                name: d.name.to_string(),
                unit: d.unit.to_string(),
                data: Some(match d.monotonic {
                    Some(mono) => metric::Data::Sum(Sum {
                        data_points: Vec::new(),
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        is_monotonic: mono,
                    }),
                    None => metric::Data::Gauge(Gauge {
                        data_points: Vec::new(),
                    }),
                }),
                ..Default::default()
            })
            .collect();
        let mut slots = Vec::with_capacity(series.len());
        for s in series {
            let point = NumberDataPoint {
                attributes: s.attrs,
                start_time_unix_nano: start_time,
                ..Default::default()
            };
            let points = match &mut metrics[s.metric].data {
                Some(metric::Data::Sum(sum)) => &mut sum.data_points,
                Some(metric::Data::Gauge(g)) => &mut g.data_points,
                _ => unreachable!("only sums and gauges are built"),
            };
            points.push(point);
            slots.push(Slot {
                metric: s.metric,
                point: points.len() - 1,
                behaviour: s.behaviour,
                value: s.start,
                int: s.int,
                idle: s.idle,
            });
        }
        // Map series to their position after dropping metrics that got no series (cut by
        // the series limit).
        let mut remap = vec![usize::MAX; metrics.len()];
        let mut kept = Vec::new();
        for (i, m) in metrics.into_iter().enumerate() {
            let empty = match &m.data {
                Some(metric::Data::Sum(s)) => s.data_points.is_empty(),
                Some(metric::Data::Gauge(g)) => g.data_points.is_empty(),
                _ => true,
            };
            if !empty {
                remap[i] = kept.len();
                kept.push(m);
            }
        }
        for slot in &mut slots {
            slot.metric = remap[slot.metric];
        }
        let host = format!("sim-host-{index:04}");
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", "redline-agent"),
                        kv("service.instance.id", &host),
                        kv("host.name", &host),
                        kv("host.arch", "amd64"),
                        kv("os.type", "linux"),
                    ],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: "redline-agent".to_string(),
                        version: "0.1.0".to_string(),
                        ..Default::default()
                    }),
                    metrics: kept,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        Host {
            request,
            slots,
            rng,
        }
    }

    fn samples(&self) -> u64 {
        self.slots.len() as u64
    }

    /// Advances every series one step and stamps the batch with `time_unix_nano`; also
    /// returns how many values changed.
    fn next_batch(&mut self, time_unix_nano: u64) -> (ExportMetricsServiceRequest, u64) {
        let metrics = &mut self.request.resource_metrics[0].scope_metrics[0].metrics;
        let mut changed = 0;
        for slot in &mut self.slots {
            let before = slot.value;
            if self.rng.unit() >= slot.idle {
                let r = self.rng.unit();
                slot.value = match slot.behaviour {
                    Behaviour::Counter { mean, quantum } => {
                        let step = mean * (0.5 + r);
                        slot.value + (step / quantum).round() * quantum
                    }
                    Behaviour::Gauge {
                        spread,
                        quantum,
                        max,
                    } => {
                        let v = (slot.value * (1.0 + spread * (r - 0.5))).clamp(0.0, max);
                        if quantum > 0.0 {
                            (v / quantum).round() * quantum
                        } else {
                            v
                        }
                    }
                };
            }
            let value = if slot.int {
                number_data_point::Value::AsInt(slot.value as i64)
            } else {
                number_data_point::Value::AsDouble(slot.value)
            };
            let point = match &mut metrics[slot.metric].data {
                Some(metric::Data::Sum(s)) => &mut s.data_points[slot.point],
                Some(metric::Data::Gauge(g)) => &mut g.data_points[slot.point],
                _ => unreachable!("only sums and gauges are built"),
            };
            if slot.value != before || point.value.is_none() {
                changed += 1;
            }
            point.time_unix_nano = time_unix_nano;
            point.value = Some(value);
        }
        (self.request.clone(), changed)
    }
}

#[derive(Default)]
struct Totals {
    acked: AtomicU64,
    rejected: AtomicU64,
    failed_requests: AtomicU64,
    retries: AtomicU64,
    batches: AtomicU64,
    /// Samples whose value differed from the previous sample of their series.
    changed: AtomicU64,
    /// Samples generated (acknowledged or not).
    generated: AtomicU64,
}

/// CPU seconds (user + system) this process used so far, from /proc/self/stat (clock ticks
/// of 1/100 s, the value of `getconf CLK_TCK` on Linux).
fn own_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    let Some(after_comm) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return f64::NAN;
    };
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // After the command: field 3 is state (index 0), utime is field 14 (index 11), stime 15.
    let ticks: u64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    ticks as f64 / 100.0
}

async fn run_host(
    mut host: Host,
    channel: Channel,
    args: Arc<Args>,
    first_time: u64,
    totals: Arc<Totals>,
    stop: Arc<AtomicBool>,
) {
    let mut client = MetricsServiceClient::new(channel);
    if args.compression == "gzip" {
        client = client
            .send_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Gzip);
    }
    let samples = host.samples();
    let step = args.step_seconds * 1_000_000_000;
    for b in 0..args.batches {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let jitter = if args.jitter_ms > 0 {
            (host.rng.next_u64() % (args.jitter_ms * 1000)) * 1000
        } else {
            0
        };
        let (request, changed) = host.next_batch(first_time + b * step + jitter);
        totals.changed.fetch_add(changed, Ordering::Relaxed);
        totals.generated.fetch_add(samples, Ordering::Relaxed);
        let mut backoff = Duration::from_millis(50);
        let mut attempt = 0;
        loop {
            match client.export(request.clone()).await {
                Ok(response) => {
                    let rejected = response
                        .into_inner()
                        .partial_success
                        .map(|p| p.rejected_data_points.max(0) as u64)
                        .unwrap_or(0);
                    totals
                        .acked
                        .fetch_add(samples - rejected.min(samples), Ordering::Relaxed);
                    totals.rejected.fetch_add(rejected, Ordering::Relaxed);
                    totals.batches.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(status) => {
                    let retryable = matches!(
                        status.code(),
                        tonic::Code::Unavailable
                            | tonic::Code::ResourceExhausted
                            | tonic::Code::DeadlineExceeded
                            | tonic::Code::Aborted
                            | tonic::Code::Cancelled
                    );
                    attempt += 1;
                    if !retryable || attempt > 10 || stop.load(Ordering::Relaxed) {
                        totals.failed_requests.fetch_add(1, Ordering::Relaxed);
                        if totals.failed_requests.load(Ordering::Relaxed) <= 5 {
                            eprintln!("export failed: {:?}: {}", status.code(), status.message());
                        }
                        break;
                    }
                    totals.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.hosts > 0 && args.series_per_host > 0 && args.batches > 0,
        "--hosts, --series-per-host and --batches must be > 0"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let args = Arc::new(args);
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let span = args.batches * args.step_seconds;
    // The last batch lands about now, aligned on the step: what a store expects from agents
    // that were running for the whole span.
    let first_secs = (now - span) / args.step_seconds * args.step_seconds;
    let first_time = first_secs * 1_000_000_000;
    let boot_time = (first_secs - 86_400) * 1_000_000_000;

    let endpoint = Endpoint::from_shared(args.endpoint.clone())
        .context("--endpoint")?
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30));
    let hosts: Vec<Host> = (0..args.hosts)
        .map(|i| Host::new(i, args.series_per_host, boot_time))
        .collect();
    let per_host = hosts[0].samples();
    eprintln!(
        "ingest_load: {} hosts x {} series, {} batches each ({} samples), step {} s, {}, gzip={}",
        args.hosts,
        per_host,
        args.batches,
        args.hosts as u64 * per_host * args.batches,
        args.step_seconds,
        if args.jitter_ms == 0 {
            "aligned timestamps".to_string()
        } else {
            format!("timestamps jittered by up to {} ms", args.jitter_ms)
        },
        args.compression == "gzip",
    );

    let totals = Arc::new(Totals::default());
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_before = own_cpu_seconds();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for host in hosts {
        // One connection per simulated agent, as in production.
        let channel = endpoint.connect_lazy();
        tasks.spawn(run_host(
            host,
            channel,
            args.clone(),
            first_time,
            totals.clone(),
            stop.clone(),
        ));
    }

    let deadline = started + Duration::from_secs(args.max_seconds);
    let mut ticker = tokio::time::interval(Duration::from_secs(5));
    ticker.tick().await;
    loop {
        tokio::select! {
            joined = tasks.join_next() => {
                match joined {
                    None => break,
                    Some(Err(e)) => eprintln!("host task failed: {e}"),
                    Some(Ok(())) => {}
                }
            }
            _ = ticker.tick() => {
                let acked = totals.acked.load(Ordering::Relaxed);
                let secs = started.elapsed().as_secs_f64();
                eprintln!("  {secs:6.1} s: {acked} samples acknowledged ({:.0}/s)", acked as f64 / secs);
                if Instant::now() >= deadline && !stop.swap(true, Ordering::Relaxed) {
                    eprintln!("ingest_load: --max-seconds reached, stopping");
                }
            }
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = own_cpu_seconds() - cpu_before;

    let acked = totals.acked.load(Ordering::Relaxed);
    println!("hosts={}", args.hosts);
    println!("series_per_host={per_host}");
    println!("batches_acked={}", totals.batches.load(Ordering::Relaxed));
    println!("samples_acked={acked}");
    println!(
        "samples_rejected={}",
        totals.rejected.load(Ordering::Relaxed)
    );
    println!(
        "requests_failed={}",
        totals.failed_requests.load(Ordering::Relaxed)
    );
    println!("retries={}", totals.retries.load(Ordering::Relaxed));
    println!("wall_seconds={wall:.3}");
    println!("samples_per_second={:.0}", acked as f64 / wall);
    println!("generator_cpu_seconds={cpu:.2}");
    println!(
        "timestamps={}",
        if args.jitter_ms == 0 {
            "aligned".to_string()
        } else {
            format!("jitter<{}ms", args.jitter_ms)
        }
    );
    println!("compression={}", args.compression);
    let generated = totals.generated.load(Ordering::Relaxed).max(1);
    println!(
        "changed_fraction={:.3}",
        totals.changed.load(Ordering::Relaxed) as f64 / generated as f64
    );
    Ok(())
}
