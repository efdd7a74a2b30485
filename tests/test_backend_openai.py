"""The OpenAI-compatible backend against the real llama.cpp server (SmolLM2)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from gpu_handler.backends import ChatEnd, ChatRequest, OpenAICompatibleBackend, TextDelta
from gpu_handler.errors import ModelNotFound, ModelServerUnavailable

from pete_mcp.local.model_server import pick_free_port
from tests.support.model_server import RunningModelServer

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

HELLO = [{"role": "user", "content": "Say hello to a new tenant."}]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=60) as client:
        yield client


@pytest.fixture
def backend(http: httpx.AsyncClient, model_server: RunningModelServer) -> OpenAICompatibleBackend:
    return OpenAICompatibleBackend(http, model_server.url)


async def test_stream_yields_token_deltas_then_the_end(backend: OpenAICompatibleBackend) -> None:
    request = ChatRequest(model="smollm2", messages=HELLO, temperature=0, max_tokens=12, seed=1)
    events = [event async for event in backend.stream_chat(request)]

    *deltas, end = events
    assert all(isinstance(d, TextDelta) and d.text for d in deltas)
    assert isinstance(end, ChatEnd)
    assert end.finish_reason in {"stop", "length"}
    # llama.cpp streams one token per chunk and no usage: tokens are counted from the chunks.
    assert end.completion_tokens == len(deltas) <= 12


async def test_extra_openai_fields_reach_the_server(backend: OpenAICompatibleBackend) -> None:
    # Stop at the first comma via `stop`, and forbid nothing else: the reply has no comma.
    request = ChatRequest(
        model="smollm2", messages=HELLO, temperature=0, max_tokens=24, stop=[","], extra={"top_p": 0.5}
    )
    text = "".join([e.text async for e in backend.stream_chat(request) if isinstance(e, TextDelta)])
    assert "," not in text


async def test_top_p_is_sent_and_the_context_window_is_not() -> None:
    """The server's context window is fixed when it starts (llama.cpp's n_ctx, vLLM's max-model-len)."""
    bodies: list[dict[str, Any]] = []

    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"object": "list", "data": [{"id": "smollm2"}]})
        bodies.append(json.loads(request.content))
        return httpx.Response(200, text="data: [DONE]\n\n", headers={"content-type": "text/event-stream"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as http:
        backend = OpenAICompatibleBackend(http, "http://model-server")
        request = ChatRequest(model="smollm2", messages=HELLO, top_p=0.5, num_ctx=8192, extra={"context_window": 1})
        [end] = [event async for event in backend.stream_chat(request)]

    assert isinstance(end, ChatEnd)
    assert bodies[0]["top_p"] == 0.5
    assert not {"num_ctx", "context_window"} & set(bodies[0])


async def test_an_unknown_model_is_refused_before_the_server_falls_back_to_its_default(
    backend: OpenAICompatibleBackend,
) -> None:
    # llama.cpp's server would answer with its default model and echo the requested name.
    with pytest.raises(ModelNotFound, match="smollm2, gemma3-270m"):
        async for _ in backend.stream_chat(ChatRequest(model="gpt-4o", messages=HELLO)):
            pass


async def test_models_lists_the_aliases_and_marks_the_one_in_use(
    backend: OpenAICompatibleBackend, model_server: RunningModelServer
) -> None:
    assert [m.name for m in await backend.list_models()] == model_server.models
    assert await backend.warmup("smollm2") > 0
    assert {m.name: m.loaded for m in await backend.list_models()} == {"smollm2": True, "gemma3-270m": False}


async def test_nothing_listening_is_unavailable_with_the_url(http: httpx.AsyncClient) -> None:
    url = f"http://127.0.0.1:{pick_free_port()}"
    backend = OpenAICompatibleBackend(http, url)
    assert not await backend.ready()
    with pytest.raises(ModelServerUnavailable, match=url):
        await backend.list_models()
