"""Fixtures of the sign-in tests: a real SQLite auth store and a clock the tests move."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from persistence.auth_sqlite import SQLiteAuthStore
from persistence.auth_store import AuthStore
from tests.support.clock import FakeClock

T0 = 1_800_000_000.0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AuthStore]:
    opened = SQLiteAuthStore(str(tmp_path / "liaison.db"))
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)
