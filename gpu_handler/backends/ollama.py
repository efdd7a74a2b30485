"""The Ollama-native backend: `/api/chat` NDJSON with `keep_alive`, `/api/tags`, `/api/ps`.

Native rather than Ollama's `/v1` because only `/api/*` reports load and eval durations
and honours `keep_alive` per request (ollama/ollama docs/api.md). Durations there are in
nanoseconds.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from pete_mcp.contract import ModelState
from pete_mcp.wire import iter_lines

from ..errors import ModelServerError
from ._http import open_stream, raise_for_server_status, send, server_error_message, translate_transport_errors
from .base import ChatEnd, ChatEvent, ChatRequest, TextDelta

__all__ = ["OllamaBackend"]

_NS = 1e9
# OpenAI body fields that have an Ollama option of the same meaning.
_OPTION_NAMES = {
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "repeat_penalty": "repeat_penalty",
}


class OllamaBackend:
    """Streams chat replies from an Ollama server at `base_url` (e.g. http://127.0.0.1:11434)."""

    name = "ollama"

    def __init__(self, client: httpx.AsyncClient, base_url: str, *, keep_alive: int | str = -1) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._keep_alive = keep_alive

    async def ready(self) -> bool:
        try:
            response = await self._client.get(f"{self._base_url}/api/tags", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        body = {
            "model": request.model,
            "messages": request.messages,
            "stream": True,
            "keep_alive": self._keep_alive,
            "options": self._options(request),
        }
        url = f"{self._base_url}/api/chat"
        async with (
            translate_transport_errors(self.name, self._base_url),
            open_stream(self._client, url, body) as response,
        ):
            await raise_for_server_status(response, server=self.name, model=request.model)
            async for line in iter_lines(response.aiter_bytes()):  # NDJSON lines, split as `wire` says
                if not line.strip():
                    continue
                message = _parse_line(line)
                text = (message.get("message") or {}).get("content")
                if text:
                    yield TextDelta(text)
                if message.get("done"):
                    yield _chat_end(message)
                    return
        raise ModelServerError("The Ollama stream ended without its final `done` message.", provider=self.name)

    async def list_models(self) -> list[ModelState]:
        available = await self._get_models("/api/tags")
        loaded = {entry.get("name") or entry.get("model") for entry in await self._get_models("/api/ps")}
        return [
            ModelState(name=str(entry["name"]), loaded=entry["name"] in loaded, size_bytes=entry.get("size"))
            for entry in available
            if "name" in entry
        ]

    async def warmup(self, model: str) -> float:
        """Load the model with an empty chat (Ollama's documented preload) and keep it resident."""
        body = {"model": model, "messages": [], "keep_alive": self._keep_alive}
        started = time.monotonic()
        async with translate_transport_errors(self.name, self._base_url):
            response = await send(self._client, "POST", f"{self._base_url}/api/chat", body)
            await raise_for_server_status(response, server=self.name, model=model)
        return time.monotonic() - started

    async def _get_models(self, path: str) -> list[dict[str, Any]]:
        async with translate_transport_errors(self.name, self._base_url):
            response = await send(self._client, "GET", f"{self._base_url}{path}")
            await raise_for_server_status(response, server=self.name, model=None)
        return list(response.json().get("models") or [])

    @staticmethod
    def _options(request: ChatRequest) -> dict[str, Any]:
        options: dict[str, Any] = {
            ollama_name: request.extra[openai_name]
            for openai_name, ollama_name in _OPTION_NAMES.items()
            if request.extra.get(openai_name) is not None
        }
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if request.max_tokens is not None:
            options["num_predict"] = request.max_tokens
        if request.seed is not None:
            options["seed"] = request.seed
        if request.stop:
            options["stop"] = request.stop
        if request.top_p is not None:
            options["top_p"] = request.top_p
        if request.num_ctx is not None:
            options["num_ctx"] = request.num_ctx
        return options


def _parse_line(line: bytes) -> dict[str, Any]:
    shown = repr(line[:200].decode(errors="replace"))
    try:
        message = json.loads(line)
    except ValueError as err:
        raise ModelServerError(f"Ollama sent a malformed stream line: {shown}", provider="ollama") from err
    if not isinstance(message, dict):
        raise ModelServerError(f"Ollama sent an unexpected stream line: {shown}", provider="ollama")
    error = server_error_message(message) if "error" in message else None
    if error is not None:
        raise ModelServerError(f"Ollama failed mid-stream: {error}", provider="ollama")
    return message


def _chat_end(final: dict[str, Any]) -> ChatEnd:
    eval_count = final.get("eval_count")
    eval_ns = final.get("eval_duration")
    load_ns = final.get("load_duration")
    return ChatEnd(
        finish_reason=str(final.get("done_reason") or "stop"),
        prompt_tokens=final.get("prompt_eval_count"),
        completion_tokens=eval_count,
        load_s=load_ns / _NS if load_ns is not None else None,
        tokens_per_s=eval_count / (eval_ns / _NS) if eval_count and eval_ns else None,
    )
