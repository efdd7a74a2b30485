"""What the worker needs from a model server, as one small Protocol.

Two backends implement it: `OpenAICompatibleBackend` (`/v1/chat/completions` SSE: llama.cpp
server, vLLM, Ollama's `/v1`) and `OllamaBackend` (Ollama's native `/api/chat` NDJSON with
`keep_alive`). The handler only sees this module's types, so a new model server is one new
module. Backends raise `gpu_handler.errors` exceptions; the handler turns them into typed job
errors:

    ProviderUnavailable  → model_server_unavailable   (cannot connect)
    NotFound             → model_not_found            (the server does not have that model)
    InputError           → bad_input                  (the server refused the request)
    ProviderTimeout      → timeout
    ProviderError        → model_server_error         (anything else the server did wrong)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pete_mcp.contract import ModelState

__all__ = ["ChatEnd", "ChatEvent", "ChatRequest", "ModelBackend", "TextDelta"]


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion, in the terms both backends understand.

    `extra` carries other OpenAI body fields (top_k, logit_bias, ...): the OpenAI backend
    forwards them, the Ollama backend maps the ones it has an option for. `num_ctx` is the
    context window to load the model with: Ollama takes it per request, OpenAI-compatible
    servers fix it at start, so that backend ignores it.
    """

    model: str
    messages: list[dict[str, Any]]
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: list[str] | None = None
    top_p: float | None = None
    num_ctx: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TextDelta:
    """A piece of generated text, as the model server streamed it (usually one token)."""

    text: str


@dataclass(frozen=True)
class ChatEnd:
    """The end of a reply, with what the server reported (None where it reports nothing)."""

    finish_reason: str = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    load_s: float | None = None
    tokens_per_s: float | None = None


ChatEvent = TextDelta | ChatEnd


class ModelBackend(Protocol):
    """A model server the worker streams chat completions from."""

    name: str

    async def ready(self) -> bool:
        """True once the server answers; never raises."""
        ...

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        """Stream `TextDelta`s, then one `ChatEnd`. Closing the iterator aborts the request."""
        ...

    async def list_models(self) -> list[ModelState]:
        """Models the server has, and which of them are loaded."""
        ...

    async def warmup(self, model: str) -> float:
        """Load `model` (and keep it loaded); return the seconds it took."""
        ...
