"""One aggregate of request records: counts, errors by kind, TTFT and duration histograms, tokens in and out.

The same shape serves the since-start totals (Prometheus), each persisted minute rollup, and
any window the snapshot or an alert rule asks for; aggregates merge by adding.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._histogram import GENAI_DURATION_BUCKETS, GENAI_TTFT_BUCKETS, Histogram
from .snapshot import LatencySummary, Totals

if TYPE_CHECKING:
    from ._records import RequestRecord

__all__ = ["Aggregate", "merge_all"]


def _ttft() -> Histogram:
    return Histogram(GENAI_TTFT_BUCKETS)


def _duration() -> Histogram:
    return Histogram(GENAI_DURATION_BUCKETS)


@dataclass(slots=True)
class Aggregate:
    alias: str = ""
    requests: int = 0
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    ttft: Histogram = field(default_factory=_ttft)
    duration: Histogram = field(default_factory=_duration)
    output_tokens: int = 0
    generation_s: float = 0.0
    input_tokens: int = 0

    @property
    def errors(self) -> int:
        return sum(self.errors_by_kind.values())

    def add(self, rec: RequestRecord) -> None:
        # Called twice per record on every fold: the histogram updates are inlined on purpose.
        if rec.alias:
            self.alias = rec.alias
        self.requests += 1
        outcome = rec.outcome
        if outcome != "ok":
            self.errors_by_kind[outcome] = self.errors_by_kind.get(outcome, 0) + 1
            return
        self.input_tokens += rec.input_tokens
        ttft, total = rec.ttft_s, rec.total_s
        if ttft is not None:
            hist = self.ttft
            hist.counts[bisect_left(hist.bounds, ttft)] += 1
            hist.sum += ttft
            hist.count += 1
        hist = self.duration
        hist.counts[bisect_left(hist.bounds, total)] += 1
        hist.sum += total
        hist.count += 1
        generating = total - (ttft or 0.0)
        if rec.output_tokens and generating > 0:
            self.output_tokens += rec.output_tokens
            self.generation_s += generating

    def merge(self, other: Aggregate) -> None:
        self.alias = other.alias or self.alias
        self.requests += other.requests
        for kind, n in other.errors_by_kind.items():
            self.errors_by_kind[kind] = self.errors_by_kind.get(kind, 0) + n
        self.ttft.merge(other.ttft)
        self.duration.merge(other.duration)
        self.output_tokens += other.output_tokens
        self.generation_s += other.generation_s
        self.input_tokens += other.input_tokens

    def totals(self) -> Totals:
        errors = self.errors
        return Totals(
            requests=self.requests,
            ok=self.requests - errors,
            errors=errors,
            success_rate=(self.requests - errors) / self.requests if self.requests else None,
            errors_by_kind=dict(self.errors_by_kind),
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            tokens_per_s=self.output_tokens / self.generation_s if self.generation_s else None,
            ttft=_summary(self.ttft),
            duration=_summary(self.duration),
        )

    # --- persistence (one row of `metric_minutes`) -----------------------------------------
    def to_row(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "requests": self.requests,
            "errors": self.errors_by_kind,
            "ttft": {"counts": self.ttft.counts, "sum": self.ttft.sum},
            "duration": {"counts": self.duration.counts, "sum": self.duration.sum},
            "output_tokens": self.output_tokens,
            "generation_s": self.generation_s,
            "input_tokens": self.input_tokens,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Aggregate:
        return cls(
            alias=row["alias"],
            requests=int(row["requests"]),
            errors_by_kind={str(k): int(v) for k, v in row["errors"].items()},
            ttft=Histogram(GENAI_TTFT_BUCKETS, row["ttft"]["counts"], row["ttft"]["sum"]),
            duration=Histogram(GENAI_DURATION_BUCKETS, row["duration"]["counts"], row["duration"]["sum"]),
            output_tokens=int(row["output_tokens"]),
            generation_s=float(row["generation_s"]),
            input_tokens=int(row.get("input_tokens", 0)),  # minutes flushed before input tokens were kept
        )


def merge_all(parts: Iterable[Aggregate]) -> Aggregate:
    total = Aggregate()
    for part in parts:
        total.merge(part)
    return total


def _summary(hist: Histogram) -> LatencySummary:
    return LatencySummary(count=hist.count, p50=hist.quantile(0.5), p95=hist.quantile(0.95), mean=hist.mean())
