"""OpenTelemetry (issue 16 item 7): GenAI semantic-convention metrics and one trace per turn, read
through the SDK's in-memory reader and span exporter; the Prometheus page's conventional spelling;
OTLP export to a loopback stand-in collector, and a collector that is down; the worker's span
joining the gateway's trace; the Grafana dashboard naming only series Pete exports.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from gpu_handler.tracing import start_job_span
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families

from pete_mcp.contract import ChatJob, ChatOptions, Message
from pete_mcp.core import ProviderUnavailable
from pete_mcp.core.models import ModelRegistry, ModelSpec, Route
from pete_mcp.core.settings import Settings
from pete_mcp.gateway import ChatTurn, build_core
from pete_mcp.metrics import Telemetry, prometheus_registry, render_prometheus
from tests.support.scripted import ScriptedProvider

pytestmark = pytest.mark.anyio

DASHBOARD_JSON = Path(__file__).resolve().parents[1] / "docs" / "grafana-dashboard.json"


def registry() -> ModelRegistry:
    chain = (Route("runpod", "jamie-8b"), Route("local", "smollm2"))
    return ModelRegistry({"jamie": ModelSpec("jamie", chain, 2048, "Jamie")}, "jamie")


def in_memory() -> tuple[Telemetry, InMemoryMetricReader, InMemorySpanExporter]:
    reader, spans = InMemoryMetricReader(), InMemorySpanExporter()
    return Telemetry(metric_readers=[reader], span_processors=[SimpleSpanProcessor(spans)]), reader, spans


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    out: dict[str, list[Any]] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                out[metric.name] = list(metric.data.data_points)  # type: ignore[union-attr]
    return out


async def ask(tmp_path: Path, telemetry: Telemetry, providers: dict[str, Any]) -> None:
    settings = Settings(data_dir=tmp_path, hedging=False)
    async with build_core(settings, providers=providers, registry=registry(), telemetry=telemetry) as core:
        turn = ChatTurn([Message(role="user", content="When is rent due?")], options=ChatOptions(max_tokens=16))
        await core.complete(turn)
        core.metrics.fold()
        telemetry.flush()


async def test_a_turn_records_the_genai_metrics_with_input_and_output_tokens(tmp_path: Path) -> None:
    telemetry, reader, _ = in_memory()
    await ask(tmp_path, telemetry, {"runpod": ScriptedProvider("runpod"), "local": ScriptedProvider("local")})
    got = points(reader)
    usage = {p.attributes["gen_ai.token.type"]: p for p in got["gen_ai.client.token.usage"]}
    assert (usage["input"].sum, usage["output"].sum) == (3, 3)
    [duration] = got["gen_ai.client.operation.duration"]
    [ttft] = got["gen_ai.server.time_to_first_token"]
    assert dict(duration.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "runpod",
        "gen_ai.request.model": "jamie",
        "gen_ai.response.model": "jamie-8b",
        "gen_ai.response.finish_reasons": ("stop",),
    }
    assert ttft.sum == pytest.approx(0.01) and duration.count == 1
    assert list(ttft.explicit_bounds)[:3] == [0.001, 0.005, 0.01]  # the convention's TTFT buckets
    assert list(usage["input"].explicit_bounds)[:3] == [1, 4, 16]


async def test_one_trace_per_turn_shows_the_core_the_router_and_each_attempt_with_the_failover(
    tmp_path: Path,
) -> None:
    telemetry, _, spans = in_memory()
    down = ScriptedProvider("runpod", fail_before=ProviderUnavailable("cold", provider="runpod"), job_prefix="rp")
    await ask(tmp_path, telemetry, {"runpod": down, "local": ScriptedProvider("local")})
    finished = {s.name: s for s in spans.get_finished_spans()}
    chat, route = finished["chat jamie"], finished["route jamie"]
    first, second, job = finished["attempt runpod"], finished["attempt local"], finished["job rp-1"]
    assert {s.context.trace_id for s in (chat, route, first, second, job)} == {chat.context.trace_id}
    assert route.parent is not None and route.parent.span_id == chat.context.span_id
    assert first.parent is not None and first.parent.span_id == route.context.span_id
    assert second.parent is not None and second.parent.span_id == route.context.span_id
    assert dict(route.attributes or {}) == {
        "gen_ai.request.model": "jamie",
        "pete.route.chain": ("runpod:jamie-8b", "local:smollm2"),
        "pete.route.winner": "local",
        "pete.route.attempts": 2,
        "pete.route.hedges": 0,
        "pete.route.failovers": 1,
        "pete.route.bridges": 0,
    }
    assert job.parent is not None and job.parent.span_id == first.context.span_id
    assert (first.attributes or {})["pete.attempt.kind"] == "primary"
    assert (first.attributes or {})["pete.attempt.outcome"] == "failed"
    assert (second.attributes or {})["pete.attempt.kind"] == "failover"
    assert (chat.attributes or {})["gen_ai.provider.name"] == "local"
    assert (chat.attributes or {})["gen_ai.usage.input_tokens"] == 3


async def test_the_runpod_job_carries_the_traceparent_and_the_worker_span_joins_the_trace(tmp_path: Path) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    telemetry, _, spans = in_memory()
    seen: list[str | None] = []

    class Capturing(ScriptedProvider):
        async def stream(self, model, messages, options):  # type: ignore[no-untyped-def, override]
            from pete_mcp.routing.providers.runpod import _traceparent  # pyright: ignore[reportPrivateUsage]

            seen.append(ChatJob(model=model, messages=list(messages), trace=_traceparent()).trace)
            async for event in super().stream(model, messages, options):
                yield event

    await ask(tmp_path, telemetry, {"runpod": Capturing("runpod"), "local": ScriptedProvider("local")})
    [traceparent] = seen
    assert traceparent is not None and re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", traceparent)
    chat = next(s for s in spans.get_finished_spans() if s.name == "chat jamie")
    worker_spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(worker_spans))
    trace.set_tracer_provider(provider)  # the worker process's own provider
    span = start_job_span("worker chat jamie-8b", traceparent, {"gen_ai.request.model": "jamie-8b"})
    span.end()
    [worker] = worker_spans.get_finished_spans()
    assert worker.context.trace_id == chat.context.trace_id


def test_the_prometheus_page_carries_the_same_series_under_their_prometheus_names() -> None:
    from pete_mcp.metrics import Metrics, RequestRecord

    telemetry = Telemetry()
    metrics = Metrics(telemetry=telemetry)
    metrics.record(
        RequestRecord("runpod", "jamie-8b", "jamie", "vapi", "ok", 0.2, 1.5, 12, input_tokens=40, finish_reason="stop")
    )
    metrics.record(RequestRecord("runpod", "jamie-8b", "jamie", "vapi", "provider_timeout", total_s=8.0))
    families = {
        f.name: f for f in text_string_to_metric_families(render_prometheus(prometheus_registry(metrics)).decode())
    }
    usage = families["gen_ai_client_token_usage"]
    sums = {s.labels["gen_ai_token_type"]: s.value for s in usage.samples if s.name.endswith("_sum")}
    assert sums == {"input": 40.0, "output": 12.0}
    errors = [
        s
        for s in families["gen_ai_client_operation_duration_seconds"].samples
        if s.name.endswith("_count") and s.labels.get("error_type") == "provider_timeout"
    ]
    assert [s.value for s in errors] == [1.0]
    ttft = families["gen_ai_server_time_to_first_token_seconds"].samples
    assert any(
        s.labels.get("gen_ai_provider_name") == "runpod" and s.labels.get("gen_ai_request_model") == "jamie"
        for s in ttft
    )
    assert "pete_requests" in families  # Pete's own names stay


class Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        type(self).received.append(self.path)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@contextmanager
def stand_in_collector() -> Iterator[str]:
    """A loopback OTLP/HTTP receiver that accepts whatever it is sent."""
    Collector.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_otlp_export_sends_traces_and_metrics_to_the_collector(tmp_path: Path) -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http", reason="the `otlp` extra is not installed")
    with stand_in_collector() as url:
        telemetry = Telemetry(otlp_endpoint=url, export_interval_s=60)
        await ask(tmp_path, telemetry, {"runpod": ScriptedProvider("runpod"), "local": ScriptedProvider("local")})
        # leaving the core shuts telemetry down, which flushes both exporters
    assert "/v1/traces" in Collector.received and "/v1/metrics" in Collector.received
    assert telemetry.export_failures.failures == 0 and telemetry.span_failures.failures == 0


async def test_a_collector_that_is_down_costs_a_counted_warning_and_the_calls_still_answer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http", reason="the `otlp` extra is not installed")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # released: nothing listens there
    caplog.set_level(logging.WARNING, logger="pete_mcp.metrics.telemetry")
    logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)  # the SDK's own retry chatter
    telemetry = Telemetry(otlp_endpoint=f"http://127.0.0.1:{port}", export_interval_s=60)
    await ask(tmp_path, telemetry, {"runpod": ScriptedProvider("runpod"), "local": ScriptedProvider("local")})
    assert telemetry.export_failures.failures + telemetry.span_failures.failures >= 1
    assert "export failed" in caplog.text


def test_the_grafana_dashboard_queries_only_series_pete_exports() -> None:
    from pete_mcp.metrics import Metrics, RequestRecord

    metrics = Metrics(telemetry=Telemetry())
    metrics.record(
        RequestRecord("runpod", "m", "jamie", "vapi", "ok", 0.2, 1.0, 5, input_tokens=9, finish_reason="stop")
    )
    metrics.record(RequestRecord("runpod", "m", "jamie", "vapi", "provider_error", total_s=1.0))
    metrics.count_fallback("runpod", "local")
    page = render_prometheus(prometheus_registry(metrics)).decode()
    families = list(text_string_to_metric_families(page))
    exported = {s.name for f in families for s in f.samples} | {f.name for f in families}
    labels = {label for f in families for s in f.samples for label in s.labels}
    dashboard = json.loads(DASHBOARD_JSON.read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(queries) >= 6
    for expr in queries:
        names = set(re.findall(r"\b((?:gen_ai|pete)_[a-z0-9_]+)", expr))
        assert names, f"query names no series: {expr}"
        assert names <= exported | labels, f"{expr} names {names - exported - labels}, which Pete does not export"
        assert names & exported, f"{expr} names no series"
    assert any("gen_ai_client_token_usage" in q for q in queries)


CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
CALLER_TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"


def tree(spans: InMemorySpanExporter) -> dict[str, Any]:
    return {s.name: s for s in spans.get_finished_spans()}


def parent_of(span: Any) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_a_vapi_turn_is_one_trace_under_the_face_span_continuing_the_callers_traceparent(tmp_path: Path) -> None:
    import httpx

    from pete_mcp.app import build_app
    from pete_vapi import vapi_face
    from tests.support.vapi_stack import assert_vapi_stream, chat_body

    telemetry, _, spans = in_memory()
    settings = Settings(data_dir=tmp_path, hedging=False)
    core = build_core(
        settings,
        providers={"runpod": ScriptedProvider("runpod", job_prefix="rp"), "local": ScriptedProvider("local")},
        registry=registry(),
        telemetry=telemetry,
    )
    app = build_app(core, faces=[vapi_face(core)])
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8765") as client,
    ):
        response = await client.post(
            "/vapi/chat/completions",
            json=chat_body(("user", "When is rent due?"), call_id="call-7"),
            headers={"traceparent": CALLER_TRACEPARENT},
        )
    assert response.status_code == 200 and assert_vapi_stream(response.text).content == "Hello there."
    got = tree(spans)
    face, chat, route = got["POST /vapi/chat/completions"], got["chat jamie"], got["route jamie"]
    attempt, job = got["attempt runpod"], got["job rp-1"]
    assert {format(s.context.trace_id, "032x") for s in got.values()} == {CALLER_TRACE}
    assert parent_of(face) == int(CALLER_SPAN, 16) and face.kind is SpanKind.SERVER
    assert parent_of(chat) == face.context.span_id and parent_of(route) == chat.context.span_id
    assert parent_of(attempt) == route.context.span_id and parent_of(job) == attempt.context.span_id
    assert face.end_time >= chat.end_time  # the face's span covers the whole streamed reply
    assert dict(face.attributes or {}) == {
        "http.request.method": "POST",
        "http.route": "/vapi/chat/completions",
        "pete.face": "vapi",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "jamie",
        "pete.vapi.stream": True,
        "gen_ai.conversation.id": "call-7",
    }


async def test_an_mcp_run_prompt_is_one_trace_under_its_tools_call_span_continuing_meta_traceparent(
    tmp_path: Path,
) -> None:
    from mcp import Client

    from pete_mcp.faces.mcp.server import build_mcp_server

    telemetry, _, spans = in_memory()
    settings = Settings(data_dir=tmp_path, hedging=False)
    core = build_core(
        settings,
        providers={"runpod": ScriptedProvider("runpod"), "local": ScriptedProvider("local")},
        registry=registry(),
        telemetry=telemetry,
    )
    async with core, Client(build_mcp_server(core), raise_exceptions=True) as client:
        result = await client.call_tool(
            "run_prompt",
            {"prompt": "When is rent due?", "conversation_id": "new"},
            meta={"traceparent": CALLER_TRACEPARENT},  # pyright: ignore[reportArgumentType]
        )
    assert result.structured_content is not None and result.structured_content["status"] == "completed"
    got = tree(spans)
    face, chat = got["tools/call run_prompt"], got["chat jamie"]
    assert format(face.context.trace_id, "032x") == CALLER_TRACE == format(chat.context.trace_id, "032x")
    assert parent_of(chat) == face.context.span_id and face.kind is SpanKind.SERVER
    attrs = dict(face.attributes or {})
    assert attrs["gen_ai.tool.name"] == "run_prompt" and attrs["mcp.method.name"] == "tools/call"
    assert attrs["gen_ai.request.model"] == "jamie" and str(attrs["pete.job.id"]).startswith("job-")
    assert attrs["gen_ai.conversation.id"] == (chat.attributes or {})["gen_ai.conversation.id"] != "new"


async def test_a_dashboard_prompt_span_covers_the_streamed_body_and_continues_the_callers_trace(
    tmp_path: Path,
) -> None:
    import httpx

    from pete_mcp.app import build_app
    from pete_mcp.faces.dashboard import dashboard_face

    telemetry, _, spans = in_memory()
    settings = Settings(data_dir=tmp_path, hedging=False, mcp_token="dash-token-123")  # pyright: ignore[reportCallIssue]
    core = build_core(
        settings,
        providers={"runpod": ScriptedProvider("runpod"), "local": ScriptedProvider("local")},
        registry=registry(),
        telemetry=telemetry,
    )
    app = build_app(core, faces=[dashboard_face(core, services=False)])
    headers = {"Authorization": "Bearer dash-token-123", "traceparent": CALLER_TRACEPARENT}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8765") as client,
    ):
        response = await client.post("/api/prompt", json={"prompt": "When is rent due?"}, headers=headers)
    assert response.status_code == 200 and '"type": "done"' in response.text.replace('":"', '": "')
    got = tree(spans)
    face, chat = got["POST /api/prompt"], got["chat jamie"]
    assert format(face.context.trace_id, "032x") == CALLER_TRACE and parent_of(face) == int(CALLER_SPAN, 16)
    assert parent_of(chat) == face.context.span_id and face.end_time >= chat.end_time
    assert (face.attributes or {})["pete.face"] == "dashboard"


def test_with_tracing_off_a_face_builds_no_span_and_no_attributes() -> None:
    from opentelemetry import trace

    from pete_mcp.metrics import face_span

    def attributes() -> dict[str, str]:
        raise AssertionError("attributes are built only while tracing")

    with face_span(trace.NoOpTracer(), "POST /vapi/chat/completions", attributes, carrier=attributes) as span:
        assert span is None
        assert not trace.get_current_span().get_span_context().is_valid


def test_the_worker_reads_the_traceparent_a_queue_job_carries() -> None:
    from pete_mcp.contract import normalize_job_input, parse_job_input

    job = ChatJob(model="m", messages=[Message(role="user", content="hi")], trace=CALLER_TRACEPARENT)
    normalized = normalize_job_input(job.model_dump(exclude_none=True))
    parsed = parse_job_input(normalized.data)
    assert isinstance(parsed, ChatJob) and parsed.trace == CALLER_TRACEPARENT
    assert "trace" not in normalized.ignored


def test_the_openai_route_body_carries_the_traceparent_in_openais_metadata() -> None:
    from pete_mcp.core import chat_body

    body = chat_body("m", [Message(role="user", content="hi")], ChatOptions(), stream=True, traceparent="tp")
    assert body["metadata"] == {"traceparent": "tp"}
    assert "metadata" not in chat_body("m", [Message(role="user", content="hi")], ChatOptions(), stream=True)
