//! The agent's host metrics arrive in the collector and read back through every
//! Prometheus-shaped endpoint: instant query, range query, series, label names and values.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::agent::TestAgent;
use crate::support::{ARRIVAL_TIMEOUT, TestCollector, eventually, hostname, prom};

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_host_metrics_are_queryable() -> anyhow::Result<()> {
    let collector = TestCollector::start().await?;
    let agent = TestAgent::start(&collector.otlp_grpc_url()).await?;
    let query = collector.api("/api/v1/query");

    // Instant query: memory usage by state, with the host's identity.
    let memory: Vec<Value> = eventually("system_memory_usage_bytes", ARRIVAL_TIMEOUT, || async {
        let data = prom(&query, &[("query", "system_memory_usage_bytes")]).await?;
        anyhow::ensure!(data["resultType"] == "vector", "not a vector: {data}");
        let result = data["result"].as_array().cloned().unwrap_or_default();
        Ok((!result.is_empty()).then_some(result))
    })
    .await?;
    let host = hostname();
    let mut states = BTreeSet::new();
    for series in &memory {
        let labels = &series["metric"];
        anyhow::ensure!(
            labels["__name__"] == "system_memory_usage_bytes",
            "{series}"
        );
        anyhow::ensure!(labels["job"] == "redline-agent", "job label: {series}");
        let host_name = labels["host_name"].as_str().unwrap_or_default();
        anyhow::ensure!(!host_name.is_empty(), "host_name label: {series}");
        if let Some(host) = &host {
            anyhow::ensure!(
                host_name == host,
                "host_name {host_name:?} is not this host {host:?}"
            );
        }
        anyhow::ensure!(
            labels["instance"] == host_name,
            "instance should be the host name: {series}"
        );
        let state = labels["state"].as_str().unwrap_or_default();
        anyhow::ensure!(!state.is_empty(), "state label: {series}");
        states.insert(state.to_owned());
        let value: f64 = series["value"][1].as_str().unwrap_or_default().parse()?;
        anyhow::ensure!(value >= 0.0, "negative memory usage: {series}");
    }
    anyhow::ensure!(
        states.contains("used"),
        "no state=\"used\" among {states:?}"
    );

    // CPU time: a counter per cpu and state.
    let cpu = prom(&query, &[("query", "system_cpu_time_seconds_total")]).await?;
    let cpu = cpu["result"].as_array().cloned().unwrap_or_default();
    anyhow::ensure!(!cpu.is_empty(), "no system_cpu_time_seconds_total");
    anyhow::ensure!(
        cpu.iter()
            .all(|s| s["metric"]["cpu"].is_string() && s["metric"]["state"].is_string()),
        "cpu time series without cpu/state labels: {cpu:?}"
    );

    // Range query: wait for two collection cycles, then check the matrix is in time order.
    let range = collector.api("/api/v1/query_range");
    let matrix: Vec<Value> = eventually(
        "two points of system_memory_usage_bytes",
        ARRIVAL_TIMEOUT,
        || async {
            let end = now_secs();
            let (start, end) = (format!("{:.3}", end - 120.0), format!("{end:.3}"));
            let data = prom(
                &range,
                &[
                    ("query", "system_memory_usage_bytes"),
                    ("start", &start),
                    ("end", &end),
                    ("step", "1s"),
                ],
            )
            .await?;
            anyhow::ensure!(data["resultType"] == "matrix", "not a matrix: {data}");
            let result = data["result"].as_array().cloned().unwrap_or_default();
            let enough = result
                .iter()
                .any(|s| s["values"].as_array().is_some_and(|v| v.len() >= 2));
            Ok(enough.then_some(result))
        },
    )
    .await?;
    for series in &matrix {
        let times: Vec<f64> = series["values"]
            .as_array()
            .map(|v| v.iter().filter_map(|p| p[0].as_f64()).collect())
            .unwrap_or_default();
        anyhow::ensure!(
            times.windows(2).all(|w| w[0] < w[1]),
            "points out of order: {series}"
        );
        anyhow::ensure!(series["metric"]["job"] == "redline-agent", "{series}");
    }

    // Series: every match carries its name and the agent's job.
    let series = prom(
        &collector.api("/api/v1/series"),
        &[("match[]", "system_memory_usage_bytes")],
    )
    .await?;
    let series = series.as_array().cloned().unwrap_or_default();
    anyhow::ensure!(
        series.len() >= memory.len(),
        "series {series:?} vs query {memory:?}"
    );
    anyhow::ensure!(
        series
            .iter()
            .all(|s| s["__name__"] == "system_memory_usage_bytes" && s["job"] == "redline-agent"),
        "{series:?}"
    );
    let filtered = prom(
        &collector.api("/api/v1/series"),
        &[(
            "match[]",
            "{__name__=\"system_memory_usage_bytes\",state=\"used\"}",
        )],
    )
    .await?;
    anyhow::ensure!(
        filtered.as_array().map(Vec::len) == Some(1),
        "state=\"used\" should match one series: {filtered}"
    );

    // Label names and values.
    let labels = strings(&prom(&collector.api("/api/v1/labels"), &[]).await?);
    for name in ["__name__", "host_name", "instance", "job", "state", "cpu"] {
        anyhow::ensure!(
            labels.contains(name),
            "/api/v1/labels lacks {name}: {labels:?}"
        );
    }
    let names = strings(&prom(&collector.api("/api/v1/label/__name__/values"), &[]).await?);
    for name in [
        "system_memory_usage_bytes",
        "system_cpu_time_seconds_total",
        "system_cpu_load_average_1m",
        "system_network_io_bytes_total",
    ] {
        anyhow::ensure!(
            names.contains(name),
            "/api/v1/label/__name__/values lacks {name}: {names:?}"
        );
    }
    let jobs = strings(&prom(&collector.api("/api/v1/label/job/values"), &[]).await?);
    anyhow::ensure!(jobs.contains("redline-agent"), "job values: {jobs:?}");

    agent.stop().await?;
    collector.stop().await
}
