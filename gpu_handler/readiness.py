"""Before taking jobs: wait for the model server (polling, never a fixed sleep), then preload models.

Polls every `interval_s` (~100 ms), so the worker starts serving within a poll of the server
being ready instead of after a guessed delay; gives up with a clear error after `timeout_s`.
"""

from __future__ import annotations

import logging
import time

import anyio

from .backends.base import ModelBackend
from .errors import ModelServerUnavailable

__all__ = ["prepare_backend", "wait_until_ready"]

logger = logging.getLogger(__name__)


async def wait_until_ready(backend: ModelBackend, *, base_url: str, timeout_s: float, interval_s: float = 0.1) -> float:
    """Poll `backend.ready()` until it answers; return the seconds waited.

    Raises:
        ModelServerUnavailable: not ready within `timeout_s`.
    """
    started = time.monotonic()
    while not await backend.ready():
        waited = time.monotonic() - started
        if waited >= timeout_s:
            raise ModelServerUnavailable(
                f"The {backend.name} model server at {base_url} was not ready after {timeout_s:.0f} s. "
                "Check that it starts (its log), or raise WORKER_READY_TIMEOUT_S for slow model loads.",
                provider=backend.name,
            )
        await anyio.sleep(min(interval_s, timeout_s - waited))
    return time.monotonic() - started


async def prepare_backend(
    backend: ModelBackend, *, base_url: str, timeout_s: float, preload: tuple[str, ...]
) -> dict[str, float]:
    """Wait for the server, then load each `preload` model; return each model's load seconds.

    Raises:
        ModelServerUnavailable: the server never became ready.
        ModelNotFound: a preload model is not on the server (fail fast rather than idle forever).
    """
    waited = await wait_until_ready(backend, base_url=base_url, timeout_s=timeout_s)
    logger.info("model server %s ready after %.2f s", base_url, waited)
    loads: dict[str, float] = {}
    for model in preload:
        loads[model] = await backend.warmup(model)
        logger.info("preloaded %s in %.2f s", model, loads[model])
    return loads
