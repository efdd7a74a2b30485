"""The desk's records over HTTP: `/api/desk/{kind}` (list, close) and `/api/escalations`.

These hold tenant data (names, units, what callers said), so unlike the metrics every route
needs the dashboard's credential, as `/api/logs` does (`refuse`, passed in by the dashboard);
callers' numbers are masked even then.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from pete_mcp.core import InputError
from pete_mcp.core.desk_records import DeskRecords, desk_kind
from pete_mcp.core.escalations import EscalationBook
from pete_mcp.gateway import Core

__all__ = ["desk_routes"]

Refuse = Callable[[Request, str], Awaitable[Response | None]]  # (request, action) → refusal or None


def _limit(request: Request, default: int = 50) -> int:
    try:
        return max(1, min(int(request.query_params.get("limit", str(default))), 500))
    except ValueError:
        raise InputError("limit must be a whole number.") from None


def desk_routes(core: Core, refuse: Refuse) -> list[BaseRoute]:
    """The routes; `await refuse(request, action)` returns the refusal for an unauthorised action, else None."""
    records = DeskRecords(core.store)
    book = EscalationBook(core.store)

    async def list_desk(request: Request) -> Response:
        if (refused := await refuse(request, "desk_read")) is not None:
            return refused
        kind = desk_kind(request.path_params["kind"])
        items = await records.list(kind, status=request.query_params.get("status", "open"), limit=_limit(request))
        return JSONResponse({"kind": kind, "items": [i.as_dict() for i in items]})

    async def close_desk_item(request: Request) -> Response:
        if (refused := await refuse(request, "desk_close")) is not None:
            return refused
        kind = desk_kind(request.path_params["kind"])
        try:
            item_id = int(request.path_params["item_id"])
        except ValueError:
            raise InputError("the id in the path must be a whole number.") from None
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise InputError("the request body must be JSON.") from None
        note = body.get("note", "") if isinstance(body, dict) else None
        if not isinstance(note, str) or len(note) > 1000:
            raise InputError("note must be a string of at most 1000 characters.")
        item = await records.close(kind, item_id, note=note, by="dashboard")
        core.events.publish("desk.closed", desk_kind=kind, id=item_id, by="dashboard")
        return JSONResponse(item.as_dict())

    async def escalations(request: Request) -> Response:
        if (refused := await refuse(request, "desk_read")) is not None:
            return refused
        return JSONResponse({"items": await book.escalations(limit=_limit(request))})

    return [
        Route("/api/desk/{kind}", list_desk, methods=["GET"]),
        Route("/api/desk/{kind}/{item_id}/close", close_desk_item, methods=["POST"]),
        Route("/api/escalations", escalations, methods=["GET"]),
    ]
