#!/usr/bin/env python3
"""Writes the OTLP seed inputs of the fuzz targets (collector/fuzz/corpus/otlp_*,
agent/fuzz/corpus/relay_body): a few small export requests of each signal, as protobuf, as
OTLP/JSON (hex ids, camelCase, 64-bit integers as strings) and gzip-compressed, with the
one-byte header the otlp_proto, otlp_http and relay_body targets read first.

Run it with the test venv (it needs opentelemetry-proto and protobuf):
    .venv/bin/python scripts/fuzz_seeds.py
The output is committed; rerun only to change the seeds."""

import base64
import gzip
import json
import os
import sys

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.metrics.v1 import metrics_pb2 as m
from opentelemetry.proto.trace.v1 import trace_pb2 as t

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOW = 1_700_000_000_000_000_000


def kv(k, v):
    if isinstance(v, bool):
        return KeyValue(key=k, value=AnyValue(bool_value=v))
    if isinstance(v, int):
        return KeyValue(key=k, value=AnyValue(int_value=v))
    if isinstance(v, float):
        return KeyValue(key=k, value=AnyValue(double_value=v))
    if isinstance(v, bytes):
        return KeyValue(key=k, value=AnyValue(bytes_value=v))
    if isinstance(v, list):
        return KeyValue(key=k, value=AnyValue(array_value=ArrayValue(values=[kv("", x).value for x in v])))
    if isinstance(v, dict):
        return KeyValue(key=k, value=AnyValue(kvlist_value=KeyValueList(values=[kv(a, b) for a, b in v.items()])))
    return KeyValue(key=k, value=AnyValue(string_value=v))


RESOURCE = [kv("service.name", "checkout"), kv("service.instance.id", "i-1"),
            kv("host.name", "web-1"), kv("deployment.environment", "prod")]


def metrics_requests():
    r = ExportMetricsServiceRequest()
    rm = r.resource_metrics.add()
    rm.resource.attributes.extend(RESOURCE)
    sm = rm.scope_metrics.add()
    sm.scope.name = "io.example"
    sm.scope.version = "1.2.3"
    g = sm.metrics.add(name="system.memory.usage", unit="By", description="memory")
    g.gauge.data_points.add(time_unix_nano=NOW, as_int=123456, attributes=[kv("state", "used")])
    g.gauge.data_points.add(time_unix_nano=NOW, as_double=float("nan"), attributes=[kv("state", "free")])
    s = sm.metrics.add(name="http.server.request.count", unit="{request}")
    s.sum.is_monotonic = True
    s.sum.aggregation_temporality = m.AGGREGATION_TEMPORALITY_CUMULATIVE
    s.sum.data_points.add(start_time_unix_nano=NOW - 10**10, time_unix_nano=NOW, as_double=42.5,
                          attributes=[kv("http.response.status_code", 200), kv("ok", True)])
    d = sm.metrics.add(name="queue.delta", unit="1")
    d.sum.aggregation_temporality = m.AGGREGATION_TEMPORALITY_DELTA
    d.sum.data_points.add(time_unix_nano=NOW, as_int=-3)
    h = sm.metrics.add(name="http.server.duration", unit="ms")
    h.histogram.aggregation_temporality = m.AGGREGATION_TEMPORALITY_CUMULATIVE
    h.histogram.data_points.add(start_time_unix_nano=NOW - 10**10, time_unix_nano=NOW, count=10, sum=123.4,
                                bucket_counts=[1, 2, 3, 4], explicit_bounds=[5.0, 10.0, 100.0],
                                min=0.5, max=400.0, attributes=[kv("route", "/a")])
    e = sm.metrics.add(name="rpc.latency", unit="s")
    e.exponential_histogram.aggregation_temporality = m.AGGREGATION_TEMPORALITY_CUMULATIVE
    dp = e.exponential_histogram.data_points.add(time_unix_nano=NOW, count=6, sum=2.5, scale=2, zero_count=1)
    dp.positive.offset = -2
    dp.positive.bucket_counts.extend([1, 2, 1])
    dp.negative.offset = 1
    dp.negative.bucket_counts.extend([1])
    q = sm.metrics.add(name="go.gc.pause", unit="s")
    sdp = q.summary.data_points.add(time_unix_nano=NOW, count=5, sum=0.1)
    sdp.quantile_values.add(quantile=0.5, value=0.01)
    sdp.quantile_values.add(quantile=0.99, value=0.05)
    small = ExportMetricsServiceRequest()
    srm = small.resource_metrics.add()
    srm.scope_metrics.add().metrics.add(name="up", unit="").gauge.data_points.add(as_double=1.0)
    return [r, small]


