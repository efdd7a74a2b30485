"""Where worker facts come from: the local endpoint's admin API, or RunPod's REST API.

The local endpoint lists live workers and the recent exits that make a crash loop visible
between restarts (`/_admin/workers`, `/_admin/workers/{id}/logs`); a real endpoint has RunPod's
REST v2 `GET .../workers` (status, uptime, release) and `GET .../workers/{id}/logs`
(shared/reference/runpod.md §4.3), `/health` and the endpoint's max workers.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import anyio
import httpx

from pete_mcp.core import AuthError, InputError, NotFound, PeteError, ProviderUnavailable
from pete_mcp.gateway import Core
from pete_mcp.runpod import EndpointHealth, RunPodClient, RunPodRest, rest_from_settings

from .runpod_ops import runpod_client
from .workers import WorkerExitInfo, WorkerInfo, WorkerLogs, WorkerReport, WorkerSource

__all__ = ["LocalPodWorkers", "RunPodWorkers", "read_report", "worker_source"]


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
