"""Pete's MCP face: tools, resources and prompts over stdio (`pete-mcp`) and Streamable HTTP (`/mcp`).

The only module that imports `mcp` (SDK 2.x; shared/reference/mcp.md). It translates MCP
calls into core calls and core errors into MCP's two error channels: `ToolError` for what
the model can act on, `MCPError` for server misconfiguration. Long generations return a job
id (jobs.py); deploys ask for confirmation by elicitation where the client can show a
dialog, else require `confirm=true`. Resource updates reach subscribers of both protocol
eras (the 2025 ones through the SDK's documented private-handler workaround, §5).
"""

import hmac
import logging
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated, Any, Literal

import anyio
from mcp import MCPError
from mcp.server import MCPServer, NotificationOptions
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import AcceptedElicitation, Context, Elicit, ElicitationResult, Resolve
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.server.subscriptions import InMemorySubscriptionBus, ResourceUpdated
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import (
    INTERNAL_ERROR,
    EmptyResult,
    SubscribeRequestParams,
    ToolAnnotations,
    UnsubscribeRequestParams,
)
from pydantic import AnyHttpUrl, BaseModel, Field, SecretStr
from starlette.routing import BaseRoute, Route

from . import operator_views as views
from .app import Face
from .core import Core, build_core
from .deploy import Deployer, DeployRecord, RolloutState
from .errors import ConfigError, PeteError
from .face_runtime import FaceRuntime
from .health import run_checks
from .idle_get import RefuseIdleGet
from .jobs import JobTracker, TrackedJob, prompt_turn
from .live_updates import HEALTH_URI, LOGS_URI, METRICS_URI, MODELS_URI, ResourceUpdates
from .operator_prompts import DIAGNOSE_SLOW_CALLS, INSTRUCTIONS, deploy_checklist_text
from .operator_views import health_view, job_view, model_list, rollout_view, waiting_hint
from .recent_log import RecentLog
from .runpod_ops import RUNPOD_NOT_CONFIGURED_HINT, runpod_client
from .runpod_rest import rest_from_settings
from .settings import Settings
from .tool_models import DeployView, EndpointStatusView, HealthView, JobView, ModelList, PurgeView, SwitchView

__all__ = ["build_mcp_server", "main", "mcp_face"]

log = logging.getLogger(__name__)

VERSION = "0.1.0"
DEFAULT_BUDGET_S = 40.0  # under the ~60 s some hosts allow a tool call (mcp.md §9)
PROGRESS_EVERY_S = 0.25
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=True)
READ_ONLY_LOCAL = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
WRITE_IDEMPOTENT = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True
)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True)


# --- parameter and confirmation models (module level: the SDK resolves them by name) -------
class PromptMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class Approval(BaseModel):
    approve: bool = Field(description="Go ahead? In-flight requests on the endpoint may fail.")


def _approval(question: str, confirm: bool, ctx: Context) -> Approval | Elicit[Approval]:
    caps = ctx.client_capabilities
    if caps is not None and caps.elicitation is not None:
        return Elicit(question, Approval)
    if confirm:  # no dialog here: the model asked the user in the chat
        return Approval(approve=True)
    raise ToolError(
        "This changes the live RunPod endpoint. Ask the user to confirm, then call again with confirm=true."
    )


async def approve_deploy(image: str, confirm: bool, ctx: Context) -> Approval | Elicit[Approval]:
    return _approval(f"Roll the RunPod endpoint to {image!r}? Workers restart as they finish.", confirm, ctx)


async def approve_rollback(confirm: bool, ctx: Context) -> Approval | Elicit[Approval]:
    return _approval("Roll the RunPod endpoint back to the image before the last deploy?", confirm, ctx)


async def approve_purge(confirm: bool, ctx: Context) -> Approval | Elicit[Approval]:
    return _approval("Drop every queued (not yet running) job on the RunPod endpoint?", confirm, ctx)


DeployApproval = Annotated[ElicitationResult[Approval], Resolve(approve_deploy)]
RollbackApproval = Annotated[ElicitationResult[Approval], Resolve(approve_rollback)]
PurgeApproval = Annotated[ElicitationResult[Approval], Resolve(approve_purge)]
Budget = Annotated[float, Field(ge=1, le=55, description="Seconds to wait before returning a job_id instead.")]
FollowSeconds = Annotated[float, Field(ge=0, le=45, description="Seconds to follow the rollout before returning.")]


def _approved(approval: ElicitationResult[Approval]) -> bool:
    return isinstance(approval, AcceptedElicitation) and approval.data.approve


