//! The streaming anomaly detector's hot path: points scored per second on one core with every
//! component on (robust baseline, seasonal profile, change point, k-means shape, calibration),
//! and the bytes of state one series costs. Run with
//! `cargo bench -p redline-collector --bench detect`. Throughput is reported in points
//! (elements) per second; the state size is printed once before the measurements.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use redline_collector::detect::detector::{Detector, Params};

/// A week of 1-minute samples of a noisy daily cycle with occasional spikes, like a host
/// gauge: deterministic (a fixed-seed xorshift), so runs are comparable.
fn series(points: usize) -> Vec<(i64, f64)> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    (0..points)
        .map(|i| {
            let t = 1_700_000_000_000 + i as i64 * 60_000;
            let day = (i as f64 / 1440.0) * std::f64::consts::TAU;
            let spike = if i % 5000 == 4999 { 40.0 } else { 0.0 };
            (t, 50.0 + 20.0 * day.sin() + 3.0 * noise() + spike)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let params = Params::default();
    let data = series(10_080);
    let probe = Detector::new(&params);
    println!(
        "detect: state per series = {} bytes (persisted: {} bytes fresh)",
        probe.state_bytes(),
        probe.to_bytes().len()
    );
    let mut warm = Detector::new(&params);
    for &(t, v) in &data {
        if warm.needs_training() {
            warm.train();
        }
        warm.observe(t, v);
    }
    println!(
        "detect: persisted state after a week = {} bytes",
        warm.to_bytes().len()
    );

    let mut group = c.benchmark_group("detect");
    group.throughput(Throughput::Elements(data.len() as u64));
    group.measurement_time(Duration::from_secs(5));
    // Scoring alone, on a warmed-up detector with a shape model (the daemon's hot path; the
    // periodic retraining runs on a blocking task).
    group.bench_function("observe", |b| {
        b.iter(|| {
            let mut d = warm.clone();
            let mut acc = 0.0;
            for &(t, v) in &data {
                acc += d.observe(t + 604_800_000, v);
            }
            black_box(acc)
        })
    });
    // Everything inline, retraining included, from a fresh series (what the NAB runner does).
    group.bench_function("observe_and_train", |b| {
        b.iter(|| {
            let mut d = Detector::new(&params);
            let mut acc = 0.0;
            for &(t, v) in &data {
                if d.needs_training() {
                    d.train();
                }
                acc += d.observe(t, v);
            }
            black_box(acc)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
