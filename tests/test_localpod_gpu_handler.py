"""The local endpoint running the production worker (`python -m gpu_handler`) against llama.cpp.

Real processes end to end: the endpoint, an unmodified runpod SDK worker loop around
`gpu_handler`, and the llama.cpp server with SmolLM2 (the `model_server` fixture).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import openai
import pytest

from pete_mcp.contract import ChatResult, StreamChunk
from pete_mcp.local.localpod import DEFAULT_WORKER_COMMAND, LocalPodConfig
from tests.support.localpod import REPO_ROOT, pod_client, running_localpod
from tests.support.model_server import RunningModelServer

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.usefixtures("runpod_sdk")]

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}


def gpu_handler_config(make: Callable[..., LocalPodConfig], model_server: RunningModelServer) -> LocalPodConfig:
    return make(
        worker_command=DEFAULT_WORKER_COMMAND,
        worker_cwd=REPO_ROOT,
        worker_env={"WORKER_MODEL_URL": model_server.url, "WORKER_BACKEND": "openai", "WORKER_CONCURRENCY": "2"},
    )


async def test_a_chat_job_streams_sentence_chunks_then_the_result_through_the_endpoint(
    localpod_config: Callable[..., LocalPodConfig], model_server: RunningModelServer
) -> None:
    job_input = {
        "model": model_server.chat_model,
        "messages": [{"role": "user", "content": "Is there a fee for breaking my lease?"}],
        "options": {"max_tokens": 32, "temperature": 0.0},
    }
    async with running_localpod(gpu_handler_config(localpod_config, model_server)) as pod, pod_client(pod) as client:
        job_id = (await client.post("/run", json={"input": job_input})).json()["id"]
        outputs: list[Any] = []
        async with asyncio.timeout(120):
            while True:
                answer = (await client.get(f"/stream/{job_id}?wait=5000")).json()
                outputs += [item["output"] for item in answer["stream"]]
                status = answer["status"]
                if status in TERMINAL and not answer["stream"]:
                    break
        assert status == "COMPLETED", (await client.get(f"/status/{job_id}")).json()
        result = ChatResult.model_validate(outputs[-1])
        assert "".join(StreamChunk.model_validate(chunk).text for chunk in outputs[:-1]) == result.text
        assert result.text.strip()
        final = (await client.get(f"/status/{job_id}")).json()
        assert final["output"] == outputs  # the aggregate stream, as /status shows it


async def test_the_openai_route_streams_a_real_smollm2_answer(
    localpod_config: Callable[..., LocalPodConfig], model_server: RunningModelServer
) -> None:
    async with running_localpod(gpu_handler_config(localpod_config, model_server)) as pod:
        llm = openai.AsyncOpenAI(base_url=f"{pod.endpoint_url}/openai/v1", api_key=pod.api_key, max_retries=0)
        messages: list[Any] = [{"role": "user", "content": "Say hello to a new tenant."}]
        stream = await llm.chat.completions.create(
            model=model_server.chat_model, messages=messages, stream=True, max_tokens=24, temperature=0.0
        )
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
        assert text.strip()
        models = await llm.models.list()
        assert model_server.chat_model in [m.id for m in models.data]
        await llm.close()
