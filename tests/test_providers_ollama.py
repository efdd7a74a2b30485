"""OllamaProvider against a stand-in that follows ollama/ollama docs/api.md (uvicorn on loopback)."""

from __future__ import annotations

import anyio
import httpx
import pytest

from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core.errors import NotFound, ProviderError, ProviderUnavailable
from pete_mcp.core.provider import Completion, ModelProvider, StreamEvent, TextDelta
from pete_mcp.routing.providers.ollama import OllamaProvider, ollama_chat_body
from tests.support.ollama_standin import REPLY, RunningOllama
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

JAMIE = "peteollama:jamie-fixed"
HELLO = [Message(role="system", content="You are Jamie."), Message(role="user", content="When is rent due?")]


async def collect(provider: OllamaProvider, model: str = JAMIE, **options: object) -> list[StreamEvent]:
    with anyio.fail_after(10):
        return [e async for e in provider.stream(model, HELLO, ChatOptions(**options))]  # type: ignore[arg-type]


async def test_a_reply_streams_ndjson_tokens_then_a_completion_with_ollamas_counts(
    ollama_standin: RunningOllama,
) -> None:
    async with httpx.AsyncClient() as http:
        provider = OllamaProvider("ollama", http, base_url=ollama_standin.url, keep_alive="-1")
        assert isinstance(provider, ModelProvider)
        events = await collect(provider, temperature=0.2, max_tokens=5, seed=7, stop=["\n"])
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    done = events[-1]
    assert isinstance(done, Completion)
    assert deltas == REPLY.split(" ")[:1] + [" " + w for w in REPLY.split(" ")[1:5]]
    assert (done.text, done.provider, done.model, done.finish_reason) == ("".join(deltas), "ollama", JAMIE, "length")
    assert done.usage.completion_tokens == 5 and done.usage.prompt_tokens > 0
    (sent,) = ollama_standin.state.requests
    assert sent["options"] == {"temperature": 0.2, "num_predict": 5, "seed": 7, "stop": ["\n"]}
    assert sent["keep_alive"] == "-1" and sent["stream"] is True
    assert sent["messages"] == [m.model_dump() for m in HELLO]


async def test_a_whole_reply_ends_with_stop(ollama_standin: RunningOllama) -> None:
    async with httpx.AsyncClient() as http:
        events = await collect(OllamaProvider("ollama", http, base_url=ollama_standin.url))
    done = events[-1]
    assert isinstance(done, Completion) and done.text == REPLY and done.finish_reason == "stop"
    assert "keep_alive" not in ollama_standin.state.requests[0]


async def test_a_reply_holding_a_nel_or_a_line_separator_arrives_whole(ollama_standin: RunningOllama) -> None:
    # Ollama's encoder leaves U+0085 unescaped: split as `str.splitlines` does, that line broke in two.
    ollama_standin.state.reply = "Rent\x85is due\u2028on the first."
    async with httpx.AsyncClient() as http:
        events = await collect(OllamaProvider("ollama", http, base_url=ollama_standin.url))
    done = events[-1]
    assert isinstance(done, Completion) and done.text == ollama_standin.state.reply


async def test_an_unknown_model_is_not_found_with_a_pull_hint(ollama_standin: RunningOllama) -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(NotFound, match="not found") as info:
            await collect(OllamaProvider("ollama", http, base_url=ollama_standin.url), model="nope:1b")
    assert "ollama pull nope:1b" in str(info.value)


async def test_an_error_line_mid_stream_raises_after_the_tokens_before_it(ollama_standin: RunningOllama) -> None:
    ollama_standin.state.fail_after_tokens = 2
    got: list[str] = []
    async with httpx.AsyncClient() as http:
        provider = OllamaProvider("ollama", http, base_url=ollama_standin.url)
        with pytest.raises(ProviderError, match="out of memory"):
            async for event in provider.stream(JAMIE, HELLO, ChatOptions()):
                if isinstance(event, TextDelta):
                    got.append(event.text)
    assert len(got) == 2


async def test_closing_the_stream_early_aborts_generation(ollama_standin: RunningOllama) -> None:
    ollama_standin.state.token_delay_s = 0.05
    async with httpx.AsyncClient() as http:
        stream = OllamaProvider("ollama", http, base_url=ollama_standin.url).stream(JAMIE, HELLO, ChatOptions())
        async for event in stream:
            if isinstance(event, TextDelta):
                break
        await stream.aclose()  # type: ignore[attr-defined]
    await eventually(lambda: ollama_standin.state.aborted == [JAMIE])


async def test_warm_loads_the_model_with_an_empty_message_list(ollama_standin: RunningOllama) -> None:
    async with httpx.AsyncClient() as http:
        provider = OllamaProvider("ollama", http, base_url=ollama_standin.url, keep_alive=-1)
        seconds = await provider.warm("llama3:latest")
        health = await provider.health()
    assert seconds >= 0
    assert ollama_standin.state.requests[-1] == {
        "model": "llama3:latest",
        "messages": [],
        "stream": False,
        "keep_alive": -1,
    }
    assert health.ok and health.figures["loaded"] == "llama3:latest" and health.figures["version"] == "0.6.8"


async def test_an_unreachable_server_is_unavailable_and_unhealthy() -> None:
    async with httpx.AsyncClient() as http:
        provider = OllamaProvider("ollama", http, base_url="http://127.0.0.1:9")
        with pytest.raises(ProviderUnavailable, match="cannot be reached"):
            await collect(provider)
        assert not (await provider.health()).ok


def test_openai_tool_calls_become_ollamas_argument_objects_and_tool_names() -> None:
    messages = [
        Message.model_validate(
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"unit": "4B"}'}}
                ],
            }
        ),
        Message.model_validate({"role": "tool", "content": "Maria", "tool_call_id": "c1", "name": "lookup"}),
    ]
    body = ollama_chat_body("m", messages, ChatOptions(), keep_alive=None)
    assert body["messages"] == [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "lookup", "arguments": {"unit": "4B"}}}],
        },
        {"role": "tool", "content": "Maria", "tool_name": "lookup"},
    ]
    assert "options" not in body


def test_the_context_window_and_top_p_reach_ollamas_options() -> None:
    body = ollama_chat_body("m", HELLO, ChatOptions(num_ctx=8192, top_p=0.9), keep_alive=None)
    assert body["options"] == {"num_ctx": 8192, "top_p": 0.9}


def test_openai_bodies_leave_num_ctx_out_except_for_pete_s_own_worker() -> None:
    from pete_mcp.core.openai_body import chat_body

    options = ChatOptions(num_ctx=8192, temperature=0.5)
    assert "num_ctx" not in chat_body("m", HELLO, options, stream=True)
    assert chat_body("m", HELLO, options, stream=True)["temperature"] == 0.5
    assert chat_body("m", HELLO, options, stream=True, num_ctx=True)["num_ctx"] == 8192
