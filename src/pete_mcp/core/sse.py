"""Server-sent events: parse `data:` payloads from a byte stream, and frame them for sending."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

__all__ = ["DONE", "iter_sse_data", "sse_frame"]

DONE = "[DONE]"


async def iter_sse_data(lines: AsyncIterable[str]) -> AsyncIterator[str]:
    """Yield each event's data (multi-line data joined by newlines), per the SSE spec.

    Comments (`:`), `event:`/`id:`/`retry:` fields are skipped; an event ends at a blank line.
    """
    data: list[str] = []
    async for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith("data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


def sse_frame(payload: dict[str, Any] | str) -> str:
    """One `data:` frame; dicts are JSON-encoded compactly."""
    body = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {body}\n\n"
