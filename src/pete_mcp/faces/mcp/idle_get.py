"""Answer a sessionless `GET` on the MCP path with 405 instead of an SSE stream that never speaks.

Why: a Streamable HTTP server may hold a standalone `GET` open as an event stream; clients
and probes that open one without a session wait on it forever (RunPod's hosted MCP server saw
~90 % of its traffic hang this way; shared/reference/mcp.md §7.4). A `GET` carrying an
`Mcp-Session-Id` is the session's notification channel (2025-era resource updates ride it)
and passes through.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["RefuseIdleGet"]


class RefuseIdleGet:
    def __init__(self, app: ASGIApp, *, path: str) -> None:
        self.app = app
        self.path = path.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"].rstrip("/") == self.path
            and "mcp-session-id" not in Headers(scope=scope)
        ):
            await Response(status_code=405, headers={"Allow": "POST, DELETE"})(scope, receive, send)
            return
        await self.app(scope, receive, send)
