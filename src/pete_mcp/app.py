"""The one Starlette app `pete serve` runs: every face mounted over the one core.

A face (MCP, VAPI, dashboard + /api) is a `Face`: its routes, and optionally a lifespan it
needs entered while the app runs. The app's lifespan opens the core first and closes it last.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from pete_mcp.core import ConfigError, PeteError, Settings
from pete_mcp.faces import BodyLimitMiddleware, Face, HostGuardMiddleware, accepted_hosts, body_limits
from pete_mcp.gateway import Core, build_core

__all__ = ["Face", "build_app", "check_bind_safety", "default_faces", "freeze_startup_heap", "serve"]

log = logging.getLogger(__name__)

# /mcp checks Host itself (the MCP SDK's transport security); /healthz answers load balancers by IP.
HOST_CHECK_EXEMPT = ("/mcp", "/healthz")


def default_faces(core: Core) -> list[Face]:
    """Every face Pete has, in mount order (specific prefixes before the dashboard's catch-all)."""
    faces: list[Face] = []
    from pete_mcp.faces.mcp import mcp_face

    faces.append(mcp_face(core))
    from pete_mcp.faces.auth import auth_face, auth_plan

    if auth_plan(core.settings).mode == "builtin":
        faces.append(auth_face(core))  # /authorize, /token, ... before the dashboard's catch-all
    from pete_vapi import vapi_face

    faces.append(vapi_face(core))
    from pete_mcp.faces.github_webhook import github_webhook_face

    faces.append(github_webhook_face(core))
    from pete_mcp.faces.dashboard import dashboard_face

    faces.append(dashboard_face(core))
    return faces


async def _healthz(request: Request) -> JSONResponse:
    core: Core = request.app.state.core
    return JSONResponse({"ok": True, "active_model": core.active_alias})


async def _openapi(request: Request) -> JSONResponse:
    from pete_mcp.openapi import openapi_route  # imports every face's request models: only when asked

    return await openapi_route(request)


async def _pete_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PeteError)
    return JSONResponse({"error": {"code": exc.code, "message": str(exc)}}, status_code=exc.status)


def build_app(
    core: Core, *, faces: Sequence[Face] | None = None, manage_core: bool = True, freeze_heap: bool = False
) -> Starlette:
    """Compose the app. With `manage_core`, the app's lifespan opens and closes the core; with
    `freeze_heap` (what `pete serve` and `pete up` run), start-up ends with `freeze_startup_heap()`."""
    chosen = list(faces) if faces is not None else default_faces(core)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if manage_core:
                await stack.enter_async_context(core)
            for face in chosen:
                if face.lifespan is not None:
                    await stack.enter_async_context(face.lifespan())
            if freeze_heap:
                freeze_startup_heap()
            yield

    routes: list[BaseRoute] = [Route("/healthz", _healthz), Route("/openapi.json", _openapi, methods=["GET"])]
    settings = core.settings
    # Outermost first: the Host check, then the body limit, then each face's own middleware.
    middleware: list[Middleware] = [
        Middleware(HostGuardMiddleware, hosts=accepted_hosts(settings), exempt=HOST_CHECK_EXEMPT),
        Middleware(BodyLimitMiddleware, limits=body_limits(settings)),
    ]
    for face in chosen:
        routes.extend(face.routes)
        middleware.extend(face.middleware)
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={PeteError: _pete_error},
    )
    app.state.core = core
    return app


def freeze_startup_heap() -> None:
    """Collect once, then freeze what is left, so the collector's full passes skip it from now on.

    Start-up leaves ~140,000 objects the collector tracks (modules, pydantic models, routes), and
    a full pass walks them all: ~100 ms, every few seconds under load, during which no call gets a
    byte. Those bursts were the gateway's p99 at 32 concurrent calls. Frozen, they are never
    walked again; what requests allocate is collected as before.
    """
    gc.collect()
    gc.freeze()


def check_bind_safety(settings: Settings) -> None:
    """Refuse to start where a face is reachable beyond loopback unless every face has a credential.

    Beyond loopback means a non-loopback HOST, any PUBLIC_URL (a tunnel or proxy reaches a
    loopback bind just as well), or ALLOWED_HOSTS naming a host that is not loopback.

    Raises:
        ConfigError: reachable beyond loopback without MCP_TOKEN or sign-in, or without VAPI auth.
    """
    if not settings.binds_beyond_loopback:
        return
    from pete_mcp.faces.auth import auth_plan

    missing = []
    if auth_plan(settings).mode == "open":
        missing.append("MCP_TOKEN (or sign-in: PUBLIC_URL, OAUTH_SERVER or OAUTH_ISSUER)")
    if settings.vapi_auth == "none" or settings.vapi_secret is None:
        missing.append("VAPI auth (VAPI_AUTH and VAPI_SECRET)")
    if missing:
        raise ConfigError(
            f"refusing to start: Pete is reachable beyond loopback ({'; '.join(settings.exposure)}) "
            f"but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set. "
            "Set them, or bind 127.0.0.1 with no PUBLIC_URL and no public ALLOWED_HOSTS."
        )


def serve(settings: Settings, *, core: Core | None = None) -> None:
    """Run the gateway in the foreground (blocking) until interrupted."""
    check_bind_safety(settings)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = build_app(core or build_core(settings), freeze_heap=True)
    # Open event streams (the dashboard's /api/events, MCP GET streams) never end by themselves: on
    # shutdown, give requests in flight 5 s, then close what is left so Ctrl+C does not hang.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
