"""Background tasks (realtime/engine/background.py): cancelled together at shutdown."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from realtime.engine.background import Background
from tests.support.waiting import UNIT


async def test_close_ends_every_task_even_one_that_swallows_its_cancellation() -> None:
    """A library that swallows a cancellation (Python 3.11's `asyncio.wait_for` did, in the
    turn its awaitable ended) leaves a loop running: the shutdown cancels it again, and says
    which, instead of waiting for it forever."""
    rounds: list[str] = []

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            rounds.append("swallowed")
        await asyncio.Event().wait()  # goes on as if nothing happened

    async def plain() -> None:
        await asyncio.Event().wait()

    background = Background()
    background.spawn(stubborn())
    background.spawn(plain())
    await asyncio.sleep(0)  # both tasks start
    with capture_logs() as logs:
        await asyncio.wait_for(background.close(grace=0.05), UNIT)
    assert len(background) == 0 and rounds == ["swallowed"]
    assert [(e["event"], e["task"]) for e in logs] == [("background_task_ignored_cancel",
                                                       "test_close_ends_every_task_even_one_that_swallows_"
                                                       "its_cancellation.<locals>.stubborn")]
