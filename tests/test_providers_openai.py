"""OpenAICompatibleProvider: OpenRouter's headers (mocked: an external service), a real llama.cpp stream."""

from __future__ import annotations

import json

import anyio
import httpx
import orjson
import pytest

from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core.errors import NotFound, ProviderUnavailable
from pete_mcp.core.provider import Completion, TextDelta
from pete_mcp.core.settings import Settings
from pete_mcp.gateway import default_providers
from pete_mcp.routing.providers.ollama import OllamaProvider
from pete_mcp.routing.providers.openai_compatible import OpenAICompatibleProvider

pytestmark = pytest.mark.anyio

HELLO = [Message(role="user", content="Say hello.")]


def openrouter(request: httpx.Request) -> httpx.Response:
    """OpenRouter's chat completions, streamed, per its OpenAI-compatible docs."""
    if request.headers.get("authorization") != "Bearer sk-or-test":
        return httpx.Response(401, json={"error": {"message": "No auth credentials found", "code": 401}})
    body = json.loads(request.content)
    frames = [
        {"id": "gen-1", "model": body["model"], "choices": [{"index": 0, "delta": {"content": "Hi"}}]},
        {"id": "gen-1", "model": body["model"], "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {"id": "gen-1", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 1}},
    ]
    text = "".join(f"data: {json.dumps(f)}\n\n" for f in frames) + ": OPENROUTER PROCESSING\n\ndata: [DONE]\n\n"
    return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})


async def test_a_reply_holding_unicode_line_separators_arrives_whole() -> None:
    # llama.cpp, vLLM and orjson leave U+2028, U+2029 and U+0085 unescaped inside JSON strings;
    # a reader splitting lines as `str.splitlines` does broke such a frame into invalid JSON.
    reply = "Rent is due\u2028on the first\x85of the month\u2029."

    def handler(request: httpx.Request) -> httpx.Response:
        frames = [{"choices": [{"index": 0, "delta": {"content": part}}]} for part in (reply[:14], reply[14:])]
        body = b"".join(b"data: " + orjson.dumps(f) + b"\n\n" for f in frames) + b"data: [DONE]\n\n"
        assert "\u2028".encode() in body
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        provider = OpenAICompatibleProvider("llama", http, base_url="http://127.0.0.1:1/v1")
        events = [e async for e in provider.stream("jamie", HELLO, ChatOptions())]
    done = events[-1]
    assert isinstance(done, Completion) and done.text == reply


async def test_openrouter_gets_the_key_and_its_attribution_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return openrouter(request)

    settings = Settings(
        openrouter_api_key="sk-or-test",  # type: ignore[arg-type]
        openrouter_base_url="https://openrouter.test/api/v1",
        openrouter_referer="https://pete.example",
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        providers = default_providers(settings, http)
        events = [e async for e in providers["openrouter"].stream("meta-llama/x", HELLO, ChatOptions())]
    done = events[-1]
    assert isinstance(done, Completion) and (done.text, done.usage.completion_tokens) == ("Hi", 1)
    assert done.usage.prompt_tokens == 9  # the server's own count, not an estimate
    headers = seen[0].headers
    assert (headers["http-referer"], headers["x-title"]) == ("https://pete.example", "Pete")
    assert str(seen[0].url) == "https://openrouter.test/api/v1/chat/completions"


async def test_a_direct_ollama_fallback_uses_the_native_api() -> None:
    async with httpx.AsyncClient() as http:
        providers = default_providers(Settings(ollama_url="http://127.0.0.1:11434"), http)
    assert isinstance(providers["ollama"], OllamaProvider)
    assert "openrouter" not in providers


async def test_a_refused_key_and_a_busy_server_map_to_typed_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503 if "busy" in str(request.url) else 404, text="nope")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        busy = OpenAICompatibleProvider("or", http, base_url="https://busy.test/v1")
        with pytest.raises(ProviderUnavailable, match="503"):
            [e async for e in busy.stream("m", HELLO, ChatOptions())]
        missing = OpenAICompatibleProvider("or", http, base_url="https://x.test/v1")
        with pytest.raises(NotFound):
            [e async for e in missing.stream("m", HELLO, ChatOptions())]


@pytest.mark.slow
async def test_a_real_llama_cpp_server_streams_tokens_and_a_completion(model_server: object) -> None:
    async with httpx.AsyncClient() as http:
        provider = OpenAICompatibleProvider("local", http, base_url=model_server.url + "/v1")  # type: ignore[attr-defined]
        with anyio.fail_after(60):
            events = [e async for e in provider.stream("smollm2", HELLO, ChatOptions(max_tokens=8, temperature=0))]
            health = await provider.health()
    done = events[-1]
    assert isinstance(done, Completion) and done.text.strip()
    assert done.text == "".join(e.text for e in events if isinstance(e, TextDelta))
    assert health.ok and "smollm2" in str(health.figures["models"])
