"""The `PushStore` contract (persistence/push_store.py) on a SQLite file and on MongoDB
(`LIAISON_TEST_MONGODB_URL`; skipped, saying so, when unset). Two store objects on the same
data are two gateway processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from persistence.push_mongo import MongoPushStore
from persistence.push_sqlite import SQLitePushStore
from persistence.push_store import PushStore, PushSubscription
from tests.contract.conftest import mongodb_database

MONGODB_SKIP = ("MongoDB PushStore contract suite needs LIAISON_TEST_MONGODB_URL pointing at a MongoDB"
                " (none can be installed here)")
T0 = 1_800_000_000.0


@pytest.fixture(params=["sqlite", "mongodb"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[PushStore, PushStore]]:
    make: Callable[[], PushStore]
    if request.param == "sqlite":
        path = str(tmp_path / "liaison.db")
        make = lambda: SQLitePushStore(path)  # noqa: E731
        async for pair in _opened(make):
            yield pair
        return
    async with mongodb_database("liaison_push_test", MONGODB_SKIP) as (url, database):
        async for pair in _opened(lambda: MongoPushStore(url, database)):
            yield pair


async def _opened(make: Callable[[], PushStore]) -> AsyncIterator[tuple[PushStore, PushStore]]:
    first, second = make(), make()
    await first.open()
    await second.open()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


def sub(sid: str, user: str = "p-adam", endpoint: str = "https://push.example/e1", session: str | None = None
        ) -> PushSubscription:
    return PushSubscription(sid, user, session, endpoint, "p256dh-" + sid, "auth-" + sid, T0)


async def test_two_processes_keep_the_first_vapid_key(stores: tuple[PushStore, PushStore]) -> None:
    a, b = stores
    kept = await asyncio.gather(a.vapid_key("KEY-A"), b.vapid_key("KEY-B"))
    assert kept[0] == kept[1] and kept[0] in ("KEY-A", "KEY-B")
    assert await a.vapid_key("KEY-C") == kept[0]


async def test_one_subscription_per_endpoint_owned_by_the_last_registrant(
        stores: tuple[PushStore, PushStore]) -> None:
    a, b = stores
    assert await a.add_subscription(sub("s1", session="sess-1")) == "s1"
    assert await b.add_subscription(sub("s2", user="p-durand")) == "s1", "the same endpoint: the same id"
    stored = await a.subscription("s1")
    assert stored is not None and (stored.user_id, stored.session_id, stored.auth) == ("p-durand", None, "auth-s2")
    await a.add_subscription(sub("s3", endpoint="https://push.example/e3"))
    mine = await b.subscriptions_of(["p-adam", "p-durand", "nobody"])
    assert {u: [s.id for s in subs] for u, subs in mine.items()} == {"p-adam": ["s3"], "p-durand": ["s1"]}
    assert await a.remove_subscription("s1", "p-adam") is False, "only the owner's"
    assert await a.remove_subscription("s1", "p-durand") is True
    assert await a.subscription("s1") is None
    assert await b.remove_subscriptions_of("p-adam") == 1
    assert await a.subscriptions_of(["p-adam"]) == {}


async def test_sent_records_and_outcomes_count_once(stores: tuple[PushStore, PushStore]) -> None:
    a, b = stores
    assert await a.was_sent("class:cp-a", 3, "s1") is False
    assert await a.mark_sent("class:cp-a", 3, "s1") is True
    assert await b.mark_sent("class:cp-a", 3, "s1") is False
    assert await b.was_sent("class:cp-a", 3, "s1") is True
    assert await a.was_sent("class:cp-a", 4, "s1") is False
    assert await a.count("class:cp-a", 3, "p-adam", "push") is True
    assert await b.count("class:cp-a", 3, "p-adam", "push") is False
    await a.count("class:cp-a", 3, "p-durand", "held")
    await a.count("class:cp-a", 3, "p-durand", "push")
    await a.count("class:cp-a", 3, "p-lea-mere", "email")
    await a.count("class:cp-a", 4, "p-lea-mere", "failed")
    assert await b.report("class:cp-a", 3) == {"push": 2, "email": 1, "held": 1, "failed": 0}
    assert await b.report("class:cm2-b", 1) == {"push": 0, "email": 0, "held": 0, "failed": 0}
    # a message's offline families in one write: each person once, whoever writes it
    assert await a.count_many("class:cp-a", 5, ["p-adam", "p-durand"], "email") == 2
    assert await b.count_many("class:cp-a", 5, ["p-durand", "p-lea-mere"], "email") == 1
    assert await a.count_many("class:cp-a", 5, [], "held") == 0
    assert await b.report("class:cp-a", 5) == {"push": 0, "email": 3, "held": 0, "failed": 0}
