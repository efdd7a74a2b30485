"""Pete's MCP face: tools, resources and prompts over stdio (`pete-mcp`) and Streamable HTTP (`/mcp`).

It translates MCP calls into core calls and core errors into MCP's two error channels: `ToolError`
for what the model can act on, `MCPError` for server misconfiguration (`_tooling.py`). Long
generations return a job id (`jobs.py`); deploys ask for confirmation by elicitation where the client
can show a dialog, else require `confirm=true`. Resource updates reach subscribers of both protocol
eras (`resources.py`). The tools are in `tools.py`, auth and Host checks in `_transport.py`.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server import MCPServer
from mcp.server.subscriptions import InMemorySubscriptionBus, ResourceUpdated, ToolsListChanged
from mcp.types import Icon
from starlette.routing import BaseRoute, Route

from pete_mcp.core import ConfigError, Settings
from pete_mcp.gateway import Core, build_core
from pete_mcp.ops import Deployer, WorkerSource, gated_deployer, worker_source
from pete_mcp.runpod import rest_from_settings

from .._face import Face
from ..auth import ScopeGuard, auth_plan, protected_resource_routes
from ..recent_log import RecentLog
from ._transport import mcp_auth, transport_security
from .choices import model_enum, register_completions, set_model_enum
from .idle_get import RefuseIdleGet
from .jobs import JobTracker
from .live_app import live_apps, register_live_tool
from .live_updates import MODELS_URI, ResourceUpdates
from .prompts import INSTRUCTIONS, register_prompts
from .resources import register_resources, serve_legacy_subscriptions
from .runtime import FaceRuntime
from .tools import register_tools
from .tools_desk import register_desk_tools
from .tools_eval import register_eval_tools
from .tools_workers import register_worker_tools

__all__ = ["build_mcp_server", "main", "mcp_face", "transport_security"]

log = logging.getLogger(__name__)

VERSION = "0.1.0"
# Pete's mark, inline so no host fetches anything to draw it.
ICON = Icon(
    src="data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIHZpZXdCb3g9IjAgMCA2NCA2NCI+"
    "PHJlY3Qgd2lkdGg9IjY0IiBoZWlnaHQ9IjY0IiByeD0iMTQiIGZpbGw9IiMyZjZmZWQiLz48cGF0aCBkPSJNMjIgNDhWMTZoMTJhMTEgMTEg"
    "MCAwIDEgMCAyMkgyMiIgZmlsbD0ibm9uZSIgc3Ryb2tlPSIjZmZmIiBzdHJva2Utd2lkdGg9IjYiIHN0cm9rZS1saW5lam9pbj0icm91bmQi"
    "Lz48L3N2Zz4=",
    mime_type="image/svg+xml",
    sizes=["any"],
)


def build_mcp_server(
    core: Core,
    *,
    deployer: Deployer | None = None,
    workers: WorkerSource | None = None,
    update_interval_s: float = 1.0,
) -> MCPServer:
    """Pete's MCP server over `core`. `deployer` defaults to one built from the RunPod settings on first
    use; `workers` to the configured endpoint's (RunPod REST, or the local endpoint's admin API)."""
    settings = core.settings
    bus = InMemorySubscriptionBus()
    recent = RecentLog()
    watchers: dict[str, set[Any]] = defaultdict(set)

    async def tools_changed() -> None:
        await bus.publish(ToolsListChanged())  # 2026-07-28 listeners
        for session in {s for sessions in watchers.values() for s in sessions}:  # 2025 subscribers
            with contextlib.suppress(Exception):  # the connection is gone; `notify` below forgets it
                await session.send_tool_list_changed()

    async def notify(uris: list[str]) -> None:
        if MODELS_URI in uris and set_model_enum(mcp, model_enum(core)):  # the registry changed
            await tools_changed()
        for uri in uris:
            await bus.publish(ResourceUpdated(uri=uri))  # 2026-07-28 listeners
            for session in list(watchers.get(uri, ())):  # 2025 subscribers
                try:
                    await session.send_resource_updated(uri)
                except Exception:  # the connection is gone: forget it
                    watchers[uri].discard(session)

    tracker = JobTracker(core)
    runtime = FaceRuntime(
        tracker,
        ResourceUpdates(core.events, notify, interval_s=update_interval_s, on_event=recent.record_event),
        recent,
    )

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[dict[str, Any]]:
        async with runtime.running():
            yield {"core": core}

    auth, verifier = mcp_auth(core)
    mcp = MCPServer(
        "pete-mcp",
        title="Pete",
        description="Operate Pete's LLM on RunPod serverless: prompts, models, workers, deploys.",
        website_url=dashboard_url(settings),
        icons=[ICON],
        version=VERSION,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        subscriptions=bus,
        auth=auth,
        token_verifier=verifier,
        middleware=[ScopeGuard()],
        log_level="WARNING",
        extensions=[live_apps()],
    )
    serve_legacy_subscriptions(mcp, watchers)
    deployers: list[Deployer] = [deployer] if deployer is not None else []

    def get_deployer() -> Deployer:
        if not deployers:
            deployers.append(gated_deployer(core, rest_from_settings(settings, core.http)))
        return deployers[0]

    sources: list[WorkerSource | None] = [workers] if workers is not None else []

    def get_workers() -> WorkerSource | None:
        if not sources:
            sources.append(worker_source(core))
        return sources[0]

    register_tools(mcp, core, tracker, get_deployer, get_workers)
    register_worker_tools(mcp, get_workers)
    register_live_tool(mcp, core, tracker, get_deployer)
    register_desk_tools(mcp, core)
    register_tools(mcp, core, tracker, get_deployer)
    register_eval_tools(mcp, core)
    register_resources(mcp, core, recent)
    register_prompts(mcp)
    register_completions(mcp, core)
    set_model_enum(mcp, model_enum(core))
    return mcp


def dashboard_url(settings: Settings) -> str:
    """Where the operator's dashboard is: the public URL when set, else the gateway on this machine."""
    if settings.public_url:
        return settings.public_url.rstrip("/") + "/"
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    return f"http://[{host}]:{settings.port}/" if ":" in host else f"http://{host}:{settings.port}/"


