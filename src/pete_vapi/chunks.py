"""What a turn says, written the way VAPI reads it: `chat.completion.chunk` SSE frames, or one JSON body.

VAPI's parser is strict in undocumented ways (vapi.md §1.4): every frame carries `choices`;
the stream opens with a role frame, closes with a frame whose `delta` is `{}` and whose
`finish_reason` is `stop` or `tool_calls`, then `data: [DONE]`; anything after the finish
frame is ignored or fatal. `ChunkStream` enforces that order, so no code path can emit a
frame after the end. `CompletionBody` collects the same calls into a `chat.completion`.

Text is framed where VAPI can use it (`TextFrames`). VAPI does not hand the model's text to the
voice token by token: its `voice.chunkPlan` (on by default) buffers it and cuts a chunk for the
voice only at one of its punctuation boundaries (vapi.md §1.5). So after the first words (sent at
once: VAPI's first-token timer and Pete's own TTFT watch them), text waits in the stream until it
holds a character VAPI could cut at, and goes out as one frame. The caller hears exactly what and
when they would have, and a reply costs a few frames instead of one per token: on both ends, and
at 32 concurrent calls each frame's CPU is time every other call's first token queues behind.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any, Literal, Protocol

import orjson
from starlette.types import Send

from pete_mcp.core.sse import DONE, sse_frame

__all__ = [
    "CHUNK_BOUNDARIES",
    "SSE_HEADERS",
    "ChunkStream",
    "CompletionBody",
    "ReplySink",
    "TextFrames",
    "new_completion_id",
]

log = logging.getLogger(__name__)

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]

ToolFrame = Literal["tool_calls", "function_call"]
TextFrames = Literal["chunk-plan", "every-delta"]
"""`chunk-plan`: the first delta at once, then text up to each place VAPI's chunkPlan may cut it;
`every-delta`: a frame per model delta (for an assistant whose `voice.chunkPlan.enabled` is false,
where the voice provider gets the text as it comes)."""

# Every value VAPI accepts in `chunkPlan.punctuationBoundaries` (its defaults, which vary by voice
# provider, are a subset), a line break, and the `>` closing a `<flush />` tag (which must go at once).
CHUNK_BOUNDARIES = frozenset("\u3002\uff0c.!?;)\u060c\u06d4\u0964\u0965|,:\n>")

_OPEN_TAIL = b',"finish_reason":null}]}\n\n'  # a frame that does not finish the stream
_OPEN_TAIL_AFTER_DELTA = b"}" + _OPEN_TAIL  # closes a `{"content":...` delta written inline
_DONE_FRAME = sse_frame(DONE).encode()


def _json(value: Any) -> bytes:
    """Compact JSON bytes (orjson: the per-delta cost is CPU every concurrent call queues behind).

    orjson refuses a lone UTF-16 surrogate, which a model's escaped output can hold; the standard
    library writes it as an escape, so the frame stays well-formed either way.
    """
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value, separators=(",", ":")).encode()


def new_completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


class ReplySink(Protocol):
    """Where a turn's reply goes; `finish` is final."""

    @property
    def finished(self) -> bool: ...

    @property
    def spoken(self) -> str: ...

    @property
    def unsent(self) -> str: ...

    async def content(self, text: str) -> None: ...

    async def tool_call(self, name: str, arguments: dict[str, Any]) -> None: ...

    async def finish(self, reason: str) -> None: ...


