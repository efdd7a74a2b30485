"""The endpoint's workers, their logs, and why a job is not running: a diagnosis with advice.

Why: from a job, a cold start, a capacity shortage and a worker image that crash-loops all look
the same (`IN_QUEUE`, no token). Telling them apart needs the workers themselves: the local
endpoint's admin API lists live workers and the recent exits that make a crash loop visible
between restarts; a real endpoint has RunPod's REST v2 `GET .../workers` (status, uptime,
release) and `GET .../workers/{id}/logs` (shared/reference/runpod.md §4.3). Both become one
`WorkerReport`, and `diagnose` says what is going on and what to do (wait, raise max
workers, roll back).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

import anyio
import httpx

from pete_mcp.core import AuthError, InputError, NotFound, PeteError, ProviderUnavailable
from pete_mcp.gateway import Core
from pete_mcp.runpod import EndpointHealth, RunPodClient, RunPodRest, rest_from_settings

from .runpod_ops import runpod_client

__all__ = [
    "CRASH_WINDOW_S",
    "Diagnosis",
    "DiagnosisKind",
    "LocalPodWorkers",
    "RunPodWorkers",
    "WorkerExitInfo",
    "WorkerInfo",
    "WorkerLogs",
    "WorkerReport",
    "WorkerSource",
    "diagnose",
    "read_report",
    "worker_source",
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


class LocalPodWorkers:
    """The local endpoint's `/_admin/workers` and `/_admin/workers/{id}/logs`."""

    name = "local"

    def __init__(self, http: httpx.AsyncClient, *, admin_url: str, api_key: str, timeout_s: float = 5.0) -> None:
        self._http = http
        self._url = admin_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._timeout = timeout_s

    def __repr__(self) -> str:
        return f"LocalPodWorkers({self._url!r})"

    async def report(self) -> WorkerReport:
        data = await self._get("/workers")
        health = data.get("health")
        return WorkerReport(
            source="local",
            workers=tuple(_local_worker(w) for w in data.get("workers") or []),
            exits=tuple(_local_exit(e) for e in data.get("recent_exits") or []),
            max_workers=data.get("max_workers"),
            health=EndpointHealth.model_validate(health) if isinstance(health, dict) else None,
        )

    async def logs(self, worker_id: str, lines: int = 100) -> WorkerLogs:
        data = await self._get(f"/workers/{worker_id}/logs", params={"lines": lines})
        return WorkerLogs(worker_id, [str(line) for line in data.get("lines") or []])

    async def _get(self, path: str, *, params: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = await self._http.get(
                self._url + path, headers=self._headers, params=params, timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(
                f"the local RunPod endpoint's admin API cannot be reached ({type(exc).__name__}).",
                provider="runpod",
                hint="Is `pete up` (or `pete localpod`) running?",
            ) from exc
        if response.status_code == 401:
            raise AuthError("the local endpoint refused LOCAL_API_KEY on its admin API (401).")
        if response.status_code == 404:
            raise NotFound(_detail(response) or f"the local endpoint has no {path}.")
        if response.status_code >= 400:
            raise InputError(_detail(response) or f"the local endpoint answered {response.status_code} on {path}.")
        data = response.json()
        return data if isinstance(data, dict) else {}


class RunPodWorkers:
    """A real endpoint: REST v2 workers and their logs, `/health` counts, and max workers."""

    name = "runpod"

    def __init__(self, rest: RunPodRest, client: RunPodClient | None, *, log_wait_s: float = 3.0) -> None:
        self.rest = rest
        self._client = client
        self._log_wait_s = log_wait_s

    async def report(self) -> WorkerReport:
        listing = await self.rest.workers()
        health: EndpointHealth | None = None
        max_workers: int | None = None
        if self._client is not None:
            try:
                health = await self._client.health()
            except PeteError:
                health = None
        try:
            max_workers = _max_workers(await self.rest.get_endpoint())
        except PeteError:
            max_workers = None
        return WorkerReport(
            source="runpod",
            workers=tuple(
                WorkerInfo(
                    id=w.id,
                    state=w.status.lower() or "unknown",
                    up_since=_started(w.started_at, w.uptime_seconds),
                    image=w.image,
                    stale=w.is_stale,
                    detail=f"release {w.version}" if w.version is not None else "",
                )
                for w in listing.workers
            ),
            max_workers=max_workers,
            health=health,
            note=(
                "RunPod lists active workers only, with no restart or job counts; "
                "a crash loop shows as workers that stay initializing or turn unhealthy."
            ),
        )

    async def logs(self, worker_id: str, lines: int = 100) -> WorkerLogs:
        events = await self.rest.worker_logs(worker_id, lines=lines, wait_s=self._log_wait_s)
        return WorkerLogs(
            worker_id,
            [f"{e.get('ts', '')} {e.get('source', '')} {e.get('line', '')}".strip() for e in events],
            note="" if events else f"RunPod sent no log lines for {worker_id} within {self._log_wait_s:g} s.",
        )


def worker_source(core: Core) -> WorkerSource | None:
    """The configured endpoint's workers: RunPod REST with credentials, else the local endpoint."""
    client = runpod_client(core)
    settings = core.settings
    if settings.uses_real_runpod:
        return RunPodWorkers(rest_from_settings(settings, core.http), client)
    if client is None:
        return None
    root = client.endpoint_url.rsplit("/v2/", 1)[0]
    return LocalPodWorkers(core.http, admin_url=f"{root}/_admin", api_key=settings.local_api_key.get_secret_value())


async def read_report(source: WorkerSource | None, *, timeout_s: float = 3.0) -> WorkerReport | None:
    """`source.report()` within `timeout_s`, or None when it is unavailable (a hint must not fail)."""
    if source is None:
        return None
    with anyio.move_on_after(timeout_s):
        try:
            return await source.report()
        except PeteError:
            return None
    return None


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


# --- reading the sources' shapes --------------------------------------------------------------
def _local_worker(w: dict[str, Any]) -> WorkerInfo:
    return WorkerInfo(
        id=str(w.get("id")),
        state=str(w.get("state") or w.get("phase") or "unknown"),
        model=w.get("model"),
        up_since=w.get("started_at"),
        jobs_done=w.get("jobs_done"),
        restarts=w.get("restarts"),
        detail=str(w.get("unhealthy_reason") or ""),
    )


def _local_exit(e: dict[str, Any]) -> WorkerExitInfo:
    return WorkerExitInfo(
        id=str(e.get("id")),
        exited_at=e.get("exited_at"),
        exit_code=e.get("exit_code"),
        reason=str(e.get("reason") or ""),
        before_ready=bool(e.get("before_ready")),
        intended=bool(e.get("intended")),
        restarts=int(e.get("restarts") or 0),
    )


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("error") or body.get("detail") or "") if isinstance(body, dict) else ""


def _max_workers(endpoint: dict[str, Any]) -> int | None:
    workers = endpoint.get("workers")
    value = workers.get("max") if isinstance(workers, dict) else endpoint.get("workersMax")
    return int(value) if isinstance(value, int | float) else None


def _started(started_at: str | None, uptime_s: float | None) -> float | None:
    if started_at:
        try:
            return datetime.fromisoformat(started_at.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return time.time() - uptime_s if uptime_s is not None else None