@contextmanager
def _tool_errors() -> Iterator[None]:
    """Pete errors → `ToolError` (the model reads it); misconfiguration → `MCPError` (the host shows it)."""
    try:
        yield
    except ConfigError as exc:
        raise MCPError(INTERNAL_ERROR, str(exc), {"code": exc.code}) from exc
    except PeteError as exc:
        raise ToolError(str(exc)) from exc


def build_mcp_server(core: Core, *, deployer: Deployer | None = None, update_interval_s: float = 1.0) -> MCPServer:
    """Pete's MCP server over `core`. `deployer` defaults to one built from the RunPod settings on first use."""
    settings = core.settings
    bus = InMemorySubscriptionBus()
    recent = RecentLog()
    watchers: dict[str, set[Any]] = defaultdict(set)

    async def notify(uris: list[str]) -> None:
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

    auth, verifier = _auth(settings)
    mcp = MCPServer(
        "pete-mcp",
        title="Pete",
        version=VERSION,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        subscriptions=bus,
        auth=auth,
        token_verifier=verifier,
        log_level="WARNING",
    )
    _serve_legacy_subscriptions(mcp, watchers)
    deployers: list[Deployer] = [deployer] if deployer is not None else []

    def get_deployer() -> Deployer:
        if not deployers:
            deployers.append(Deployer(rest_from_settings(settings, core.http), core.store, core.events))
        return deployers[0]

    # --- prompts and jobs -----------------------------------------------------------------
    @mcp.tool(annotations=WRITE)
    async def run_prompt(
        ctx: Context,
        prompt: Annotated[str | None, Field(description="One user message. Or pass messages.")] = None,
        messages: Annotated[
            list[PromptMessage] | None, Field(description="A whole exchange instead of prompt.")
        ] = None,
        model: Annotated[str | None, Field(description="Alias from list_models; default: the active model.")] = None,
        conversation_id: Annotated[
            str | None, Field(description="Continue a persisted conversation; 'new' starts one.")
        ] = None,
        max_tokens: Annotated[int | None, Field(ge=1, le=4096)] = None,
        temperature: Annotated[float | None, Field(ge=0, le=2)] = None,
        time_budget_s: Budget = DEFAULT_BUDGET_S,
    ) -> JobView:
        """Send a prompt to Pete's model and return the reply with model, provider, usage and timings.

        If the reply is not ready within time_budget_s (a RunPod cold start can take minutes), this
        returns status 'waiting' or 'generating' with a job_id: call get_job(job_id) to collect it.
        """
        exchange = [(m.role, m.content) for m in messages] if messages is not None else None
        with _tool_errors():
            turn = prompt_turn(prompt, exchange, model, conversation_id, max_tokens, temperature)
            job = tracker.start(turn)
        return await _await_job(job, ctx, time_budget_s, total=max_tokens)

    async def _await_job(
        job: TrackedJob, ctx: Context, budget_s: float, *, total: int | None, raise_failure: bool = True
    ) -> JobView:
        last = -PROGRESS_EVERY_S
        await ctx.report_progress(0, total, "waiting for the model")

        async def on_update(j: TrackedJob) -> None:
            nonlocal last
            now = anyio.current_time()
            if j.parts and (now - last >= PROGRESS_EVERY_S or len(j.parts) == 1):
                last = now
                await ctx.report_progress(len(j.parts), total, f"generating: {len(j.parts)} tokens")

        try:
            finished = await tracker.wait(job, budget_s, on_update)
        except anyio.get_cancelled_exc_class():
            job.scope.cancel()  # the caller went away: do not keep a GPU busy for nobody
            raise
        if not finished:
            return job_view(job, hint=await waiting_hint(core, job))
        if raise_failure and job.status == "failed" and job.error is not None:
            with _tool_errors():
                raise job.error
        return job_view(job)

    @mcp.tool(annotations=READ_ONLY_LOCAL)
    async def get_job(
        ctx: Context,
        job_id: Annotated[str, Field(description="The job_id run_prompt returned.")],
        wait_s: Annotated[float, Field(ge=0, le=45, description="Wait up to this long for it to finish.")] = 20.0,
    ) -> JobView:
        """Get a run_prompt job: its reply when completed, its error when failed, else its status and text so far."""
        with _tool_errors():
            job = tracker.get(job_id)
        if job.finished or wait_s == 0:
            return job_view(job, hint=None if job.finished else await waiting_hint(core, job))
        return await _await_job(job, ctx, wait_s, total=job.turn.options.max_tokens, raise_failure=False)

    @mcp.tool(annotations=WRITE_IDEMPOTENT)
    async def cancel_job(job_id: Annotated[str, Field(description="The job_id run_prompt returned.")]) -> JobView:
        """Stop a run_prompt job (and its RunPod job). A finished job is returned unchanged."""
        with _tool_errors():
            return job_view(await tracker.cancel(job_id))

    # --- models ---------------------------------------------------------------------------
    @mcp.tool(annotations=READ_ONLY_LOCAL)
    async def list_models() -> ModelList:
        """The registered models: alias, provider model name, context window, active flag, warm state, latency."""
        return model_list(core)

    @mcp.tool(annotations=WRITE_IDEMPOTENT)
    async def switch_model(
        name: Annotated[str, Field(description="Alias from list_models.")],
        warm: Annotated[bool, Field(description="Load it and check it answers before switching.")] = True,
    ) -> SwitchView:
        """Make another registered model the active one (persisted). Requests already running finish on the old one."""
        if name not in core.models:
            raise ToolError(f"Unknown model {name!r}. Registered: {', '.join(s.alias for s in core.models)}.")
        with _tool_errors():
            result = await core.switch_model(name, warm=warm, by="mcp")
        return SwitchView(previous=result.previous, active=result.active, warmup_s=result.warmup_s)

    # --- health and the endpoint -----------------------------------------------------------
    @mcp.tool(annotations=READ_ONLY)
    async def health(
        probe: Annotated[bool, Field(description="Ask the active model for one token (may wake a GPU).")] = True,
    ) -> HealthView:
        """System checks, each with status and a fix hint, plus key live figures."""
        return health_view(await run_checks(core, probe=probe))

    @mcp.tool(annotations=READ_ONLY)
    async def endpoint_status() -> EndpointStatusView:
        """The RunPod endpoint: workers, queue, current image, rollout and recent deploys."""
        try:
            chosen = get_deployer()
        except ConfigError:
            chosen = None
        return await views.endpoint_status(core, chosen)

    @mcp.tool(annotations=DESTRUCTIVE)
    async def purge_queue(approval: PurgeApproval, confirm: bool = False) -> PurgeView:
        """Drop every queued (not yet running) job on the RunPod endpoint. Asks the user first."""
        if not _approved(approval):
            return PurgeView(purged=False, status="not confirmed: nothing changed")
        client = runpod_client(core)
        if client is None:
            raise ToolError(f"RunPod not configured: there is no queue to purge. {RUNPOD_NOT_CONFIGURED_HINT}")
        with _tool_errors():
            result = await client.purge_queue()
        return PurgeView(purged=True, removed=result.removed, status=result.status)

    # --- deploys ---------------------------------------------------------------------------
    async def _follow(ctx: Context, record: DeployRecord, view: DeployView, follow_s: float) -> DeployView:
        async def on_progress(state: RolloutState) -> None:
            done = f"{state.workers_on_latest}/{state.workers_total} workers on the new release"
            await ctx.report_progress(state.percent_on_latest, 100, done)

        try:
            state = await get_deployer().follow(record, timeout_s=follow_s, on_progress=on_progress)
        except PeteError as exc:  # the PATCH went through: say so rather than fail the call
            view.status, view.hint = "rolling_out", f"Started, but following the rollout failed: {exc}"
            return view
        view.rollout = rollout_view(state)
        view.status = "done" if state.finished else "rolling_out"
        if not state.finished:
            view.hint = "RunPod is still rolling out; call endpoint_status to follow it."
        return view

    @mcp.tool(annotations=DESTRUCTIVE)
    async def deploy(
        ctx: Context,
        image: Annotated[str, Field(description="Pinned worker image: registry/worker:1.4.2 or ...@sha256:<digest>.")],
        approval: DeployApproval,
        env: Annotated[dict[str, str] | None, Field(description="Replaces the endpoint's whole env.")] = None,
        confirm: Annotated[bool, Field(description="The user confirmed in chat (clients without dialogs).")] = False,
        follow_s: FollowSeconds = 40.0,
    ) -> DeployView:
        """Roll a new worker image onto the RunPod endpoint and follow the rollout. Asks the user first."""
        if not _approved(approval):
            return DeployView(started=False, status="declined", image=image, hint="Nothing changed.")
        with _tool_errors():
            record = await get_deployer().start(image, env=env)
        view = DeployView(
            started=True, status=record.status, image=image, previous_image=record.previous_image, deploy_id=record.id
        )
        return await _follow(ctx, record, view, follow_s)

    @mcp.tool(annotations=DESTRUCTIVE)
    async def rollback(
        ctx: Context, approval: RollbackApproval, confirm: bool = False, follow_s: FollowSeconds = 40.0
    ) -> DeployView:
        """Restore the image the last deploy replaced, and follow the rollout. Asks the user first."""
        if not _approved(approval):
            return DeployView(started=False, status="declined", hint="Nothing changed.")
        with _tool_errors():
            undone, record = await get_deployer().rollback()
        view = DeployView(
            started=True, status=record.status, image=record.image, previous_image=undone.image, deploy_id=record.id
        )
        return await _follow(ctx, record, view, follow_s)

    _register_resources(mcp, core, recent)
    _register_prompts(mcp)
    return mcp


