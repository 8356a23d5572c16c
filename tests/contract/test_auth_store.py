"""The `AuthStore` contract (persistence/auth_store.py), run against every adapter.

- "sqlite": a real SQLite file in the test's `tmp_path`;
- "mongodb": the MongoDB at `LIAISON_TEST_MONGODB_URL`, a fresh database per test, dropped
  afterwards (skipped, saying so, when the variable is unset).

`auth_backend` makes unopened stores on the same data: a second one is a second gateway.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from persistence.auth_mongo import MongoAuthStore
from persistence.auth_sqlite import SQLiteAuthStore
from persistence.auth_store import REMEMBERED_HASHES, AuthStore, CodeState, DeviceSession
from persistence.factory import open_auth_store
from persistence.sqlite import SQLiteStore
from persistence.store import StoreUnavailable
from tests.contract.conftest import mongodb_database

MONGODB_SKIP = (
    "MongoDB AuthStore contract suite needs LIAISON_TEST_MONGODB_URL pointing at a MongoDB"
    " (none can be installed here)"
)
T0 = 1_800_000_000.0

AuthFactory = Callable[[], AuthStore]


@pytest.fixture(params=["sqlite", "mongodb"])
async def auth_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AuthFactory]:
    if request.param == "sqlite":
        path = str(tmp_path / "liaison.db")
        yield lambda: SQLiteAuthStore(path)
        return
    async with mongodb_database("liaison_auth_test", MONGODB_SKIP) as (url, database):
        yield lambda: MongoAuthStore(url, database)


@pytest.fixture
async def auth(auth_backend: AuthFactory) -> AsyncIterator[AuthStore]:
    store = auth_backend()
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def h(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


def device(sid: str = "s-1", user: str = "p-adam", at: float = T0) -> DeviceSession:
    return DeviceSession(sid, user, "iPhone de Léa", at, at)


# -- one-time codes ---------------------------------------------------------------------------


async def test_code_records_are_compared_and_set_by_version(auth: AuthStore) -> None:
    assert await auth.get_code("lea@example.fr") is None
    first = CodeState("lea@example.fr", 1, "p-lea", h("123456"), T0 + 600, 0, 0.0, (T0,))
    assert await auth.swap_code(first) is True
    assert await auth.get_code("lea@example.fr") == first
    assert await auth.swap_code(first) is False, "a second version 1 must lose"
    skipped = CodeState("lea@example.fr", 3, "p-lea", None, T0, 0, 0.0, ())
    assert await auth.swap_code(skipped) is False
    second = CodeState("lea@example.fr", 2, "p-lea", None, T0 + 600, 5, T0 + 900, (T0, T0 + 1.5))
    assert await auth.swap_code(second) is True
    assert await auth.get_code("lea@example.fr") == second
    assert await auth.get_code("LEA@example.fr") is None, "addresses are stored exactly as given"


async def test_concurrent_swaps_of_one_version_let_exactly_one_win(auth_backend: AuthFactory) -> None:
    gateways = [auth_backend(), auth_backend()]
    for store in gateways:
        await store.open()
    try:
        await gateways[0].swap_code(CodeState("a@b.fr", 1, "p-a", h("1"), T0, 0, 0.0, ()))
        attempts = [CodeState("a@b.fr", 2, "p-a", h(str(i)), T0, 0, 0.0, ()) for i in range(10)]
        won = await asyncio.gather(*(gateways[i % 2].swap_code(s) for i, s in enumerate(attempts)))
        assert won.count(True) == 1
        stored = await gateways[1].get_code("a@b.fr")
        assert stored == attempts[won.index(True)]
    finally:
        for store in gateways:
            await store.close()


async def test_purge_codes_drops_records_past_their_horizon(auth: AuthStore) -> None:
    await auth.swap_code(CodeState("old@b.fr", 1, "p-o", None, T0, 0, 0.0, (T0 - 10,)))
    await auth.swap_code(CodeState("locked@b.fr", 1, "p-l", None, T0, 5, T0 + 900, (T0,)))
    await auth.swap_code(CodeState("asked@b.fr", 1, "p-s", None, T0 - 50, 0, 0.0, (T0 + 100,)))
    assert await auth.purge_codes(T0 + 1) == 1
    assert await auth.get_code("old@b.fr") is None
    assert await auth.get_code("locked@b.fr") is not None
    assert await auth.get_code("asked@b.fr") is not None


# -- sessions ---------------------------------------------------------------------------------


async def test_create_session_reads_back_and_records_the_first_sign_in(auth: AuthStore) -> None:
    assert await auth.first_sign_ins(["p-adam", "p-lea"]) == {}
    await auth.create_session(device("s-1"), h("r1"))
    await auth.create_session(device("s-2", at=T0 + 50), h("r2"))
    assert await auth.get_session("s-1") == device("s-1")
    assert await auth.get_session("s-nope") is None
    assert await auth.first_sign_ins(["p-adam", "p-lea", "p-adam"]) == {"p-adam": T0}
    assert [s.id for s in await auth.list_sessions("p-adam")] == ["s-2", "s-1"]
    assert await auth.list_sessions("p-lea") == []


async def test_duplicate_session_id_or_refresh_hash_refused(auth: AuthStore) -> None:
    await auth.create_session(device("s-1"), h("r1"))
    with pytest.raises(ValueError):
        await auth.create_session(device("s-1"), h("other"))
    with pytest.raises(ValueError):
        await auth.create_session(device("s-2"), h("r1"))
    assert await auth.rotate_refresh("s-1", h("r1"), h("r1b"), T0 + 1)
    with pytest.raises(ValueError):
        await auth.create_session(device("s-3"), h("r1"))  # a superseded hash is taken too


async def test_rotation_remembers_the_superseded_hash(auth: AuthStore) -> None:
    await auth.create_session(device(), h("r1"))
    found = await auth.find_refresh(h("r1"))
    assert found is not None and found.current and found.session == device()
    assert await auth.rotate_refresh("s-1", h("r1"), h("r2"), T0 + 60) is True
    assert await auth.rotate_refresh("s-1", h("r1"), h("r3"), T0 + 61) is False, "r1 is no longer current"
    old = await auth.find_refresh(h("r1"))
    assert old is not None and (old.current, old.previous, old.rotated_at) == (False, True, T0 + 60)
    assert old.session.last_seen == T0 + 60
    assert await auth.rotate_refresh("s-1", h("r2"), h("r3"), T0 + 120) is True
    older = await auth.find_refresh(h("r1"))
    assert older is not None and (older.current, older.previous) == (False, False)
    current = await auth.find_refresh(h("r3"))
    assert current is not None and current.current and current.rotated_at == T0 + 120
    assert await auth.find_refresh(h("never")) is None


async def test_concurrent_rotations_with_one_credential_let_exactly_one_win(auth_backend: AuthFactory) -> None:
    """Two gateways (and several requests in each) present the same refresh credential."""
    gateways = [auth_backend(), auth_backend()]
    for store in gateways:
        await store.open()
    try:
        await gateways[0].create_session(device(), h("r1"))
        won = await asyncio.gather(
            *(gateways[i % 2].rotate_refresh("s-1", h("r1"), h(f"new{i}"), T0 + 1) for i in range(8)))
        assert won.count(True) == 1
        winner = f"new{won.index(True)}"
        found = await gateways[1].find_refresh(h(winner))
        assert found is not None and found.current
    finally:
        for store in gateways:
            await store.close()


async def test_at_least_the_last_remembered_hashes_are_recognised(auth: AuthStore) -> None:
    await auth.create_session(device(), h("r0"))
    rotations = REMEMBERED_HASHES + 3
    for i in range(rotations):
        assert await auth.rotate_refresh("s-1", h(f"r{i}"), h(f"r{i + 1}"), T0 + i)
    for i in range(rotations - REMEMBERED_HASHES, rotations):
        found = await auth.find_refresh(h(f"r{i}"))
        assert found is not None and not found.current, i
    assert (await auth.find_refresh(h(f"r{rotations}"))) is not None


async def test_an_ended_session_stays_ended(auth: AuthStore) -> None:
    await auth.create_session(device(), h("r1"))
    assert await auth.end_session("s-1", T0 + 10, "signed_out") is True
    assert await auth.end_session("s-1", T0 + 20, "reuse") is False
    ended = await auth.get_session("s-1")
    assert ended is not None and (ended.ended_at, ended.end_reason, ended.live) == (T0 + 10, "signed_out", False)
    assert await auth.rotate_refresh("s-1", h("r1"), h("r2"), T0 + 30) is False
    assert await auth.touch_session("s-1", T0 + 30) is False
    found = await auth.find_refresh(h("r1"))
    assert found is not None and found.current and not found.session.live
    assert await auth.list_sessions("p-adam") == []
    assert await auth.list_sessions("p-adam", include_ended=True) == [ended]
    assert await auth.end_session("s-nope", T0, "signed_out") is False


async def test_touch_sessions_touches_the_live_ones_and_names_them(auth: AuthStore) -> None:
    for sid in ("s-1", "s-2", "s-3"):
        await auth.create_session(device(sid), h("r" + sid))
    await auth.end_session("s-2", T0 + 10, "signed_out")
    assert await auth.touch_sessions(["s-1", "s-2", "s-3", "s-nope", "s-1"], T0 + 100) == {"s-1", "s-3"}
    assert await auth.touch_sessions(["s-3"], T0 + 50) == {"s-3"}
    assert await auth.touch_sessions([], T0 + 50) == set()
    last_seen = {sid: (await auth.get_session(sid)).last_seen for sid in ("s-1", "s-2", "s-3")}  # type: ignore[union-attr]
    assert last_seen == {"s-1": T0 + 100, "s-2": T0, "s-3": T0 + 100}


async def test_touch_moves_last_seen_forward_only(auth: AuthStore) -> None:
    await auth.create_session(device(), h("r1"))
    assert await auth.touch_session("s-1", T0 + 100) is True
    assert await auth.touch_session("s-1", T0 + 50) is True
    session = await auth.get_session("s-1")
    assert session is not None and session.last_seen == T0 + 100


async def test_end_user_sessions_ends_every_live_one_of_that_user(auth: AuthStore) -> None:
    await auth.create_session(device("s-1"), h("r1"))
    await auth.create_session(device("s-2"), h("r2"))
    await auth.create_session(device("s-3"), h("r3"))
    await auth.create_session(device("s-4", user="p-lea"), h("r4"))
    await auth.end_session("s-3", T0 + 1, "signed_out")
    assert await auth.end_user_sessions("p-adam", T0 + 5, "removed") == ["s-1", "s-2"]
    assert await auth.end_user_sessions("p-adam", T0 + 6, "removed") == []
    reasons = {s.id: s.end_reason for s in await auth.list_sessions("p-adam", include_ended=True)}
    assert reasons == {"s-1": "removed", "s-2": "removed", "s-3": "signed_out"}
    assert [s.id for s in await auth.list_sessions("p-lea")] == ["s-4"]


async def test_purge_sessions_drops_ended_sessions_and_their_hashes(auth: AuthStore) -> None:
    await auth.create_session(device("s-1"), h("r1"))
    await auth.rotate_refresh("s-1", h("r1"), h("r1b"), T0 + 1)
    await auth.create_session(device("s-2"), h("r2"))
    await auth.create_session(device("s-3"), h("r3"))
    await auth.end_session("s-1", T0 + 10, "signed_out")
    await auth.end_session("s-3", T0 + 100, "signed_out")
    assert await auth.purge_sessions(T0 + 50) == 1
    assert await auth.get_session("s-1") is None
    assert await auth.find_refresh(h("r1")) is None and await auth.find_refresh(h("r1b")) is None
    assert await auth.get_session("s-2") is not None and await auth.get_session("s-3") is not None
    assert await auth.first_sign_ins(["p-adam"]) == {"p-adam": T0}, "purging sessions keeps the sign-in"


# -- invitations and erasure ------------------------------------------------------------------


async def test_invitations_are_recorded_per_person_oldest_first(auth: AuthStore) -> None:
    await auth.record_invitation("p-lea", T0 + 20)
    await auth.record_invitation("p-adam", T0)
    await auth.record_invitation("p-lea", T0 + 5)
    assert await auth.invitations(["p-lea", "p-adam", "p-durand"]) == {"p-lea": [T0 + 5, T0 + 20], "p-adam": [T0]}
    assert await auth.invitations([]) == {}


async def test_with_live_sessions_names_who_has_a_live_device(auth: AuthStore) -> None:
    await auth.create_session(device("s-1", user="p-adam"), h("r1"))
    await auth.create_session(device("s-2", user="p-adam"), h("r2"))
    await auth.create_session(device("s-3", user="p-lea"), h("r3"))
    await auth.end_session("s-3", T0 + 1, "signed_out")
    ids = ["p-adam", "p-lea", "p-durand", *(f"p-{i}" for i in range(1200))]
    assert await auth.with_live_sessions(ids) == {"p-adam"}
    assert await auth.with_live_sessions([]) == set()


async def test_many_ids_at_once(auth: AuthStore) -> None:
    ids = [f"p-{i}" for i in range(1200)]
    await auth.create_session(device("s-1", user="p-1199"), h("r1"))
    await auth.record_invitation("p-0", T0)
    assert await auth.first_sign_ins(ids) == {"p-1199": T0}
    assert await auth.invitations(ids) == {"p-0": [T0]}


async def test_forget_user_erases_everything_about_them(auth: AuthStore) -> None:
    await auth.create_session(device("s-1"), h("r1"))
    await auth.rotate_refresh("s-1", h("r1"), h("r2"), T0 + 1)
    await auth.create_session(device("s-2", user="p-lea"), h("r3"))
    await auth.record_invitation("p-adam", T0)
    await auth.record_invitation("p-lea", T0)
    await auth.swap_code(CodeState("adam@b.fr", 1, "p-adam", h("1"), T0, 0, 0.0, (T0,)))
    await auth.swap_code(CodeState("lea@b.fr", 1, "p-lea", h("2"), T0, 0, 0.0, (T0,)))
    await auth.forget_user("p-adam")
    assert await auth.get_session("s-1") is None
    assert await auth.find_refresh(h("r1")) is None and await auth.find_refresh(h("r2")) is None
    assert await auth.first_sign_ins(["p-adam", "p-lea"]) == {"p-lea": T0}
    assert await auth.invitations(["p-adam", "p-lea"]) == {"p-lea": [T0]}
    assert await auth.get_code("adam@b.fr") is None
    assert await auth.get_code("lea@b.fr") is not None


async def test_data_survives_a_restart(auth_backend: AuthFactory) -> None:
    first = auth_backend()
    await first.open()
    await first.create_session(device(), h("r1"))
    await first.close()
    again = auth_backend()
    await again.open()
    try:
        assert await again.get_session("s-1") == device()
    finally:
        await again.close()


async def test_a_closed_store_is_unavailable(auth_backend: AuthFactory) -> None:
    store = auth_backend()
    await store.open()
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.get_session("s-1")


# -- SQLite specifics and the factory ------------------------------------------------------------


async def test_sqlite_auth_tables_share_the_message_store_file(tmp_path: Path) -> None:
    path = str(tmp_path / "liaison.db")
    messages, auth = SQLiteStore(path), SQLiteAuthStore(path)
    await messages.open()
    await auth.open()
    try:
        await auth.create_session(device(), h("r1"))
        await messages.ping()
        assert await auth.get_session("s-1") == device()
    finally:
        await auth.close()
        await messages.close()
    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"auth_codes", "auth_sessions", "auth_old_hashes", "auth_sign_ins", "auth_invitations"} <= tables


async def test_sqlite_waits_for_another_writer_then_gives_up(tmp_path: Path) -> None:
    path = str(tmp_path / "liaison.db")
    store = SQLiteAuthStore(path, busy_timeout_ms=200, op_timeout=1.0)
    await store.open()
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable):
            await store.record_invitation("p-adam", T0)
        blocker.execute("ROLLBACK")
        await store.record_invitation("p-adam", T0)
        assert await store.invitations(["p-adam"]) == {"p-adam": [T0]}
    finally:
        blocker.close()
        await store.close()


async def test_factory_picks_the_adapter_from_the_store_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_auth_store("sqlite:///data%20dir.db")
    assert isinstance(relative, SQLiteAuthStore) and relative.path == "data dir.db"
    absolute = open_auth_store(f"sqlite:///{tmp_path}/a.db")
    assert isinstance(absolute, SQLiteAuthStore) and absolute.path == f"{tmp_path}/a.db"
    mongo = open_auth_store("mongodb://127.0.0.1:1/school_db")
    assert isinstance(mongo, MongoAuthStore)
    await mongo.close()
    for bad in ("sqlite://:memory:", "sqlite:///:memory:", "sqlite:///", "redis://x", "liaison.db",
                "sqlite:///a.db?mode=ro"):
        with pytest.raises(ValueError):
            open_auth_store(bad)
    with pytest.raises(ValueError) as caught:
        open_auth_store("postgres://admin:hunter2@db/liaison")
    assert "hunter2" not in str(caught.value)
