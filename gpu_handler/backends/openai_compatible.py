"""The OpenAI-compatible backend: `/v1/chat/completions` SSE (llama.cpp server, vLLM, Ollama's `/v1`).

Model names are checked against `/v1/models` before a request, because llama.cpp's server
silently answers an unknown model with its default one. The list is cached and refreshed
when a name is missing.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from pete_mcp.contract import ModelState
from pete_mcp.wire import iter_lines

from ..errors import ModelNotFound, ModelServerError
from ._http import open_stream, raise_for_server_status, send, server_error_message, translate_transport_errors
from .base import ChatEnd, ChatEvent, ChatRequest, TextDelta

__all__ = ["OpenAICompatibleBackend"]

# Never forwarded from `extra`: set by the backend, or (num_ctx) fixed when the server starts.
_RESERVED = frozenset({"model", "messages", "stream", "stream_options", "num_ctx", "context_window"})


class OpenAICompatibleBackend:
    """Streams chat completions from an OpenAI-compatible server at `base_url` (without `/v1`)."""

    name = "openai"

    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._known_models: list[str] = []
        self._last_model: str | None = None

    async def ready(self) -> bool:
        try:
            response = await self._client.get(f"{self._base_url}/v1/models", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        await self._require_model(request.model)
        body = self._body(request)
        completion_tokens = 0
        finish_reason = "stop"
        usage: dict[str, Any] = {}
        url = f"{self._base_url}/v1/chat/completions"
        async with (
            translate_transport_errors(self.name, self._base_url),
            open_stream(self._client, url, body) as response,
        ):
            await raise_for_server_status(response, server=self.name, model=request.model)
            self._last_model = request.model
            async for payload in _sse_payloads(response):
                usage = payload.get("usage") or usage
                for choice in payload.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        completion_tokens += 1
                        yield TextDelta(text)
                    finish_reason = choice.get("finish_reason") or finish_reason
        yield ChatEnd(
            finish_reason=finish_reason,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens", completion_tokens),
        )

    async def list_models(self) -> list[ModelState]:
        names = await self._fetch_models()
        return [ModelState(name=name, loaded=name == self._last_model) for name in names]

    async def warmup(self, model: str) -> float:
        """Ask for one token: the server loads the model first (llama.cpp keeps one model resident)."""
        await self._require_model(model)
        body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
        started = time.monotonic()
        async with translate_transport_errors(self.name, self._base_url):
            response = await send(self._client, "POST", f"{self._base_url}/v1/chat/completions", body)
            await raise_for_server_status(response, server=self.name, model=model)
        self._last_model = model
        return time.monotonic() - started

    async def _require_model(self, model: str) -> None:
        if model in self._known_models:
            return
        if model not in await self._fetch_models():
            available = ", ".join(self._known_models) or "none"
            raise ModelNotFound(
                f"The model server has no model {model!r}; it serves: {available}. "
                "Ask for one of those (the `models` control job lists them)."
            )

    async def _fetch_models(self) -> list[str]:
        async with translate_transport_errors(self.name, self._base_url):
            response = await send(self._client, "GET", f"{self._base_url}/v1/models")
            await raise_for_server_status(response, server=self.name, model=None)
        self._known_models = [str(entry["id"]) for entry in response.json().get("data", []) if "id" in entry]
        return self._known_models

    @staticmethod
    def _body(request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {key: value for key, value in request.extra.items() if key not in _RESERVED}
        body.update(
            model=request.model,
            messages=request.messages,
            stream=True,
            # vLLM and Ollama then report token usage in the last chunk; llama.cpp ignores it.
            stream_options={"include_usage": True},
        )
        for key in ("temperature", "max_tokens", "seed", "stop", "top_p"):
            value = getattr(request, key)
            if value is not None:
                body[key] = value
        return body


async def _sse_payloads(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The JSON objects of an SSE stream, up to `data: [DONE]`.

    Raises:
        ModelServerError: the stream ended without `[DONE]` (llama.cpp's server does that when
            generation fails after the 200, e.g. a prompt longer than its context window).
    """
    async for line in iter_lines(response.aiter_bytes()):  # SSE lines, split as `wire` says
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            return
        try:
            payload = json.loads(data)
        except ValueError as err:
            raise ModelServerError(
                f"The model server sent a malformed stream event: {data[:200].decode(errors='replace')!r}"
            ) from err
        message = server_error_message(payload) if "error" in payload else None
        if message is not None:
            raise ModelServerError(f"The model server failed mid-stream: {message}")
        yield payload
    raise ModelServerError(
        "The model server ended the stream without finishing it (no `data: [DONE]`). "
        "Its log has the cause; a prompt longer than the model's context window is a common one."
    )
