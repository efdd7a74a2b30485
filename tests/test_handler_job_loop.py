"""The worker's job loop (`gpu_handler.job_loop`): the SDK's `JobScaler`, starting taken jobs at once.

The SDK lets a local test hand its scaler a job fetcher and a job handler (no RUNPOD_WEBHOOK_GET_JOB
set), so the loop runs here on its own; the real path (job-take, stream posts) is covered by
tests/test_localpod_gpu_handler.py, and its speed by bench/runpod_ttfc.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from gpu_handler.job_loop import PromptJobScaler, prompt_loop_supported
from runpod.serverless.modules.worker_state import JobsProgress

from tests.support.polling import eventually

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def fresh_progress() -> Iterator[None]:
    JobsProgress().clear()  # the SDK's job tracker is a process-wide singleton
    yield
    JobsProgress().clear()


class Script:
    """Hands out `jobs` to the scaler and records what its handler ran, `concurrency` at a time."""

    def __init__(self, count: int, concurrency: int) -> None:
        self.jobs = [{"id": f"job-{n}", "input": {"n": n}} for n in range(count)]
        self.concurrency = concurrency
        self.started: list[str] = []
        self.running = 0
        self.most_running = 0
        self.release = asyncio.Event()
        self.cancelled: list[str] = []

    async def fetch(self, session: Any, wanted: int) -> list[dict[str, Any]] | None:
        if not self.jobs:
            await asyncio.sleep(0.01)  # an empty long-poll, shortened
            return None
        taken, self.jobs = self.jobs[:wanted], self.jobs[wanted:]
        return taken

    async def handle(self, session: Any, config: dict[str, Any], job: dict[str, Any]) -> None:
        self.started.append(job["id"])
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.append(job["id"])
            raise
        finally:
            self.running -= 1

    def scaler(self) -> PromptJobScaler:
        return PromptJobScaler(
            {
                "handler": lambda job: None,
                "concurrency_modifier": lambda current: self.concurrency,
                "jobs_fetcher": self.fetch,
                "jobs_handler": self.handle,
            }
        )


def test_the_installed_runpod_sdk_has_what_the_prompt_loop_overrides() -> None:
    assert prompt_loop_supported()


async def test_taken_jobs_run_at_most_concurrency_at_a_time_and_all_of_them_run() -> None:
    script = Script(count=5, concurrency=2)
    scaler = script.scaler()
    loops = asyncio.gather(scaler.get_jobs(None), scaler.run_jobs(None))  # pyright: ignore[reportArgumentType]
    await eventually(lambda: script.running == 2)
    assert script.started == ["job-0", "job-1"]
    script.release.set()
    await eventually(lambda: len(script.started) == 5 and script.running == 0)
    scaler.kill_worker()
    await asyncio.wait_for(loops, timeout=10)
    assert script.most_running == 2
    assert script.started == [f"job-{n}" for n in range(5)]


async def test_a_stop_signal_cancels_only_that_job() -> None:
    script = Script(count=2, concurrency=2)
    scaler = script.scaler()
    loops = asyncio.gather(scaler.get_jobs(None), scaler.run_jobs(None))  # pyright: ignore[reportArgumentType]
    await eventually(lambda: script.running == 2)
    assert await scaler.stop_job("job-0")
    await eventually(lambda: script.running == 1)
    assert script.cancelled == ["job-0"]
    script.release.set()
    await eventually(lambda: script.running == 0)
    scaler.kill_worker()
    await asyncio.wait_for(loops, timeout=10)
    assert set(scaler.jobs_tasks) == set()


async def test_shutdown_lets_running_jobs_finish() -> None:
    script = Script(count=1, concurrency=1)
    scaler = script.scaler()
    loops = asyncio.gather(scaler.get_jobs(None), scaler.run_jobs(None))  # pyright: ignore[reportArgumentType]
    await eventually(lambda: script.running == 1)
    scaler.kill_worker()
    await asyncio.sleep(0.3)  # longer than the loop's shutdown check
    assert not loops.done()  # still draining the running job
    script.release.set()
    await asyncio.wait_for(loops, timeout=10)
    assert script.cancelled == []
