"""`eventually(condition)`: wait for something another task or process makes true, bounded in time."""

from __future__ import annotations

from collections.abc import Callable

import anyio


async def eventually(condition: Callable[[], object], *, timeout_s: float = 5.0, every_s: float = 0.01) -> None:
    """Poll `condition()` until it is truthy. Raises TimeoutError after `timeout_s`."""
    with anyio.fail_after(timeout_s):
        while True:
            if condition():
                return
            await anyio.sleep(every_s)