def _register_resources(mcp: MCPServer, core: Core, recent: RecentLog) -> None:
    @mcp.resource(METRICS_URI, mime_type="application/json", description="Live metrics snapshot (as /api/metrics).")
    def live_metrics() -> dict[str, Any]:
        return core.metrics.snapshot()

    @mcp.resource(MODELS_URI, mime_type="application/json", description="Registered models and the active one.")
    def models() -> dict[str, Any]:
        return model_list(core).model_dump()

    @mcp.resource(HEALTH_URI, mime_type="application/json", description="System checks without the model probe.")
    async def health() -> dict[str, Any]:
        return health_view(await run_checks(core, probe=False)).model_dump()

    @mcp.resource(LOGS_URI, mime_type="application/json", description="Recent log records and core events.")
    def logs() -> dict[str, Any]:
        return {"entries": recent.entries()}

    @mcp.resource("pete://conversations/{conversation_id}", mime_type="application/json", description="A thread.")
    async def conversation(conversation_id: str) -> dict[str, Any]:
        if not await core.store.conversation_exists(conversation_id):
            raise ResourceNotFoundError(f"no conversation {conversation_id!r}")
        return {"id": conversation_id, "messages": list(await core.store.thread(conversation_id))}


def _register_prompts(mcp: MCPServer) -> None:
    @mcp.prompt(description="Find out why calls are slow: cold starts, queueing, a slow model or provider.")
    def diagnose_slow_calls() -> str:
        return DIAGNOSE_SLOW_CALLS

    @mcp.prompt(description="Deploy a new worker image safely.")
    def deploy_checklist(image: str) -> str:
        return deploy_checklist_text(image)


