"""Batching calls to a single worker: while one batch runs, the next one gathers.

The SQLite adapter runs every call on one writer or one reader thread. Handing
each call over separately costs a thread switch, and under load the event loop and
the worker fight for the GIL (up to the 5 ms switch interval per hand-off); each
write also costs an fsync. A `Batcher` hands over everything that queued while the
previous batch ran, in one go: at low load a batch is one call and adds no delay,
at 8:30 on a school morning a batch is hundreds.

Deadlines: with a `timeout`, every call has one deadline, counted from the moment it
is queued. A call still waiting when its deadline passes (queued behind a batch that
waits for a lock, say) is answered `StoreUnavailable` at once, and it never runs: the
worker claims a call before running it, the waiter claims it when giving up, and only
one of the two claims wins. A call the worker has started is waited for (it is inside
a transaction that is about to commit), so an answer is never "unavailable" for a
write that was in fact stored. Each batch is handed the latest deadline of its calls,
so that the worker can bound its own waits (SQLite's `busy_timeout`) by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from persistence.store import StoreUnavailable

T = TypeVar("T")
Op = Callable[[Any], Any]
# The operations of one batch and the latest of their deadlines (`time.monotonic()`),
# None when one of them has none.
RunBatch = Callable[[list[Op], float | None], Awaitable[list[tuple[bool, Any]]]]

MAX_BATCH = 256

_PENDING, _STARTED, _EXPIRED = "pending", "started", "expired"


class Expired(Exception):
    """Raised on the worker for a call whose waiter gave up: it did not run."""


class _Call:
    """One queued call; claimed exactly once, by the worker or by its expired waiter."""

    __slots__ = ("_lock", "_state", "deadline", "future", "op")

    def __init__(self, op: Op, future: asyncio.Future[Any], deadline: float | None) -> None:
        self.op = op
        self.future = future
        self.deadline = deadline
        self._lock = threading.Lock()
        self._state = _PENDING

    def claim(self, state: str) -> bool:
        with self._lock:
            if self._state != _PENDING:
                return False
            self._state = state
            return True

    def run(self, conn: Any) -> Any:
        """On the worker: run the operation unless its waiter already gave up."""
        if not self.claim(_STARTED):
            raise Expired()
        return self.op(conn)


class Batcher:
    def __init__(
        self, run_batch: RunBatch, max_batch: int = MAX_BATCH, timeout: float | None = None,
        linger: float = 0.0, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`linger` (seconds): under steady load, when the previous batch started less than
        `linger` ago, a call that finds no batch running waits that long for others to
        join it — a group-commit delay, as PostgreSQL's `commit_delay`: one commit (one fsync)
        and one thread hand-off for them all. An idle store adds no delay; calls that queue
        while a batch runs never linger (they have waited already)."""
        self._run_batch = run_batch
        self._max = max_batch
        self._timeout = timeout
        self._linger = linger
        self._clock = clock
        self._last_start = float("-inf")
        self._queue: list[_Call] = []
        self._runner: asyncio.Task[None] | None = None

    async def run(self, op: Callable[[Any], T]) -> T:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        call = _Call(op, future, deadline)
        self._queue.append(call)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.ensure_future(self._drain_queue())
        if deadline is None:
            result: T = await future
            return result
        try:  # not `asyncio.wait_for`: on Python 3.11 it swallows a cancellation that comes with the answer
            async with asyncio.timeout(deadline - time.monotonic()):
                result = await asyncio.shield(future)
        except TimeoutError:
            if not call.claim(_EXPIRED):  # the worker started it: its answer comes shortly
                result = await future
                return result
            future.cancel()
            raise StoreUnavailable(
                f"no answer within the {self._timeout} s deadline (the store is busy or locked)"
            ) from None
        return result

    async def _drain_queue(self) -> None:
        if self._linger > 0 and self._clock() - self._last_start < self._linger:
            await asyncio.sleep(self._linger)
        while self._queue:
            self._last_start = self._clock()
            batch, self._queue = self._queue[: self._max], self._queue[self._max :]
            batch = [call for call in batch if not call.future.done()]  # expired while queued
            if not batch:
                continue
            deadlines = [call.deadline for call in batch]
            latest = None if None in deadlines else max(d for d in deadlines if d is not None)
            try:
                results = await self._run_batch([call.run for call in batch], latest)
            except Exception as exc:  # the whole batch failed (the store is closed or gone)
                for call in batch:
                    if not call.future.done():
                        call.future.set_exception(exc)
                continue
            for call, (ok, value) in zip(batch, results, strict=True):
                if call.future.done():
                    continue
                if ok:
                    call.future.set_result(value)
                else:
                    call.future.set_exception(value)

    async def drain(self) -> None:
        """Wait for what is queued to finish (or fail)."""
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner
