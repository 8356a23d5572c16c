"""The board service (realtime/services/board.py) over real SQLite stores and a FakeClock: read
times make a family active for 30 days, the week's first reads, reminders once a day."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from notify.email import OutboxMailer
from persistence.auth_sqlite import SQLiteAuthStore
from persistence.board_sqlite import SQLiteBoardStore
from persistence.sqlite import SQLiteStore
from realtime.services.board import Board, ReadTimes
from school.channels import ChannelName, ChannelType
from school.demo import demo_school
from school.errors import Conflict, Forbidden
from school.messages import Author, Draft
from tests.support.clock import FakeClock

DAY = 86_400.0
CP = "class:cp-a"
MARTIN = Author("t-martin", "Mme Martin", "teacher")


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[tuple[Board, SQLiteStore, FakeClock, OutboxMailer]]:
    path = str(tmp_path / "liaison.db")
    store, auth, board_store = SQLiteStore(path), SQLiteAuthStore(path), SQLiteBoardStore(path)
    for part in (store, auth, board_store):
        await part.open()
    await store.save_directory(demo_school())
    clock = FakeClock()
    outbox = OutboxMailer(clock=clock)
    board = Board(await store.load_directory(), store, auth, board_store, outbox, "https://liaison.example", clock)
    try:
        yield board, store, clock, outbox
    finally:
        for part in (board_store, auth, store):
            await part.close()


async def post(store: SQLiteStore, clock: FakeClock, text: str) -> int:
    draft = Draft(CP, f"id-{text}", int(clock() * 1000), MARTIN, "post", {"text": text}, None)
    return (await store.append(draft)).message.seq


async def read(board: Board, store: SQLiteStore, user: str, channel: str, seq: int) -> None:
    """What the receipts service does: move the mark, then tell the board."""
    previous = await store.mark_read(user, channel, seq)
    person = board.directory.person(user)
    assert person is not None
    await board.note_read(person, channel, previous, seq)


async def test_reads_are_written_in_batches_and_before_each_board_read(parts) -> None:
    board, store, clock, _ = parts
    seq = await post(store, clock, "Chorale")
    await read(board, store, "p-lea-mere", CP, seq)
    await read(board, store, "p-durand", CP, seq)
    assert await board.board_store.last_reads(["p-lea-mere", "p-durand"]) == {}, "not written yet"
    assert (await board.class_board(None, "cp-a"))["figures"]["families_inactive"] == 0
    assert await board.board_store.last_reads(["p-lea-mere", "p-durand"]) == {"p-lea-mere": clock(),
                                                                               "p-durand": clock()}


async def test_a_read_keeps_a_family_active_for_30_days(parts) -> None:
    board, store, clock, _ = parts
    seq = await post(store, clock, "Sortie")
    clock.advance(600)
    await read(board, store, "p-lea-mere", CP, seq)
    figures = (await board.class_board(None, "cp-a"))["figures"]
    assert figures["families_inactive"] == 1  # Hugo's
    assert figures["first_read_median_seconds"] == 600.0
    clock.advance(29 * DAY)
    assert (await board.class_board(None, "cp-a"))["figures"]["families_inactive"] == 1
    clock.advance(2 * DAY)
    later = (await board.class_board(None, "cp-a"))["figures"]
    assert later["families_inactive"] == 2 and later["posts_this_week"] == 0  # the post is a month old


async def test_staff_reads_are_not_family_reads(parts) -> None:
    board, store, clock, _ = parts
    seq = await post(store, clock, "Piscine")
    await read(board, store, "t-martin", CP, seq)
    assert await board.board_store.last_reads(["t-martin"]) == {}
    figures = (await board.class_board(None, "cp-a"))["figures"]
    assert figures["first_read_median_seconds"] is None and figures["week_posts_unread"] == 1


async def test_one_reminder_a_day(parts) -> None:
    board, store, clock, outbox = parts
    seq = await post(store, clock, "Photos")
    teacher = board.directory.person("t-martin")
    channel = ChannelName(ChannelType.CLASS, "cp-a")
    first = await board.remind(teacher, channel, seq)
    assert (first["sent"], first["families_unread"]) == (3, 2)
    assert sorted(m.mail.to for m in outbox.sent()) == ["claire.petit@example.fr", "julien.petit@example.fr",
                                                         "sophie.durand@example.fr"]
    clock.advance(DAY - 60)
    with pytest.raises(Conflict) as refused:
        await board.remind(teacher, channel, seq)
    assert refused.value.extra["reason"] == "reminded_today"
    clock.advance(120)
    assert (await board.remind(teacher, channel, seq))["sent"] == 3
    with pytest.raises(Forbidden):
        await board.remind(board.directory.person("t-nguyen"), channel, seq)


async def test_read_times_are_exported_and_erased(parts) -> None:
    board, store, clock, _ = parts
    seq = await post(store, clock, "Kermesse")
    await read(board, store, "p-durand", CP, seq)
    await board.flush()
    section = ReadTimes(board.board_store)
    assert await section.export("p-durand") == [{"channel": CP, "from": 0, "to": seq, "at": clock()}]
    assert await section.erase("p-durand", dry_run=True) == 1
    assert await section.erase("p-durand", dry_run=False) == 1
    assert await section.export("p-durand") == []
