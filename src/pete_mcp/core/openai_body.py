"""The OpenAI chat request body, shared by every OpenAI-speaking path (providers and RunPod's route)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pete_mcp.contract import ChatOptions, Message

__all__ = ["chat_body"]


def chat_body(model: str, messages: Sequence[Message], options: ChatOptions, *, stream: bool) -> dict[str, Any]:
    """The OpenAI request body for one chat turn (shared by every OpenAI-speaking path)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [m.model_dump(exclude_none=True) for m in messages],
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    body.update(options.model_dump(exclude_none=True))
    return body
