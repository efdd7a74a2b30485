"""The one scope table: every MCP tool, MCP method and dashboard action, and the scope it needs.

`pete:read` looks (lists, health, metrics, logs, resources), `pete:operate` acts on traffic
(prompt, switch, cancel), `pete:deploy` changes the endpoint (deploy, rollback, purge). A tool
missing from `TOOL_SCOPES` is refused to every OAuth token (fail closed), and a test fails until
it has an entry. `MCP_TOKEN` holds every scope.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.types import CallToolResult, TextContent

__all__ = [
    "ALL_SCOPES",
    "DASHBOARD_SCOPES",
    "DEPLOY",
    "METHOD_SCOPES",
    "OPERATE",
    "READ",
    "SCOPE_HELP",
    "TOOL_SCOPES",
    "ScopeGuard",
    "missing_scope_message",
]

log = logging.getLogger(__name__)

READ = "pete:read"
OPERATE = "pete:operate"
DEPLOY = "pete:deploy"
ALL_SCOPES = (READ, OPERATE, DEPLOY)
SCOPE_HELP = {
    READ: "See models, health, metrics, logs, endpoint status and conversations.",
    OPERATE: "Send prompts, follow and cancel jobs, switch the active model.",
    DEPLOY: "Deploy a worker image, roll back, purge the RunPod queue.",
}

TOOL_SCOPES: dict[str, str] = {
    "list_models": READ,
    "health": READ,
    "endpoint_status": READ,
    "list_workers": READ,
    "worker_logs": READ,
    "live_status": READ,
    "list_desk": READ,
    "run_prompt": OPERATE,
    "get_job": OPERATE,  # a job's reply is prompt output: whoever may prompt may read it
    "cancel_job": OPERATE,
    "switch_model": OPERATE,
    "close_desk_item": OPERATE,
    "deploy": DEPLOY,
    "rollback": DEPLOY,
    "purge_queue": DEPLOY,
}

# MCP methods other than tools/call; anything not listed (initialize, ping, tools/list) needs no scope.
METHOD_SCOPES: dict[str, str] = {
    "resources/list": READ,
    "resources/templates/list": READ,
    "resources/read": READ,
    "resources/subscribe": READ,
    "resources/unsubscribe": READ,
    "subscriptions/listen": READ,
    "prompts/list": READ,
    "prompts/get": READ,
    "completion/complete": READ,
}

# The dashboard's actions (its reading routes are open: nothing secret is in them).
DASHBOARD_SCOPES: dict[str, str] = {
    "read": READ,  # any /api read, once Pete is reachable beyond loopback
    "logs": READ,
    "desk_read": READ,
    "worker_logs": READ,
    "deploy_read": READ,
    "prompt": OPERATE,
    "switch": OPERATE,
    "desk_close": OPERATE,
    "job_cancel": OPERATE,
    "deploy": DEPLOY,
}


def missing_scope_message(what: str, scope: str) -> str:
    return (
        f"{what} needs the {scope} scope, which this token was not granted. "
        f"Sign in again and approve {scope}, or use a token that has it."
    )


def _has(scopes: Iterable[str], needed: str) -> bool:
    return needed in set(scopes)


class ScopeGuard:
    """MCP server middleware: refuses a call whose bearer token lacks the scope the table names.

    Without a bearer token (stdio, the in-memory client, loopback without auth) every call passes:
    those connections are trusted by how they are reached, not by a token.
    """

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        token = get_access_token()
        if token is None or ctx.request_id is None:
            return await call_next(ctx)
        if ctx.method == "tools/call":
            name = str((ctx.params or {}).get("name", ""))
            needed = TOOL_SCOPES.get(name)
            if needed is None:
                log.warning("tool %r has no entry in the scope table: refused to client %s", name, token.client_id)
                return _refusal(f"The tool {name!r} has no scope assigned yet, so no token may call it.")
            if not _has(token.scopes, needed):
                log.info("client %s refused %s: missing %s", token.client_id, name, needed)
                return _refusal(missing_scope_message(f"The tool {name}", needed))
        elif (needed := METHOD_SCOPES.get(ctx.method)) is not None and not _has(token.scopes, needed):
            from mcp import MCPError
            from mcp.types import INVALID_REQUEST

            raise MCPError(INVALID_REQUEST, missing_scope_message(ctx.method, needed), {"required_scope": needed})
        return await call_next(ctx)


def _refusal(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)
