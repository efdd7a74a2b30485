"""The desk over MCP: list and close tickets, messages, callbacks and emergencies; see the escalations.

Tools `list_desk` and `close_desk_item`; resources `pete://desk/{kind}` (open records) and
`pete://escalations` (pages and every attempt). The same core calls as `/api/desk/*`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from pydantic import Field

from pete_mcp.core import NotFound
from pete_mcp.core.desk_records import DeskRecords
from pete_mcp.core.escalations import EscalationBook
from pete_mcp.gateway import Core

from ._tooling import READ_ONLY_LOCAL, WRITE_IDEMPOTENT, tool_errors

__all__ = ["ESCALATIONS_URI", "register_desk_tools"]

ESCALATIONS_URI = "pete://escalations"
Kind = Literal["tickets", "messages", "callbacks", "emergencies"]


def register_desk_tools(mcp: MCPServer, core: Core) -> None:
    records = DeskRecords(core.store)
    book = EscalationBook(core.store)

    @mcp.tool(title="List office records", annotations=READ_ONLY_LOCAL)
    async def list_desk(
        kind: Annotated[Kind, Field(description="Which records: tickets, messages, callbacks or emergencies.")],
        status: Annotated[
            Literal["open", "closed", "all"], Field(description="Open (default), closed or all.")
        ] = "open",
        limit: Annotated[int, Field(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        """List what Jamie recorded for the office, newest first (callers' numbers masked)."""
        with tool_errors():
            items = await records.list(kind, status=status, limit=limit)
        return {"kind": kind, "items": [i.as_dict() for i in items]}

    @mcp.tool(title="Close an office record", annotations=WRITE_IDEMPOTENT)
    async def close_desk_item(
        kind: Annotated[Kind, Field(description="tickets, messages, callbacks or emergencies.")],
        id: Annotated[int, Field(ge=1, description="The record's id (a ticket's number).")],
        note: Annotated[str, Field(max_length=1000, description="What was done, for the record.")] = "",
    ) -> dict[str, Any]:
        """Close a record once it is handled; closing a closed one changes nothing."""
        with tool_errors():
            item = await records.close(kind, id, note=note, by="mcp")
        core.events.publish("desk.closed", desk_kind=kind, id=id, by="mcp")
        return item.as_dict()

    @mcp.resource(
        "pete://desk/{kind}",
        title="Office records",
        mime_type="application/json",
        description="Open tickets, messages, callbacks or emergencies.",
    )
    async def desk(kind: str) -> dict[str, Any]:
        try:
            items = await records.list(kind, status="open", limit=100)
        except NotFound as exc:
            raise ResourceNotFoundError(str(exc)) from None
        return {"kind": kind, "items": [i.as_dict() for i in items]}

    @mcp.resource(
        ESCALATIONS_URI,
        title="Emergency pages",
        mime_type="application/json",
        description="Emergency pages and every attempt.",
    )
    async def escalations() -> dict[str, Any]:
        return {"items": await book.escalations(limit=100)}
