"""`POST /vapi/chat/completions`: VAPI's Custom LLM endpoint (OpenAI-compatible in, VAPI-safe out).

A raw ASGI endpoint rather than a `StreamingResponse`, for three reasons: the 401 must go out
before the body is read; the stream is written frame by frame by the turn itself, so the
turn's own code decides what comes last; and a client disconnect (barge-in, hang-up) cancels
the turn at once, wherever it is waiting, so the upstream job is cancelled and the partial
reply stored instead of running on for nobody.

After auth, a body that cannot be a turn (over the route's limit, not strict JSON — NaN,
invalid UTF-8, deep nesting — or a field of the wrong type) gets a clear 4xx JSON error that
names the field, before any stream starts. Once the stream has started the answer is HTTP 200
whatever happens: an error becomes a spoken apology inside a well-formed stream that ends with
a finish frame and `[DONE]` (VAPI ends the call on any HTTP error or cut stream).
"""

from __future__ import annotations

import logging

import anyio
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from pete_mcp.contract import ChatOptions
from pete_mcp.core.errors import AuthError, InputError
from pete_mcp.core.jsonwire import parse_model, validation_message

from .auth import LlmAuth
from .beside import beside
from .chunks import ChunkStream, CompletionBody, ReplySink, TextFrames, ToolFrame
from .redact import redact
from .responder import Responder, turn_options
from .tracing import turn_span
from .wire import ChatCompletionRequest

__all__ = ["LLM_PATHS", "CustomLlmEndpoint"]

log = logging.getLogger(__name__)

# VAPI calls `{model.url}/chat/completions`; a model.url that already ends in the suffix doubles it.
LLM_PATHS = (
    "/vapi/chat/completions",
    "/vapi/chat/completions/chat/completions",
    "/vapi/llm/chat/completions",
    "/vapi/llm/chat/completions/chat/completions",
)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class CustomLlmEndpoint:
    """The ASGI app behind every path in `LLM_PATHS`."""

    def __init__(
        self,
        responder: Responder,
        auth: LlmAuth,
        *,
        tool_frame: ToolFrame = "tool_calls",
        text_frames: TextFrames = "chunk-plan",
    ) -> None:
        self.responder = responder
        self.auth = auth
        self.tool_frame: ToolFrame = tool_frame
        self.text_frames: TextFrames = text_frames

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            self.auth.check_headers(Headers(scope=scope))
        except AuthError as exc:
            log.info("VAPI Custom LLM request refused: %s", exc)
            await _error(401, exc.code, str(exc))(scope, receive, send)
            return
        try:
            body = await Request(scope, receive).body()
            request = parse_model(ChatCompletionRequest, body, empty={})
            options = turn_options(request)
        except InputError as exc:
            log.warning("unusable VAPI Custom LLM request: %s", exc)
            await _error(exc.status, exc.code, str(exc))(scope, receive, send)
            return
        except ValidationError as exc:
            message = validation_message(exc, prefix="unusable sampling options")
            log.warning("unusable VAPI Custom LLM request: %s", message)
            await _error(400, "bad_input", message)(scope, receive, send)
            return
        if log.isEnabledFor(logging.DEBUG):
            log.debug("VAPI Custom LLM request: %s", redact(request.model_dump(exclude={"messages"})))
        model = request.model or self.responder.core.active_alias
        sink: ReplySink
        if request.wants_stream:
            stream = ChunkStream(send, model=model, tool_frame=self.tool_frame, text_frames=self.text_frames)
            await stream.start()
            sink = stream
        else:
            sink = CompletionBody(model=model)
        try:
            with turn_span(self.responder.core, scope, request):  # the turn's trace, from here to the last frame
                hung_up = await self._run_until_disconnect(request, options, sink, receive)
        except Exception:  # the responder finishes every turn itself; this is the last line of defence
            log.exception("VAPI Custom LLM turn for call %s escaped its responder", request.call_id)
            hung_up = False
            if not sink.finished:
                await sink.content(self.responder.texts.apology)
                await sink.finish("stop")
        if isinstance(sink, CompletionBody) and not hung_up:
            await JSONResponse(sink.body())(scope, receive, send)

    async def _run_until_disconnect(
        self, request: ChatCompletionRequest, options: ChatOptions, sink: ReplySink, receive: Receive
    ) -> bool:
        """Answer the turn; a disconnect before the reply is finished cancels it. True if the caller left."""
        hung_up = False
        with anyio.CancelScope() as turn:

            async def watch() -> None:
                nonlocal hung_up
                while (await receive())["type"] != "http.disconnect":
                    pass
                if not sink.finished:  # after the last frame the server reports a disconnect too
                    hung_up = True
                    log.info("VAPI hung up on call %s mid-turn; cancelling it", request.call_id)
                    turn.cancel()

            async with beside(watch):
                await self.responder.respond(request, options, sink)
        return hung_up
