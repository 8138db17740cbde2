#!/usr/bin/env python3
"""Send one trace of N spans with the real OpenTelemetry Python SDK over OTLP.

Prints the trace id (32 hex digits) on stdout; exits non-zero if any export failed.

    send_spans.py --endpoint http://127.0.0.1:4317 --protocol grpc --service checkout --spans 5
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import SpanKind, Status, StatusCode, format_trace_id

from otlp_common import ResultLog, http_url, parse_args, insecure


class RecordingSpanExporter(SpanExporter):
    """Delegates to the stock OTLP exporter and records each result."""

    def __init__(self, inner: SpanExporter, log: ResultLog) -> None:
        self._inner = inner
        self._log = log

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._inner.export(spans)
        except Exception as exc:  # the exporter should not raise; count it as a failure
            print(f"export raised: {exc!r}", file=sys.stderr)
            result = SpanExportResult.FAILURE
        self._log.record(result == SpanExportResult.SUCCESS, len(spans))
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def make_exporter(args) -> SpanExporter:
    if args.protocol == "grpc":
        from grpc import Compression
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        compression = Compression.Gzip if args.compression == "gzip" else Compression.NoCompression
        return OTLPSpanExporter(
            endpoint=args.endpoint, insecure=insecure(args.endpoint), timeout=args.timeout, compression=compression
        )
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    compression = Compression.Gzip if args.compression == "gzip" else Compression.NoCompression
    return OTLPSpanExporter(
        endpoint=http_url(args.endpoint, "traces"), timeout=args.timeout, compression=compression
    )


def main() -> int:
    args = parse_args(
        __doc__.splitlines()[0],
        lambda p: p.add_argument("--spans", type=int, default=3, help="spans in the trace (>= 1)"),
    )
    if args.spans < 1:
        print("error: --spans must be >= 1", file=sys.stderr)
        return 2
    log = ResultLog()
    resource = Resource.create(
        {"service.name": args.service, "service.version": "1.2.3", "deployment.environment": "e2e"}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(
        BatchSpanProcessor(
            RecordingSpanExporter(make_exporter(args), log),
            max_queue_size=max(2048, args.spans * 2),
            max_export_batch_size=512,
        )
    )
    tracer = provider.get_tracer("redline-e2e")

    with tracer.start_as_current_span(
        "GET /checkout", kind=SpanKind.SERVER, attributes={"http.request.method": "GET", "http.route": "/checkout"}
    ) as root:
        trace_id = format_trace_id(root.get_span_context().trace_id)
        for i in range(args.spans - 1):
            with tracer.start_as_current_span(
                f"step-{i}",
                kind=SpanKind.INTERNAL,
                attributes={"step.index": i, "db.system": "sqlite", "redline.e2e": True},
            ) as child:
                child.add_event("work.done", {"items": i + 1})
                if i == 0:
                    child.set_status(Status(StatusCode.ERROR, "simulated failure"))
        root.set_attribute("http.response.status_code", 200)

    flushed = provider.force_flush(int(args.timeout * 1000) + 5000)
    provider.shutdown()
    code = log.finish(args.spans, "spans")
    if not flushed:
        print("error: force_flush timed out", file=sys.stderr)
        code = 1
    print(trace_id)
    return code


if __name__ == "__main__":
    sys.exit(main())
