"""What a race is made of: one attempt on one route, the router's counters, and the watchdogs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio

from pete_mcp.contract import Message
from pete_mcp.core import (
    Cancelled,
    InputError,
    JobStarted,
    ModelProvider,
    NotFound,
    Readiness,
    ReportsReadiness,
    Route,
    capable,
)

from .breaker import CircuitBreaker

__all__ = ["Attempt", "RouterStats", "Watchdogs", "fails_over", "readiness"]


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
    cold_skips: int = 0  # a cold route sent to the back of the chain (and warmed instead)
    instant_hedges: int = 0  # hedged at once: the route had no idle worker
    rescues: int = 0  # hedged past the rescue point although the hedge budget was spent
    first_token_timeouts: int = 0
    stalls_bridged: int = 0

    @property
    def extra_requests(self) -> int:
        return self.attempts - self.requests


@dataclass(frozen=True, slots=True)
class Watchdogs:
    """`first_token_s`: an attempt with no first token by then is given up for the next route
    (only when there is one). `stall_s`: a reply with no new text for that long after its first
    token is continued by the next route, which is handed the text already sent. None = off."""

    first_token_s: float | None = None
    stall_s: float | None = None


@dataclass(eq=False)
class Attempt:
    index: int
    route: Route
    provider: ModelProvider
    breaker: CircuitBreaker
    kind: str  # "primary" | "hedge" | "failover" | "bridge"
    started_at: float
    readiness: Readiness = "unknown"
    messages: Sequence[Message] | None = None  # None: the request's own
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


def fails_over(exc: BaseException) -> bool:
    """Errors another provider might not have. A bad request (400) would fail everywhere."""
    if isinstance(exc, Cancelled):
        return False  # an operator stopped the request: no other provider should take it up
    if isinstance(exc, NotFound):
        return True
    return not isinstance(exc, InputError)


def readiness(provider: ModelProvider) -> Readiness:
    """What the provider knows for free about starting a job now (`unknown` if it cannot tell)."""
    return provider.readiness() if capable(provider, ReportsReadiness) else "unknown"
