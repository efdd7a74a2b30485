"""Redact personal data from transcripts before they become training data.

Patterns for what has a shape (card numbers, phone numbers, e-mail addresses, street
addresses, unit numbers, "my name is ..."), plus every name, surname and property in the
tenant directory. Why not Presidio: its recognisers need a spaCy language model (hundreds
of MB, downloaded at run time), while the data here is narrow — calls to one company whose
tenants are in the directory — and regular expressions over that directory are exact and
testable. Order matters: cards before phones (a card holds phone-shaped runs of digits).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Redactor"]

_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_PHONE = re.compile(
    r"(?<![\d\w])(?:\+?1[\s.-]?)?(?:\(\d{3}\)|\d{3})[\s.-]?\d{3}[\s.-]?\d{4}(?!\d)|(?<!\d)\d{3}[\s.-]\d{4}(?!\d)"
)
_STREET = re.compile(
    r"\b\d{1,6}\s+(?:[A-Za-z0-9]+\s+){1,4}"
    r"(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|terrace|circle|cir)\b\.?",
    re.I,
)
_UNIT = re.compile(r"\b(unit|apartment|apt\.?|suite)\s*#?\s*([0-9]{1,5}[a-z]?|[a-z][0-9]{1,4})\b", re.I)
_SELF_NAME = re.compile(r"\b((?i:my name is|this is|i am|i'm))\s+([A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)\b")


@dataclass
class Redactor:
    """Replaces personal data with `[PHONE]`, `[CARD]`, `[EMAIL]`, `[ADDRESS]`, `[UNIT]`, `[NAME]`, `[PROPERTY]`."""

    names: list[str] = field(default_factory=list)
    properties: list[str] = field(default_factory=list)

    @classmethod
    def for_directory(cls, tenants: Iterable[dict[str, Any]]) -> Redactor:
        """From tenant rows (name, property): full names, first names and surnames of 3+ letters."""
        names: set[str] = set()
        properties: set[str] = set()
        for tenant in tenants:
            full = " ".join(str(tenant.get("name") or "").split())
            if full:
                names.add(full)
                names.update(p for p in full.split() if len(p) >= 3)
            prop = " ".join(str(tenant.get("property") or "").split())
            if prop:
                properties.add(prop)
        # Longest first, so "Dana Ruiz" is replaced whole before "Dana".
        return cls(sorted(names, key=len, reverse=True), sorted(properties, key=len, reverse=True))

    def text(self, value: str) -> str:
        out = _CARD.sub("[CARD]", value)
        out = _EMAIL.sub("[EMAIL]", out)
        out = _PHONE.sub("[PHONE]", out)
        out = _STREET.sub("[ADDRESS]", out)
        out = _UNIT.sub(lambda m: f"{m.group(1)} [UNIT]", out)
        out = _SELF_NAME.sub(lambda m: f"{m.group(1)} [NAME]", out)
        for prop in self.properties:
            out = re.sub(rf"\b{re.escape(prop)}\b", "[PROPERTY]", out, flags=re.I)
        for name in self.names:
            out = re.sub(rf"\b{re.escape(name)}\b", "[NAME]", out, flags=re.I)
        return out

    def value(self, value: Any) -> Any:
        """Redact every string inside `value` (messages, tool-call arguments, nested JSON)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        return value
