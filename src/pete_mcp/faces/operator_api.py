"""The dashboard's operator routes: calls under way and ended, jobs (with cancel), deploy preview,
rollout progress and rollback. Mounted by `dashboard.py` with one line; reads are open like the rest
of `/api/*`, actions reuse the dashboard's token check (`DashboardApi.refuse`).

| route | what |
| --- | --- |
| `GET /api/calls?outcome=&q=&limit=` | `{live, recent, outcomes}`: the call board and ended calls with outcome |
| `GET /api/calls/{call_id}` | one call with its transcript so far (404 naming the id) |
| `GET /api/jobs` | `{active, recent}`: requests in flight (newest first) and finished in the last hour |
| `POST /api/jobs/{id}/cancel` | stop a request by request id or RunPod job id (token; 404 naming the id) |
| `GET /api/deploy/preview?image=` | `{current_image, image}` for the confirmation (token) |
| `GET /api/deploy/rollout` | one reading of the rollout's workers (token) |
| `POST /api/rollback` | restore the image the last deploy replaced, and follow it (token) |
"""

from __future__ import annotations

from typing import Any, Protocol

from anyio.abc import TaskGroup
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from pete_mcp.core import ConfigError, InputError, NotFound
from pete_mcp.gateway import Core
from pete_mcp.ops import OUTCOMES, recent_calls
from pete_mcp.ops.deploy import check_image_pinned

__all__ = ["operator_routes"]


class DashboardHost(Protocol):
    """What these routes share with the dashboard's handlers (a protocol: no import of dashboard.py)."""

    core: Core
    deployer: Any | None
    tasks: TaskGroup | None

    async def refuse(self, request: Request, action: str) -> JSONResponse | None: ...

    def _build_deployer(self) -> Any: ...

    @staticmethod
    async def _follow_deploy(deployer: Any, record: Any) -> None: ...


def _limit(request: Request, default: int = 50, most: int = 200) -> int:
    try:
        return max(1, min(int(request.query_params.get("limit", str(default))), most))
    except ValueError:
        raise InputError("limit must be a whole number.") from None


def operator_routes(api: DashboardHost) -> list[BaseRoute]:
    core = api.core

    async def calls(request: Request) -> JSONResponse:
        outcome = request.query_params.get("outcome") or None
        if outcome is not None and outcome not in OUTCOMES:
            raise InputError(f"outcome must be one of: {', '.join(OUTCOMES)} (got {outcome!r}).")
        query = request.query_params.get("q", "")[:200]
        recent = await recent_calls(core, limit=_limit(request), outcome=outcome, query=query)
        return JSONResponse({"live": core.calls.live(), "recent": recent, "outcomes": list(OUTCOMES)})

    async def one_call(request: Request) -> JSONResponse:
        call_id = request.path_params["call_id"]
        call = core.calls.get(call_id)
        if call is None:
            raise NotFound(f"no call {call_id!r} on this gateway (live or recently ended).")
        return JSONResponse(call)

    async def jobs(request: Request) -> JSONResponse:
        return JSONResponse({"active": core.jobs.active(), "recent": core.jobs.recent()})

    async def cancel_job(request: Request) -> JSONResponse:
        if refused := await api.refuse(request, "job_cancel"):
            return refused
        job = await core.cancel_job(request.path_params["job_id"], by="dashboard")
        return JSONResponse({"cancelled": job})

    def deployer() -> Any:
        try:
            api.deployer = api.deployer or api._build_deployer()  # pyright: ignore[reportPrivateUsage]
        except ImportError as exc:
            raise ConfigError(f"Deploy is not available here: {exc}") from None
        return api.deployer

    async def deploy_preview(request: Request) -> JSONResponse:
        if refused := await api.refuse(request, "deploy_read"):
            return refused
        image = request.query_params.get("image", "").strip()
        if not image:
            raise InputError("image is required: the pinned worker image to deploy.")
        check_image_pinned(image)
        current = await deployer().rest.get_endpoint()
        return JSONResponse({"current_image": current.get("image"), "image": image})

    async def rollout(request: Request) -> JSONResponse:
        if refused := await api.refuse(request, "deploy_read"):
            return refused
        state = await deployer().rollout()
        return JSONResponse(
            {
                "endpoint_version": state.endpoint_version,
                "in_progress": state.in_progress,
                "workers_on_latest": state.workers_on_latest,
                "workers_total": state.workers_total,
                "percent_on_latest": state.percent_on_latest,
                "stale_workers": state.stale_workers,
                "workers": state.workers,
                "finished": state.finished,
            }
        )

    async def rollback(request: Request) -> JSONResponse:
        """The same path as the MCP `rollback` tool: `Deployer.rollback`, then follow the rollout."""
        if refused := await api.refuse(request, "deploy"):
            return refused
        chosen = deployer()
        undone, record = await chosen.rollback()
        if api.tasks is not None:
            api.tasks.start_soon(api._follow_deploy, chosen, record)  # pyright: ignore[reportPrivateUsage]
        return JSONResponse(
            {"id": record.id, "image": record.image, "previous_image": undone.image, "status": record.status},
            status_code=202,
        )

    return [
        Route("/api/calls", calls, methods=["GET"]),
        Route("/api/calls/{call_id}", one_call, methods=["GET"]),
        Route("/api/jobs", jobs, methods=["GET"]),
        Route("/api/jobs/{job_id}/cancel", cancel_job, methods=["POST"]),
        Route("/api/deploy/preview", deploy_preview, methods=["GET"]),
        Route("/api/deploy/rollout", rollout, methods=["GET"]),
        Route("/api/rollback", rollback, methods=["POST"]),
    ]
