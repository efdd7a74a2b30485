"""The runpod SDK's worker loop without its 100 ms tick: a job the worker has taken starts at once.

Why: in runpod 1.12.0, `JobScaler.get_jobs` puts each taken job in an `asyncio.Queue`, and
`JobScaler.run_jobs` looks at that queue only every 100 ms (`asyncio.sleep(0.1)` when no job
runs, `asyncio.wait(tasks, timeout=0.1)` when some do). A job the worker already holds thus
waits 0–100 ms (≈ 50 ms on average) before the handler sees it: time added to every first
token, on RunPod as well as on the local endpoint (bench/runpod_ttfc.py shows it).

`PromptJobScaler.run_jobs` waits on the queue itself (one pending `get()` beside the running
jobs), so a job starts as soon as it is taken. Everything else is the SDK's own: job take and
stop long-polls, stream and result posts, the heartbeat process, fitness checks, concurrency,
the shutdown drain. `start(config)` swaps the scaler class in for `runpod.serverless.start`;
when the SDK no longer has the pieces it relies on, it logs why and runs the SDK unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import runpod
from runpod.serverless.modules import rp_scale

__all__ = ["PromptJobScaler", "start"]

logger = logging.getLogger("gpu_handler")

_RELIED_ON = ("run_jobs", "handle_job", "is_alive", "current_occupancy", "set_scale", "get_jobs")


class PromptJobScaler(rp_scale.JobScaler):
    """`JobScaler` whose `run_jobs` starts a taken job at once instead of on a 100 ms tick."""

    async def run_jobs(self, session: Any) -> None:
        tasks: set[asyncio.Task[Any]] = set()
        getter: asyncio.Task[Any] | None = None
        getter_queue: asyncio.Queue[Any] | None = None
        try:
            while self.is_alive() or not self.jobs_queue.empty() or (getter is not None and getter.done()):
                if getter is not None and getter_queue is not self.jobs_queue and not getter.done():
                    getter.cancel()  # `set_scale` swapped an empty queue for a resized one
                    getter = None
                if getter is None and len(tasks) < self.current_concurrency:
                    getter_queue = self.jobs_queue
                    getter = asyncio.ensure_future(getter_queue.get())
                waiting: set[asyncio.Future[Any]] = set(tasks)
                if getter is not None:
                    waiting.add(getter)
                # The timeout only lets the loop notice a shutdown, as the SDK's does.
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED, timeout=0.1)
                tasks.difference_update(done)
                if getter is not None and getter.done():
                    job = getter.result()
                    getter = None
                    task = asyncio.create_task(self.handle_job(session, job))
                    tasks.add(task)
                    self.jobs_tasks[job["id"]] = task
        finally:
            if getter is not None and not getter.done():
                getter.cancel()
        # As the SDK: let running jobs finish; a stopped job's CancelledError is expected.
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, asyncio.CancelledError):
                logger.error("job failed during shutdown drain: %s", result)


def prompt_loop_supported() -> bool:
    """Whether this runpod SDK still has what `PromptJobScaler` overrides and calls."""
    return all(hasattr(rp_scale.JobScaler, name) for name in _RELIED_ON)


def start(*, config: dict[str, Any], prompt: bool = True) -> None:
    """`runpod.serverless.start(config)`, with `PromptJobScaler` as the job loop when `prompt` and supported."""
    if not prompt:
        logger.info("using the runpod SDK's own job loop (WORKER_PROMPT_JOB_LOOP=false)")
    elif prompt_loop_supported():
        rp_scale.JobScaler = PromptJobScaler  # the worker module builds `rp_scale.JobScaler(config)`
    else:
        logger.warning("runpod %s: the prompt job loop does not fit; using the SDK's own", runpod.__version__)
    runpod.serverless.start(config)
