"""The race's mailbox (`routing/_mailbox.py`): order, the bound, cancelled waits, closing, no idle trips."""

from __future__ import annotations

import anyio
import pytest

from pete_mcp.routing._mailbox import Mailbox  # pyright: ignore[reportPrivateUsage]

pytestmark = pytest.mark.anyio


async def test_items_come_out_in_the_order_they_went_in() -> None:
    box: Mailbox[int] = Mailbox(8)
    for i in range(5):
        await box.put(i)
    assert [await box.get() for _ in range(5)] == [0, 1, 2, 3, 4]
    with pytest.raises(anyio.WouldBlock):
        box.get_nowait()


async def test_a_reader_waiting_is_woken_by_the_next_put() -> None:
    box: Mailbox[str] = Mailbox(8)
    got: list[str] = []
    async with anyio.create_task_group() as tg:

        async def read() -> None:
            got.append(await box.get())

        tg.start_soon(read)
        await anyio.wait_all_tasks_blocked()
        assert got == []
        await box.put("hello")
    assert got == ["hello"]


async def test_put_waits_while_full_and_goes_on_once_an_item_is_taken() -> None:
    box: Mailbox[int] = Mailbox(2)
    await box.put(1)
    await box.put(2)
    done = anyio.Event()
    async with anyio.create_task_group() as tg:

        async def put_third() -> None:
            await box.put(3)
            done.set()

        tg.start_soon(put_third)
        await anyio.wait_all_tasks_blocked()
        assert not done.is_set()  # full: the writer waits
        assert box.get_nowait() == 1
        with anyio.fail_after(5):
            await done.wait()
    assert [box.get_nowait(), box.get_nowait()] == [2, 3]


async def test_an_urgent_put_gets_through_a_full_mailbox() -> None:
    box: Mailbox[int] = Mailbox(1)
    await box.put(1)
    box.put_urgent(-1)  # a stop from outside must never be dropped
    assert [box.get_nowait(), box.get_nowait()] == [1, -1]


async def test_a_cancelled_wait_loses_nothing() -> None:
    box: Mailbox[int] = Mailbox(8)
    with anyio.move_on_after(0.01) as scope:
        await box.get()
    assert scope.cancelled_caught
    await box.put(7)
    with anyio.move_on_after(0):  # cancelled before it could even look: the item stays
        await anyio.sleep(1)
        await box.get()
    assert box.get_nowait() == 7


async def test_closing_wakes_the_reader_and_writers_with_closed_resource_error() -> None:
    box: Mailbox[int] = Mailbox(1)
    await box.put(1)
    errors: list[str] = []
    async with anyio.create_task_group() as tg:

        async def write() -> None:
            try:
                await box.put(2)
            except anyio.ClosedResourceError:
                errors.append("writer")

        tg.start_soon(write)
        await anyio.wait_all_tasks_blocked()
        box.close()
    assert errors == ["writer"]
    assert box.get_nowait() == 1  # what was queued can still be read
    with pytest.raises(anyio.ClosedResourceError):
        await box.get()
    with pytest.raises(anyio.ClosedResourceError):
        box.put_urgent(3)


async def test_a_ready_item_is_taken_without_a_trip_round_the_event_loop() -> None:
    """Under load each trip round the loop waits behind every other call's work: none when not needed."""
    box: Mailbox[int] = Mailbox(8)
    ran: list[str] = []
    async with anyio.create_task_group() as tg:

        async def other() -> None:
            ran.append("other")

        await box.put(1)  # room: no wait
        tg.start_soon(other)
        assert await box.get() == 1
        assert ran == []  # the other task never got the loop in between


async def test_a_wait_with_a_time_limit_says_whether_an_item_came() -> None:
    box: Mailbox[int] = Mailbox(8)
    assert await box.wait(0.02) is False  # nothing came: the stall watchdog's "no new text"
    await box.put(5)
    assert await box.wait(0) is True  # one is ready: at once, even with no time left
    assert box.get_nowait() == 5


async def test_a_put_wakes_a_timed_wait_long_before_its_limit() -> None:
    box: Mailbox[int] = Mailbox(8)
    async with anyio.create_task_group() as tg:

        async def put_soon() -> None:
            await anyio.wait_all_tasks_blocked()
            await box.put(9)

        tg.start_soon(put_soon)
        with anyio.fail_after(5):
            assert await box.wait(60) is True
    assert box.get_nowait() == 9


async def test_closing_ends_a_timed_wait_with_closed_resource_error() -> None:
    box: Mailbox[int] = Mailbox(8)
    async with anyio.create_task_group() as tg:

        async def close_soon() -> None:
            await anyio.wait_all_tasks_blocked()
            box.close()

        tg.start_soon(close_soon)
        with pytest.raises(anyio.ClosedResourceError), anyio.fail_after(5):
            await box.wait(60)
