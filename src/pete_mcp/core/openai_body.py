"""The OpenAI chat wire, shared by every OpenAI-speaking path (providers and RunPod's route): the
request body, and what the chunks of a streamed reply add up to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pete_mcp.contract import ChatOptions, Message, Usage

__all__ = ["StreamedReply", "chat_body"]


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


@dataclass(slots=True)
class StreamedReply:
    """What the chunks of one streamed OpenAI chat reply add up to: its text, finish reason and usage."""

    parts: list[str] = field(default_factory=list)
    finish: str = "stop"
    usage: Usage = field(default_factory=Usage)

    def take(self, chunk: Mapping[str, Any]) -> str:
        """Read one chunk: its new text ("" when it carries none); usage and finish reason are kept."""
        usage = chunk.get("usage")
        if isinstance(usage, dict) and usage:
            self.usage = Usage(
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
            )
        text = ""
        for choice in chunk.get("choices") or ():
            text += (choice.get("delta") or {}).get("content") or ""
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        if text:
            self.parts.append(text)
        return text

    @property
    def text(self) -> str:
        return "".join(self.parts)
