"""A race's mailbox: its attempts put events in, the request's own task takes them out, in order.

It does for this one-reader case what anyio's memory object stream did, at about half the CPU
per event, and with one trip round the event loop less: it never yields when an item is ready
or there is room (the stream checkpoints on every send and receive, and under load each trip
round the loop is a wait behind every other call's work), and a wait costs one `anyio.Event`
rather than a receiver object and a task lookup. An item never leaves the mailbox until `get`
returns it, so a wait that is cancelled (a hedge timer, a watchdog) loses nothing.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

import anyio

__all__ = ["Mailbox"]

T = TypeVar("T")


class Mailbox(Generic[T]):
    """A bounded FIFO for one reader: `put` waits while `size` items are queued."""

    __slots__ = ("_items", "_readable", "_size", "_writable", "closed")

    def __init__(self, size: int) -> None:
        self._items: deque[T] = deque()
        self._size = size
        self._readable: anyio.Event | None = None  # the reader waits on it
        self._writable: anyio.Event | None = None  # writers wait on it while the mailbox is full
        self.closed = False

    @property
    def ready(self) -> bool:
        """An item is waiting: `get_nowait` returns it."""
        return bool(self._items)

    async def put(self, item: T) -> None:
        """Queue `item`, waiting while the mailbox is full.

        Raises:
            anyio.ClosedResourceError: the mailbox is closed (the request is over).
        """
        while len(self._items) >= self._size and not self.closed:
            self._writable = self._writable or anyio.Event()
            await self._writable.wait()
        self.put_urgent(item)

    def put_urgent(self, item: T) -> None:
        """Queue `item` now, full or not (a stop must always get through).

        Raises:
            anyio.ClosedResourceError: the mailbox is closed.
        """
        if self.closed:
            raise anyio.ClosedResourceError
        self._items.append(item)
        if self._readable is not None:
            self._readable.set()
            self._readable = None

    async def wait(self) -> None:
        """Return once an item is ready (at once if one is); cancellable, and losing nothing."""
        while not self._items:
            if self.closed:
                raise anyio.ClosedResourceError
            self._readable = self._readable or anyio.Event()
            await self._readable.wait()

    def get_nowait(self) -> T:
        """The oldest item. Raises `anyio.WouldBlock` when there is none."""
        if not self._items:
            raise anyio.WouldBlock
        item = self._items.popleft()
        if self._writable is not None:
            self._writable.set()
            self._writable = None
        return item

    async def get(self) -> T:
        """The oldest item, waiting for one if need be (no trip round the loop when one is ready)."""
        await self.wait()
        return self.get_nowait()

    def close(self) -> None:
        """No more puts; waiting writers and the reader wake and get `ClosedResourceError`."""
        self.closed = True
        for event in (self._readable, self._writable):
            if event is not None:
                event.set()
        self._readable = self._writable = None
