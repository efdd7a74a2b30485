"""The tenant directory: loaded from a CSV or JSON file (`pete tenants import`), upserted by phone.

Jamie greets a caller by name and unit only when their number is in this directory, so it is
the company's real list, not demo rows: `pete up` seeds `DEMO_TENANTS` for the offline local
stack only. A file is validated whole before anything is written; each bad row is reported
with its line (CSV) or item (JSON) number.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .property_desk import normalise_phone
from .storage import Conn
from .store import Store

__all__ = ["DEMO_TENANTS", "TenantFile", "TenantRow", "list_tenants", "parse_tenant_file", "upsert_tenants"]

_FIELDS = ("phone", "name", "unit", "property", "email", "notes")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class TenantRow:
    phone: str
    name: str
    unit: str
    property: str = ""
    email: str = ""
    notes: str = ""


DEMO_TENANTS = (
    TenantRow("+15551234567", "Dana Ruiz", "4B", "Maple Court"),
    TenantRow("+15552345678", "Sam Okafor", "12", "Harbor View"),
    TenantRow("+15553456789", "Lee Chen", "2A", "Maple Court"),
)


@dataclass
class TenantFile:
    """What a file holds: good rows, and `(line, problem)` for each bad one."""

    rows: list[TenantRow] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  # normalised phone → the line it came from


def _row(raw: dict[str, Any]) -> TenantRow:
    """Raises ValueError naming what is wrong."""
    values = {k: " ".join(str(raw.get(k) or "").split()) for k in _FIELDS}
    digits = re.sub(r"\D", "", values["phone"])
    problems = []
    if not 10 <= len(digits) <= 15:
        problems.append(f"phone {values['phone']!r} needs 10 to 15 digits")
    if not values["name"]:
        problems.append("name is empty")
    if not values["unit"]:
        problems.append("unit is empty")
    if values["email"] and not _EMAIL.match(values["email"]):
        problems.append(f"email {values['email']!r} is not an address")
    if problems:
        raise ValueError("; ".join(problems))
    phone = "+" + digits if len(digits) > 10 else "+1" + digits
    return TenantRow(
        phone,
        values["name"][:100],
        values["unit"][:20],
        values["property"][:100],
        values["email"][:200],
        values["notes"][:1000],
    )


def parse_tenant_file(path: Path) -> TenantFile:
    """Read a CSV (with a header row) or a JSON list of objects; columns phone, name, unit, and
    optionally property, email, notes.

    Raises:
        InputError: the file cannot be read, or is neither shape.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    if path.suffix.lower() == ".json" or text.lstrip().startswith("["):
        return _parse_json(text)
    return _parse_csv(text)


def _parse_json(text: str) -> TenantFile:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError(f"the JSON file does not parse: {exc}") from None
    if not isinstance(data, list):
        raise InputError("the JSON file must hold a list of tenant objects.")
    out = TenantFile()
    for index, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            out.errors.append((index, "not an object"))
            continue
        _take(out, index, item)
    return out


def _parse_csv(text: str) -> TenantFile:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in ("phone", "name", "unit") if c not in header]
    if missing:
        raise InputError(f"line 1: the CSV header lacks {', '.join(missing)} (it needs phone, name, unit).")
    reader.fieldnames = header
    out = TenantFile()
    for record in reader:
        line = reader.line_num
        if not any((v or "").strip() for v in record.values() if isinstance(v, str)):
            continue  # a blank line
        _take(out, line, record)
    return out


def _take(out: TenantFile, line: int, raw: dict[str, Any]) -> None:
    try:
        row = _row(raw)
    except ValueError as exc:
        out.errors.append((line, str(exc)))
        return
    key = normalise_phone(row.phone)
    if key in out.lines:
        out.errors.append((line, f"phone {row.phone} repeats line {out.lines[key]}"))
        return
    out.lines[key] = line
    out.rows.append(row)


async def upsert_tenants(store: Store, rows: list[TenantRow] | tuple[TenantRow, ...]) -> tuple[int, int]:
    """Insert new tenants and update known ones (matched by normalised phone); `(added, updated)`."""

    def txn(conn: Conn) -> tuple[int, int]:
        known: dict[str, str] = {}
        for r in conn.execute("SELECT phone, phone_key FROM tenants").fetchall():
            key = normalise_phone(r["phone"])
            known[key] = r["phone"]
            if r["phone_key"] != key:  # a row from before migration 6 that the migration could not key
                conn.execute("UPDATE tenants SET phone_key = ? WHERE phone = ?", (key, r["phone"]))
        added = updated = 0
        now = time.time()
        for row in rows:
            key = normalise_phone(row.phone)
            stored = known.get(key)
            if stored is None:
                conn.execute(
                    "INSERT INTO tenants(phone, phone_key, name, unit, property, email, notes, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (row.phone, key, row.name, row.unit, row.property, row.email, row.notes, now),
                )
                known[key] = row.phone
                added += 1
            else:
                conn.execute(
                    "UPDATE tenants SET name = ?, unit = ?, property = ?, email = ?, notes = ?, updated_at = ? "
                    "WHERE phone = ?",
                    (row.name, row.unit, row.property, row.email, row.notes, now, stored),
                )
                updated += 1
        return added, updated

    return await store.write(txn)


async def list_tenants(store: Store) -> list[TenantRow]:
    rows = await store.query("SELECT phone, name, unit, property, email, notes FROM tenants ORDER BY name, phone")
    return [TenantRow(**r) for r in rows]
