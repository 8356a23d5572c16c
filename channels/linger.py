"""A batch of a steady stream waits a moment for company.

Work that arrives in bursts is batched as "what queued while the previous call ran": one
round trip, one socket write, one wake-up of the other side for all of it. On uvloop a
storm's connects arrive in more, smaller turns of the loop than on the plain loop, so that
rule alone made small batches (~4 connects an `ADMIT` call, ~13 a store read). `Linger` adds
the missing wait: before a batch, when the previous one started less than `seconds` ago,
wait `seconds` for more. After a quiet moment nothing waits. (The store's group commit,
`persistence.batching.Batcher`, waits once per drain instead: calls that queued behind an
fsync have waited already.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Linger:
    __slots__ = ("_clock", "_last", "seconds")

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._last = float("-inf")  # when the last batch started (`clock`)

    async def pause(self) -> None:
        """Before a batch: wait when batches keep coming; the batch starts now."""
        if self._clock() - self._last < self.seconds:
            await asyncio.sleep(self.seconds)
        self._last = self._clock()
