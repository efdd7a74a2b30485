"""One trace per turn, as an OTLP collector receives it (issue 16): the face, the core, the router,
each provider attempt (a hedge visible beside the attempt it raced) and the RunPod job, with the
worker's span joining the same trace on both RunPod routes.

The whole path is real: the gateway exports over OTLP/HTTP because `OTEL_EXPORTER_OTLP_ENDPOINT`
names the loopback collector (`tests/support/otlp_collector.py`, which decodes the protobuf);
a VAPI Custom LLM turn and an MCP `run_prompt` go through their faces into the core; the local
RunPod endpoint runs a real runpod-SDK `gpu_handler` worker (exporting its own spans to the same
collector) against the stand-in Ollama server. The model's first route is held back for 30 s so
the router hedges onto RunPod at once, on the queue route for the VAPI turn and on the OpenAI
route (traceparent in the body's `metadata`) for the MCP one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from pete_mcp.app import build_app
from pete_mcp.core.models import ModelRegistry, ModelSpec, Route
from pete_mcp.core.settings import Settings
from pete_mcp.faces.mcp.server import build_mcp_server
from pete_mcp.gateway import build_core
from pete_mcp.routing.providers.runpod import RunPodProvider
from pete_vapi import vapi_face
from tests.support.ollama_standin import RunningOllama
from tests.support.otlp_collector import Collector, ReceivedSpan
from tests.support.paced_provider import PacedProvider
from tests.support.runpod_stack import gpu_pod, runpod_client_for
from tests.support.vapi_stack import chat_body

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

MODEL = "peteollama:jamie-fixed"  # what the stand-in Ollama serves
SERVER, INTERNAL = 2, 1  # OTLP SpanKind numbers


def registry() -> ModelRegistry:
    held = Route("held", "held-model")  # never answers within the test: the hedge wins
    return ModelRegistry(
        {
            "jamie": ModelSpec("jamie", (held, Route("runpod", MODEL)), 2048, "Jamie", "You are Jamie."),
            "jamie-oa": ModelSpec("jamie-oa", (held, Route("runpod-oa", MODEL)), 2048, "Jamie", "You are Jamie."),
        },
        "jamie",
    )


def only(spans: Iterable[ReceivedSpan], name: str) -> ReceivedSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"expected one {name!r} span, got {[s.name for s in spans]}"
    return found[0]


def children(spans: list[ReceivedSpan], parent: ReceivedSpan) -> list[ReceivedSpan]:
    return [s for s in spans if s.parent_span_id == parent.span_id]


async def worker_span_of(collector: Collector, trace_id: str) -> ReceivedSpan:
    """The worker's span in `trace_id`: it comes in the worker's own export, a moment after the turn."""
    with anyio.fail_after(20):
        while True:
            found = [s for s in collector.trace(trace_id) if s.service == "pete-worker"]
            if found:
                assert len(found) == 1, found
                return found[0]
            await anyio.sleep(0.05)


def assert_turn_tree(spans: list[ReceivedSpan], face: ReceivedSpan, *, provider: str) -> ReceivedSpan:
    """face → chat → route → attempt held (primary, cancelled) + attempt `provider` (hedge, won) → job.

    Returns the winning attempt's span.
    """
    assert face.kind == SERVER and face.service == "pete"
    assert face.parent_span_id == "" or face.parent_span_id not in {s.span_id for s in spans}  # the turn's root here
    [chat] = children(spans, face)
    assert chat.name.startswith("chat jamie") and chat.attributes["gen_ai.provider.name"] == provider
    [route] = children(spans, chat)
    assert route.name == chat.name.replace("chat", "route", 1)
    assert route.attributes["pete.route.hedges"] == 1 and route.attributes["pete.route.winner"] == provider
    attempts = {s.name: s for s in children(spans, route)}
    assert set(attempts) == {"attempt held", f"attempt {provider}"}, attempts
    held, won = attempts["attempt held"], attempts[f"attempt {provider}"]
    assert (held.attributes["pete.attempt.kind"], held.attributes["pete.attempt.outcome"]) == ("primary", "cancelled")
    assert (won.attributes["pete.attempt.kind"], won.attributes["pete.attempt.outcome"]) == ("hedge", "completed")
    jobs = [s for s in children(spans, won) if s.name.startswith("job ")]
    assert len(jobs) == 1 and jobs[0].attributes["pete.job.id"] == jobs[0].name.removeprefix("job ")
    return won


async def test_each_turn_is_one_trace_from_the_face_to_the_runpod_worker_with_the_hedge_visible(
    tmp_path: Path, otlp_collector: Collector, ollama_standin: RunningOllama, runpod_sdk: None
) -> None:
    worker_env = {
        "WORKER_BACKEND": "ollama",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_collector.url,
        "OTEL_BSP_SCHEDULE_DELAY": "50",  # the worker's spans leave within moments of ending
    }
    settings = Settings.model_validate(
        {"data_dir": tmp_path / "pete", "hedge_after_s": 0.1, "otel_exporter_otlp_endpoint": otlp_collector.url}
    )
    held = PacedProvider("held", delays=[30.0])
    async with (
        gpu_pod(ollama_standin.url, tmp_path / "pod", worker_env=worker_env) as pod,
        httpx.AsyncClient(timeout=30) as http,
    ):
        providers: dict[str, Any] = {
            "held": held,
            "runpod": RunPodProvider(runpod_client_for(pod, http), use_openai_route=False),
            "runpod-oa": RunPodProvider(runpod_client_for(pod, http), use_openai_route=True, name="runpod-oa"),
        }
        core = build_core(settings, http=http, providers=providers, registry=registry())
        app = build_app(core, faces=[vapi_face(core)])
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8765") as client:
                with anyio.fail_after(60):
                    vapi = await client.post(
                        "/vapi/chat/completions", json=chat_body(("user", "When is rent due?"), call_id="call-trace")
                    )
            assert vapi.status_code == 200 and "Jamie" in vapi.text
            async with Client(build_mcp_server(core), raise_exceptions=True) as mcp:
                with anyio.fail_after(60):
                    result = await mcp.call_tool(
                        "run_prompt", {"prompt": "When is rent due?", "model": "jamie-oa", "max_tokens": 16}
                    )
            assert result.structured_content is not None and result.structured_content["status"] == "completed"
        # leaving the app closed the core, which flushed the gateway's spans to the collector
        [vapi_face_span] = otlp_collector.named("POST /vapi/chat/completions")
        [mcp_face_span] = otlp_collector.named("tools/call run_prompt")
        assert vapi_face_span.trace_id != mcp_face_span.trace_id  # one trace per turn
        vapi_worker = await worker_span_of(otlp_collector, vapi_face_span.trace_id)
        mcp_worker = await worker_span_of(otlp_collector, mcp_face_span.trace_id)

    vapi_spans = [s for s in otlp_collector.trace(vapi_face_span.trace_id) if s.service == "pete"]
    assert vapi_face_span.attributes["gen_ai.conversation.id"] == "call-trace"
    assert vapi_face_span.attributes["http.route"] == "/vapi/chat/completions"
    won = assert_turn_tree(vapi_spans, vapi_face_span, provider="runpod")
    assert vapi_worker.parent_span_id == won.span_id and vapi_worker.kind == SERVER
    assert vapi_worker.attributes["gen_ai.request.model"] == MODEL

    mcp_spans = [s for s in otlp_collector.trace(mcp_face_span.trace_id) if s.service == "pete"]
    assert mcp_face_span.attributes["gen_ai.tool.name"] == "run_prompt"
    assert mcp_face_span.attributes["gen_ai.request.model"] == "jamie-oa"
    won = assert_turn_tree(mcp_spans, mcp_face_span, provider="runpod-oa")
    assert mcp_worker.parent_span_id == won.span_id
    assert mcp_worker.attributes["pete.runpod.route"] == "openai"  # the traceparent came in the body's metadata

    assert ollama_standin.state.requests  # the model server saw the turns, and never the trace context
    assert not any("traceparent" in json.dumps(request) for request in ollama_standin.state.requests)

    every_trace = {s.trace_id for s in otlp_collector.snapshot() if s.service == "pete"}
    assert every_trace == {vapi_face_span.trace_id, mcp_face_span.trace_id}  # nothing outside the two turns
