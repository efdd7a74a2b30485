"""Admin routes for fault injection from another process (benchmarks, external tests).

`GET/POST/DELETE /_admin/faults` read, add to and clear the fault plan; `POST
/_admin/kill-worker` kills the worker running a job (or a worker by id); `GET /_admin/workers`
lists workers. All take the endpoint's API key, like the public routes.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._errors import InvalidRequest, NotRunning
from ._http import Problem, api_key_matches, read_json
from ._state import PodState

__all__ = ["AdminApi", "FaultPlan"]

_Model = TypeVar("_Model", bound=BaseModel)


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


class FaultPlan(_Strict):
    """The body of `POST /_admin/faults`; every part is optional and adds to what is armed."""

    route_errors: list[RouteErrorPlan] = []
    stream_delay_ms: int | None = Field(default=None, ge=0)
    cold_start_stall: StallPlan | None = None
    job_stall: StallPlan | None = None


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
        board = self._state.board
        listing: list[dict[str, Any]] = [
            {
                "id": worker.id,
                "phase": worker.phase.value,
                "pid": worker.pid,
                "running": [job.id for job in board.running_on(worker.id)],
                "log": str(worker.log_path) if worker.log_path else None,
            }
            for worker in self._state.workers.all()
        ]
        return JSONResponse({"workers": listing})

    def _admit(self, request: Request) -> None:
        if not api_key_matches(request.headers.get("authorization"), self._state.config.api_key):
            raise Problem(401, "Unauthorized: the API key is missing or wrong.")


def _parse(model: type[_Model], data: Any) -> _Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Problem(400, f"Invalid {model.__name__}: {exc.errors(include_url=False)}") from None
