"""The dashboard face: `/api/*`, `/metrics` and the static page at `/`, over the one core.

Reading is open on loopback (the snapshot, events, Prometheus, models, health: nothing secret
is in them); once Pete is reachable beyond loopback (`Settings.binds_beyond_loopback`) every
read needs a Bearer token holding `pete:read` (`/api/events` also takes `?access_token=`,
since a browser's EventSource cannot send headers). Every action — switch, prompt, deploy,
logs, closing a record, cancelling a job — needs a Bearer token holding the scope
`faces.auth.DASHBOARD_SCOPES` names (`MCP_TOKEN` holds all; a signed-in token its granted ones)
and is refused while no credential is configured. Bodies are read with the strict JSON reader
(`core/jsonwire.py`). The face's lifespan runs the metrics service and
the alert engine, so they start and stop with `pete serve`. The static files are mounted
last: `/` is the catch-all.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import anyio
from anyio.abc import TaskGroup
from pydantic import BaseModel, Field, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from pete_mcp.alerts import AlertSink, Rule, run_alerts
from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core import ConfigError, InputError, JobStarted, PeteError, TextDelta, parse_model, sse_frame
from pete_mcp.gateway import ChatTurn, Core, Reply
from pete_mcp.metrics import (
    CONTENT_TYPE_LATEST,
    fleet_snapshot,
    prometheus_registry,
    render_prometheus,
    run_metrics_service,
)

from ._face import Face
from ._tracing import traced_prompt
from .auth import DASHBOARD_SCOPES, build_verifier, missing_scope_message
from .cli_token import CliToken
from .desk_api import desk_routes
from .evals_api import evals_routes
from .operator_api import operator_routes
from .recent_log import RecentLog
from .workers_api import workers_routes

__all__ = ["DASHBOARD_DIR", "dashboard_face"]

log = logging.getLogger(__name__)

DASHBOARD_DIR = Path(__file__).resolve().parents[3] / "dashboard"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
HEALTH_CACHE_S = 10.0
DEPLOY_FOLLOW_S = 900.0


class SwitchBody(BaseModel):
    model: str = Field(min_length=1, max_length=200)


class PromptBody(BaseModel):
    prompt: str | None = Field(default=None, min_length=1, max_length=8000)
    messages: list[Message] | None = Field(
        default=None, min_length=1, max_length=200, description="The whole context, instead of `prompt`."
    )
    model: str | None = Field(default=None, max_length=200)
    max_tokens: int = Field(default=128, ge=1, le=2048)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    seed: int | None = None
    stop: list[str] | None = Field(default=None, max_length=8)
    source: Literal["cli", "eval"] | None = Field(default=None, description="Which CLI command sent it.")

    @model_validator(mode="after")
    def _one_context(self) -> PromptBody:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("send either prompt or messages (exactly one).")
        return self


class DeployBody(BaseModel):
    image: str = Field(min_length=1, max_length=500)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _json_default(value: object) -> str:
    return str(value)


class DashboardApi:
    """The handlers, holding what they share: the core, the Prometheus registry, the log ring."""

    def __init__(self, core: Core, *, sse_max_s: float, deployer: Any | None) -> None:
        self.core = core
        self.registry = prometheus_registry(core.metrics)
        self.recent = RecentLog()
        self.sse_max_s = sse_max_s
        self.deployer = deployer
        self.tasks: TaskGroup | None = None
        self.cli_token = CliToken(core.settings.data_dir)
        self._health: tuple[float, dict[str, Any]] | None = None
        self.verifier = build_verifier(core.settings, core.store, core.http)

    # --- auth ------------------------------------------------------------------------------
    async def refuse(self, request: Request, action: str, *, query_token: bool = False) -> JSONResponse | None:
        """None when the bearer token (MCP_TOKEN or a signed-in token) holds the action's scope."""
        if self.verifier is None:
            return _error(
                403, "actions_disabled", "Dashboard actions are off: set MCP_TOKEN and enter it on the dashboard."
            )
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if query_token and not scheme and "access_token" in request.query_params:
            scheme, given = "bearer", request.query_params["access_token"]
        found = await self.verifier.verify_token(given.strip()) if scheme.lower() == "bearer" and given else None
        if found is None or (found.expires_at is not None and found.expires_at < time.time()):
            return _error(
                401,
                "unauthorized",
                "This action needs the MCP_TOKEN (or a signed-in token) as a Bearer token.",
                {"WWW-Authenticate": "Bearer"},
            )
        needed = DASHBOARD_SCOPES[action]
        if needed not in found.scopes:
            return _error(
                403,
                "insufficient_scope",
                missing_scope_message(f"The dashboard action {action}", needed),
                {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{needed}"'},
            )
        return None

    async def refuse_read(self, request: Request, *, query_token: bool = False) -> JSONResponse | None:
        """Reads are open on loopback; beyond it they need a token holding `pete:read`."""
        if not self.core.settings.binds_beyond_loopback:
            return None
        return await self.refuse(request, "read", query_token=query_token)

    @staticmethod
    async def body(request: Request, model: type[BaseModel]) -> Any:
        """Raises InputError (400) naming what was wrong, BodyTooLarge (413)."""
        return parse_model(model, await request.body())

    # --- reading ---------------------------------------------------------------------------
    async def metrics(self, request: Request) -> JSONResponse:
        """This replica's live snapshot, or with `?scope=fleet` every replica's flushed rollups summed."""
        if refused := await self.refuse_read(request):
            return refused
        scope = request.query_params.get("scope", "live")
        if scope == "fleet":
            return JSONResponse(await fleet_snapshot(self.core.store))
        if scope != "live":
            raise InputError("scope must be 'live' (this replica) or 'fleet' (every replica, from the database).")
        return JSONResponse(self.core.metrics.snapshot())

    async def prometheus(self, request: Request) -> Response:
        if refused := await self.refuse_read(request):
            return refused
        return Response(render_prometheus(self.registry), media_type=CONTENT_TYPE_LATEST)

    async def models(self, request: Request) -> JSONResponse:
        from pete_mcp.ops import servable_models  # whether each can be served now (as MCP list_models says)

        if refused := await self.refuse_read(request):
            return refused
        active = self.core.active_alias
        serving = servable_models(self.core)
        cards = [
            {
                **spec.card(),
                "active": spec.alias == active,
                "servable": serving[spec.alias]["servable"],
                "served_by": serving[spec.alias]["provider"],
                "where": serving[spec.alias]["where"],
                "unservable_reason": serving[spec.alias]["reason"],
                "routes": serving[spec.alias]["routes"],
            }
            for spec in self.core.models
        ]
        return JSONResponse({"active": active, "models": cards})

    async def health(self, request: Request) -> JSONResponse:
        """The checks (cached 10 s). `?probe=1` adds the billed one-token probe, run fresh: it needs the
        prompt action's scope, or the local CLI token (`pete doctor --probe`)."""
        from_cli = self.cli_token.matches(request)  # `pete doctor` on this machine
        probe = request.query_params.get("probe", "") in ("1", "true")
        if probe and not from_cli and (refused := await self.refuse(request, "prompt")):
            return refused
        if not from_cli and (refused := await self.refuse_read(request)):
            return refused
        if probe:
            return JSONResponse(await self._run_checks(probe=True))
        now = time.monotonic()
        if self._health is None or now - self._health[0] > HEALTH_CACHE_S:
            self._health = (now, await self._run_checks())
        return JSONResponse(self._health[1])

    async def _run_checks(self, *, probe: bool = False) -> dict[str, Any]:
        from pete_mcp.ops import run_checks  # the same checks as the MCP `health` tool and `pete doctor`

        report = await run_checks(self.core, probe=probe)  # the page never probes: it must never wake a GPU
        checks = [{"name": c.name, "status": c.status, "detail": c.detail, "hint": c.hint} for c in report.checks]
        return {
            "status": report.status,
            "summary": report.summary,
            "passed": sum(c["status"] == "ok" for c in checks),
            "counted": sum(c["status"] != "skip" for c in checks),
            "checks": checks,
            "figures": report.figures,
        }

    async def events(self, request: Request) -> Response:
        """Core events as SSE `data:` frames `{kind, at, data}`; a ping comment every 15 s.

        Each stream ends after `sse_max_s` (the browser reconnects after `retry`), so an open
        tab never holds up a server shutdown for long.
        """

        if refused := await self.refuse_read(request, query_token=True):
            return refused

        async def stream() -> AsyncIterator[str]:
            deadline = anyio.current_time() + self.sse_max_s
            async with self.core.events.subscribe(maxlen=500) as sub:
                yield "retry: 1000\n: connected\n\n"
                while anyio.current_time() < deadline:
                    event = None
                    with anyio.move_on_after(min(15.0, max(0.0, deadline - anyio.current_time()))):
                        event = await sub.get()
                    if event is None:  # never yield inside the cancel scope
                        yield ": ping\n\n"
                        continue
                    payload = {"kind": event.kind, "at": event.at, "data": event.data}
                    yield sse_frame(json.dumps(payload, default=_json_default, separators=(",", ":")))

        return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)

    # --- actions ---------------------------------------------------------------------------
    async def switch(self, request: Request) -> JSONResponse:
        if refused := await self.refuse(request, "switch"):
            return refused
        body: SwitchBody = await self.body(request, SwitchBody)
        result = await self.core.switch_model(body.model, warm=True, by="dashboard")
        return JSONResponse({"previous": result.previous, "active": result.active, "warmup_s": result.warmup_s})

    async def prompt(self, request: Request) -> Response:
        from_cli = self.cli_token.matches(request)  # `pete prompt` on this machine (see cli_token.py)
        if not from_cli and (refused := await self.refuse(request, "prompt")):
            return refused
        body: PromptBody = await self.body(request, PromptBody)
        if body.model:
            self.core.models.get(body.model)  # unknown alias → 404 before the stream starts
        cli = from_cli or request.headers.get("x-pete-client") == "cli"
        turn = ChatTurn(
            body.messages or [Message(role="user", content=body.prompt or "")],
            model=body.model,
            options=ChatOptions(
                max_tokens=body.max_tokens, temperature=body.temperature, seed=body.seed, stop=body.stop
            ),
            source=(body.source or "cli") if cli else "dashboard",
        )

        async def stream() -> AsyncIterator[str]:
            try:
                async for event in self.core.chat(turn):
                    if isinstance(event, TextDelta):
                        yield sse_frame({"type": "delta", "text": event.text})
                    elif isinstance(event, JobStarted):
                        yield sse_frame({"type": "job", "job_id": event.job_id})
                    elif isinstance(event, Reply):
                        c = event.completion
                        yield sse_frame(
                            {
                                "type": "done",
                                "alias": event.alias,
                                "model": event.model,
                                "provider": event.provider,
                                "finish_reason": event.finish_reason,
                                "ttft_s": c.ttft_s,
                                "total_s": c.total_s,
                                "output_tokens": c.usage.completion_tokens,
                                "input_tokens": c.usage.prompt_tokens,
                                "job_id": c.job_id,
                                "worker_id": c.worker_id,
                            }
                        )
            except PeteError as exc:
                yield sse_frame({"type": "error", "code": exc.code, "message": str(exc)})

        frames = traced_prompt(self.core, request, turn, stream())  # the turn's trace, over the whole body
        return StreamingResponse(frames, media_type="text/event-stream", headers=SSE_HEADERS)

    async def deploy(self, request: Request) -> JSONResponse:
        if refused := await self.refuse(request, "deploy"):
            return refused
        body: DeployBody = await self.body(request, DeployBody)
        try:
            deployer = self.deployer or self._build_deployer()
        except (ImportError, ConfigError) as exc:
            return _error(501, "deploy_unavailable", f"Deploy is not available here: {exc}")
        self.deployer = deployer
        record = await deployer.start(body.image)
        if self.tasks is not None:
            self.tasks.start_soon(self._follow_deploy, deployer, record)
        return JSONResponse(
            {"id": record.id, "image": record.image, "previous_image": record.previous_image, "status": record.status},
            status_code=202,
        )

    def _build_deployer(self) -> Any:
        from pete_mcp.ops import gated_deployer
        from pete_mcp.runpod import rest_from_settings

        return gated_deployer(self.core, rest_from_settings(self.core.settings, self.core.http))

    @staticmethod
    async def _follow_deploy(deployer: Any, record: Any) -> None:
        try:
            await deployer.follow(record, timeout_s=DEPLOY_FOLLOW_S)
        except PeteError as exc:
            log.warning("following deploy #%s failed: %s", record.id, exc)

    async def logs(self, request: Request) -> JSONResponse:
        if refused := await self.refuse(request, "logs"):
            return refused
        try:
            limit = max(1, min(int(request.query_params.get("limit", "200")), 300))
        except ValueError:
            raise InputError("limit must be a whole number.") from None
        return JSONResponse({"entries": self.recent.entries(limit)})

    # --- lifespan --------------------------------------------------------------------------
    async def follow_events(self) -> None:
        async with self.core.events.subscribe() as sub:
            async for event in sub:
                self.recent.record_event(event)


