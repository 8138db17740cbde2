//! Spans from an application instrumented with the OpenTelemetry Python SDK
//! (`tests/python/send_spans.py`) reach the collector, either through the agent's relay or
//! straight, over gRPC and HTTP, and are readable through the Jaeger-shaped API.

use serde_json::Value;

use crate::agent::TestAgent;
use crate::support::{ARRIVAL_TIMEOUT, TestCollector, eventually, get_json, python, run_python};

const SPANS: usize = 4;

/// Sends one trace of `SPANS` spans as `service` to `endpoint` and returns its id.
async fn send_trace(
    endpoint: &str,
    protocol: &str,
    service: &str,
) -> anyhow::Result<Option<String>> {
    let Some(python) = python()? else {
        return Ok(None);
    };
    let spans = SPANS.to_string();
    let out = run_python(
        &python,
        "send_spans.py",
        &[
            "--endpoint",
            endpoint,
            "--protocol",
            protocol,
            "--service",
            service,
            "--spans",
            &spans,
        ],
    )
    .await?;
    let trace_id = out.lines().last().unwrap_or_default().trim().to_owned();
    anyhow::ensure!(
        trace_id.len() == 32 && trace_id.chars().all(|c| c.is_ascii_hexdigit()),
        "send_spans.py printed {out:?}, not a trace id"
    );
    Ok(Some(trace_id))
}

/// Finds the trace through `/api/services`, `/api/traces?service=` and `/api/traces/{id}`,
/// and checks its shape: every span, one service, the parent links, attributes and status.
async fn assert_trace_readable(
    collector: &TestCollector,
    service: &str,
    trace_id: &str,
) -> anyhow::Result<()> {
    let search = collector.api("/api/traces");
    let found: Value = eventually(
        &format!("trace {trace_id} of {service}"),
        ARRIVAL_TIMEOUT,
        || async {
            let body = get_json(&search, &[("service", service), ("limit", "20")]).await?;
            let hit = body["data"]
                .as_array()
                .and_then(|traces| traces.iter().find(|t| t["traceID"] == trace_id).cloned());
            // The relay may forward spans in more than one request: wait for all of them.
            Ok(hit.filter(|t| t["spans"].as_array().is_some_and(|s| s.len() == SPANS)))
        },
    )
    .await?;

    let services = get_json(&collector.api("/api/services"), &[]).await?;
    anyhow::ensure!(
        services["data"]
            .as_array()
            .is_some_and(|s| s.iter().any(|v| v == service)),
        "/api/services does not list {service}: {services}"
    );

    let by_id = get_json(&collector.api(&format!("/api/traces/{trace_id}")), &[]).await?;
    let trace = &by_id["data"][0];
    anyhow::ensure!(
        trace["traceID"] == trace_id,
        "/api/traces/{trace_id}: {by_id}"
    );
    let spans = trace["spans"].as_array().cloned().unwrap_or_default();
    anyhow::ensure!(
        spans.len() == SPANS,
        "/api/traces/{trace_id} has {} spans, expected {SPANS}: {by_id}",
        spans.len()
    );
    anyhow::ensure!(found["spans"].as_array().map(Vec::len) == Some(SPANS));

    // Every span belongs to a process whose serviceName is the SDK's service.name.
    for span in &spans {
        let pid = span["processID"].as_str().unwrap_or_default();
        anyhow::ensure!(
            trace["processes"][pid]["serviceName"] == service,
            "span {} has process {pid} not of {service}: {by_id}",
            span["spanID"]
        );
    }
    let root = spans
        .iter()
        .find(|s| s["operationName"] == "GET /checkout")
        .ok_or_else(|| anyhow::anyhow!("no root span GET /checkout: {by_id}"))?;
    let root_id = root["spanID"].clone();
    let tag = |span: &Value, key: &str| -> Option<Value> {
        span["tags"]
            .as_array()?
            .iter()
            .find(|t| t["key"] == key)
            .map(|t| t["value"].clone())
    };
    anyhow::ensure!(
        tag(root, "http.route") == Some("/checkout".into()),
        "root tags: {root}"
    );
    anyhow::ensure!(
        tag(root, "http.response.status_code") == Some(200.into()),
        "root tags: {root}"
    );
    let children: Vec<&Value> = spans.iter().filter(|s| s["spanID"] != root_id).collect();
    for child in &children {
        let parent = child["references"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["refType"] == "CHILD_OF"))
            .map(|r| r["spanID"].clone());
        anyhow::ensure!(
            parent == Some(root_id.clone()),
            "{} is not a child of the root: {child}",
            child["operationName"]
        );
        anyhow::ensure!(
            tag(child, "redline.e2e") == Some(true.into()),
            "child tags: {child}"
        );
    }
    // step-0 carries the error status and the event the script records.
    let failed = children
        .iter()
        .find(|s| s["operationName"] == "step-0")
        .ok_or_else(|| anyhow::anyhow!("no span step-0: {by_id}"))?;
    anyhow::ensure!(
        tag(failed, "error") == Some(true.into())
            || tag(failed, "otel.status_code") == Some("ERROR".into()),
        "step-0 should carry the error status: {failed}"
    );
    anyhow::ensure!(
        failed["logs"].as_array().is_some_and(|l| !l.is_empty()),
        "step-0 should carry the work.done event: {failed}"
    );
    Ok(())
}

async fn straight_to_collector(protocol: &str) -> anyhow::Result<()> {
    let collector = TestCollector::start().await?;
    let endpoint = match protocol {
        "grpc" => collector.otlp_grpc_url(),
        _ => collector.otlp_http_url(),
    };
    let service = format!("checkout-direct-{protocol}");
    if let Some(trace_id) = send_trace(&endpoint, protocol, &service).await? {
        assert_trace_readable(&collector, &service, &trace_id).await?;
    }
    collector.stop().await
}

async fn through_agent_relay(protocol: &str) -> anyhow::Result<()> {
    let collector = TestCollector::start().await?;
    let agent = TestAgent::start(&collector.otlp_grpc_url()).await?;
    let endpoint = match protocol {
        "grpc" => agent.otlp_grpc_url(),
        _ => agent.otlp_http_url(),
    };
    let service = format!("checkout-relay-{protocol}");
    if let Some(trace_id) = send_trace(&endpoint, protocol, &service).await? {
        assert_trace_readable(&collector, &service, &trace_id).await?;
    }
    agent.stop().await?;
    collector.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_spans_straight_to_collector_over_grpc() -> anyhow::Result<()> {
    straight_to_collector("grpc").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_spans_straight_to_collector_over_http() -> anyhow::Result<()> {
    straight_to_collector("http").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_spans_through_agent_relay_over_grpc() -> anyhow::Result<()> {
    through_agent_relay("grpc").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_spans_through_agent_relay_over_http() -> anyhow::Result<()> {
    through_agent_relay("http").await
}
