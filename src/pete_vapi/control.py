"""Live call control: `POST {call.monitor.controlUrl}` to make VAPI say something or transfer now.

Used for the holding phrase (a streamed phrase followed by a stall is not spoken until the
stream moves on, vapi.md §1.5) and for a transfer after text was already streamed (a response
with content reads as finished, so its tool calls are never read). Posts are short, bounded
and best effort: a failure is logged and the turn goes on.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

__all__ = ["USER_AGENT", "say", "transfer"]

log = logging.getLogger(__name__)

# api.vapi.ai answers requests without a User-Agent with Cloudflare 403 "1010".
USER_AGENT = "pete-vapi/0.1"
TIMEOUT = httpx.Timeout(3.0, connect=2.0)


async def _post(http: httpx.AsyncClient, url: str, payload: dict[str, Any]) -> bool:
    try:
        response = await http.post(url, json=payload, headers={"user-agent": USER_AGENT}, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        log.warning("VAPI control %s failed: %s", payload.get("type"), type(exc).__name__)
        return False
    if response.status_code >= 400:
        log.warning("VAPI control %s answered %s", payload.get("type"), response.status_code)
        return False
    return True


async def say(http: httpx.AsyncClient, url: str, text: str) -> bool:
    """Speak `text` now, without ending the call."""
    return await _post(http, url, {"type": "say", "content": text, "endCallAfterSpoken": False})


async def transfer(http: httpx.AsyncClient, url: str, number: str, text: str = "") -> bool:
    """Transfer the call to `number`, saying `text` first."""
    payload: dict[str, Any] = {"type": "transfer", "destination": {"type": "number", "number": number}}
    if text:
        payload["content"] = text
    return await _post(http, url, payload)
