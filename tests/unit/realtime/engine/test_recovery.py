"""Recovery's reads against a real SQLite store: byte budgets and the clock margin."""

from __future__ import annotations

import uuid
from pathlib import Path

from persistence.sqlite import SQLiteStore
from realtime.engine.recovery import CLOCK_MARGIN_MS, Recovery, newest_within, wire_size
from school.messages import Author, Draft, Message
from school.wire import WireMessage

T = 1_800_000_000_000  # ms


def draft(text: str, ts: int = T) -> Draft:
    return Draft("class:cp-a", str(uuid.uuid4()), ts, Author("t-martin", "Mme Martin", "teacher"), "post",
                 {"text": text})


def wire(seq: int, text: str) -> WireMessage:
    return Message("class:cp-a", seq, f"m-{seq}", T, Author("t-martin", "Mme Martin", "teacher"), "post",
                   {"text": text}).to_wire()


async def test_an_edit_stamped_by_a_clock_behind_is_still_an_update(tmp_path: Path) -> None:
    """A gateway whose clock is a minute behind (or jumped back) edits after the client's
    last sync: the client must still learn of it."""
    store = SQLiteStore(str(tmp_path / "s.db"))
    await store.open()
    try:
        await store.append(draft("first"))
        await store.edit("class:cp-a", 1, {"text": "edited"}, T - 60_000)  # a minute "in the past"
        recovery = Recovery(store, hub=None, recovery_cap=500, reply_bytes=1 << 20)  # type: ignore[arg-type]
        states = await recovery.read_states(["class:cp-a"], {"class:cp-a": 1}, updated_since=T)
        assert [m["data"]["text"] for m in states[0][0]["updates"]] == ["edited"]
        old = await recovery.read_states(["class:cp-a"], {"class:cp-a": 1}, updated_since=T + CLOCK_MARGIN_MS)
        assert old[0][0]["updates"] == []  # beyond the margin: not sent again
    finally:
        await store.close()


def test_newest_within_keeps_the_newest_that_fit() -> None:
    wires = [wire(n, "x" * 100) for n in range(1, 11)]
    three = sum(wire_size(w) for w in wires[-3:])
    kept, used = newest_within(wires, three + 1)
    assert [w["seq"] for w in kept] == [8, 9, 10] and used == three
    kept, _ = newest_within(wires, 1)  # always the newest one, so a reply makes progress
    assert [w["seq"] for w in kept] == [10]
    assert newest_within([], 100) == ([], 0)
