"""Provider for an Ollama server reached directly, over its native API (ollama/ollama docs/api.md).

Why native and not Ollama's `/v1`: `/api/chat` takes `keep_alive` (whether `/v1` honours it is
unverified), loads a model with an empty `messages` list (a cheap warm-up), and reports its
own load and eval figures. The reply streams as NDJSON: one JSON object per line, each with
`message.content`, the last with `"done": true`, `done_reason` and token counts. An error
arrives as `{"error": "..."}`, as the whole body or as a line of the stream.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from pete_mcp.contract import ChatOptions, Message, Usage
from pete_mcp.core import (
    AuthError,
    Completion,
    InputError,
    NotFound,
    ProviderError,
    ProviderHealth,
    ProviderTimeout,
    ProviderUnavailable,
    StreamEvent,
    TextDelta,
)
from pete_mcp.wire import iter_lines

__all__ = ["OllamaProvider", "ollama_chat_body"]


def ollama_chat_body(
    model: str, messages: Sequence[Message], options: ChatOptions, *, keep_alive: str | int | None
) -> dict[str, Any]:
    """The `/api/chat` request body: OpenAI-style messages and options in Ollama's terms."""
    body: dict[str, Any] = {"model": model, "messages": [_ollama_message(m) for m in messages], "stream": True}
    opts: dict[str, Any] = {}
    if options.temperature is not None:
        opts["temperature"] = options.temperature
    if options.max_tokens is not None:
        opts["num_predict"] = options.max_tokens
    if options.seed is not None:
        opts["seed"] = options.seed
    if options.stop:
        opts["stop"] = list(options.stop)
    if options.top_p is not None:
        opts["top_p"] = options.top_p
    if options.num_ctx is not None:
        opts["num_ctx"] = options.num_ctx  # else Ollama loads its default window and drops the start
    if opts:
        body["options"] = opts
    if keep_alive is not None:
        body["keep_alive"] = keep_alive
    return body


