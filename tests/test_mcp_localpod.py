"""The MCP tools over the whole local RunPod stack: local endpoint → real gpu_handler worker → llama.cpp.

A cold start from zero workers outlasts `run_prompt`'s budget; the tool hands back Pete's job id
with a cold-start hint, and `get_job` collects the real reply (with its RunPod job id). Both
protocol eras.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from pete_mcp.core.models import ModelRegistry, ModelSpec, Route
from pete_mcp.core.settings import Settings
from pete_mcp.gateway import build_core
from pete_mcp.routing.providers.runpod import RunPodProvider
from tests.support.mcp import ERAS, connect
from tests.support.runpod_stack import gpu_pod, runpod_client_for

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.mark.parametrize("era", ERAS)
async def test_a_cold_start_returns_a_runpod_job_that_get_job_completes(tmp_path: Path, model_server: Any, era: str):
    spec = ModelSpec("smollm2", (Route("runpod", model_server.chat_model),), 2048, "SmolLM2", "You are Jamie.")
    async with (
        gpu_pod(model_server.url, tmp_path / "pod", min_workers=0, max_workers=1, cold_start_s=2.0) as pod,
        httpx.AsyncClient(timeout=60) as http,
    ):
        provider = RunPodProvider(runpod_client_for(pod, http), use_openai_route=False)
        settings = Settings(data_dir=tmp_path / "data")  # pyright: ignore[reportCallIssue]
        core = build_core(
            settings, http=http, providers={"runpod": provider}, registry=ModelRegistry({"smollm2": spec}, "smollm2")
        )
        async with core, connect(core, era) as client:
            first = await client.call_tool(
                "run_prompt", {"prompt": "When is rent due?", "max_tokens": 8, "time_budget_s": 1}
            )
            pending = first.structured_content
            assert pending is not None and pending["status"] == "waiting", pending
            assert "cold start" in pending["hint"]  # no worker yet; (the router names the job with its first token)

            health = await client.call_tool("health", {"probe": False})
            checks = {c["name"]: c for c in (health.structured_content or {})["checks"]}
            assert checks["runpod_endpoint"]["status"] != "skip"  # the local endpoint is configured and asked
            assert checks["runpod_workers"]["status"] in ("ok", "warn") and "idle" in checks["runpod_workers"]["detail"]

            done: dict[str, Any] = pending
            with anyio.fail_after(240):
                while done["status"] in ("waiting", "generating"):
                    result = await client.call_tool("get_job", {"job_id": pending["job_id"], "wait_s": 40})
                    assert result.structured_content is not None
                    done = result.structured_content
    assert done["status"] == "completed" and done["text"].strip(), done
    assert done["provider"] == "runpod" and done["runpod_job_id"]
