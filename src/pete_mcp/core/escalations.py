"""Escalations: one page per call and emergency category, claimed in the store, with every attempt kept.

An emergency can be detected on several turns of one call, or on two gateway replicas at
once; the claim (`INSERT ... ON CONFLICT DO NOTHING` on `(call_id, category)`) makes exactly
one of them page. A page that no sink accepted can be claimed again by a later detection, as
can a claim whose holder vanished (`reclaim_after_s`). The paging itself lives in
`pete_mcp.alerts.paging`; this module only remembers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from .storage import Conn
from .store import Store

__all__ = ["Claim", "EscalationBook", "PageState"]

PageState = Literal["paging", "paged", "failed", "unpaged"]
"""paging: under way; paged: a sink that reaches a person accepted; failed: none did; unpaged: none configured."""


@dataclass(frozen=True, slots=True)
class Claim:
    """The escalation row for a call and category; `mine` when this caller must send the page."""

    id: int
    state: PageState
    mine: bool


class EscalationBook:
    """Reads and writes `escalations` and `page_attempts`."""

    def __init__(self, store: Store, *, reclaim_after_s: float = 120.0, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.reclaim_after_s = reclaim_after_s
        self.clock = clock

    async def claim(self, *, call_id: str, category: str, summary: str = "", emergency_id: int | None = None) -> Claim:
        now = self.clock()

        def txn(conn: Conn) -> Claim:
            inserted = conn.execute(
                "INSERT INTO escalations(call_id, category, emergency_id, summary, state, created_at, claimed_at) "
                "VALUES (?, ?, ?, ?, 'paging', ?, ?) ON CONFLICT (call_id, category) DO NOTHING",
                (call_id, category, emergency_id, summary[:2000], now, now),
            ).rowcount
            row = conn.execute(
                "SELECT id, state, claimed_at FROM escalations WHERE call_id = ? AND category = ?", (call_id, category)
            ).fetchone()
            assert row is not None, "the row was just inserted or already there"
            if inserted:
                return Claim(row["id"], "paging", True)
            stale = row["state"] == "paging" and row["claimed_at"] < now - self.reclaim_after_s
            if row["state"] == "failed" or stale:
                taken = conn.execute(
                    "UPDATE escalations SET state = 'paging', claimed_at = ?, finished_at = NULL "
                    "WHERE id = ? AND state = ? AND claimed_at = ?",
                    (now, row["id"], row["state"], row["claimed_at"]),
                ).rowcount
                if taken:
                    return Claim(row["id"], "paging", True)
            return Claim(row["id"], row["state"], False)

        return await self.store.write(txn)

    async def record_attempt(
        self, escalation_id: int, *, sink: str, ok: bool, status: int | None = None, error: str = ""
    ) -> None:
        await self.store.execute(
            "INSERT INTO page_attempts(escalation_id, sink, at, ok, status, error) VALUES (?, ?, ?, ?, ?, ?)",
            (escalation_id, sink, self.clock(), int(ok), status, error[:500]),
        )

    async def finish(self, escalation_id: int, state: PageState) -> None:
        await self.store.execute(
            "UPDATE escalations SET state = ?, finished_at = ? WHERE id = ?", (state, self.clock(), escalation_id)
        )

    async def state(self, escalation_id: int) -> PageState | None:
        rows = await self.store.query("SELECT state FROM escalations WHERE id = ?", (escalation_id,))
        return rows[0]["state"] if rows else None

    async def accepted_by(self, escalation_id: int, sinks: tuple[str, ...]) -> list[str]:
        """Which of `sinks` accepted this escalation's page (in any attempt)."""
        rows = await self.store.query(
            "SELECT DISTINCT sink FROM page_attempts WHERE escalation_id = ? AND ok = 1", (escalation_id,)
        )
        return [r["sink"] for r in rows if r["sink"] in sinks]

    async def escalations(self, *, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first: `{id, call_id, category, created_at, state, paged, attempts: [...]}`."""
        rows = await self.store.query(
            "SELECT id, call_id, category, emergency_id, state, created_at, finished_at FROM escalations "
            "ORDER BY id DESC LIMIT ?",
            (max(1, min(limit, 500)),),
        )
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        marks = ",".join("?" for _ in ids)
        attempts = await self.store.query(
            f"SELECT escalation_id, sink, at, ok, status, error FROM page_attempts WHERE escalation_id IN ({marks}) "
            "ORDER BY id",
            ids,
        )
        by_id: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
        for a in attempts:
            by_id[a["escalation_id"]].append(
                {"sink": a["sink"], "at": a["at"], "ok": bool(a["ok"]), "status": a["status"], "error": a["error"]}
            )
        return [{**r, "paged": r["state"] == "paged", "attempts": by_id[r["id"]]} for r in rows]
