"""Warm-ups sent in the background, shared by both RunPod providers (queue and load-balancing)."""

from __future__ import annotations

import logging

from anyio.abc import TaskGroup

from pete_mcp.core import PeteError
from pete_mcp.runpod import EndpointState

__all__ = ["BackgroundWarming"]

log = logging.getLogger(__name__)


class BackgroundWarming:
    """At most one warm-up at a time, none while a worker is already initialising.

    The provider owns `state` (its shared endpoint state), `_tg` (its task group while open) and
    `warm`; this adds `warm_soon` and `warm_for_call` over them.
    """

    state: EndpointState
    warms_sent: int
    _warming: bool
    _tg: TaskGroup | None

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