def dashboard_face(
    core: Core,
    *,
    static_dir: Path | None = None,
    services: bool = True,
    alert_rules: Sequence[Rule] | None = None,
    alert_sinks: Sequence[AlertSink] | None = None,
    deployer: Any | None = None,
    sse_max_s: float = 60.0,
) -> Face:
    """The dashboard face. `services=False` leaves out the metrics service and alert engine (tests)."""
    api = DashboardApi(core, sse_max_s=sse_max_s, deployer=deployer)

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if services:
                await stack.enter_async_context(run_metrics_service(core))
                await stack.enter_async_context(run_alerts(core, rules=alert_rules, sinks=alert_sinks))
            stack.enter_context(api.recent.capturing())
            stack.enter_context(api.cli_token.published())
            tasks = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tasks.cancel_scope.cancel)
            api.tasks = tasks
            tasks.start_soon(api.follow_events)
            yield

    routes: list[BaseRoute] = [
        Route("/api/metrics", api.metrics, methods=["GET"]),
        Route("/api/events", api.events, methods=["GET"]),
        Route("/api/models", api.models, methods=["GET"]),
        Route("/api/health", api.health, methods=["GET"]),
        Route("/api/switch", api.switch, methods=["POST"]),
        Route("/api/prompt", api.prompt, methods=["POST"]),
        Route("/api/deploy", api.deploy, methods=["POST"]),
        Route("/api/logs", api.logs, methods=["GET"]),
        Route("/metrics", api.prometheus, methods=["GET"]),
        *desk_routes(core, api.refuse),
        *workers_routes(core, api.refuse),
        *operator_routes(api),
        *evals_routes(core),
    ]
    directory = static_dir or DASHBOARD_DIR
    if directory.is_dir():
        routes.append(Mount("/", app=StaticFiles(directory=directory, html=True), name="dashboard"))
    else:
        log.warning("dashboard files not found at %s; serving the API only", directory)
    return Face("dashboard", routes, lifespan=lifespan)
