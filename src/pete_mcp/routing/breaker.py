"""A circuit breaker per provider: stop sending requests to a provider that keeps failing.

Why: a dead provider costs every request its full timeout before failover. Once open, the
router skips it at once; after a cool-down one half-open probe request decides whether it
is back (success closes the breaker, failure re-opens it for another cool-down).

It opens on `failure_threshold` consecutive failures (Envoy's `consecutive_5xx`, LiteLLM's
"3 fails") or when at least `min_requests` outcomes in the last `window_s` seconds failed at
`error_rate` or more (LiteLLM: ≥50 % failures per minute with ≥5 requests). Cancelled
requests (hedge losers, callers hanging up) are neither successes nor failures.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["BreakerPolicy", "BreakerState", "CircuitBreaker"]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: int = 5
    error_rate: float = 0.5
    min_requests: int = 10
    window_s: float = 60.0
    cooldown_s: float = 15.0


# Called with (provider, old state, new state, reason) on every transition.
StateListener = Callable[[str, BreakerState, BreakerState, str], None]


class CircuitBreaker:
    """The breaker of one provider. Not thread-safe; used from the event loop only."""

    def __init__(
        self,
        provider: str,
        policy: BreakerPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: StateListener | None = None,
    ) -> None:
        self.provider = provider
        self.policy = policy or BreakerPolicy()
        self._clock = clock
        self._on_change = on_change
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.opened_at: float | None = None
        self.last_reason = ""
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._probe_out = False

    # --- asking ---------------------------------------------------------------------------
    def allow(self) -> bool:
        """May a request go to this provider now? In half-open, only one probe at a time."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            assert self.opened_at is not None
            if self._clock() - self.opened_at < self.policy.cooldown_s:
                return False
            self._move(BreakerState.HALF_OPEN, "cool-down over; probing")
        if self._probe_out:
            return False
        self._probe_out = True
        return True

    def retry_in_s(self) -> float:
        """Seconds until an open breaker lets a probe through (0 when not open)."""
        if self.state is not BreakerState.OPEN or self.opened_at is None:
            return 0.0
        return max(0.0, self.policy.cooldown_s - (self._clock() - self.opened_at))

    # --- telling --------------------------------------------------------------------------
    def record_success(self) -> None:
        self._probe_out = False
        self.consecutive_failures = 0
        self._remember(ok=True)
        if self.state is not BreakerState.CLOSED:
            self._move(BreakerState.CLOSED, "probe succeeded")

    def record_failure(self, reason: str) -> None:
        self._probe_out = False
        self.consecutive_failures += 1
        self.last_reason = reason
        self._remember(ok=False)
        if self.state is BreakerState.HALF_OPEN:
            self._open(f"probe failed: {reason}")
        elif self.state is BreakerState.CLOSED:
            if self.consecutive_failures >= self.policy.failure_threshold:
                self._open(f"{self.consecutive_failures} consecutive failures; last: {reason}")
            elif self._rate_exceeded():
                self._open(f"error rate over {self.policy.error_rate:.0%} in {self.policy.window_s:.0f} s: {reason}")

    def record_cancelled(self) -> None:
        """The request was abandoned (hedge lost, caller left): frees a half-open probe slot."""
        self._probe_out = False

    # --- internals ------------------------------------------------------------------------
    def _remember(self, *, ok: bool) -> None:
        now = self._clock()
        self._outcomes.append((now, ok))
        horizon = now - self.policy.window_s
        while self._outcomes and self._outcomes[0][0] < horizon:
            self._outcomes.popleft()

    def _rate_exceeded(self) -> bool:
        total = len(self._outcomes)
        if total < self.policy.min_requests:
            return False
        failed = sum(1 for _, ok in self._outcomes if not ok)
        return failed / total >= self.policy.error_rate

    def _open(self, reason: str) -> None:
        self.opened_at = self._clock()
        self._outcomes.clear()
        self._move(BreakerState.OPEN, reason)

    def _move(self, new: BreakerState, reason: str) -> None:
        old, self.state = self.state, new
        if new is BreakerState.CLOSED:
            self.opened_at = None
        if self._on_change is not None and old is not new:
            self._on_change(self.provider, old, new, reason)

    def snapshot(self) -> dict[str, str | int | float]:
        return {
            "state": self.state.value,
            "consecutive_failures": self.consecutive_failures,
            "retry_in_s": round(self.retry_in_s(), 3),
            "last_reason": self.last_reason,
        }
