"""The whole local RunPod stack for provider tests: the local endpoint running real `gpu_handler` workers.

`gpu_pod(model_server, tmp_path, **config)` starts a `LocalPod` whose workers are the
unmodified runpod-SDK loop around Pete's handler, talking to the real llama.cpp model server;
`runpod_client_for(pod, http)` is the gateway's client for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from pete_mcp.local.localpod import DEFAULT_WORKER_COMMAND, LocalPod, LocalPodConfig
from pete_mcp.runpod.client import RunPodClient

REPO_ROOT = Path(__file__).resolve().parents[2]


def gpu_pod_config(model_server_url: str, run_dir: Path, **overrides: Any) -> LocalPodConfig:
    """A quick local endpoint config whose workers run `gpu_handler` against `model_server_url`."""
    worker_env = {
        "WORKER_BACKEND": "openai",
        "WORKER_MODEL_URL": model_server_url,
        "WORKER_READY_TIMEOUT_S": "60",
        **overrides.pop("worker_env", {}),
    }
    base = LocalPodConfig(
        api_key="test-key",
        worker_command=DEFAULT_WORKER_COMMAND,
        worker_cwd=REPO_ROOT,
        worker_env=worker_env,
        run_dir=run_dir,
        min_workers=1,
        max_workers=1,
        ping_interval_ms=1000,
        take_hold_s=5.0,
        stop_hold_s=2.0,
        stop_grace_s=3.0,
        min_execution_timeout_ms=100,
        min_ttl_ms=100,
        webhook_retry_delay_s=0.0,
    )
    return replace(base, **overrides)


@asynccontextmanager
async def gpu_pod(model_server_url: str, run_dir: Path, **overrides: Any) -> AsyncIterator[LocalPod]:
    """A started local endpoint with `min_workers` gpu_handler workers ready."""
    config = gpu_pod_config(model_server_url, run_dir, **overrides)
    async with LocalPod(config) as pod:
        await pod.wait_for_workers(config.min_workers, timeout_s=90)
        yield pod


def runpod_client_for(pod: LocalPod, http: httpx.AsyncClient, **options: Any) -> RunPodClient:
    base_url = pod.endpoint_url.rsplit("/", 1)[0]
    return RunPodClient(http, base_url=base_url, endpoint_id=pod.endpoint_id, api_key=pod.api_key, **options)
