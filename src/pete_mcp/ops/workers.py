"""The endpoint's workers, their logs, and why a job is not running: a diagnosis with advice.

Why: from a job, a cold start, a capacity shortage and a worker image that crash-loops all look
the same (`IN_QUEUE`, no token). Telling them apart needs the workers themselves, read by a
`WorkerSource` (`worker_sources.py`: the local endpoint's admin API, or RunPod's REST API) into
one `WorkerReport`; `diagnose` says what is going on and what to do (wait, raise max workers,
roll back).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal, Protocol

from pete_mcp.runpod import EndpointHealth

__all__ = [
    "CRASH_WINDOW_S",
    "Diagnosis",
    "DiagnosisKind",
    "WorkerExitInfo",
    "WorkerInfo",
    "WorkerLogs",
    "WorkerReport",
    "WorkerSource",
    "diagnose",
]

CRASH_WINDOW_S = 600.0  # start-up deaths this recent count towards a crash loop
CRASH_LOOP_DEATHS = 2  # this many workers dying before their first job is a loop, not bad luck

DiagnosisKind = Literal["crash_loop", "unhealthy", "capacity", "cold_start", "busy", "ok", "unknown"]


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One live worker. Fields the source cannot tell are None."""

    id: str
    state: str  # initializing | idle | running | unhealthy | throttled | stopping
    model: str | None = None  # the model its latest job used (local) — what it has loaded
    up_since: float | None = None  # Unix time
    jobs_done: int | None = None
    restarts: int | None = None  # workers that died in a row before this one started
    image: str | None = None
    stale: bool | None = None  # runs an older release than the endpoint's (RunPod)
    detail: str = ""


@dataclass(frozen=True, slots=True)
class WorkerExitInfo:
    """A worker that is gone (the local endpoint keeps the last twenty)."""

    id: str
    exited_at: float | None
    exit_code: int | None
    reason: str
    before_ready: bool
    intended: bool
    restarts: int = 0


@dataclass(frozen=True, slots=True)
class WorkerReport:
    source: Literal["local", "runpod"]
    workers: tuple[WorkerInfo, ...] = ()
    exits: tuple[WorkerExitInfo, ...] = ()
    max_workers: int | None = None
    health: EndpointHealth | None = None
    note: str = ""  # what this source cannot say

    def start_crashes(self, now: float, window_s: float = CRASH_WINDOW_S) -> list[WorkerExitInfo]:
        """Recent unintended deaths before a first job, newest first; none that a worker serving
        now has outlived (it started after them, so the loop is over)."""
        serving = [w.up_since or 0.0 for w in self.workers if w.state in ("idle", "running")]
        recovered_at = max(serving, default=0.0)
        return [
            e
            for e in self.exits
            if e.before_ready
            and not e.intended
            and (e.exited_at is None or (now - e.exited_at <= window_s and e.exited_at > recovered_at))
        ]


@dataclass(frozen=True, slots=True)
class WorkerLogs:
    worker_id: str
    lines: list[str] = field(default_factory=list[str])
    available: bool = True
    note: str = ""


@dataclass(frozen=True, slots=True)
class Diagnosis:
    kind: DiagnosisKind
    summary: str  # what is going on, in one sentence
    advice: str  # what to do about it
    worker_id: str | None = None  # the worker whose logs tell the story


class WorkerSource(Protocol):
    """Where worker facts come from: the local endpoint's admin API, or RunPod's REST API."""

    name: str

    async def report(self) -> WorkerReport: ...

    async def logs(self, worker_id: str, lines: int = 100) -> WorkerLogs: ...


def diagnose(
    report: WorkerReport | None, health: EndpointHealth | None = None, *, now: float | None = None
) -> Diagnosis:
    """Why queued work is not running, from the workers (and `/health`), with what to do."""
    now = time.time() if now is None else now
    health = health or (report.health if report else None)
    if report is not None:
        crashes = report.start_crashes(now)
        looping = [w for w in report.workers if w.state == "initializing" and (w.restarts or 0) >= CRASH_LOOP_DEATHS]
        if len(crashes) >= CRASH_LOOP_DEATHS or looping:
            last = crashes[0] if crashes else None
            count = max(len(crashes), max((w.restarts or 0 for w in looping), default=0))
            how = f" (last: {last.id} {last.reason})" if last else ""
            return Diagnosis(
                "crash_loop",
                f"Workers are crash-looping: {count} died during start before taking a job{how}.",
                "Waiting will not help. Read worker_logs for the crashed worker; if this began with a "
                "deploy, roll back (rollback), otherwise fix the image and deploy again.",
                worker_id=last.id if last else looping[0].id,
            )
        sick = [w for w in report.workers if w.state == "unhealthy"]
        if sick:
            return Diagnosis(
                "unhealthy",
                f"{len(sick)} worker(s) are unhealthy (failed health checks or heartbeats).",
                "Read worker_logs for them; if this began with a deploy, roll back (rollback).",
                worker_id=sick[0].id,
            )
    if health is not None and health.workers.unhealthy and not health.workers.idle + health.workers.running:
        return Diagnosis(
            "unhealthy",
            f"{health.workers.unhealthy} worker(s) are unhealthy and none serves.",
            "Call list_workers and read worker_logs; if this began with a deploy, roll back (rollback).",
        )
    if health is None:
        return Diagnosis("unknown", "The endpoint's workers cannot be read right now.", "Call endpoint_status.")
    w, queued = health.workers, health.jobs.in_queue
    max_workers = report.max_workers if report else None
    busy = w.running
    if queued and max_workers is not None and busy >= max_workers:
        return Diagnosis(
            "capacity",
            f"All {max_workers} worker(s) (the maximum) are busy and {queued} job(s) are queued: a capacity shortage.",
            "Raise the endpoint's max workers, or wait for running jobs to finish.",
        )
    if queued and w.throttled and not (w.idle + w.ready + w.running):
        return Diagnosis(
            "capacity",
            f"{w.throttled} worker(s) are throttled (no GPU of this type free) and {queued} job(s) are queued.",
            "Allow more GPU types on the endpoint, or wait.",
        )
    if w.idle + w.ready + w.running == 0:
        return Diagnosis(
            "cold_start",
            "RunPod is starting a worker (cold start, can take minutes).",
            "Wait: the job runs once the worker is up.",
        )
    if queued:
        return Diagnosis(
            "busy",
            f"The workers are busy ({queued} job(s) queued); the endpoint adds one when a job waits too long.",
            "Wait.",
        )
    return Diagnosis("ok", "The workers are up and the queue is empty.", "Nothing to do.")
