"""A model provider whose backend is the running gateway: how `pete eval` sends its model calls there.

The eval still plays each case through its own in-process VAPI face over a scratch store (so a
suite's tenants, tickets and emergencies never touch the live desk); only the model call leaves,
as `POST /api/prompt` with the whole context and `source: "eval"`. The gateway routes it like any
other turn (its providers, failover, hedging), counts it in its metrics and shows it on its page.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import httpx

from pete_mcp.contract import ChatOptions, Message, Usage
from pete_mcp.core import (
    AuthError,
    Completion,
    JobStarted,
    ModelProvider,
    ModelRegistry,
    ModelSpec,
    NotFound,
    ProviderError,
    ProviderHealth,
    ProviderTimeout,
    ProviderUnavailable,
    Route,
    StreamEvent,
    TextDelta,
)

from ._gateway import Gateway, error_message, sse_parts

__all__ = ["GATEWAY_PROVIDER", "GatewayProvider", "gateway_providers", "gateway_registry"]

GATEWAY_PROVIDER = "gateway"
_ERRORS: dict[str, type[ProviderError]] = {
    "provider_timeout": ProviderTimeout,
    "provider_unavailable": ProviderUnavailable,
}


class GatewayProvider:
    """Streams one reply from the gateway at `url`; the model is the gateway's alias."""

    def __init__(self, http: httpx.AsyncClient, gateway: Gateway, *, source: str = "eval") -> None:
        self.name = GATEWAY_PROVIDER
        self._http = http
        self._gateway = gateway
        self._source = source

    async def stream(self, model: str, messages: Sequence[Message], options: ChatOptions) -> AsyncIterator[StreamEvent]:
        body: dict[str, Any] = {
            "messages": [m.model_dump(mode="json") for m in messages],
            "model": model,
            "max_tokens": min(options.max_tokens or 128, 2048),
            "temperature": options.temperature,
            "seed": options.seed,
            "stop": options.stop,
            "source": self._source,
        }
        url = f"{self._gateway.url}/api/prompt"
        started = time.perf_counter()
        ttft: float | None = None
        parts: list[str] = []
        try:
            async with self._http.stream(
                "POST", url, json=body, headers=self._gateway.headers(stream=True)
            ) as response:
                await self._raise_for_status(response, model)
                async for part in sse_parts(response):
                    if part["type"] == "job":
                        yield JobStarted(str(part["job_id"]))
                    elif part["type"] == "delta":
                        ttft = ttft if ttft is not None else time.perf_counter() - started
                        parts.append(part["text"])
                        yield TextDelta(part["text"])
                    elif part["type"] == "error":
                        kind = _ERRORS.get(str(part.get("code")), ProviderError)
                        raise kind(f"the gateway: {part.get('message')}", provider=self.name)
                    elif part["type"] == "done":
                        yield Completion(
                            text="".join(parts),
                            provider=self.name,
                            model=str(part.get("model") or model),
                            finish_reason=str(part.get("finish_reason") or "stop"),
                            usage=Usage(
                                prompt_tokens=int(part.get("input_tokens") or 0),
                                completion_tokens=int(part.get("output_tokens") or 0),
                            ),
                            ttft_s=ttft,
                            total_s=time.perf_counter() - started,
                            job_id=part.get("job_id"),
                            worker_id=part.get("worker_id"),
                        )
                        return
        except httpx.TimeoutException as exc:
            raise ProviderTimeout("the gateway did not answer in time.", provider=self.name) from exc
        except httpx.TransportError as exc:
            where = self._gateway.url
            raise ProviderUnavailable(f"the gateway at {where} cannot be reached.", provider=self.name) from exc
        raise ProviderError("the gateway ended the stream without a `done` frame.", provider=self.name)

    async def _raise_for_status(self, response: httpx.Response, model: str) -> None:
        if response.status_code == 200:
            return
        await response.aread()
        message = error_message(response)
        if response.status_code in (401, 403):
            raise AuthError(
                f"the gateway refused the eval's prompt ({response.status_code}): {message}",
                hint="Set MCP_TOKEN to the gateway's token, or run pete eval as the user that runs it.",
            )
        if response.status_code == 404:
            raise NotFound(f"the gateway has no model {model!r}: {message}")
        raise ProviderError(f"the gateway answered {response.status_code}: {message}", provider=self.name)

    async def warm(self, model: str) -> float:
        return 0.0  # the gateway keeps its own models warm; a warm-up here would be a billed prompt

    async def health(self) -> ProviderHealth:
        try:
            response = await self._http.get(f"{self._gateway.url}/api/models", timeout=5.0)
        except httpx.HTTPError as exc:
            return ProviderHealth(False, f"the gateway is unreachable: {type(exc).__name__}")
        return ProviderHealth(response.status_code == 200, f"the gateway answered {response.status_code}")

    async def cancel(self, job_id: str) -> None:
        return None  # closing the stream ends the gateway's turn (it cancels its upstream job)


async def gateway_registry(gateway: Gateway) -> ModelRegistry:
    """The gateway's models (`GET /api/models`), each routed to `GatewayProvider` under its alias."""
    response = await gateway.http.get(f"{gateway.url}/api/models", headers=gateway.headers(), timeout=10.0)
    if response.status_code != 200:
        raise ProviderUnavailable(f"the gateway's model list answered {response.status_code}.")
    data = response.json()
    specs = {
        card["alias"]: ModelSpec(
            alias=card["alias"],
            chain=(Route(GATEWAY_PROVIDER, card["alias"]),),
            context_window=int(card.get("context_window") or 4096),
            description=str(card.get("description") or ""),
            parameters=tuple((str(k), v) for k, v in (card.get("parameters") or {}).items()),
        )
        for card in data["models"]
    }
    return ModelRegistry(specs, data.get("active") or next(iter(specs)))


def gateway_providers(gateway: Gateway) -> Callable[[httpx.AsyncClient], Mapping[str, ModelProvider]]:
    """The eval's providers factory: one `GatewayProvider` per eval run's HTTP client."""

    def make(http: httpx.AsyncClient) -> Mapping[str, ModelProvider]:
        return {GATEWAY_PROVIDER: GatewayProvider(http, gateway)}

    return make
