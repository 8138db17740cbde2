#!/usr/bin/env python3
"""Send a known set of metrics with the real OpenTelemetry Python SDK over OTLP.

One counter `e2e.requests` (unit `{request}`, attribute `route`), one histogram
`e2e.request.duration` (unit `s`) and one gauge `e2e.queue.depth`, each recorded once and
exported in one collection. Exits non-zero if the export failed (the SDK's own flush
reports success even when the export failed, so the exporter is wrapped).

    send_metrics.py --endpoint http://127.0.0.1:4318 --protocol http --service billing
"""

from __future__ import annotations

import sys

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

from otlp_common import ResultLog, http_url, parse_args, insecure


class RecordingMetricExporter(MetricExporter):
    """Delegates to the stock OTLP exporter and records each result."""

    def __init__(self, inner: MetricExporter, log: ResultLog) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,  # noqa: SLF001 (copy the exporter's choice)
            preferred_aggregation=inner._preferred_aggregation,  # noqa: SLF001
        )
        self._inner = inner
        self._log = log

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs) -> MetricExportResult:
        points = sum(
            len(m.data.data_points)
            for rm in metrics_data.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
        )
        try:
            result = self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception as exc:
            print(f"export raised: {exc!r}", file=sys.stderr)
            result = MetricExportResult.FAILURE
        self._log.record(result == MetricExportResult.SUCCESS, points)
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs) -> None:
        self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)


def make_exporter(args) -> MetricExporter:
    if args.protocol == "grpc":
        from grpc import Compression
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        compression = Compression.Gzip if args.compression == "gzip" else Compression.NoCompression
        return OTLPMetricExporter(
            endpoint=args.endpoint, insecure=insecure(args.endpoint), timeout=args.timeout, compression=compression
        )
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    compression = Compression.Gzip if args.compression == "gzip" else Compression.NoCompression
    return OTLPMetricExporter(
        endpoint=http_url(args.endpoint, "metrics"), timeout=args.timeout, compression=compression
    )


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    log = ResultLog()
    # A long interval: the only collection is the explicit force_flush below.
    reader = PeriodicExportingMetricReader(
        RecordingMetricExporter(make_exporter(args), log), export_interval_millis=3_600_000
    )
    provider = MeterProvider(
        resource=Resource.create({"service.name": args.service}), metric_readers=[reader]
    )
    meter = provider.get_meter("redline-e2e")

    counter = meter.create_counter("e2e.requests", unit="{request}", description="Requests served")
    counter.add(3, {"route": "/a"})
    counter.add(4, {"route": "/b"})
    histogram = meter.create_histogram("e2e.request.duration", unit="s", description="Latency")
    for v in (0.01, 0.2, 1.5):
        histogram.record(v, {"route": "/a"})

    def depth(_options: CallbackOptions):
        yield Observation(42, {"queue": "main"})

    meter.create_observable_gauge("e2e.queue.depth", callbacks=[depth], unit="{item}")

    provider.force_flush(int(args.timeout * 1000) + 5000)
    provider.shutdown()
    # 2 counter points + 1 histogram point + 1 gauge point.
    return log.finish(4, "metric points")


if __name__ == "__main__":
    sys.exit(main())
