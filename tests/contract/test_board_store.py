"""The `BoardStore` contract (persistence/board_store.py), run against every adapter.

- "sqlite": a real SQLite file in the test's `tmp_path`, beside a real message store;
- "mongodb": the MongoDB at `LIAISON_TEST_MONGODB_URL`, a fresh database per test, dropped
  afterwards (skipped, saying so, when the variable is unset).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from persistence.board_mongo import MongoBoardStore
from persistence.board_sqlite import SQLiteBoardStore
from persistence.board_store import BoardStore, ReadMove
from persistence.factory import open_board_store
from persistence.sqlite import SQLiteStore
from persistence.store import StoreUnavailable
from tests.contract.conftest import mongodb_database

MONGODB_SKIP = (
    "MongoDB BoardStore contract suite needs LIAISON_TEST_MONGODB_URL pointing at a MongoDB"
    " (none can be installed here)"
)
T0 = 1_800_000_000.0
CP = "class:cp-a"
DAY = 86_400.0

BoardFactory = Callable[[], BoardStore]


@pytest.fixture(params=["sqlite", "mongodb"])
async def board_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BoardFactory]:
    if request.param == "sqlite":
        path = str(tmp_path / "liaison.db")
        yield lambda: SQLiteBoardStore(path)
        return
    async with mongodb_database("liaison_board_test", MONGODB_SKIP) as (url, database):
        yield lambda: MongoBoardStore(url, database)


@pytest.fixture
async def board(board_backend: BoardFactory) -> AsyncIterator[BoardStore]:
    store = board_backend()
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def test_a_batch_of_moves_is_logged_whole(board: BoardStore) -> None:
    moves = [ReadMove(f"p-{i}", CP, i, i + 2, T0 + i) for i in range(1200)]
    await board.record_reads(moves)
    await board.record_reads([])
    assert await board.last_reads([f"p-{i}" for i in range(1200)]) == {f"p-{i}": T0 + i for i in range(1200)}
    assert await board.reads_of("p-7") == [moves[7]]


async def test_last_reads_are_each_users_latest_move(board: BoardStore) -> None:
    assert await board.last_reads(["p-adam"]) == {}
    await board.record_reads([ReadMove("p-adam", CP, 0, 3, T0)])
    await board.record_reads([ReadMove("p-adam", "school:ecole-jaures", 0, 1, T0 + 50)])
    await board.record_reads([ReadMove("p-durand", CP, 0, 1, T0 + 10)])
    users = ["p-adam", "p-durand", "p-never", *(f"p-{i}" for i in range(1100))]  # several IN chunks
    assert await board.last_reads(users) == {"p-adam": T0 + 50, "p-durand": T0 + 10}


async def test_first_reads_are_the_earliest_move_past_each_seq_by_the_users_asked(board: BoardStore) -> None:
    await board.record_reads([ReadMove("p-adam", CP, 0, 2, T0 + 100)])
    await board.record_reads([ReadMove("p-durand", CP, 1, 4, T0 + 50)])
    await board.record_reads([ReadMove("t-martin", CP, 0, 9, T0)])  # staff: not asked
    await board.record_reads([ReadMove("p-adam", "class:cm2-b", 0, 9, T0)])  # another channel
    firsts = await board.first_reads({CP: [1, 2, 3, 5], "class:cm2-b": [], "class:x": [1]},
                                     ["p-adam", "p-durand"])
    assert firsts == {CP: {1: T0 + 100, 2: T0 + 50, 3: T0 + 50}, "class:cm2-b": {}, "class:x": {}}


async def test_one_reminder_per_window_even_when_two_gateways_race(board_backend: BoardFactory) -> None:
    first, second = board_backend(), board_backend()
    await first.open()
    await second.open()
    try:
        answers = await asyncio.gather(first.claim_reminder(CP, 4, T0, DAY), second.claim_reminder(CP, 4, T0, DAY))
        assert sorted(answers, key=lambda a: a is not None) == [None, T0]
        assert await first.claim_reminder(CP, 4, T0 + DAY - 1, DAY) == T0  # within the day
        assert await first.claim_reminder(CP, 5, T0 + 1, DAY) is None  # another message
        assert await second.claim_reminder(CP, 4, T0 + DAY, DAY) is None  # a day later
        assert await first.claim_reminder(CP, 4, T0 + DAY + 5, DAY) == T0 + DAY
        await first.release_reminder(CP, 4, T0)  # not the current one: kept
        assert await first.claim_reminder(CP, 4, T0 + DAY + 6, DAY) == T0 + DAY
        await second.release_reminder(CP, 4, T0 + DAY)  # none of its e-mails went out
        assert await first.claim_reminder(CP, 4, T0 + DAY + 7, DAY) is None
    finally:
        await first.close()
        await second.close()


async def test_a_user_is_exported_and_forgotten_alone(board: BoardStore) -> None:
    await board.record_reads([ReadMove("p-adam", CP, 0, 2, T0)])
    await board.record_reads([ReadMove("p-adam", CP, 2, 5, T0 + 1)])
    await board.record_reads([ReadMove("p-durand", CP, 0, 1, T0)])
    assert await board.reads_of("p-adam") == [ReadMove("p-adam", CP, 0, 2, T0),
                                              ReadMove("p-adam", CP, 2, 5, T0 + 1)]
    assert await board.forget_user("p-adam") == 2
    assert await board.reads_of("p-adam") == [] and await board.last_reads(["p-adam"]) == {}
    assert await board.last_reads(["p-durand"]) == {"p-durand": T0}


async def test_purge_drops_what_is_older(board: BoardStore) -> None:
    await board.record_reads([ReadMove("p-adam", CP, 0, 2, T0)])
    await board.record_reads([ReadMove("p-adam", CP, 2, 3, T0 + 40 * DAY)])
    assert await board.claim_reminder(CP, 2, T0, DAY) is None
    assert await board.purge(T0 + DAY) == 1
    assert await board.reads_of("p-adam") == [ReadMove("p-adam", CP, 2, 3, T0 + 40 * DAY)]
    assert await board.claim_reminder(CP, 2, T0 + 2, DAY) is None  # the old reminder was dropped


async def test_sqlite_tables_live_beside_the_messages_and_a_closed_store_is_unavailable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/liaison.db"
    messages = SQLiteStore(str(tmp_path / "liaison.db"))
    await messages.open()
    board = open_board_store(url)
    assert isinstance(board, SQLiteBoardStore)
    await board.open()
    try:
        await board.record_reads([ReadMove("p-adam", CP, 0, 1, T0)])
        assert await messages.mark_read("p-adam", CP, 1) == 0
        assert await board.last_reads(["p-adam"]) == {"p-adam": T0}
    finally:
        await board.close()
        await messages.close()
    with pytest.raises(StoreUnavailable):
        await board.last_reads(["p-adam"])


async def test_factory_picks_mongodb() -> None:
    board = open_board_store("mongodb://localhost:27017/school_db")
    assert isinstance(board, MongoBoardStore)
    await board.close()
