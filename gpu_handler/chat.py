"""Pete's chat job: stream `StreamChunk`s, then one `ChatResult` (or only the result when not streaming)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from pete_mcp.contract import ChatJob, ChatResult, StreamChunk

from .backends.base import ChatRequest, ModelBackend
from .config import WorkerConfig
from .streaming import ReplySummary, batched_reply
from .tracing import end_span, start_job_span

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
    span = start_job_span(
        f"worker chat {job.model}",
        job.trace,
        {"gen_ai.operation.name": "chat", "gen_ai.request.model": job.model, "pete.worker.id": config.worker_id or ""},
    )
    finish: str | None = None
    index = 0
    reply = batched_reply(backend, request, chunk_chars=config.chunk_chars, max_delay_s=config.chunk_max_delay_s)
    try:
        async with aclosing(reply):
            async for item in reply:
                if isinstance(item, ReplySummary):
                    finish = "length" if item.finish_reason == "length" else "stop"
                    yield ChatResult(
                        text=item.text,
                        finish_reason=finish,
                        usage=item.usage,
                        timings=item.timings,
                        model=job.model,
                        worker_id=config.worker_id,
                    ).model_dump()
                elif job.stream:
                    yield StreamChunk(index=index, text=item).model_dump()
                    index += 1
    finally:
        end_span(span, **{"gen_ai.response.finish_reasons": (finish,) if finish else None})
