"""Fixed-bucket histograms with the OpenTelemetry GenAI bucket boundaries.

Fixed buckets make a histogram a short list of ints: cheap to update, to merge (minute
rollups into hours and days), to persist as JSON, and to expose to Prometheus unchanged.
Percentiles are estimated by linear interpolation inside a bucket, as Prometheus's
`histogram_quantile` does.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

__all__ = ["GENAI_DURATION_BUCKETS", "GENAI_TTFT_BUCKETS", "Histogram"]

# gen_ai.client.operation.duration: 0.01, 0.02, 0.04, … 81.92 s (×2).
GENAI_DURATION_BUCKETS: tuple[float, ...] = tuple(round(0.01 * 2**i, 2) for i in range(14))
# gen_ai.server.time_to_first_token.
GENAI_TTFT_BUCKETS: tuple[float, ...] = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)


class Histogram:
    """Counts per bucket (`le` upper bounds, plus +Inf last), with sum and count."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...], counts: Sequence[int] | None = None, total: float = 0.0) -> None:
        self.bounds = bounds
        self.counts = list(counts) if counts is not None else [0] * (len(bounds) + 1)
        if len(self.counts) != len(bounds) + 1:
            raise ValueError(f"a histogram with {len(bounds)} bounds needs {len(bounds) + 1} counts.")
        self.sum = total
        self.count = sum(self.counts)

    def observe(self, value: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bound's bucket (Prometheus `le`).
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def merge(self, other: Histogram) -> None:
        if other.bounds != self.bounds:
            raise ValueError("cannot merge histograms with different buckets.")
        for i, n in enumerate(other.counts):
            if n:
                self.counts[i] += n
        self.sum += other.sum
        self.count += other.count

    def cumulative(self) -> list[tuple[str, int]]:
        """(`le`, cumulative count) pairs ending with `+Inf`, the Prometheus exposition shape."""
        out: list[tuple[str, int]] = []
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0..1) estimated from the buckets; None when empty.

        Values above the last bound are reported as the last bound, like `histogram_quantile`.
        """
        if not self.count:
            return None
        rank = q * self.count
        running = 0
        for i, n in enumerate(self.counts):
            if running + n >= rank and n:
                if i == len(self.bounds):
                    return self.bounds[-1]
                lower = self.bounds[i - 1] if i else 0.0
                upper = self.bounds[i]
                return lower + (upper - lower) * ((rank - running) / n)
            running += n
        return self.bounds[-1]  # pragma: no cover - rank never exceeds count

    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None
