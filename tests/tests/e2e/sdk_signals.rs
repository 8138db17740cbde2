//! Metrics and logs from the OpenTelemetry Python SDK (`tests/python/send_metrics.py`,
//! `send_logs.py`) reach the collector, straight over gRPC and HTTP and through the agent's
//! relay, and read back through `/api/v1/query` and `/api/v1/logs`.

use std::path::Path;

use serde_json::Value;

use crate::agent::TestAgent;
use crate::support::{ARRIVAL_TIMEOUT, TestCollector, eventually, prom, python, run_python};

/// Sends the SDK's known metrics as `service` and checks them through PromQL selectors:
/// the counter (OTel name `e2e.requests`, unit `{request}`), the gauge and the histogram,
/// named the way Prometheus' OTLP receiver names them, with `job` from `service.name`.
async fn metrics_roundtrip(
    python: &Path,
    collector: &TestCollector,
    endpoint: &str,
    protocol: &str,
    service: &str,
) -> anyhow::Result<()> {
    run_python(
        python,
        "send_metrics.py",
        &[
            "--endpoint",
            endpoint,
            "--protocol",
            protocol,
            "--service",
            service,
        ],
    )
    .await?;
    let url = collector.api("/api/v1/query");
    let counter = format!("e2e_requests_total{{job=\"{service}\"}}");
    let result: Vec<Value> = eventually(&counter, ARRIVAL_TIMEOUT, || async {
        let data = prom(&url, &[("query", &counter)]).await?;
        let result = data["result"].as_array().cloned().unwrap_or_default();
        Ok((result.len() == 2).then_some(result))
    })
    .await?;
    for (route, want) in [("/a", "3"), ("/b", "4")] {
        let series = result
            .iter()
            .find(|s| s["metric"]["route"] == route)
            .ok_or_else(|| anyhow::anyhow!("no series with route={route}: {result:?}"))?;
        anyhow::ensure!(
            series["value"][1] == want,
            "{counter} route={route}: {series}"
        );
    }
    let gauge = format!("e2e_queue_depth{{job=\"{service}\"}}");
    let data = prom(&url, &[("query", &gauge)]).await?;
    anyhow::ensure!(data["result"][0]["value"][1] == "42", "{gauge}: {data}");
    let count = format!("e2e_request_duration_seconds_count{{job=\"{service}\"}}");
    let data = prom(&url, &[("query", &count)]).await?;
    anyhow::ensure!(data["result"][0]["value"][1] == "3", "{count}: {data}");
    let buckets = format!("e2e_request_duration_seconds_bucket{{job=\"{service}\",le=\"+Inf\"}}");
    let data = prom(&url, &[("query", &buckets)]).await?;
    anyhow::ensure!(data["result"][0]["value"][1] == "3", "{buckets}: {data}");
    Ok(())
}

/// Sends 3 log records as `service` inside one span and finds them by service, trace id,
/// severity and text.
async fn logs_roundtrip(
    python: &Path,
    collector: &TestCollector,
    endpoint: &str,
    protocol: &str,
    service: &str,
) -> anyhow::Result<()> {
    let out = run_python(
        python,
        "send_logs.py",
        &[
            "--endpoint",
            endpoint,
            "--protocol",
            protocol,
            "--service",
            service,
            "--logs",
            "3",
        ],
    )
    .await?;
    let trace_id = out.lines().last().unwrap_or_default().trim().to_owned();
    let url = collector.api("/api/v1/logs");
    let records: Vec<Value> =
        eventually(&format!("logs of {service}"), ARRIVAL_TIMEOUT, || async {
            let data = prom(&url, &[("service", service), ("trace_id", &trace_id)]).await?;
            let records = data.as_array().cloned().unwrap_or_default();
            Ok((records.len() == 3).then_some(records))
        })
        .await?;
    for i in 0..3 {
        let body = format!("payment declined #{i}");
        anyhow::ensure!(
            records.iter().any(|r| r["body"] == body.as_str()),
            "no record {body:?}: {records:?}"
        );
    }
    let errors = prom(&url, &[("service", service), ("severity", "ERROR")]).await?;
    let errors = errors.as_array().cloned().unwrap_or_default();
    anyhow::ensure!(
        errors.len() == 1
            && errors[0]["body"] == "payment declined #2"
            && errors[0]["severity_text"] == "ERROR",
        "severity=ERROR should find only record #2: {errors:?}"
    );
    let contains = prom(&url, &[("service", service), ("contains", "#1")]).await?;
    anyhow::ensure!(
        contains.as_array().map(Vec::len) == Some(1),
        "contains=#1: {contains}"
    );
    Ok(())
}

async fn straight_to_collector(protocol: &str) -> anyhow::Result<()> {
    let Some(python) = python()? else {
        return Ok(());
    };
    let collector = TestCollector::start().await?;
    let endpoint = match protocol {
        "grpc" => collector.otlp_grpc_url(),
        _ => collector.otlp_http_url(),
    };
    metrics_roundtrip(
        &python,
        &collector,
        &endpoint,
        protocol,
        &format!("billing-direct-{protocol}"),
    )
    .await?;
    logs_roundtrip(
        &python,
        &collector,
        &endpoint,
        protocol,
        &format!("payments-direct-{protocol}"),
    )
    .await?;
    collector.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_metrics_and_logs_straight_to_collector_over_grpc() -> anyhow::Result<()> {
    straight_to_collector("grpc").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_metrics_and_logs_straight_to_collector_over_http() -> anyhow::Result<()> {
    straight_to_collector("http").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_metrics_and_logs_through_agent_relay() -> anyhow::Result<()> {
    let Some(python) = python()? else {
        return Ok(());
    };
    let collector = TestCollector::start().await?;
    let agent = TestAgent::start(&collector.otlp_grpc_url()).await?;
    metrics_roundtrip(
        &python,
        &collector,
        &agent.otlp_grpc_url(),
        "grpc",
        "billing-relay-grpc",
    )
    .await?;
    logs_roundtrip(
        &python,
        &collector,
        &agent.otlp_http_url(),
        "http",
        "payments-relay-http",
    )
    .await?;
    agent.stop().await?;
    collector.stop().await
}
