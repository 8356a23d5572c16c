"""One store round trip per batch of connects: the reads that every connect makes — the
latest seqs of the channels it joins, with `updated_since` (the web client's reconnects)
the messages edited or deleted since, and with a device session's token the check that
the session is live (which moves its `last_seen`: one write per batch, not one fsync'd
transaction per connect) — go to the store together.

The pattern of `persistence.batching.Batcher`: while one read runs, the next gathers;
at low load a read is one caller's and waits for nothing, at 8:30 one read serves every
connect that arrived meanwhile (up to `max_channels` channels a read). When connects keep
coming, a read also waits `linger` (5 ms) for company (`channels.linger.Linger`: on uvloop,
235 reads for 2,025 connects without it, each a hand-off to the store's thread and back,
against 55 on the plain loop). Each caller gets
exactly what it would have read alone; a failed read fails every caller of its batch.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Generic, TypeVar

from channels.linger import Linger
from school.channels import stores_messages
from school.messages import Message

ReadLatest = Callable[[list[str]], Awaitable[dict[str, int]]]
ReadUpdates = Callable[[dict[str, int], int], Awaitable[dict[str, list[Message]]]]
TouchSessions = Callable[[list[str], float], Awaitable[set[str]]]

MAX_CHANNELS = 500
LINGER = 0.005  # seconds a read waits for company when the previous one started less than that ago
UPDATES_SPAN_MS = 24 * 3600 * 1000  # callers whose `updated_since` lie within a day share a read

Ask = TypeVar("Ask")
Answer = TypeVar("Answer")


class _Gathered(ABC, Generic[Ask, Answer]):
    """Callers queue their asks; one runner serves what queued, batch after batch."""

    def __init__(self, max_channels: int, linger: float = LINGER,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._max = max_channels
        self._pace = Linger(linger, clock)
        self._queue: deque[tuple[Ask, int, asyncio.Future[Answer]]] = deque()
        self._runner: asyncio.Task[None] | None = None
        self.reads = 0  # store reads made (for tests and figures)

    async def _ask(self, ask: Ask, channels: int) -> Answer:
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._queue.append((ask, channels, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._queue:
            await self._pace.pause()  # asks keep coming: wait for company
            batch: list[tuple[Ask, asyncio.Future[Answer]]] = []
            channels = 0
            while self._queue and (not batch or channels + self._queue[0][1] <= self._max):
                ask, count, future = self._queue.popleft()
                if future.done():  # its caller was cancelled
                    continue
                batch.append((ask, future))
                channels += count
            if batch:
                await self._serve(batch)

    @abstractmethod
    async def _serve(self, batch: list[tuple[Ask, asyncio.Future[Answer]]]) -> None:
        """Answer every future of `batch` (with one store read)."""

    @staticmethod
    def _fail(batch: Iterable[tuple[Ask, asyncio.Future[Answer]]], exc: BaseException) -> None:
        for _, future in batch:
            if not future.done():
                future.set_exception(exc)


class LatestSeqs(_Gathered[list[str], dict[str, int]]):
    def __init__(self, read: ReadLatest, max_channels: int = MAX_CHANNELS,
                 linger: float = LINGER, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(max_channels, linger, clock)
        self._read = read

    async def get(self, channels: Iterable[str]) -> dict[str, int]:
        """The latest `seq` of each of `channels` (0 for a channel without messages). The
        channels that never hold one (`user:`, school.channels.stores_messages) are answered 0
        without asking the store: a connect's own channel costs no read, and starting its feed
        none either."""
        names = list(dict.fromkeys(channels))
        stored = [c for c in names if stores_messages(c)]
        latest = await self._ask(stored, len(stored)) if stored else {}
        return {c: latest.get(c, 0) for c in names}

    async def _serve(self, batch: list[tuple[list[str], asyncio.Future[dict[str, int]]]]) -> None:
        union: dict[str, None] = {}
        for names, _ in batch:
            union.update(dict.fromkeys(names))
        self.reads += 1
        try:
            latest = await self._read(list(union))
        except Exception as exc:
            self._fail(batch, exc)
            return
        for names, future in batch:
            if not future.done():
                future.set_result({c: latest.get(c, 0) for c in names})


UpdatesAsk = tuple[dict[str, int], int]


class Updates(_Gathered[UpdatesAsk, dict[str, list[Message]]]):
    """`store.updates` for concurrent connects with `updated_since`: the callers of a batch whose
    times lie within `span_ms` of each other share one read (from the earliest time, up to each
    channel's highest `since`), and each gets its own channels filtered to its own bounds."""

    def __init__(self, read: ReadUpdates, max_channels: int = MAX_CHANNELS,
                 span_ms: int = UPDATES_SPAN_MS,
                 linger: float = LINGER, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(max_channels, linger, clock)
        self._read = read
        self._span = span_ms

    async def get(self, upto: Mapping[str, int], after_ts: int) -> dict[str, list[Message]]:
        wanted = dict(upto)
        if not wanted:
            return {}
        return await self._ask((wanted, after_ts), len(wanted))

    async def _serve(self, batch: list[tuple[UpdatesAsk, asyncio.Future[dict[str, list[Message]]]]]) -> None:
        ordered = sorted(batch, key=lambda item: item[0][1])
        groups: list[list[tuple[UpdatesAsk, asyncio.Future[dict[str, list[Message]]]]]] = []
        for item in ordered:
            if groups and item[0][1] - groups[-1][0][0][1] <= self._span:
                groups[-1].append(item)
            else:
                groups.append([item])
        await asyncio.gather(*(self._serve_group(group) for group in groups))

    async def _serve_group(self, group: list[tuple[UpdatesAsk, asyncio.Future[dict[str, list[Message]]]]]) -> None:
        since = group[0][0][1]  # the earliest: the group is sorted
        upto: dict[str, int] = {}
        for (wanted, _), _future in group:
            for channel, last in wanted.items():
                upto[channel] = max(last, upto.get(channel, last))
        self.reads += 1
        try:
            found = await self._read(upto, since)
        except Exception as exc:
            self._fail(group, exc)
            return
        for (wanted, after), future in group:
            if not future.done():
                future.set_result({c: [m for m in found.get(c, [])
                                       if m.seq <= last and m.edited is not None and m.edited >= after]
                                   for c, last in wanted.items()})


class LiveSessions(_Gathered[tuple[str, float], bool]):
    """`AuthStore.touch_session` for concurrent connects: one `touch_sessions` for the batch,
    at the latest of its callers' times (`last_seen` only moves forward). Each caller learns
    whether its session was live at that write, which comes after its own call: a session
    ended before it is refused, as with a touch of its own."""

    def __init__(self, touch: TouchSessions, max_sessions: int = MAX_CHANNELS,
                 linger: float = LINGER, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(max_sessions, linger, clock)
        self._touch = touch

    async def touch(self, session_id: str, at: float) -> bool:
        return await self._ask((session_id, at), 1)

    async def _serve(self, batch: list[tuple[tuple[str, float], asyncio.Future[bool]]]) -> None:
        ids = list(dict.fromkeys(sid for (sid, _), _future in batch))
        self.reads += 1
        try:
            live = await self._touch(ids, max(at for (_, at), _future in batch))
        except Exception as exc:
            self._fail(batch, exc)
            return
        for (sid, _), future in batch:
            if not future.done():
                future.set_result(sid in live)
