//! Limits and bad input at the OTLP listeners, through real clients over TCP: each limit gives
//! the protocol's own answer (413 / `RESOURCE_EXHAUSTED` / 429 with a retry delay / a partial
//! success naming the limit), is counted with the limit's name in `/metrics`, and leaves what
//! was already accepted in place. Also the defined behaviour of NaN and ±Inf values, far-future
//! and too-old timestamps, out-of-order samples, empty metric names and invalid UTF-8.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use prost::Message;
use redline_collector::config::Config;
use support::otlp;
use tokio::io::AsyncWriteExt;

fn limited(dir: &std::path::Path) -> Config {
    let mut config = support::collector::config(&dir.join("data"));
    config.max_request_bytes = 64 * 1024;
    config.max_concurrent_requests = 1;
    config.api_max_concurrent_requests = 1;
    config.ingest_limits.max_series_per_request = 5;
    config.ingest_limits.max_labels_per_series = 6;
    config.ingest_limits.max_label_value_length = 32;
    config.ingest_limits.max_future = Duration::from_secs(600);
    config.series_limits.max_series_per_host = 4;
    config.series_limits.max_series = 12;
    config
}

/// One request with a series per value of attribute `i`, all on `host`.
fn series(host: &str, name: &str, n: usize, t: i64) -> ExportMetricsServiceRequest {
    let mut request = ExportMetricsServiceRequest::default();
    for i in 0..n {
        let r = otlp::gauge(
            &[("service.name", "app"), ("host.name", host)],
            name,
            "",
            &[(t, i as f64)],
            &[("i", &i.to_string())],
        );
        request.resource_metrics.extend(r.resource_metrics);
    }
    request
}

