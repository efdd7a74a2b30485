"""Jamie's front desk: tenants, maintenance tickets, messages, callbacks and emergencies.

The business side of Jamie's tools, with no VAPI or MCP in it: the VAPI face calls it when
the model (or VAPI's `tool-calls` message) asks for a tool, and the MCP server and dashboard
list what it recorded. Every write is idempotent per call, because VAPI delivers at least
once and a caller repeats themselves: the same issue reported twice in one call is one ticket.
Tables live in `storage.MIGRATIONS` (`tenants` is seeded with three demo tenants).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from .errors import InputError
from .storage import Conn
from .store import Store

__all__ = [
    "CATEGORIES",
    "URGENCIES",
    "OfficeNote",
    "PropertyDesk",
    "Tenant",
    "Ticket",
    "normalise_phone",
]

CATEGORIES = ("plumbing", "electrical", "hvac", "appliance", "lock", "pest", "structural", "other")
URGENCIES = ("emergency", "urgent", "routine")
_CATEGORY_ALIASES = {
    "heating": "hvac",
    "heat": "hvac",
    "ac": "hvac",
    "air conditioning": "hvac",
    "leak": "plumbing",
    "water": "plumbing",
    "locks": "lock",
    "lockout": "lock",
    "door": "lock",
    "pests": "pest",
    "bugs": "pest",
}


@dataclass(frozen=True, slots=True)
class Tenant:
    phone: str
    name: str
    unit: str
    property: str


@dataclass(frozen=True, slots=True)
class Ticket:
    """A maintenance request; `new` is False when this call already reported the same issue."""

    ticket: int
    unit: str
    category: str
    description: str
    urgency: str
    permission_to_enter: bool | None
    callback_number: str
    new: bool


@dataclass(frozen=True, slots=True)
class OfficeNote:
    """A message or callback request for the office; `new` is False for a repeat."""

    id: int
    kind: str
    new: bool


def normalise_phone(number: str | None) -> str:
    """Digits only, the last ten (a North-American number without its country code)."""
    return re.sub(r"\D", "", number or "")[-10:]


def _clean(value: Any, *, limit: int = 500) -> str:
    return " ".join(str(value or "").split())[:limit]


def _key(*parts: str) -> str:
    return "|".join(re.sub(r"[^a-z0-9]+", " ", p.lower()).strip() for p in parts)


class PropertyDesk:
    """Reads and writes the desk's tables in `store` (the core's Store)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- tenants ---------------------------------------------------------------------------
    async def lookup_tenant(self, phone: str | None) -> Tenant | None:
        """The tenant whose number is `phone` (compared as `normalise_phone`), found by the
        `phone_key` index; rows not keyed yet ('') are compared here."""
        digits = normalise_phone(phone)
        if len(digits) < 7:
            return None
        rows = await self.store.lookup(
            "SELECT phone, name, unit, property, phone_key FROM tenants WHERE phone_key IN (?, '')", (digits,)
        )
        for row in sorted(rows, key=lambda r: r["phone_key"] != digits):  # keyed rows first
            if row.pop("phone_key") == digits or normalise_phone(row["phone"]) == digits:
                return Tenant(**row)
        return None

    async def tenants(self) -> list[Tenant]:
        return [Tenant(**r) for r in await self.store.query("SELECT phone, name, unit, property FROM tenants")]

    # --- maintenance -----------------------------------------------------------------------
    async def create_maintenance_request(
        self,
        *,
        call_id: str,
        unit: str,
        category: str,
        description: str,
        urgency: str = "routine",
        permission_to_enter: bool | None = None,
        callback_number: str = "",
        property: str = "",
    ) -> Ticket:
        """Open a ticket, or return the one this call already opened for the same unit and category.

        Raises:
            InputError: no unit or no description.
        """
        unit, description = _clean(unit, limit=20), _clean(description)
        if not unit:
            raise InputError("create_maintenance_request needs the unit number.")
        if not description:
            raise InputError("create_maintenance_request needs a description of the problem.")
        category = _clean(category).lower()
        category = _CATEGORY_ALIASES.get(category, category if category in CATEGORIES else "other")
        urgency = _clean(urgency).lower()
        urgency = urgency if urgency in URGENCIES else "routine"
        issue_key = _key(unit, category)
        number = _clean(callback_number, limit=32)

        def txn(conn: Conn) -> Ticket:
            row = _ticket_row(conn, call_id, issue_key)
            if row is None:
                # On PostgreSQL another replica may open the same issue at this moment: the
                # unique (call_id, issue_key) lets one insert win, and the other merges below.
                created = conn.execute(
                    "INSERT INTO maintenance_requests(call_id, issue_key, unit, property, category, description, "
                    "urgency, permission_to_enter, callback_number, created_at) VALUES (?,?,?,?,?,?,?,?,?,?) "
                    "ON CONFLICT (call_id, issue_key) DO NOTHING RETURNING ticket",
                    (
                        call_id,
                        issue_key,
                        unit,
                        _clean(property, limit=100),
                        category,
                        description,
                        urgency,
                        None if permission_to_enter is None else int(permission_to_enter),
                        number,
                        time.time(),
                    ),
                ).fetchone()
                if created is not None:
                    return Ticket(
                        int(created["ticket"]), unit, category, description, urgency, permission_to_enter, number, True
                    )
                row = _ticket_row(conn, call_id, issue_key)
                assert row is not None, "the conflicting ticket exists"
            # The same issue again: keep one ticket, keep any new detail the caller added.
            merged = row["description"]
            if description.lower() not in merged.lower():
                merged = f"{merged} / {description}"[:2000]
            stronger = min(row["urgency"], urgency, key=URGENCIES.index)
            permission = row["permission_to_enter"] if permission_to_enter is None else int(permission_to_enter)
            number_kept = number or row["callback_number"]
            conn.execute(
                "UPDATE maintenance_requests SET description = ?, urgency = ?, permission_to_enter = ?, "
                "callback_number = ? WHERE ticket = ?",
                (merged, stronger, permission, number_kept, row["ticket"]),
            )
            return Ticket(
                row["ticket"],
                unit,
                category,
                merged,
                stronger,
                None if permission is None else bool(permission),
                number_kept,
                False,
            )

        return await self.store.write(txn)

    async def tickets(self, *, limit: int = 50, call_id: str | None = None) -> list[dict[str, Any]]:
        """Newest tickets first (all, or one call's)."""
        where, params = ("WHERE call_id = ?", (call_id, limit)) if call_id else ("", (limit,))
        return await self.store.query(
            "SELECT ticket, call_id, unit, property, category, description, urgency, permission_to_enter, "
            f"callback_number, status, created_at FROM maintenance_requests {where} ORDER BY ticket DESC LIMIT ?",
            params,
        )

    # --- messages and callbacks ------------------------------------------------------------
    async def take_message(self, *, call_id: str, name: str, number: str, message: str) -> OfficeNote:
        """Raises:
        InputError: an empty message.
        """
        return await self._note(call_id, "message", name, number, message, "")

    async def schedule_callback(
        self, *, call_id: str, name: str, number: str, reason: str, preferred_time: str = ""
    ) -> OfficeNote:
        """One callback request per call (a repeat updates nothing and returns the first).

        Raises:
            InputError: no number to call back.
        """
        if not normalise_phone(number):
            raise InputError("schedule_callback needs a phone number to call back.")
        return await self._note(call_id, "callback", name, number, reason or "callback requested", preferred_time)

    async def _note(
        self, call_id: str, kind: str, name: str, number: str, text: str, preferred_time: str
    ) -> OfficeNote:
        text = _clean(text, limit=2000)
        if not text:
            raise InputError(f"{'take_message' if kind == 'message' else 'schedule_callback'} needs the message.")
        dedupe = "" if kind == "callback" else _key(text)

        def txn(conn: Conn) -> OfficeNote:
            created = conn.execute(
                "INSERT INTO office_messages(call_id, kind, name, number, reason, preferred_time, "
                "dedupe_key, created_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING RETURNING id",
                (
                    call_id,
                    kind,
                    _clean(name, limit=100),
                    _clean(number, limit=32),
                    text,
                    _clean(preferred_time, limit=100),
                    dedupe,
                    time.time(),
                ),
            ).fetchone()
            if created:
                return OfficeNote(int(created["id"]), kind, True)
            existing = conn.execute(
                "SELECT id FROM office_messages WHERE call_id = ? AND kind = ? AND dedupe_key = ?",
                (call_id, kind, dedupe),
            ).fetchone()
            return OfficeNote(int(existing["id"]) if existing else 0, kind, False)

        return await self.store.write(txn)

    async def office_messages(self, *, limit: int = 50, kind: str | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE kind = ?", (kind, limit)) if kind else ("", (limit,))
        return await self.store.query(
            "SELECT id, call_id, kind, name, number, reason, preferred_time, created_at FROM office_messages "
            f"{where} ORDER BY id DESC LIMIT ?",
            params,
        )

    # --- emergencies -----------------------------------------------------------------------
    async def escalate_emergency(
        self, *, call_id: str, category: str, summary: str, callback_number: str = ""
    ) -> OfficeNote:
        """Record an emergency for the on-call team, once per call and category."""
        category = _clean(category, limit=40).lower() or "other"

        def txn(conn: Conn) -> OfficeNote:
            created = conn.execute(
                "INSERT INTO emergencies(call_id, category, summary, callback_number, created_at) "
                "VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING RETURNING id",
                (call_id, category, _clean(summary, limit=2000), _clean(callback_number, limit=32), time.time()),
            ).fetchone()
            if created:
                return OfficeNote(int(created["id"]), "emergency", True)
            existing = conn.execute(
                "SELECT id FROM emergencies WHERE call_id = ? AND category = ?", (call_id, category)
            ).fetchone()
            return OfficeNote(int(existing["id"]) if existing else 0, "emergency", False)

        return await self.store.write(txn)

    async def emergencies(self, *, limit: int = 50) -> list[dict[str, Any]]:
        return await self.store.query(
            "SELECT id, call_id, category, summary, callback_number, created_at FROM emergencies "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        )


def _ticket_row(conn: Conn, call_id: str, issue_key: str) -> dict[str, Any] | None:
    return conn.execute(
        "SELECT ticket, description, urgency, permission_to_enter, callback_number "
        "FROM maintenance_requests WHERE call_id = ? AND issue_key = ?",
        (call_id, issue_key),
    ).fetchone()
