#!/usr/bin/env python3
"""Send N log records with the real OpenTelemetry Python SDK over OTLP.

Records go through Python's `logging` with the SDK's LoggingHandler, inside one span so
they carry its trace id, which is printed (32 hex digits) on stdout. The message of record
i is `<body> #i`; severities cycle through INFO, WARNING and ERROR. Exits non-zero if any
export failed.

    send_logs.py --endpoint http://127.0.0.1:4317 --protocol grpc --service api --logs 3
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import format_trace_id

from otlp_common import ResultLog, http_url, parse_args, insecure


class RecordingLogExporter(LogRecordExporter):
    """Delegates to the stock OTLP exporter and records each result."""

    def __init__(self, inner: LogRecordExporter, log: ResultLog) -> None:
        self._inner = inner
        self._log = log

    def export(self, batch: Sequence) -> LogRecordExportResult:
        try:
            result = self._inner.export(batch)
        except Exception as exc:
            print(f"export raised: {exc!r}", file=sys.stderr)
            result = LogRecordExportResult.FAILURE
        self._log.record(result == LogRecordExportResult.SUCCESS, len(batch))
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def make_exporter(args) -> LogRecordExporter:
    if args.protocol == "grpc":
        from grpc import Compression
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        compression = Compression.Gzip if args.compression == "gzip" else Compression.NoCompression
        return OTLPLogExporter(
            endpoint=args.endpoint, insecure=insecure(args.endpoint), timeout=args.timeout, compression=compression
        )
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    compression = Compression.Gzip if args.compression == "gzip" else Compression.NoCompression
    return OTLPLogExporter(
        endpoint=http_url(args.endpoint, "logs"), timeout=args.timeout, compression=compression
    )


def main() -> int:
    def extra(p):
        p.add_argument("--logs", type=int, default=3, help="log records to send (>= 1)")
        p.add_argument("--body", default="payment declined", help="message prefix")

    args = parse_args(__doc__.splitlines()[0], extra)
    log = ResultLog()
    resource = Resource.create({"service.name": args.service})
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(
        BatchLogRecordProcessor(RecordingLogExporter(make_exporter(args), log))
    )
    handler = LoggingHandler(level=logging.INFO, logger_provider=provider)
    logger = logging.getLogger("redline-e2e")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)

    tracer = TracerProvider(resource=resource).get_tracer("redline-e2e")
    levels = [logging.INFO, logging.WARNING, logging.ERROR]
    with tracer.start_as_current_span("emit-logs") as span:
        trace_id = format_trace_id(span.get_span_context().trace_id)
        for i in range(args.logs):
            logger.log(levels[i % len(levels)], "%s #%d", args.body, i, extra={"order.id": 1000 + i})

    provider.force_flush(int(args.timeout * 1000) + 5000)
    provider.shutdown()
    code = log.finish(args.logs, "log records")
    print(trace_id)
    return code


if __name__ == "__main__":
    sys.exit(main())
