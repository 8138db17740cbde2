//! What parsing a PromQL query costs, and what a bad one costs before it is answered with a
//! Prometheus-style positioned error: the position search parses candidate prefixes, so its
//! cost grows with the query and with the regex matchers in it. Run with
//! `cargo bench -p redline-collector --bench query_parse`.
//!
//! Cases:
//! - `valid`: a dashboard-sized query with regex matchers.
//! - `syntax_error`: 149 tokens, 20 regex matchers of `\w{1,100}zN` (each a few tens of
//!   milliseconds to compile), and a stray `*` at the end. Before the search blanked the
//!   patterns (`421e222`) this one query took 71.5 s of CPU in a release build.
//! - `huge_repeat`: a matcher with `a{3333333}`, which Go refuses at once and the regex crate
//!   would build 10 MiB of program to refuse; refused by the pre-parse check.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use redline_collector::query;

fn matchers(n: usize) -> String {
    (0..n)
        .map(|i| format!(r#"x{{a=~"\\w{{1,100}}z{i}"}}"#))
        .collect::<Vec<_>>()
        .join(" + ")
}

fn bench(c: &mut Criterion) {
    let valid = r#"sum by (host_name) (rate(system_network_io_bytes_total{host_name=~"web-.*|db-[0-9]+", direction!~"rx|lo"}[5m])) / on (host_name) group_left count by (host_name) (system_cpu_time_seconds_total{mode="idle"})"#;
    let syntax_error = format!("sum({}) by (a) + * 2", matchers(20));
    let huge_repeat = r#"up{job=~"a{3333333}"}"#;
    for (query, ok) in [
        (valid, true),
        (syntax_error.as_str(), false),
        (huge_repeat, false),
    ] {
        assert_eq!(query::parse(query).is_ok(), ok, "{query}");
    }

    let mut group = c.benchmark_group("query_parse");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("valid", |b| b.iter(|| query::parse(black_box(valid))));
    group.bench_function("syntax_error", |b| {
        b.iter(|| query::parse(black_box(&syntax_error)))
    });
    group.bench_function("huge_repeat", |b| {
        b.iter(|| query::parse(black_box(huge_repeat)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
