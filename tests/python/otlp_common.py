"""Shared plumbing for the scripts the end-to-end tests run (send_spans.py, send_metrics.py,
send_logs.py).

Each script builds one real OpenTelemetry SDK pipeline (provider, processor or reader, and
the stock OTLP exporter for the chosen protocol), emits a known payload, flushes, shuts
down and exits non-zero unless every export call returned SUCCESS. The SDK itself swallows
export failures (its flush can report success even when the export failed), so the
exporter is wrapped and each result is recorded here.
"""

from __future__ import annotations

import argparse
import sys
import threading


def parse_args(description: str, extra=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--endpoint",
        required=True,
        help="base URL of the OTLP receiver, e.g. http://127.0.0.1:4317 (gRPC) or "
        "http://127.0.0.1:4318 (HTTP; the signal path /v1/<signal> is appended)",
    )
    parser.add_argument("--protocol", choices=["grpc", "http"], required=True)
    parser.add_argument("--service", required=True, help="service.name resource attribute")
    parser.add_argument("--compression", choices=["none", "gzip"], default="gzip")
    parser.add_argument("--timeout", type=float, default=10.0, help="export timeout, seconds")
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def http_url(endpoint: str, signal: str) -> str:
    """The OTLP/HTTP URL for one signal: `<endpoint>/v1/<signal>` (the spec's rule for the
    generic endpoint; the per-signal exporters take the full URL)."""
    return endpoint.rstrip("/") + "/v1/" + signal


class ResultLog:
    """Thread-safe record of every export call's result (exporters run on the processor's
    worker thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[tuple[bool, int]] = []  # (succeeded, items in the call)

    def record(self, ok: bool, items: int) -> None:
        with self._lock:
            self.calls.append((ok, items))

    def finish(self, expected_items: int, what: str) -> int:
        """Print a verdict on stderr and return the process exit code."""
        with self._lock:
            calls = list(self.calls)
        failed = [c for c in calls if not c[0]]
        sent = sum(n for ok, n in calls if ok)
        if not calls:
            print(f"error: no export call was made for {what}", file=sys.stderr)
            return 1
        if failed:
            print(
                f"error: {len(failed)} of {len(calls)} export calls for {what} failed",
                file=sys.stderr,
            )
            return 1
        if sent < expected_items:
            print(
                f"error: exported {sent} {what}, expected {expected_items}", file=sys.stderr
            )
            return 1
        print(f"exported {sent} {what} in {len(calls)} call(s)", file=sys.stderr)
        return 0


def insecure(endpoint: str) -> bool:
    """gRPC without TLS unless the endpoint is https://. The certificates and headers come
    from the SDK's standard variables (OTEL_EXPORTER_OTLP_CERTIFICATE, _CLIENT_CERTIFICATE,
    _CLIENT_KEY, _HEADERS)."""
    return not endpoint.startswith("https://")
