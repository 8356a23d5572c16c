"""Waiting on conditions, with timeouts a slow machine can scale.

`UNIT` is the base timeout in seconds; set `LIAISON_TEST_TIMEOUT_SCALE=3` to triple
every timeout on a slow machine. Tests wait for a condition, never for a duration.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

UNIT = float(os.environ.get("LIAISON_TEST_TIMEOUT_SCALE", "1")) * 5.0  # seconds
POLL_INTERVAL = 0.01  # seconds between two checks of a condition


async def wait_for(predicate: Callable[[], object], timeout: float = UNIT, what: str = "") -> None:
    """Return as soon as `predicate()` is truthy; raise `TimeoutError` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true after {timeout:.1f}s: {what or predicate}")
        await asyncio.sleep(POLL_INTERVAL)


def wait_until(predicate: Callable[[], object], timeout: float = UNIT, what: str = "") -> None:
    """`wait_for` for synchronous code (fixtures that start and stop servers)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true after {timeout:.1f}s: {what or predicate}")
        time.sleep(POLL_INTERVAL)
