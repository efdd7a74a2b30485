"""One RunPod job: its record, its states, and the job object the public API shows.

The record holds what §2.10 of the RunPod reference lists (input, state, times, worker,
output, error, streamed chunks with a consume-once cursor, retries, deadlines, webhook,
retention class); `status_body` renders the public job object from it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ._wakeup import Wakeup

__all__ = ["Job", "JobPolicy", "JobStatus"]


class JobStatus(StrEnum):
    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.TIMED_OUT})


@dataclass(frozen=True)
class JobPolicy:
    """A submission's `policy`, already validated and in seconds."""

    execution_timeout_s: float
    ttl_s: float
    low_priority: bool = False


@dataclass(eq=False)
class Job:
    """A job's whole life on the local endpoint. Times are the board's clock (monotonic seconds)."""

    id: str
    input: Any
    policy: JobPolicy
    sync: bool
    webhook: str | None
    submitted_at: float
    queued_at: float
    delete_at: float  # TTL while unfinished, retention once terminal
    ready_at: float = 0.0  # a stalled job is not handed out before this
    status: JobStatus = JobStatus.IN_QUEUE
    worker_id: str | None = None
    taken_at: float | None = None
    first_chunk_at: float | None = None  # when the worker's first stream post arrived
    finished_at: float | None = None
    output: Any = None
    has_output: bool = False
    error: str | None = None
    chunks: list[Any] = field(default_factory=list[Any])
    cursor: int = 0
    retries: int = 0
    deleted: bool = False
    changed: Wakeup = field(default_factory=Wakeup, repr=False)

    def status_body(self) -> dict[str, Any]:
        """The job object of `/status`, `/runsync` and webhooks (reference §1.4)."""
        body: dict[str, Any] = {"id": self.id, "status": self.status.value}
        if self.taken_at is not None:
            body["delayTime"] = _ms(self.taken_at - self.queued_at)
            if self.finished_at is not None:
                body["executionTime"] = _ms(self.finished_at - self.taken_at)
            body["workerId"] = self.worker_id
        if self.status is JobStatus.COMPLETED or self.has_output:
            body["output"] = self.output
        if self.error is not None:
            body["error"] = self.error
        if self.retries:
            body["retries"] = self.retries
        return body

    def short_body(self) -> dict[str, Any]:
        """`{"id", "status"}`: what `/run`, `/cancel`, `/retry` and an unfinished `/runsync` answer."""
        return {"id": self.id, "status": self.status.value}

    @property
    def settled(self) -> bool:
        """Finished or gone: nothing about this job will change any more."""
        return self.deleted or self.status.terminal

    async def wait_until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        """Wait at most `timeout_s` for `done()` to hold; True if it does."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await self.changed.wait(remaining)
        return True

    def delay_ms(self) -> int | None:
        return None if self.taken_at is None else _ms(self.taken_at - self.queued_at)


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))
