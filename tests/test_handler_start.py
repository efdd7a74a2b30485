"""The worker's start: wait for the model server (polling), preload, then serve; fail clearly otherwise."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
import pytest
from gpu_handler import JobHandler, WorkerConfig
from gpu_handler.backends import ChatEvent, ChatRequest, OpenAICompatibleBackend
from gpu_handler.errors import ModelServerUnavailable
from gpu_handler.readiness import prepare_backend, wait_until_ready

from pete_mcp.contract import ChatResult, ModelState
from pete_mcp.local.model_server import ModelServer, pick_free_port
from tests.support.require import require

pytestmark = pytest.mark.anyio


@dataclass
class CountingBackend:
    """Wraps a backend and signals once `ready()` has said no `misses` times."""

    inner: OpenAICompatibleBackend
    misses: int = 3
    name: str = "openai"
    failed_polls: int = 0
    polled_enough: anyio.Event = field(default_factory=anyio.Event)

    async def ready(self) -> bool:
        answer = await self.inner.ready()
        if not answer:
            self.failed_polls += 1
            if self.failed_polls >= self.misses:
                self.polled_enough.set()
        return answer

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        return self.inner.stream_chat(request)

    async def list_models(self) -> list[ModelState]:
        return await self.inner.list_models()

    async def warmup(self, model: str) -> float:
        return await self.inner.warmup(model)


@pytest.mark.slow
async def test_worker_waits_for_a_model_server_that_starts_later_then_serves(
    model_data_dir: Path,
) -> None:
    require(importlib.util.find_spec("llama_cpp"), "llama-cpp-python is not installed: run `uv sync --extra local`")
    server = ModelServer(data_dir=model_data_dir, port=pick_free_port())
    config = WorkerConfig(model_url=server.url, preload=("smollm2",), ready_timeout_s=60)
    loads: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=60) as http:
        backend = CountingBackend(OpenAICompatibleBackend(http, server.url))

        async def prepare() -> None:
            loads.update(await prepare_backend(backend, base_url=server.url, timeout_s=60, preload=config.preload))

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(prepare)
                with anyio.fail_after(10):
                    await backend.polled_enough.wait()
                assert not loads  # still waiting: nothing listens yet
                await server.astart()
            assert list(loads) == ["smollm2"]

            outputs = [
                o
                async for o in JobHandler(backend, config).handle(
                    {
                        "id": "late",
                        "input": {
                            "model": "smollm2",
                            "messages": [{"role": "user", "content": "Hi"}],
                            "options": {"max_tokens": 4},
                            "stream": False,
                        },
                    }
                )
            ]
            assert ChatResult.model_validate(outputs[0]).text
        finally:
            server.stop()


async def test_waiting_gives_up_with_a_message_naming_the_setting() -> None:
    url = f"http://127.0.0.1:{pick_free_port()}"
    async with httpx.AsyncClient() as http:
        with anyio.fail_after(5), pytest.raises(ModelServerUnavailable) as caught:
            await wait_until_ready(OpenAICompatibleBackend(http, url), base_url=url, timeout_s=0.3)
    assert url in str(caught.value) and "WORKER_READY_TIMEOUT_S" in str(caught.value)


def test_start_script_exits_1_when_the_model_server_never_comes_up() -> None:
    env = {
        **os.environ,
        "WORKER_MODEL_URL": f"http://127.0.0.1:{pick_free_port()}",
        "WORKER_READY_TIMEOUT_S": "0.3",
    }
    done = subprocess.run(
        [sys.executable, "-m", "gpu_handler"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "not ready after" in done.stderr and "WORKER_READY_TIMEOUT_S" in done.stderr
