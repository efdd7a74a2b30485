"""`GET /api/evals/latest`: the latest saved `pete eval` score per model and suite, for the dashboard.

Read-only, like `/api/metrics`: scores, per-check pass rates and the ids of failing cases and
checks (never transcript text, which holds what callers said). Saved by `pete eval`, read from
the core's store (`pete_mcp.core.eval_scores`), so the MCP `run_eval` tool and the quality gate
see the same numbers.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from pete_mcp.core.eval_scores import EvalScoreBook
from pete_mcp.gateway import Core

__all__ = ["evals_routes"]


def evals_routes(core: Core) -> list[BaseRoute]:
    """The eval routes over `core` (mounted by the dashboard face)."""
    book = EvalScoreBook(core.store)

    async def latest(request: Request) -> JSONResponse:
        suite = request.query_params.get("suite") or None
        rows = await book.latest(suite=suite)
        settings = core.settings
        return JSONResponse(
            {
                "gate": {"min_score": settings.eval_min_score, "require_run": settings.eval_require_run},
                "active": core.active_alias,
                "latest": [row.as_dict() for row in rows],
            }
        )

    return [Route("/api/evals/latest", latest, methods=["GET"])]
