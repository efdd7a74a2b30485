"""Worker spans that join the gateway's trace: a job carries the gateway's W3C `traceparent`
(`ChatJob.trace`), and the worker opens its span as a child of it.

OpenTelemetry is optional here (the worker image need not carry it): without the package, or
without a `trace` on the job, nothing happens. With `OTEL_EXPORTER_OTLP_ENDPOINT` set and the
OTLP exporter installed, `configure_tracing` installs an SDK tracer provider that exports there.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["configure_tracing", "end_span", "start_job_span"]

logger = logging.getLogger(__name__)

try:
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # pragma: no cover - the worker image may leave OpenTelemetry out
    trace = None  # type: ignore[assignment]
    TraceContextTextMapPropagator = None  # type: ignore[assignment,misc]


def start_job_span(name: str, traceparent: str | None, attributes: dict[str, Any]) -> Any:
    """A started span under the gateway's `traceparent`, or None (no OpenTelemetry, or no trace on the job)."""
    if trace is None or TraceContextTextMapPropagator is None or not traceparent:
        return None
    parent = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    return trace.get_tracer("pete.worker").start_span(
        name, context=parent, kind=trace.SpanKind.SERVER, attributes=attributes
    )


def end_span(span: Any, **attributes: Any) -> None:
    if span is None:
        return
    for key, value in attributes.items():
        if value is not None:
            span.set_attribute(key, value)
    span.end()


def configure_tracing(endpoint: str | None, *, service_name: str = "pete-worker") -> bool:
    """Export the worker's spans over OTLP/HTTP to `endpoint`; False when it cannot (nothing changes)."""
    if not endpoint or trace is None:
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        logger.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but the OTLP exporter is not installed; no worker spans")
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")))
    trace.set_tracer_provider(provider)
    return True
