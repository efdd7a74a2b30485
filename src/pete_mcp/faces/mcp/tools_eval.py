"""MCP tools for response quality: `run_eval` (score models on the tenant-call suite) and `eval_scores`.

`run_eval` runs `pete eval --json` as a child process on the same data directory: the eval
builds its own cores and VAPI face (a layer above this face, which must not import another
face), and its scores land in the shared store, where `eval_scores`, the dashboard and the
quality gate read them. Small models on a CPU are slow, so the default is a handful of cases.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from pete_mcp.core.eval_scores import EvalScoreBook
from pete_mcp.gateway import Core

from ._tooling import READ_ONLY_LOCAL, WRITE

__all__ = ["EvalScoresView", "register_eval_tools"]


class EvalScoresView(BaseModel):
    """Eval scores per model: the latest saved run of each suite, and the gate's setting."""

    min_score: float | None = Field(description="EVAL_MIN_SCORE: switches and deploys below it are refused.")
    results: list[dict[str, Any]] = Field(description="model, suite, score, cases_passed, checks, failing, run_id.")


def register_eval_tools(mcp: MCPServer, core: Core, *, command: Sequence[str] | None = None) -> None:
    """Register `run_eval` and `eval_scores`; `command` is the `pete eval` argv prefix (tests pass their own)."""
    base = list(command or [sys.executable, "-m", "pete_mcp.cli", "eval"])
    book = EvalScoreBook(core.store)

    @mcp.tool(annotations=WRITE)
    async def run_eval(
        models: Annotated[list[str], Field(min_length=1, max_length=4, description="Aliases from list_models.")],
        limit: Annotated[int, Field(ge=1, le=100, description="Cases per suite (small models are slow).")] = 5,
        cases: Annotated[list[str] | None, Field(description="Run only these case ids.")] = None,
        judge: Annotated[str | None, Field(description="Alias that grades the rubrics.")] = None,
        heldout: Annotated[bool, Field(description="Also run the held-out suite.")] = False,
        time_budget_s: Annotated[float, Field(ge=10, le=3600)] = 900.0,
    ) -> EvalScoresView:
        """Score models on the tenant-call suite through Pete's own VAPI path; saves and returns the scores."""
        known = {spec.alias for spec in core.models}
        unknown = [m for m in [*models, *([judge] if judge else [])] if m not in known]
        if unknown:
            raise ToolError(f"Unknown model {', '.join(map(repr, unknown))}. Registered: {', '.join(sorted(known))}.")
        argv = [*base, "--json", "--limit", str(limit)]
        for model in models:
            argv += ["--model", model]
        for case in cases or []:
            argv += ["--case", case]
        if judge:
            argv += ["--judge", judge]
        if heldout:
            argv.append("--heldout")
        env = {**os.environ, "DATA_DIR": str(core.settings.data_dir)}
        done = None
        with anyio.move_on_after(time_budget_s):
            done = await anyio.run_process(argv, env=env, check=False)
        if done is None:
            raise ToolError(f"The eval did not finish within {time_budget_s:g} s; lower limit or raise time_budget_s.")
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise ToolError(f"pete eval failed: {' '.join(tail) or f'exit {done.returncode}'}")
        results = json.loads(done.stdout.decode())["results"]
        return EvalScoresView(min_score=core.settings.eval_min_score, results=results)

    @mcp.tool(annotations=READ_ONLY_LOCAL)
    async def eval_scores(
        suite: Annotated[str | None, Field(description="Only this suite (e.g. tenant_calls).")] = None,
    ) -> EvalScoresView:
        """The latest saved eval score of each model (per suite), per-check pass rates and failing checks."""
        rows = await book.latest(suite=suite)
        return EvalScoresView(min_score=core.settings.eval_min_score, results=[r.as_dict() for r in rows])
