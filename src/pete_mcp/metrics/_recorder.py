"""Request metrics recorded by the core; one snapshot serves every face.

`record()` is on every request's hot path, so it only appends the record to a list: no I/O,
no locks, no arithmetic. The records are folded into since-start totals (Prometheus), minute
rollups (the 24 h view, persisted by `metrics_service`), the recent window (alert rules) and
the 24 h error list whenever someone reads — `snapshot()`, `window()`, the Prometheus
collector — or when the list grows long. Everything runs on the event loop, so nothing needs
a lock. State the core does not record itself (provider health, RunPod queue and workers,
live calls, conversations, switches, deploys, alerts) is set by the metrics service and the
alert engine through the `set_*` methods.

`snapshot()` is THE snapshot: `/api/metrics`, `pete://metrics/live` and the dashboard all
show what it returns. It is cached until something changes, so two readers see the same
object; treat it as read-only.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pete_mcp.core import ProviderHealth

from ._aggregate import Aggregate, merge_all
from ._records import DAY_S, RequestRecord, SeriesKey
from ._rollups import MinuteRollups
from ._runpod import runpod_figures
from .snapshot import (
    AlertEntry,
    DeployEntry,
    ErrorEntry,
    LastRequest,
    LatencySummary,
    MetricsSnapshot,
    ModelFigures,
    ProviderStatus,
    RunPodFigures,
    StorageFigures,
    SwitchEntry,
    Totals,
)
from .telemetry import Telemetry

__all__ = ["Metrics", "RequestRecord", "WindowStats"]

FOLD_AT = 2048  # fold pending records once this many wait, so memory stays bounded with no reader
ERRORS_SHOWN = 50
MESSAGE_CHARS = 500
DISORDER_S = 120.0  # records arrive in finishing order; a long request's record may predate shorter ones


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Exact figures over the last `seconds` (from raw records, not buckets): what alert rules read."""

    seconds: float
    requests: int
    errors: int
    ttft_p95: float | None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def _percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, -(-int(q * 1000) * len(sorted_values) // 1000))  # ceil(q * n) without float error
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _summary(values: list[float]) -> LatencySummary:
    values.sort()
    return LatencySummary(
        count=len(values),
        p50=_percentile(values, 0.5),
        p95=_percentile(values, 0.95),
        mean=sum(values) / len(values) if values else None,
    )


def _exact(totals: Totals, records: list[RequestRecord]) -> Totals:
    """`totals` with TTFT and duration percentiles computed from the raw records instead of buckets."""
    answered = [r for r in records if r.outcome == "ok"]
    totals.ttft = _summary([r.ttft_s for r in answered if r.ttft_s is not None])
    totals.duration = _summary([r.total_s for r in answered])
    return totals


def _last(recent: deque[RequestRecord]) -> LastRequest | None:
    if not recent:
        return None
    r = recent[-1]
    return LastRequest(
        at=r.at,
        provider=r.provider,
        model=r.model,
        alias=r.alias,
        source=r.source,
        outcome=r.outcome,
        ttft_s=r.ttft_s,
        total_s=r.total_s,
        input_tokens=r.input_tokens,
        output_tokens=r.output_tokens,
    )


class Metrics:
    def __init__(
        self,
        *,
        keep_recent: int = 10_000,
        clock: Callable[[], float] = time.time,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._active_jobs = 0
        self.telemetry = telemetry
        self.clock = clock
        self.started_at = clock()
        self.recent: deque[RequestRecord] = deque(maxlen=keep_recent)
        self.totals: dict[SeriesKey, Aggregate] = {}
        self.rollups = MinuteRollups()
        self.errors: deque[ErrorEntry] = deque(maxlen=2_000)
        self.unflushed_errors: list[ErrorEntry] = []
        self.fallbacks: Counter[tuple[str, str]] = Counter()
        self.active_model = ""
        self.live_calls: set[str] = set()
        self.providers: dict[str, ProviderStatus] = {}
        self.runpod: RunPodFigures | None = None
        self.active_conversations = 0
        self.conversations_total = 0
        self.switches: list[SwitchEntry] = []
        self.deploys: list[DeployEntry] = []
        self.alerts: list[AlertEntry] = []
        self.storage: StorageFigures | None = None
        self.service_running = False
        self._pending: list[RequestRecord] = []
        self._version = 0
        self._cached: tuple[int, dict[str, Any]] | None = None

    # --- the hot path ----------------------------------------------------------------------
    @property
    def active_jobs(self) -> int:
        """Requests being answered right now (the core adds and subtracts one around each)."""
        return self._active_jobs

    @active_jobs.setter
    def active_jobs(self, value: int) -> None:
        self._active_jobs = value
        self._version += 1

    def record(self, rec: RequestRecord) -> None:
        """Note one finished request (ok or failed). Costs one list append."""
        pending = self._pending
        pending.append(rec)
        if len(pending) >= FOLD_AT:
            self.fold()

    # --- folding ---------------------------------------------------------------------------
    def fold(self) -> None:
        """Move pending records into totals, rollups, the recent window and the error list."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        if self.telemetry is not None:
            self.telemetry.observe(pending)
        for rec in pending:
            self.recent.append(rec)
            key = (rec.provider, rec.model)
            agg = self.totals.get(key)
            if agg is None:
                agg = self.totals[key] = Aggregate()
            agg.add(rec)
            self.rollups.add(rec)
            if rec.outcome != "ok":
                entry = ErrorEntry(
                    at=rec.at,
                    provider=rec.provider,
                    model=rec.model,
                    alias=rec.alias,
                    source=rec.source,
                    kind=rec.outcome,
                    message=(rec.error or rec.outcome)[:MESSAGE_CHARS],
                )
                self.errors.append(entry)
                self.unflushed_errors.append(entry)
        self.changed()

    def changed(self) -> None:
        """Invalidate the cached snapshot (state changed, or time moved on)."""
        self._version += 1

    # --- what the service and alert engine set ----------------------------------------------
    def set_active_model(self, alias: str) -> None:
        self.active_model = alias
        self.changed()

    def call_started(self, call_id: str) -> None:
        self.live_calls.add(call_id)
        self.changed()

    def call_ended(self, call_id: str) -> None:
        self.live_calls.discard(call_id)
        self.changed()

    def count_fallback(self, from_provider: str, to_provider: str) -> None:
        self.fallbacks[(from_provider, to_provider)] += 1
        self.changed()

    def set_provider_health(self, name: str, health: ProviderHealth) -> None:
        at = self.clock()
        self.providers[name] = ProviderStatus(name=name, ok=health.ok, detail=health.detail, checked_at=at)
        figures = runpod_figures(name, health, at=at)
        if figures is not None:
            self.runpod = figures
        self.changed()

    def set_store_view(
        self,
        *,
        active_conversations: int,
        conversations_total: int,
        switches: Iterable[SwitchEntry],
        deploys: Iterable[DeployEntry],
    ) -> None:
        self.active_conversations = active_conversations
        self.conversations_total = conversations_total
        self.switches = list(switches)
        self.deploys = list(deploys)
        self.changed()

    def set_storage(self, figures: StorageFigures) -> None:
        if figures != self.storage:
            self.storage = figures
            self.changed()

    def set_alerts(self, alerts: Iterable[AlertEntry]) -> None:
        self.alerts = list(alerts)
        self.changed()

    def restore(self, errors: Iterable[ErrorEntry]) -> None:
        """Put persisted errors back (after `rollups.load`), oldest first."""
        merged = sorted([*errors, *self.errors], key=lambda e: e.at)
        self.errors.clear()
        self.errors.extend(merged)
        self.changed()

    # --- reading ---------------------------------------------------------------------------
    def window(self, seconds: float) -> WindowStats:
        """Requests, errors and exact p95 TTFT over the last `seconds`."""
        self.fold()
        since = self.clock() - seconds
        requests = errors = 0
        ttfts: list[float] = []
        for rec in reversed(self.recent):
            if rec.at < since:
                if rec.at < since - DISORDER_S:
                    break
                continue
            requests += 1
            if rec.outcome != "ok":
                errors += 1
            elif rec.ttft_s is not None:
                ttfts.append(rec.ttft_s)
        ttfts.sort()
        return WindowStats(seconds, requests, errors, _percentile(ttfts, 0.95))

    def snapshot(self) -> dict[str, Any]:
        """The one JSON-serialisable snapshot (see `MetricsSnapshot`); the same object until something changes."""
        self.fold()
        if self._cached is not None and self._cached[0] == self._version:
            return self._cached[1]
        snap = self._build().model_dump(mode="json")
        self._cached = (self._version, snap)
        return snap

    def _build(self) -> MetricsSnapshot:
        now = self.clock()
        since = now - DAY_S
        per_key = self.rollups.by_key(since)
        recent = Aggregate()
        recent_records: list[RequestRecord] = []
        for rec in reversed(self.recent):
            if rec.at < now - 300:
                if rec.at < now - 300 - DISORDER_S:
                    break
                continue
            recent.add(rec)
            recent_records.append(rec)
        errors = [e for e in self.errors if e.at >= since]
        totals = merge_all(per_key.values()).totals()
        return MetricsSnapshot(
            generated_at=now,
            started_at=self.started_at,
            window_s=DAY_S,
            active_model=self.active_model,
            active_jobs=self.active_jobs,
            live_calls=len(self.live_calls),
            active_conversations=self.active_conversations,
            conversations_total=self.conversations_total,
            fallbacks=sum(self.fallbacks.values()),
            totals=totals,
            last_5m=_exact(recent.totals(), recent_records),
            models=[
                ModelFigures(provider=p, model=m, alias=agg.alias, **agg.totals().model_dump())
                for (p, m), agg in sorted(per_key.items())
            ],
            series=self.rollups.series(now),
            requests=totals.requests,
            errors=totals.errors,
            errors_24h=totals.errors,
            recent_errors=list(reversed(errors[-ERRORS_SHOWN:])),
            last=_last(self.recent),
            runpod=self.runpod,
            providers=sorted(self.providers.values(), key=lambda s: s.name),
            switches=self.switches,
            deploys=self.deploys,
            alerts=self.alerts,
            storage=self.storage,
        )