fn metric_value(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn limits_answer_in_the_protocols_terms() {
    let dir = tempfile::tempdir().unwrap();
    let c = support::collector::start(limited(dir.path())).await;
    let mut grpc = MetricsServiceClient::connect(format!("http://{}", c.grpc))
        .await
        .unwrap();
    let now = otlp::now_ms();

    // A message over the size limit: RESOURCE_EXHAUSTED (gRPC's own code for it), not the
    // OUT_OF_RANGE tonic answers by itself; over HTTP, 413.
    let big = otlp::gauge(
        &[("service.name", "app"), ("host.name", "big")],
        "big_metric",
        "",
        &(0..4000).map(|i| (now - 4000 + i, 1.0)).collect::<Vec<_>>(),
        &[("pad", &"x".repeat(20))],
    );
    assert!(big.encoded_len() > 64 * 1024);
    let e = grpc.export(big.clone()).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    let http = reqwest::Client::new();
    let r = http
        .post(format!("http://{}/v1/metrics", c.otlp_http))
        .header("content-type", "application/x-protobuf")
        .body(big.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);

    // A gzip bomb: 64 MiB of zeros in a few KiB; refused while inflating, at the limit.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 64 << 20]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 128 * 1024);
    let r = http
        .post(format!("http://{}/v1/metrics", c.otlp_http))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);

    // Too many series in one request: refused whole, nothing stored.
    let e = grpc
        .export(series("h0", "wide_metric", 6, now))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message().contains("limits.max_series_per_request"),
        "{e:?}"
    );
    assert!(c.query("wide_metric").await.is_empty());

    // Label limits: the offending series is refused, the rest stored, and the partial
    // success says which limit.
    let mut mixed = series("h1", "label_metric", 1, now);
    let long = otlp::gauge(
        &[("service.name", "app"), ("host.name", "h1")],
        "label_metric",
        "",
        &[(now, 7.0)],
        &[("long", &"v".repeat(40))],
    );
    mixed.resource_metrics.extend(long.resource_metrics);
    let answer = grpc.export(mixed).await.unwrap().into_inner();
    let partial = answer.partial_success.expect("partial success");
    assert_eq!(partial.rejected_data_points, 1);
    assert!(
        partial
            .error_message
            .contains("limits.max_label_value_length (32)"),
        "{partial:?}"
    );
    assert_eq!(c.query("label_metric").await.len(), 1);

    // Cardinality: host h2 may have 4 series; the 5th and 6th are refused, its existing
    // series keep being written, and another host is not affected.
    let a = grpc
        .export(series("h2", "card_metric", 4, now))
        .await
        .unwrap()
        .into_inner();
    assert!(a.partial_success.is_none(), "{a:?}");
    let a = grpc
        .export(series("h2", "card_metric", 4, now + 1000))
        .await
        .unwrap()
        .into_inner();
    assert!(a.partial_success.is_none(), "existing series go on: {a:?}");
    let a = grpc
        .export(series("h2", "card_other", 2, now))
        .await
        .unwrap()
        .into_inner();
    let partial = a.partial_success.expect("partial success");
    assert_eq!(partial.rejected_data_points, 2, "{partial:?}");
    assert!(
        partial
            .error_message
            .contains("per-host series limit reached: host \"h2\" has 4 series"),
        "{partial:?}"
    );
    let rows = c.query("count_over_time(card_metric[1h])").await;
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r["value"][1] == "2"), "{rows:?}");
    let a = grpc
        .export(series("h3", "card_metric", 2, now))
        .await
        .unwrap()
        .into_inner();
    assert!(a.partial_success.is_none(), "{a:?}");

    // The store-wide limit (12): label_metric 1 + h2 4 + h3 2 = 7 series; 5 more fit, then
    // new series are refused from any host.
    let a = grpc
        .export(series("h4", "total_metric", 4, now))
        .await
        .unwrap()
        .into_inner();
    assert!(a.partial_success.is_none(), "{a:?}");
    let a = grpc
        .export(series("h5", "total_metric", 3, now))
        .await
        .unwrap()
        .into_inner();
    let partial = a.partial_success.expect("partial success");
    assert_eq!(partial.rejected_data_points, 2, "{partial:?}");
    assert!(
        partial.error_message.contains("limits.max_series"),
        "{partial:?}"
    );

    // Requests in progress: a request whose body is still arriving holds the only permit;
    // meanwhile OTLP/HTTP answers 429 with Retry-After and gRPC RESOURCE_EXHAUSTED with a
    // RetryInfo, which OTLP clients retry after the delay.
    let mut slow = tokio::net::TcpStream::connect(c.otlp_http).await.unwrap();
    slow.write_all(
        format!(
            "POST /v1/metrics HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\ncontent-length: 1000\r\n\r\n{}",
            "\0".repeat(10)
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    slow.flush().await.unwrap();
    let mut throttled = false;
    for _ in 0..100 {
        let r = http
            .post(format!("http://{}/v1/metrics", c.otlp_http))
            .header("content-type", "application/x-protobuf")
            .body(series("h1", "label_metric", 1, now + 5000).encode_to_vec())
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 429 {
            assert_eq!(r.headers().get("retry-after").unwrap(), "1");
            throttled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(throttled, "a second request must be throttled");
    let e = grpc
        .export(series("h1", "label_metric", 1, now + 6000))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    assert!(
        !e.details().is_empty()
            && String::from_utf8_lossy(e.details()).contains("google.rpc.RetryInfo"),
        "{e:?}"
    );
    drop(slow);
    // The permit comes back when the slow client goes.
    let mut ok = false;
    for _ in 0..100 {
        if grpc
            .export(series("h1", "label_metric", 1, now + 7000))
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok);

    // The API's own limit: a query whose form body is still arriving holds the only permit;
    // another query is answered 429, the health probes still answer.
    let mut slow = tokio::net::TcpStream::connect(c.http).await.unwrap();
    slow.write_all(
        b"POST /api/v1/query HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\nquery=",
    )
    .await
    .unwrap();
    slow.flush().await.unwrap();
    let mut throttled = false;
    for _ in 0..100 {
        let r = reqwest::get(c.url("/api/v1/query?query=1")).await.unwrap();
        if r.status().as_u16() == 429 {
            assert_eq!(r.headers().get("retry-after").unwrap(), "1");
            throttled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(throttled, "a second API request must be throttled");
    assert_eq!(
        reqwest::get(c.url("/healthz"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    drop(slow);
    let mut text = String::new();
    for _ in 0..100 {
        let r = reqwest::get(c.url("/metrics")).await.unwrap();
        if r.status().is_success() {
            text = r.text().await.unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    for limit in [
        "max_request_bytes",
        "max_series_per_request",
        "max_label_value_length",
        "max_series_per_host",
        "max_series\"",
        "max_concurrent_requests",
        "api_max_concurrent_requests",
    ] {
        assert!(
            metric_value(
                &text,
                "redline_collector_limit_exceeded_total",
                &format!("limit=\"{limit}")
            ) >= 1.0,
            "{limit}: {text}"
        );
    }
    c.stop().await;
}

#[tokio::test]
async fn bad_values_have_defined_behaviour() {
    let dir = tempfile::tempdir().unwrap();
    let c = support::collector::start(support::collector::config(&dir.path().join("data"))).await;
    let mut grpc = MetricsServiceClient::connect(format!("http://{}", c.grpc))
        .await
        .unwrap();
    let now = otlp::now_ms();
    let resource = [("service.name", "app"), ("host.name", "h")];

    // NaN and ±Inf are values like any other, stored and returned as Prometheus writes them.
    let r = grpc
        .export(otlp::gauge(
            &resource,
            "odd_values",
            "",
            &[(now - 2000, f64::NAN), (now - 1000, f64::INFINITY)],
            &[("k", "a")],
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(r.partial_success.is_none());
    grpc.export(otlp::gauge(
        &resource,
        "odd_values",
        "",
        &[(now - 1000, f64::NEG_INFINITY)],
        &[("k", "b")],
    ))
    .await
    .unwrap();
    let rows = c.query("odd_values").await;
    let mut values: Vec<String> = rows
        .iter()
        .map(|r| r["value"][1].as_str().unwrap().to_owned())
        .collect();
    values.sort();
    assert_eq!(values, vec!["+Inf", "-Inf"]);
    let rows = c.query("odd_values[1h]").await;
    let a = rows.iter().find(|r| r["metric"]["k"] == "a").unwrap();
    assert_eq!(a["values"][0][1], "NaN", "{a}");

    // Far future (beyond limits.max_future, 10m) and older than the retention (15d): refused
    // in a partial success; the good point of the same request is stored.
    let r = grpc
        .export(otlp::gauge(
            &resource,
            "time_bounds",
            "",
            &[
                (now - 16 * 24 * 3600 * 1000, 1.0),
                (now, 2.0),
                (now + 3600 * 1000, 3.0),
            ],
            &[],
        ))
        .await
        .unwrap()
        .into_inner();
    let p = r.partial_success.expect("partial");
    assert_eq!(p.rejected_data_points, 2, "{p:?}");
    assert!(p.error_message.contains("too_far_in_future"), "{p:?}");
    assert!(p.error_message.contains("too_old"), "{p:?}");
    let rows = c.query("time_bounds").await;
    assert_eq!(rows[0]["value"][1], "2");

    // Out of order (older than the newest stored sample of the series): refused, named.
    let r = grpc
        .export(otlp::gauge(
            &resource,
            "time_bounds",
            "",
            &[(now - 60_000, 9.0)],
            &[],
        ))
        .await
        .unwrap()
        .into_inner();
    let p = r.partial_success.expect("partial");
    assert_eq!(p.rejected_data_points, 1);
    assert!(p.error_message.contains("out-of-order"), "{p:?}");

    // The same export again (a retry whose acknowledgement was lost): no duplicate.
    let again = otlp::gauge(&resource, "retried", "", &[(now, 5.0)], &[]);
    grpc.export(again.clone()).await.unwrap();
    let r = grpc.export(again).await.unwrap().into_inner();
    assert!(r.partial_success.is_none(), "a duplicate is not an error");
    let rows = c.query("count_over_time(retried[1h])").await;
    assert_eq!(rows[0]["value"][1], "1");

    // An empty metric name: dropped and counted, reported in the partial success.
    let r = grpc
        .export(otlp::gauge(&resource, "", "", &[(now, 1.0)], &[]))
        .await
        .unwrap()
        .into_inner();
    let p = r.partial_success.expect("partial");
    assert_eq!(p.rejected_data_points, 1, "{p:?}");

    // Invalid UTF-8 in a protobuf string field: the request does not decode, INVALID_ARGUMENT
    // (gRPC) and 400 (HTTP), nothing stored.
    let mut bytes =
        otlp::gauge(&resource, "utf8_metric", "", &[(now, 1.0)], &[("k", "AB")]).encode_to_vec();
    let at = bytes
        .windows(2)
        .position(|w| w == b"AB")
        .expect("attribute value in the encoding");
    bytes[at] = 0xff;
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/metrics", c.otlp_http))
        .header("content-type", "application/x-protobuf")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let decoded = ExportMetricsServiceRequest::decode(&bytes[..]);
    assert!(decoded.is_err(), "prost refuses invalid UTF-8 in strings");
    assert!(c.query("utf8_metric").await.is_empty());
    // OTLP/JSON with a lone surrogate escape is not valid UTF-8 either.
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/metrics", c.otlp_http))
        .header("content-type", "application/json")
        .body(r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x\ud800","gauge":{"dataPoints":[{"asDouble":1}]}}]}]}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    c.stop().await;
}
