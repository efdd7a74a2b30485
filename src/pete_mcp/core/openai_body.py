"""The OpenAI chat request body, shared by every OpenAI-speaking path (providers and RunPod's route)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pete_mcp.contract import ChatOptions, Message

__all__ = ["chat_body"]


def chat_body(
    model: str,
    messages: Sequence[Message],
    options: ChatOptions,
    *,
    stream: bool,
    num_ctx: bool = False,
    traceparent: str | None = None,
) -> dict[str, Any]:
    """The OpenAI request body for one chat turn (shared by every OpenAI-speaking path).

    `num_ctx` is not an OpenAI field: OpenRouter, vLLM and llama.cpp fix the window themselves
    and may reject unknown keys, so it is left out unless `num_ctx=True` (RunPod's OpenAI
    route to Pete's own worker, which reads it from `openai_input` and hands it to Ollama).
    `traceparent` travels in OpenAI's own `metadata` object (string values, which RunPod
    passes on in `openai_input`), so the worker's span joins the turn's trace.
    """
    body: dict[str, Any] = {
        "model": model,
        "messages": [m.model_dump(exclude_none=True) for m in messages],
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    body.update(options.model_dump(exclude_none=True, exclude=None if num_ctx else {"num_ctx"}))
    if traceparent:
        body["metadata"] = {"traceparent": traceparent}
    return body
