"""A reusable wake-up signal for long-polls.

Long-polls (job-take, job-stop, /stream, /runsync) wait for "something changed" and then
re-check their own condition, so one broadcast primitive serves them all. Everything runs
on one event loop: checking a condition and then waiting cannot miss a notify in between.
"""

from __future__ import annotations

import asyncio

__all__ = ["Wakeup"]


class Wakeup:
    """Wakes every current waiter at once; later waiters wait for the next notify."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout_s: float) -> bool:
        """Wait for the next notify; False when `timeout_s` passed first."""
        if timeout_s <= 0:
            return False
        event = self._event
        try:
            async with asyncio.timeout(timeout_s):
                await event.wait()
        except TimeoutError:
            return False
        return True
