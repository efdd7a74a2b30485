"""Webhook delivery: POST a finished job's status body to the URL given at submission.

RunPod retries a non-200 answer up to twice, 10 s apart (reference §1.10); the attempts and
the delay are configurable so tests need not wait. Deliveries run as background tasks and
never hold up the job's own state change. A webhook URL can carry a token, so it is never
logged whole.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx

__all__ = ["WebhookSender"]

logger = logging.getLogger(__name__)


class WebhookSender:
    """Sends webhooks through an injected `httpx.AsyncClient`."""

    def __init__(self, http: httpx.AsyncClient, *, attempts: int, retry_delay_s: float) -> None:
        self._http = http
        self._attempts = attempts
        self._retry_delay_s = retry_delay_s
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, url: str, body: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(url, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for deliveries in flight (tests)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _deliver(self, url: str, body: dict[str, Any]) -> None:
        where = _host_of(url)
        for attempt in range(1, self._attempts + 1):
            try:
                response = await self._http.post(url, json=body, timeout=10.0)
                if response.is_success:
                    return
                outcome = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            logger.warning("Webhook to %s for job %s failed (%s), attempt %d.", where, body["id"], outcome, attempt)
            if attempt < self._attempts:
                await asyncio.sleep(self._retry_delay_s)


def _host_of(url: str) -> str:
    return urlsplit(url).netloc or "?"
