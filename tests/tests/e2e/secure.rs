//! The agent and the collector as real processes over mutual TLS with bearer tokens: certificates
//! from a private CA, the agent's token and client certificate from files named in its
//! configuration, both configurations checked by `validate` first. Host metrics and a relayed
//! application sample arrive through the encrypted, authenticated hop; an agent with the wrong
//! token keeps its data spooled and delivers it once its token file is fixed and it is sent
//! SIGHUP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use serde_json::Value;

use super::outage::{binary, free_port, signal, wait_ready};

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, as PEM files
/// in `dir`.
fn pki(dir: &Path) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "redline e2e CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    write(&dir.join("ca.pem"), &ca.pem());
    let issue = |name: &str, sans: Vec<String>, usage| {
        let mut p = CertificateParams::new(sans).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &ca).unwrap();
        write(&dir.join(format!("{name}.crt")), &cert.pem());
        write(&dir.join(format!("{name}.key")), &key.serialize_pem());
    };
    issue(
        "collector",
        vec!["localhost".into(), "127.0.0.1".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    issue("agent", vec![], ExtendedKeyUsagePurpose::ClientAuth);
}

fn validate(bin: &str, config: &Path) {
    let out = Command::new(binary(bin))
        .args(["validate", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{bin} validate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn spawn(bin: &str, config: &Path) -> Child {
    Command::new(binary(bin))
        .args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_to_collector_over_mutual_tls_with_tokens() {
    // reqwest is built without a default crypto provider; the process's is ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    pki(d);
    write(&d.join("ingest.tokens"), "agent-token-1\n");
    write(&d.join("read.tokens"), "reader\n");
    write(&d.join("agent.token"), "wrong-token\n");
    let (grpc, http, api, relay_grpc, relay_http, agent_metrics) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let collector_config = d.join("collector.yaml");
    write(
        &collector_config,
        &format!(
            "data_dir: {dir}/data\n\
             listen: {{otlp_grpc: 127.0.0.1:{grpc}, otlp_http: 127.0.0.1:{http}, http: 127.0.0.1:{api}}}\n\
             auth: {{ingest_token_file: {dir}/ingest.tokens, read_token_file: {dir}/read.tokens}}\n\
             tls: {{cert_file: {dir}/collector.crt, key_file: {dir}/collector.key, client_ca_file: {dir}/ca.pem, listeners: [otlp_grpc, otlp_http]}}\n",
            dir = d.display()
        ),
    );
    let agent_config = d.join("agent.yaml");
    write(
        &agent_config,
        &format!(
            "exporter:\n  endpoint: https://localhost:{grpc}\n  token_file: {dir}/agent.token\n  \
             tls: {{ca_file: {dir}/ca.pem, cert_file: {dir}/agent.crt, key_file: {dir}/agent.key}}\n  \
             queue: {{directory: {dir}/spool}}\n  retry_initial_backoff: 50ms\n  retry_max_backoff: 300ms\n\
             host_metrics: {{interval: 500ms}}\n\
             relay: {{grpc_listen: 127.0.0.1:{relay_grpc}, http_listen: 127.0.0.1:{relay_http}}}\n\
             telemetry: {{listen: 127.0.0.1:{agent_metrics}}}\n",
            dir = d.display()
        ),
    );
    validate("redline-collector", &collector_config);
    validate("redline-agent", &agent_config);

    let mut collector = spawn("redline-collector", &collector_config);
    wait_ready(&format!("http://127.0.0.1:{api}/readyz")).await;
    let mut agent = spawn("redline-agent", &agent_config);
    wait_ready(&format!("http://127.0.0.1:{agent_metrics}/healthz")).await;

    let client = reqwest::Client::new();
    let count = || async {
        let body: Value = client
            .get(format!(
                "http://127.0.0.1:{api}/api/v1/query?query=count_over_time(system_uptime_seconds%5B1h%5D)"
            ))
            .bearer_auth("reader")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["data"]["result"][0]["value"][1]
            .as_str()
            .map_or(0.0, |v| v.parse::<f64>().unwrap())
    };
    // The wrong token: the collector refuses, the agent counts it and keeps its data.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count().await, 0.0, "nothing gets in with a wrong token");
    let agent_metrics_text = reqwest::get(format!("http://127.0.0.1:{agent_metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        agent_metrics_text
            .lines()
            .any(|l| l.starts_with("redline_agent_export_failures_total")
                && l.contains("unauthenticated")),
        "{agent_metrics_text}"
    );
    // Fixed token file, SIGHUP: the spooled host metrics of the last seconds arrive.
    write(&d.join("agent.token"), "agent-token-1\n");
    signal(&agent, "HUP");
    let deadline = Instant::now() + Duration::from_secs(30);
    while count().await < 4.0 {
        assert!(
            Instant::now() < deadline,
            "host metrics never arrived over mTLS"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Reads need the read token.
    let r = client
        .get(format!("http://127.0.0.1:{api}/api/v1/query?query=up"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    signal(&agent, "TERM");
    assert!(agent.wait().unwrap().success());
    signal(&collector, "TERM");
    assert!(collector.wait().unwrap().success());
    let _ = collector.kill();
    let _ = agent.kill();
}
