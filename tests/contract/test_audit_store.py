"""The `AuditStore` contract (persistence/audit_store.py), run against every adapter.

- "sqlite": a real SQLite file in the test's `tmp_path` (the triggers refuse changes);
- "mongodb": the MongoDB at `LIAISON_TEST_MONGODB_URL`, a fresh database per test, dropped
  afterwards (skipped, saying so, when the variable is unset).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from persistence.audit_mongo import MongoAuditStore
from persistence.audit_sqlite import SQLiteAuditStore
from persistence.audit_store import AuditEntry, AuditStore
from persistence.store import StoreUnavailable
from realtime.services.audit import Audit
from tests.contract.conftest import mongodb_database
from tests.support.clock import FakeClock

MONGODB_SKIP = (
    "MongoDB AuditStore contract suite needs LIAISON_TEST_MONGODB_URL pointing at a MongoDB"
    " (none can be installed here)"
)
DAY = 86400.0

AuditFactory = Callable[[], AuditStore]


@pytest.fixture(params=["sqlite", "mongodb"])
async def audit_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AuditFactory]:
    if request.param == "sqlite":
        path = str(tmp_path / "liaison.db")
        yield lambda: SQLiteAuditStore(path, retention_days=30)
        return
    async with mongodb_database("liaison_audit_test", MONGODB_SKIP) as (url, database):
        yield lambda: MongoAuditStore(url, database)


@pytest.fixture
async def audit_store(audit_backend: AuditFactory) -> AsyncIterator[AuditStore]:
    store = audit_backend()
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def test_entries_page_newest_first_by_school_and_target(audit_store: AuditStore) -> None:
    now = time.time()
    ids = []
    for i in range(5):
        school = "ecole-a" if i % 2 == 0 else "ecole-b"
        ids.append(await audit_store.append(AuditEntry(now + i, "p-dir", "published", f"class:{i}", school,
                                                       {"seq": i})))
    assert ids == sorted(ids) and len(set(ids)) == 5
    a = await audit_store.entries(school="ecole-a")
    assert [e.target for e in a] == ["class:4", "class:2", "class:0"]
    assert a[0].details == {"seq": 4} and a[0].actor == "p-dir" and a[0].action == "published"
    page = await audit_store.entries(school="ecole-a", before=a[0].id, limit=1)
    assert [e.target for e in page] == ["class:2"]
    assert [e.id for e in await audit_store.entries(target="class:3")] == [ids[3]]
    assert len(await audit_store.entries(limit=2)) == 2


async def test_a_second_store_on_the_same_data_continues_the_ids(audit_backend: AuditFactory) -> None:
    first, second = audit_backend(), audit_backend()
    await first.open()
    await second.open()
    try:
        one = await first.append(AuditEntry(time.time(), "a", "erased", "p-1"))
        two = await second.append(AuditEntry(time.time(), "a", "erased", "p-2"))
        three = await first.append(AuditEntry(time.time(), "a", "erased", "p-3"))
        assert one < two < three
    finally:
        await first.close()
        await second.close()


async def test_purge_removes_only_entries_older_than_the_bound(audit_store: AuditStore) -> None:
    now = time.time()
    await audit_store.append(AuditEntry(now - 400 * DAY, "a", "published", "old"))
    await audit_store.append(AuditEntry(now - DAY, "a", "published", "recent"))
    assert await audit_store.purge(now - 365 * DAY) == 1
    assert [e.target for e in await audit_store.entries()] == ["recent"]
    assert await audit_store.purge(now - 365 * DAY) == 0


async def test_the_service_purges_by_its_retention_and_records_without_texts(audit_store: AuditStore) -> None:
    clock = FakeClock(time.time())
    audit = Audit(audit_store, retention_days=30, clock=clock)
    clock.advance(-40 * DAY)
    await audit.record("p-dir", "published", "class:cm1", "ecole-a", {"channel": "class:cm1", "seq": 1})
    clock.advance(40 * DAY)
    await audit.record("p-dir", "published", "class:cm1", "ecole-a", {"channel": "class:cm1", "seq": 2})
    await audit.flush()
    assert await audit.purge() == 1
    assert [e.details["seq"] for e in await audit.entries("ecole-a")] == [2]


async def test_sqlite_refuses_updates_and_deletes_of_live_entries(tmp_path: Path) -> None:
    path = str(tmp_path / "liaison.db")
    store = SQLiteAuditStore(path, retention_days=30)
    await store.open()
    try:
        now = time.time()
        await store.append(AuditEntry(now, "p-dir", "erased", "p-lea", "ecole-a"))
        await store.append(AuditEntry(now - 31 * DAY, "p-dir", "published", "class:cm1", "ecole-a"))
        await store.append(AuditEntry(now - 20 * DAY, "p-dir", "published", "class:cm2", "ecole-a"))
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE audit_log SET actor = 'someone-else'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE audit_log SET at = 0 WHERE target = 'p-lea'")
        with pytest.raises(sqlite3.IntegrityError, match="retention period"):
            conn.execute("DELETE FROM audit_log")
        with pytest.raises(sqlite3.IntegrityError, match="retention period"):
            conn.execute("DELETE FROM audit_log WHERE target = 'class:cm2'")
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 3
        # past the retention period, an entry may go (that is the purge)
        assert conn.execute("DELETE FROM audit_log WHERE target = 'class:cm1'").rowcount == 1
    finally:
        conn.close()


async def test_append_many_keeps_the_order_and_grows_the_ids(audit_store: AuditStore) -> None:
    first = await audit_store.append(AuditEntry(time.time(), "a", "published", "t0"))
    await audit_store.append_many([AuditEntry(time.time(), "a", "published", f"t{i}") for i in range(1, 4)])
    await audit_store.append_many([])
    last = await audit_store.append(AuditEntry(time.time(), "a", "published", "t4"))
    entries = await audit_store.entries()
    assert [e.target for e in entries] == ["t4", "t3", "t2", "t1", "t0"]
    assert [e.id for e in entries] == sorted((e.id for e in entries), reverse=True)
    assert entries[0].id == last and entries[-1].id == first


async def test_the_service_writes_a_burst_in_the_background(audit_store: AuditStore) -> None:
    audit = Audit(audit_store)
    for seq in range(1, 301):
        await audit.record("t-martin", "published", "class:cm1", "ecole-a", {"seq": seq})
    await audit.flush()
    entries = await audit.entries("ecole-a", limit=500)
    assert [e.details["seq"] for e in entries] == list(range(300, 0, -1))


async def test_a_read_of_the_log_sees_what_was_just_recorded_and_never_hangs_on_a_closed_store(
        audit_backend: AuditFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    store = audit_backend()
    await store.open()
    audit = Audit(store)
    await audit.record("d-bernard", "quiet_hours_changed", "school:ecole-a", "ecole-a", {})
    assert [e.action for e in await audit.entries("ecole-a")] == ["quiet_hours_changed"]  # no flush asked
    await store.close()
    monkeypatch.setattr("realtime.services.audit.FLUSH_WAIT", 0.2)
    monkeypatch.setattr("realtime.services.audit.RETRY_DELAY", 0.05)
    await audit.record("d-bernard", "published", "class:cm1", "ecole-a", {"seq": 1})  # never written
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await audit.entries("ecole-a")
    assert time.monotonic() - started < 5
    audit._writer.cancel()  # type: ignore[union-attr]  # it retries for as long as the store is away
