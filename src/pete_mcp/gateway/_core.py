"""The core: one object, built once, shared by every face (MCP, VAPI, dashboard, CLI).

`build_core(settings)` is the one place that wires settings, store, registry, providers,
router, metrics and events. Faces call `core.chat(...)`, `core.switch_model(...)` and read
`core.metrics`; none of them talks to a provider or the store on its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import anyio
import httpx
from opentelemetry import context as otel_context
from opentelemetry import trace

from pete_mcp.contract import ChatOptions, Message, Usage
from pete_mcp.core import (
    CONVERSATION,
    DEFAULT_RESERVE_TOKENS,
    Cancelled,
    Completion,
    Conversations,
    EventBus,
    InputError,
    JobStarted,
    ModelRegistry,
    ModelSpec,
    NotFound,
    PeteError,
    Settings,
    Store,
    TextDelta,
    WarmsForCalls,
    capable,
    close_stream,
)
from pete_mcp.core.errors import QualityGateRefused
from pete_mcp.core.eval_scores import QualityGate
from pete_mcp.core.provider import estimate_prompt_tokens
from pete_mcp.metrics import Metrics, RequestRecord, span_attributes
from pete_mcp.routing import (
    Router,
    SwitchRecord,
    record_switch,
    switch_error,
    switch_history,
    warm_and_verify,
)
from pete_mcp.runpod import KeepWarm

from ._calls import CallBoard
from ._jobs import JobBook

__all__ = ["ChatEvent", "ChatTurn", "Core", "Reply", "SwitchResult", "new_conversation_id"]

log = logging.getLogger(__name__)

ACTIVE_MODEL_KEY = "active_model"


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """One request for a reply.

    `messages` are this turn's new messages (appended to the conversation when one is
    named) or, without a conversation, the whole context. `model` is an alias; None means
    the active model, resolved once when the turn starts.
    """

    messages: Sequence[Message]
    model: str | None = None
    conversation_id: str | None = None
    options: ChatOptions = field(default_factory=ChatOptions)
    source: str = "api"


@dataclass(frozen=True, slots=True)
class Reply:
    """The final event of `Core.chat`: the whole reply and who produced it."""

    text: str
    alias: str
    model: str
    provider: str
    finish_reason: str
    completion: Completion
    conversation_id: str | None


@dataclass(frozen=True, slots=True)
class SwitchResult:
    previous: str
    active: str
    warmup_s: float | None
    provider: str | None = None  # who answered the warm-up probe
    sample: str = ""  # what the new model said to it


ChatEvent = TextDelta | JobStarted | Reply


@dataclass
class Core:
    settings: Settings
    http: httpx.AsyncClient
    store: Store
    models: ModelRegistry
    router: Router
    metrics: Metrics
    events: EventBus
    conversations: Conversations
    active_alias: str = ""
    keepwarm: KeepWarm | None = None
    jobs: JobBook = field(default_factory=JobBook)
    calls: CallBoard = field(init=False)
    _exit: AsyncExitStack = field(default_factory=AsyncExitStack)
    _switch_lock: anyio.Lock = field(default_factory=anyio.Lock)

    def __post_init__(self) -> None:
        self.calls = CallBoard(self.events)

    # --- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> Core:
        await anyio.to_thread.run_sync(self.store.open)
        self._exit.callback(self.store.close)
        persisted = await self.store.get_state(ACTIVE_MODEL_KEY)
        self.active_alias = persisted if persisted in self.models else self.models.default
        await self._exit.enter_async_context(self.router)
        if self.keepwarm is not None:
            await self._exit.enter_async_context(self.keepwarm)
        background = await self._exit.enter_async_context(anyio.create_task_group())
        self._exit.callback(background.cancel_scope.cancel)
        background.start_soon(self.store.run_spool)
        background.start_soon(self.store.watch_state, self._state_changed)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._exit.aclose()
        if self.metrics.telemetry is not None:
            self.metrics.fold()
            await anyio.to_thread.run_sync(self.metrics.telemetry.shutdown)
        await self.http.aclose()

    async def _state_changed(self, key: str) -> None:
        """Another replica changed shared state (`"*"`: maybe, after reconnecting): follow it."""
        if key not in (ACTIVE_MODEL_KEY, "*"):
            return
        try:
            alias = await self.store.get_state(ACTIVE_MODEL_KEY)
        except PeteError as exc:
            log.warning("could not read the active model after a change: %s", exc)
            return
        if alias in self.models and alias != self.active_alias:
            previous, self.active_alias = self.active_alias, alias  # running requests keep their spec
            self.events.publish("model.switched", previous=previous, active=alias, warmup_s=None, by="replica")

    # --- models ----------------------------------------------------------------------------
    @property
    def active(self) -> ModelSpec:
        return self.models.get(self.active_alias)

    async def switch_model(self, alias: str, *, warm: bool = True, by: str = "api") -> SwitchResult:
        """Make `alias` the active model with zero downtime: warm it, check it answers, then swap.

        The swap is one assignment after the check, so every request that starts afterwards
        gets the new model and requests already running finish on the one they resolved
        when they started. Every try is recorded in the switch history.

        Raises:
            NotFound: no such alias (nothing recorded).
            ProviderError / ProviderTimeout / ConfigError: the new model did not warm up or
                answer within `switch_budget_s`; the old model stays active and the failed
                try is recorded with the reason.
            QualityGateRefused: EVAL_MIN_SCORE is set and the alias's latest eval score is
                below it (recorded as a failed try; nothing is warmed).
        """
        spec = self.models.get(alias)
        async with self._switch_lock:
            previous = self.active_alias
            try:
                await QualityGate.from_settings(self.settings, self.store).check([alias], action=f"switch to {alias!r}")
            except QualityGateRefused as exc:
                await record_switch(
                    self.store, from_model=previous, to_model=alias, warmup_s=None, by=by, ok=False, detail=str(exc)
                )
                raise
            check = None
            if warm:
                try:
                    check = await warm_and_verify(self.router, spec, budget_s=self.settings.switch_budget_s)
                except PeteError as exc:
                    error = switch_error(exc, target=alias, active=previous)
                    await record_switch(
                        self.store, from_model=previous, to_model=alias, warmup_s=None, by=by, ok=False, detail=str(exc)
                    )
                    self.events.publish("model.switch_failed", previous=previous, target=alias, reason=str(exc), by=by)
                    raise error from exc
            warmup_s = round(check.warmup_s, 3) if check else None
            await self.store.set_state(ACTIVE_MODEL_KEY, alias)
            self.active_alias = alias
            await record_switch(
                self.store,
                from_model=previous,
                to_model=alias,
                warmup_s=warmup_s,
                by=by,
                ok=True,
                detail=f"{check.provider} answered {check.sample!r}" if check else "switched without warm-up",
            )
        self.events.publish("model.switched", previous=previous, active=alias, warmup_s=warmup_s, by=by)
        return SwitchResult(previous, alias, warmup_s, check.provider if check else None, check.sample if check else "")

    async def warm(self, spec: ModelSpec) -> float:
        """Warm `spec` on its first usable route and check it answers; seconds taken."""
        check = await warm_and_verify(self.router, spec, budget_s=self.settings.switch_budget_s)
        return check.warmup_s

    async def warm_for_call(self, spec: ModelSpec | None = None) -> bool | None:
        """A call is starting: warm `spec`'s first route (default the active model) for its coming
        turns if its endpoint has no idle worker (RunPod: a free `/health` decides). True when a
        warm-up started, False when a worker is idle already, None when that provider cannot
        tell for free (the caller may `warm` instead)."""
        spec = spec or self.active
        warmer = self._call_warmer(spec)
        if warmer is None:
            return None
        provider, model = warmer
        return await provider.warm_for_call(model)

    def warms_for_calls(self, spec: ModelSpec | None = None) -> bool:
        """Whether `warm_for_call` could do anything for `spec` (default the active model): decided
        without awaiting, so a call's first turn spawns no task when the answer is no."""
        return self._call_warmer(spec or self.active) is not None

    def _call_warmer(self, spec: ModelSpec) -> tuple[WarmsForCalls, str] | None:
        routes = self.router.usable_routes(spec)
        provider = self.router.providers.get(routes[0].provider) if routes else None
        if provider is None or not capable(provider, WarmsForCalls):
            return None
        return provider, routes[0].model or spec.primary.model

    async def switch_history(self, limit: int = 50) -> list[SwitchRecord]:
        """Recent model switches, newest first, failed tries included (when, from, to, warm-up, by)."""
        return await switch_history(self.store, limit=limit)

    # --- chat ------------------------------------------------------------------------------
    async def chat(self, turn: ChatTurn) -> AsyncIterator[ChatEvent]:
        """Stream one reply: `TextDelta`s (and `JobStarted`), then exactly one `Reply`.

        The turn's messages are persisted before the model is asked, the reply after it
        finishes, so a failure never loses what the caller said.
        """
        spec = self.models.get(turn.model) if turn.model else self.active
        if not turn.messages and not turn.conversation_id:
            raise InputError("a chat turn needs at least one message.")
        if turn.conversation_id:
            await self.conversations.record(turn.conversation_id, turn.messages, source=turn.source)
            context = await self.conversations.context(
                turn.conversation_id, spec, reserve=turn.options.max_tokens or DEFAULT_RESERVE_TOKENS
            )
        else:
            context = list(turn.messages)
            if spec.system_prompt and not any(m.role == "system" for m in context):
                context.insert(0, Message(role="system", content=spec.system_prompt))
        job = self.jobs.started(
            provider=spec.primary.provider,
            model=spec.primary.model,
            alias=spec.alias,
            source=turn.source,
            conversation_id=turn.conversation_id,
        )
        span = self._turn_span(spec, turn)
        token = otel_context.attach(trace.set_span_in_context(span)) if span is not None else None
        self.metrics.active_jobs += 1
        completion: Completion | None = None
        conversation = CONVERSATION.set(turn.conversation_id)  # a provider may keep the call on one worker
        try:
            events = self.router.stream(spec, context, turn.options, stop=job.stop)
            try:
                async for event in events:
                    if isinstance(event, Completion):
                        completion = _with_input_tokens(event, context)
                        continue
                    if isinstance(event, JobStarted):
                        job.job_id = event.job_id
                    elif job.first_token_at is None:
                        job.first_token_at = self.jobs.clock()
                        job.status = "streaming"
                    yield event
            finally:  # closed here, not later by the garbage collector: the router's span ends in order
                await close_stream(events)
        except PeteError as exc:
            self.jobs.finished(job, status="cancelled" if isinstance(exc, Cancelled) else "failed", error=str(exc))
            rec = self._record(spec, turn, None, outcome=exc.code, error=str(exc))
            if span is not None:
                span.set_attributes(span_attributes(rec))
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)))
            raise
        finally:
            self.metrics.active_jobs -= 1
            if job.ended_at is None and completion is None:
                self.jobs.finished(job, status="cancelled", error="the caller left before the reply ended")
            if token is not None:
                otel_context.detach(token)
            if span is not None and completion is None:
                span.end()
            with contextlib.suppress(ValueError):  # closed from another context: nothing to restore there
                CONVERSATION.reset(conversation)
        assert completion is not None, "a provider stream must end with a Completion"
        job.provider, job.model, job.worker_id = completion.provider, completion.model, completion.worker_id
        job.ttft_s, job.total_s = completion.ttft_s, completion.total_s
        job.input_tokens, job.output_tokens = completion.usage.prompt_tokens, completion.usage.completion_tokens
        self.jobs.finished(job, status="completed")
        if turn.conversation_id:
            await self.conversations.record_reply(
                turn.conversation_id,
                completion.text,
                source=turn.source,
                model=completion.model,
                provider=completion.provider,
            )
        rec = self._record(spec, turn, completion, outcome="ok")
        if span is not None:
            span.set_attributes(
                {
                    **span_attributes(rec),
                    "gen_ai.usage.input_tokens": rec.input_tokens,
                    "gen_ai.usage.output_tokens": rec.output_tokens,
                }
            )
            span.end()
        yield Reply(
            completion.text,
            spec.alias,
            completion.model,
            completion.provider,
            completion.finish_reason,
            completion,
            turn.conversation_id,
        )

    @property
    def tracer(self) -> trace.Tracer:
        """The tracer every span of a turn comes from (the faces' too): a no-op one while tracing is off."""
        return self.router.tracer

    def _turn_span(self, spec: ModelSpec, turn: ChatTurn) -> trace.Span | None:
        """The core's span of one turn (`chat {alias}`), under the face's span; None while tracing is off."""
        tracer = self.router.tracer
        if isinstance(tracer, trace.NoOpTracer):
            return None
        attrs: dict[str, str | int | float] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": spec.alias,
            "pete.source": turn.source,
        }
        if turn.conversation_id:
            attrs["gen_ai.conversation.id"] = turn.conversation_id
        if turn.options.max_tokens is not None:
            attrs["gen_ai.request.max_tokens"] = turn.options.max_tokens
        return tracer.start_span(f"chat {spec.alias}", attributes=attrs)

    async def cancel_job(self, some_id: str, *, by: str = "api") -> dict[str, object]:
        """Stop a request in flight (its request id or its RunPod job id): cancel the provider's job, end the turn.

        Raises:
            NotFound: no such request is running here (finished already, or never ran on this gateway).
        """
        job = self.jobs.get(some_id)
        if job is None:
            raise NotFound(
                f"no running job {some_id!r} on this gateway: it has finished, or never ran here.",
                hint="List the running ones at GET /api/jobs or the MCP resource pete://jobs.",
            )
        if job.job_id:
            provider = self.router.providers.get(job.provider)
            if provider is not None:
                with anyio.move_on_after(5.0):
                    await provider.cancel(job.job_id)
        job.stop.stop(f"cancelled by {by}")
        self.events.publish("job.cancelled", id=job.id, job_id=job.job_id, provider=job.provider, by=by)
        return job.view(self.jobs.clock())

    async def complete(self, turn: ChatTurn) -> Reply:
        """`chat` for callers that want only the final reply."""
        async for event in self.chat(turn):
            if isinstance(event, Reply):
                return event
        raise AssertionError("chat ended without a Reply")  # pragma: no cover

    def _record(
        self, spec: ModelSpec, turn: ChatTurn, done: Completion | None, *, outcome: str, error: str | None = None
    ) -> RequestRecord:
        rec = RequestRecord(
            provider=done.provider if done else spec.primary.provider,
            model=done.model if done else spec.primary.model,
            alias=spec.alias,
            source=turn.source,
            outcome=outcome,
            ttft_s=done.ttft_s if done else None,
            total_s=done.total_s if done else 0.0,
            output_tokens=done.usage.completion_tokens if done else 0,
            error=error,
            input_tokens=done.usage.prompt_tokens if done else 0,
            finish_reason=done.finish_reason if done else "",
        )
        self.metrics.record(rec)
        self.events.publish(
            "request.done",
            **{k: getattr(rec, k) for k in ("provider", "model", "alias", "source", "outcome", "ttft_s")},
        )
        return rec


def _with_input_tokens(completion: Completion, context: Sequence[Message]) -> Completion:
    """The completion, its input tokens estimated from the context when the server counted none."""
    if completion.usage.prompt_tokens:
        return completion
    usage = Usage(prompt_tokens=estimate_prompt_tokens(context), completion_tokens=completion.usage.completion_tokens)
    return dataclasses.replace(completion, usage=usage)


def new_conversation_id() -> str:
    return f"conv-{uuid.uuid4().hex[:12]}"
