"""The whole path a call takes: VAPI route → core → local RunPod endpoint → gpu_handler worker → llama.cpp.

And its faults, injected in the local endpoint: a cold start beyond the budget, a worker
killed mid-reply, a model the worker cannot serve, and a caller hanging up. Each must end in
a well-formed stream with the right spoken text, the RunPod job cancelled where it should be,
and nothing missing from the conversation store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from pete_mcp.local.localpod import JobStatus, LocalPod
from pete_mcp.routing.providers.runpod import RunPodProvider
from tests.support.runpod_stack import gpu_pod, runpod_client_for
from tests.support.standins import serving
from tests.support.vapi_stack import VapiStack, assert_vapi_stream, chat_body, eventually, vapi_stack

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

APOLOGY = "I'm sorry, I'm having trouble answering right now. Someone from our office will call you back shortly."
HOLD = "One moment while I check that."


@pytest.fixture
async def pod(model_server: object, tmp_path: Path) -> AsyncIterator[LocalPod]:
    async with gpu_pod(model_server.url, tmp_path / "pod") as pod:  # type: ignore[attr-defined]
        yield pod


@asynccontextmanager
async def stack_on(
    pod: LocalPod, tmp_path: Path, *, openai_route: bool = False, model: str = "smollm2", **settings: Any
) -> AsyncIterator[VapiStack]:
    async with httpx.AsyncClient() as http:
        provider = RunPodProvider(runpod_client_for(pod, http), use_openai_route=openai_route)
        async with vapi_stack(tmp_path / "pete", {"runpod": provider}, model=model, **settings) as stack:
            yield stack


async def test_the_openai_client_streams_through_the_whole_local_runpod_path(pod: LocalPod, tmp_path: Path) -> None:
    import openai

    async with stack_on(
        pod, tmp_path, openai_route=True, vapi_answer_deadline_s=240, vapi_holding_after_s=240
    ) as stack:
        with anyio.fail_after(300):
            await stack.core.warm(stack.core.active)  # a first request after start can be slow on a busy CPU
        async with serving(stack.app, lifespan="off") as base:
            client = openai.AsyncOpenAI(base_url=base + "/vapi", api_key="not-checked", max_retries=0)
            with anyio.fail_after(300):
                stream = await client.chat.completions.create(
                    model="jamie",
                    messages=[{"role": "user", "content": "Say hello to a tenant."}],
                    stream=True,
                    max_tokens=16,
                    temperature=0,
                    extra_body={"call": {"id": "call-pod"}},
                )
                chunks = [chunk async for chunk in stream]
            await client.close()
        thread = await stack.thread("call-pod")
        turns = await stack.face.calls.turns("call-pod")
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant" and text.strip()
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert thread[-2:] == [("user", "Say hello to a tenant."), ("assistant", text)]
    job = pod.state.board.get(turns[0]["job_id"])
    assert job is None or job.status is JobStatus.COMPLETED


async def test_a_cold_start_beyond_the_budget_apologises_and_cancels_the_runpod_job(
    pod: LocalPod, tmp_path: Path
) -> None:
    pod.faults.stall_jobs(30.0, count=1)  # the job waits in the queue: a cold start
    budget: dict[str, Any] = {"vapi_holding_after_s": 0.3, "vapi_answer_deadline_s": 1.5}
    async with stack_on(pod, tmp_path, **budget) as stack:
        with anyio.fail_after(10):
            response = await stack.chat(chat_body(("user", "Is the pool open?")))
        queued = [j.id for j in pod.state.board.queued()]
        await eventually(lambda: all((j := pod.state.board.get(i)) is None or j.status.terminal for i in queued))
        thread = await stack.thread("call-1")
    said = assert_vapi_stream(response.text)
    assert said.content == f"{HOLD} {APOLOGY}" and said.finish_reason == "stop"
    assert all((j := pod.state.board.get(i)) is None or j.status is JobStatus.CANCELLED for i in queued)
    assert thread[1:] == [("user", "Is the pool open?"), ("assistant", HOLD), ("assistant", APOLOGY)]


async def test_a_worker_killed_mid_reply_ends_the_stream_with_an_apology(pod: LocalPod, tmp_path: Path) -> None:
    pod.faults.slow_stream(0.4)  # each streamed chunk is slow to arrive: the reply is still going when killed
    async with stack_on(pod, tmp_path, vapi_answer_deadline_s=3.0) as stack:
        async with serving(stack.app, lifespan="off") as base, httpx.AsyncClient(base_url=base) as client:
            body = chat_body(("user", "Describe the laundry room rules in detail."), max_tokens=64)
            with anyio.fail_after(30):
                async with client.stream("POST", "/vapi/chat/completions", json=body) as response:
                    text = ""
                    chunks = response.aiter_text()
                    while '"content":"' not in text.split("\n\n", 1)[-1]:  # wait for real content after the role
                        text += await anext(chunks)
                    running = pod.state.board.running()
                    assert running, "the reply finished before the worker could be killed"
                    job_id = running[0].id
                    # The endpoint requeues the job for a replacement worker, as RunPod does; that
                    # worker's cold start outlasts the turn budget, so the reply stalls.
                    pod.faults.stall_cold_start(30.0, count=1)
                    pod.kill_worker(job_id=job_id)
                    async for piece in chunks:
                        text += piece
            await eventually(lambda: (j := pod.state.board.get(job_id)) is None or j.status.terminal)
        thread = await stack.thread("call-1")
    said = assert_vapi_stream(text)
    assert said.content.endswith(APOLOGY) and said.finish_reason == "stop"
    job = pod.state.board.get(job_id)
    assert job is None or job.status is JobStatus.CANCELLED  # the requeued job was cancelled
    spoken_before = said.content[: -len(APOLOGY)].strip()
    assert spoken_before  # the caller heard part of the reply first
    assert thread[1] == ("user", "Describe the laundry room rules in detail.")
    assert thread[-1] == ("assistant", APOLOGY)
    assert thread[-2][0] == "assistant" and thread[-2][1].strip() == spoken_before


async def test_a_model_the_worker_cannot_serve_becomes_a_spoken_apology(pod: LocalPod, tmp_path: Path) -> None:
    async with stack_on(pod, tmp_path, model="no-such-model:7b") as stack:
        with anyio.fail_after(30):
            response = await stack.chat(chat_body(("user", "Hello?")))
        thread = await stack.thread("call-1")
    said = assert_vapi_stream(response.text)
    assert (said.content, said.finish_reason) == (APOLOGY, "stop")
    assert thread[1:] == [("user", "Hello?"), ("assistant", APOLOGY)]


async def test_a_hang_up_during_a_cold_start_cancels_the_runpod_job(pod: LocalPod, tmp_path: Path) -> None:
    pod.faults.stall_jobs(30.0, count=1)
    async with stack_on(pod, tmp_path, vapi_answer_deadline_s=20.0) as stack:
        async with serving(stack.app, lifespan="off") as base, httpx.AsyncClient(base_url=base) as client:
            with anyio.fail_after(10):
                async with client.stream("POST", "/vapi/chat/completions", json=chat_body(("user", "Hi"))) as r:
                    chunks = r.aiter_text()
                    await anext(chunks)  # the role frame
                    await eventually(lambda: bool(pod.state.board.queued()))
                    job_id = pod.state.board.queued()[0].id
                    await r.aclose()  # the caller hangs up while the GPU is still cold
            await eventually(lambda: (j := pod.state.board.get(job_id)) is None or j.status.terminal)
        thread = await stack.thread("call-1")
    job = pod.state.board.get(job_id)
    assert job is None or job.status is JobStatus.CANCELLED
    assert thread[1:] == [("user", "Hi")]
