"""The fleet view: every replica's flushed per-minute rollups, summed from the database.

Each replica serves its own live figures (`Metrics.snapshot`); this adds what all of them
flushed to `metric_minutes`, one row per (replica, minute, provider, model).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from ._aggregate import Aggregate, merge_all
from ._records import DAY_S
from ._rollups import MinuteRollups
from .snapshot import FleetSnapshot, ModelFigures, ReplicaFigures

if TYPE_CHECKING:
    from pete_mcp.core import Store

__all__ = ["fleet_snapshot"]


async def fleet_snapshot(store: Store, *, now: float | None = None, window_s: float = DAY_S) -> dict[str, Any]:
    """The summed rollups of every replica over the last `window_s` (JSON-ready)."""
    now = time.time() if now is None else now
    since = now - window_s
    rows = await store.query(
        "SELECT replica, minute, provider, model, data FROM metric_minutes WHERE minute + 60 > ?", (since,)
    )
    summed = MinuteRollups()
    per_replica: dict[str, Aggregate] = {}
    newest: dict[str, float] = {}
    for row in rows:
        data = json.loads(row["data"])
        replica, minute = str(row["replica"]), int(row["minute"])
        per_replica.setdefault(replica, Aggregate()).merge(Aggregate.from_row(data))
        newest[replica] = max(newest.get(replica, 0.0), float(minute))
        bucket = summed.minutes.setdefault(minute, {})
        key = (str(row["provider"]), str(row["model"]))
        agg = Aggregate.from_row(data)
        if key in bucket:
            bucket[key].merge(agg)
        else:
            bucket[key] = agg
    per_key = summed.by_key(since)
    snap = FleetSnapshot(
        generated_at=now,
        window_s=window_s,
        replicas=[
            ReplicaFigures(replica=name, last_minute=newest[name], **agg.totals().model_dump())
            for name, agg in sorted(per_replica.items())
        ],
        totals=merge_all(per_key.values()).totals(),
        models=[
            ModelFigures(provider=p, model=m, alias=agg.alias, **agg.totals().model_dump())
            for (p, m), agg in sorted(per_key.items())
        ],
        series=summed.series(now),
    )
    return snap.model_dump(mode="json")
