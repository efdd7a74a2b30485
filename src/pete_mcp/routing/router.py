"""The router: picks the provider for each reply along the model's chain.

How it decides, per request (docs/models-and-fallback.md has the figures):

1. Start the first route whose circuit breaker allows it (when every breaker is open, the
   route closest to its half-open probe is tried anyway: a request never fails unasked).
2. Race to the first token. If the running attempt fails before its first token, start the
   next route at once (failover). If no first token has arrived after the hedge delay
   (`HedgePolicy`: a fixed `hedge_after_s`, or the recent p95 TTFT clamped to a floor and a
   ceiling) and the hedge budget has a token, start the next route *in parallel* (hedge).
   A provider that knows its endpoint's state for free (`ReportsReadiness`: RunPod's
   `/health`) changes that: with no idle worker the hedge goes at once; a cold endpoint
   goes behind the other routes for this turn and is warmed for the next ones.
   Watchdogs: an attempt with no first token after `first_token_s` is given up for the
   next route; a reply that stalls for `stall_s` after its first token is continued by the
   next route from the text already sent (one reply, as the caller hears it).
3. The first attempt to produce a token wins; every other attempt is cancelled at once
   (its generator is closed, which cancels its RunPod job). Only the winner's tokens are
   ever forwarded, so a reply never mixes two providers' text.

The router holds what lives across requests (providers, breakers, hedge policy, counters,
the task group attempts run in, entered with the core); `_race.Race` runs one request.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any

import anyio
from anyio.abc import TaskGroup
from opentelemetry import trace

from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core import (
    Completion,
    ConfigError,
    EventBus,
    ModelProvider,
    ModelSpec,
    Route,
    StreamEvent,
    close_stream,
    served_options,
)

from ._attempt import RouterStats, Watchdogs
from ._race import Race, StopHandle
from .breaker import BreakerPolicy, BreakerState, CircuitBreaker
from .hedging import HedgePolicy

__all__ = ["Router", "RouterStats", "Watchdogs"]

log = logging.getLogger(__name__)


class Router:
    """Routes each reply along a model's provider chain with breakers, failover and hedging."""

    def __init__(
        self,
        providers: Mapping[str, ModelProvider],
        events: EventBus,
        *,
        hedge: HedgePolicy | None = None,
        breaker_policy: BreakerPolicy | None = None,
        watchdogs: Watchdogs | None = None,
    ) -> None:
        self.providers = dict(providers)
        self.events = events
        self.hedge = hedge or HedgePolicy()
        self.watchdogs = watchdogs or Watchdogs()
        self.stats = RouterStats()
        self.breakers = {
            name: CircuitBreaker(name, breaker_policy, on_change=self._breaker_changed) for name in self.providers
        }
        self._tg: TaskGroup | None = None
        self._providers_open = AsyncExitStack()
        self.tracer: trace.Tracer = trace.NoOpTracer()  # build_core sets the core's tracer

    # --- lifecycle: the task group attempts run in, and providers with their own tasks -------
    async def __aenter__(self) -> Router:
        for provider in self.providers.values():
            if isinstance(provider, AbstractAsyncContextManager):  # e.g. RunPod's shared /health poll
                await self._providers_open.enter_async_context(provider)  # pyright: ignore[reportUnknownArgumentType]
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        tg, self._tg = self._tg, None
        try:
            if tg is not None:
                tg.cancel_scope.cancel()
                await tg.__aexit__(*exc)
        finally:
            await self._providers_open.aclose()

    # --- lookup -------------------------------------------------------------------------------
    def provider(self, name: str) -> ModelProvider:
        try:
            return self.providers[name]
        except KeyError:
            raise ConfigError(
                f"provider {name!r} is not configured.", hint=f"Configured: {', '.join(self.providers)}."
            ) from None

    def routes(self, spec: ModelSpec) -> list[Route]:
        """The model's chain, restricted to configured providers."""
        return [r for r in spec.chain if r.provider in self.providers]

    def usable_routes(self, spec: ModelSpec) -> list[Route]:
        """The configured routes whose breaker is not open."""
        return [r for r in self.routes(spec) if self.breakers[r.provider].state is not BreakerState.OPEN]

    def breaker_states(self) -> dict[str, dict[str, str | int | float]]:
        return {name: b.snapshot() for name, b in self.breakers.items()}

    # --- streaming ----------------------------------------------------------------------------
    async def stream(
        self,
        spec: ModelSpec,
        messages: Sequence[Message],
        options: ChatOptions,
        *,
        stop: StopHandle | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Stream one reply for `spec`: JobStarted (winner's), TextDeltas, one Completion.

        Raises:
            ConfigError: no configured provider serves the model.
            InputError: the request itself is unusable (no provider would take it).
            ProviderError: every route failed before its first token, or the chosen one
                failed after it (a reply is never continued on another provider).
        """
        routes = self.routes(spec)
        if not routes:
            raise ConfigError(
                f"no configured provider serves {spec.alias!r}.",
                hint=f"Its chain is {', '.join(r.provider for r in spec.chain)}; configured: "
                f"{', '.join(self.providers) or 'none'}.",
            )
        if self._tg is None:
            raise ConfigError("the router is not running: use `async with core:` (or `async with router:`).")
        self.stats.requests += 1
        self.hedge.budget.earn()
        race = Race(self, self._tg, spec, routes, messages, served_options(spec, options), stop)
        if isinstance(self.tracer, trace.NoOpTracer):  # tracing off: no span, no context switch
            async for event in race.run():
                yield event
            return
        with self.tracer.start_as_current_span(
            f"route {spec.alias}",
            attributes={"gen_ai.request.model": spec.alias, "pete.route.chain": [_route_name(r) for r in race.routes]},
        ) as span:
            events = race.run()
            try:
                async for event in events:
                    if isinstance(event, Completion):
                        span.set_attribute("pete.route.winner", event.provider)
                    yield event
            finally:
                await close_stream(events)  # here, inside the span: its attempts end before it does
                span.set_attributes(_race_attributes(race))

    # --- breaker events -----------------------------------------------------------------------
    def _breaker_changed(self, provider: str, old: BreakerState, new: BreakerState, reason: str) -> None:
        if new is BreakerState.OPEN and old is BreakerState.CLOSED:
            log.warning("provider %s is down: %s", provider, reason)
            self.events.publish(
                "provider.down",
                provider=provider,
                reason=reason,
                retry_in_s=self.breakers[provider].retry_in_s(),
                source="breaker",
            )
        elif new is BreakerState.CLOSED:
            log.warning("provider %s is back up", provider)
            self.events.publish("provider.up", provider=provider, reason=reason, source="breaker")


def _route_name(route: Route) -> str:
    return f"{route.provider}:{route.model}"


def _race_attributes(race: Race) -> dict[str, int]:
    """How the race went, on the router's span: attempts by kind (each attempt is its own child span)."""
    kinds = [attempt.kind for attempt in race.attempts]
    return {
        "pete.route.attempts": len(kinds),
        "pete.route.hedges": kinds.count("hedge"),
        "pete.route.failovers": kinds.count("failover"),
        "pete.route.bridges": kinds.count("bridge"),
    }
