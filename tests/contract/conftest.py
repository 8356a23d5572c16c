"""The `store` fixture: every contract test runs against every `Store` adapter.

- "sqlite": a real SQLite file in the test's `tmp_path`.
- "mongodb": the MongoDB at `LIAISON_TEST_MONGODB_URL`, in a fresh database per test
  that is dropped afterwards (skipped when the variable is unset).

`store_backend` gives a factory of unopened stores on the same data: a second instance
is a second gateway process, or the same one after a restart.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from persistence.mongo import MongoStore
from persistence.sqlite import SQLiteStore
from persistence.store import Store

MONGODB_URL_VARIABLE = "LIAISON_TEST_MONGODB_URL"
MONGODB_SKIP = (
    "MongoDB contract suite needs LIAISON_TEST_MONGODB_URL pointing at a MongoDB"
    " (none can be installed here)"
)

StoreFactory = Callable[[], Store]


@pytest.fixture(params=["sqlite", "mongodb"])
async def store_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    if request.param == "sqlite":
        path = str(tmp_path / "liaison.db")
        yield lambda: SQLiteStore(path)
        return
    async with mongodb_database("liaison_test", MONGODB_SKIP) as (url, database):
        yield lambda: MongoStore(url, database)


@contextlib.asynccontextmanager
async def mongodb_database(prefix: str, skip_reason: str) -> AsyncIterator[tuple[str, str]]:
    """A fresh database on the MongoDB of LIAISON_TEST_MONGODB_URL, dropped afterwards; the
    test is skipped, saying why, when no MongoDB is given."""
    url = os.environ.get(MONGODB_URL_VARIABLE)
    if not url:
        pytest.skip(skip_reason)
    database = f"{prefix}_{uuid.uuid4().hex[:16]}"
    try:
        yield url, database
    finally:
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url)
        try:
            await client.drop_database(database)
        finally:
            await client.close()


@pytest.fixture
async def store(store_backend: StoreFactory) -> AsyncIterator[Store]:
    opened = store_backend()
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
