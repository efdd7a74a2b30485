"""The router: picks the provider for each reply along the model's chain.

How it decides, per request (docs/models-and-fallback.md has the figures):

1. Start the first route whose circuit breaker allows it (when every breaker is open, the
   route closest to its half-open probe is tried anyway: a request never fails unasked).
2. Race to the first token. If the running attempt fails before its first token, start the
   next route at once (failover). If no first token has arrived after the hedge delay
   (`HedgePolicy`: a fixed `hedge_after_s`, or the recent p95 TTFT clamped to a floor and a
   ceiling) and the hedge budget has a token, start the next route *in parallel* (hedge).
3. The first attempt to produce a token wins; every other attempt is cancelled at once
   (its generator is closed, which cancels its RunPod job). Only the winner's tokens are
   ever forwarded, so a reply never mixes two providers' text.

Each attempt runs in its own task in the router's task group (entered with the core) and
sends its events through one channel; the provider's generator therefore lives in a single
task from start to close, which is what cancellation and cleanup need.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .contract import ChatOptions, Message
from .errors import ConfigError, InputError, NotFound, ProviderError, ProviderUnavailable
from .events import EventBus
from .models import ModelSpec, Route
from .providers.base import Completion, JobStarted, ModelProvider, StreamEvent, TextDelta, close_stream
from .providers.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from .providers.hedging import HedgePolicy

__all__ = ["Router", "RouterStats"]

log = logging.getLogger(__name__)

_Item = tuple[int, StreamEvent | BaseException]


@dataclass
class RouterStats:
    """Counters since start: `attempts - requests` is what failover and hedging cost upstream."""

    requests: int = 0
    attempts: int = 0
    hedges: int = 0
    hedge_wins: int = 0
    failovers: int = 0
    cancelled: int = 0
    failed: int = 0

    @property
    def extra_requests(self) -> int:
        return self.attempts - self.requests


@dataclass(eq=False)
class _Attempt:
    index: int
    route: Route
    provider: ModelProvider
    breaker: CircuitBreaker
    kind: str  # "primary" | "hedge" | "failover"
    started_at: float
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    job: JobStarted | None = None
    done: bool = False  # failed, or cancelled: nothing more is read from it
    settled: bool = False  # its breaker has been told the outcome

    def settle(self, outcome: str, reason: str = "") -> None:
        if self.settled:
            return
        self.settled = True
        if outcome == "success":
            self.breaker.record_success()
        elif outcome == "failure":
            self.breaker.record_failure(reason)
        else:
            self.breaker.record_cancelled()


class Router:
    """Routes each reply along a model's provider chain with breakers, failover and hedging."""

    def __init__(
        self,
        providers: Mapping[str, ModelProvider],
        events: EventBus,
        *,
        hedge: HedgePolicy | None = None,
        breaker_policy: BreakerPolicy | None = None,
    ) -> None:
        self.providers = dict(providers)
        self.events = events
        self.hedge = hedge or HedgePolicy()
        self.stats = RouterStats()
        self.breakers = {
            name: CircuitBreaker(name, breaker_policy, on_change=self._breaker_changed) for name in self.providers
        }
        self._tg: TaskGroup | None = None

    # --- lifecycle: the task group attempts run in -------------------------------------------
    async def __aenter__(self) -> Router:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        tg, self._tg = self._tg, None
        if tg is not None:
            tg.cancel_scope.cancel()
            await tg.__aexit__(*exc)

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
        self, spec: ModelSpec, messages: Sequence[Message], options: ChatOptions
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
        race = _Race(self, self._tg, spec, routes, messages, options)
        async for event in race.run():
            yield event

    # --- breaker events -----------------------------------------------------------------------
    def _breaker_changed(self, provider: str, old: BreakerState, new: BreakerState, reason: str) -> None:
        if new is BreakerState.OPEN and old is BreakerState.CLOSED:
            log.warning("provider %s is down: %s", provider, reason)
            self.events.publish(
                "provider.down", provider=provider, reason=reason, retry_in_s=self.breakers[provider].retry_in_s()
            )
        elif new is BreakerState.CLOSED:
            log.warning("provider %s is back up", provider)
            self.events.publish("provider.up", provider=provider, reason=reason)