def _ollama_message(message: Message) -> dict[str, Any]:
    """Ollama takes tool-call arguments as an object (OpenAI sends a JSON string) and `tool_name`."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    extra = message.model_extra or {}
    if extra.get("tool_calls"):
        calls = []
        for call in extra["tool_calls"]:
            function = dict(call.get("function") or {})
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                try:
                    function["arguments"] = json.loads(arguments or "{}")
                except ValueError:
                    function["arguments"] = {"input": arguments}
            calls.append({"function": {"name": function.get("name", ""), "arguments": function.get("arguments", {})}})
        out["tool_calls"] = calls
    if message.role == "tool" and extra.get("name"):
        out["tool_name"] = extra["name"]
    if extra.get("images"):
        out["images"] = extra["images"]
    return out


class OllamaProvider:
    """Streams `/api/chat` NDJSON from an Ollama server with the shared `httpx.AsyncClient`."""

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        keep_alive: str | int | None = None,
        timeout_s: float = 30.0,
        first_token_timeout_s: float = 20.0,
        warm_timeout_s: float = 300.0,
    ) -> None:
        self.name = name
        self._http = http
        self._base = base_url.rstrip("/")
        self._keep_alive = keep_alive
        self._timeout = httpx.Timeout(timeout_s, connect=5.0, read=first_token_timeout_s)
        self._warm_timeout = httpx.Timeout(warm_timeout_s, connect=5.0)

    async def stream(self, model: str, messages: Sequence[Message], options: ChatOptions) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        ttft: float | None = None
        parts: list[str] = []
        final: dict[str, Any] | None = None
        body = ollama_chat_body(model, messages, options, keep_alive=self._keep_alive)
        try:
            async with self._http.stream(
                "POST", f"{self._base}/api/chat", json=body, timeout=self._timeout
            ) as response:
                await self._raise_for_status(response, model)
                async for line in iter_lines(response.aiter_bytes()):  # NDJSON: split as `wire` says
                    if not line.strip():
                        continue
                    chunk = self._parse_line(line)
                    text = (chunk.get("message") or {}).get("content") or ""
                    if text:
                        if ttft is None:
                            ttft = time.perf_counter() - started
                        parts.append(text)
                        yield TextDelta(text)
                    if chunk.get("done"):
                        final = chunk
                        break
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(f"{self.name} did not answer in time.", provider=self.name) from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(
                f"{self.name} cannot be reached at {self._base} ({type(exc).__name__}).", provider=self.name
            ) from exc
        if final is None:
            raise ProviderError(f"{self.name} ended the stream without a final `done` object.", provider=self.name)
        yield Completion(
            text="".join(parts),
            provider=self.name,
            model=str(final.get("model") or model),
            finish_reason="length" if final.get("done_reason") == "length" else "stop",
            usage=Usage(
                prompt_tokens=int(final.get("prompt_eval_count") or 0),
                completion_tokens=int(final.get("eval_count") or len(parts)),
            ),
            ttft_s=ttft,
            total_s=time.perf_counter() - started,
        )

    def _parse_line(self, line: bytes) -> dict[str, Any]:
        try:
            chunk = json.loads(line)
        except ValueError as exc:
            raise ProviderError(
                f"{self.name} sent a line that is not JSON: {line[:120].decode(errors='replace')!r}", provider=self.name
            ) from exc
        if not isinstance(chunk, dict):
            raise ProviderError(f"{self.name} sent a line that is not a JSON object.", provider=self.name)
        if "error" in chunk:
            raise ProviderError(f"{self.name} failed mid-stream: {chunk['error']}", provider=self.name)
        return chunk

    async def _raise_for_status(self, response: httpx.Response, model: str) -> None:
        if response.status_code < 400:
            return
        raw = (await response.aread()).decode(errors="replace")
        try:
            detail = str(json.loads(raw).get("error") or raw)
        except (ValueError, AttributeError):
            detail = raw
        detail = detail[:300]
        code = response.status_code
        if code in (401, 403):
            raise AuthError(f"{self.name} refused the request ({code}): {detail}")
        if code == 404:
            raise NotFound(f"{self.name} has no model {model!r}: {detail}", hint=f"Run `ollama pull {model}` there.")
        if code in (429, 500, 502, 503, 504):
            # 503 is Ollama's "queue full" (OLLAMA_MAX_QUEUE): a signal to fall back at once.
            raise ProviderUnavailable(f"{self.name} is unavailable ({code}): {detail}", provider=self.name)
        if 400 <= code < 500:
            raise InputError(f"{self.name} rejected the request ({code}): {detail}")
        raise ProviderError(f"{self.name} answered {code}: {detail}", provider=self.name)

    async def warm(self, model: str) -> float:
        """Load `model` (docs/api.md: `/api/chat` with empty `messages`); seconds taken."""
        started = time.perf_counter()
        body: dict[str, Any] = {"model": model, "messages": [], "stream": False}
        if self._keep_alive is not None:
            body["keep_alive"] = self._keep_alive
        try:
            response = await self._http.post(f"{self._base}/api/chat", json=body, timeout=self._warm_timeout)
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(f"{self.name} did not load {model!r} in time.", provider=self.name) from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(
                f"{self.name} cannot be reached at {self._base} ({type(exc).__name__}).", provider=self.name
            ) from exc
        await self._raise_for_status(response, model)
        return time.perf_counter() - started

    async def health(self) -> ProviderHealth:
        """`/api/version` and `/api/ps` (what is loaded): neither loads a model."""
        try:
            version = await self._http.get(f"{self._base}/api/version", timeout=5.0)
            running = await self._http.get(f"{self._base}/api/ps", timeout=5.0)
        except httpx.HTTPError as exc:
            return ProviderHealth(False, f"{self.name} unreachable: {type(exc).__name__}")
        if version.status_code >= 400 or running.status_code >= 400:
            return ProviderHealth(False, f"{self.name} answered {version.status_code}/{running.status_code}")
        loaded = [str(m.get("name") or m.get("model") or "") for m in running.json().get("models", [])]
        figures: dict[str, int | float | str] = {
            "version": str(version.json().get("version", "")),
            "models_loaded": len(loaded),
            "loaded": ", ".join(loaded),
        }
        return ProviderHealth(True, f"{self.name} {figures['version']}: {len(loaded)} model(s) loaded", figures)

    async def cancel(self, job_id: str) -> None:
        """Ollama stops generating when the stream is closed; nothing to do."""
