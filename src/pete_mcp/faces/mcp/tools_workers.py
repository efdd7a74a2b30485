"""Pete's MCP tools for the endpoint's workers: `list_workers` and `worker_logs`.

A thin translation of `ops.workers` (the local endpoint's admin API, or RunPod's REST API for a
real endpoint) into tool results, with the same diagnosis `get_job`'s hint gives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from pete_mcp.core import PeteError
from pete_mcp.ops import RUNPOD_NOT_CONFIGURED_HINT, WorkerReport, WorkerSource, diagnose

from ._tooling import READ_ONLY, tool_errors

__all__ = ["DiagnosisView", "WorkerExitView", "WorkerList", "WorkerLogView", "WorkerView", "register_worker_tools"]


class WorkerView(BaseModel):
    id: str
    state: str = Field(description="initializing, idle, running, unhealthy, throttled or stopping.")
    model: str | None = Field(default=None, description="The model its latest job used (what it has loaded).")
    up_since: float | None = Field(default=None, description="Unix time the worker started.")
    jobs_done: int | None = None
    restarts: int | None = Field(default=None, description="Workers that died in a row before this one started.")
    image: str | None = None
    stale: bool | None = Field(default=None, description="Runs an older release than the endpoint's.")
    detail: str = ""


class WorkerExitView(BaseModel):
    id: str
    exited_at: float | None = None
    exit_code: int | None = None
    reason: str = ""
    before_ready: bool = Field(description="Died during start, before taking a job.")


class DiagnosisView(BaseModel):
    kind: str = Field(description="crash_loop, unhealthy, capacity, cold_start, busy, ok or unknown.")
    summary: str
    advice: str
    worker_id: str | None = Field(default=None, description="The worker whose logs tell the story.")


class WorkerList(BaseModel):
    source: str = Field(description="local (the local endpoint) or runpod (RunPod's REST API).")
    workers: list[WorkerView] = []
    recent_exits: list[WorkerExitView] = []
    max_workers: int | None = None
    diagnosis: DiagnosisView
    note: str = ""


class WorkerLogView(BaseModel):
    worker_id: str
    lines: list[str] = []
    note: str = ""


def worker_list(report: WorkerReport) -> WorkerList:
    found = diagnose(report)
    return WorkerList(
        source=report.source,
        workers=[WorkerView.model_validate(w, from_attributes=True) for w in report.workers],
        recent_exits=[WorkerExitView.model_validate(e, from_attributes=True) for e in report.exits if not e.intended],
        max_workers=report.max_workers,
        diagnosis=DiagnosisView(kind=found.kind, summary=found.summary, advice=found.advice, worker_id=found.worker_id),
        note=report.note,
    )


def register_worker_tools(mcp: MCPServer, get_source: Callable[[], WorkerSource | None]) -> None:
    """Register `list_workers` and `worker_logs`; `get_source` finds the endpoint's workers."""

    def source() -> WorkerSource:
        with tool_errors():
            found = get_source()
        if found is None:
            raise ToolError(f"RunPod not configured: there are no workers to list. {RUNPOD_NOT_CONFIGURED_HINT}")
        return found

    @mcp.tool(title="List workers", annotations=READ_ONLY)
    async def list_workers() -> WorkerList:
        """The endpoint's workers (state, model, up since, jobs done, restarts), recent crashes, and a diagnosis.

        The diagnosis tells a cold start (wait) from a capacity shortage (raise max workers) and a
        crash-looping or unhealthy worker (read worker_logs, roll back).
        """
        chosen = source()
        with tool_errors():
            return worker_list(await chosen.report())

    @mcp.tool(title="Worker logs", annotations=READ_ONLY)
    async def worker_logs(
        worker_id: Annotated[str, Field(description="A worker id from list_workers (a recent crash works too).")],
        lines: Annotated[int, Field(ge=1, le=500, description="How many of the latest lines.")] = 100,
    ) -> WorkerLogView:
        """The latest log lines of one worker, live or recently gone."""
        chosen = source()
        try:
            logs = await chosen.logs(worker_id, lines)
        except PeteError as exc:
            raise ToolError(f"{exc} Call list_workers for the current worker ids.") from exc
        return WorkerLogView(worker_id=logs.worker_id, lines=logs.lines, note=logs.note)
