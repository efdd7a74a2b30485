"""Per-minute rollups of request metrics, kept for 24 h and persisted so a restart keeps them.

Recording only touches memory; `flush` writes the minutes that changed (one transaction,
upserts) and the new error entries, and `load` reads the last 24 h back at start-up. Tables
live in `storage.MIGRATIONS` (`metric_minutes`, `metric_errors`). Each replica writes
and reloads its own rows (`replica`); `fleet_minutes` reads everyone's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._aggregate import Aggregate, merge_all
from ._records import RequestRecord, SeriesKey
from .snapshot import ErrorEntry, MinutePoint

if TYPE_CHECKING:
    from pete_mcp.core import Store
    from pete_mcp.core.storage import Conn


__all__ = ["MinuteRollups", "minute_of"]


def minute_of(at: float) -> int:
    return int(at // 60) * 60


@dataclass
class MinuteRollups:
    minutes: dict[int, dict[SeriesKey, Aggregate]] = field(default_factory=dict)
    _dirty: set[tuple[int, SeriesKey]] = field(default_factory=set)

    def add(self, rec: RequestRecord) -> None:
        minute = int(rec.at // 60) * 60
        key = (rec.provider, rec.model)
        bucket = self.minutes.get(minute)
        if bucket is None:
            bucket = self.minutes[minute] = {}
        agg = bucket.get(key)
        if agg is None:
            agg = bucket[key] = Aggregate()
        agg.add(rec)
        self._dirty.add((minute, key))

    def prune(self, before: float) -> None:
        for minute in [m for m in self.minutes if m + 60 <= before]:
            del self.minutes[minute]
        self._dirty = {d for d in self._dirty if d[0] in self.minutes}

    def by_key(self, since: float) -> dict[SeriesKey, Aggregate]:
        """Each (provider, model)'s aggregate over the minutes that end after `since`."""
        out: dict[SeriesKey, Aggregate] = {}
        for minute, bucket in self.minutes.items():
            if minute + 60 <= since:
                continue
            for key, agg in bucket.items():
                out.setdefault(key, Aggregate()).merge(agg)
        return out

    def series(self, now: float, count: int = 60) -> list[MinutePoint]:
        """The last `count` minutes (the current one last), all models together; empty minutes included."""
        last = minute_of(now)
        points: list[MinutePoint] = []
        for minute in range(last - 60 * (count - 1), last + 60, 60):
            bucket = self.minutes.get(minute)
            if not bucket:
                points.append(MinutePoint(at=minute))
                continue
            agg = merge_all(bucket.values())
            points.append(
                MinutePoint(
                    at=minute,
                    requests=agg.requests,
                    errors=agg.errors,
                    ttft_p50=agg.ttft.quantile(0.5),
                    ttft_p95=agg.ttft.quantile(0.95),
                    duration_p50=agg.duration.quantile(0.5),
                    duration_p95=agg.duration.quantile(0.95),
                )
            )
        return points

    # --- persistence -----------------------------------------------------------------------
    def take_dirty(self) -> list[tuple[int, SeriesKey, Aggregate]]:
        """The changed minutes as rows to write; marks them clean (put back with `mark_dirty` on failure)."""
        rows = [(m, k, self.minutes[m][k]) for m, k in self._dirty if m in self.minutes]
        self._dirty = set()
        return rows

    def mark_dirty(self, rows: Iterable[tuple[int, SeriesKey, Aggregate]]) -> None:
        self._dirty.update((m, k) for m, k, _ in rows)

    async def flush(self, store: Store, errors: list[ErrorEntry], *, keep_after: float, replica: str = "") -> None:
        """Write this replica's changed minutes and new errors; delete rows older than `keep_after`."""
        rows = [(m, k, agg.to_row()) for m, k, agg in self.take_dirty()]

        def txn(conn: Conn) -> None:
            conn.executemany(
                "INSERT INTO metric_minutes(replica, minute, provider, model, alias, data) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(replica, minute, provider, model) DO UPDATE SET alias = excluded.alias, "
                "data = excluded.data",
                [(replica, m, k[0], k[1], row["alias"], json.dumps(row)) for m, k, row in rows],
            )
            conn.executemany(
                "INSERT INTO metric_errors(at, provider, model, alias, source, kind, message, replica) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(e.at, e.provider, e.model, e.alias, e.source, e.kind, e.message, replica) for e in errors],
            )
            conn.execute("DELETE FROM metric_minutes WHERE minute + 60 <= ?", (keep_after,))
            conn.execute("DELETE FROM metric_errors WHERE at < ?", (keep_after,))

        await store.write(txn)

    async def load(self, store: Store, *, since: float, replica: str = "") -> list[ErrorEntry]:
        """Read this replica's persisted minutes (merged into memory) and errors since `since`, oldest first.

        Rows written before rollups had a replica (`replica = ''`) are claimed by the first replica to start.
        """
        if replica:

            def claim(conn: Conn) -> None:
                for table in ("metric_minutes", "metric_errors"):
                    conn.execute(f"UPDATE {table} SET replica = ? WHERE replica = ''", (replica,))

            await store.write(claim)
        rows = await store.query(
            "SELECT minute, provider, model, data FROM metric_minutes WHERE minute + 60 > ? AND replica = ?",
            (since, replica),
        )
        for row in rows:
            agg = Aggregate.from_row(json.loads(row["data"]))
            bucket = self.minutes.setdefault(int(row["minute"]), {})
            key = (row["provider"], row["model"])
            if key in bucket:
                agg.merge(bucket[key])
            bucket[key] = agg
        errors = await store.query(
            "SELECT at, provider, model, alias, source, kind, message FROM metric_errors "
            "WHERE at >= ? AND replica = ? ORDER BY at",
            (since, replica),
        )
        return [ErrorEntry(**e) for e in errors]
