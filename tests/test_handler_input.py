"""The worker reads the inputs people send first, and says what it needs when it cannot.

Each accepted shape, run against llama.cpp, is a fixture in tests/fixtures/jobs/
(tests/test_handler_fixtures.py). Here: the warning for keys nothing reads, the message when a
job has no model and the worker no default, and the official `runpod` SDK client sending
RunPod's console-style input to the production worker through the local endpoint.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx
import pytest
from gpu_handler import JobHandler, WorkerConfig
from gpu_handler.backends import OpenAICompatibleBackend
from pete_mcp.localpod import DEFAULT_WORKER_COMMAND, LocalPodConfig

from pete_mcp.contract import ChatResult, ErrorCode, JobError, StreamChunk
from tests.support.localpod import REPO_ROOT, running_localpod
from tests.support.model_server import RunningModelServer

pytestmark = pytest.mark.anyio

HI = [{"role": "user", "content": "Hi"}]


@pytest.fixture
async def offline_handler() -> AsyncIterator[Callable[[WorkerConfig], JobHandler]]:
    """Handlers whose model server does not exist: for jobs that must fail before reaching it."""
    async with httpx.AsyncClient(timeout=5) as http:
        yield lambda config: JobHandler(OpenAICompatibleBackend(http, "http://127.0.0.1:9"), config)


async def run(handler: JobHandler, job_input: Any) -> list[Any]:
    return [output async for output in handler.handle({"id": "job-in", "input": job_input})]


async def test_keys_nothing_reads_are_a_warning_naming_the_job_not_a_failure(
    offline_handler: Callable[[WorkerConfig], JobHandler], caplog: pytest.LogCaptureFixture
) -> None:
    handler = offline_handler(WorkerConfig(model_url="http://127.0.0.1:9", preload=("smollm2",)))
    with caplog.at_level(logging.WARNING, logger="gpu_handler.handler"):
        outputs = await run(handler, {"messages": HI, "max_tokens": 8, "n": 1, "sampling_params": {"top_k": 4}})

    # The job got past reading its input: it fails only at the missing model server.
    assert JobError.model_validate_json(outputs[0]["error"]).code is ErrorCode.MODEL_SERVER_UNAVAILABLE
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "job job-in: ignored input keys this worker does not read: n, sampling_params.top_k" in warnings


async def test_a_job_without_a_model_on_a_worker_without_a_default_says_how_to_fix_it(
    offline_handler: Callable[[WorkerConfig], JobHandler],
) -> None:
    outputs = await run(offline_handler(WorkerConfig()), {"messages": HI, "max_tokens": 8})

    error = JobError.model_validate_json(outputs[0]["error"])
    assert error.code is ErrorCode.BAD_INPUT
    assert "names no `model`" in error.message and "WORKER_PRELOAD" in error.message


async def test_a_job_without_input_shows_an_input_that_works(
    offline_handler: Callable[[WorkerConfig], JobHandler],
) -> None:
    outputs = [o async for o in offline_handler(WorkerConfig()).handle({"id": "empty"})]

    error = JobError.model_validate_json(outputs[0]["error"])
    assert error.code is ErrorCode.BAD_INPUT
    assert '{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 64}' in error.message


@pytest.mark.slow
@pytest.mark.usefixtures("runpod_sdk")
async def test_the_runpod_sdk_clients_run_sync_gets_text_for_plain_messages(
    localpod_config: Callable[..., LocalPodConfig],
    model_server: RunningModelServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import runpod

    config = localpod_config(
        worker_command=DEFAULT_WORKER_COMMAND,
        worker_cwd=REPO_ROOT,
        worker_env={
            "WORKER_MODEL_URL": model_server.url,
            "WORKER_BACKEND": "openai",
            "WORKER_PRELOAD": model_server.chat_model,  # the default for a job that names no model
        },
    )
    async with running_localpod(config) as pod:
        # The SDK client reads its base URL from this module global when an Endpoint is made.
        monkeypatch.setattr(runpod, "endpoint_url_base", pod.url)
        endpoint = runpod.Endpoint(pod.endpoint_id, api_key=pod.api_key)
        request = {"messages": [{"role": "user", "content": "Is there a fee for breaking my lease?"}], "max_tokens": 16}
        with anyio.fail_after(120):
            # Typed as a dict by the SDK; it is whatever the job output is: here the list of yields.
            output: Any = await anyio.to_thread.run_sync(lambda: endpoint.run_sync(request, timeout=110))

    assert isinstance(output, list) and output, output  # the aggregated stream: chunks, then the result
    result = ChatResult.model_validate(output[-1])
    assert result.text.strip() and result.model == model_server.chat_model
    assert "".join(StreamChunk.model_validate(chunk).text for chunk in output[:-1]) == result.text
    assert 0 < result.usage.completion_tokens <= 16
