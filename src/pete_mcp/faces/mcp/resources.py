"""Pete's MCP resources (live metrics, models, health, logs, conversations) and their subscriptions."""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer, NotificationOptions
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.types import (
    EmptyResult,
    SubscribeRequestParams,
    UnsubscribeRequestParams,
)

from pete_mcp.gateway import Core
from pete_mcp.metrics import fleet_snapshot
from pete_mcp.ops import recent_calls, run_checks

from ..recent_log import RecentLog
from .live_updates import FLEET_URI, HEALTH_URI, LOGS_URI, METRICS_URI, MODELS_URI
from .views import health_view, model_list

__all__ = ["CONVERSATION_URI", "register_resources", "serve_legacy_subscriptions"]

CONVERSATION_URI = "pete://conversations/{conversation_id}"


def register_resources(mcp: MCPServer, core: Core, recent: RecentLog) -> None:
    @mcp.resource(
        METRICS_URI,
        title="Live metrics",
        mime_type="application/json",
        description="Live metrics snapshot (as /api/metrics).",
    )
    def live_metrics() -> dict[str, Any]:
        return core.metrics.snapshot()

    @mcp.resource(
        FLEET_URI,
        title="Fleet metrics",
        mime_type="application/json",
        description="Every replica's flushed per-minute rollups summed (as /api/metrics?scope=fleet).",
    )
    async def fleet_metrics() -> dict[str, Any]:
        return await fleet_snapshot(core.store)

    @mcp.resource(
        MODELS_URI, title="Models", mime_type="application/json", description="Registered models and the active one."
    )
    def models() -> dict[str, Any]:
        return model_list(core).model_dump()

    @mcp.resource(
        HEALTH_URI,
        title="Health checks",
        mime_type="application/json",
        description="System checks without the model probe.",
    )
    async def health() -> dict[str, Any]:
        return health_view(await run_checks(core, probe=False)).model_dump()

    @mcp.resource(
        LOGS_URI, title="Recent logs", mime_type="application/json", description="Recent log records and core events."
    )
    def logs() -> dict[str, Any]:
        return {"entries": recent.entries()}

    @mcp.resource(
        "pete://calls/live",
        title="Live calls",
        mime_type="application/json",
        description="Calls under way (as /api/calls).",
    )
    def live_calls() -> dict[str, Any]:
        return {"live": core.calls.live()}

    @mcp.resource(
        "pete://calls/recent",
        title="Recent calls",
        mime_type="application/json",
        description="Ended calls with their outcome.",
    )
    async def ended_calls() -> dict[str, Any]:
        return {"recent": await recent_calls(core, limit=50)}

    @mcp.resource(
        "pete://calls/{call_id}", title="Call", mime_type="application/json", description="One call and its transcript."
    )
    def one_call(call_id: str) -> dict[str, Any]:
        call = core.calls.get(call_id)
        if call is None:
            raise ResourceNotFoundError(f"no call {call_id!r} on this gateway (live or recently ended)")
        return call

    @mcp.resource(
        "pete://jobs", title="Jobs", mime_type="application/json", description="Jobs running now and finished in 1 h."
    )
    def jobs() -> dict[str, Any]:
        return {"active": core.jobs.active(), "recent": core.jobs.recent()}

    @mcp.resource(
        CONVERSATION_URI,
        title="Conversation",
        mime_type="application/json",
        description="A persisted thread (a VAPI call or an MCP conversation), by id.",
    )
    async def conversation(conversation_id: str) -> dict[str, Any]:
        if not await core.store.conversation_exists(conversation_id):
            raise ResourceNotFoundError(f"no conversation {conversation_id!r}")
        return {"id": conversation_id, "messages": list(await core.store.thread(conversation_id))}


def serve_legacy_subscriptions(mcp: MCPServer, watchers: dict[str, set[Any]]) -> None:
    """`resources/subscribe` for 2025-era clients: no public API yet (mcp.md §5, as the SDK migration guide does)."""

    async def on_subscribe(ctx: Any, params: SubscribeRequestParams) -> EmptyResult:
        watchers[str(params.uri)].add(ctx.session)
        return EmptyResult()

    async def on_unsubscribe(ctx: Any, params: UnsubscribeRequestParams) -> EmptyResult:
        watchers[str(params.uri)].discard(ctx.session)
        return EmptyResult()

    low = mcp._lowlevel_server  # pyright: ignore[reportPrivateUsage]
    low.add_request_handler("resources/subscribe", SubscribeRequestParams, on_subscribe)
    low.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, on_unsubscribe)
    init = low.create_initialization_options

    def with_changes(notification_options: NotificationOptions | None = None, **kw: Any) -> Any:
        options = notification_options or NotificationOptions(resources_changed=True, tools_changed=True)
        return init(options, **kw)

    low.create_initialization_options = with_changes  # type: ignore[method-assign]
