"""Worker records: who may call the worker-side routes, what each worker is doing.

A worker is known from the moment the supervisor decides to start it (INITIALIZING, which
includes the simulated cold start) until its process is gone. Its first job-take makes it
READY; retiring it makes it STOPPING. The registry authenticates worker calls with the
per-worker secret and renders the `workers` part of `/health` from these records and the
job board, so the counts always match what is running.
"""

from __future__ import annotations

import hmac
import itertools
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from ._board import JobBoard
from ._wakeup import Wakeup

__all__ = ["Worker", "WorkerExit", "WorkerPhase", "WorkerRegistry"]

_WORKER_STATES = ("idle", "initializing", "ready", "running", "throttled", "unhealthy")


class WorkerPhase(StrEnum):
    INITIALIZING = "initializing"
    READY = "ready"
    STOPPING = "stopping"
    GONE = "gone"


@dataclass(eq=False)
class Worker:
    """One worker (normally a process running the runpod SDK loop)."""

    id: str
    secret: str = field(repr=False)
    created_at: float
    phase: WorkerPhase = WorkerPhase.INITIALIZING
    pid: int | None = None
    log_path: Path | None = None
    initialized_at: float | None = None
    last_ping_at: float | None = None
    ping_job_ids: tuple[str, ...] = ()
    open_takes: int = 0
    idle_since: float | None = None
    unhealthy_reason: str | None = None
    exit_code: int | None = None
    exit_reason: str | None = None  # why we stopped or killed it, for the jobs it leaves behind
    restarts: int = 0  # workers that died in a row before asking for a job, when this one started
    jobs_done: int = 0  # jobs it reported finished (completed or failed)
    last_model: str | None = None  # the model its latest job asked for: what it has loaded
    crashes_on_start: bool = False  # fault injection: its process is a crashing image
    stop_requests: list[str] = field(default_factory=list[str])
    http_port: int | None = None  # load balancer: the worker's own HTTP server
    inflight: int = 0  # load balancer: requests being proxied to it now
    stop_wakeup: Wakeup = field(default_factory=Wakeup, repr=False)

    @property
    def live(self) -> bool:
        return self.phase in (WorkerPhase.INITIALIZING, WorkerPhase.READY)

    @property
    def accepting(self) -> bool:
        """May this worker be handed jobs right now?"""
        return self.phase in (WorkerPhase.INITIALIZING, WorkerPhase.READY)


@dataclass(frozen=True)
class WorkerExit:
    """A worker that is gone: kept a while so a crash loop stays visible between restarts."""

    id: str
    started_at: float
    exited_at: float
    exit_code: int | None
    reason: str
    before_ready: bool  # it died before ever asking for a job (a start-up crash)
    intended: bool  # we stopped it (idle timeout, stopPod, shutdown)
    restarts: int
    jobs_done: int
    last_model: str | None
    log_path: Path | None


class WorkerRegistry:
    """All current workers by id; new ids are `w1-ab12cd`, `w2-…`."""

    def __init__(self, board: JobBoard) -> None:
        self._board = board
        self._workers: dict[str, Worker] = {}
        self._numbers = itertools.count(1)
        self.changed = Wakeup()  # a worker was added, became ready, or went away
        self.lb_waiting = 0  # load balancer: requests waiting for a ready worker

    def create(self) -> Worker:
        """A new INITIALIZING worker record; the supervisor starts its process (tests may not)."""
        worker_id = f"w{next(self._numbers)}-{secrets.token_hex(3)}"
        worker = Worker(id=worker_id, secret=secrets.token_urlsafe(24), created_at=self._board.now())
        self._workers[worker_id] = worker
        self.changed.notify()
        return worker

    def remove(self, worker: Worker) -> None:
        worker.phase = WorkerPhase.GONE
        worker.stop_wakeup.notify()
        self._workers.pop(worker.id, None)
        self.changed.notify()

    def get(self, worker_id: str) -> Worker | None:
        return self._workers.get(worker_id)

    def all(self) -> tuple[Worker, ...]:
        return tuple(self._workers.values())

    def live(self) -> list[Worker]:
        return [w for w in self._workers.values() if w.live]

    def authenticate(self, worker_id: str, authorization: str | None) -> Worker | None:
        """The worker if `authorization` is its raw secret (the SDK sends no `Bearer`)."""
        worker = self._workers.get(worker_id)
        if worker is None or authorization is None:
            return None
        if not hmac.compare_digest(authorization.encode(), worker.secret.encode()):
            return None
        return worker

    def mark_polling(self, worker: Worker) -> None:
        """A job-take arrived: the worker finished initializing."""
        if worker.phase is WorkerPhase.INITIALIZING:
            worker.phase = WorkerPhase.READY
            worker.initialized_at = self._board.now()
            worker.idle_since = worker.initialized_at
            self.changed.notify()

    def request_stop(self, worker_id: str, job_id: str) -> None:
        """Queue `job_id` for the worker's job-stop long-poll and wake it."""
        worker = self._workers.get(worker_id)
        if worker is None or not worker.live:
            return
        if job_id not in worker.stop_requests:
            worker.stop_requests.append(job_id)
        worker.stop_wakeup.notify()

    def busy_ids(self) -> set[str | None]:
        """Workers running a job (queue) or serving a request (load balancer)."""
        busy: set[str | None] = {job.worker_id for job in self._board.running()}
        busy.update(w.id for w in self._workers.values() if w.inflight > 0)
        return busy

    def counts(self) -> dict[str, int]:
        """The `workers` part of `/health`."""
        counts: dict[str, int] = dict.fromkeys(_WORKER_STATES, 0)
        busy = self.busy_ids()
        for worker in self._workers.values():
            if worker.phase is WorkerPhase.INITIALIZING:
                counts["initializing"] += 1
            elif worker.phase is WorkerPhase.READY:
                counts["running" if worker.id in busy else "idle"] += 1
                if worker.open_takes > 0:
                    counts["ready"] += 1
            if worker.live and worker.unhealthy_reason is not None:
                counts["unhealthy"] += 1
        return counts
