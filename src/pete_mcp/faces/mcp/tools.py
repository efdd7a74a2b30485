"""Pete's MCP tools: prompts and jobs, models, health and the endpoint, deploys.

Each tool is a thin translation to a core call; errors map once through `tool_errors`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Annotated

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from opentelemetry import trace
from pydantic import Field

from pete_mcp.core import ConfigError, PeteError
from pete_mcp.gateway import Core
from pete_mcp.metrics import face_span
from pete_mcp.ops import (
    RUNPOD_NOT_CONFIGURED_HINT,
    Deployer,
    DeployRecord,
    RolloutState,
    WorkerSource,
    fit_turn,
    run_checks,
    runpod_client,
    servable_models,
)

from . import views
from ._tooling import (
    DEFAULT_BUDGET_S,
    DESTRUCTIVE,
    PROGRESS_EVERY_S,
    READ_ONLY,
    READ_ONLY_LOCAL,
    WRITE,
    WRITE_IDEMPOTENT,
    Budget,
    DeployApproval,
    FollowSeconds,
    PromptMessage,
    PurgeApproval,
    RollbackApproval,
    approved,
    tool_errors,
)
from .jobs import JobTracker, TrackedJob, prompt_turn
from .live_app import UI_META
from .tool_models import DeployView, EndpointStatusView, HealthView, JobView, ModelList, PurgeView, SwitchView
from .views import health_view, job_view, model_list, rollout_view, waiting_hint

__all__ = ["register_tools"]


def _prompt_span(core: Core, ctx: Context) -> AbstractContextManager[trace.Span | None]:
    """The MCP face's span of one `run_prompt` (MCP's convention: `tools/call run_prompt`, SERVER).

    It continues the caller's trace: the `_meta.traceparent` the SDK has made current, else a
    W3C `traceparent` header on an HTTP transport. Nothing is built while tracing is off.
    """

    def attributes() -> dict[str, str]:
        return {
            "mcp.method.name": "tools/call",
            "gen_ai.tool.name": "run_prompt",
            "gen_ai.operation.name": "execute_tool",
            "jsonrpc.request.id": ctx.request_id,
            "pete.face": "mcp",
        }

    def carrier() -> Mapping[str, str] | None:
        return None if trace.get_current_span().get_span_context().is_valid else ctx.headers

    return face_span(core.tracer, "tools/call run_prompt", attributes, carrier=carrier)


def register_tools(
    mcp: MCPServer,
    core: Core,
    tracker: JobTracker,
    get_deployer: Callable[[], Deployer],
    get_workers: Callable[[], WorkerSource | None] = lambda: None,
) -> None:
    """Register every tool on `mcp`; `get_deployer` builds the RunPod deployer on first use,
    `get_workers` finds the endpoint's workers for the waiting hint."""

    # --- prompts and jobs -----------------------------------------------------------------
    @mcp.tool(title="Run a prompt", annotations=WRITE)
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

        The prompt is fitted to the model's context window as a phone turn is (older turns dropped
        first); a prompt whose newest message alone does not fit is refused, naming the window.

        If the reply is not ready within time_budget_s (a RunPod cold start can take minutes), this
        returns status 'waiting' or 'generating' with a job_id: call get_job(job_id) to collect it.
        """
        exchange = [(m.role, m.content) for m in messages] if messages is not None else None
        with _prompt_span(core, ctx) as span:  # the turn's trace; its job may outlive the call
            with tool_errors():
                turn = prompt_turn(prompt, exchange, model, conversation_id, max_tokens, temperature)
                turn = await fit_turn(core, turn)  # as a VAPI turn; refuses what cannot fit
                job = tracker.start(turn)
            if span is not None:
                span.set_attributes({"gen_ai.request.model": job.alias, "pete.job.id": job.id})
                if turn.conversation_id:
                    span.set_attribute("gen_ai.conversation.id", turn.conversation_id)
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
            return job_view(job, hint=await waiting_hint(core, job, get_workers()))
        if raise_failure and job.status == "failed" and job.error is not None:
            with tool_errors():
                raise job.error
        return job_view(job)

    @mcp.tool(title="Get a prompt job", annotations=READ_ONLY_LOCAL)
    async def get_job(
        ctx: Context,
        job_id: Annotated[str, Field(description="The job_id run_prompt returned.")],
        wait_s: Annotated[float, Field(ge=0, le=45, description="Wait up to this long for it to finish.")] = 20.0,
    ) -> JobView:
        """Get a run_prompt job: its reply when completed, its error when failed, else its status and text so far."""
        with tool_errors():
            job = tracker.get(job_id)
        if job.finished or wait_s == 0:
            return job_view(job, hint=None if job.finished else await waiting_hint(core, job, get_workers()))
        return await _await_job(job, ctx, wait_s, total=job.turn.options.max_tokens, raise_failure=False)

    @mcp.tool(title="Cancel a prompt job", annotations=WRITE_IDEMPOTENT)
    async def cancel_job(job_id: Annotated[str, Field(description="The job_id run_prompt returned.")]) -> JobView:
        """Stop a run_prompt job (and its RunPod job). A finished job is returned unchanged."""
        with tool_errors():
            return job_view(await tracker.cancel(job_id))

    # --- models ---------------------------------------------------------------------------
    @mcp.tool(title="List models", annotations=READ_ONLY_LOCAL)
    async def list_models() -> ModelList:
        """The registered models: alias, provider model name, context window, active flag, warm state, latency."""
        return model_list(core)

    @mcp.tool(title="Switch the active model", annotations=WRITE_IDEMPOTENT)
    async def switch_model(
        name: Annotated[str, Field(description="Alias from list_models.")],
        warm: Annotated[bool, Field(description="Load it and check it answers before switching.")] = True,
    ) -> SwitchView:
        """Make another registered model the active one (persisted). Requests already running finish on the old one."""
        if name not in core.models:
            raise ToolError(f"Unknown model {name!r}. Registered: {', '.join(s.alias for s in core.models)}.")
        can = servable_models(core)[name]
        if not can["servable"]:
            raise ToolError(f"{name!r} cannot be served now: {can['reason']}. list_models shows which can.")
        with tool_errors():
            result = await core.switch_model(name, warm=warm, by="mcp")
        return SwitchView(previous=result.previous, active=result.active, warmup_s=result.warmup_s)

    # --- health and the endpoint -----------------------------------------------------------
    @mcp.tool(title="System health", annotations=READ_ONLY, meta=UI_META)
    async def health(
        probe: Annotated[
            bool,
            Field(
                description="Also ask the active model for one token. Costs money: a billed RunPod job that may "
                "cold-start a scaled-to-zero GPU (billed until its idle timeout), possibly hedged to a paid fallback."
            ),
        ] = False,
    ) -> HealthView:
        """System checks, each with status and a fix hint, plus key live figures.

        Free by default: reads RunPod's /health and each provider's own state, sends no job.
        probe=true adds a one-token prompt, which is a billed job.
        """
        return health_view(await run_checks(core, probe=probe))

    @mcp.tool(title="RunPod endpoint status", annotations=READ_ONLY, meta=UI_META)
    async def endpoint_status() -> EndpointStatusView:
        """The RunPod endpoint: workers, queue, current image, rollout and recent deploys."""
        try:
            chosen = get_deployer()
        except ConfigError:
            chosen = None
        return await views.endpoint_status(core, chosen)

    @mcp.tool(title="Purge the RunPod queue", annotations=DESTRUCTIVE)
    async def purge_queue(approval: PurgeApproval, confirm: bool = False) -> PurgeView:
        """Drop every queued (not yet running) job on the RunPod endpoint. Asks the user first."""
        if not approved(approval):
            return PurgeView(purged=False, status="not confirmed: nothing changed")
        client = runpod_client(core)
        if client is None:
            raise ToolError(f"RunPod not configured: there is no queue to purge. {RUNPOD_NOT_CONFIGURED_HINT}")
        with tool_errors():
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

    @mcp.tool(title="Deploy a worker image", annotations=DESTRUCTIVE)
    async def deploy(
        ctx: Context,
        image: Annotated[str, Field(description="Pinned worker image: registry/worker:1.4.2 or ...@sha256:<digest>.")],
        approval: DeployApproval,
        env: Annotated[dict[str, str] | None, Field(description="Replaces the endpoint's whole env.")] = None,
        confirm: Annotated[bool, Field(description="The user confirmed in chat (clients without dialogs).")] = False,
        follow_s: FollowSeconds = 40.0,
    ) -> DeployView:
        """Roll a new worker image onto the RunPod endpoint and follow the rollout. Asks the user first."""
        if not approved(approval):
            return DeployView(started=False, status="declined", image=image, hint="Nothing changed.")
        with tool_errors():
            record = await get_deployer().start(image, env=env)
        view = DeployView(
            started=True, status=record.status, image=image, previous_image=record.previous_image, deploy_id=record.id
        )
        return await _follow(ctx, record, view, follow_s)

    @mcp.tool(title="Roll back the last deploy", annotations=DESTRUCTIVE)
    async def rollback(
        ctx: Context, approval: RollbackApproval, confirm: bool = False, follow_s: FollowSeconds = 40.0
    ) -> DeployView:
        """Restore the image the last deploy replaced, and follow the rollout. Asks the user first."""
        if not approved(approval):
            return DeployView(started=False, status="declined", hint="Nothing changed.")
        with tool_errors():
            undone, record = await get_deployer().rollback()
        view = DeployView(
            started=True, status=record.status, image=record.image, previous_image=undone.image, deploy_id=record.id
        )
        return await _follow(ctx, record, view, follow_s)