def _serve_legacy_subscriptions(mcp: MCPServer, watchers: dict[str, set[Any]]) -> None:
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


# --- HTTP -----------------------------------------------------------------------------------
class _SharedToken(TokenVerifier):
    """Accepts exactly MCP_TOKEN (constant-time compare)."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token.get_secret_value().encode()

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode(), self._token):
            return AccessToken(token=token, client_id="operator", scopes=["pete"])
        return None


def _public_base(settings: Settings) -> str:
    return (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")


def _auth(settings: Settings) -> tuple[AuthSettings | None, TokenVerifier | None]:
    if settings.mcp_token is None:
        return None, None
    base = _public_base(settings)
    auth = AuthSettings(
        issuer_url=AnyHttpUrl(base),
        resource_server_url=AnyHttpUrl(f"{base}/mcp"),
        required_scopes=["pete"],
        validate_token_resource=False,
    )
    return auth, _SharedToken(settings.mcp_token)


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """Loopback names plus ALLOWED_HOSTS (each bare and with any port): anything else gets 421."""
    hosts = ["127.0.0.1", "localhost", "[::1]"] + [h.strip() for h in settings.allowed_hosts.split(",") if h.strip()]
    origins = [f"http://{h}:*" for h in hosts[:3]] + [f"http://{h}" for h in hosts[:3]]
    for host in hosts[3:]:
        origins += [f"https://{host}", f"http://{host}", f"https://{host}:*", f"http://{host}:*"]
    if settings.public_url:
        origins.append(settings.public_url.rstrip("/"))
    return TransportSecuritySettings(
        allowed_hosts=[form for h in hosts for form in (h, f"{h}:*")], allowed_origins=origins
    )


def mcp_face(core: Core, *, server: MCPServer | None = None) -> Face:
    """Streamable HTTP at `/mcp` for the one Starlette app; its lifespan runs the session manager.

    Raises:
        ConfigError: binding beyond loopback without MCP_TOKEN.
    """
    settings = core.settings
    if settings.binds_beyond_loopback and settings.mcp_token is None:
        raise ConfigError(f"refusing to serve /mcp on {settings.host} without MCP_TOKEN: set it, or bind 127.0.0.1.")
    server = server or build_mcp_server(core)
    http_app = server.streamable_http_app(transport_security=transport_security(settings), host=settings.host)
    guarded = RefuseIdleGet(http_app, path="/mcp")
    routes: list[BaseRoute] = [Route(r.path, endpoint=guarded) for r in http_app.routes if isinstance(r, Route)]
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
