"""The `PrivacyStore` contract (persistence/privacy_store.py), run against every adapter:
a real SQLite file, and the MongoDB of `LIAISON_TEST_MONGODB_URL` when set (skipped, saying
so, otherwise)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from persistence.factory import open_privacy_store
from persistence.privacy_mongo import MongoPrivacyStore
from persistence.privacy_sqlite import SQLitePrivacyStore
from persistence.privacy_store import ErasureJob, Leaver, PrivacyStore, SchoolYear
from tests.contract.conftest import mongodb_database

MONGODB_SKIP = (
    "MongoDB PrivacyStore contract suite needs LIAISON_TEST_MONGODB_URL pointing at a MongoDB"
    " (none can be installed here)"
)
T0 = 1_800_000_000.0
PrivacyFactory = Callable[[], PrivacyStore]


@pytest.fixture(params=["sqlite", "mongodb"])
async def privacy_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PrivacyFactory]:
    if request.param == "sqlite":
        path = str(tmp_path / "liaison.db")
        yield lambda: SQLitePrivacyStore(path)
        return
    async with mongodb_database("liaison_privacy_test", MONGODB_SKIP) as (url, database):
        yield lambda: MongoPrivacyStore(url, database)


@pytest.fixture
async def privacy(privacy_backend: PrivacyFactory) -> AsyncIterator[PrivacyStore]:
    store = privacy_backend()
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def test_one_unfinished_erasure_per_person_resumed_step_by_step(privacy: PrivacyStore) -> None:
    job = await privacy.start_erasure(ErasureJob("p-lea-mere", T0, "api", "ecole"))
    assert (job.person_id, job.steps, job.finished_at) == ("p-lea-mere", {}, None)
    await privacy.erasure_step("p-lea-mere", "messages", 3)
    again = await privacy.start_erasure(ErasureJob("p-lea-mere", T0 + 60, "cli", None))
    assert (again.started_at, again.requested_by, again.steps) == (T0, "api", {"messages": 3})
    await privacy.erasure_step("p-lea-mere", "read_marks", 2)
    assert [(j.person_id, j.steps) for j in await privacy.unfinished_erasures()] == [
        ("p-lea-mere", {"messages": 3, "read_marks": 2})]
    await privacy.finish_erasure("p-lea-mere", T0 + 5)
    assert await privacy.unfinished_erasures() == []
    [done] = await privacy.erasures("p-lea-mere")
    assert (done.finished_at, done.steps) == (T0 + 5, {"messages": 3, "read_marks": 2})
    second = await privacy.start_erasure(ErasureJob("p-lea-mere", T0 + 100, "api"))
    assert second.steps == {} and second.started_at == T0 + 100, "a finished job does not block a new one"
    assert len(await privacy.erasures("p-lea-mere")) == 2


async def test_years_freeze_once_and_purge(privacy: PrivacyStore) -> None:
    await privacy.set_year(SchoolYear("ecole", "2027-07-03", 12))
    await privacy.set_year(SchoolYear("ecole", "2026-07-04", 12))
    await privacy.set_year(SchoolYear("ecole", "2026-07-04", 6))
    await privacy.set_year(SchoolYear("autre", "2026-07-04"))
    years = await privacy.years("ecole")
    assert [(y.ends, y.purge_after_months, y.channels) for y in years] == [
        ("2026-07-04", 6, None), ("2027-07-03", 12, None)]
    await privacy.freeze_year("ecole", "2026-07-04", ["class:b", "class:a", "class:a"])
    await privacy.freeze_year("ecole", "2026-07-04", ["class:c"])
    await privacy.year_purged("ecole", "2026-07-04", T0)
    [first, _] = await privacy.years("ecole")
    assert (first.channels, first.purged_at) == (("class:a", "class:b"), T0)
    assert [y.school_id for y in await privacy.years()] == ["autre", "ecole", "ecole"]
    assert await privacy.drop_year("ecole", "2026-07-04") is False, "it froze its channels: kept"
    assert await privacy.drop_year("ecole", "2027-07-03") is True
    assert await privacy.drop_year("ecole", "2027-07-03") is False
    assert [y.ends for y in await privacy.years("ecole")] == ["2026-07-04"]


async def test_leavers_are_kept_as_first_recorded(privacy: PrivacyStore) -> None:
    await privacy.record_leaver(Leaver("p-adam", "ecole", T0))
    await privacy.record_leaver(Leaver("p-adam", "ecole", T0 + 50))
    await privacy.record_leaver(Leaver("p-hugo", "ecole", T0 - 1))
    assert await privacy.leavers() == [Leaver("p-hugo", "ecole", T0 - 1), Leaver("p-adam", "ecole", T0)]
    await privacy.forget_leaver("p-hugo")
    assert await privacy.leavers() == [Leaver("p-adam", "ecole", T0)]


async def test_one_claim_per_job_and_day_across_stores(privacy_backend: PrivacyFactory) -> None:
    stores = [privacy_backend() for _ in range(3)]
    for s in stores:
        await s.open()
    try:
        wins = await asyncio.gather(*(s.claim_run("retention", "2026-09-01", f"r{i}", T0)
                                      for i, s in enumerate(stores)))
        assert sorted(wins) == [False, False, True]
        assert await stores[0].claim_run("retention", "2026-09-02", "r0", T0) is True
        assert await stores[1].claim_run("audit", "2026-09-01", "r0", T0) is True
    finally:
        for s in stores:
            await s.close()


def test_the_factory_picks_the_adapter(tmp_path: Path) -> None:
    assert isinstance(open_privacy_store(f"sqlite:///{tmp_path}/x.db"), SQLitePrivacyStore)
