"""The batcher behind SQLite's group commit and grouped reads: no I/O, a gate in place of a thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from persistence.batching import Batcher
from persistence.store import StoreUnavailable


def returns(value: int) -> Callable[[Any], int]:
    return lambda _: value


class Worker:
    """Runs each batch when the test opens the gate; records the batches' sizes."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.deadlines: list[float | None] = []
        self.gate = asyncio.Event()
        self.fail_all: Exception | None = None

    async def run(self, ops: list[Any], deadline: float | None) -> list[tuple[bool, Any]]:
        self.deadlines.append(deadline)
        await self.gate.wait()
        self.batches.append(len(ops))
        if self.fail_all is not None:
            raise self.fail_all
        out: list[tuple[bool, Any]] = []
        for op in ops:
            try:
                out.append((True, op(None)))
            except Exception as exc:
                out.append((False, exc))
        return out


async def test_calls_that_queue_while_a_batch_runs_go_together() -> None:
    worker = Worker()
    batcher = Batcher(worker.run)
    first = asyncio.ensure_future(batcher.run(lambda _: 1))
    await asyncio.sleep(0)  # let the first batch start and wait at the gate
    rest = [asyncio.ensure_future(batcher.run(returns(i))) for i in range(2, 6)]
    worker.gate.set()
    assert await first == 1
    assert await asyncio.gather(*rest) == [2, 3, 4, 5]
    assert worker.batches == [1, 4]


async def test_one_failing_call_fails_alone() -> None:
    worker = Worker()
    worker.gate.set()
    batcher = Batcher(worker.run)

    def boom(_: Any) -> int:
        raise ValueError("bad")

    results = await asyncio.gather(batcher.run(lambda _: "ok"), batcher.run(boom), return_exceptions=True)
    assert results[0] == "ok" and isinstance(results[1], ValueError)


async def test_a_failed_batch_fails_every_call_and_the_next_batch_runs() -> None:
    worker = Worker()
    worker.gate.set()
    worker.fail_all = RuntimeError("store closed")
    batcher = Batcher(worker.run)
    with pytest.raises(RuntimeError):
        await batcher.run(lambda _: 1)
    worker.fail_all = None
    assert await batcher.run(lambda _: 2) == 2


async def test_batches_are_capped() -> None:
    worker = Worker()
    batcher = Batcher(worker.run, max_batch=3)
    calls = [asyncio.ensure_future(batcher.run(returns(i))) for i in range(7)]
    await asyncio.sleep(0)
    worker.gate.set()
    assert await asyncio.gather(*calls) == list(range(7))
    assert worker.batches == [3, 3, 1]


async def test_a_call_whose_deadline_passes_while_queued_is_refused_and_never_runs() -> None:
    worker = Worker()  # the gate stays shut: the first batch is stuck (a locked database)
    batcher = Batcher(worker.run, timeout=0.05)
    ran: list[str] = []
    first = asyncio.ensure_future(batcher.run(lambda _: ran.append("first")))
    queued = asyncio.ensure_future(batcher.run(lambda _: ran.append("queued")))
    started = time.monotonic()
    for call in (first, queued):
        with pytest.raises(StoreUnavailable, match="deadline"):
            await asyncio.wait_for(call, 2)
    assert time.monotonic() - started < 1  # each answered at its own deadline
    worker.gate.set()  # the lock goes away: what expired must not run then
    assert await batcher.run(lambda _: "later") == "later"  # the batcher still works
    await batcher.drain()
    assert ran == []
    assert worker.batches[-1] == 1  # the expired call was not handed over again


async def test_a_call_the_worker_started_is_waited_for_past_its_deadline() -> None:
    started, release = threading.Event(), threading.Event()

    async def in_a_thread(ops: list[Any], deadline: float | None) -> list[tuple[bool, Any]]:
        return await asyncio.to_thread(lambda: [(True, op(None)) for op in ops])

    def write(_: Any) -> str:
        started.set()
        release.wait(5)  # inside its transaction, about to commit
        return "stored"

    batcher = Batcher(in_a_thread, timeout=0.05)
    call = asyncio.ensure_future(batcher.run(write))
    assert await asyncio.to_thread(started.wait, 2)
    done, _ = await asyncio.wait({call}, timeout=0.3)  # well past the deadline
    assert not done  # not "unavailable" for a write that is being stored
    release.set()
    assert await asyncio.wait_for(call, 2) == "stored"


async def test_a_batch_is_given_the_latest_deadline_of_its_calls() -> None:
    worker = Worker()
    batcher = Batcher(worker.run, timeout=5)
    before = time.monotonic()
    first = asyncio.ensure_future(batcher.run(lambda _: 1))
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(batcher.run(lambda _: 2)) for _ in range(3)]
    worker.gate.set()
    await asyncio.gather(first, *rest)
    assert len(worker.deadlines) == 2
    assert all(d is not None and before + 5 <= d <= time.monotonic() + 5 for d in worker.deadlines)
    assert Batcher(worker.run)._timeout is None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_under_steady_load_a_call_lingers_for_others_to_share_its_batch() -> None:
    worker, clock = Worker(), Clock()
    worker.gate.set()
    batcher = Batcher(worker.run, linger=0.05, clock=clock)
    assert await batcher.run(returns(1)) == 1  # no batch before it: no linger
    # the clock has not moved: the previous batch started just now, calls come steadily
    first = asyncio.ensure_future(batcher.run(returns(2)))
    await asyncio.sleep(0)  # its runner starts, and lingers
    later = [asyncio.ensure_future(batcher.run(returns(i))) for i in (3, 4)]
    assert await asyncio.gather(first, *later) == [2, 3, 4]
    assert worker.batches == [1, 3]  # without the linger: [1, 1, 2]


async def test_an_idle_store_does_not_linger() -> None:
    worker, clock = Worker(), Clock()
    worker.gate.set()
    batcher = Batcher(worker.run, linger=3600.0, clock=clock)
    assert await batcher.run(returns(1)) == 1
    clock.now += 3601  # the last batch started longer than the linger ago
    assert await asyncio.wait_for(batcher.run(returns(2)), 5) == 2  # the hour's linger would fail this
    assert worker.batches == [1, 1]


@pytest.mark.parametrize("timeout", [None, 5.0])
async def test_a_caller_cancelled_is_cancelled_even_the_moment_its_answer_comes(timeout: float | None) -> None:
    """A call's answer and its caller's cancellation in the same turn of the loop: the caller
    ends cancelled. (Python 3.11's `asyncio.wait_for` returned the answer instead, and
    swallowed the cancellation: a loop around such a call, `Membership.watch_store`, went
    on forever and `liaison privacy run` hung at its shutdown.) Cancelling after each count
    of loop turns from the call hits that turn among the others."""
    worker = Worker()
    worker.gate.set()
    batcher = Batcher(worker.run, timeout=timeout)
    outcomes = set()
    for turns in range(12):
        caller = asyncio.ensure_future(batcher.run(returns(7)))
        for _ in range(turns):
            await asyncio.sleep(0)
        if caller.cancel():
            with pytest.raises(asyncio.CancelledError):
                await caller
            outcomes.add("cancelled")
        else:
            assert await caller == 7
            outcomes.add("answered")
        await batcher.drain()
    assert outcomes == {"cancelled", "answered"}, "the sweep crossed the moment the answer came"
