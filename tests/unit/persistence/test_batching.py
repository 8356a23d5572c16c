"""The batcher behind SQLite's group commit and grouped reads: no I/O, a gate in place of a thread."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from persistence.batching import Batcher


class Worker:
    """Runs each batch when the test opens the gate; records the batches' sizes."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.gate = asyncio.Event()
        self.fail_all: Exception | None = None

    async def run(self, ops: list[Any]) -> list[tuple[bool, Any]]:
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
    rest = [asyncio.ensure_future(batcher.run(lambda _, i=i: i)) for i in range(2, 6)]
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
    calls = [asyncio.ensure_future(batcher.run(lambda _, i=i: i)) for i in range(7)]
    await asyncio.sleep(0)
    worker.gate.set()
    assert await asyncio.gather(*calls) == list(range(7))
    assert worker.batches == [3, 3, 1]
