"""The endpoint watch both RunPod providers share (queue and load-balancing): the polled state and warm-ups."""

from __future__ import annotations

import logging
from typing import Any, Self

import anyio
from anyio.abc import TaskGroup

from pete_mcp.core import PeteError, Readiness
from pete_mcp.runpod import EndpointState

__all__ = ["BackgroundWarming"]

log = logging.getLogger(__name__)


class BackgroundWarming:
    """The endpoint's polled state while the provider is open, and warm-ups in the background.

    At most one warm-up at a time, none while a worker is already initialising. The provider calls
    `_watch(state)` in its `__init__` and implements `warm`.
    """

    state: EndpointState
    warms_sent: int
    _warming: bool
    _tg: TaskGroup | None

    def _watch(self, state: EndpointState) -> None:
        self.state = state
        self.warms_sent = 0
        self._warming = False
        self._tg = None

    async def __aenter__(self) -> Self:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self.state.run)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        tg, self._tg = self._tg, None
        if tg is not None:
            tg.cancel_scope.cancel()
            await tg.__aexit__(*exc)

    def readiness(self) -> Readiness:
        """The endpoint's state from the shared, polled cache (never blocks, bills nothing)."""
        return self.state.readiness()

    async def warm(self, model: str) -> float:
        raise NotImplementedError

    def warm_soon(self, model: str) -> None:
        """Start one warm-up in the background so a worker is up for the call's next turns."""
        health = self.state.health
        if self._tg is None or self._warming or (health is not None and health.workers.initializing > 0):
            return
        self._warming = True
        self._tg.start_soon(self._warm_quietly, model)

    async def warm_for_call(self, model: str) -> bool:
        """A call is starting: warm the endpoint for its turns unless a worker is idle now.

        Reads the endpoint's state first when the cached one is stale (free). True when a warm-up
        was started (or one is already under way).
        """
        if await self.state.current() == "warm":
            return False
        self.warm_soon(model)
        return self._warming

    async def _warm_quietly(self, model: str) -> None:
        self.warms_sent += 1
        try:
            await self.warm(model)
        except PeteError as exc:
            log.info("background warm-up of %s failed: %s", model, exc)
        finally:
            self._warming = False
            await self.state.refresh()
