"""Fixtures for the local RunPod endpoint: configs, a running pod, clients, polling helpers.

Pods run real runpod-SDK worker processes from `tests/support/workers/` on loopback, with
short holds and heartbeats so tests stay quick. Workers drop marker files
(`<markers>/<job id>.started|cancelled|finished`) so a test can see inside them.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import pytest

from pete_mcp.local.localpod import LocalPod, LocalPodConfig, PodState, build_localpod_app
from pete_mcp.local.localpod._workers import Worker
from tests.support.require import require

REPO_ROOT = Path(__file__).resolve().parents[2]
_T = TypeVar("_T")


def worker_argv(module: str) -> tuple[str, ...]:
    """argv that runs `tests/support/workers/<module>.py` under the unmodified runpod SDK loop."""
    return (sys.executable, "-m", f"tests.support.workers.{module}")


@pytest.fixture
def marker_dir(tmp_path: Path) -> Path:
    path = tmp_path / "markers"
    path.mkdir()
    return path


@pytest.fixture
def localpod_config(tmp_path: Path, marker_dir: Path) -> Callable[..., LocalPodConfig]:
    """Build a quick test config; keyword arguments override any field."""

    def build(worker: str = "stream_echo", **overrides: Any) -> LocalPodConfig:
        worker_env = {"ECHO_MARKER_DIR": str(marker_dir), **overrides.pop("worker_env", {})}
        base = LocalPodConfig(
            api_key="test-key",
            worker_command=worker_argv(worker),
            worker_cwd=REPO_ROOT,
            worker_env=worker_env,
            run_dir=tmp_path / "localpod",
            min_workers=1,
            max_workers=1,
            ping_interval_ms=1000,
            take_hold_s=5.0,
            stop_hold_s=5.0,
            stop_grace_s=3.0,
            min_execution_timeout_ms=100,
            min_ttl_ms=100,
            webhook_retry_delay_s=0.0,
        )
        return replace(base, **overrides)

    return build


@asynccontextmanager
async def running_localpod(config: LocalPodConfig, *, ready: int | None = None) -> AsyncIterator[LocalPod]:
    """A started pod; waits for `ready` workers (default: min_workers) before yielding."""
    async with LocalPod(config) as pod:
        await pod.wait_for_workers(config.min_workers if ready is None else ready, timeout_s=60)
        yield pod


@asynccontextmanager
async def pod_client(pod: LocalPod, *, key: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the pod's endpoint URL with its key as a bearer token."""
    headers = {"Authorization": f"Bearer {pod.api_key if key is None else key}"}
    async with httpx.AsyncClient(base_url=pod.endpoint_url, headers=headers, timeout=30) as client:
        yield client


async def poll_until(
    probe: Callable[[], Awaitable[_T]], done: Callable[[_T], bool], *, timeout_s: float = 20, every_s: float = 0.05
) -> _T:
    """Call `probe` until `done(result)`; the last result. Raises TimeoutError with it."""
    result = await probe()
    async with asyncio.timeout(timeout_s):
        while not done(result):
            await asyncio.sleep(every_s)
            result = await probe()
    return result


async def wait_for_file(path: Path, timeout_s: float = 20) -> str:
    async def read() -> str | None:
        apath = anyio.Path(path)
        return await apath.read_text() if await apath.exists() else None

    text = await poll_until(read, lambda t: t is not None, timeout_s=timeout_s)
    assert text is not None
    return text


class ScriptedWorker:
    """The test plays a worker over the real worker-side routes (no process, no SDK)."""

    def __init__(self, http: httpx.AsyncClient, endpoint_id: str, worker: Worker) -> None:
        self.worker = worker
        self._http = http
        self._base = f"/v2/{endpoint_id}"
        self._auth = {"Authorization": worker.secret}

    @property
    def id(self) -> str:
        return self.worker.id

    async def take(self, *, batch_size: int = 1) -> Any:
        """A job dict (or list, for batches), or None on 204."""
        if batch_size > 1:
            url = f"{self._base}/job-take-batch/{self.id}?gpu=LOCAL&batch_size={batch_size}&job_in_progress=0"
        else:
            url = f"{self._base}/job-take/{self.id}?gpu=LOCAL&job_in_progress=0"
        response = await self._http.get(url, headers=self._auth)
        if response.status_code == 204:
            return None
        response.raise_for_status()
        return response.json()

    async def post(self, kind: str, job_id: str, body: dict[str, Any], *, is_stream: bool = False) -> httpx.Response:
        url = f"{self._base}/{kind}/{self.id}/{job_id}?gpu=LOCAL&isStream={'true' if is_stream else 'false'}"
        headers = {**self._auth, "Content-Type": "application/x-www-form-urlencoded"}
        return await self._http.post(url, content=json.dumps(body), headers=headers)

    async def stream(self, job_id: str, chunk: Any) -> None:
        (await self.post("job-stream", job_id, {"output": chunk})).raise_for_status()

    async def done(self, job_id: str, body: dict[str, Any], *, is_stream: bool = False) -> None:
        (await self.post("job-done", job_id, body, is_stream=is_stream)).raise_for_status()

    async def stop_signals(self) -> list[str]:
        response = await self._http.get(f"{self._base}/job-stop/{self.id}?gpu=LOCAL", headers=self._auth)
        return [] if response.status_code == 204 else response.json()["jobsToStop"]


@dataclass
class InProcessPod:
    """The endpoint app driven through `httpx.ASGITransport`: fast, no processes, no sockets."""

    state: PodState
    client: httpx.AsyncClient  # authorised for the public API, based at /v2/<endpoint>
    raw: httpx.AsyncClient  # no auth, based at the server root
    worker: ScriptedWorker

    def add_worker(self) -> ScriptedWorker:
        return ScriptedWorker(self.raw, self.state.config.endpoint_id, self.state.workers.create())


@asynccontextmanager
async def inprocess_pod(
    config: LocalPodConfig, *, webhook_transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[InProcessPod]:
    """A pod's app and state without supervisor processes, plus one scripted worker."""
    assert config.run_dir is not None
    webhooks = httpx.AsyncClient(transport=webhook_transport or httpx.MockTransport(lambda _: httpx.Response(200)))
    state = PodState.create(config, http=webhooks, run_dir=config.run_dir)
    transport = httpx.ASGITransport(app=build_localpod_app(state))
    base = "http://localpod.test"
    headers = {"Authorization": f"Bearer {config.api_key}"}
    async with (
        webhooks,
        httpx.AsyncClient(transport=transport, base_url=f"{base}/v2/{config.endpoint_id}", headers=headers) as client,
        httpx.AsyncClient(transport=transport, base_url=base) as raw,
    ):
        worker = ScriptedWorker(raw, config.endpoint_id, state.workers.create())
        try:
            yield InProcessPod(state=state, client=client, raw=raw, worker=worker)
        finally:
            state.begin_closing()
            await state.webhooks.aclose()


@pytest.fixture
def runpod_sdk() -> None:
    """Skip (fail in CI) unless the runpod SDK (the `worker` extra) is installed: the test workers run it."""
    require(
        importlib.util.find_spec("runpod"),
        "the runpod SDK is not installed: run `uv sync --all-extras` for the local endpoint's worker tests",
    )


def live_group_members(pgid: int) -> list[int]:
    """Pids of the processes in group `pgid` that are still alive (zombies do not count)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # state, ppid, pgrp, ...
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def process_alive(pid: int) -> bool:
    """Whether `pid` is a running (not zombie) process."""
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
