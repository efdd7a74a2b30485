"""The Ollama-native backend against a stand-in that follows ollama/ollama docs/api.md."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
from gpu_handler import JobHandler, WorkerConfig
from gpu_handler.backends import ChatEnd, ChatRequest, OllamaBackend, TextDelta
from gpu_handler.errors import ModelNotFound, ModelServerError
from gpu_handler.readiness import prepare_backend

from pete_mcp.contract import ChatResult, ControlResult, ErrorCode, JobError, StreamChunk
from pete_mcp.local.model_server import pick_free_port
from tests.support.ollama_standin import REPLY, RunningOllama

pytestmark = pytest.mark.anyio

JAMIE = "peteollama:jamie-fixed"
HELLO = [{"role": "user", "content": "When is rent due?"}]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
def backend(http: httpx.AsyncClient, ollama_standin: RunningOllama) -> OllamaBackend:
    return OllamaBackend(http, ollama_standin.url, keep_alive=-1)


async def collect(backend: OllamaBackend, request: ChatRequest) -> list[TextDelta | ChatEnd]:
    return [event async for event in backend.stream_chat(request)]


async def test_stream_yields_the_ndjson_deltas_then_the_done_statistics(backend: OllamaBackend) -> None:
    events = await collect(backend, ChatRequest(model=JAMIE, messages=HELLO))

    *deltas, end = events
    assert "".join(d.text for d in deltas if isinstance(d, TextDelta)) == REPLY
    assert isinstance(end, ChatEnd)
    assert end.finish_reason == "stop"
    assert end.completion_tokens == len(deltas)
    assert end.prompt_tokens is not None and end.prompt_tokens > 0
    assert end.load_s == pytest.approx(1.5)  # load_duration is nanoseconds
    assert end.tokens_per_s == pytest.approx(50.0)  # eval_count / eval_duration, 20 ms per token


async def test_a_reply_holding_a_nel_arrives_whole(backend: OllamaBackend, ollama_standin: RunningOllama) -> None:
    ollama_standin.state.reply = "Rent\x85is due on the first."  # unescaped in Ollama's NDJSON
    events = await collect(backend, ChatRequest(model=JAMIE, messages=HELLO))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == ollama_standin.state.reply


async def test_request_carries_keep_alive_and_the_options(
    backend: OllamaBackend, ollama_standin: RunningOllama
) -> None:
    request = ChatRequest(
        model=JAMIE, messages=HELLO, temperature=0.0, max_tokens=3, seed=7, stop=["\n"], extra={"top_p": 0.9}
    )
    events = await collect(backend, request)

    sent = ollama_standin.state.requests[-1]
    assert sent["keep_alive"] == -1
    assert sent["stream"] is True
    assert sent["options"] == {"temperature": 0.0, "num_predict": 3, "seed": 7, "stop": ["\n"], "top_p": 0.9}
    end = events[-1]
    assert isinstance(end, ChatEnd) and end.finish_reason == "length" and end.completion_tokens == 3


async def test_the_context_window_and_top_p_are_sent_as_ollama_options(
    backend: OllamaBackend, ollama_standin: RunningOllama
) -> None:
    await collect(backend, ChatRequest(model=JAMIE, messages=HELLO, top_p=0.8, num_ctx=8192))

    assert ollama_standin.state.requests[-1]["options"] == {"top_p": 0.8, "num_ctx": 8192}


async def test_without_a_context_window_no_num_ctx_is_sent(
    backend: OllamaBackend, ollama_standin: RunningOllama
) -> None:
    await collect(backend, ChatRequest(model=JAMIE, messages=HELLO))

    assert "num_ctx" not in ollama_standin.state.requests[-1]["options"]


@pytest.mark.parametrize(
    "job_input",
    [
        {"model": JAMIE, "messages": HELLO, "options": {"max_tokens": 3, "num_ctx": 8192}},
        {"messages": HELLO, "max_tokens": 3, "context_window": 8192},
        {"openai_route": "/v1/chat/completions", "openai_input": {"model": JAMIE, "messages": HELLO, "num_ctx": 8192}},
    ],
    ids=["pete_job", "plain_messages", "openai_route"],
)
async def test_a_jobs_context_window_reaches_ollama_as_num_ctx(
    backend: OllamaBackend, ollama_standin: RunningOllama, job_input: dict[str, object]
) -> None:
    handler = JobHandler(backend, WorkerConfig(backend="ollama", preload=(JAMIE,)))

    outputs = [o async for o in handler.handle({"id": "ctx", "input": job_input})]

    assert "error" not in outputs[-1]
    sent = ollama_standin.state.requests[-1]
    assert (sent["model"], sent["options"]["num_ctx"]) == (JAMIE, 8192)


async def test_a_model_the_server_lacks_is_not_found_with_ollamas_reason(backend: OllamaBackend) -> None:
    with pytest.raises(ModelNotFound) as caught:
        await collect(backend, ChatRequest(model="mistral:latest", messages=HELLO))
    assert "mistral:latest" in str(caught.value) and "try pulling it first" in str(caught.value)


async def test_an_error_line_mid_stream_is_a_provider_error(
    backend: OllamaBackend, ollama_standin: RunningOllama
) -> None:
    ollama_standin.state.fail_after_tokens = 2
    with pytest.raises(ModelServerError, match="out of memory"):
        await collect(backend, ChatRequest(model=JAMIE, messages=HELLO))


async def test_warmup_preloads_with_keep_alive_and_ps_then_lists_it_loaded(
    backend: OllamaBackend, ollama_standin: RunningOllama
) -> None:
    before = {m.name: m.loaded for m in await backend.list_models()}
    load_s = await backend.warmup(JAMIE)
    after = {m.name: m for m in await backend.list_models()}

    assert before == {JAMIE: False, "llama3:latest": False}
    assert load_s >= 0
    assert ollama_standin.state.requests[-1] == {"model": JAMIE, "messages": [], "keep_alive": -1}
    assert after[JAMIE].loaded and not after["llama3:latest"].loaded
    assert after[JAMIE].size_bytes == ollama_standin.state.models[JAMIE]


async def test_ready_is_false_until_the_server_answers(http: httpx.AsyncClient, backend: OllamaBackend) -> None:
    assert await backend.ready()
    assert not await OllamaBackend(http, f"http://127.0.0.1:{pick_free_port()}").ready()


async def test_prepare_waits_for_the_server_and_preloads(backend: OllamaBackend, ollama_standin: RunningOllama) -> None:
    loads = await prepare_backend(backend, base_url=ollama_standin.url, timeout_s=5, preload=(JAMIE,))
    assert list(loads) == [JAMIE]
    assert JAMIE in ollama_standin.state.loaded


async def test_chat_job_through_the_handler_reports_ollamas_load_time_and_counts(
    backend: OllamaBackend, ollama_standin: RunningOllama
) -> None:
    config = WorkerConfig(model_url=ollama_standin.url, backend="ollama", worker_id="w-ollama")
    handler = JobHandler(backend, config)
    job = {"model": JAMIE, "messages": HELLO, "options": {"temperature": 0}}

    outputs = [o async for o in handler.handle({"id": "job-o", "input": job})]

    chunks = [StreamChunk.model_validate(c) for c in outputs[:-1]]
    result = ChatResult.model_validate(outputs[-1])
    assert "".join(c.text for c in chunks) == result.text == REPLY
    assert result.timings.load_s == pytest.approx(1.5)
    assert result.usage.completion_tokens == len(REPLY.split(" "))
    assert result.worker_id == "w-ollama"


async def test_openai_route_models_lists_the_ollama_tags(backend: OllamaBackend) -> None:
    handler = JobHandler(backend, WorkerConfig(backend="ollama"))
    outputs = [o async for o in handler.handle({"id": "m", "input": {"openai_route": "/v1/models"}})]
    assert [m["id"] for m in outputs[0]["data"]] == [JAMIE, "llama3:latest"]


async def test_models_control_job_shows_loaded_models(backend: OllamaBackend) -> None:
    handler = JobHandler(backend, WorkerConfig(backend="ollama", preload=(JAMIE,)))
    # A warmup without a model warms the first preload model.
    warm = [o async for o in handler.handle({"id": "w", "input": {"kind": "control", "action": "warmup"}})]
    result = ControlResult.model_validate(warm[0])
    assert result.load_s is not None
    assert [m.name for m in result.models if m.loaded] == [JAMIE]


async def test_unknown_model_job_is_a_model_not_found_error(backend: OllamaBackend) -> None:
    handler = JobHandler(backend, WorkerConfig(backend="ollama"))
    job = {"model": "llama3:70b", "messages": HELLO}
    outputs = [o async for o in handler.handle({"id": "x", "input": job})]
    error = JobError.model_validate_json(outputs[0]["error"])
    assert error.code is ErrorCode.MODEL_NOT_FOUND


async def test_cancelling_a_job_aborts_the_ollama_stream(backend: OllamaBackend, ollama_standin: RunningOllama) -> None:
    ollama_standin.state.token_delay_s = 0.2
    handler = JobHandler(backend, WorkerConfig(backend="ollama", chunk_max_delay_s=0.01))
    first_output = anyio.Event()

    async def job() -> None:
        async for _ in handler.handle({"id": "c", "input": {"model": JAMIE, "messages": HELLO}}):
            first_output.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(job)
        with anyio.fail_after(10):
            await first_output.wait()
        tg.cancel_scope.cancel()

    # The stand-in runs in uvicorn's thread: wait there for its stream to end.
    assert await anyio.to_thread.run_sync(ollama_standin.state.stream_ended.wait, 5)
    assert ollama_standin.state.aborted == [JAMIE]
    assert ollama_standin.state.completed == []


async def test_sdk_style_task_cancel_aborts_the_stream_and_reraises(
    backend: OllamaBackend, ollama_standin: RunningOllama
) -> None:
    """The runpod SDK stops a job with `asyncio.Task.cancel()` on the task running the handler."""
    ollama_standin.state.token_delay_s = 0.2
    handler = JobHandler(backend, WorkerConfig(backend="ollama", chunk_max_delay_s=0.01))
    first_output = asyncio.Event()

    async def job() -> None:
        async for _ in handler.handle({"id": "c", "input": {"model": JAMIE, "messages": HELLO}}):
            first_output.set()

    task = asyncio.create_task(job())
    with anyio.fail_after(10):
        await first_output.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await anyio.to_thread.run_sync(ollama_standin.state.stream_ended.wait, 5)
    assert ollama_standin.state.aborted == [JAMIE]
