"""Admin routes for fault injection from another process (benchmarks, external tests).

`GET/POST/DELETE /_admin/faults` read, add to and clear the fault plan; `POST
/_admin/kill-worker` kills the worker running a job (or a worker by id); `GET /_admin/workers`
lists workers (and the recent exits that make a crash loop visible between restarts);
`GET /_admin/workers/{id}/logs?lines=N` is the tail of one worker's log, live or recently
gone. All take the endpoint's API key, like the public routes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._errors import InvalidRequest, NotRunning
from ._http import Problem, api_key_matches, read_json
from ._state import PodState
from ._workers import Worker, WorkerExit

__all__ = ["AdminApi", "FaultPlan"]

_Model = TypeVar("_Model", bound=BaseModel)
_MAX_LOG_LINES = 500
_LOG_TAIL_BYTES = 256 * 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RouteErrorPlan(_Strict):
    route: str
    status: int = 429
    count: int | None = None
    share: float | None = None


class StallPlan(_Strict):
    extra_ms: int = Field(ge=0)
    count: int | None = None
    share: float | None = None


class CrashPlan(_Strict):
    count: int | None = None
    share: float | None = None


class FaultPlan(_Strict):
    """The body of `POST /_admin/faults`; every part is optional and adds to what is armed."""

    route_errors: list[RouteErrorPlan] = []
    stream_delay_ms: int | None = Field(default=None, ge=0)
    cold_start_stall: StallPlan | None = None
    job_stall: StallPlan | None = None
    crash_on_start: CrashPlan | None = None


class KillPlan(_Strict):
    job_id: str | None = None
    worker_id: str | None = None


class AdminApi:
    def __init__(self, state: PodState) -> None:
        self._state = state

    def routes(self) -> list[Route]:
        return [
            Route("/_admin/faults", self.faults, methods=["GET", "POST", "DELETE"]),
            Route("/_admin/kill-worker", self.kill_worker, methods=["POST"]),
            Route("/_admin/workers", self.workers, methods=["GET"]),
            Route("/_admin/workers/{worker_id}/logs", self.worker_logs, methods=["GET"]),
        ]

    async def faults(self, request: Request) -> Response:
        self._admit(request)
        faults = self._state.faults
        if request.method == "DELETE":
            faults.clear()
        elif request.method == "POST":
            plan = _parse(FaultPlan, await read_json(request, 1024 * 1024))
            try:
                for rule in plan.route_errors:
                    faults.fail_route(rule.route, rule.status, count=rule.count, share=rule.share)
                if plan.stream_delay_ms is not None:
                    faults.slow_stream(plan.stream_delay_ms / 1000)
                if plan.cold_start_stall is not None:
                    stall = plan.cold_start_stall
                    faults.stall_cold_start(stall.extra_ms / 1000, share=stall.share, count=stall.count)
                if plan.job_stall is not None:
                    stall = plan.job_stall
                    faults.stall_jobs(stall.extra_ms / 1000, share=stall.share, count=stall.count)
                if plan.crash_on_start is not None:
                    faults.crash_on_start(share=plan.crash_on_start.share, count=plan.crash_on_start.count)
            except InvalidRequest as exc:
                raise Problem(400, str(exc)) from None
        return JSONResponse(faults.snapshot())

    async def kill_worker(self, request: Request) -> Response:
        self._admit(request)
        plan = _parse(KillPlan, await read_json(request, 64 * 1024))
        if (plan.job_id is None) == (plan.worker_id is None):
            raise Problem(400, "Give exactly one of job_id or worker_id.")
        try:
            worker = self._state.supervisor.kill_worker(job_id=plan.job_id, worker_id=plan.worker_id)
        except NotRunning as exc:
            raise Problem(404, str(exc)) from None
        return JSONResponse({"killed": worker.id})

    async def workers(self, request: Request) -> Response:
        self._admit(request)
        state = self._state
        supervisor = state.supervisor
        return JSONResponse(
            {
                "workers": [self._live_worker(worker) for worker in state.workers.all()],
                "recent_exits": [self._exit(gone) for gone in reversed(supervisor.exits)],
                "min_workers": state.config.min_workers,
                "max_workers": state.config.max_workers,
                "early_deaths": supervisor.early_deaths,
                "health": {"jobs": state.board.counts(), "workers": state.workers.counts()},
            }
        )

    async def worker_logs(self, request: Request) -> Response:
        self._admit(request)
        worker_id = request.path_params["worker_id"]
        try:
            lines = int(request.query_params.get("lines", "100"))
        except ValueError:
            raise Problem(400, "lines must be a whole number.") from None
        if not 1 <= lines <= _MAX_LOG_LINES:
            raise Problem(400, f"lines must be 1-{_MAX_LOG_LINES}.")
        worker = self._state.workers.get(worker_id)
        gone = next((e for e in self._state.supervisor.exits if e.id == worker_id), None)
        if worker is None and gone is None:
            raise Problem(404, f"No worker {worker_id!r} (live or recently gone).")
        path = worker.log_path if worker is not None else gone.log_path if gone is not None else None
        return JSONResponse({"worker_id": worker_id, "live": worker is not None, "lines": _tail(path, lines)})

    def _live_worker(self, worker: Worker) -> dict[str, Any]:
        state = self._state
        counts_as = "initializing"
        if worker.unhealthy_reason is not None:
            counts_as = "unhealthy"
        elif worker.phase.value == "ready":
            counts_as = "running" if state.board.running_on(worker.id) else "idle"
        elif worker.phase.value == "stopping":
            counts_as = "stopping"
        return {
            "id": worker.id,
            "phase": worker.phase.value,
            "state": counts_as,
            "pid": worker.pid,
            "started_at": self._wall(worker.created_at),
            "ready_at": self._wall(worker.initialized_at),
            "running": [job.id for job in state.board.running_on(worker.id)],
            "jobs_done": worker.jobs_done,
            "restarts": worker.restarts,
            "model": worker.last_model,
            "unhealthy_reason": worker.unhealthy_reason,
            "log": str(worker.log_path) if worker.log_path else None,
        }

    def _exit(self, gone: WorkerExit) -> dict[str, Any]:
        return {
            "id": gone.id,
            "started_at": self._wall(gone.started_at),
            "exited_at": self._wall(gone.exited_at),
            "exit_code": gone.exit_code,
            "reason": gone.reason,
            "before_ready": gone.before_ready,
            "intended": gone.intended,
            "restarts": gone.restarts,
            "jobs_done": gone.jobs_done,
            "model": gone.last_model,
        }

    def _wall(self, at: float | None) -> float | None:
        """A board time (monotonic) as Unix time, for people and other processes."""
        return None if at is None else round(time.time() - (self._state.board.now() - at), 3)

    def _admit(self, request: Request) -> None:
        if not api_key_matches(request.headers.get("authorization"), self._state.config.api_key):
            raise Problem(401, "Unauthorized: the API key is missing or wrong.")


def _parse(model: type[_Model], data: Any) -> _Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Problem(400, f"Invalid {model.__name__}: {exc.errors(include_url=False)}") from None


def _tail(path: Path | None, lines: int) -> list[str]:
    """The last `lines` lines of a worker log (read from its last 256 KiB)."""
    if path is None or not path.exists():
        return []
    with path.open("rb") as log:
        log.seek(0, os.SEEK_END)
        log.seek(max(0, log.tell() - _LOG_TAIL_BYTES))
        text = log.read().decode("utf-8", "replace")
    return text.splitlines()[-lines:]
