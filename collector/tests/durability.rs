//! "Acknowledged means committed", proven from outside: the real binary killed with SIGKILL
//! under full ingest load loses no acknowledged sample and stores none twice; a damaged
//! database file is refused at start with an actionable message; a store at its
//! `store.max_size` budget (SQLITE_FULL, as on a full disk) refuses ingest as retryable, keeps
//! everything it acknowledged, and takes the same exports once there is room again.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::Value;
use support::otlp;

const BIN: &str = env!("CARGO_BIN_EXE_redline-collector");

/// Series in every export of the kill test; each export carries one sample of each.
const SERIES_PER_EXPORT: usize = 10;

/// One export of the gauge `metric`: `series` series labelled `exporter` and `series`, one
/// sample each at `t_ms` with value `value` (the export's number, so every stored sample
/// names the export it came from).
fn export(
    metric_name: &str,
    exporter: &str,
    series: std::ops::Range<usize>,
    t_ms: i64,
    value: f64,
) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![otlp::kv("service.name", "durability")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: metric_name.into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: series
                            .map(|s| NumberDataPoint {
                                time_unix_nano: (t_ms as u64) * 1_000_000,
                                value: Some(number_data_point::Value::AsDouble(value)),
                                attributes: vec![
                                    otlp::kv("exporter", exporter),
                                    otlp::kv("series", &s.to_string()),
                                ],
                                ..Default::default()
                            })
                            .collect(),
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Three free ports on 127.0.0.1 (bound, read and released; a fresh set for every start,
/// so a restart never races the old process' sockets).
fn free_addrs() -> [SocketAddr; 3] {
    let l: Vec<_> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    [
        l[0].local_addr().unwrap(),
        l[1].local_addr().unwrap(),
        l[2].local_addr().unwrap(),
    ]
}

/// A `redline-collector run` process. Killed (SIGKILL) when dropped, so a failing test leaves
/// no process behind.
struct Proc {
    child: Child,
    grpc: SocketAddr,
    http: SocketAddr,
    stderr: PathBuf,
}

impl Proc {
    /// Starts the binary on `data` with `config` and waits until `/readyz` answers 200.
    async fn start(dir: &Path, config: &Path, round: usize) -> Proc {
        let [grpc, otlp_http, http] = free_addrs();
        let stderr = dir.join(format!("collector-{round}.log"));
        let child = std::process::Command::new(BIN)
            .args(["run", "--config"])
            .arg(config)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--otlp-grpc-listen", &grpc.to_string()])
            .args(["--otlp-http-listen", &otlp_http.to_string()])
            .args(["--http-listen", &http.to_string()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut p = Proc {
            child,
            grpc,
            http,
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(r) = reqwest::get(format!("http://{http}/readyz")).await
                && r.status() == 200
            {
                return p;
            }
            if let Some(status) = p.child.try_wait().unwrap() {
                panic!("collector exited with {status}: {}", p.log());
            }
            assert!(Instant::now() < deadline, "never ready: {}", p.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The value of the unlabelled metric `name` on `/metrics`, 0 when absent.
    async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::get(format!("http://{}/metrics", self.http))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        metric(&text, name)
    }

    /// SIGKILL (`Child::kill` on Unix), then reap.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// The raw samples of every series matching `selector` within the ten minutes before
    /// `at_ms`: series labels → (timestamp ms, value) in the order the API returns them.
    async fn raw(&self, selector: &str, at_ms: i64) -> BTreeMap<String, Vec<(i64, f64)>> {
        let q = format!("{selector}[10m]");
        let q = form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
        let url = format!(
            "http://{}/api/v1/query?query={q}&time={:.3}",
            self.http,
            at_ms as f64 / 1000.0
        );
        let body: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        assert_eq!(body["status"], "success", "{body}");
        let mut out = BTreeMap::new();
        for series in body["data"]["result"].as_array().unwrap() {
            let values = series["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| {
                    let t = (v[0].as_f64().unwrap() * 1000.0).round() as i64;
                    let value: f64 = v[1].as_str().unwrap().parse().unwrap();
                    (t, value)
                })
                .collect();
            out.insert(series["metric"].to_string(), values);
        }
        out
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one exporter saw: the numbers of its acknowledged exports, in order.
#[derive(Default)]
struct ExporterLog {
    acked: Vec<u64>,
    /// Attempts answered with an error (the collector killed, restarting, or refusing).
    failed_attempts: usize,
    /// Exports acknowledged only on a later attempt: the ones a kill caught in flight, some of
    /// them committed before the kill, so their retry is a duplicate delivery.
    retried: usize,
}

/// Sends numbered exports as fast as the collector acknowledges them, one in flight. A failed
/// export is retried (same number, same samples) until acknowledged, as an agent does; the
/// next number is sent only after the acknowledgement, so each series' timestamps increase.
/// Stops after the first acknowledgement once `stop` is set.
async fn exporter(
    id: usize,
    base_ms: i64,
    endpoint: tokio::sync::watch::Receiver<SocketAddr>,
    stop: Arc<AtomicBool>,
    total_acked: Arc<AtomicUsize>,
) -> ExporterLog {
    let mut log = ExporterLog::default();
    let name = id.to_string();
    let mut client: Option<MetricsServiceClient<tonic::transport::Channel>> = None;
    let mut n: u64 = 0;
    let mut failed_this_export = false;
    loop {
        if client.is_none() {
            let addr = *endpoint.borrow();
            match tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .unwrap()
                .timeout(Duration::from_secs(10))
                .connect_timeout(Duration::from_secs(1))
                .connect()
                .await
            {
                Ok(channel) => client = Some(MetricsServiceClient::new(channel)),
                Err(_) => {
                    log.failed_attempts += 1;
                    failed_this_export = true;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            }
        }
        let Some(c) = client.as_mut() else { continue };
        let request = export(
            "durability_test",
            &name,
            0..SERIES_PER_EXPORT,
            base_ms + n as i64,
            n as f64,
        );
        match c.export(request).await {
            Ok(response) => {
                let rejected = response
                    .into_inner()
                    .partial_success
                    .map_or(0, |p| p.rejected_data_points);
                assert_eq!(rejected, 0, "exporter {id}: export {n} partly rejected");
                log.acked.push(n);
                total_acked.fetch_add(1, Ordering::Relaxed);
                if failed_this_export {
                    log.retried += 1;
                    failed_this_export = false;
                }
                n += 1;
                if stop.load(Ordering::Relaxed) {
                    return log;
                }
            }
            Err(status) => {
                // UNAVAILABLE, or a broken connection (which tonic reports with several
                // codes): what a killed collector looks like. A refusal the client must not
                // retry would lose the data.
                assert!(
                    !matches!(
                        status.code(),
                        tonic::Code::InvalidArgument | tonic::Code::ResourceExhausted
                    ),
                    "exporter {id}: export {n}: {status:?}"
                );
                log.failed_attempts += 1;
                failed_this_export = true;
                client = None;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// SIGKILL under load, several times, on the same data directory: every acknowledged export is
/// stored exactly once, and duplicate deliveries after a restart (the head rebuilt from the
/// `wal` table) store nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_loses_no_acknowledged_sample_and_stores_none_twice() {
    const EXPORTERS: usize = 4;
    const KILLS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("collector.yaml");
    // A short flush interval so kills also land between, and during, head flushes (chunks
    // written and `wal` rows deleted in one transaction), not only between group commits.
    std::fs::write(&config, "store:\n  head_flush_interval: 1s\n").unwrap();
    // Timestamps an hour back: each export steps one millisecond, so even tens of thousands
    // of exports stay in the past.
    let base_ms = otlp::now_ms() - 3_600_000;

    let mut proc = Proc::start(dir.path(), &config, 0).await;
    let (endpoint_tx, endpoint) = tokio::sync::watch::channel(proc.grpc);
    let stop = Arc::new(AtomicBool::new(false));
    let total_acked = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..EXPORTERS)
        .map(|id| {
            tokio::spawn(exporter(
                id,
                base_ms,
                endpoint.clone(),
                stop.clone(),
                total_acked.clone(),
            ))
        })
        .collect();

    let mut acked_at_kill = Vec::new();
    let mut duplicates = 0.0;
    for round in 1..=KILLS {
        // Let the load run until a few hundred more exports were acknowledged (bounded), then
        // kill mid-stream.
        let before = total_acked.load(Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(60);
        while total_acked.load(Ordering::Relaxed) < before + 300 {
            assert!(Instant::now() < deadline, "ingest stalled: {}", proc.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(100 * round as u64)).await;
        // Samples this process found already stored: retries of exports the previous kill
        // caught after their commit, before their acknowledgement.
        duplicates += proc
            .metric("redline_collector_samples_duplicate_total")
            .await;
        proc.kill();
        acked_at_kill.push(total_acked.load(Ordering::Relaxed));
        proc = Proc::start(dir.path(), &config, round).await;
        endpoint_tx.send(proc.grpc).unwrap();
    }
    // Everything in flight at the last kill is retried into the last process; then stop.
    let before = total_acked.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(60);
    while total_acked.load(Ordering::Relaxed) < before + 100 {
        assert!(Instant::now() < deadline, "ingest stalled: {}", proc.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut logs = Vec::new();
    for t in tasks {
        logs.push(t.await.unwrap());
    }
    // One more kill with nothing in flight, so the check reads a head rebuilt from `wal`.
    duplicates += proc
        .metric("redline_collector_samples_duplicate_total")
        .await;
    proc.kill();
    let proc = Proc::start(dir.path(), &config, KILLS + 1).await;

    let at_ms = base_ms + 9 * 60_000;
    let stored = proc.raw("durability_test", at_ms).await;
    let mut found = 0usize;
    for (id, log) in logs.iter().enumerate() {
        // Retried until acknowledged, so the acknowledged numbers are exactly 0..len.
        let expected: Vec<u64> = (0..log.acked.len() as u64).collect();
        assert_eq!(log.acked, expected, "exporter {id}");
        for s in 0..SERIES_PER_EXPORT {
            let key = stored
                .keys()
                .find(|k| {
                    k.contains(&format!("\"exporter\":\"{id}\""))
                        && k.contains(&format!("\"series\":\"{s}\""))
                })
                .unwrap_or_else(|| panic!("exporter {id} series {s} missing"));
            let samples = &stored[key];
            // Exactly once: the stored export numbers are the acknowledged ones, each once,
            // and each at its own timestamp.
            let numbers: Vec<u64> = samples.iter().map(|(_, v)| *v as u64).collect();
            let distinct: BTreeSet<u64> = numbers.iter().copied().collect();
            assert_eq!(
                distinct.len(),
                numbers.len(),
                "exporter {id} series {s}: a sample stored twice"
            );
            assert_eq!(numbers, expected, "exporter {id} series {s}");
            for (t, v) in samples {
                assert_eq!(*t, base_ms + *v as i64, "exporter {id} series {s}");
            }
            found += samples.len();
        }
    }
    let acked: usize = logs.iter().map(|l| l.acked.len()).sum();
    assert_eq!(stored.len(), EXPORTERS * SERIES_PER_EXPORT);
    assert_eq!(found, acked * SERIES_PER_EXPORT);

    // Duplicate deliveries against the head rebuilt from `wal` (and chunks): the newest export
    // of each exporter again (same timestamps and values: a retry whose acknowledgement was
    // lost) is acknowledged in full and stores nothing; an older one is a duplicate or refused as out of
    // order, also storing nothing.
    let mut client = MetricsServiceClient::connect(format!("http://{}", proc.grpc))
        .await
        .unwrap();
    for (id, log) in logs.iter().enumerate() {
        let last = *log.acked.last().unwrap();
        let again = export(
            "durability_test",
            &id.to_string(),
            0..SERIES_PER_EXPORT,
            base_ms + last as i64,
            last as f64,
        );
        let response = client.export(again).await.unwrap().into_inner();
        assert_eq!(response.partial_success, None, "exporter {id}");
        let older = export(
            "durability_test",
            &id.to_string(),
            0..SERIES_PER_EXPORT,
            base_ms + last as i64 / 2,
            (last / 2) as f64,
        );
        // While that export's samples are still in the head they are recognised as
        // duplicates (acknowledged, nothing stored); once flushed into chunks they are
        // refused as out of order. Either way nothing is stored, which the check below shows.
        let response = client.export(older).await.unwrap().into_inner();
        let rejected = response.partial_success.map(|p| p.rejected_data_points);
        assert!(
            rejected.is_none() || rejected == Some(SERIES_PER_EXPORT as i64),
            "exporter {id}: {rejected:?}"
        );
    }
    let again = proc.raw("durability_test", at_ms).await;
    assert_eq!(
        again, stored,
        "a duplicate delivery changed the stored samples"
    );

    let failed: usize = logs.iter().map(|l| l.failed_attempts).sum();
    let retried: usize = logs.iter().map(|l| l.retried).sum();
    eprintln!(
        "kill -9 x{KILLS} (+1 idle): {EXPORTERS} exporters, {acked} exports acknowledged \
         ({} samples), acknowledged at each kill {acked_at_kill:?}; {failed} failed attempts, \
         {retried} exports retried after a kill, {duplicates} of their samples found already \
         committed (duplicates); {found} samples found, none twice",
        acked * SERIES_PER_EXPORT
    );
}

/// A database damaged on disk (bytes overwritten in the middle of a page, as a torn write or a
/// bad sector would) makes `run` exit non-zero, naming the file, SQLite's report and what to
/// do.
#[tokio::test]
async fn a_damaged_database_is_refused_at_start_with_the_file_and_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A store of small rows (many series, one sample each), stopped cleanly so every page is
    // in the main file.
    {
        let c = support::collector::start(support::collector::config(&data)).await;
        let t = otlp::now_ms();
        for batch in 0..20 {
            let exporter = format!("e{batch}");
            c.export(export("damaged_test", &exporter, 0..200, t, 1.0))
                .await;
        }
        c.stop().await;
    }
    let db = data.join("redline.db");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&db)
        .unwrap();
    let mut header = [0u8; 100];
    file.read_exact(&mut header).unwrap();
    // The page size is the big-endian u16 at offset 16 of the header.
    let page_size = u64::from(u16::from_be_bytes([header[16], header[17]]));
    let pages = file.metadata().unwrap().len() / page_size;
    assert!(pages > 20, "{pages} pages");
    // The middle 256 bytes of the middle page: cell contents and headers of a b-tree page.
    let page = pages / 2;
    file.seek(SeekFrom::Start(page * page_size + page_size / 2 - 128))
        .unwrap();
    file.write_all(&[0xA5; 256]).unwrap();
    file.sync_all().unwrap();
    drop(file);

    let [grpc, otlp_http, http] = free_addrs();
    let mut child = std::process::Command::new(BIN)
        .arg("run")
        .arg("--data-dir")
        .arg(&data)
        .args(["--otlp-grpc-listen", &grpc.to_string()])
        .args(["--otlp-http-listen", &otlp_http.to_string()])
        .args(["--http-listen", &http.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the collector started on a damaged database");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "{stderr}");
    for needle in [
        db.to_str().unwrap(),
        "is damaged",
        "SQLite reports",
        "move the file",
        "backup",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
    }
    eprintln!("{stderr}");
}

/// The metric value of `/metrics` line `name{labels}`, 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

/// At its `store.max_size` budget the store fails commits with SQLITE_FULL, as on a full disk:
/// ingest is answered UNAVAILABLE (retryable, counted), nothing refused is half-stored, all
/// that was acknowledged stays queryable, and after a restart with a larger budget the very
/// same exports are acknowledged and stored once.
#[tokio::test]
async fn a_full_store_refuses_ingest_as_retryable_and_takes_it_once_there_is_room() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let budget: u64 = 2 << 20;
    let config = |max_size| {
        let mut c = redline_collector::config::Config {
            store_max_size: Some(max_size),
            ..support::collector::config(&data)
        };
        // The checks count every series at once.
        c.query.max_series = 1_000_000;
        c
    };
    let t = otlp::now_ms() - 60_000;
    // Each export brings 200 new series (series rows and samples), so the budget fills fast.
    let make = |i: usize| export("full_test", &format!("e{i}"), 0..200, t, i as f64);

    let c = support::collector::start(config(budget)).await;
    let mut client = MetricsServiceClient::connect(format!("http://{}", c.grpc))
        .await
        .unwrap();
    let mut acked = 0usize;
    let refused_at = loop {
        assert!(acked < 2_000, "never refused");
        match client.export(make(acked)).await {
            Ok(r) => {
                assert_eq!(r.into_inner().partial_success, None);
                acked += 1;
            }
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
                assert!(status.message().contains("full"), "{status:?}");
                break acked;
            }
        }
    };
    // Refused consistently: the next exports, and the refused one again, fail the same way.
    for i in refused_at..refused_at + 5 {
        let status = client.export(make(i)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    }
    // OTLP/HTTP answers the same refusal with 503 and Retry-After, which clients retry.
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/metrics", c.otlp_http))
        .header("content-type", "application/x-protobuf")
        .body(prost::Message::encode_to_vec(&make(refused_at)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    // Everything acknowledged is there, from the in-memory head; nothing refused is.
    let count = c.query("count(full_test)").await;
    assert_eq!(count[0]["value"][1], (acked * 200).to_string(), "{count:?}");
    let exporters = c.query("count by (exporter) (full_test)").await;
    assert_eq!(exporters.len(), acked);
    assert_eq!(
        c.get("/api/v1/series?match%5B%5D=full_test").await["data"]
            .as_array()
            .unwrap()
            .len(),
        acked * 200
    );

    let text = reqwest::get(c.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let refused_points = metric(
        &text,
        "redline_collector_rejected_total{signal=\"metrics\",reason=\"store_unavailable\"}",
    );
    assert!(refused_points >= 7.0 * 200.0, "{text}");
    assert!(
        metric(
            &text,
            "redline_collector_store_errors_total{stage=\"commit\",error_type=\"full\"}"
        ) >= 6.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "redline_collector_store_size_limit_bytes"),
        budget as f64
    );
    let used = metric(&text, "redline_collector_store_used_bytes");
    assert!(used > 0.0 && used <= budget as f64, "{used}");
    c.stop().await;

    // Room again: the same exports, refused before, are acknowledged now, and everything is
    // stored exactly once (the acknowledged ones survived the restart, the retried ones
    // were not half-stored before).
    let c = support::collector::start(config(64 << 20)).await;
    let mut client = MetricsServiceClient::connect(format!("http://{}", c.grpc))
        .await
        .unwrap();
    for i in refused_at..refused_at + 6 {
        let r = client.export(make(i)).await.unwrap().into_inner();
        assert_eq!(r.partial_success, None);
    }
    // And a duplicate delivery of an export acknowledged before the refusal stores nothing.
    let r = client.export(make(0)).await.unwrap().into_inner();
    assert_eq!(r.partial_success, None);
    let total = acked + 6;
    let count = c.query("count(full_test)").await;
    assert_eq!(count[0]["value"][1], (total * 200).to_string(), "{count:?}");
    let samples = c.query("sum(count_over_time(full_test[5m]))").await;
    assert_eq!(
        samples[0]["value"][1],
        (total * 200).to_string(),
        "{samples:?}"
    );
    c.stop().await;
    eprintln!(
        "max_size {budget} B: {acked} exports ({} samples, {} series) acknowledged, then \
         refused UNAVAILABLE ({refused_points} points counted as store_unavailable, used {used} B); \
         after a restart with 64 MiB the 6 refused exports were acknowledged: {} samples, each once",
        acked * 200,
        acked * 200,
        total * 200
    );
}
