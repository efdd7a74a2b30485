"""One RunPod HTTP call: auth, per-call timeouts, retries with full-jitter backoff, typed errors.

Why its own module: every public call of `RunPodClient` needs the same rules, and they are
where correctness hides. A call is retried only when repeating it cannot do harm:

- the connection was never made (connect error, connect/pool timeout): any call;
- 429: any call: RunPod's rate limiter rejects the request before a job exists;
- 5xx, read/write errors and read timeouts: only calls marked `repeatable` (status, stream,
  health, cancel, models), never `/run`, `/runsync` or the OpenAI chat route, which might
  have created a job that would then run twice.

Errors name the cause and the setting to fix; the API key never enters a message or a log.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from pete_mcp.core import (
    AuthError,
    InputError,
    NotFound,
    PeteError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)

__all__ = ["PROVIDER", "RetryPolicy", "RunPodHTTP", "Sleep", "parse_body"]

logger = logging.getLogger("pete_mcp.runpod.client")

PROVIDER = "runpod"
Sleep = Callable[[float], Awaitable[None]]
_M = TypeVar("_M", bound=BaseModel)

# Exceptions raised before a single byte of the request left: repeating is always safe.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait between tries (exponential backoff, full jitter)."""

    retries: int = 3
    backoff_base_s: float = 0.1
    backoff_cap_s: float = 5.0
    max_retry_after_s: float = 30.0

    def backoff_s(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)] (attempt counts from 0)."""
        return rng.uniform(0.0, min(self.backoff_cap_s, self.backoff_base_s * 2**attempt))


@dataclass(frozen=True)
class _Retry:
    delay_s: float
    reason: str


class RunPodHTTP:
    """Sends requests to one endpoint (`{base_url}/{endpoint_id}`) through the injected client."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        endpoint_url: str,
        endpoint_id: str,
        api_key: str,
        timeout_s: float,
        retry: RetryPolicy,
        sleep: Sleep,
        rng: random.Random,
        key_setting: str,
        endpoint_setting: str,
    ) -> None:
        self._http = http
        self.endpoint_url = endpoint_url
        self._endpoint_id = endpoint_id
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._retry = retry
        self._sleep = sleep
        self._rng = rng
        self._key_setting = key_setting
        self._endpoint_setting = endpoint_setting

    async def send(
        self,
        method: str,
        path: str,
        *,
        repeatable: bool,
        json: Any = None,
        params: dict[str, Any] | None = None,
        wait_s: float = 0.0,
        job_id: str | None = None,
        stream: bool = False,
        accept: frozenset[int] = frozenset(),
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one call, retrying where safe; return a 2xx response (or one whose status is in `accept`).

        With `stream=True` the body is not read; the caller must close the response.

        Raises:
            AuthError, NotFound, InputError, ProviderTimeout, ProviderUnavailable, ProviderError.
        """
        op = f"{method} /{path.split('/', 1)[0]}"
        request = self._http.build_request(
            method,
            f"{self.endpoint_url}/{path}",
            json=json,
            params=params,
            headers={"Authorization": f"Bearer {self._api_key}", "Accept": "application/json", **(headers or {})},
            timeout=httpx.Timeout(connect=5.0, read=self._read_timeout_s(wait_s), write=10.0, pool=5.0),
        )
        attempt = 0
        while True:
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                retry = self._retry_after_transport_error(exc, op, repeatable=repeatable, attempt=attempt)
            else:
                if response.is_success or response.status_code in accept:
                    return response
                retry = self._retry_after_status(response, repeatable=repeatable, attempt=attempt)
                if retry is None:
                    await response.aread()
                    await response.aclose()
                    self.raise_for_status(response, op, job_id=job_id)
                await response.aclose()
            logger.info(
                "RunPod %s: %s; try %d of %d in %.2f s",
                op,
                retry.reason,
                attempt + 2,
                self._retry.retries + 1,
                retry.delay_s,
            )
            await self._sleep(retry.delay_s)
            attempt += 1

    def _read_timeout_s(self, wait_s: float) -> float:
        return wait_s + 10.0 if wait_s > 0 else self._timeout_s

    def _retry_after_transport_error(
        self, exc: httpx.TransportError, op: str, *, repeatable: bool, attempt: int
    ) -> _Retry:
        never_sent = isinstance(exc, _NOT_SENT)
        if (never_sent or repeatable) and attempt < self._retry.retries:
            return _Retry(self._retry.backoff_s(attempt, self._rng), type(exc).__name__)
        where = f"RunPod endpoint {self._endpoint_id} at {self.endpoint_url}"
        if isinstance(exc, httpx.TimeoutException) and not never_sent:
            raise ProviderTimeout(
                f"{where} did not answer {op} in time ({type(exc).__name__}).", provider=PROVIDER
            ) from exc
        hint = (
            "Is the local endpoint running? Start it with `pete up` or `pete localpod`."
            if _is_loopback(self.endpoint_url)
            else "Check the network and RUNPOD_BASE_URL."
        )
        tries = f" after {attempt + 1} tries" if attempt else ""
        raise ProviderUnavailable(
            f"Cannot reach {where} for {op}{tries}: {type(exc).__name__}.", provider=PROVIDER, hint=hint
        ) from exc

    def _retry_after_status(self, response: httpx.Response, *, repeatable: bool, attempt: int) -> _Retry | None:
        code = response.status_code
        if attempt >= self._retry.retries or not (code == 429 or (code >= 500 and repeatable)):
            return None
        delay = self._retry.backoff_s(attempt, self._rng)
        asked = _retry_after_s(response.headers.get("Retry-After"))
        if asked is not None:
            if asked > self._retry.max_retry_after_s:
                return None
            delay = asked
        return _Retry(delay, f"HTTP {code}")

    def raise_for_status(self, response: httpx.Response, op: str, *, job_id: str | None) -> NoReturn:
        code = response.status_code
        detail = self._scrub(_body_snippet(response))
        suffix = f": {detail}" if detail else ""
        error: PeteError
        if code in (401, 403):
            error = AuthError(f"RunPod refused the API key ({code}): check {self._key_setting}.")
        elif code == 404 and job_id is not None:
            error = NotFound(
                f"RunPod job {job_id} not found on endpoint {self._endpoint_id}: it expired or never existed "
                "(results are kept 30 min after /run and 1 min after /runsync)."
            )
        elif code == 404:
            error = NotFound(f"RunPod endpoint {self._endpoint_id} not found: check {self._endpoint_setting}.")
        elif code == 429:
            error = ProviderUnavailable(
                f"RunPod rate-limited {op} (429) after {self._retry.retries + 1} tries.",
                provider=PROVIDER,
                hint="Send fewer requests per second, or wait and try again.",
            )
        elif code >= 500:
            error = ProviderUnavailable(f"RunPod answered {op} with HTTP {code}{suffix}", provider=PROVIDER)
        elif 400 <= code < 500:
            error = InputError(f"RunPod rejected {op} (HTTP {code}){suffix}")
        else:
            error = ProviderError(f"RunPod answered {op} with unexpected HTTP {code}{suffix}", provider=PROVIDER)
        raise error

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text


def _body_snippet(response: httpx.Response, limit: int = 300) -> str:
    try:
        text = response.text.strip()
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        return ""
    return text if len(text) <= limit else text[:limit] + "…"


def _retry_after_s(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _is_loopback(url: str) -> bool:
    host = httpx.URL(url).host
    return host in {"127.0.0.1", "localhost", "::1"}


def parse_body(response: httpx.Response, model: type[_M], *, what: str) -> _M:
    """Validate a RunPod answer into `model`.

    Raises:
        ProviderError: the body is not JSON or not the documented shape.
    """
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        snippet = _body_snippet(response, 200)
        raise ProviderError(
            f"RunPod answered {what} with an unexpected body ({exc.error_count()} problems): {snippet}",
            provider=PROVIDER,
        ) from exc
