"""Server-sent events: parse `data:` payloads from a byte stream, and frame them for sending."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from pete_mcp.wire import iter_lines

__all__ = ["DONE", "iter_sse_data", "sse_frame"]

DONE = "[DONE]"


async def iter_sse_data(chunks: AsyncIterable[bytes]) -> AsyncIterator[str]:
    """Yield each event's data (multi-line data joined by newlines), per the SSE spec, from the
    body's bytes (`response.aiter_bytes()`; lines split as SSE does, see `pete_mcp.wire`).

    Comments (`:`), `event:`/`id:`/`retry:` fields are skipped; an event ends at a blank line.
    """
    data: list[str] = []
    async for line in iter_lines(chunks):
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(b"data:"):
            value = line[6:] if line[5:6] == b" " else line[5:]
            data.append(value.decode("utf-8", "replace"))
    if data:
        yield "\n".join(data)


def sse_frame(payload: dict[str, Any] | str) -> str:
    """One `data:` frame; dicts are JSON-encoded compactly."""
    body = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {body}\n\n"