class ChunkStream:
    """Writes SSE frames straight to the ASGI `send` (the caller has sent the response start)."""

    def __init__(
        self, send: Send, *, model: str, tool_frame: ToolFrame = "tool_calls", text_frames: TextFrames = "chunk-plan"
    ) -> None:
        self._send = send
        self._tool_frame = tool_frame
        self._every_delta = text_frames == "every-delta"
        envelope = {
            "id": new_completion_id(),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }
        # Every frame shares the envelope: encode it once, and only the delta per frame (the
        # content frame, one per model delta, only its text).
        self._head = b"data: " + _json(envelope)[:-1] + b',"choices":[{"index":0,"delta":'
        self._content_head = self._head + b'{"content":'
        self._tool_index = 0
        self._parts: list[str] = []  # all the text of the reply, sent or waiting
        self._waiting: list[str] = []  # text not sent yet: no boundary since the last frame
        self._worded = False  # a frame with more than white space has gone out
        self.finished = False

    @property
    def spoken(self) -> str:
        """The reply's text so far (text waiting for a boundary included: the end always sends it)."""
        return "".join(self._parts)

    @property
    def unsent(self) -> str:
        """The end of `spoken` not written yet: what a hang-up now cuts off."""
        return "".join(self._waiting)

    async def start(self) -> None:
        """Response headers and the role frame, sent at once so VAPI sees the stream open."""
        await self._send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        await self._frame({"role": "assistant", "content": ""})

    async def content(self, text: str) -> None:
        if not text or not self._open("content"):
            return
        self._parts.append(text)
        self._waiting.append(text)
        if not self._worded or self._every_delta or not CHUNK_BOUNDARIES.isdisjoint(text):
            self._worded = self._worded or not text.isspace()
            await self._send({"type": "http.response.body", "body": self._waiting_frame(), "more_body": True})

    def _waiting_frame(self) -> bytes:
        """The text waiting as one content frame (b"" when none), which leaves the queue empty."""
        if not self._waiting:
            return b""
        text = "".join(self._waiting)
        self._waiting.clear()
        return self._content_head + _json(text) + _OPEN_TAIL_AFTER_DELTA

    async def tool_call(self, name: str, arguments: dict[str, Any]) -> None:
        if not self._open("tool call"):
            return
        encoded = json.dumps(arguments, separators=(",", ":"))
        if self._tool_frame == "function_call":
            await self._frame({"role": "assistant", "function_call": {"name": name, "arguments": encoded}})
            return
        call = {
            "index": self._tool_index,
            "id": f"call_{uuid.uuid4().hex[:16]}",
            "type": "function",
            "function": {"name": name, "arguments": encoded},
        }
        self._tool_index += 1
        await self._frame({"role": "assistant", "tool_calls": [call]})

    async def finish(self, reason: str) -> None:
        if not self._open("finish"):
            return
        if reason == "tool_calls" and self._tool_frame == "function_call":
            reason = "function_call"
        # Any text still waiting, the finish frame and `[DONE]` in one write: nothing may come
        # between them anyway.
        finish = self._head + b'{},"finish_reason":' + _json(reason) + b"}]}\n\n"
        await self._send(
            {"type": "http.response.body", "body": self._waiting_frame() + finish + _DONE_FRAME, "more_body": False}
        )
        self.finished = True

    def _open(self, what: str) -> bool:
        if self.finished:
            log.warning("dropped a %s after the finish frame (VAPI ignores or fails on it)", what)
        return not self.finished

    async def _frame(self, delta: dict[str, Any]) -> None:
        """One frame for `delta`, after any text still waiting (in the same write)."""
        frame = self._waiting_frame() + self._head + _json(delta) + _OPEN_TAIL
        await self._send({"type": "http.response.body", "body": frame, "more_body": True})


class CompletionBody:
    """Collects a turn into one `chat.completion` (for requests with `stream: false`)."""

    def __init__(self, *, model: str) -> None:
        self._model = model
        self._parts: list[str] = []
        self._tool_calls: list[dict[str, Any]] = []
        self._reason = "stop"
        self.finished = False

    @property
    def spoken(self) -> str:
        return "".join(self._parts)

    @property
    def unsent(self) -> str:
        return ""  # nothing is sent before the end: a hang-up keeps what the turn had, as it always did

    async def content(self, text: str) -> None:
        if not self.finished:
            self._parts.append(text)

    async def tool_call(self, name: str, arguments: dict[str, Any]) -> None:
        if not self.finished:
            self._tool_calls.append(
                {
                    "id": f"call_{uuid.uuid4().hex[:16]}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(arguments, separators=(",", ":"))},
                }
            )

    async def finish(self, reason: str) -> None:
        if not self.finished:
            self._reason = reason
            self.finished = True

    def body(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.spoken or None}
        if self._tool_calls:
            message["tool_calls"] = self._tool_calls
        elif message["content"] is None:
            message["content"] = ""
        return {
            "id": new_completion_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self._model,
            "choices": [{"index": 0, "message": message, "finish_reason": self._reason}],
        }
