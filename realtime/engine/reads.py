"""One store round trip per batch of connects: the `latest_seqs` reads of concurrent
connects and subscribes go to the store together.

The pattern of `persistence.batching.Batcher`: while one read runs, the next gathers;
at low load a read is one caller's and waits for nothing, at 8:30 one read serves every
connect that arrived meanwhile (up to `max_channels` channels a read). Each caller gets
exactly the channels it asked for, as if it had read alone; a failed read fails every
caller of its batch.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable

ReadLatest = Callable[[list[str]], Awaitable[dict[str, int]]]

MAX_CHANNELS = 500


class LatestSeqs:
    def __init__(self, read: ReadLatest, max_channels: int = MAX_CHANNELS) -> None:
        self._read = read
        self._max = max_channels
        self._queue: deque[tuple[list[str], asyncio.Future[dict[str, int]]]] = deque()
        self._runner: asyncio.Task[None] | None = None
        self.reads = 0  # store reads made (for tests and figures)

    async def get(self, channels: Iterable[str]) -> dict[str, int]:
        """The latest `seq` of each of `channels` (0 for a channel without messages)."""
        names = list(dict.fromkeys(channels))
        if not names:
            return {}
        future: asyncio.Future[dict[str, int]] = asyncio.get_running_loop().create_future()
        self._queue.append((names, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch: list[tuple[list[str], asyncio.Future[dict[str, int]]]] = []
            union: dict[str, None] = {}
            while self._queue and (not batch or len(union) + len(self._queue[0][0]) <= self._max):
                names, future = self._queue.popleft()
                if future.done():  # its caller was cancelled
                    continue
                batch.append((names, future))
                union.update(dict.fromkeys(names))
            if not batch:
                continue
            self.reads += 1
            try:
                latest = await self._read(list(union))
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for names, future in batch:
                if not future.done():
                    future.set_result({c: latest.get(c, 0) for c in names})
