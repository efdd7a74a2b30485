"""The desk's records as one list: tickets, messages, callbacks and emergencies, listed and closed.

Jamie writes four kinds of record (`property_desk`); the office reads them back and closes
them when handled, through the dashboard API, MCP tools and resources. One shape serves all
four (`DeskItem`), with the caller's number masked, so no face shows a number in full.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

from .errors import InputError, NotFound
from .property_desk import normalise_phone
from .storage import Conn
from .store import Store

__all__ = ["DESK_KINDS", "DeskItem", "DeskKind", "DeskRecords", "DeskStatus", "desk_kind", "mask_caller"]

DeskKind = Literal["tickets", "messages", "callbacks", "emergencies"]
DeskStatus = Literal["open", "closed", "all"]
DESK_KINDS: tuple[DeskKind, ...] = ("tickets", "messages", "callbacks", "emergencies")


@dataclass(frozen=True, slots=True)
class _Table:
    table: str
    id_col: str
    caller_col: str
    where: str  # extra filter (office_messages holds two kinds)
    select: str  # kind-specific columns, aliased to unit, category, urgency, summary, name


_TABLES: dict[DeskKind, _Table] = {
    "tickets": _Table(
        "maintenance_requests",
        "ticket",
        "callback_number",
        "",
        "unit, category, urgency, description AS summary, '' AS name",
    ),
    "messages": _Table(
        "office_messages",
        "id",
        "number",
        "kind = 'message'",
        "'' AS unit, '' AS category, '' AS urgency, reason AS summary, name",
    ),
    "callbacks": _Table(
        "office_messages",
        "id",
        "number",
        "kind = 'callback'",
        "'' AS unit, '' AS category, '' AS urgency, reason AS summary, name, preferred_time",
    ),
    "emergencies": _Table(
        "emergencies",
        "id",
        "callback_number",
        "",
        "'' AS unit, category, 'emergency' AS urgency, summary, '' AS name",
    ),
}


def mask_caller(number: str | None) -> str:
    """A phone number with only its country code and last four digits (`+1•••••4567`)."""
    digits = re.sub(r"\D", "", number or "")
    if not digits:
        return ""
    if len(digits) <= 4:
        return "•••" + digits[-2:]
    country = digits[:-10] if len(digits) > 10 else ""
    return f"{'+' + country if country else ''}•••••{digits[-4:]}"


@dataclass(frozen=True, slots=True)
class DeskItem:
    id: int
    kind: DeskKind
    status: Literal["open", "closed"]
    created_at: float
    closed_at: float | None
    call_id: str
    caller: str
    tenant: str
    unit: str
    category: str
    urgency: str
    summary: str
    closed_by: str
    close_note: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def desk_kind(kind: str) -> DeskKind:
    """Raises NotFound naming the kind when it is not one of `DESK_KINDS`."""
    for known in DESK_KINDS:
        if kind == known:
            return known
    raise NotFound(f"no desk record kind {kind!r}; the kinds are {', '.join(DESK_KINDS)}.")


class DeskRecords:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def list(self, kind: str, *, status: str = "open", limit: int = 50) -> list[DeskItem]:
        """Newest first.

        Raises:
            NotFound: an unknown kind.
            InputError: a status other than open, closed or all.
        """
        t = _TABLES[desk_kind(kind)]
        if status not in ("open", "closed", "all"):
            raise InputError(f"status must be open, closed or all, not {status!r}.")
        clauses = [t.where] if t.where else []
        if status == "closed":
            clauses.append("status = 'closed'")
        elif status == "open":
            clauses.append("status != 'closed'")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self.store.query(
            f"SELECT {t.id_col} AS id, call_id, {t.caller_col} AS caller, status, created_at, closed_at, closed_by, "
            f"close_note, {t.select} FROM {t.table} {where} ORDER BY {t.id_col} DESC LIMIT ?",
            (max(1, min(int(limit), 500)),),
        )
        directory = await self._directory()
        return [self._item(desk_kind(kind), r, directory) for r in rows]

    async def get(self, kind: str, item_id: int) -> DeskItem:
        """Raises NotFound naming the kind and id."""
        t = _TABLES[desk_kind(kind)]
        where = f" AND {t.where}" if t.where else ""
        rows = await self.store.query(
            f"SELECT {t.id_col} AS id, call_id, {t.caller_col} AS caller, status, created_at, closed_at, closed_by, "
            f"close_note, {t.select} FROM {t.table} WHERE {t.id_col} = ?{where}",
            (item_id,),
        )
        if not rows:
            raise NotFound(f"no {kind[:-1] if kind != 'emergencies' else 'emergency'} with id {item_id}.")
        return self._item(desk_kind(kind), rows[0], await self._directory())

    async def close(self, kind: str, item_id: int, *, note: str = "", by: str = "") -> DeskItem:
        """Close an open record; closing a closed one changes nothing and returns it as it is.

        Raises:
            NotFound: an unknown kind, or no such record.
        """
        t = _TABLES[desk_kind(kind)]
        await self.get(kind, item_id)
        where = f" AND {t.where}" if t.where else ""
        note, by = " ".join(note.split())[:1000], by[:100]

        def txn(conn: Conn) -> None:
            conn.execute(
                f"UPDATE {t.table} SET status = 'closed', closed_at = ?, closed_by = ?, close_note = ? "
                f"WHERE {t.id_col} = ? AND status != 'closed'{where}",
                (time.time(), by, note, item_id),
            )

        await self.store.write(txn)
        return await self.get(kind, item_id)

    async def _directory(self) -> dict[str, tuple[str, str]]:
        rows = await self.store.query("SELECT phone, name, unit FROM tenants")
        return {normalise_phone(r["phone"]): (r["name"], r["unit"]) for r in rows}

    @staticmethod
    def _item(kind: DeskKind, row: dict[str, Any], directory: dict[str, tuple[str, str]]) -> DeskItem:
        known = directory.get(normalise_phone(row["caller"])) if normalise_phone(row["caller"]) else None
        summary = row["summary"] or ""
        if row.get("preferred_time"):
            summary = f"{summary} (preferred time: {row['preferred_time']})"
        return DeskItem(
            id=int(row["id"]),
            kind=kind,
            status="closed" if row["status"] == "closed" else "open",
            created_at=row["created_at"],
            closed_at=row["closed_at"],
            call_id=row["call_id"],
            caller=mask_caller(row["caller"]),
            tenant=known[0] if known else (row["name"] or ""),
            unit=row["unit"] or (known[1] if known else ""),
            category=row["category"] or "",
            urgency=row["urgency"] or "",
            summary=summary,
            closed_by=row["closed_by"] or "",
            close_note=row["close_note"] or "",
        )
