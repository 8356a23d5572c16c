"""The light queue and flag that replace asyncio.Queue and asyncio.Event in our uvicorn protocol."""

from __future__ import annotations

import asyncio

from realtime.ws.transport import LightFlag, LightQueue


async def test_queue_hands_items_over_in_order_and_wakes_a_waiting_get() -> None:
    queue = LightQueue()
    assert queue.empty()
    getter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)  # the getter is now waiting
    assert not getter.done()
    queue.put_nowait("a")
    queue.put_nowait("b")
    assert await getter == "a"
    assert not queue.empty()
    assert await queue.get() == "b"
    assert queue.empty()


async def test_queue_get_can_be_cancelled_and_used_again() -> None:
    queue = LightQueue()
    getter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    getter.cancel()
    await asyncio.gather(getter, return_exceptions=True)
    queue.put_nowait(1)
    assert await queue.get() == 1


async def test_flag_wait_returns_at_once_when_set_and_waits_when_cleared() -> None:
    flag = LightFlag()
    assert not flag.is_set()
    flag.set()
    await flag.wait()
    flag.clear()
    waiter = asyncio.ensure_future(flag.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    flag.set()
    await asyncio.wait_for(waiter, 1)
    assert flag.is_set()
