"""The local endpoint as a load-balancing endpoint: requests relayed straight to real workers'
own HTTP servers (`python -m gpu_handler --http`) in front of llama.cpp with SmolLM2."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import httpx
import openai
import pytest

from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core import CONVERSATION, Completion
from pete_mcp.local.localpod import DEFAULT_LB_WORKER_COMMAND, LocalPodConfig
from pete_mcp.routing import RunPodLBProvider
from pete_mcp.runpod import RunPodLBClient
from tests.support.localpod import REPO_ROOT, running_localpod
from tests.support.model_server import RunningModelServer

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

MakeConfig = Callable[..., LocalPodConfig]


def lb_config(make: MakeConfig, model_server: RunningModelServer, workers: int = 1) -> LocalPodConfig:
    return make(
        endpoint_type="load_balancer",
        lb_worker_command=DEFAULT_LB_WORKER_COMMAND,
        worker_cwd=REPO_ROOT,
        worker_env={"WORKER_MODEL_URL": model_server.url, "WORKER_BACKEND": "openai", "WORKER_CONCURRENCY": "2"},
        min_workers=workers,
        max_workers=workers,
    )


def chat(model: str, max_tokens: int = 16, *, stream: bool = True) -> dict[str, object]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "Is there a fee for breaking my lease?"}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": stream,
    }


async def test_a_load_balancing_endpoint_streams_a_real_answer_naming_its_worker(
    localpod_config: MakeConfig, model_server: RunningModelServer
) -> None:
    async with running_localpod(lb_config(localpod_config, model_server)) as pod:
        await pod.wait_for_workers(1, timeout_s=120)
        headers = {"Authorization": f"Bearer {pod.api_key}"}
        async with httpx.AsyncClient(base_url=pod.lb_url, headers=headers, timeout=60) as http:
            ping = await http.get("/ping")
            assert ping.status_code == 200 and ping.headers["X-Runpod-Worker-Id"]
            llm = openai.AsyncOpenAI(base_url=f"{pod.lb_url}/v1", api_key=pod.api_key, max_retries=0)
            raw = await llm.chat.completions.with_raw_response.create(
                model=model_server.chat_model,
                messages=[{"role": "user", "content": "Is there a fee for breaking my lease?"}],
                max_tokens=16,
                stream=True,
            )
            chunks = [chunk async for chunk in raw.parse()]
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert text.strip()
            assert raw.headers["X-Runpod-Worker-Id"] == ping.headers["X-Runpod-Worker-Id"]
            assert (chunks[0].model_extra or {}).get("runpod_job_id")  # the worker's opening frame
            await llm.close()  # left to the garbage collector, its close would run in another test's loop

            refused = await http.post(
                "/v1/chat/completions", json=chat(model_server.chat_model), headers={"Authorization": "x"}
            )
            assert refused.status_code == 401


async def test_worker_affinity_pins_a_calls_turns_to_one_worker(
    localpod_config: MakeConfig, model_server: RunningModelServer
) -> None:
    async with running_localpod(lb_config(localpod_config, model_server, workers=2)) as pod:
        await pod.wait_for_workers(2, timeout_s=180)
        headers = {"Authorization": f"Bearer {pod.api_key}"}
        async with httpx.AsyncClient(base_url=pod.lb_url, headers=headers, timeout=60) as http:
            body = chat(model_server.chat_model, 4, stream=False)
            first = await http.post("/v1/chat/completions", json=body)
            pinned = first.headers["X-Runpod-Worker-Id"]
            other = next(w.id for w in pod.state.workers.all() if w.id != pinned)
            # The least busy worker would alternate; the pinned worker keeps every turn.
            for mode in ("", "strict ", "strict-resume "):
                again = await http.post(
                    "/v1/chat/completions", json=body, headers={"X-Runpod-Worker-Id": mode + pinned}
                )
                assert again.status_code == 200 and again.headers["X-Runpod-Worker-Id"] == pinned
            assert (await http.post("/v1/chat/completions", json=body, headers={"X-Runpod-Worker-Id": other})).headers[
                "X-Runpod-Worker-Id"
            ] == other

            gone = await http.post("/v1/chat/completions", json=body, headers={"X-Runpod-Worker-Id": "strict w9-gone"})
            assert gone.status_code == 404 and "affinity_worker_gone" in gone.text
            soft = await http.post("/v1/chat/completions", json=body, headers={"X-Runpod-Worker-Id": "w9-gone"})
            assert soft.status_code == 200  # soft affinity falls back to any worker


async def test_hanging_up_on_a_load_balanced_stream_frees_the_worker(
    localpod_config: MakeConfig, model_server: RunningModelServer
) -> None:
    async with running_localpod(lb_config(localpod_config, model_server)) as pod:
        await pod.wait_for_workers(1, timeout_s=120)
        headers = {"Authorization": f"Bearer {pod.api_key}"}
        async with httpx.AsyncClient(base_url=pod.lb_url, headers=headers, timeout=60) as http:
            body = chat(model_server.chat_model, 1500)
            async with http.stream("POST", "/v1/chat/completions", json=body) as response:
                async for line in response.aiter_lines():
                    if '"content":"' in line and '"content":""' not in line:
                        break  # the model is generating: hang up mid-answer
            worker = pod.state.workers.all()[0]
            with anyio.fail_after(10):
                while worker.inflight:  # noqa: ASYNC110 (the relay's close is not an event we can await)
                    await anyio.sleep(0.05)
            assert pod.health()["workers"]["idle"] == 1


async def test_the_gateway_keeps_each_calls_turns_on_one_worker(
    localpod_config: MakeConfig, model_server: RunningModelServer
) -> None:
    """RunPodLBProvider against the local load-balancing endpoint: turns of one call reuse the
    worker that answered its first turn, while the endpoint spreads calls over idle workers."""
    async with running_localpod(lb_config(localpod_config, model_server, workers=2)) as pod:
        await pod.wait_for_workers(2, timeout_s=180)
        async with httpx.AsyncClient() as http:
            provider = RunPodLBProvider(RunPodLBClient(http, base_url=pod.lb_url, api_key=pod.api_key))
            options = ChatOptions(max_tokens=4, temperature=0.0)

            async def turn(call: str | None, text: str) -> Completion:
                token = CONVERSATION.set(call)
                try:
                    events = [
                        e
                        async for e in provider.stream(
                            model_server.chat_model, [Message(role="user", content=text)], options
                        )
                    ]
                finally:
                    CONVERSATION.reset(token)
                assert isinstance(events[-1], Completion) and events[-1].text
                return events[-1]

            async with provider:
                workers = {(await turn(None, f"Hello {i}")).worker_id for i in range(2)}
                assert len(workers) == 2  # without a call, requests spread
                first = await turn("call-a", "Is rent due on the first?")
                later = [await turn("call-a", f"And turn {i}?") for i in range(3)]
                assert {c.worker_id for c in later} == {first.worker_id}
                assert provider.affinity.get("call-a") == first.worker_id
                assert (await provider.health()).ok
                assert provider.readiness() == "warm"  # from the /ping just noted
