"""When to hedge a request on the next provider, and how many hedges we can afford.

Why: a RunPod cold start holds the first token back for seconds to minutes, while a warm
fallback answers in well under a second. Dean & Barroso ("The Tail at Scale", 2013) send a
second copy once the first has been outstanding longer than the p95 latency; we do that on
time to first token only (after the first token a reply is committed to its provider), and
cap the extra requests with a token bucket so a slow primary can never double the load.

- `TtftTracker` keeps recent TTFTs per (provider, model); the hedge delay is their p95,
  clamped to [floor, ceiling], or a fixed `hedge_after_s` when one is configured.
- `HedgeBudget` earns `ratio` of a token per request (at most `burst` saved); a speculative
  hedge spends one. Speculative hedges therefore stay below `ratio × requests + burst`.
- A *rescue* is not speculative: once an attempt has gone `rescue_multiple` × its recent p95
  TTFT without a first token (twice the p95, unclamped), a healthy reply is not coming soon,
  so the next route is started even when the budget is spent. The budget exists to stop a
  merely slow primary from doubling the load; a stuck one would be failed over anyway (by the
  first-token watchdog, unbudgeted), only later. A rescue costs the same one extra request,
  sent seconds earlier, and only requests slower than twice the recent p95 can trigger it.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["HedgeBudget", "HedgePolicy", "TtftTracker"]


class TtftTracker:
    """Recent times to first token per (provider, model), with cached quantiles."""

    def __init__(self, keep: int = 200, min_samples: int = 20) -> None:
        self._keep = keep
        self._min_samples = min_samples
        self._samples: dict[tuple[str, str], deque[float]] = {}
        self._cache: dict[tuple[str, str], dict[float, float | None]] = {}

    def record(self, provider: str, model: str, ttft_s: float) -> None:
        key = (provider, model)
        samples = self._samples.get(key)
        if samples is None:
            samples = self._samples[key] = deque(maxlen=self._keep)
        samples.append(ttft_s)
        self._cache.pop(key, None)  # recomputed lazily, at most once per new sample

    def quantile(self, provider: str, model: str, q: float) -> float | None:
        """The nearest-rank `q` quantile (0–1) of recent TTFTs; None below `min_samples` samples."""
        key = (provider, model)
        cached = self._cache.setdefault(key, {})
        if q in cached:
            return cached[q]
        samples = self._samples.get(key)
        value = None
        if samples is not None and len(samples) >= self._min_samples:
            ordered = sorted(samples)
            value = ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]
        cached[q] = value
        return value

    def p95(self, provider: str, model: str) -> float | None:
        """The p95 TTFT, or None while there are fewer than `min_samples` samples."""
        return self.quantile(provider, model, 0.95)


@dataclass
class HedgeBudget:
    """Token bucket of hedges: each request earns `ratio` tokens, a hedge spends one."""

    ratio: float = 0.2
    burst: float = 5.0
    tokens: float = -1.0
    spent: int = 0
    denied: int = 0
    rescued: int = 0  # hedges sent past the rescue point without a token (see the module doc)

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

    def rescue(self) -> None:
        """Count a rescue: sent without a token, so it never waits on the bucket."""
        self.rescued += 1


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
        rescue_multiple: float | None = 2.0,
        budget: HedgeBudget | None = None,
        tracker: TtftTracker | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = enabled
        self.fixed_after_s = fixed_after_s
        self.floor_s = floor_s
        self.ceiling_s = max(floor_s, ceiling_s)
        self.initial_s = initial_s
        self.rescue_multiple = rescue_multiple
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

    def rescue_s(self, provider: str, model: str) -> float:
        """Seconds without a first token after which the next route is started whatever the budget.

        `rescue_multiple` × the recent p95 TTFT, *not* clamped to the ceiling (and never before
        the hedge delay); inf when rescues are off. A healthy first token later than twice the
        p95 is rare, and waiting on would end only at the first-token watchdog, which fails over
        unbudgeted anyway. Unclamped, the point follows a primary that gets slow across the board:
        rescued replies teach the tracker their (lower-bound) wait, the p95 rises past it, and
        the rescue point, twice that, moves beyond the new normal within a few dozen requests.
        """
        if self.rescue_multiple is None:
            return math.inf
        delay = self.delay_s(provider, model)
        p95 = self.tracker.p95(provider, model)
        return max(1.0, self.rescue_multiple) * max(delay, p95 or 0.0)
