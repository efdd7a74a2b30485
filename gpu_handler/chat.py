"""Pete's chat job: stream `StreamChunk`s, then one `ChatResult` (or only the result when not streaming)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from pete_mcp.contract import ChatJob, ChatResult, StreamChunk

from .backends.base import ChatRequest, ModelBackend
from .config import WorkerConfig
from .streaming import ReplySummary, batched_reply

__all__ = ["run_chat_job"]


async def run_chat_job(
    job: ChatJob, backend: ModelBackend, config: WorkerConfig
) -> AsyncGenerator[dict[str, Any], None]:
    """Yield `StreamChunk.model_dump()` dicts (if `job.stream`), then `ChatResult.model_dump()`."""
    request = ChatRequest(
        model=job.model,
        messages=[message.model_dump() for message in job.messages],
        temperature=job.options.temperature,
        max_tokens=job.options.max_tokens,
        seed=job.options.seed,
        stop=job.options.stop,
        top_p=job.options.top_p,
        num_ctx=job.options.num_ctx,
    )
    index = 0
    reply = batched_reply(backend, request, chunk_chars=config.chunk_chars, max_delay_s=config.chunk_max_delay_s)
    async with aclosing(reply):
        async for item in reply:
            if isinstance(item, ReplySummary):
                yield ChatResult(
                    text=item.text,
                    finish_reason="length" if item.finish_reason == "length" else "stop",
                    usage=item.usage,
                    timings=item.timings,
                    model=job.model,
                    worker_id=config.worker_id,
                ).model_dump()
            elif job.stream:
                yield StreamChunk(index=index, text=item).model_dump()
                index += 1
