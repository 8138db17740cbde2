//! Prometheus remote_write 1.0: the `prometheus.WriteRequest` messages (defined here by hand;
//! only the fields 1.0 needs), the pure encoding of a commit's accepted samples into queue
//! payloads, and one send of a batch (snappy block format, the protocol's three headers).
//!
//! Payloads are stored uncompressed: serialized `WriteRequest`s concatenate into one valid
//! `WriteRequest` (their `timeseries` are a repeated field), so the forwarder joins queued
//! rows up to `max_samples_per_send` by concatenation and compresses once per request.

use std::time::Duration;

use prost::Message;

use super::config::RemoteWriteConfig;
use super::retry;
use super::{SendError, Sent};
use crate::model::{Labels, Sample};
use crate::store::ForwardPayload;

#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Sorted by name, `__name__` included.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<PromSample>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PromSample {
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// Encodes samples into payloads of at most `max_samples` samples each, a series' samples
/// split across payloads when needed (in time order, so the receiver appends them in order).
/// `external` labels are added to series that lack them (a series' own label wins, as in
/// Prometheus). Labels go out sorted by name with `__name__` among them, as remote_write
/// requires (`Labels` is sorted already; the merge keeps it so).
pub fn encode(
    target: &str,
    max_samples: usize,
    external: &[(String, String)],
    series: &[(&Labels, &[Sample])],
) -> Vec<ForwardPayload> {
    let max_samples = max_samples.max(1);
    let mut out = Vec::new();
    let mut request = WriteRequest::default();
    let mut count = 0usize;
    let mut flush = |request: &mut WriteRequest, count: &mut usize| {
        if *count > 0 {
            out.push(ForwardPayload {
                target: target.to_owned(),
                signal: "samples",
                items: *count as u64,
                bytes: std::mem::take(request).encode_to_vec(),
            });
            *count = 0;
        }
    };
    for (labels, samples) in series {
        let mut labels: Vec<Label> = labels
            .iter()
            .map(|(name, value)| Label {
                name: name.to_owned(),
                value: value.to_owned(),
            })
            .collect();
        if !external.is_empty() {
            for (name, value) in external {
                if !labels.iter().any(|l| &l.name == name) {
                    labels.push(Label {
                        name: name.clone(),
                        value: value.clone(),
                    });
                }
            }
            labels.sort_by(|a, b| a.name.cmp(&b.name));
        }
        let mut rest = *samples;
        while !rest.is_empty() {
            let room = max_samples - count;
            let (now, later) = rest.split_at(room.min(rest.len()));
            request.timeseries.push(TimeSeries {
                labels: labels.clone(),
                samples: now
                    .iter()
                    .map(|s| PromSample {
                        value: s.value,
                        timestamp: s.timestamp_ms,
                    })
                    .collect(),
            });
            count += now.len();
            rest = later;
            if count >= max_samples {
                flush(&mut request, &mut count);
            }
        }
    }
    flush(&mut request, &mut count);
    out
}

/// A remote_write target's HTTP client and settings.
pub struct Client {
    http: reqwest::Client,
    config: RemoteWriteConfig,
}

impl Client {
    pub fn new(config: RemoteWriteConfig) -> Result<Client, String> {
        let http = super::http_client(config.ca_pem.clone())?;
        Ok(Client { http, config })
    }

    /// Sends one `WriteRequest` (concatenated queue payloads) carrying `samples` samples.
    pub async fn send(&self, body: &[u8], samples: u64) -> Result<Sent, SendError> {
        let compressed = snap::raw::Encoder::new()
            .compress_vec(body)
            .map_err(|e| SendError::permanent(format!("snappy: {e}")))?;
        let mut request = self
            .http
            .post(&self.config.url)
            .timeout(self.config.timeout)
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .header(
                "User-Agent",
                concat!("redline-collector/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in &self.config.headers {
            request = request.header(name, value);
        }
        if let Some(token) = &self.config.bearer_token {
            request = request.bearer_auth(&token.0);
        }
        if let Some((user, password)) = &self.config.basic_auth {
            request = request.basic_auth(user, Some(&password.0));
        }
        let response = request
            .body(compressed)
            .send()
            .await
            .map_err(SendError::network)?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(Sent {
                items: samples,
                rejected: 0,
            });
        }
        let retry_after: Option<Duration> = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry::parse_retry_after(v, std::time::SystemTime::now()));
        let text = response.text().await.unwrap_or_default();
        Err(SendError {
            retryable: retry::remote_write_retryable(status),
            server_delay: retry_after,
            reason: super::status_reason(status),
            message: format!("HTTP {status}: {}", super::first_line(&text)),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn s(t: i64, v: f64) -> Sample {
        Sample {
            timestamp_ms: t,
            value: v,
        }
    }

    #[test]
    fn splits_at_max_samples_and_keeps_labels_sorted() {
        let a = Labels::new(vec![
            ("job".into(), "x".into()),
            ("__name__".into(), "up".into()),
            ("Zone".into(), "eu".into()),
        ]);
        let b = Labels::new(vec![("__name__".into(), "down".into())]);
        let sa = [s(1, 1.0), s(2, 2.0), s(3, 3.0)];
        let sb = [s(1, 9.0), s(2, 8.0)];
        let payloads = encode("remote_write:t", 2, &[], &[(&a, &sa), (&b, &sb)]);
        assert_eq!(
            payloads.iter().map(|p| p.items).collect::<Vec<_>>(),
            [2, 2, 1]
        );
        let mut all = Vec::new();
        for p in &payloads {
            assert_eq!(p.target, "remote_write:t");
            all.extend(p.bytes.iter().copied());
        }
        // Concatenated payloads decode as one request holding everything, in order.
        let joined = WriteRequest::decode(all.as_slice()).unwrap();
        let names: Vec<Vec<&str>> = joined
            .timeseries
            .iter()
            .map(|t| t.labels.iter().map(|l| l.name.as_str()).collect())
            .collect();
        assert_eq!(names[0], ["Zone", "__name__", "job"]);
        let flat: Vec<(String, i64, f64)> = joined
            .timeseries
            .iter()
            .flat_map(|t| {
                let name = t
                    .labels
                    .iter()
                    .find(|l| l.name == "__name__")
                    .unwrap()
                    .value
                    .clone();
                t.samples
                    .iter()
                    .map(move |s| (name.clone(), s.timestamp, s.value))
            })
            .collect();
        assert_eq!(
            flat,
            [
                ("up".into(), 1, 1.0),
                ("up".into(), 2, 2.0),
                ("up".into(), 3, 3.0),
                ("down".into(), 1, 9.0),
                ("down".into(), 2, 8.0)
            ]
        );
        assert!(encode("t", 10, &[], &[]).is_empty());
    }

    #[test]
    fn external_labels_are_added_unless_the_series_has_them() {
        let a = Labels::new(vec![
            ("__name__".into(), "up".into()),
            ("shard".into(), "own".into()),
        ]);
        let external = [
            ("shard".to_owned(), "eu-1".to_owned()),
            ("cluster".to_owned(), "prod".to_owned()),
        ];
        let payloads = encode("t", 10, &external, &[(&a, &[s(1, 1.0)])]);
        let req = WriteRequest::decode(payloads[0].bytes.as_slice()).unwrap();
        let labels: Vec<(&str, &str)> = req.timeseries[0]
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(
            labels,
            [("__name__", "up"), ("cluster", "prod"), ("shard", "own")]
        );
    }
}
