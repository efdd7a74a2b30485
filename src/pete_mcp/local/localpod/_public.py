"""The public queue API of one endpoint: `/v2/{endpoint_id}/run`, `runsync`, `status`, ...

Shapes follow `shared/reference/runpod.md` §1 exactly, because the gateway's client is
written against the same page: job objects per §1.4, `/runsync` answers `{"id","status"}`
when not done in time (§1.5), `/stream` is a consume-once long-poll (§1.6).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ._admission import admit_public
from ._http import Problem, read_json, wait_seconds
from ._job import Job, JobPolicy
from ._state import PodState

__all__ = ["PublicApi"]

_PREFIX = "/v2/{endpoint_id}"
_MAX_WAIT_MS = 300_000


class PublicApi:
    def __init__(self, state: PodState) -> None:
        self._state = state

    def routes(self) -> list[Route]:
        return [
            Route(f"{_PREFIX}/run", self.run, methods=["POST"]),
            Route(f"{_PREFIX}/runsync", self.runsync, methods=["POST"]),
            Route(f"{_PREFIX}/status/{{job_id}}", self.status, methods=["GET", "POST"]),
            Route(f"{_PREFIX}/status-sync/{{job_id}}", self.status_sync, methods=["GET", "POST"]),
            Route(f"{_PREFIX}/stream/{{job_id}}", self.stream, methods=["GET", "POST"]),
            Route(f"{_PREFIX}/cancel/{{job_id}}", self.cancel, methods=["POST"]),
            Route(f"{_PREFIX}/retry/{{job_id}}", self.retry, methods=["POST"]),
            Route(f"{_PREFIX}/purge-queue", self.purge_queue, methods=["POST"]),
            Route(f"{_PREFIX}/health", self.health, methods=["GET"]),
        ]

    async def run(self, request: Request) -> JSONResponse:
        admit_public(self._state, request, "run")
        job = await self._submit(request, sync=False, limit=self._state.config.run_body_limit)
        return JSONResponse(job.short_body())

    async def runsync(self, request: Request) -> JSONResponse:
        admit_public(self._state, request, "runsync")
        wait_s = wait_seconds(request, default_ms=self._state.config.runsync_wait_ms, low_ms=1000, high_ms=_MAX_WAIT_MS)
        job = await self._submit(request, sync=True, limit=self._state.config.runsync_body_limit)
        await job.wait_until(lambda: job.settled or self._state.closing, wait_s)
        if job.deleted:
            raise Problem(404, f"Job {job.id} expired (ttl).")
        return JSONResponse(job.status_body() if job.status.terminal else job.short_body())

    async def status(self, request: Request) -> JSONResponse:
        admit_public(self._state, request, "status")
        return JSONResponse(self._job(request).status_body())

    async def status_sync(self, request: Request) -> JSONResponse:
        admit_public(self._state, request, "status-sync")
        wait_s = wait_seconds(request, default_ms=self._state.config.runsync_wait_ms, low_ms=1000, high_ms=_MAX_WAIT_MS)
        job = self._job(request)
        await job.wait_until(lambda: job.settled or self._state.closing, wait_s)
        if job.deleted:
            raise Problem(404, f"Job {job.id} expired.")
        return JSONResponse(job.status_body())

    async def stream(self, request: Request) -> JSONResponse:
        admit_public(self._state, request, "stream")
        wait_s = wait_seconds(request, default_ms=self._state.config.stream_wait_ms, low_ms=0, high_ms=_MAX_WAIT_MS)
        job = self._job(request)
        await job.wait_until(lambda: len(job.chunks) > job.cursor or job.settled or self._state.closing, wait_s)
        if job.deleted:
            raise Problem(404, f"Job {job.id} expired.")
        body: dict[str, Any] = {"id": job.id, "status": job.status.value}
        delay_ms = job.delay_ms()
        if delay_ms is not None:
            body["delayTime"] = delay_ms
        body["stream"] = [{"output": chunk} for chunk in self._state.board.read_stream(job)]
        return JSONResponse(body)

    async def cancel(self, request: Request) -> JSONResponse:
        admit_public(self._state, request, "cancel")
        job = self._job(request)
        self._state.board.cancel(job)
        return JSONResponse(job.short_body())

    async def retry(self, request: Request) -> JSONResponse:
        admit_public(self._state, request, "retry")
        job = self._job(request)
        if not self._state.board.retry(job):
            raise Problem(400, f"Only FAILED or TIMED_OUT jobs can be retried; job {job.id} is {job.status.value}.")
        return JSONResponse(job.short_body())

    async def purge_queue(self, request: Request) -> JSONResponse:
        admit_public(self._state, request, "purge-queue")
        return JSONResponse({"removed": self._state.board.purge_queue(), "status": "completed"})

    async def health(self, request: Request) -> JSONResponse:
        admit_public(self._state, request, "health")
        return JSONResponse({"jobs": self._state.board.counts(), "workers": self._state.workers.counts()})

    # --- helpers

    def _job(self, request: Request) -> Job:
        job_id = request.path_params["job_id"]
        job = self._state.board.get(job_id)
        if job is None:
            raise Problem(404, f"Job {job_id} not found (unknown, expired, or past retention).")
        return job

    async def _submit(self, request: Request, *, sync: bool, limit: int) -> Job:
        data = await read_json(request, limit)
        if not isinstance(data, dict) or "input" not in data:
            raise Problem(400, 'The body must be a JSON object with an "input" field.')
        webhook = data.get("webhook")
        if webhook is not None and not (isinstance(webhook, str) and webhook.startswith(("http://", "https://"))):
            raise Problem(400, "webhook must be an http(s) URL.")
        policy = self._policy(data.get("policy"), request.query_params.get("ttl"))
        return self._state.board.submit(
            data["input"], policy=policy, sync=sync, webhook=webhook, stall_s=self._state.faults.job_stall_s()
        )

    def _policy(self, raw: Any, ttl_query: str | None) -> JobPolicy:
        config = self._state.config
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise Problem(400, "policy must be an object.")
        if ttl_query is not None:
            raw = {**raw, "ttl": _int_or_problem(ttl_query, "ttl")}
        timeout_ms = _bounded(
            raw.get("executionTimeout", config.execution_timeout_ms),
            "policy.executionTimeout",
            config.min_execution_timeout_ms,
            config.max_policy_ms,
        )
        ttl_ms = _bounded(raw.get("ttl", config.ttl_ms), "policy.ttl", config.min_ttl_ms, config.max_policy_ms)
        low_priority = raw.get("lowPriority", False)
        if not isinstance(low_priority, bool):
            raise Problem(400, "policy.lowPriority must be true or false.")
        return JobPolicy(execution_timeout_s=timeout_ms / 1000, ttl_s=ttl_ms / 1000, low_priority=low_priority)


def _int_or_problem(raw: str, name: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise Problem(400, f"{name} must be whole milliseconds.") from None


def _bounded(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Problem(400, f"{name} must be whole milliseconds.")
    if not low <= value <= high:
        raise Problem(400, f"{name} must be {low}-{high} ms, not {value}.")
    return value
