"""RunPodClient against the local RunPod endpoint with real `runpod` SDK worker processes.

The echo worker (`tests/support/workers/stream_echo.py`) makes streaming, timing and failure
deterministic; the last tests run the real `gpu_handler` against llama.cpp with SmolLM2.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest

from pete_mcp.contract import ChatJob, ChatOptions, ChatResult, Message
from pete_mcp.core.errors import AuthError, JobFailed, NotFound, ProviderTimeout, ProviderUnavailable
from pete_mcp.core.provider import JobStarted, TextDelta
from pete_mcp.local.localpod import DEFAULT_WORKER_COMMAND, LocalPod, LocalPodConfig
from pete_mcp.runpod.client import JobStatus, RunPodClient
from tests.support.localpod import poll_until, running_localpod, wait_for_file
from tests.support.model_server import RunningModelServer

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

MakeConfig = Callable[..., LocalPodConfig]


@asynccontextmanager
async def client_for(
    pod: LocalPod,
    *,
    key: str | None = None,
    endpoint_id: str | None = None,
    event_hooks: dict[str, list[Callable[..., Any]]] | None = None,
    **kwargs: Any,
) -> AsyncIterator[RunPodClient]:
    async with httpx.AsyncClient(event_hooks=event_hooks) as http:
        yield RunPodClient(
            http,
            base_url=pod.url,
            endpoint_id=endpoint_id or pod.endpoint_id,
            api_key=pod.api_key if key is None else key,
            **kwargs,
        )


def echo_chat(text: str) -> ChatJob:
    return ChatJob(model="echo", messages=[Message(role="user", content=text)])


async def test_run_then_status_sees_the_job_complete(localpod_config: MakeConfig) -> None:
    async with running_localpod(localpod_config()) as pod, client_for(pod) as client:
        ref = await client.run({"chunks": ["a", "b"]})
        assert ref.status is JobStatus.IN_QUEUE
        job = await poll_until(lambda: client.status(ref.id), lambda j: j.is_terminal)
        assert (job.status, job.output) == (JobStatus.COMPLETED, ["a", "b"])
        assert job.worker_id and job.delay_time_ms is not None


async def test_runsync_returns_the_output_when_done_in_time(localpod_config: MakeConfig) -> None:
    async with running_localpod(localpod_config()) as pod, client_for(pod) as client:
        job = await client.runsync({"chunks": ["x"]}, wait_s=10)
        assert (job.status, job.output) == (JobStatus.COMPLETED, ["x"])


async def test_runsync_not_done_in_time_is_finished_by_polling_status(localpod_config: MakeConfig) -> None:
    async with running_localpod(localpod_config()) as pod, client_for(pod) as client:
        first = await client.runsync({"chunks": ["late"], "sleep_s": 2.0}, wait_s=1)
        assert first.status in {JobStatus.IN_QUEUE, JobStatus.IN_PROGRESS}
        job = await client.run_and_wait({"chunks": ["late"], "sleep_s": 2.0}, deadline_s=20, runsync_wait_s=1)
        assert (job.status, job.output) == (JobStatus.COMPLETED, ["late"])


async def test_run_and_wait_cancels_a_job_still_running_at_its_deadline(
    localpod_config: MakeConfig, marker_dir: Path
) -> None:
    async with running_localpod(localpod_config()) as pod, client_for(pod) as client:
        with pytest.raises(ProviderTimeout, match="cancelled") as info:
            await client.run_and_wait({"chunks": ["x"], "sleep_s": 30}, deadline_s=1.5)
        job_id = str(info.value).split()[2]
        assert (await client.status(job_id)).status is JobStatus.CANCELLED
        await wait_for_file(marker_dir / f"{job_id}.cancelled")  # the worker's handler was stopped


async def test_stream_delivers_every_chunk_in_order(localpod_config: MakeConfig) -> None:
    chunks = [f"c{i}" for i in range(40)]
    async with running_localpod(localpod_config()) as pod, client_for(pod) as client:
        ref = await client.run({"chunks": chunks, "delay_s": 0.01})
        with anyio.fail_after(30):
            received = [o async for o in client.iter_stream(ref.id)]
        assert received == chunks


async def test_a_failed_job_raises_the_workers_own_error(localpod_config: MakeConfig) -> None:
    async with running_localpod(localpod_config()) as pod, client_for(pod) as client:
        ref = await client.run({"chunks": ["a"], "fail": "the model server went away"})
        with pytest.raises(JobFailed, match="the model server went away") as info:
            async for _ in client.iter_stream(ref.id):
                pass
        assert "traceback" not in str(info.value)


async def test_openai_route_streams_every_word_in_order(localpod_config: MakeConfig) -> None:
    words = [f"w{i}" for i in range(30)]
    async with running_localpod(localpod_config()) as pod, client_for(pod) as client:
        async with client.stream_chat(echo_chat(" ".join(words)), use_openai_route=True) as chat:
            events = [event async for event in chat]
        deltas = [e.text for e in events if isinstance(e, TextDelta)]
        result = events[-1]
        assert isinstance(result, ChatResult) and len(deltas) == len(events) - 1
        assert "".join(deltas).split() == words
        assert result.text == " ".join(words) and result.timings.ttft_s is not None
        assert (await client.openai_models())["data"][0]["id"] == "echo"


async def test_hanging_up_an_openai_stream_stops_the_workers_job(localpod_config: MakeConfig, marker_dir: Path) -> None:
    body = {"model": "echo", "messages": [{"role": "user", "content": "one two three four five six"}], "delay_s": 0.5}

    async def cancelled_markers() -> list[anyio.Path]:
        return [path async for path in anyio.Path(marker_dir).glob("*.cancelled")]

    async with running_localpod(localpod_config()) as pod, client_for(pod) as client:
        chunks = client.openai_chat_stream(body)
        async with aclosing(chunks):
            first = await anext(chunks)
            assert first["choices"][0]["delta"]["content"] == "one"
        assert len(await poll_until(cancelled_markers, lambda found: len(found) == 1, timeout_s=15)) == 1
        health = await poll_until(client.health, lambda h: h.jobs.in_progress == 0, timeout_s=15)
        assert health.jobs.completed == 0


async def test_bad_key_is_an_auth_error(localpod_config: MakeConfig) -> None:
    async with running_localpod(localpod_config()) as pod, client_for(pod, key="not-the-key") as client:
        with pytest.raises(AuthError, match=r"refused the API key \(401\)") as info:
            await client.health()
        assert "not-the-key" not in str(info.value)


async def test_unknown_endpoint_and_unknown_job_are_not_found(localpod_config: MakeConfig) -> None:
    async with running_localpod(localpod_config()) as pod:
        async with client_for(pod, endpoint_id="nope") as client:
            with pytest.raises(NotFound, match="endpoint nope not found"):
                await client.health()
        async with client_for(pod) as client:
            with pytest.raises(NotFound, match="job no-such-job not found"):
                await client.status("no-such-job")


async def test_429_and_5xx_are_retried_on_safe_calls_but_run_is_not_repeated(localpod_config: MakeConfig) -> None:
    async with running_localpod(localpod_config()) as pod, client_for(pod, backoff_base_s=0.01) as client:
        pod.faults.fail_route("health", 429, count=2)
        pod.faults.fail_route("status", 503, count=2)
        assert (await client.health()).workers.serving >= 1
        ref = await client.run({"chunks": ["a"]})
        await poll_until(lambda: client.status(ref.id), lambda j: j.is_terminal)
        assert pod.faults.snapshot()["route_errors"] == []  # every injected failure was met and retried

        submitted = (await client.health()).jobs
        pod.faults.fail_route("run", 500, count=1)
        with pytest.raises(ProviderUnavailable, match="HTTP 500"):
            await client.run({"chunks": ["b"]})
        after = (await client.health()).jobs
        assert after.in_queue + after.in_progress + after.completed == (
            submitted.in_queue + submitted.in_progress + submitted.completed
        )


async def test_a_429_on_run_is_retried_and_queues_the_job_once(localpod_config: MakeConfig) -> None:
    async with running_localpod(localpod_config()) as pod, client_for(pod, backoff_base_s=0.01) as client:
        pod.faults.fail_route("run", 429, count=1)
        ref = await client.run({"chunks": ["once"]})
        job = await poll_until(lambda: client.status(ref.id), lambda j: j.is_terminal)
        assert job.output == ["once"]
        assert (await client.health()).jobs.completed == 1


# --- the real worker: gpu_handler + llama.cpp (SmolLM2) ---------------------------------------


def real_worker_config(make: MakeConfig, model_server: RunningModelServer) -> LocalPodConfig:
    return make(
        worker_command=DEFAULT_WORKER_COMMAND,
        worker_env={"WORKER_MODEL_URL": model_server.url, "WORKER_BACKEND": "openai", "WORKER_CONCURRENCY": "2"},
    )


def lease_question(model: str, max_tokens: int = 48) -> ChatJob:
    return ChatJob(
        model=model,
        messages=[Message(role="user", content="Is there a fee for breaking my lease?")],
        options=ChatOptions(max_tokens=max_tokens, temperature=0.0, seed=1),
    )


@pytest.mark.parametrize("use_openai_route", [False, True])
async def test_real_worker_streams_a_smollm2_answer(
    localpod_config: MakeConfig, model_server: RunningModelServer, use_openai_route: bool
) -> None:
    async with running_localpod(real_worker_config(localpod_config, model_server)) as pod, client_for(pod) as client:
        events = []
        with anyio.fail_after(120):
            async with client.stream_chat(
                lease_question(model_server.chat_model), use_openai_route=use_openai_route
            ) as chat:
                events = [e async for e in chat]
        deltas = [e.text for e in events if isinstance(e, TextDelta)]
        result = events[-1]
        assert isinstance(result, ChatResult)
        assert deltas and "".join(deltas) == result.text and result.text.strip()
        assert result.usage.completion_tokens > 0
        assert isinstance(events[0], JobStarted)  # the OpenAI route too: the worker's opening frame
        if not use_openai_route:
            assert result.worker_id
            assert result.timings.ttft_s is not None


@pytest.mark.parametrize("use_openai_route", [False, True])
async def test_cancelling_a_real_stream_mid_answer_cancels_the_job(
    localpod_config: MakeConfig, model_server: RunningModelServer, use_openai_route: bool
) -> None:
    cancels: list[str] = []

    async def note_cancel(request: httpx.Request) -> None:
        if "/cancel/" in request.url.path:
            cancels.append(request.url.path.rsplit("/", 1)[-1])

    async with (
        running_localpod(real_worker_config(localpod_config, model_server)) as pod,
        client_for(pod, event_hooks={"request": [note_cancel]}) as client,
    ):
        job = lease_question(model_server.chat_model, max_tokens=2000)
        job_ids: list[str] = []

        async def consume(task_status: anyio.abc.TaskStatus[None]) -> None:
            async with client.stream_chat(job, use_openai_route=use_openai_route) as chat:
                async for event in chat:
                    if isinstance(event, JobStarted):
                        job_ids.append(event.job_id)
                    elif isinstance(event, TextDelta):
                        task_status.started()
                        await anyio.sleep_forever()

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                await tg.start(consume)
                tg.cancel_scope.cancel()
        assert cancels == job_ids  # `/cancel` went out with the job's id, on either route
        assert (await client.status(job_ids[0])).status is JobStatus.CANCELLED
        health = await poll_until(client.health, lambda h: h.jobs.in_progress == 0, timeout_s=15)
        assert health.jobs.completed == 0
