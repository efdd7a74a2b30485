"""The core: one object, built once, shared by every face (MCP, VAPI, dashboard, CLI).

`build_core(settings)` is the one place that wires settings, store, registry, providers,
router, metrics and events. Faces call `core.chat(...)`, `core.switch_model(...)` and read
`core.metrics`; none of them talks to a provider or the store on its own.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import anyio
import httpx

from .contract import ChatOptions, Message
from .conversations import Conversations
from .errors import InputError, PeteError
from .events import EventBus
from .metrics import Metrics, RequestRecord
from .models import ModelRegistry, ModelSpec, Route
from .providers.base import Completion, JobStarted, ModelProvider, TextDelta
from .router import Router
from .settings import Settings
from .store import Store

__all__ = ["ChatEvent", "ChatTurn", "Core", "Reply", "SwitchResult", "build_core", "new_conversation_id"]

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
    _exit: AsyncExitStack = field(default_factory=AsyncExitStack)
    _switch_lock: anyio.Lock = field(default_factory=anyio.Lock)

    # --- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> Core:
        await anyio.to_thread.run_sync(self.store.open)
        persisted = await self.store.get_state(ACTIVE_MODEL_KEY)
        self.active_alias = persisted if persisted in self.models else self.models.default
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
        """Make `alias` the active model: warm it first, then swap atomically and persist.

        Requests already running keep the model they resolved when they started.
        """
        spec = self.models.get(alias)
        async with self._switch_lock:
            previous = self.active_alias
            warmup_s = await self.warm(spec) if warm else None
            self.active_alias = alias
            await self.store.set_state(ACTIVE_MODEL_KEY, alias)
            await self.store.execute(
                "INSERT INTO switches(at, from_model, to_model, warmup_s, by, ok) VALUES (?, ?, ?, ?, ?, 1)",
                (time.time(), previous, alias, warmup_s, by),
            )
        self.events.publish("model.switched", previous=previous, active=alias, warmup_s=warmup_s, by=by)
        return SwitchResult(previous, alias, warmup_s)

    async def warm(self, spec: ModelSpec) -> float:
        route: Route = self.router.routes(spec)[0]
        return await self.router.provider(route.provider).warm(route.model)

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
            context = await self.conversations.context(turn.conversation_id, spec)
        else:
            context = list(turn.messages)
            if spec.system_prompt and not any(m.role == "system" for m in context):
                context.insert(0, Message(role="system", content=spec.system_prompt))
        self.metrics.active_jobs += 1
        completion: Completion | None = None
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


def default_providers(settings: Settings, http: httpx.AsyncClient) -> dict[str, ModelProvider]:
    """The providers the settings configure: RunPod (real or local) and any fallbacks."""
    from .providers.openai_compatible import OpenAICompatibleProvider

    providers: dict[str, ModelProvider] = {}
    try:
        from .providers.runpod import RunPodProvider
        from .runpod_client import runpod_client_from_settings

        providers["runpod"] = RunPodProvider(
            runpod_client_from_settings(settings, http), use_openai_route=settings.runpod_use_openai_route
        )
    except ImportError:  # pragma: no cover - during bootstrap only
        log.warning("RunPod provider not available")
    if settings.openrouter_api_key is not None:
        providers["openrouter"] = OpenAICompatibleProvider(
            "openrouter",
            http,
            base_url=settings.openrouter_base_url,
            api_key=settings.openrouter_api_key.get_secret_value(),
        )
    if settings.ollama_url:
        providers["ollama"] = OpenAICompatibleProvider("ollama", http, base_url=settings.ollama_url.rstrip("/") + "/v1")
    return providers


def fallback_routes(settings: Settings) -> tuple[Route, ...]:
    routes: list[Route] = []
    if settings.openrouter_api_key is not None:
        routes.append(Route("openrouter", settings.openrouter_model))
    return tuple(routes)


def build_core(
    settings: Settings,
    *,
    http: httpx.AsyncClient | None = None,
    providers: Mapping[str, ModelProvider] | None = None,
    registry: ModelRegistry | None = None,
) -> Core:
    """Wire the core. Use as `async with build_core(settings) as core:`."""
    http = http or httpx.AsyncClient(
        timeout=httpx.Timeout(settings.runpod_timeout_s, connect=5.0),
        limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
    )
    events = EventBus()
    store = Store(settings.data_dir / "pete.sqlite3")
    registry = registry or ModelRegistry.from_config(
        local=not settings.uses_real_runpod,
        models_file=settings.models_file,
        fallbacks=fallback_routes(settings),
        default=settings.active_model,
    )
    providers = dict(providers) if providers is not None else default_providers(settings, http)
    return Core(
        settings=settings,
        http=http,
        store=store,
        models=registry,
        router=Router(providers, events),
        metrics=Metrics(),
        events=events,
        conversations=Conversations(store),
    )
