//! OTLP metrics → Prometheus text exposition, with the names Prometheus' own OTLP receiver
//! gives them, so `/metrics` can replace node_exporter and PromQL written against data sent
//! over OTLP works unchanged against a scrape. Pure functions; the collector task renders
//! each new host request once and `/metrics` serves the text.
//!
//! Names come from `redline_common::naming` (Prometheus' `otlptranslator`, suffixes enabled),
//! the same functions the collector names stored series with. Beyond the names:
//!
//! | OTLP                                   | Prometheus                                  |
//! |----------------------------------------|---------------------------------------------|
//! | monotonic cumulative Sum               | `_total`, `# TYPE counter`                  |
//! | Gauge, non-monotonic Sum               | `# TYPE gauge`                              |
//! | resource attributes                    | one `target_info` gauge (minus `service.name`, `service.instance.id`, `service.namespace`, which Prometheus turns into `job`/`instance` and a scraper sets itself) |
//!
//! Examples: `system.cpu.time` → `system_cpu_time_seconds_total`, `system.memory.usage` →
//! `system_memory_usage_bytes`, `system.cpu.utilization` → `system_cpu_utilization_ratio`,
//! `system.cpu.load_average.1m` → `system_cpu_load_average_1m`, `system.network.io` →
//! `system_network_io_bytes_total`.
//!
//! One exception for `promtool check metrics`: its linter reserves the `_count`, `_sum` and
//! `_bucket` suffixes for histograms and summaries, so a gauge whose translated name ends in one
//! (`system_processes_count`) is declared `untyped`. The series name is unchanged; Prometheus
//! stores untyped samples exactly like gauges.
//!
//! Histograms, exponential histograms and summaries (which the host collectors never produce)
//! are skipped.

use std::fmt::Write;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Metric, NumberDataPoint, metric, number_data_point};
use redline_common::naming::{MetricType, label_name, metric_name};

/// Prometheus metric type of a translated metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromType {
    Counter,
    Gauge,
}

/// Writes a label value with the text format's escapes (`\\`, `\"`, `\n`).
fn escape_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Writes HELP text with its escapes (`\\`, `\n`).
fn escape_help(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn any_to_string(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BytesValue(b)) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Some(_) | None => String::new(),
    }
}

fn write_labels(out: &mut String, attrs: &[KeyValue]) {
    if attrs.is_empty() {
        return;
    }
    out.push('{');
    for (i, a) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&label_name(&a.key));
        out.push_str("=\"");
        escape_value(out, &any_to_string(&a.value));
        out.push('"');
    }
    out.push('}');
}

fn write_value(out: &mut String, p: &NumberDataPoint) {
    match p.value {
        Some(number_data_point::Value::AsInt(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(number_data_point::Value::AsDouble(d)) => {
            if d.is_nan() {
                out.push_str("NaN");
            } else if d.is_infinite() {
                out.push_str(if d > 0.0 { "+Inf" } else { "-Inf" });
            } else {
                let _ = write!(out, "{d}");
            }
        }
        None => out.push_str("NaN"),
    }
}

/// Resource attributes that become `job`/`instance` in Prometheus rather than `target_info`
/// labels.
const JOB_INSTANCE_ATTRS: [&str; 3] = ["service.name", "service.namespace", "service.instance.id"];

/// Renders every number metric of `req` (and a `target_info` for its first resource) into `out`.
pub fn render(req: &ExportMetricsServiceRequest, out: &mut String) {
    let mut wrote_target_info = false;
    for rm in &req.resource_metrics {
        if let (false, Some(res)) = (wrote_target_info, &rm.resource) {
            let attrs: Vec<KeyValue> = res
                .attributes
                .iter()
                .filter(|a| !JOB_INSTANCE_ATTRS.contains(&a.key.as_str()))
                .cloned()
                .collect();
            if !attrs.is_empty() {
                out.push_str(
                    "# HELP target_info Target metadata\n# TYPE target_info gauge\ntarget_info",
                );
                write_labels(out, &attrs);
                out.push_str(" 1\n");
                wrote_target_info = true;
            }
        }
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                render_metric(m, out);
            }
        }
    }
}