def mcp_face(core: Core, *, server: MCPServer | None = None) -> Face:
    """Streamable HTTP at `/mcp` for the one Starlette app; its lifespan runs the session manager.

    Raises:
        ConfigError: binding beyond loopback with no credential (MCP_TOKEN or sign-in).
    """
    settings = core.settings
    plan = auth_plan(settings)
    if settings.binds_beyond_loopback and plan.mode == "open":
        raise ConfigError(
            f"refusing to serve /mcp on {settings.host} without MCP_TOKEN or sign-in: set one, or bind 127.0.0.1."
        )
    server = server or build_mcp_server(core)
    http_app = server.streamable_http_app(transport_security=transport_security(settings), host=settings.host)
    guarded = RefuseIdleGet(http_app, path="/mcp")
    routes: list[BaseRoute] = [
        Route(r.path, endpoint=guarded)
        for r in http_app.routes
        if isinstance(r, Route) and not r.path.startswith("/.well-known/")
    ]
    routes += protected_resource_routes(plan)  # the SDK's lists no scopes; this one lists every scope
    return Face("mcp", routes, lifespan=server.session_manager.run)


# --- stdio ----------------------------------------------------------------------------------
def main() -> None:
    """`pete-mcp`: the MCP server over stdio. stdout carries the protocol; logs go to stderr."""
    settings = Settings()  # pyright: ignore[reportCallIssue]  (pydantic-settings reads the environment)
    logging.basicConfig(
        stream=sys.stderr, level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    anyio.run(_serve_stdio, settings)


async def _serve_stdio(settings: Settings) -> None:
    async with build_core(settings) as core:
        await build_mcp_server(core).run_stdio_async()
