"""What runs while the MCP face serves: the job tracker's task group, resource updates, log capture.

Why a class: the MCP server's lifespan enters it, and that lifespan runs once per stdio run,
once per HTTP session manager, but once per *connection* for in-memory clients; nested
entries share the first one, so two clients never run two sets of background tasks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio

from ..recent_log import RecentLog
from .jobs import JobTracker
from .live_updates import ResourceUpdates

__all__ = ["FaceRuntime"]


@dataclass
class FaceRuntime:
    tracker: JobTracker
    updates: ResourceUpdates
    recent: RecentLog
    active: bool = False

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        if self.active:
            yield
            return
        self.active = True
        try:
            async with self.tracker.running(), anyio.create_task_group() as tg:
                with self.recent.capturing():
                    await tg.start(self.updates.run)
                    try:
                        yield
                    finally:
                        tg.cancel_scope.cancel()
        finally:
            self.active = False
