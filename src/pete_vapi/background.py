"""Fire-and-forget work of the VAPI face (warm-ups, control-URL posts, job cancels), kept structured.

A VAPI reply must never wait on side work: the 7.5 s assistant-request limit must not include
a model warm-up, and the end of a stream (which makes VAPI speak) must not wait for a
control-URL post. The face's lifespan owns one task group; `start_soon` hands work to it, and
a failure is logged, never raised into a request.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.abc import TaskGroup

__all__ = ["Background"]

log = logging.getLogger(__name__)


class Background:
    def __init__(self) -> None:
        self._tg: TaskGroup | None = None
        self.pending = 0
        self._idle = anyio.Event()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Background]:
        """Run while the app runs; on exit, pending work is cancelled."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                yield self
            finally:
                self._tg = None
                tg.cancel_scope.cancel()

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any, name: str = "") -> bool:
        """Schedule `fn(*args)`; False (and a log line) when the face's lifespan is not running."""
        if self._tg is None:
            log.warning("VAPI background task %s dropped: the app's lifespan is not running", name or fn)
            return False
        self.pending += 1
        self._tg.start_soon(self._guarded, fn, args, name)
        return True

    async def _guarded(self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], name: str) -> None:
        try:
            await fn(*args)
        except Exception:
            log.exception("VAPI background task %s failed", name or fn)
        finally:
            self.pending -= 1
            if not self.pending:
                self._idle.set()
                self._idle = anyio.Event()

    async def wait_idle(self, timeout_s: float = 5.0) -> None:
        """Wait until no background work is pending (tests, shutdown).

        Raises:
            TimeoutError: still busy after `timeout_s`.
        """
        with anyio.fail_after(timeout_s):
            if self.pending:
                await self._idle.wait()
