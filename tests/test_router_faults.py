"""Fault scenarios on the local RunPod endpoint, with a second OpenAI-compatible server as fallback.

Real processes throughout: the local endpoint runs gpu_handler workers against llama.cpp; the
fallback is the same llama.cpp server reached directly (standing in for OpenRouter). Every
request must complete, under a 10 s cold start, 5xx answers and a worker killed mid-job.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest

from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core.models import ModelRegistry, ModelSpec, Route
from pete_mcp.core.provider import TextDelta
from pete_mcp.core.settings import Settings
from pete_mcp.gateway import ChatTurn, Core, Reply, build_core
from pete_mcp.local.localpod import LocalPod
from pete_mcp.routing.providers.openai_compatible import OpenAICompatibleProvider
from pete_mcp.routing.providers.runpod import RunPodProvider
from tests.support.polling import eventually
from tests.support.runpod_stack import gpu_pod, runpod_client_for

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@dataclass
class Done:
    reply: Reply
    ttft_s: float


@pytest.fixture
async def stack(model_server: object, tmp_path: Path) -> AsyncIterator[tuple[Core, LocalPod]]:
    url = model_server.url  # type: ignore[attr-defined]
    async with (
        gpu_pod(url, tmp_path / "pod", min_workers=1, max_workers=2, fault_seed=11) as pod,
        httpx.AsyncClient(timeout=60) as http,
    ):
        providers = {
            "runpod": RunPodProvider(runpod_client_for(pod, http, timeout_s=60), use_openai_route=True),
            "fallback": OpenAICompatibleProvider("fallback", http, base_url=url + "/v1"),
        }
        spec = ModelSpec("jamie", (Route("runpod", "smollm2"), Route("fallback", "smollm2")), 2048)
        settings = Settings(data_dir=tmp_path / "data", breaker_failures=50)
        async with build_core(settings, providers=providers, registry=ModelRegistry({"jamie": spec}, "jamie")) as core:
            for _ in range(3):  # a few normal replies teach the hedge delay what a warm TTFT is
                await ask(core)
            yield core, pod


async def ask(core: Core) -> Done:
    turn = ChatTurn([Message(role="user", content="My sink leaks.")], options=ChatOptions(max_tokens=8, temperature=0))
    started = anyio.current_time()
    ttft = None
    with anyio.fail_after(60):
        async for event in core.chat(turn):
            if isinstance(event, TextDelta) and ttft is None:
                ttft = anyio.current_time() - started
            if isinstance(event, Reply):
                return Done(event, ttft if ttft is not None else anyio.current_time() - started)
    raise AssertionError("no reply")


async def router_sees_warm(core: Core) -> None:
    """Wait until the router's cached `/health` says a job on the endpoint would start now.

    Right after a worker is killed the cache may still say `cold` (or `busy`) for a poll interval,
    and a cold endpoint goes behind the fallback: the turn would never reach a worker to kill.
    """
    runpod = core.router.providers["runpod"]
    assert isinstance(runpod, RunPodProvider)
    with anyio.fail_after(30):
        while True:
            await runpod.state.refresh()
            if runpod.state.readiness() == "warm":
                return
            await anyio.sleep(0.05)


async def ask_many(core: Core, count: int, concurrency: int = 2) -> list[Done]:
    done: list[Done] = []

    async def client(n: int) -> None:
        for _ in range(n):
            done.append(await ask(core))

    async with anyio.create_task_group() as tg:
        for i in range(concurrency):
            tg.start_soon(client, count // concurrency + (1 if i < count % concurrency else 0))
    return done


async def test_a_ten_second_cold_start_is_hedged_onto_the_fallback(stack: tuple[Core, LocalPod]) -> None:
    core, pod = stack
    before = core.router.stats.hedge_wins
    pod.faults.stall_jobs(10.0, count=3)
    done = await ask_many(core, 6)
    assert len(done) == 6 and all(d.reply.text.strip() for d in done)
    assert max(d.ttft_s for d in done) < 4.0  # never the 10 s cold start
    assert core.router.stats.hedge_wins - before >= 3
    assert {d.reply.provider for d in done} <= {"runpod", "fallback"}
    # The stalled jobs were cancelled, not left to run.
    await eventually(lambda: not pod.state.board.counts()["inQueue"], timeout_s=15)


async def test_5xx_answers_fail_over_at_once(stack: tuple[Core, LocalPod]) -> None:
    core, pod = stack
    before = core.router.stats.failovers
    pod.faults.fail_route("openai", 503, count=3)
    done = await ask_many(core, 6)
    assert len(done) == 6 and all(d.reply.text.strip() for d in done)
    assert core.router.stats.failovers - before == 3
    assert sum(d.reply.provider == "fallback" for d in done) >= 3


async def test_a_worker_killed_mid_job_does_not_fail_the_request(stack: tuple[Core, LocalPod]) -> None:
    core, pod = stack
    pod.faults.slow_stream(1.5)  # hold each worker stream post, so the job is surely mid-flight
    killed: list[Done] = []
    for _ in range(5):
        if len(killed) == 2:
            break
        await pod.wait_for_workers(1, timeout_s=60)  # the killed one's replacement
        await router_sees_warm(core)  # else the router sends the turn to the fallback first
        results: list[Done] = []
        async with anyio.create_task_group() as tg:

            async def one(into: list[Done] = results) -> None:
                into.append(await ask(core))

            tg.start_soon(one)
            await eventually(lambda: pod.state.board.running() or results, timeout_s=30)  # noqa: B023
            if results:
                continue  # answered before any worker took the job: try again
            pod.kill_worker(job_id=pod.state.board.running()[0].id)
        killed.extend(results)
    pod.faults.clear()
    assert len(killed) == 2
    assert all(r.reply.text.strip() for r in killed)
    assert all(r.reply.provider == "fallback" for r in killed)