def traces_requests():
    r = ExportTraceServiceRequest()
    rs = r.resource_spans.add()
    rs.resource.attributes.extend(RESOURCE)
    ss = rs.scope_spans.add()
    ss.scope.name = "io.example.http"
    tid = bytes(range(1, 17))
    root = ss.spans.add(trace_id=tid, span_id=bytes(range(1, 9)), name="GET /checkout",
                        kind=t.Span.SPAN_KIND_SERVER, start_time_unix_nano=NOW - 5 * 10**8,
                        end_time_unix_nano=NOW, attributes=[kv("http.route", "/checkout"), kv("n", 3)])
    root.status.code = t.Status.STATUS_CODE_ERROR
    root.status.message = "boom"
    root.events.add(time_unix_nano=NOW - 10**8, name="exception",
                    attributes=[kv("exception.message", "x"), kv("attrs", {"a": [1, 2.5, "s"]})])
    child = ss.spans.add(trace_id=tid, span_id=bytes(range(9, 17)), parent_span_id=bytes(range(1, 9)),
                         name="SELECT", kind=t.Span.SPAN_KIND_CLIENT, start_time_unix_nano=NOW - 4 * 10**8,
                         end_time_unix_nano=NOW - 10**8, trace_state="a=b")
    child.links.add(trace_id=bytes(16), span_id=bytes(8), attributes=[kv("k", b"\x00\x01")])
    return [r]


def logs_requests():
    r = ExportLogsServiceRequest()
    rl = r.resource_logs.add()
    rl.resource.attributes.extend(RESOURCE)
    sl = rl.scope_logs.add()
    sl.scope.name = "app"
    sl.log_records.add(time_unix_nano=NOW, observed_time_unix_nano=NOW, severity_number=17,
                       severity_text="ERROR", body=AnyValue(string_value="payment failed"),
                       attributes=[kv("user.id", 7)], trace_id=bytes(range(1, 17)), span_id=bytes(range(1, 9)))
    sl.log_records.add(observed_time_unix_nano=NOW, severity_number=9,
                       body=kv("", {"msg": "structured", "n": [1, 2]}).value)
    sl.log_records.add(body=AnyValue(bytes_value=b"\xff\x00raw"))
    return [r]


def to_json(msg):
    """OTLP/JSON: protobuf's JSON mapping with trace and span ids as hex instead of base64."""
    d = json_format.MessageToDict(msg)

    def fix(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str):
                    o[k] = base64.b64decode(v).hex()
                else:
                    fix(v)
        elif isinstance(o, list):
            for x in o:
                fix(x)
    fix(d)
    return json.dumps(d, separators=(",", ":")).encode()


def write(target_dir, name, data):
    os.makedirs(target_dir, exist_ok=True)
    with open(os.path.join(target_dir, name), "wb") as f:
        f.write(data)


def main():
    coll = os.path.join(ROOT, "collector", "fuzz", "corpus")
    agent = os.path.join(ROOT, "agent", "fuzz", "corpus")
    signals = [("metrics", 0, metrics_requests()), ("traces", 1, traces_requests()), ("logs", 2, logs_requests())]
    for name, sig, requests in signals:
        for i, req in enumerate(requests):
            pb = req.SerializeToString()
            js = to_json(req)
            gz_pb = gzip.compress(pb, mtime=0)
            gz_js = gzip.compress(js, mtime=0)
            write(os.path.join(coll, "otlp_proto"), f"{name}-{i}.bin", bytes([sig]) + pb)
            write(os.path.join(coll, "otlp_json"), f"{name}-{i}.json", js)
            # otlp_http header: signal | json<<2 | encoding<<3 (0 none, 1 gzip) | limit<<6 (0: 64 KiB)
            write(os.path.join(coll, "otlp_http"), f"{name}-{i}-pb-gzip.bin", bytes([sig | 1 << 3]) + gz_pb)
            write(os.path.join(coll, "otlp_http"), f"{name}-{i}-json-gzip.bin", bytes([sig | 4 | 1 << 3]) + gz_js)
            write(os.path.join(coll, "otlp_http"), f"{name}-{i}-json.bin", bytes([sig | 4]) + js)
            # relay_body header: signal | json<<2 | gzip<<3 | limit<<4 (0: 64 KiB)
            write(os.path.join(agent, "relay_body"), f"{name}-{i}-pb.bin", bytes([sig]) + pb)
            write(os.path.join(agent, "relay_body"), f"{name}-{i}-json-gzip.bin", bytes([sig | 4 | 8]) + gz_js)
    # A gzip bomb: 2 MiB of zeros, over every limit the targets pick.
    write(os.path.join(coll, "otlp_http"), "bomb-gzip.bin", bytes([1 << 3]) + gzip.compress(bytes(2 << 20), mtime=0))
    write(os.path.join(agent, "relay_body"), "bomb-gzip.bin", bytes([8]) + gzip.compress(bytes(2 << 20), mtime=0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