fn render_metric(m: &Metric, out: &mut String) {
    let (points, ty, naming) = match &m.data {
        Some(metric::Data::Gauge(g)) => (&g.data_points, PromType::Gauge, MetricType::Gauge),
        Some(metric::Data::Sum(s)) => {
            // Delta sums are not representable as Prometheus counters; the host collectors
            // only emit cumulative ones.
            let cumulative = s.aggregation_temporality
                == opentelemetry_proto::tonic::metrics::v1::AggregationTemporality::Cumulative
                    as i32;
            if !cumulative {
                return;
            }
            if s.is_monotonic {
                (
                    &s.data_points,
                    PromType::Counter,
                    MetricType::MonotonicCounter,
                )
            } else {
                (&s.data_points, PromType::Gauge, MetricType::Other)
            }
        }
        _ => return,
    };
    if points.is_empty() {
        return;
    }
    let name = metric_name(&m.name, &m.unit, naming);
    let reserved = ["_count", "_sum", "_bucket"]
        .iter()
        .any(|s| name.ends_with(s));
    let type_word = match ty {
        PromType::Counter => "counter",
        PromType::Gauge if reserved => "untyped",
        PromType::Gauge => "gauge",
    };
    out.push_str("# HELP ");
    out.push_str(&name);
    out.push(' ');
    if m.description.is_empty() {
        escape_help(out, &m.name);
    } else {
        escape_help(out, &m.description);
    }
    out.push_str("\n# TYPE ");
    out.push_str(&name);
    out.push(' ');
    out.push_str(type_word);
    out.push('\n');
    for p in points {
        out.push_str(&name);
        write_labels(out, &p.attributes);
        out.push(' ');
        write_value(out, p);
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The name of one of the agent's metrics, typed as `render_metric` types it.
    fn n(name: &str, unit: &str, ty: PromType, gauge: bool) -> String {
        let naming = match (ty, gauge) {
            (PromType::Counter, _) => MetricType::MonotonicCounter,
            (PromType::Gauge, true) => MetricType::Gauge,
            (PromType::Gauge, false) => MetricType::Other,
        };
        metric_name(name, unit, naming)
    }

    #[test]
    fn name_translation_table() {
        use PromType::*;
        let cases = [
            (
                "system.cpu.time",
                "s",
                Counter,
                false,
                "system_cpu_time_seconds_total",
            ),
            (
                "system.cpu.utilization",
                "1",
                Gauge,
                true,
                "system_cpu_utilization_ratio",
            ),
            (
                "system.memory.usage",
                "By",
                Gauge,
                false,
                "system_memory_usage_bytes",
            ),
            (
                "system.memory.utilization",
                "1",
                Gauge,
                true,
                "system_memory_utilization_ratio",
            ),
            (
                "system.paging.usage",
                "By",
                Gauge,
                false,
                "system_paging_usage_bytes",
            ),
            (
                "system.cpu.load_average.1m",
                "{thread}",
                Gauge,
                true,
                "system_cpu_load_average_1m",
            ),
            (
                "system.cpu.load_average.15m",
                "{thread}",
                Gauge,
                true,
                "system_cpu_load_average_15m",
            ),
            (
                "system.disk.io",
                "By",
                Counter,
                false,
                "system_disk_io_bytes_total",
            ),
            (
                "system.disk.operations",
                "{operation}",
                Counter,
                false,
                "system_disk_operations_total",
            ),
            (
                "system.disk.io_time",
                "s",
                Counter,
                false,
                "system_disk_io_time_seconds_total",
            ),
            (
                "system.filesystem.usage",
                "By",
                Gauge,
                false,
                "system_filesystem_usage_bytes",
            ),
            (
                "system.filesystem.utilization",
                "1",
                Gauge,
                true,
                "system_filesystem_utilization_ratio",
            ),
            (
                "system.network.io",
                "By",
                Counter,
                false,
                "system_network_io_bytes_total",
            ),
            (
                "system.network.packets",
                "{packet}",
                Counter,
                false,
                "system_network_packets_total",
            ),
            (
                "system.network.errors",
                "{error}",
                Counter,
                false,
                "system_network_errors_total",
            ),
            (
                "system.processes.count",
                "{process}",
                Gauge,
                false,
                "system_processes_count",
            ),
            (
                "system.processes.created",
                "{process}",
                Counter,
                false,
                "system_processes_created_total",
            ),
            ("system.uptime", "s", Gauge, true, "system_uptime_seconds"),
            // Generic rules.
            (
                "http.server.request.duration",
                "s",
                Gauge,
                true,
                "http_server_request_duration_seconds",
            ),
            ("requests.total", "", Counter, false, "requests_total"),
            ("total.requests", "", Counter, false, "requests_total"),
            (
                "net.throughput",
                "By/s",
                Gauge,
                true,
                "net_throughput_bytes_per_second",
            ),
            ("ratio.x", "1", Counter, false, "ratio_x_total"),
            ("latency_seconds", "s", Gauge, true, "latency_seconds"),
            ("9lives", "", Gauge, true, "_9lives"),
            ("odd", "furlongs", Gauge, true, "odd_furlongs"),
        ];
        for (name, unit, ty, gauge, want) in cases {
            assert_eq!(n(name, unit, ty, gauge), want, "{name} [{unit}]");
        }
    }

    #[test]
    fn renders_families() {
        use crate::collect::otlp::{Desc, Kind, MetricBuilder, Stamp, kv};
        use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics};
        use opentelemetry_proto::tonic::resource::v1::Resource;
        let stamp = Stamp {
            start_ns: 1,
            now_ns: 2,
        };
        let mut b = MetricBuilder::new(
            Desc {
                name: "system.cpu.time",
                unit: "s",
                description: "CPU \\ time\nper mode",
                kind: Kind::Counter,
            },
            stamp,
        );
        b.double(vec![kv("cpu", "cpu0"), kv("state", "us\"er")], 1.5);
        let mut c = MetricBuilder::new(
            Desc {
                name: "system.processes.count",
                unit: "{process}",
                description: "Procs.",
                kind: Kind::UpDown,
            },
            stamp,
        );
        c.int(vec![kv("status", "running")], 3);
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![kv("host.name", "h1"), kv("service.name", "redline-agent")],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        b.finish().into_iter().next().unwrap_or_default(),
                        c.finish().unwrap_or_default(),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let mut out = String::new();
        render(&req, &mut out);
        let want = "# HELP target_info Target metadata
# TYPE target_info gauge
target_info{host_name=\"h1\"} 1
# HELP system_cpu_time_seconds_total CPU \\\\ time\\nper mode
# TYPE system_cpu_time_seconds_total counter
system_cpu_time_seconds_total{cpu=\"cpu0\",state=\"us\\\"er\"} 1.5
# HELP system_processes_count Procs.
# TYPE system_processes_count untyped
system_processes_count{status=\"running\"} 3
";
        assert_eq!(out, want);
    }
}
