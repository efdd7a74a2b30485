"""OpenTelemetry: Pete's requests as the GenAI semantic-convention metrics, and traces of each turn.

Metrics go through the OpenTelemetry SDK under the convention's names — `gen_ai.client.token.usage`
(`gen_ai.token.type` = input/output), `gen_ai.client.operation.duration` (+ `error.type`),
`gen_ai.server.time_to_first_token` — with `gen_ai.operation.name`, `gen_ai.provider.name`,
`gen_ai.request.model` and `gen_ai.response.finish_reasons` as attributes, and the convention's
bucket boundaries. An in-memory reader backs the Prometheus page (the same series under their
Prometheus spelling, see `_prometheus.py`); an OTLP/HTTP reader and span exporter are added when
`OTEL_EXPORTER_OTLP_ENDPOINT` is set and the `otlp` extra is installed.

Recording stays off the hot path: `Metrics.record` only appends; the fold hands each batch here
(`observe`, one list extend), and the instruments are fed in `flush`, which the metrics service,
a Prometheus scrape and an OTLP export interval call. Tracing is off (a no-op tracer) unless an
exporter is configured, so an untraced request pays nothing for spans.

Spans: each face opens a SERVER span for its turn (`face_span`: `POST /vapi/chat/completions`,
`tools/call run_prompt`, `POST /api/prompt`), continuing a caller's W3C `traceparent` when one
comes in; the core's `chat {alias}`, the router's `route {alias}`, each `attempt {provider}` and
`job {id}` nest under it (docs/metrics-and-alerts.md, "Traces", draws the tree).

An OTLP collector that is down never reaches a caller: the export runs in the SDK's background
thread; a failed export is counted (`export_failures`) and logged once per failure streak.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from ._histogram import GENAI_DURATION_BUCKETS, GENAI_TTFT_BUCKETS
from ._records import RequestRecord

__all__ = [
    "DURATION",
    "GENAI_TOKEN_BUCKETS",
    "TOKEN_USAGE",
    "TTFT",
    "Telemetry",
    "face_span",
    "span_attributes",
]

log = logging.getLogger(__name__)

TOKEN_USAGE = "gen_ai.client.token.usage"
DURATION = "gen_ai.client.operation.duration"
TTFT = "gen_ai.server.time_to_first_token"
# gen_ai.client.token.usage: 1, 4, 16, 64, … 67108864 (×4).
GENAI_TOKEN_BUCKETS: tuple[float, ...] = tuple(float(4**i) for i in range(14))
PENDING_MAX = 50_000  # with no reader at all, fold into the instruments rather than grow without bound


def _views() -> list[View]:
    return [
        View(instrument_name=TOKEN_USAGE, aggregation=ExplicitBucketHistogramAggregation(GENAI_TOKEN_BUCKETS)),
        View(instrument_name=DURATION, aggregation=ExplicitBucketHistogramAggregation(GENAI_DURATION_BUCKETS)),
        View(instrument_name=TTFT, aggregation=ExplicitBucketHistogramAggregation(GENAI_TTFT_BUCKETS)),
    ]


def span_attributes(rec: RequestRecord) -> dict[str, Any]:
    """The GenAI attributes of one request, for its metrics and its span."""
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": rec.provider,
        "gen_ai.request.model": rec.alias or rec.model,
        "gen_ai.response.model": rec.model,
    }
    if rec.outcome != "ok":
        attrs["error.type"] = rec.outcome
    elif rec.finish_reason:
        attrs["gen_ai.response.finish_reasons"] = (rec.finish_reason,)
    return attrs


def _remote_parent(carrier: Mapping[str, str] | None) -> Any:
    """The caller's trace context from a W3C `traceparent` in `carrier`, or None (keep the current context).

    A missing or malformed header gives None, so the span nests under whatever is current
    (an MCP request's `_meta` context) or starts a new trace; an empty context would orphan it.
    """
    if not carrier or "traceparent" not in carrier:
        return None
    parent = TraceContextTextMapPropagator().extract(carrier)
    return parent if trace.get_current_span(parent).get_span_context().is_valid else None


_UNTRACED: AbstractContextManager[None] = nullcontext()


def face_span(
    tracer: trace.Tracer,
    name: str,
    attributes: Callable[[], Mapping[str, AttributeValue]],
    *,
    carrier: Callable[[], Mapping[str, str] | None] | None = None,
) -> AbstractContextManager[trace.Span | None]:
    """A face's SERVER span of one turn, current while the block runs; None (and no work) while tracing is off.

    `attributes` and `carrier` are called only when tracing is on; the carrier (an HTTP
    request's headers) continues the caller's trace when it holds a W3C `traceparent`. The
    core's span and everything below it nest under this one.
    """
    if isinstance(tracer, trace.NoOpTracer):
        return _UNTRACED
    parent = _remote_parent(carrier()) if carrier is not None else None
    return tracer.start_as_current_span(name, context=parent, kind=trace.SpanKind.SERVER, attributes=attributes())


@dataclass
class _Counted:
    """Wraps an exporter: counts failed exports and logs the first of each failure streak."""

    what: str
    failures: int = 0
    failing: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, ok: bool, error: object = None) -> None:
        with self.lock:
            if ok:
                self.failing = False
                return
            self.failures += 1
            if not self.failing:
                self.failing = True
                log.warning("OTLP %s export failed (%s); dropping it and carrying on", self.what, error or "no reply")


class _CountingMetricExporter(MetricExporter):
    def __init__(self, inner: MetricExporter, counter: _Counted) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,  # pyright: ignore[reportPrivateUsage]
            preferred_aggregation=inner._preferred_aggregation,  # pyright: ignore[reportPrivateUsage]
        )
        self.inner, self.counter = inner, counter

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        try:
            result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception as exc:
            self.counter.note(False, exc)
            return MetricExportResult.FAILURE
        self.counter.note(result is MetricExportResult.SUCCESS)
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)


class _CountingSpanExporter(SpanExporter):
    def __init__(self, inner: SpanExporter, counter: _Counted) -> None:
        self.inner, self.counter = inner, counter

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception as exc:
            self.counter.note(False, exc)
            return SpanExportResult.FAILURE
        self.counter.note(result is SpanExportResult.SUCCESS)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


class Telemetry:
    """One process's OpenTelemetry: a meter provider (always), a tracer provider (when exporting).

    `span_processors` and `metric_readers` let tests attach the SDK's in-memory exporter and
    reader; `otlp_endpoint` adds OTLP/HTTP export of both (needs the `otlp` extra).
    """

    def __init__(
        self,
        *,
        service_name: str = "pete",
        otlp_endpoint: str | None = None,
        metric_readers: Iterable[MetricReader] = (),
        span_processors: Iterable[SpanProcessor] = (),
        export_interval_s: float = 15.0,
    ) -> None:
        self.resource = Resource.create({"service.name": service_name})
        self.reader = InMemoryMetricReader()  # what the Prometheus page reads
        self.export_failures = _Counted("metrics")
        self.span_failures = _Counted("traces")
        readers: list[MetricReader] = [self.reader, *metric_readers]
        processors = list(span_processors)
        if otlp_endpoint:
            metric_exporter, span_exporter = _otlp_exporters(otlp_endpoint)
            if metric_exporter is not None and span_exporter is not None:
                readers.append(
                    PeriodicExportingMetricReader(
                        _CountingMetricExporter(metric_exporter, self.export_failures),
                        export_interval_millis=export_interval_s * 1000,
                    )
                )
                processors.append(BatchSpanProcessor(_CountingSpanExporter(span_exporter, self.span_failures)))
        self.meter_provider = MeterProvider(metric_readers=readers, resource=self.resource, views=_views())
        meter = self.meter_provider.get_meter("pete")
        self.token_usage = meter.create_histogram(TOKEN_USAGE, unit="{token}", description="Tokens used per request.")
        self.duration = meter.create_histogram(DURATION, unit="s", description="GenAI operation duration.")
        self.ttft = meter.create_histogram(TTFT, unit="s", description="Time to the first output token.")
        self.tracer_provider: TracerProvider | None = None
        self.tracer: trace.Tracer = trace.NoOpTracer()
        if processors:
            self.tracer_provider = TracerProvider(resource=self.resource)
            for processor in processors:
                self.tracer_provider.add_span_processor(processor)
            self.tracer = self.tracer_provider.get_tracer("pete")
        self._pending: list[RequestRecord] = []
        self._lock = threading.Lock()  # the OTLP reader's thread may flush while the loop observes

    @property
    def tracing(self) -> bool:
        return self.tracer_provider is not None

    def observe(self, records: list[RequestRecord]) -> None:
        """Take a folded batch (one extend); it reaches the instruments at the next `flush`."""
        with self._lock:
            self._pending.extend(records)
            overfull = len(self._pending) > PENDING_MAX
        if overfull:
            self.flush()

    def flush(self) -> None:
        """Feed pending records into the OpenTelemetry instruments."""
        with self._lock:
            pending, self._pending = self._pending, []
        for rec in pending:
            attrs = span_attributes(rec)
            self.duration.record(rec.total_s, attrs)
            if rec.outcome != "ok":
                continue
            if rec.ttft_s is not None:
                self.ttft.record(rec.ttft_s, attrs)
            self.token_usage.record(rec.input_tokens, {**attrs, "gen_ai.token.type": "input"})
            self.token_usage.record(rec.output_tokens, {**attrs, "gen_ai.token.type": "output"})

    def collect(self) -> Any:
        """The SDK's current metrics data (cumulative), after a flush: what Prometheus shows."""
        self.flush()
        return self.reader.get_metrics_data()

    def shutdown(self) -> None:
        self.flush()
        self.meter_provider.shutdown(timeout_millis=2_000)
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()


def _otlp_exporters(endpoint: str) -> tuple[MetricExporter | None, SpanExporter | None]:
    """OTLP/HTTP exporters for `endpoint` (the collector's base URL), or (None, None) without the extra."""
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        log.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OTLP exporter is not installed "
            "(uv sync --extra otlp); exporting nothing"
        )
        return None, None
    base = endpoint.rstrip("/")
    return (
        OTLPMetricExporter(endpoint=f"{base}/v1/metrics", timeout=5),
        OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=5),
    )
