"""`beside(watcher)`: a turn's watcher task, run beside a block and over when the block is.

Each VAPI turn watches for the caller hanging up (the turn's clock needs no task: it is a loop
timer, `turn._Watchdog`). In an anyio task group, a task spawned and then cancelled costs about
45 µs of CPU on this machine; a plain asyncio task that is cancelled, or told to end, costs 5 to
10 µs. At 32 calls starting at once, that difference is work every caller's first token queues behind.

A watcher reaches the block only through anyio cancel scopes and flags (`CancelScope.cancel`
works from any task on the loop), so it needs nothing else a task group gives. The block still
owns its watcher: when the block ends the watcher is told to end (or cancelled) and waited for,
and an error it raised is raised there. Pete serves on asyncio (uvicorn), so tying this to
asyncio costs no portability that matters.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio

__all__ = ["beside"]


@asynccontextmanager
async def beside(
    watcher: Callable[[], Awaitable[None]], *, on_exit: Callable[[], None] | None = None
) -> AsyncIterator[None]:
    """Run `watcher()` in its own task while the block runs, and wait for it when the block ends.

    With `on_exit`, the block's end calls it to ask the watcher to return (so a shielded step
    the watcher is in finishes whole); without, the watcher is cancelled (it must be safe to
    cancel at any await).

    Raises:
        Exception: what the watcher raised, once the block has ended without an error of its own.
    """

    async def run() -> None:
        await watcher()

    task = asyncio.ensure_future(run())
    try:
        yield
    finally:
        if on_exit is not None:
            on_exit()
        elif not task.done():
            task.cancel()
        with anyio.CancelScope(shield=True):  # the block's own cancellation must not orphan it
            await asyncio.wait({task})
        error = None if task.cancelled() else task.exception()
    if error is not None:
        raise error
