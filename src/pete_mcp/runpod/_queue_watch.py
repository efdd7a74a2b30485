"""Watching a queued job on an endpoint that may have no workers at all."""

from __future__ import annotations

import logging
from typing import Protocol

import anyio

from pete_mcp.core import (
    ProviderError,
    ProviderUnavailable,
)

from ._chat import SeenStatus
from ._http import PROVIDER
from ._wire import (
    EndpointHealth,
    JobStatus,
)

__all__ = ["QueueWatch"]

logger = logging.getLogger("pete_mcp.runpod.client")


class _Watched(Protocol):
    """What the watch reads from the client (a protocol: the client imports this module)."""

    endpoint_id: str
    queue_check_s: float

    async def health(self) -> EndpointHealth: ...

    async def _cancel_quietly(self, job_id: str) -> None: ...


class QueueWatch:
    """Notices a job stuck IN_QUEUE on an endpoint with no workers and a queue that is not draining.

    RunPod reports that as nothing at all: the job just waits (until its TTL, 24 h by
    default). Every `queue_check_s` while the job is queued, `/health` is read; two readings
    in a row with no serving worker and no fewer jobs queued → cancel and raise.
    """

    def __init__(self, client: _Watched, job_id: str) -> None:
        self._client = client
        self._job_id = job_id
        self._next_check = anyio.current_time() + client.queue_check_s
        self._previous: EndpointHealth | None = None

    async def observe(self, status: JobStatus, seen: SeenStatus) -> None:
        if status is not JobStatus.IN_QUEUE:
            self._previous = None
            return
        now = anyio.current_time()
        if now < self._next_check:
            return
        self._next_check = now + self._client.queue_check_s
        try:
            health = await self._client.health()
        except ProviderError as exc:
            logger.info("health check while job %s is queued failed: %s", self._job_id, exc)
            return
        previous, self._previous = self._previous, (health if health.workers.serving == 0 else None)
        if previous is None or self._previous is None:
            return
        if health.jobs.in_queue >= previous.jobs.in_queue > 0:
            await self._client._cancel_quietly(self._job_id)
            seen.status = JobStatus.CANCELLED
            raise ProviderUnavailable(
                f"RunPod endpoint {self._client.endpoint_id} has no workers and its queue is not draining "
                f"({health.jobs.in_queue} jobs waiting); job {self._job_id} was cancelled.",
                provider=PROVIDER,
                hint="Check max workers, GPU availability (throttled workers) and the worker logs in the "
                "RunPod console.",
            )
