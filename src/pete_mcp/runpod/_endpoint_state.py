"""The endpoint's live state from RunPod's `/health`, polled cheaply and shared by every call.

Why: a job sent to an endpoint with no idle worker waits in RunPod's queue for a busy worker
or a cold start (seconds to minutes). Knowing that before sending lets the router hedge at
once, or go straight to a fallback and warm the endpoint for the call's coming turns, instead
of waiting out a learned hedge delay. `/health` submits no job, so polling it bills nothing.

One `EndpointState` per endpoint: every `/health` answer (this poller's, the metrics poll's,
`pete doctor`'s through the provider) refreshes the one cache. The poller runs only while
calls are active (someone asked `readiness()` within `active_window_s`), every `interval_s`.

    state = EndpointState(client.health, interval_s=2.0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(state.run)
        state.readiness()   # "warm" | "busy" | "cold" | "unknown"
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import anyio

from pete_mcp.core import PeteError, Readiness

from ._wire import EndpointHealth

__all__ = ["EndpointState", "readiness_of"]

log = logging.getLogger(__name__)


def readiness_of(health: EndpointHealth, slots_per_worker: int = 1) -> Readiness:
    """`warm`: a job would start now (a worker is idle, or a running one has a free slot and
    nothing is queued); `busy`: workers run but a job would queue behind them; `cold`: no worker
    can take a job now (scaled to zero, or only initialising).

    `slots_per_worker` is the endpoint's worker concurrency: RunPod counts a worker with one job
    of four as `running`, not idle, yet it starts the next job at once; treating it as busy
    would hedge (and pay for) requests that were never going to wait.
    """
    w, jobs = health.workers, health.jobs
    if w.idle + w.ready > 0:
        return "warm"
    if w.running > 0:
        free = w.running * max(1, slots_per_worker) - jobs.in_progress
        return "warm" if free > 0 and jobs.in_queue == 0 else "busy"
    return "cold"


class EndpointState:
    """A cached `/health`, refreshed in the background while calls are active."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[EndpointHealth]],
        *,
        interval_s: float = 2.0,
        active_window_s: float = 60.0,
        slots_per_worker: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self.interval_s = interval_s
        self.slots_per_worker = slots_per_worker
        self.active_window_s = active_window_s
        self._clock = clock
        self.health: EndpointHealth | None = None
        self.seen_at = -float("inf")
        self.polls = 0
        self._asked_at = -float("inf")
        self._wake = anyio.Event()

    # --- reading -----------------------------------------------------------------------------
    def note(self, health: EndpointHealth) -> None:
        """Record a `/health` answer, whoever fetched it."""
        self.health = health
        self.seen_at = self._clock()

    @property
    def age_s(self) -> float:
        return self._clock() - self.seen_at

    def readiness(self) -> Readiness:
        """The endpoint's state as last seen (`unknown` before the first answer or when stale).

        Calling it marks calls as active, which keeps (or starts) the background poll.
        """
        self._asked_at = self._clock()
        self._wake.set()
        if self.health is None or self.age_s > 3 * self.interval_s:
            return "unknown"
        return readiness_of(self.health, self.slots_per_worker)

    async def current(self) -> Readiness:
        """The endpoint's state now: the cache when fresh, else one `/health` first (free)."""
        if self.health is None or self.age_s > self.interval_s:
            await self.refresh()
        return self.readiness()

    # --- polling -----------------------------------------------------------------------------
    async def refresh(self) -> EndpointHealth | None:
        """One `/health` now; None (state kept, marked stale by age) when it fails."""
        try:
            health = await self._fetch()
        except PeteError as exc:
            log.info("endpoint /health failed: %s", exc)
            return None
        self.polls += 1
        self.note(health)
        return health

    async def run(self) -> None:
        """Poll every `interval_s` while calls are active; sleep until one asks when idle."""
        while True:
            if self._clock() - self._asked_at > self.active_window_s:
                self._wake = anyio.Event()
                await self._wake.wait()
            if self.age_s >= self.interval_s * 0.9:
                with anyio.move_on_after(max(self.interval_s, 1.0)):
                    await self.refresh()
            await anyio.sleep(max(0.0, self.interval_s - self.age_s))
