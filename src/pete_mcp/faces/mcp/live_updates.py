"""Turn core events into "resource changed" signals, at most one per resource per interval.

Why: MCP clients that subscribe to `pete://metrics/live` should hear when it changes, but a
busy gateway finishes many requests a second; re-reading a snapshot per request would cost
more than it tells. Events mark resources dirty; a flusher notifies them (first change at
once, then at most once per `interval_s`). MCP-free: the server passes the `notify` callback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import TaskStatus

from pete_mcp.core import Event, EventBus

__all__ = ["FLEET_URI", "HEALTH_URI", "LOGS_URI", "METRICS_URI", "MODELS_URI", "ResourceUpdates", "uris_for"]

log = logging.getLogger(__name__)

METRICS_URI = "pete://metrics/live"
FLEET_URI = "pete://metrics/fleet"  # every replica, from the database; read on demand, no updates
MODELS_URI = "pete://models"
HEALTH_URI = "pete://health"
LOGS_URI = "pete://logs/recent"

_BY_PREFIX: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("request.", (METRICS_URI, MODELS_URI)),
    ("call.", (METRICS_URI,)),
    ("model.", (MODELS_URI, METRICS_URI, HEALTH_URI)),
    ("provider.", (HEALTH_URI, METRICS_URI)),
    ("failover.", (HEALTH_URI, METRICS_URI)),
    ("alert.", (HEALTH_URI, METRICS_URI)),
    ("deploy.", (HEALTH_URI, METRICS_URI)),
    ("escalation.", ("pete://escalations", "pete://desk/emergencies")),
    ("emergency.", ("pete://escalations", "pete://desk/emergencies")),
)

NotifyFn = Callable[[list[str]], Awaitable[None]]


def uris_for(event: Event) -> set[str]:
    """The resources an event changes (every event lands in the recent log)."""
    uris = {LOGS_URI}
    for prefix, targets in _BY_PREFIX:
        if event.kind.startswith(prefix):
            uris.update(targets)
    if event.kind == "desk.closed" and isinstance(event.data.get("desk_kind"), str):
        uris.add(f"pete://desk/{event.data['desk_kind']}")
    return uris


class ResourceUpdates:
    def __init__(
        self,
        events: EventBus,
        notify: NotifyFn,
        *,
        interval_s: float = 1.0,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.events = events
        self.notify = notify
        self.interval_s = interval_s
        self.on_event = on_event
        self._dirty: set[str] = set()
        self._wake = anyio.Event()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Follow the event bus until cancelled; `task_status.started()` once subscribed."""
        async with self.events.subscribe() as sub, anyio.create_task_group() as tg:
            tg.start_soon(self._flush_forever)
            task_status.started()
            async for event in sub:
                if self.on_event is not None:
                    self.on_event(event)
                self._dirty |= uris_for(event)
                self._wake.set()

    async def _flush_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            dirty, self._dirty = sorted(self._dirty), set()
            if dirty:
                try:
                    await self.notify(dirty)
                except Exception:  # a broken subscriber must not stop updates for the others
                    log.exception("resource-updated notification failed")
            await anyio.sleep(self.interval_s)
