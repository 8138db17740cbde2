//! Both `/metrics` endpoints (the collector's on its HTTP API, the agent's own) pass
//! `promtool check metrics` with no findings, after real traffic has gone through them.
//!
//! In one process the agent and the collector share the `metrics` crate's global recorder:
//! whichever installs it first renders every self-metric and the other renders only its own
//! fallback. So each output is checked on its own, and the expected families are looked for in
//! the two outputs together.

use crate::agent::TestAgent;
use crate::support::{
    ARRIVAL_TIMEOUT, TestCollector, eventually, get_text, prom, promtool, promtool_check,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_metrics_endpoints_pass_promtool() -> anyhow::Result<()> {
    let Some(promtool) = promtool()? else {
        return Ok(());
    };
    let collector = TestCollector::start().await?;
    let agent = TestAgent::start(&collector.otlp_grpc_url()).await?;
    // Traffic first, so counters and histograms of both sides have samples.
    let query = collector.api("/api/v1/query");
    eventually("host metrics in the collector", ARRIVAL_TIMEOUT, || async {
        let data = prom(&query, &[("query", "system_memory_usage_bytes")]).await?;
        Ok(data["result"]
            .as_array()
            .filter(|r| !r.is_empty())
            .map(|_| ()))
    })
    .await?;
    let _ = prom(&query, &[("query", "{__name__=~\"system_cpu.*\"}")]).await;
    let _ = prom(&query, &[("query", "not a query (")]).await; // an error path

    let collector_metrics = get_text(&collector.api("/metrics")).await?;
    let agent_metrics = get_text(&agent.metrics_url()).await?;
    promtool_check(&promtool, "the collector's /metrics", &collector_metrics).await?;
    promtool_check(&promtool, "the agent's /metrics", &agent_metrics).await?;

    let both = format!("{collector_metrics}\n{agent_metrics}");
    for family in [
        "redline_collector_store_series",
        "redline_collector_received_total",
        "redline_agent_",
    ] {
        anyhow::ensure!(
            both.lines()
                .any(|l| !l.starts_with('#') && l.starts_with(family)),
            "no {family}* sample in either /metrics:\n--- collector ---\n{collector_metrics}\n--- agent ---\n{agent_metrics}"
        );
    }
    agent.stop().await?;
    collector.stop().await
}
