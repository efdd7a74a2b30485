"""`beside`: a turn's watcher runs beside a block, can stop it, and never outlives it."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from pete_vapi.beside import beside

pytestmark = pytest.mark.anyio


async def test_a_watcher_still_waiting_is_cancelled_and_done_when_the_block_ends() -> None:
    states: list[str] = []

    async def watcher() -> None:
        try:
            await anyio.sleep(3600)
        except anyio.get_cancelled_exc_class():
            states.append("cancelled")
            raise

    async with beside(watcher):
        await anyio.lowlevel.checkpoint()
    assert states == ["cancelled"]


async def test_a_watcher_can_cancel_the_block_through_a_cancel_scope() -> None:
    with anyio.CancelScope() as block:

        async def watcher() -> None:
            await anyio.sleep(0.01)
            block.cancel()

        async with beside(watcher):
            await anyio.sleep(3600)
    assert block.cancelled_caught


async def test_asked_to_end_a_watcher_finishes_its_shielded_step_whole_first() -> None:
    """The holding phrase is said and stored whole even when the round ends meanwhile."""
    over = anyio.Event()
    steps: list[str] = []

    async def watcher() -> None:
        with anyio.CancelScope(shield=True):
            steps.append("started")
            await anyio.sleep(0.05)
            steps.append("finished")
        await over.wait()

    async with beside(watcher, on_exit=over.set):
        await anyio.sleep(0.01)  # the block ends while the watcher is mid-step
    assert steps == ["started", "finished"]


async def test_a_block_cancelled_from_outside_still_waits_for_its_watcher() -> None:
    over = anyio.Event()
    steps: list[str] = []

    async def watcher() -> None:
        with anyio.CancelScope(shield=True):
            await anyio.sleep(0.05)
            steps.append("finished")
        await over.wait()

    with anyio.move_on_after(0.01):
        async with beside(watcher, on_exit=over.set):
            await anyio.sleep(3600)
    assert steps == ["finished"]


async def test_what_a_watcher_raised_is_raised_when_the_block_ends() -> None:
    async def watcher() -> None:
        raise RuntimeError("the server's receive broke")

    with pytest.raises(RuntimeError, match="receive broke"):
        async with beside(watcher):
            await anyio.sleep(0.01)
