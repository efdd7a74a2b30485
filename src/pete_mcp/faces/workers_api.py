"""The dashboard's worker routes: `GET /api/workers` and `GET /api/workers/{worker_id}/logs`.

The same reads and diagnosis as the MCP tools `list_workers` and `worker_logs` (`ops.workers`).
The listing is operational metadata, like `/api/health`; log lines can hold what callers said
(a traceback quoting a job), so they need the dashboard's token, like `/api/logs`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from pete_mcp.core import InputError, PeteError
from pete_mcp.gateway import Core
from pete_mcp.ops import RUNPOD_NOT_CONFIGURED_HINT, WorkerSource, diagnose, worker_source

__all__ = ["workers_routes"]

MAX_LOG_LINES = 500

Refuse = Callable[[Request, str], Awaitable[JSONResponse | None]]  # (request, action) → refusal or None


def workers_routes(core: Core, refuse: Refuse, *, source: WorkerSource | None = None) -> list[BaseRoute]:
    """The routes; `refuse` is the dashboard's token check (None when the request may proceed)."""
    sources: list[WorkerSource | None] = [source] if source is not None else []

    def chosen() -> WorkerSource | None:
        if not sources:
            sources.append(worker_source(core))
        return sources[0]

    async def workers(request: Request) -> JSONResponse:
        found = chosen()
        if found is None:
            return JSONResponse({"configured": False, "hint": RUNPOD_NOT_CONFIGURED_HINT})
        try:
            report = await found.report()
        except PeteError as exc:
            return _error(502, exc.code, str(exc))
        body = {
            "configured": True,
            "source": report.source,
            "workers": [asdict(w) for w in report.workers],
            "recent_exits": [asdict(e) for e in report.exits if not e.intended],
            "max_workers": report.max_workers,
            "diagnosis": asdict(diagnose(report)),
            "note": report.note,
        }
        return JSONResponse(body)

    async def logs(request: Request) -> JSONResponse:
        if refused := await refuse(request, "worker_logs"):
            return refused
        try:
            lines = int(request.query_params.get("lines", "100"))
        except ValueError:
            raise InputError("lines must be a whole number.") from None
        if not 1 <= lines <= MAX_LOG_LINES:
            raise InputError(f"lines must be 1-{MAX_LOG_LINES}.")
        found = chosen()
        if found is None:
            return _error(404, "not_configured", f"RunPod not configured: no workers. {RUNPOD_NOT_CONFIGURED_HINT}")
        worker_id = request.path_params["worker_id"]
        try:
            got = await found.logs(worker_id, lines)
        except InputError as exc:  # NotFound included: an unknown worker
            return _error(404 if exc.code == "not_found" else 400, exc.code, str(exc))
        except PeteError as exc:
            return _error(502, exc.code, str(exc))
        return JSONResponse({"worker_id": got.worker_id, "lines": got.lines, "note": got.note})

    return [
        Route("/api/workers", workers, methods=["GET"]),
        Route("/api/workers/{worker_id}/logs", logs, methods=["GET"]),
    ]


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
