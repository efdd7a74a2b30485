"""Provider for anything serving OpenAI's `/v1/chat/completions`: OpenRouter, vLLM, llama.cpp, Ollama /v1."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence

import httpx
import orjson

from pete_mcp.contract import ChatOptions, Message, Usage
from pete_mcp.core import (
    DONE,
    AuthError,
    Completion,
    NotFound,
    ProviderError,
    ProviderHealth,
    ProviderTimeout,
    ProviderUnavailable,
    StreamedReply,
    StreamEvent,
    TextDelta,
    chat_body,
    iter_sse_data,
)

__all__ = ["OpenAICompatibleProvider"]


class OpenAICompatibleProvider:
    """Streams from an OpenAI-compatible server with the shared `httpx.AsyncClient`."""

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 30.0,
        first_token_timeout_s: float = 20.0,
    ) -> None:
        """`headers` are sent with every request (OpenRouter's optional `HTTP-Referer` and `X-Title`)."""
        self.name = name
        self._http = http
        self._base = base_url.rstrip("/")
        self._headers = {k: v for k, v in (headers or {}).items() if v}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._timeout = httpx.Timeout(timeout_s, connect=5.0, read=first_token_timeout_s)

    async def stream(self, model: str, messages: Sequence[Message], options: ChatOptions) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        ttft: float | None = None
        reply = StreamedReply()
        body = chat_body(model, messages, options, stream=True)
        try:
            async with self._http.stream(
                "POST", f"{self._base}/chat/completions", json=body, headers=self._headers, timeout=self._timeout
            ) as response:
                await self._raise_for_status(response, model)
                async for data in iter_sse_data(response.aiter_bytes()):
                    if data == DONE:
                        break
                    if text := reply.take(orjson.loads(data)):
                        if ttft is None:
                            ttft = time.perf_counter() - started
                        yield TextDelta(text)
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(f"{self.name} did not answer in time.", provider=self.name) from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(
                f"{self.name} cannot be reached at {self._base} ({type(exc).__name__}).", provider=self.name
            ) from exc
        usage = reply.usage
        if not usage.completion_tokens and reply.parts:
            # llama.cpp's server streams one token per delta but sends no usage while streaming.
            usage = Usage(prompt_tokens=usage.prompt_tokens, completion_tokens=len(reply.parts))
        yield Completion(
            text=reply.text,
            provider=self.name,
            model=model,
            finish_reason=reply.finish,
            usage=usage,
            ttft_s=ttft,
            total_s=time.perf_counter() - started,
        )

    async def _raise_for_status(self, response: httpx.Response, model: str) -> None:
        if response.status_code < 400:
            return
        detail = (await response.aread()).decode(errors="replace")[:300]
        if response.status_code in (401, 403):
            raise AuthError(f"{self.name} refused the API key ({response.status_code}).")
        if response.status_code == 404:
            raise NotFound(f"{self.name} has no model {model!r} (404).")
        if response.status_code in (429, 502, 503, 504):
            raise ProviderUnavailable(
                f"{self.name} is unavailable ({response.status_code}): {detail}", provider=self.name
            )
        raise ProviderError(f"{self.name} answered {response.status_code}: {detail}", provider=self.name)

    async def warm(self, model: str) -> float:
        started = time.perf_counter()
        async for _ in self.stream(model, [Message(role="user", content="Hi")], ChatOptions(max_tokens=1)):
            pass
        return time.perf_counter() - started

    async def health(self) -> ProviderHealth:
        try:
            response = await self._http.get(f"{self._base}/models", headers=self._headers, timeout=5.0)
        except httpx.HTTPError as exc:
            return ProviderHealth(False, f"{self.name} unreachable: {type(exc).__name__}")
        if response.status_code >= 400:
            return ProviderHealth(False, f"{self.name} answered {response.status_code} on /models")
        models = [m.get("id", "") for m in response.json().get("data", [])]
        return ProviderHealth(True, f"{self.name} serves {len(models)} model(s)", {"models": ", ".join(models)})

    async def cancel(self, job_id: str) -> None:
        """OpenAI-compatible servers stop generating when the stream is closed; nothing to do."""
