"""Background tasks of one gateway: spawned, tracked, and cancelled together at shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import structlog

log = structlog.get_logger("liaison.background")


class Background:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background_task_failed", error=repr(task.exception()))

    def __len__(self) -> int:
        return len(self._tasks)

    async def close(self, grace: float = 1.0) -> None:
        """Cancel every task and wait for them to end. A task still running `grace` seconds
        after its cancellation (one that a library swallowed) is logged and cancelled again,
        rather than holding the shutdown forever."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        pending = set(tasks)
        while pending:
            _, pending = await asyncio.wait(pending, timeout=grace)
            for task in pending:
                log.error("background_task_ignored_cancel",
                          task=getattr(task.get_coro(), "__qualname__", task.get_name()))
                task.cancel()
