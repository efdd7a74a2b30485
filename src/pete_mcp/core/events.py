"""In-process event bus: the core publishes, faces and alert rules subscribe.

Publishing never blocks the hot path: each subscriber has a bounded buffer and a slow
subscriber loses its oldest events (counted in `dropped`), never the publisher's time.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio

__all__ = ["Event", "EventBus", "Subscription"]


@dataclass(frozen=True, slots=True)
class Event:
    """Kinds: request.done, model.switched, provider.down, provider.up, failover.started,
    failover.ended, deploy.progress, alert.fired, alert.resolved, call.started, call.ended."""

    kind: str
    data: dict[str, Any]
    at: float = field(default_factory=time.time)


class Subscription:
    def __init__(self, maxlen: int) -> None:
        self._buffer: deque[Event] = deque(maxlen=maxlen)
        self._ready = anyio.Event()
        self.dropped = 0

    def _put(self, event: Event) -> None:
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped += 1
        self._buffer.append(event)
        self._ready.set()

    async def get(self) -> Event:
        while not self._buffer:
            await self._ready.wait()
            self._ready = anyio.Event()
        return self._buffer.popleft()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            yield await self.get()


class EventBus:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    def publish(self, kind: str, **data: Any) -> Event:
        event = Event(kind, data)
        for sub in list(self._subscribers):
            sub._put(event)
        return event

    @asynccontextmanager
    async def subscribe(self, maxlen: int = 1000) -> AsyncIterator[Subscription]:
        sub = Subscription(maxlen)
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)
