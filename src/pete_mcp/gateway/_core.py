"""The core: one object, built once, shared by every face (MCP, VAPI, dashboard, CLI).

`build_core(settings)` is the one place that wires settings, store, registry, providers,
router, metrics and events. Faces call `core.chat(...)`, `core.switch_model(...)` and read
`core.metrics`; none of them talks to a provider or the store on its own.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import anyio
import httpx

from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core import (
    CONVERSATION,
    DEFAULT_RESERVE_TOKENS,
    Completion,
    Conversations,
    EventBus,
    InputError,
    JobStarted,
    ModelRegistry,
    ModelSpec,
    PeteError,
    Settings,
    Store,
    TextDelta,
    WarmsForCalls,
)
from pete_mcp.metrics import Metrics, RequestRecord
from pete_mcp.routing import (
    Router,
    SwitchRecord,
    record_switch,
    switch_error,
    switch_history,
    warm_and_verify,
)
from pete_mcp.runpod import KeepWarm

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
    _exit: AsyncExitStack = field(default_factory=AsyncExitStack)
    _switch_lock: anyio.Lock = field(default_factory=anyio.Lock)

    # --- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> Core:
        await anyio.to_thread.run_sync(self.store.open)
        persisted = await self.store.get_state(ACTIVE_MODEL_KEY)
        self.active_alias = persisted if persisted in self.models else self.models.default
        await self._exit.enter_async_context(self.router)
        if self.keepwarm is not None:
            await self._exit.enter_async_context(self.keepwarm)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._exit.aclose()
        await self.http.aclose()
        self.store.close()

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
        """
        spec = self.models.get(alias)
        async with self._switch_lock:
            previous = self.active_alias
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
        routes = self.router.usable_routes(spec)
        provider = self.router.providers.get(routes[0].provider) if routes else None
        if not isinstance(provider, WarmsForCalls):
            return None
        return await provider.warm_for_call(routes[0].model or spec.primary.model)

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
        self.metrics.active_jobs += 1
        completion: Completion | None = None
        conversation = CONVERSATION.set(turn.conversation_id)  # a provider may keep the call on one worker
        try:
            async for event in self.router.stream(spec, context, turn.options):
                if isinstance(event, Completion):
                    completion = event
                else:
                    yield event
        except PeteError as exc:
            self._record(spec, turn, None, outcome=exc.code, error=str(exc))
            raise
        finally:
            self.metrics.active_jobs -= 1
            with contextlib.suppress(ValueError):  # closed from another context: nothing to restore there
                CONVERSATION.reset(conversation)
        assert completion is not None, "a provider stream must end with a Completion"
        if turn.conversation_id:
            await self.conversations.record_reply(
                turn.conversation_id,
                completion.text,
                source=turn.source,
                model=completion.model,
                provider=completion.provider,
            )
        self._record(spec, turn, completion, outcome="ok")
        yield Reply(
            completion.text,
            spec.alias,
            completion.model,
            completion.provider,
            completion.finish_reason,
            completion,
            turn.conversation_id,
        )

    async def complete(self, turn: ChatTurn) -> Reply:
        """`chat` for callers that want only the final reply."""
        async for event in self.chat(turn):
            if isinstance(event, Reply):
                return event
        raise AssertionError("chat ended without a Reply")  # pragma: no cover

    def _record(
        self, spec: ModelSpec, turn: ChatTurn, done: Completion | None, *, outcome: str, error: str | None = None
    ) -> None:
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
        )
        self.metrics.record(rec)
        self.events.publish(
            "request.done",
            **{k: getattr(rec, k) for k in ("provider", "model", "alias", "source", "outcome", "ttft_s")},
        )


def new_conversation_id() -> str:
    return f"conv-{uuid.uuid4().hex[:12]}"
