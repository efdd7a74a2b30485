"""The VAPI face's span of one Custom LLM turn: the root of the turn's trace.

docs/metrics-and-alerts.md ("Traces") draws the whole tree.

Named as OpenTelemetry's HTTP server convention names a span (`{method} {http.route}`, so
`POST /vapi/chat/completions`), with the call's id as `gen_ai.conversation.id` (the core's span
carries the same). A W3C `traceparent` header on the request continues the caller's trace.
It covers the turn from the first model call to the last frame; nothing is built while
tracing is off.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from opentelemetry import trace
from starlette.datastructures import Headers
from starlette.types import Scope

from pete_mcp.gateway import Core
from pete_mcp.metrics import face_span

from .wire import ChatCompletionRequest

__all__ = ["turn_span"]


def turn_span(core: Core, scope: Scope, request: ChatCompletionRequest) -> AbstractContextManager[trace.Span | None]:
    """The SERVER span of one Custom LLM turn, current while the turn runs (a no-op while tracing is off)."""
    route = scope["path"]  # one of the four literal `LLM_PATHS`: low cardinality, as `http.route` must be

    def attributes() -> dict[str, str | bool]:
        attrs: dict[str, str | bool] = {
            "http.request.method": "POST",
            "http.route": route,
            "pete.face": "vapi",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": request.model or core.active_alias,
            "pete.vapi.stream": request.wants_stream,
        }
        if request.call_id:
            attrs["gen_ai.conversation.id"] = request.call_id
        return attrs

    return face_span(core.tracer, f"POST {route}", attributes, carrier=lambda: Headers(scope=scope))
