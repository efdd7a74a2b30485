"""The gateway's client for a RunPod load-balancing endpoint: direct HTTP to a worker, no queue.

A load-balancing endpoint (`https://{endpoint_id}.api.runpod.ai/{path}`) relays each request
straight to a ready worker's own HTTP server (Pete's worker: `python -m gpu_handler --http`),
so there is no `/run`, no job-take tick and no `/stream` poll between the caller and the
first token. Each answer names its worker in `X-Runpod-Worker-Id`; sending that id back on the
next request asks for the same worker (soft affinity: RunPod falls back to another worker if
it is gone or at capacity), which keeps a call's turns on the worker that holds its prompt
cache. `/ping` says whether a worker is ready (200), only initialising (204), or none (other).

    lb = RunPodLBClient(http, base_url="https://abc123.api.runpod.ai", api_key=...)
    call = LBCall(worker_id=None)
    async for chunk in lb.chat_stream(body, call=call):   # OpenAI chunk dicts
        ...
    call.worker_id                                         # the worker that answered

A caller that stops reading hangs up, and the worker, whose HTTP server sees the request end,
stops generating (there is no job to `/cancel`).
"""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from pete_mcp.core import ConfigError, Settings

from ._http import RetryPolicy, RunPodHTTP, Sleep
from ._openai_sse import openai_chunks
from ._requests import OPENAI_JOB_ERROR_STATUSES
from ._wire import EndpointHealth, HealthJobs, HealthWorkers

__all__ = ["WORKER_ID_HEADER", "LBCall", "RunPodLBClient", "lb_client_from_settings"]

WORKER_ID_HEADER = "X-Runpod-Worker-Id"
_PING_ANSWERS = frozenset({204, 400, 404, 500, 502, 503})


@dataclass
class LBCall:
    """One request's worker: the one asked for (`worker_id` before), the one that answered (after)."""

    worker_id: str | None = None


class RunPodLBClient:
    """Async client for one load-balancing endpoint's base URL. Never logs or reports the API key.

    Raises (from every call): `AuthError` (401/403), `NotFound` (404), `InputError` (other 4xx,
    e.g. RunPod's 400 when no worker became available in time), `ProviderUnavailable`
    (unreachable, 5xx, 429 after retries), `ProviderTimeout`, `JobFailed`.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str,
        timeout_s: float = 30,
        retries: int = 3,
        url_setting: str = "RUNPOD_LB_URL",
        key_setting: str = "RUNPOD_API_KEY",
        sleep: Sleep = anyio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{url_setting} must be an http(s) URL, got {base_url!r}.")
        if not api_key:
            raise ConfigError(f"{key_setting} is empty: set it to a RunPod API key.")
        self.base_url = base_url.rstrip("/")
        self._http = RunPodHTTP(
            http,
            endpoint_url=self.base_url,
            endpoint_id=httpx.URL(self.base_url).host.split(".", 1)[0] or self.base_url,
            api_key=api_key,
            timeout_s=timeout_s,
            retry=RetryPolicy(retries=retries, max_retry_after_s=timeout_s),
            sleep=sleep,
            rng=rng or random.Random(),
            key_setting=key_setting,
            endpoint_setting=url_setting,
        )

    def __repr__(self) -> str:
        return f"RunPodLBClient({self.base_url!r})"

    async def ping(self) -> int:
        """`GET /ping`: 200 a worker is ready, 204 one is initialising, other codes none can serve."""
        response = await self._http.send("GET", "ping", repeatable=False, accept=_PING_ANSWERS)
        await response.aclose()
        return response.status_code

    async def health(self) -> EndpointHealth:
        """`/ping` read as the queue endpoint's `/health` (one idle or initialising worker, or none),
        so `EndpointState` and readiness work the same for both endpoint types."""
        status = await self.ping()
        workers = HealthWorkers(idle=1 if status == 200 else 0, initializing=1 if status == 204 else 0)
        return EndpointHealth(jobs=HealthJobs(), workers=workers)

    async def chat_stream(self, body: Mapping[str, Any], *, call: LBCall) -> AsyncGenerator[dict[str, Any], None]:
        """Stream `POST /v1/chat/completions` (`stream: true` forced) on `call.worker_id`'s worker if
        it can take it; `call.worker_id` is then the worker that answers. Not retried once sent.

        Raises:
            JobFailed: the worker failed (an `{"error": ...}` frame or error body).
            ProviderTimeout: the stream stalled past the read timeout.
            ProviderError: the stream ended without `data: [DONE]`.
        """
        headers = {WORKER_ID_HEADER: call.worker_id} if call.worker_id else None
        response = await self._http.send(
            "POST",
            "v1/chat/completions",
            repeatable=False,
            json={**body, "stream": True},
            stream=True,
            accept=OPENAI_JOB_ERROR_STATUSES,
            headers=headers,
        )
        call.worker_id = response.headers.get(WORKER_ID_HEADER) or None
        chunks = openai_chunks(response, http=self._http, where="The load-balancing worker's stream")
        async with aclosing(chunks):  # leaving early closes the response: a hang-up
            async for chunk in chunks:
                yield chunk

    async def chat(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """`POST /v1/chat/completions` without streaming: the completion body (used to warm a worker)."""
        response = await self._http.send(
            "POST", "v1/chat/completions", repeatable=False, json={**body, "stream": False}
        )
        data = response.json()
        return data if isinstance(data, dict) else {}


def lb_client_from_settings(settings: Settings, http: httpx.AsyncClient) -> RunPodLBClient:
    """The load-balancing endpoint the settings name: RUNPOD_LB_URL, else the real endpoint's
    `https://{RUNPOD_ENDPOINT_ID}.api.runpod.ai`, else the local endpoint's `/lb/{LOCAL_ENDPOINT_ID}`."""
    if settings.runpod_lb_url:
        url = settings.runpod_lb_url
    elif settings.uses_real_runpod:
        url = f"https://{settings.runpod_endpoint_id}.api.runpod.ai"
    else:
        url = f"http://127.0.0.1:{settings.local_endpoint_port}/lb/{settings.local_endpoint_id}"
    if settings.uses_real_runpod:
        assert settings.runpod_api_key is not None
        key, key_setting = settings.runpod_api_key.get_secret_value(), "RUNPOD_API_KEY"
    else:
        key, key_setting = settings.local_api_key.get_secret_value(), "LOCAL_API_KEY"
    return RunPodLBClient(http, base_url=url, api_key=key, key_setting=key_setting, timeout_s=settings.runpod_timeout_s)
