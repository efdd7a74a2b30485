"""Mask secrets and tenant PII in VAPI payloads before anything is logged.

VAPI puts telephony credentials in `phoneNumber` (`twilioAuthToken`, `twilioAccountSid`)
and legacy secrets in `call.serverUrlSecret`; callers' numbers and what they said are tenant
PII. Every log line that shows a payload goes through `redact` first: secret-looking keys
are masked, spoken text is replaced by its length, and anything shaped like a phone number
keeps only its last four digits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["mask_number", "redact", "redact_headers"]

SECRET_KEY = re.compile(r"secret|password|authorization|api_?key|signature|credential$|token$|sid$", re.IGNORECASE)
SPOKEN_KEYS = frozenset(
    {"transcript", "summary", "content", "message", "messages", "messagesOpenAIFormatted", "arguments", "description"}
)
PHONE = re.compile(r"\+?\d[\d\-\s().]{6,}\d")
MASK = "***"


def mask_number(number: object) -> str:
    """A phone number reduced to its last four digits (`***4567`)."""
    digits = re.sub(r"\D", "", str(number or ""))
    return f"{MASK}{digits[-4:]}" if digits else MASK


def _mask_phones(text: str) -> str:
    def mask(match: re.Match[str]) -> str:
        digits = sum(ch.isdigit() for ch in match.group(0))
        return mask_number(match.group(0)) if 10 <= digits <= 15 else match.group(0)

    return PHONE.sub(mask, text)


def redact(value: Any, *, _key: str = "") -> Any:
    """A copy of `value` safe to log: secrets masked, spoken text reduced to its length, numbers to 4 digits."""
    if isinstance(value, Mapping):
        return {str(k): redact(v, _key=str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, _key=_key) for v in value]
    if SECRET_KEY.search(_key) and value not in (None, ""):
        return MASK
    if isinstance(value, str):
        if _key in SPOKEN_KEYS:
            return f"<{len(value)} chars>"
        return _mask_phones(value)
    return value


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Request headers safe to log."""
    return {k: (MASK if SECRET_KEY.search(k) or k.lower() == "x-vapi-secret" else v) for k, v in headers.items()}
