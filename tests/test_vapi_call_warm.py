"""A call that starts warms the RunPod endpoint for its coming turns, only when no worker is idle.

Real processes: the VAPI face over a core whose model runs on the local RunPod endpoint with
`gpu_handler` workers (llama.cpp with SmolLM2), scaled to zero at first.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest

from pete_mcp.routing.providers.runpod import RunPodProvider
from tests.support.model_server import RunningModelServer
from tests.support.runpod_stack import gpu_pod, runpod_client_for
from tests.support.vapi_stack import eventually, vapi_stack

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def in_progress(call_id: str) -> dict[str, object]:
    return {"message": {"type": "status-update", "status": "in-progress", "call": {"id": call_id}}}


async def test_a_call_starting_on_a_scaled_to_zero_endpoint_warms_it_and_an_idle_one_is_left_alone(
    model_server: RunningModelServer, tmp_path: Path
) -> None:
    async with (
        gpu_pod(model_server.url, tmp_path / "pod", min_workers=0, idle_timeout_s=300) as pod,
        httpx.AsyncClient() as http,
    ):
        provider = RunPodProvider(runpod_client_for(pod, http), use_openai_route=False)
        async with vapi_stack(tmp_path / "pete", {"runpod": provider}, model="smollm2") as stack:
            assert pod.health()["workers"]["idle"] == 0
            assert (await stack.webhook(in_progress("call-1"))).status_code == 200
            await eventually(lambda: provider.warms_sent == 1)
            with anyio.fail_after(120):
                await pod.wait_for_workers(1, timeout_s=120)  # the warm-up job brought a worker up
            await eventually(lambda: not stack.face.webhook.warmer._running, timeout_s=120)
            await eventually(lambda: provider.state.readiness() == "warm", timeout_s=30)

            # The next call finds that worker idle: nothing is sent (and nothing billed).
            assert (await stack.webhook(in_progress("call-2"))).status_code == 200
            await eventually(lambda: stack.face.webhook.warmer.started == 2)
            await eventually(lambda: not stack.face.webhook.warmer._running)
            assert provider.warms_sent == 1 and stack.face.webhook.warmer.endpoint_warms == 1
