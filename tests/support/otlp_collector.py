"""A loopback OTLP/HTTP collector for tracing tests: `POST /v1/traces` decoded with `opentelemetry-proto`.

It speaks the OTLP/HTTP protobuf protocol the SDK's exporter sends (an
`ExportTraceServiceRequest` body, an `ExportTraceServiceResponse` reply) and keeps every span
it receives, flattened (`ReceivedSpan`), so a test can rebuild each trace's tree. Metrics
posts are accepted and counted. `opentelemetry-proto` comes with the `otlp` extra; without it
the fixture skips (fails in CI).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.require import require_module


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as the collector got it: ids in hex, attributes as plain Python values."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root span
    kind: int  # OTLP's SpanKind number: 1 internal, 2 server, 3 client
    service: str
    attributes: dict[str, Any]


@dataclass
class Collector:
    url: str
    spans: list[ReceivedSpan] = field(default_factory=list)
    posts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> list[ReceivedSpan]:
        with self.lock:
            return list(self.spans)

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        return [s for s in self.snapshot() if s.trace_id == trace_id]

    def named(self, name: str) -> list[ReceivedSpan]:
        return [s for s in self.snapshot() if s.name == name]


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(v) for v in any_value.array_value.values)
    return getattr(any_value, kind) if kind else None


@pytest.fixture
def otlp_collector() -> Iterator[Collector]:
    """A collector on a free loopback port; its base URL is what `OTEL_EXPORTER_OTLP_ENDPOINT` takes."""
    pb = require_module(
        "opentelemetry.proto.collector.trace.v1.trace_service_pb2",
        "opentelemetry-proto is not installed: run `uv sync --all-extras` (the `otlp` extra) for the OTLP tests",
    )
    collector = Collector(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with collector.lock:
                collector.posts[self.path] = collector.posts.get(self.path, 0) + 1
            reply = b""
            if self.path == "/v1/traces":
                request = pb.ExportTraceServiceRequest.FromString(body)
                received = [
                    ReceivedSpan(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        kind=span.kind,
                        service=next(
                            (a.value.string_value for a in rs.resource.attributes if a.key == "service.name"), ""
                        ),
                        attributes={a.key: _value(a.value) for a in span.attributes},
                    )
                    for rs in request.resource_spans
                    for ss in rs.scope_spans
                    for span in ss.spans
                ]
                with collector.lock:
                    collector.spans.extend(received)
                reply = pb.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    collector.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield collector
    finally:
        server.shutdown()
        server.server_close()
