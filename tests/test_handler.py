"""The worker's handler against the real llama.cpp server with SmolLM2 (shape, not wording)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import httpx2  # the openai client's own httpx fork
import openai
import pytest
from gpu_handler import JobHandler, WorkerConfig
from gpu_handler.backends import OpenAICompatibleBackend, build_http_client
from openai.types.chat import ChatCompletion
from runpod.serverless.modules.rp_job import run_job_generator

from pete_mcp.contract import ChatResult, ControlResult, ErrorCode, JobError, StreamChunk
from pete_mcp.local.model_server import pick_free_port
from tests.support.model_server import RunningModelServer

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

QUESTION = [
    {"role": "system", "content": "You are Jamie, a property-management assistant."},
    {"role": "user", "content": "When is rent due, and how do I pay it?"},
]
GREEDY = {"temperature": 0, "seed": 7}


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with build_http_client(read_timeout_s=60, max_connections=8) as client:
        yield client


@pytest.fixture
def config(model_server: RunningModelServer) -> WorkerConfig:
    return WorkerConfig(model_url=model_server.url, worker_id="worker-test-1", chunk_chars=48, chunk_max_delay_s=0.08)


@pytest.fixture
def handler(http: httpx.AsyncClient, config: WorkerConfig) -> JobHandler:
    return JobHandler(OpenAICompatibleBackend(http, config.model_url), config)


def chat_input(max_tokens: int = 48, *, stream: bool = True, model: str = "smollm2") -> dict[str, Any]:
    return {"model": model, "messages": QUESTION, "options": {**GREEDY, "max_tokens": max_tokens}, "stream": stream}


async def run(handler: JobHandler, job_input: Any) -> list[Any]:
    return [output async for output in handler.handle({"id": "job-1", "input": job_input})]


def decode_error(output: dict[str, str]) -> JobError:
    assert set(output) == {"error"}
    return JobError.model_validate_json(output["error"])


async def test_streamed_chunks_arrive_in_order_and_join_to_the_final_text(handler: JobHandler) -> None:
    outputs = await run(handler, chat_input(max_tokens=48))

    *chunk_dicts, result_dict = outputs
    chunks = [StreamChunk.model_validate(c) for c in chunk_dicts]
    result = ChatResult.model_validate(result_dict)
    assert len(chunks) >= 2
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert "".join(c.text for c in chunks) == result.text
    assert result.text.strip()
    assert result.finish_reason in {"stop", "length"}
    assert result.model == "smollm2"
    assert result.worker_id == "worker-test-1"
    assert 0 < result.usage.completion_tokens <= 48
    assert result.timings.ttft_s is not None and 0 < result.timings.ttft_s <= result.timings.total_s
    assert result.timings.tokens_per_s is not None and result.timings.tokens_per_s > 0


async def test_chunks_are_sentence_sized_and_the_first_one_is_not_held(
    http: httpx.AsyncClient, model_server: RunningModelServer
) -> None:
    # A long time cap, so only the sentence and size rules cut chunks (the cap has its own test).
    config = WorkerConfig(model_url=model_server.url, chunk_chars=48, chunk_max_delay_s=30.0)
    handler = JobHandler(OpenAICompatibleBackend(http, config.model_url), config)

    outputs = await run(handler, chat_input(max_tokens=64))

    chunks = [StreamChunk.model_validate(c).text for c in outputs[:-1]]
    result = ChatResult.model_validate(outputs[-1])
    # Batched: far fewer chunks than tokens (each chunk is one post to RunPod) ...
    assert len(chunks) < result.usage.completion_tokens / 2
    # ... cut at sentence ends or at the size limit ...
    for chunk in chunks[1:-1]:
        assert chunk.rstrip(" ").endswith((".", "!", "?", "\n", ".)", '."')) or len(chunk) >= 48, chunk
    # ... but the first chunk is the first text the model produced, sent at once.
    assert len(chunks[0]) < 48


async def test_greedy_requests_repeat_the_same_text(handler: JobHandler) -> None:
    first = ChatResult.model_validate((await run(handler, chat_input(24, stream=False)))[-1])
    second = ChatResult.model_validate((await run(handler, chat_input(24, stream=False)))[-1])
    assert first.text == second.text


async def test_non_stream_chat_job_yields_only_the_final_result(handler: JobHandler) -> None:
    outputs = await run(handler, chat_input(max_tokens=16, stream=False))

    assert len(outputs) == 1
    result = ChatResult.model_validate(outputs[0])
    assert result.text.strip()
    assert result.usage.completion_tokens <= 16


async def test_sdk_job_runner_gives_the_aggregate_stream_that_status_returns(handler: JobHandler) -> None:
    # run_job_generator is what the SDK's handle_job iterates; with return_aggregate_stream the
    # final job-done carries the list of every element's "output".
    job = {"id": "job-agg", "input": chat_input(max_tokens=32)}
    partials = [partial async for partial in run_job_generator(handler.handle, job)]

    assert all(set(p) == {"output"} for p in partials)
    aggregate = [p["output"] for p in partials]
    result = ChatResult.model_validate(aggregate[-1])
    assert "".join(StreamChunk.model_validate(c).text for c in aggregate[:-1]) == result.text


async def test_openai_route_stream_is_sse_that_the_openai_client_parses(handler: JobHandler) -> None:
    job_input = {
        "openai_route": "/v1/chat/completions",
        "openai_input": {
            "model": "smollm2",
            "messages": QUESTION,
            "max_tokens": 32,
            "stream": True,
            "stream_options": {"include_usage": True},
            **GREEDY,
        },
    }
    outputs = await run(handler, job_input)
    assert all(isinstance(o, str) and o.startswith("data: ") and o.endswith("\n\n") for o in outputs)
    body = "".join(outputs)
    assert body.endswith("data: [DONE]\n\n")

    # Serve the joined frames as RunPod's route would, and let the official client read them.
    def relay(request: httpx2.Request) -> httpx2.Response:
        assert request.url.path.endswith("/chat/completions")
        return httpx2.Response(200, text=body, headers={"content-type": "text/event-stream"})

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(relay)) as relay_client:
        client = openai.AsyncOpenAI(
            api_key="k", base_url="http://runpod.test/v2/ep/openai/v1", http_client=relay_client
        )
        stream = await client.chat.completions.create(model="smollm2", messages=[], stream=True)
        events = [event async for event in stream]

    text = "".join(e.choices[0].delta.content or "" for e in events if e.choices)
    finish = [e.choices[0].finish_reason for e in events if e.choices and e.choices[0].finish_reason]
    usage = [e.usage for e in events if e.usage]
    assert text.strip()
    assert finish in (["stop"], ["length"])
    assert len(usage) == 1 and 0 < usage[0].completion_tokens <= 32


async def test_openai_stream_opens_with_the_job_id_before_the_first_token(handler: JobHandler) -> None:
    body = {"model": "smollm2", "messages": QUESTION, "max_tokens": 8, "stream": True, **GREEDY}
    outputs = await run(handler, {"openai_route": "/v1/chat/completions", "openai_input": body})

    opening = json.loads(outputs[0].removeprefix("data: "))
    assert opening["runpod_job_id"] == "job-1"  # the id `run` gives the job
    assert opening["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all("runpod_job_id" not in frame for frame in outputs[1:])
    assert '"content":"' in outputs[1]  # the model's text follows in the next frames


async def test_openai_route_without_streaming_returns_one_completion_body(handler: JobHandler) -> None:
    job_input = {
        "openai_route": "/v1/chat/completions",
        "openai_input": {"model": "smollm2", "messages": QUESTION, "max_tokens": 16, **GREEDY},
    }
    outputs = await run(handler, job_input)

    assert len(outputs) == 1
    completion = ChatCompletion.model_validate(outputs[0])
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason in {"stop", "length"}
    assert completion.usage is not None and completion.usage.completion_tokens <= 16


async def test_openai_models_route_lists_the_servers_models(
    handler: JobHandler, model_server: RunningModelServer
) -> None:
    outputs = await run(handler, {"openai_route": "/v1/models"})

    assert len(outputs) == 1
    assert outputs[0]["object"] == "list"
    assert [m["id"] for m in outputs[0]["data"]] == model_server.models


async def test_warmup_loads_the_model_and_reports_its_load_time(handler: JobHandler) -> None:
    outputs = await run(handler, {"kind": "control", "action": "warmup", "model": "smollm2"})

    result = ControlResult.model_validate(outputs[0])
    assert len(outputs) == 1
    assert result.action == "warmup"
    assert result.load_s is not None and result.load_s > 0
    assert {m.name: m.loaded for m in result.models}["smollm2"] is True
    assert result.worker_id == "worker-test-1"


async def test_models_control_job_lists_available_and_loaded(
    handler: JobHandler, model_server: RunningModelServer
) -> None:
    await run(handler, chat_input(max_tokens=4, stream=False))
    outputs = await run(handler, {"kind": "control", "action": "models"})

    result = ControlResult.model_validate(outputs[0])
    assert [m.name for m in result.models] == model_server.models
    assert [m.name for m in result.models if m.loaded] == ["smollm2"]


async def test_cancelling_the_job_ends_the_model_request(
    handler: JobHandler, model_server: RunningModelServer, http: httpx.AsyncClient
) -> None:
    """RunPod's job-stop cancels the handler's task: the stream is closed and the server stops generating."""
    # Ban the end-of-sequence tokens so, uncancelled, this would generate 1500 tokens (~15 s).
    endless = {
        "openai_route": "/v1/chat/completions",
        "openai_input": {
            "model": "smollm2",
            "messages": [{"role": "user", "content": "Count from 1 to 1000."}],
            "max_tokens": 1500,
            "stream": True,
            "logit_bias": {"0": -100, "1": -100, "2": -100},
            **GREEDY,
        },
    }
    # How long a short request takes right now (the machine may be busy): the yardstick below.
    started = time.monotonic()
    await run(handler, chat_input(max_tokens=8, stream=False))
    short_request_s = time.monotonic() - started
    disconnects_before = model_server.log_text().count("Disconnected from client")
    first_output = anyio.Event()
    outcome: list[BaseException] = []

    async def job() -> None:
        try:
            async for output in handler.handle({"id": "job-cancel", "input": endless}):
                if '"content":"' in output and '"content":""' not in output:  # past the opening frame
                    first_output.set()
        except BaseException as err:
            outcome.append(err)
            raise

    async with anyio.create_task_group() as tg:
        tg.start_soon(job)
        with anyio.fail_after(30):
            await first_output.wait()
        tg.cancel_scope.cancel()

    assert len(outcome) == 1 and isinstance(outcome[0], anyio.get_cancelled_exc_class())
    # The server logs the disconnect and is free at once: the next request is not queued behind
    # the remaining ~1500 tokens (the server runs one request at a time), so it takes about as
    # long as the same request did before.
    with anyio.fail_after(10):
        # Polling another process's log: there is no event to wait on.
        while model_server.log_text().count("Disconnected from client") == disconnects_before:  # noqa: ASYNC110
            await anyio.sleep(0.05)
    started = time.monotonic()
    outputs = await run(handler, chat_input(max_tokens=8, stream=False))
    assert ChatResult.model_validate(outputs[0]).text
    assert time.monotonic() - started < 3 * short_request_s + 2


async def test_unknown_model_is_a_model_not_found_job_error(handler: JobHandler) -> None:
    outputs = await run(handler, chat_input(model="llama3:70b"))

    error = decode_error(outputs[-1])
    assert len(outputs) == 1
    assert error.code is ErrorCode.MODEL_NOT_FOUND
    assert "llama3:70b" in error.message and "smollm2" in error.message


async def test_unreachable_model_server_is_a_model_server_unavailable_job_error(http: httpx.AsyncClient) -> None:
    url = f"http://127.0.0.1:{pick_free_port()}"
    config = WorkerConfig(model_url=url)
    handler = JobHandler(OpenAICompatibleBackend(http, url), config)

    outputs = await run(handler, chat_input())

    error = decode_error(outputs[0])
    assert error.code is ErrorCode.MODEL_SERVER_UNAVAILABLE
    assert url in error.message and "WORKER_MODEL_URL" in error.message


async def test_a_generation_failing_mid_stream_is_a_model_server_error_and_the_next_job_runs(
    handler: JobHandler,
) -> None:
    # 3000 tokens of prompt do not fit the server's 2048-token context: llama.cpp answers 200,
    # then ends the stream without [DONE] and drops the connection.
    long_prompt = [{"role": "user", "content": "rent " * 3000}]
    outputs = await run(handler, {"model": "smollm2", "messages": long_prompt, "options": {"max_tokens": 4}})

    error = decode_error(outputs[-1])
    assert error.code is ErrorCode.MODEL_SERVER_ERROR
    assert "[DONE]" in error.message and "context window" in error.message
    # The dropped keep-alive connection does not fail the next job.
    result = ChatResult.model_validate((await run(handler, chat_input(max_tokens=4, stream=False)))[0])
    assert result.text


async def test_invalid_input_is_a_bad_input_job_error_naming_the_field(handler: JobHandler) -> None:
    outputs = await run(handler, {"model": "smollm2", "messages": [{"role": "caller", "content": "hi"}]})

    error = decode_error(outputs[0])
    assert error.code is ErrorCode.BAD_INPUT
    assert "messages.0.role" in error.message


async def test_openai_route_rejects_a_body_without_messages(handler: JobHandler) -> None:
    outputs = await run(handler, {"openai_route": "/v1/chat/completions", "openai_input": {"model": "smollm2"}})

    error = decode_error(outputs[0])
    assert error.code is ErrorCode.BAD_INPUT
    assert "messages" in error.message


async def test_sdk_job_runner_stops_the_stream_at_a_yielded_error(http: httpx.AsyncClient) -> None:
    url = f"http://127.0.0.1:{pick_free_port()}"
    handler = JobHandler(OpenAICompatibleBackend(http, url), WorkerConfig(model_url=url))

    partials = [p async for p in run_job_generator(handler.handle, {"id": "job-err", "input": chat_input()})]

    # handle_job turns an output dict with "error" into {"error": str} and posts the job FAILED.
    assert len(partials) == 1
    output = partials[0]["output"]
    assert isinstance(output, dict)
    error = JobError.model_validate(json.loads(output["error"]))
    assert error.code is ErrorCode.MODEL_SERVER_UNAVAILABLE
