"""The dashboard face's span of one `POST /api/prompt` (the page's prompt box and `pete prompt`).

Named by OpenTelemetry's HTTP server convention (`POST /api/prompt`, SERVER kind); a W3C
`traceparent` header continues the caller's trace. The span is opened inside the streamed
body, so it covers every frame and the core's span nests under it. While tracing is off the
body is handed back unwrapped: no span, and no extra step per frame.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

from opentelemetry import trace
from starlette.requests import Request

from pete_mcp.gateway import ChatTurn, Core
from pete_mcp.metrics import face_span

__all__ = ["traced_prompt"]

ROUTE = "/api/prompt"


def traced_prompt(core: Core, request: Request, turn: ChatTurn, frames: AsyncIterator[str]) -> AsyncIterator[str]:
    """`frames` inside the prompt's span (or `frames` itself while tracing is off)."""
    if isinstance(core.tracer, trace.NoOpTracer):
        return frames
    return _traced(core, request, turn, frames)


async def _traced(core: Core, request: Request, turn: ChatTurn, frames: AsyncIterator[str]) -> AsyncIterator[str]:
    def attributes() -> dict[str, str]:
        attrs = {
            "http.request.method": "POST",
            "http.route": ROUTE,
            "pete.face": turn.source,  # "dashboard" or "cli"
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": turn.model or core.active_alias,
        }
        if turn.conversation_id:
            attrs["gen_ai.conversation.id"] = turn.conversation_id
        return attrs

    with face_span(core.tracer, f"POST {ROUTE}", attributes, carrier=lambda: request.headers):
        try:
            async for frame in frames:
                yield frame
        finally:  # closed here, inside the span, not later by the garbage collector
            if isinstance(frames, AsyncGenerator):
                await frames.aclose()
