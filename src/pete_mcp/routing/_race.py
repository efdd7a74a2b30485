"""One request's race along its provider chain: failover, TTFT hedging, cancelling the loser.

The router (`router.py`) owns what lives across requests — providers, breakers, the hedge
policy, counters, the task group; a `Race` is what one request needs. Each attempt runs as a
task of the router's task group and puts its events (or its error) in the race's mailbox
(`_mailbox.py`); the provider's generator thus lives in one task from its start to its close, which
is what cancellation and cleanup need (closing a RunPod stream cancels its job).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import suppress
from dataclasses import replace
from typing import Protocol

import anyio
from anyio.abc import TaskGroup
from opentelemetry import trace

from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core import (
    Cancelled,
    Completion,
    EventBus,
    JobStarted,
    ModelProvider,
    ModelSpec,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    Readiness,
    ReportsReadiness,
    Route,
    StreamEvent,
    TextDelta,
    capable,
    close_stream,
)

from ._attempt import Attempt, RouterStats, Watchdogs, fails_over, readiness
from ._mailbox import Mailbox
from .breaker import CircuitBreaker
from .hedging import HedgePolicy

__all__ = ["Race", "RaceHost", "StopHandle"]

log = logging.getLogger("pete_mcp.routing.router")

_Item = tuple[int, StreamEvent | BaseException]


class RaceHost(Protocol):
    """What a race reads from its router: providers, breakers, the hedge policy, counters, events."""

    providers: dict[str, ModelProvider]
    breakers: dict[str, CircuitBreaker]
    hedge: HedgePolicy
    stats: RouterStats
    events: EventBus
    watchdogs: Watchdogs
    tracer: trace.Tracer


class StopHandle:
    """Lets someone outside a request stop it (an operator's cancel): `stop` ends its race with `Cancelled`."""

    def __init__(self, on_job: Callable[[str, str], None] | None = None) -> None:
        self.race: Race | None = None
        self.reason: str | None = None
        self.on_job = on_job  # told (job id, provider) as soon as any attempt announces its job

    def stop(self, reason: str) -> None:
        self.reason = reason
        if self.race is not None:
            self.race.stop(reason)


class Race:
    """One request's attempts along the chain, racing to the first token."""

    def __init__(
        self,
        router: RaceHost,
        tg: TaskGroup,
        spec: ModelSpec,
        routes: list[Route],
        messages: Sequence[Message],
        options: ChatOptions,
        stop: StopHandle | None = None,
    ) -> None:
        self.router = router
        self.tg = tg
        self.spec = spec
        self.readiness: dict[str, Readiness] = {r.provider: readiness(router.providers[r.provider]) for r in routes}
        self.routes = self._cold_last(routes)
        self.messages = messages
        self.options = options
        self.attempts: list[Attempt] = []
        self.errors: list[tuple[str, BaseException]] = []
        self.next_route = 0
        self.began = time.monotonic()
        self.mailbox: Mailbox[_Item] = Mailbox(64)
        self.stopped: str | None = None
        self.handle = stop
        if stop is not None:
            stop.race = self
            self.stopped = stop.reason

    def stop(self, reason: str) -> None:
        """End this request now: every attempt is cancelled and the reader gets `Cancelled`."""
        self.stopped = reason
        for attempt in self.attempts:
            attempt.done = True
            attempt.scope.cancel()
        with suppress(anyio.ClosedResourceError):
            self.mailbox.put_urgent((-1, Cancelled(reason)))

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
            spoken = [first.text] if isinstance(first, TextDelta) else []
            prefix = ""  # what was said before a stalled reply was handed to another route
            while completion is None:
                item = await self._next_of(winner)
                if item is None:  # stalled: no new text within the stall watchdog
                    prefix = "".join(spoken)
                    winner = self._bridge(winner, prefix)
                    continue
                if isinstance(item, BaseException):
                    winner.settle("failure", str(item))
                    self.router.stats.failed += 1
                    raise item
                if isinstance(item, JobStarted):
                    continue  # a bridge's job: the caller already holds the first one
                if isinstance(item, TextDelta):
                    spoken.append(item.text)
                if isinstance(item, Completion):
                    completion = item = replace(item, text=prefix + item.text) if prefix else item
                yield item
            winner.settle("success")
            self._ended(winner, outcome="served")
        finally:
            for attempt in self.attempts:
                attempt.scope.cancel()
                attempt.settle("cancelled")
            self.mailbox.close()
            if self.handle is not None and self.handle.race is self:
                # The job book keeps the last 500 requests' entries, each with this handle: let
                # go of the race, or every one of them keeps its request's whole object graph.
                self.handle.race = None

    async def _first_token(self) -> tuple[Attempt, TextDelta | Completion]:
        """Wait for the first attempt to produce a token (or an empty Completion)."""
        hedging = self.router.hedge.enabled
        denied: Attempt | None = None  # the latest attempt, while its hedge waits for the rescue point
        while True:
            if self.stopped is not None:
                raise Cancelled(self.stopped)
            live = [a for a in self.attempts if not a.done]
            if not live and not self._start_next("failover", reason=self._last_error()):
                self._ended(None, outcome="failed")
                raise self._final_error()
            latest = self.attempts[-1]
            rescuing = denied is latest
            hedge_s = self._hedge_wait_s(rescue=rescuing) if hedging else math.inf
            watchdog_s = self._watchdog_wait_s()
            if hedge_s <= 0:
                started = self._hedge(latest, rescue=rescuing)
                denied = latest if started is None else None
                hedging = started is not False
                continue
            if watchdog_s <= 0:
                self._first_token_timeout()
                continue
            if not await self.mailbox.wait(min(hedge_s, watchdog_s)):
                continue  # a hedge or the first-token watchdog is due
            index, item = self.mailbox.get_nowait()
            if index < 0 and isinstance(item, BaseException):
                raise item  # stopped from outside
            attempt = self.attempts[index]
            if isinstance(item, JobStarted):
                attempt.job = item
                if self.handle is not None and self.handle.on_job is not None:
                    self.handle.on_job(item.job_id, attempt.route.provider)
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
    def _start_next(self, kind: str, *, reason: str, messages: Sequence[Message] | None = None) -> bool:
        """Start the next route the breakers allow; False when the chain is exhausted."""
        return self._launch(kind, reason=reason, messages=messages) is not None

    def _launch(self, kind: str, *, reason: str, messages: Sequence[Message] | None = None) -> Attempt | None:
        route = self._next_allowed_route()
        if route is None:
            return None
        attempt = Attempt(
            index=len(self.attempts),
            route=route,
            provider=self.router.providers[route.provider],
            breaker=self.router.breakers[route.provider],
            kind=kind,
            started_at=time.monotonic(),
            readiness=self.readiness.get(route.provider, "unknown"),
            messages=messages,
        )
        self.attempts.append(attempt)
        self.router.stats.attempts += 1
        if kind != "primary":
            previous = self.attempts[-2].route.provider if len(self.attempts) > 1 else ""
            if kind == "hedge":
                self.router.stats.hedges += 1
            elif kind == "failover":
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
        return attempt

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

    def _attempt_failed(self, attempt: Attempt, exc: BaseException) -> None:
        attempt.done = True
        self.errors.append((attempt.route.provider, exc))
        if not fails_over(exc):
            attempt.settle("cancelled")
            raise exc
        attempt.settle("failure", str(exc))
        log.warning("provider %s failed before its first token: %s", attempt.route.provider, exc)

    def _cancel_others(self, winner: Attempt) -> None:
        now = time.monotonic()
        for attempt in self.attempts:
            if attempt is not winner and not attempt.done:
                attempt.done = True
                attempt.scope.cancel()
                attempt.settle("cancelled")
                self.router.stats.cancelled += 1
                # Its first token would have come later than this: keep that lower bound, or the
                # learned p95 would only ever see the fast replies and hedge ever earlier.
                route = attempt.route
                self.router.hedge.tracker.record(route.provider, route.model, now - attempt.started_at)

    async def _pump(self, attempt: Attempt) -> None:
        """Run one attempt in its own span: forward its events (or its error) into the race's channel."""
        route = attempt.route
        if isinstance(self.router.tracer, trace.NoOpTracer):  # tracing off: no span, no context switch
            await self._pump_events(attempt, trace.INVALID_SPAN)
            return
        with self.router.tracer.start_as_current_span(
            f"attempt {route.provider}",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": route.provider,
                "gen_ai.request.model": route.model,
                "pete.attempt.kind": attempt.kind,
                "pete.attempt.index": attempt.index,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            outcome = await self._pump_events(attempt, span)
            span.set_attribute("pete.attempt.outcome", outcome)

    async def _pump_events(self, attempt: Attempt, span: trace.Span) -> str:
        messages = self.messages if attempt.messages is None else attempt.messages
        gen = attempt.provider.stream(attempt.route.model, messages, self.options)
        job_span: trace.Span | None = None
        outcome = "cancelled"
        with attempt.scope:
            try:
                try:
                    completed = False
                    async for event in gen:
                        if isinstance(event, JobStarted) and job_span is None and span.is_recording():
                            job_span = self.router.tracer.start_span(
                                f"job {event.job_id}", attributes={"pete.job.id": event.job_id}
                            )
                        await self.mailbox.put((attempt.index, event))
                        if isinstance(event, Completion):
                            completed = True
                            outcome = "completed"
                            if job_span is not None and event.worker_id:
                                job_span.set_attribute("pete.worker.id", event.worker_id)
                            break
                finally:
                    await close_stream(gen)
                if not completed:
                    raise ProviderError(
                        f"{attempt.route.provider} ended its stream without a result.", provider=attempt.route.provider
                    )
            except anyio.ClosedResourceError:
                pass  # the request is over; nobody reads this attempt any more
            except Exception as exc:
                outcome = "failed"
                span.set_attribute("error.type", getattr(exc, "code", type(exc).__name__))
                with suppress(anyio.ClosedResourceError):
                    await self.mailbox.put((attempt.index, exc))
            finally:
                if job_span is not None:
                    job_span.set_attribute("pete.job.outcome", outcome)
                    job_span.end()
        return outcome

    # --- hedging ------------------------------------------------------------------------------
    def _hedge_delay_s(self) -> float:
        latest = self.attempts[-1].route
        return self.router.hedge.delay_s(latest.provider, latest.model)

    def _hedge_wait_s(self, *, rescue: bool = False) -> float:
        """Seconds until the next hedge (or, with `rescue`, the rescue) is due; inf when no further
        route could be started.

        At once when the latest attempt's endpoint had no idle worker (its job waits in a queue
        or for a cold start); never onto a cold route (that would only wait longer).
        """
        if self.next_route >= len(self.routes) or not self.attempts:
            return math.inf
        if self.readiness.get(self.routes[self.next_route].provider) == "cold":
            return math.inf
        latest = self.attempts[-1]
        route = latest.route
        if rescue:
            return latest.started_at + self.router.hedge.rescue_s(route.provider, route.model) - time.monotonic()
        if latest.readiness in ("busy", "cold"):
            return 0.0
        return latest.started_at + self._hedge_delay_s() - time.monotonic()

    def _hedge(self, latest: Attempt, *, rescue: bool) -> bool | None:
        """Start the next route beside `latest`: a speculative hedge if the budget has a token, a
        rescue (no token needed) once `latest` is past the rescue point.

        Returns True when one was started, None when the budget refused it (wait for the rescue
        point), False when no route could be started (stop hedging for this request).
        """
        budget = self.router.hedge.budget
        route = latest.route
        instant = not rescue and latest.readiness in ("busy", "cold")
        if rescue:
            reason = f"no first token after {self.router.hedge.rescue_s(route.provider, route.model):.2f} s (rescue)"
        elif instant:
            reason = f"{route.provider} has no idle worker"
        else:
            reason = f"no first token after {self._hedge_delay_s():.2f} s"
        if not rescue and not budget.try_spend():
            return None if self.router.hedge.rescue_multiple is not None else False
        if not self._start_next("hedge", reason=reason):
            if not rescue:
                budget.refund()  # every further route's breaker is open: nothing was sent
            return False
        if rescue:
            budget.rescue()
            self.router.stats.rescues += 1
        elif instant:
            self.router.stats.instant_hedges += 1
        return True

    # --- watchdogs ----------------------------------------------------------------------------
    def _watchdog_wait_s(self) -> float:
        """Seconds until the oldest live attempt has waited `first_token_s` for its first token."""
        limit = self.router.watchdogs.first_token_s
        live = [a for a in self.attempts if not a.done]
        if limit is None or not live or self.next_route >= len(self.routes):
            return math.inf
        return min(a.started_at for a in live) + limit - time.monotonic()

    def _first_token_timeout(self) -> None:
        """Give the oldest silent attempt up for the next route (started first, so never nothing)."""
        oldest = min((a for a in self.attempts if not a.done), key=lambda a: a.started_at)
        limit = self.router.watchdogs.first_token_s
        reason = f"{oldest.route.provider} gave no first token within {limit:g} s"
        if not self._start_next("failover", reason=reason):
            self.next_route = len(self.routes)  # nothing left to start: keep waiting on what runs
            return
        self.router.stats.first_token_timeouts += 1
        oldest.done = True
        oldest.scope.cancel()
        oldest.settle("failure", reason)
        self.errors.append((oldest.route.provider, ProviderTimeout(reason, provider=oldest.route.provider)))

    async def _next_of(self, winner: Attempt) -> StreamEvent | BaseException | None:
        """The winner's next event; None when it stalls past the stall watchdog.

        An event already queued is taken without a timer or a trip round the loop: under load the
        reader is often behind its provider, and this runs once per delta.
        """
        stall_s = self.router.watchdogs.stall_s
        deadline = math.inf if stall_s is None else time.monotonic() + stall_s
        while True:
            if not self.mailbox.ready and not await self.mailbox.wait(deadline - time.monotonic()):
                return None
            index, item = self.mailbox.get_nowait()
            if index < 0 or index == winner.index:  # < 0: stopped from outside
                return item

    def _bridge(self, stalled: Attempt, spoken: str) -> Attempt:
        """Hand a stalled reply to the next route, which continues from the text already sent.

        The next route gets the conversation plus the spoken part as a final assistant message
        (a prefill: Ollama, llama.cpp and OpenRouter continue it), so the caller hears one reply.

        Raises:
            ProviderTimeout: no other route can continue it.
        """
        provider = stalled.route.provider
        reason = f"{provider} stalled for {self.router.watchdogs.stall_s:g} s mid-reply"
        messages = [*self.messages, Message(role="assistant", content=spoken)]
        attempt = self._launch("bridge", reason=reason, messages=messages)
        stalled.done = True
        stalled.scope.cancel()
        stalled.settle("failure", reason)
        if attempt is None:
            self.router.stats.failed += 1
            raise ProviderTimeout(f"{reason}, and no other provider can continue it.", provider=provider)
        self.router.stats.stalls_bridged += 1
        return attempt

    def _cold_last(self, routes: list[Route]) -> list[Route]:
        """Routes whose endpoint is cold go behind the others, and are warmed for the next turns.

        A cold RunPod endpoint would hold this turn for a whole cold start; a warm fallback
        answers it now while a warm-up job brings a worker up. Failover still reaches the cold
        route if every other one fails. With no warm route the order is kept.
        """
        cold = [r for r in routes if self.readiness[r.provider] == "cold"]
        if not cold or len(cold) == len(routes):
            return routes
        for route in cold:
            provider = self.router.providers[route.provider]
            if capable(provider, ReportsReadiness):
                provider.warm_soon(route.model)
        self.router.stats.cold_skips += 1
        log.info("%s is cold for %s: a fallback answers while it warms", cold[0].provider, self.spec.alias)
        return [r for r in routes if r not in cold] + cold

    # --- ending -------------------------------------------------------------------------------
    def _ended(self, winner: Attempt | None, *, outcome: str) -> None:
        if winner is None:
            self.router.stats.failed += 1
        if len(self.attempts) <= 1:
            return  # no failover happened, so none ends
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
