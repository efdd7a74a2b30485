"""The endpoint's job table and queue: every state change of every job happens here.

Keeping all transitions in one place keeps the `/health` counters, the queue, the running
set and the deadlines (execution timeout, TTL, retention) consistent with each other. The
board does no I/O; it tells the outside world through two callbacks: `on_stop(worker_id,
job_id)` when a running job must be stopped on its worker (cancel, timeout, TTL) and
`on_finished(job)` when a job reaches a terminal state (webhooks).
"""

from __future__ import annotations

import heapq
import itertools
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from ._config import LocalPodConfig
from ._job import Job, JobPolicy, JobStatus
from ._wakeup import Wakeup

__all__ = ["JobBoard"]

_UNSET: Any = object()


class JobBoard:
    """Jobs by id, the FIFO queue, the running set and the cumulative counters."""

    def __init__(
        self,
        config: LocalPodConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_stop: Callable[[str, str], None] | None = None,
        on_finished: Callable[[Job], None] | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._jobs: dict[str, Job] = {}
        self._queue: deque[Job] = deque()
        self._running: dict[str, Job] = {}
        self._deadlines: list[tuple[float, int, Job]] = []
        self._sequence = itertools.count()
        self.on_stop: Callable[[str, str], None] = on_stop or (lambda _worker, _job: None)
        self.on_finished: Callable[[Job], None] = on_finished or (lambda _job: None)
        self.queue_changed = Wakeup()
        self.completed = 0
        self.failed = 0
        self.retried = 0

    def now(self) -> float:
        return self._clock()

    # --- submission and lookup

    def submit(
        self, job_input: Any, *, policy: JobPolicy, sync: bool, webhook: str | None = None, stall_s: float = 0.0
    ) -> Job:
        now = self._clock()
        job_id = f"sync-{uuid.uuid4()}-u1" if sync else f"{uuid.uuid4()}-u1"
        job = Job(
            id=job_id,
            input=job_input,
            policy=policy,
            sync=sync,
            webhook=webhook,
            submitted_at=now,
            queued_at=now,
            delete_at=now + policy.ttl_s,
            ready_at=now + stall_s,
        )
        self._jobs[job_id] = job
        self._queue.append(job)
        self._schedule_delete(job)
        self.queue_changed.notify()
        return job

    def get(self, job_id: str) -> Job | None:
        """The job, or None when unknown, expired (TTL) or past retention."""
        job = self._jobs.get(job_id)
        if job is not None and job.delete_at <= self._clock():
            self._delete(job)
            return None
        return job

    def queued(self) -> tuple[Job, ...]:
        return tuple(self._queue)

    def running(self) -> tuple[Job, ...]:
        return tuple(self._running.values())

    def running_on(self, worker_id: str) -> list[Job]:
        return [job for job in self._running.values() if job.worker_id == worker_id]

    def next_ready_at(self) -> float | None:
        """When the earliest stalled queued job becomes available, if any is stalled."""
        now = self._clock()
        stalled = [job.ready_at for job in self._queue if job.ready_at > now]
        return min(stalled, default=None)

    def counts(self) -> dict[str, int]:
        """The `jobs` part of `/health`."""
        return {
            "completed": self.completed,
            "failed": self.failed,
            "inProgress": len(self._running),
            "inQueue": len(self._queue),
            "retried": self.retried,
        }

    # --- the worker side

    def take(self, worker_id: str, limit: int) -> list[Job]:
        """Hand up to `limit` available queued jobs to a worker, oldest first."""
        now = self._clock()
        taken: list[Job] = []
        for job in list(self._queue):
            if len(taken) >= limit:
                break
            if job.ready_at > now:
                continue
            self._queue.remove(job)
            job.status = JobStatus.IN_PROGRESS
            job.worker_id = worker_id
            job.taken_at = now
            self._running[job.id] = job
            job.changed.notify()
            taken.append(job)
        return taken

    def record_progress(self, job: Job, output: Any) -> None:
        job.output = output
        job.has_output = True
        job.changed.notify()

    def add_chunk(self, job: Job, chunk: Any) -> None:
        if job.first_chunk_at is None:
            job.first_chunk_at = self._clock()
        job.chunks.append(chunk)
        job.changed.notify()

    def finish_reported(
        self, job: Job, status: JobStatus, *, output: Any, has_output: bool = True, error: str | None = None
    ) -> None:
        """The worker reported the job's end (job-done): COMPLETED or FAILED."""
        self._finish(job, status, output=output if has_output else _UNSET, error=error, stop_worker=False)

    def worker_lost(self, worker_id: str, reason: str) -> None:
        """A worker died: requeue each of its running jobs once (`max_requeues`), then fail them."""
        for job in self.running_on(worker_id):
            if job.retries < self._config.max_requeues:
                self._reset(job)
                self._queue.appendleft(job)
                self.queue_changed.notify()
            else:
                message = (
                    f"Worker {worker_id} {reason} while running the job, "
                    f"after {job.retries} retr{'y' if job.retries == 1 else 'ies'}."
                )
                self._finish(job, JobStatus.FAILED, error=message, stop_worker=False)

    # --- the public side

    def read_stream(self, job: Job) -> list[Any]:
        """Chunks not returned before (the consume-once cursor of `/stream`)."""
        new = job.chunks[job.cursor :]
        job.cursor = len(job.chunks)
        return new

    def cancel(self, job: Job) -> None:
        """Cancel a queued or running job; a finished job keeps its status."""
        self._finish(job, JobStatus.CANCELLED, stop_worker=True)

    def retry(self, job: Job) -> bool:
        """Requeue a FAILED or TIMED_OUT job under the same id; False for any other status."""
        if job.status not in (JobStatus.FAILED, JobStatus.TIMED_OUT):
            return False
        self._reset(job)
        job.delete_at = self._clock() + job.policy.ttl_s
        self._schedule_delete(job)
        self._queue.append(job)
        self.queue_changed.notify()
        return True

    def purge_queue(self) -> int:
        """Cancel every queued job (running ones are untouched); returns how many."""
        queued = list(self._queue)
        for job in queued:
            self._finish(job, JobStatus.CANCELLED, stop_worker=False)
        return len(queued)

    # --- deadlines

    def sweep(self) -> None:
        """Apply execution timeouts, TTLs and retention that are due."""
        now = self._clock()
        for job in list(self._running.values()):
            assert job.taken_at is not None
            limit_s = job.policy.execution_timeout_s
            if now - job.taken_at >= limit_s:
                status = JobStatus(self._config.execution_timeout_status)
                message = f"Execution timeout of {round(limit_s * 1000)} ms exceeded."
                self._finish(job, status, error=message, stop_worker=True)
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, _, job = heapq.heappop(self._deadlines)
            if job.delete_at == deadline and not job.deleted:
                self._delete(job)

    # --- internals

    def _finish(
        self, job: Job, status: JobStatus, *, output: Any = _UNSET, error: str | None = None, stop_worker: bool
    ) -> None:
        if job.status.terminal or job.deleted:
            return
        now = self._clock()
        was_running = job.status is JobStatus.IN_PROGRESS
        if job.status is JobStatus.IN_QUEUE:
            self._queue.remove(job)
        self._running.pop(job.id, None)
        job.status = status
        job.finished_at = now
        if output is not _UNSET:
            job.output = output
            job.has_output = True
        job.error = error
        retention_s = self._config.sync_retention_s if job.sync else self._config.async_retention_s
        job.delete_at = now + retention_s
        self._schedule_delete(job)
        if status is JobStatus.COMPLETED:
            self.completed += 1
        elif status in (JobStatus.FAILED, JobStatus.TIMED_OUT):
            self.failed += 1
        job.changed.notify()
        if stop_worker and was_running and job.worker_id is not None:
            self.on_stop(job.worker_id, job.id)
        self.on_finished(job)

    def _reset(self, job: Job) -> None:
        """Back to IN_QUEUE with the original input; output, error and chunks cleared."""
        self._running.pop(job.id, None)
        job.status = JobStatus.IN_QUEUE
        job.worker_id = None
        job.taken_at = None
        job.finished_at = None
        job.output = None
        job.has_output = False
        job.error = None
        job.chunks = []
        job.cursor = 0
        job.ready_at = 0.0
        job.queued_at = self._clock()
        job.retries += 1
        self.retried += 1
        job.changed.notify()

    def _delete(self, job: Job) -> None:
        if job.deleted:
            return
        if job.status is JobStatus.IN_QUEUE:
            self._queue.remove(job)
        elif job.status is JobStatus.IN_PROGRESS:
            self._running.pop(job.id, None)
            if job.worker_id is not None:
                self.on_stop(job.worker_id, job.id)
        self._jobs.pop(job.id, None)
        job.deleted = True
        job.changed.notify()

    def _schedule_delete(self, job: Job) -> None:
        heapq.heappush(self._deadlines, (job.delete_at, next(self._sequence), job))
