"""Writes that could not reach the database, kept in order and replayed when it is back.

Why: a database that goes away mid-call must not drop the turn. The caller is answered, what
would have been written waits here (bounded), and a background task replays it in order. When
the spool is full the oldest write is dropped and counted as lost (an alert rule watches).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio

from ..errors import StoreUnavailable

__all__ = ["SpoolStats", "WriteSpool"]

log = logging.getLogger(__name__)

Replay = Callable[[Any], object]  # a transaction body: fn(conn)


@dataclass(frozen=True, slots=True)
class SpoolStats:
    """The spool's counters, as the metrics snapshot shows them."""

    pending: int = 0
    deferred: int = 0  # writes that waited here, ever
    replayed: int = 0
    lost: int = 0  # dropped on overflow, or refused by the database on replay


class WriteSpool:
    def __init__(self, *, limit: int = 10_000) -> None:
        self.limit = limit
        self._items: deque[tuple[str, Replay]] = deque()
        self._deferred = self._replayed = self._lost = 0
        self._wake = anyio.Event()
        self.on_drained: list[Callable[[], None]] = []

    def __len__(self) -> int:
        return len(self._items)

    def stats(self) -> SpoolStats:
        return SpoolStats(len(self._items), self._deferred, self._replayed, self._lost)

    def add(self, label: str, fn: Replay) -> None:
        if len(self._items) >= self.limit:
            dropped, _ = self._items.popleft()
            self._lost += 1
            log.error("write spool full (%d): lost %s", self.limit, dropped)
        self._items.append((label, fn))
        self._deferred += 1
        self._wake.set()

    async def drain(self, write: Callable[[Replay], Awaitable[object]]) -> bool:
        """Replay in order until empty (True) or the database is still away (False)."""
        while self._items:
            label, fn = self._items[0]
            try:
                await write(fn)
            except StoreUnavailable:
                return False
            except Exception as exc:  # the database refused it: it would never go through
                self._lost += 1
                log.error("replaying %s failed for good: %s", label, exc)
            else:
                self._replayed += 1
            self._items.popleft()
        for callback in self.on_drained:
            callback()
        return True

    async def run(self, write: Callable[[Replay], Awaitable[object]], *, retry_s: float = 0.5) -> None:
        """Replay whenever something waits, retrying every `retry_s` while the database is away."""
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            while not await self.drain(write):  # noqa: ASYNC110 - a retry interval, nothing to wait on
                await anyio.sleep(retry_s)
