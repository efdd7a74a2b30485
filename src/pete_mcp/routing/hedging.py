"""When to hedge a request on the next provider, and how many hedges we can afford.

Why: a RunPod cold start holds the first token back for seconds to minutes, while a warm
fallback answers in well under a second. Dean & Barroso ("The Tail at Scale", 2013) send a
second copy once the first has been outstanding longer than the p95 latency; we do that on
time to first token only (after the first token a reply is committed to its provider), and
cap the extra requests with a token bucket so a slow primary can never double the load.

- `TtftTracker` keeps recent TTFTs per (provider, model); the hedge delay is their p95,
  clamped to [floor, ceiling], or a fixed `hedge_after_s` when one is configured.
- `HedgeBudget` earns `ratio` of a token per request (at most `burst` saved); a hedge spends
  one. Extra requests therefore stay below `ratio × requests + burst`.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["HedgeBudget", "HedgePolicy", "TtftTracker"]


class TtftTracker:
    """Recent times to first token per (provider, model), with a cached p95."""

    def __init__(self, keep: int = 200, min_samples: int = 20) -> None:
        self._keep = keep
        self._min_samples = min_samples
        self._samples: dict[tuple[str, str], deque[float]] = {}
        self._p95: dict[tuple[str, str], float | None] = {}

    def record(self, provider: str, model: str, ttft_s: float) -> None:
        key = (provider, model)
        samples = self._samples.get(key)
        if samples is None:
            samples = self._samples[key] = deque(maxlen=self._keep)
        samples.append(ttft_s)
        self._p95.pop(key, None)  # recomputed lazily, at most once per new sample

    def p95(self, provider: str, model: str) -> float | None:
        """The p95 TTFT, or None while there are fewer than `min_samples` samples."""
        key = (provider, model)
        if key in self._p95:
            return self._p95[key]
        samples = self._samples.get(key)
        value = None
        if samples is not None and len(samples) >= self._min_samples:
            ordered = sorted(samples)
            value = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
        self._p95[key] = value
        return value


@dataclass
class HedgeBudget:
    """Token bucket of hedges: each request earns `ratio` tokens, a hedge spends one."""

    ratio: float = 0.2
    burst: float = 5.0
    tokens: float = -1.0
    spent: int = 0
    denied: int = 0

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.burst

    def earn(self) -> None:
        self.tokens = min(self.burst, self.tokens + self.ratio)

    def try_spend(self) -> bool:
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.spent += 1
            return True
        self.denied += 1
        return False

    def refund(self) -> None:
        """Give back a token whose hedge could not be sent."""
        self.tokens = min(self.burst, self.tokens + 1.0)
        self.spent -= 1


class HedgePolicy:
    """Decides the hedge delay for a (provider, model) and whether a hedge is affordable."""

    def __init__(
        self,
        *,
        enabled: bool = True,
        fixed_after_s: float | None = None,
        floor_s: float = 0.3,
        ceiling_s: float = 1.0,
        initial_s: float = 1.0,
        budget: HedgeBudget | None = None,
        tracker: TtftTracker | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = enabled
        self.fixed_after_s = fixed_after_s
        self.floor_s = floor_s
        self.ceiling_s = max(floor_s, ceiling_s)
        self.initial_s = initial_s
        self.budget = budget or HedgeBudget()
        self.tracker = tracker or TtftTracker()
        self.clock = clock

    def delay_s(self, provider: str, model: str) -> float:
        """Seconds without a first token after which the next provider is started."""
        if self.fixed_after_s is not None:
            return self.fixed_after_s
        p95 = self.tracker.p95(provider, model)
        if p95 is None:
            return min(self.ceiling_s, max(self.floor_s, self.initial_s))
        return min(self.ceiling_s, max(self.floor_s, p95))
