"""One reply from a backend, as sentence-sized pieces on time, then a summary with usage and timings.

The backend stream runs in its own task feeding a queue, so held text can be flushed when its
deadline passes even while the model is silent (waiting on the stream directly could not time
out without tearing the stream down). Cancelling or closing the reply cancels that task, which
closes the HTTP stream: the model server sees the request end and stops generating.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass

import anyio

from pete_mcp.contract import Timings, Usage

from .backends.base import ChatEnd, ChatEvent, ChatRequest, ModelBackend
from .chunking import SentenceChunker

__all__ = ["ReplySummary", "batched_reply"]

_STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ReplySummary:
    """How a reply ended: the whole text, why it stopped, tokens and timings."""

    text: str
    finish_reason: str
    usage: Usage
    timings: Timings


class _End:
    """Marks the end of the backend stream in the queue."""


async def batched_reply(
    backend: ModelBackend,
    request: ChatRequest,
    *,
    chunk_chars: int,
    max_delay_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncGenerator[str | ReplySummary, None]:
    """Yield text pieces (see `SentenceChunker`), then one `ReplySummary`.

    Raises whatever the backend raises (PeteError subclasses), after cancelling its stream.
    """
    started = clock()
    chunker = SentenceChunker(max_chars=chunk_chars, max_delay_s=max_delay_s)
    queue: asyncio.Queue[ChatEvent | BaseException | _End] = asyncio.Queue()
    pump = asyncio.create_task(_pump(backend.stream_chat(request), queue))
    parts: list[str] = []
    first_token_at: float | None = None
    end = ChatEnd()
    try:
        while True:
            item = await _next(queue, chunker.deadline(), clock)
            if item is None:  # the held text's deadline passed
                piece = chunker.due(clock())
                if piece:
                    yield piece
                continue
            if isinstance(item, _End):
                break
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, ChatEnd):
                end = item
                continue
            if first_token_at is None:
                first_token_at = clock()
            parts.append(item.text)
            piece = chunker.add(item.text, clock())
            if piece:
                yield piece
    finally:
        await _stop(pump)
    rest = chunker.flush()
    if rest:
        yield rest
    yield _summary(parts, end, started=started, first_token_at=first_token_at, finished=clock())


async def _pump(events: AsyncIterator[ChatEvent], queue: asyncio.Queue[ChatEvent | BaseException | _End]) -> None:
    try:
        async for event in events:
            queue.put_nowait(event)
    except Exception as err:
        queue.put_nowait(err)
    else:
        queue.put_nowait(_End())
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


async def _next(
    queue: asyncio.Queue[ChatEvent | BaseException | _End], deadline: float | None, clock: Callable[[], float]
) -> ChatEvent | BaseException | _End | None:
    """The next queued item, or None once `deadline` passes first."""
    if deadline is None:
        return await queue.get()
    try:
        return await asyncio.wait_for(queue.get(), timeout=max(0.0, deadline - clock()))
    except TimeoutError:
        return None


async def _stop(pump: asyncio.Task[None]) -> None:
    """Cancel the backend stream and wait until it is closed, even while this task is being cancelled."""
    pump.cancel()
    with anyio.move_on_after(_STOP_TIMEOUT_S, shield=True):
        await asyncio.wait({pump})


def _summary(
    parts: list[str], end: ChatEnd, *, started: float, first_token_at: float | None, finished: float
) -> ReplySummary:
    completion_tokens = end.completion_tokens if end.completion_tokens is not None else len(parts)
    tokens_per_s = end.tokens_per_s
    if tokens_per_s is None and first_token_at is not None and completion_tokens > 1:
        decode_s = finished - first_token_at
        # The first token's time is TTFT; the rest arrive over decode_s.
        tokens_per_s = (completion_tokens - 1) / decode_s if decode_s > 0 else None
    return ReplySummary(
        text="".join(parts),
        finish_reason=end.finish_reason,
        usage=Usage(prompt_tokens=end.prompt_tokens or 0, completion_tokens=completion_tokens),
        timings=Timings(
            load_s=end.load_s,
            ttft_s=None if first_token_at is None else first_token_at - started,
            total_s=finished - started,
            tokens_per_s=tokens_per_s,
        ),
    )
