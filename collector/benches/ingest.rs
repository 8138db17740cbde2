//! Ingest hot path without the network: OTLP conversion, the store's group commit, and chunk
//! compression. Run with `cargo bench -p redline-collector --bench ingest`. Throughput is
//! reported in samples (elements) per second.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use redline_collector::model::Sample;
use redline_collector::receiver::convert;
use redline_collector::store::{Store, StoreOptions};

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// A host's worth of metrics: 8 CPUs × 8 states of cpu time and utilisation, memory states,
/// 4 disks, 10 filesystems, 4 network devices: about 500 points, like node_exporter's count.
pub fn host_request(host: usize, step: u64) -> ExportMetricsServiceRequest {
    let t = 1_700_000_000_000_000_000u64 + step * 10_000_000_000;
    let mut metrics = Vec::new();
    let mut sum = |name: &str, unit: &str, mono: bool, points: Vec<(Vec<KeyValue>, f64)>| {
        metrics.push(Metric {
            name: name.into(),
            unit: unit.into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: points
                    .into_iter()
                    .map(|(attributes, v)| NumberDataPoint {
                        attributes,
                        time_unix_nano: t,
                        value: Some(number_data_point::Value::AsDouble(v)),
                        ..Default::default()
                    })
                    .collect(),
                aggregation_temporality: 2,
                is_monotonic: mono,
            })),
            ..Default::default()
        });
    };
    let states = [
        "user", "system", "idle", "iowait", "nice", "irq", "softirq", "steal",
    ];
    let s = step as f64;
    let mut cpu = Vec::new();
    for c in 0..8 {
        for (i, st) in states.iter().enumerate() {
            cpu.push((
                vec![kv("cpu", &format!("cpu{c}")), kv("state", st)],
                s * (i as f64 + 0.37) * 1.13,
            ));
        }
    }
    sum("system.cpu.time", "s", true, cpu);
    let mut disk = Vec::new();
    for d in 0..4 {
        for dir in ["read", "write"] {
            disk.push((
                vec![kv("device", &format!("sd{d}")), kv("direction", dir)],
                s * 40960.0 * (d + 1) as f64,
            ));
        }
    }
    sum("system.disk.io", "By", true, disk.clone());
    sum("system.disk.operations", "{operation}", true, disk);
    let mut fs = Vec::new();
    for f in 0..10 {
        for st in ["used", "free", "reserved"] {
            fs.push((
                vec![
                    kv("device", &format!("/dev/vd{f}")),
                    kv("mountpoint", &format!("/m{f}")),
                    kv("type", "ext4"),
                    kv("mode", "rw"),
                    kv("state", st),
                ],
                1e9 + (s * 4096.0).floor(),
            ));
        }
    }
    sum("system.filesystem.usage", "By", false, fs);
    let mut net = Vec::new();
    for n in 0..4 {
        for dir in ["receive", "transmit"] {
            net.push((
                vec![kv("device", &format!("eth{n}")), kv("direction", dir)],
                s * 1500.0 * 17.0,
            ));
        }
    }
    for name in [
        "system.network.io",
        "system.network.packets",
        "system.network.errors",
        "system.network.dropped",
    ] {
        sum(name, "By", true, net.clone());
    }
    let mut util = Vec::new();
    for c in 0..8 {
        for st in states {
            util.push(NumberDataPoint {
                attributes: vec![kv("cpu", &format!("cpu{c}")), kv("state", st)],
                time_unix_nano: t,
                value: Some(number_data_point::Value::AsDouble(
                    ((step * 7 + c) % 100) as f64 / 100.0,
                )),
                ..Default::default()
            });
        }
    }
    metrics.push(Metric {
        name: "system.cpu.utilization".into(),
        unit: "1".into(),
        data: Some(metric::Data::Gauge(Gauge { data_points: util })),
        ..Default::default()
    });
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "redline-agent"),
                    kv("service.instance.id", &format!("host-{host}")),
                    kv("host.name", &format!("host-{host}")),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn bench(c: &mut Criterion) {
    let points: usize = convert::metrics(host_request(0, 0), 0).0.sample_count();
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(points as u64));
    group.measurement_time(Duration::from_secs(5));

    group.bench_function("convert", |b| {
        let req = host_request(0, 1);
        b.iter_batched(
            || req.clone(),
            |r| convert::metrics(r, 0),
            criterion::BatchSize::SmallInput,
        )
    });

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&StoreOptions::new(dir.path())).expect("store");
    let mut step = 0u64;
    group.bench_function("convert_and_commit", |b| {
        b.to_async(&runtime).iter(|| {
            step += 1;
            let store = store.clone();
            let req = host_request((step % 50) as usize, step / 50);
            async move {
                let (batch, _) = convert::metrics(req, 0);
                store.write(batch).await.expect("write")
            }
        })
    });

    // Many agents at once: the writer folds waiting writes into one transaction (group commit),
    // so one fsync covers many requests.
    const CONCURRENT: usize = 64;
    group.throughput(Throughput::Elements((points * CONCURRENT) as u64));
    group.bench_function("convert_and_commit_64_concurrent", |b| {
        b.to_async(&runtime).iter(|| {
            step += 1;
            let store = store.clone();
            let s = step;
            async move {
                let tasks: Vec<_> = (0..CONCURRENT)
                    .map(|h| {
                        let store = store.clone();
                        tokio::spawn(async move {
                            let (batch, _) = convert::metrics(host_request(100 + h, s), 0);
                            store.write(batch).await.expect("write")
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("join");
                }
            }
        })
    });
    group.finish();

    let samples: Vec<Sample> = (0..720)
        .map(|i| Sample {
            timestamp_ms: 1_700_000_000_000 + i * 10_000,
            value: 1e9 + (i * 4096) as f64,
        })
        .collect();
    let mut group = c.benchmark_group("chunk");
    group.throughput(Throughput::Elements(samples.len() as u64));
    group.bench_function("encode", |b| {
        b.iter(|| redline_collector::store::encode_chunk(&samples))
    });
    let encoded = redline_collector::store::encode_chunk(&samples);
    group.bench_function("decode", |b| {
        b.iter(|| redline_collector::store::decode_chunk(&encoded))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