def _fails_over(exc: BaseException) -> bool:
    """Errors another provider might not have. A bad request (400) would fail everywhere."""
    if isinstance(exc, NotFound):
        return True
    return not isinstance(exc, InputError)


class _Race:
    """One request's attempts along the chain, racing to the first token."""

    def __init__(
        self,
        router: Router,
        tg: TaskGroup,
        spec: ModelSpec,
        routes: list[Route],
        messages: Sequence[Message],
        options: ChatOptions,
    ) -> None:
        self.router = router
        self.tg = tg
        self.spec = spec
        self.routes = routes
        self.messages = messages
        self.options = options
        self.attempts: list[_Attempt] = []
        self.errors: list[tuple[str, BaseException]] = []
        self.next_route = 0
        self.began = time.monotonic()
        self.send: MemoryObjectSendStream[_Item]
        self.receive: MemoryObjectReceiveStream[_Item]
        self.send, self.receive = anyio.create_memory_object_stream[_Item](64)

    # --- the race ----------------------------------------------------------------------------
    async def run(self) -> AsyncIterator[StreamEvent]:
        try:
            self._start_next("primary", reason="")
            winner, first = await self._first_token()
            self._cancel_others(winner)
            if winner.job is not None:
                yield winner.job
            yield first
            completion = first if isinstance(first, Completion) else None
            while completion is None:
                index, item = await self.receive.receive()
                if index != winner.index:
                    continue
                if isinstance(item, BaseException):
                    winner.settle("failure", str(item))
                    self.router.stats.failed += 1
                    raise item
                if isinstance(item, Completion):
                    completion = item
                yield item
            winner.settle("success")
            self._ended(winner, outcome="served")
        finally:
            for attempt in self.attempts:
                attempt.scope.cancel()
                attempt.settle("cancelled")
            self.send.close()
            self.receive.close()

    async def _first_token(self) -> tuple[_Attempt, TextDelta | Completion]:
        """Wait for the first attempt to produce a token (or an empty Completion)."""
        hedging = self.router.hedge.enabled
        while True:
            live = [a for a in self.attempts if not a.done]
            if not live and not self._start_next("failover", reason=self._last_error()):
                self._ended(None, outcome="failed")
                raise self._final_error()
            wait_s = self._hedge_wait_s() if hedging else math.inf
            if wait_s <= 0:
                if self.router.hedge.budget.try_spend():
                    if not self._start_next("hedge", reason=f"no first token after {self._hedge_delay_s():.2f} s"):
                        hedging = False
                else:
                    hedging = False  # budget spent: this request waits on what it has
                continue
            with anyio.move_on_after(wait_s):
                index, item = await self.receive.receive()
                attempt = self.attempts[index]
                if isinstance(item, JobStarted):
                    attempt.job = item
                elif isinstance(item, BaseException):
                    self._attempt_failed(attempt, item)
                elif isinstance(item, TextDelta | Completion):
                    self.router.hedge.tracker.record(
                        attempt.route.provider, attempt.route.model, time.monotonic() - attempt.started_at
                    )
                    if attempt.kind == "hedge":
                        self.router.stats.hedge_wins += 1
                    return attempt, item

    # --- starting and stopping attempts -------------------------------------------------------
    def _start_next(self, kind: str, *, reason: str) -> bool:
        """Start the next route the breakers allow; False when the chain is exhausted."""
        route = self._next_allowed_route()
        if route is None:
            return False
        attempt = _Attempt(
            index=len(self.attempts),
            route=route,
            provider=self.router.providers[route.provider],
            breaker=self.router.breakers[route.provider],
            kind=kind,
            started_at=time.monotonic(),
        )
        self.attempts.append(attempt)
        self.router.stats.attempts += 1
        if kind != "primary":
            previous = self.attempts[-2].route.provider if len(self.attempts) > 1 else ""
            if kind == "hedge":
                self.router.stats.hedges += 1
            else:
                self.router.stats.failovers += 1
            log.info("%s for %s: %s → %s (%s)", kind, self.spec.alias, previous, route.provider, reason)
            self.router.events.publish(
                "failover.started",
                alias=self.spec.alias,
                provider=previous,
                to=route.provider,
                mode=kind,
                reason=reason,
            )
        self.tg.start_soon(self._pump, attempt)
        return True

    def _next_allowed_route(self) -> Route | None:
        skipped: list[Route] = []
        while self.next_route < len(self.routes):
            route = self.routes[self.next_route]
            self.next_route += 1
            if self.router.breakers[route.provider].allow():
                return route
            skipped.append(route)
            self.errors.append(
                (route.provider, ProviderUnavailable(self._open_message(route), provider=route.provider))
            )
        if not self.attempts and skipped:
            # Every breaker is open: try the one closest to its probe rather than fail unasked.
            return min(skipped, key=lambda r: self.router.breakers[r.provider].retry_in_s())
        return None

    def _open_message(self, route: Route) -> str:
        breaker = self.router.breakers[route.provider]
        return (
            f"{route.provider} is skipped: its circuit breaker is open ({breaker.last_reason}); "
            f"next probe in {breaker.retry_in_s():.0f} s."
        )

    def _attempt_failed(self, attempt: _Attempt, exc: BaseException) -> None:
        attempt.done = True
        self.errors.append((attempt.route.provider, exc))
        if not _fails_over(exc):
            attempt.settle("cancelled")
            raise exc
        attempt.settle("failure", str(exc))
        log.warning("provider %s failed before its first token: %s", attempt.route.provider, exc)

    def _cancel_others(self, winner: _Attempt) -> None:
        for attempt in self.attempts:
            if attempt is not winner and not attempt.done:
                attempt.done = True
                attempt.scope.cancel()
                attempt.settle("cancelled")
                self.router.stats.cancelled += 1

    async def _pump(self, attempt: _Attempt) -> None:
        """Run one attempt: forward its events (or its error) into the race's channel."""
        gen = attempt.provider.stream(attempt.route.model, self.messages, self.options)
        with attempt.scope:
            try:
                try:
                    completed = False
                    async for event in gen:
                        await self.send.send((attempt.index, event))
                        if isinstance(event, Completion):
                            completed = True
                            break
                finally:
                    await close_stream(gen)
                if not completed:
                    raise ProviderError(
                        f"{attempt.route.provider} ended its stream without a result.", provider=attempt.route.provider
                    )
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass  # the request is over; nobody reads this attempt any more
            except Exception as exc:
                with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await self.send.send((attempt.index, exc))

    # --- hedging ------------------------------------------------------------------------------
    def _hedge_delay_s(self) -> float:
        latest = self.attempts[-1].route
        return self.router.hedge.delay_s(latest.provider, latest.model)

    def _hedge_wait_s(self) -> float:
        """Seconds until the next hedge is due; inf when no further route could be started."""
        if self.next_route >= len(self.routes) or not self.attempts:
            return math.inf
        return self.attempts[-1].started_at + self._hedge_delay_s() - time.monotonic()

    # --- ending -------------------------------------------------------------------------------
    def _ended(self, winner: _Attempt | None, *, outcome: str) -> None:
        if len(self.attempts) <= 1 and winner is not None:
            return
        if winner is None:
            self.router.stats.failed += 1
        self.router.events.publish(
            "failover.ended",
            alias=self.spec.alias,
            provider=winner.route.provider if winner else None,
            model=winner.route.model if winner else None,
            mode=winner.kind if winner else "failed",
            outcome=outcome,
            attempts=len(self.attempts),
            duration_s=round(time.monotonic() - self.began, 3),
        )

    def _last_error(self) -> str:
        return str(self.errors[-1][1]) if self.errors else ""

    def _final_error(self) -> BaseException:
        """The error to raise when every route failed: the only one, or a summary of all."""
        real = [(name, exc) for name, exc in self.errors]
        if len(real) == 1:
            return real[0][1]
        kinds = {type(exc) for _, exc in real}
        summary = "; ".join(f"{name}: {exc}" for name, exc in real)
        if len(kinds) == 1:
            only = real[-1][1]
            if isinstance(only, ProviderError):
                return type(only)(f"every provider for {self.spec.alias!r} failed — {summary}", provider=only.provider)
        return ProviderUnavailable(
            f"every provider for {self.spec.alias!r} failed — {summary}",
            hint="Check `pete doctor` and the providers' health on the dashboard.",
        )
