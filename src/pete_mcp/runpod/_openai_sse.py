"""An OpenAI chat-completions SSE answer read as chunk dicts, for both endpoint types.

The queue endpoint's OpenAI route and a load-balancing worker's `/v1/chat/completions` answer
with the same stream (Pete's worker writes both), so one reader checks both: an error status
or `{"error": ...}` frame becomes the job's typed failure, a stall or broken connection a
timeout or provider error, and a stream without `data: [DONE]` is refused as cut short.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import httpx

from pete_mcp.core import DONE, ProviderError, ProviderTimeout, iter_sse_data

from ._http import PROVIDER, RunPodHTTP
from ._outcomes import raise_openai_error, raise_openai_job_error
from ._requests import sse_json

__all__ = ["openai_chunks"]


async def openai_chunks(
    response: httpx.Response, *, http: RunPodHTTP, where: str
) -> AsyncGenerator[dict[str, Any], None]:
    """Yield each chunk of `response` (opened with `stream=True`); closes it when done.

    Raises:
        JobFailed: the job failed (an `{"error": ...}` frame or error body).
        ProviderTimeout: the job timed out, or the stream stalled past the read timeout.
        ProviderError: the stream ended without `data: [DONE]`.
    """
    try:
        if not response.is_success:
            await response.aread()
            raise_openai_job_error(response, fallback=http)
        done = False
        try:
            async for data in iter_sse_data(response.aiter_bytes()):
                if data == DONE:
                    done = True
                    break
                chunk = sse_json(data)
                if chunk is None:
                    break  # a frame cut mid-way: the stream was truncated
                if "error" in chunk:
                    raise_openai_error(chunk["error"])
                yield chunk
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(f"{where} stalled (no data within the read timeout).", provider=PROVIDER) from exc
        except httpx.TransportError as exc:
            raise ProviderError(
                f"{where} broke off ({type(exc).__name__}): the answer is incomplete.", provider=PROVIDER
            ) from exc
        if not done:
            raise ProviderError(
                f"{where} ended without `data: [DONE]`: the answer may be cut short "
                "(RunPod closes long OpenAI-route streams).",
                provider=PROVIDER,
            )
    finally:
        await response.aclose()
