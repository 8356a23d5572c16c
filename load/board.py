"""`python -m load board`: how fast the director's board answers for a big school (issue 17).

Builds, in a temporary folder, one school of the synthetic district (docs/district.md: 40
classes of 25 students, 1,000 families, about 1,500 guardians) in a SQLite store, with
100,000 messages over its 40 class channels and its school channel (appended through the
store's grouped writes, hundreds at once), read marks for most guardians, live device sessions
for some, and read times for many. Then it asks the board's queries as the gateway does
(`realtime.services.board.Board`, the same adapters) and prints the milliseconds of each:
the director's school board, a teacher's class view, the admin reach, and a CSV list.
Bounded: a few tens of seconds on 2 cores. Only files in the temporary folder are written.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from persistence.auth_sqlite import SQLiteAuthStore
from persistence.auth_store import DeviceSession
from persistence.board_sqlite import SQLiteBoardStore
from persistence.board_store import ReadMove
from persistence.sqlite import SQLiteStore
from realtime.services.board import Board
from school.district import build_district, class_ids, director_id, school_id, teacher_id
from school.messages import Author, Draft

DAY = 86_400.0
BATCH = 500  # appends in flight at once (the store groups them into few transactions)


async def _in_batches(calls: list[Callable[[], Awaitable[Any]]]) -> None:
    for start in range(0, len(calls), BATCH):
        await asyncio.gather(*(call() for call in calls[start:start + BATCH]))


async def build(folder: Path, classes: int, students: int, messages: int, now: float) -> dict[str, Any]:
    """The school `sch-1` with its messages, marks, sessions and read times; what was made."""
    rng = random.Random(17)
    path = str(folder / "liaison.db")
    store = SQLiteStore(path)
    await store.open()
    auth, board = SQLiteAuthStore(path), SQLiteBoardStore(path)
    await auth.open()
    await board.open()
    try:
        await store.save_directory(build_district(1, classes, students))
        directory = await store.load_directory()
        school = school_id(1)
        channels = [f"class:{c}" for c in class_ids(1, classes)] + [f"school:{school}"]
        authors = {f"class:{c}": Author(teacher_id(1, i + 1), "Enseignant", "teacher")
                   for i, c in enumerate(class_ids(1, classes))}
        authors[f"school:{school}"] = Author(director_id(1), "Direction", "director")
        # 100,000 messages over 60 days, oldest first, the channels interleaved
        start, step = now - 60 * DAY, 60 * DAY / messages
        drafts = [Draft(channels[i % len(channels)], f"m{i}", int((start + i * step) * 1000),
                        authors[channels[i % len(channels)]],
                        "announcement" if channels[i % len(channels)].startswith("school:") else "post",
                        {"text": f"Message {i} : sortie, devoirs, réunion.", "urgent": False}
                        if channels[i % len(channels)].startswith("school:")
                        else {"text": f"Message {i} : sortie, devoirs, réunion."}, None)
                  for i in range(messages)]
        began = time.perf_counter()
        for channel in channels:  # per channel in order: its seqs follow time
            mine = [d for d in drafts if d.channel == channel]
            for first in range(0, len(mine), BATCH):
                await asyncio.gather(*(store.append(d) for d in mine[first:first + BATCH]))
        appended = time.perf_counter() - began
        latest = await store.latest_seqs(channels)
        guardians = sorted(directory.guardians_of_school(school))
        marks: list[Callable[[], Awaitable[Any]]] = []
        moves: list[ReadMove] = []
        for g in guardians:
            if rng.random() < 0.2:
                continue  # a fifth never read anything
            for child in directory.children_of(g):
                for channel in (f"class:{child.class_id}", f"school:{school}"):
                    seq = max(1, latest[channel] - rng.randrange(0, 20))
                    marks.append(functools.partial(store.mark_read, g, channel, seq))
                    at = now - rng.uniform(0, 45 * DAY)
                    moves.append(ReadMove(g, channel, max(0, seq - 30), seq, at))
        await _in_batches(marks)
        await board.record_reads(moves)
        sessions = [g for g in guardians if rng.random() < 0.6]
        for i, g in enumerate(sessions):
            digest = hashlib.sha256(f"r{i}".encode()).digest()
            await auth.create_session(DeviceSession(f"s{i}", g, "téléphone", now - DAY, now - DAY), digest)
        return {"families": sum(1 for s in directory.students.values() if s.guardians),
                "guardians": len(guardians), "classes": classes, "messages": messages,
                "append_seconds": round(appended, 1), "read_marks": len(marks), "read_times": len(moves),
                "live_sessions": len(sessions)}
    finally:
        await board.close()
        await auth.close()
        await store.close()


async def measure(folder: Path, classes: int, repeat: int, now: float) -> dict[str, dict[str, float]]:
    path = str(folder / "liaison.db")
    store, auth, board_store = SQLiteStore(path), SQLiteAuthStore(path), SQLiteBoardStore(path)
    for part in (store, auth, board_store):
        await part.open()
    try:
        directory = await store.load_directory()
        board = Board(directory, store, auth, board_store, None, "http://127.0.0.1:8000", clock=lambda: now)
        school, first_class = school_id(1), class_ids(1, classes)[0]
        queries: dict[str, Callable[[], Awaitable[Any]]] = {
            "school board (director)": lambda: board.school_board(None, school),
            "class view (teacher)": lambda: board.class_board(None, first_class),
            "admin reach": lambda: board.reach(school),
            "CSV list (inactive, school)": lambda: board.csv(None, school_id=school, list_name="inactive"),
        }
        out: dict[str, dict[str, float]] = {}
        for name, query in queries.items():
            await query()  # warm: the page cache, as on a running gateway
            times = []
            for _ in range(repeat):
                began = time.perf_counter()
                await query()
                times.append((time.perf_counter() - began) * 1000)
            out[name] = {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}
        return out
    finally:
        for part in (board_store, auth, store):
            await part.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m load board", description=__doc__.split("\n\n")[0]
                                     if __doc__ else None)
    parser.add_argument("--classes", type=int, default=40)
    parser.add_argument("--students", type=int, default=25, help="per class")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    if not (1 <= args.classes <= 100 and 1 <= args.students <= 40 and 1 <= args.messages <= 200_000
            and 1 <= args.repeat <= 50):
        raise SystemExit("classes 1-100, students 1-40, messages 1-200,000, repeat 1-50")
    now = time.time()
    with tempfile.TemporaryDirectory(prefix="liaison-board-") as tmp:
        made = asyncio.run(build(Path(tmp), args.classes, args.students, args.messages, now))
        print("built:", ", ".join(f"{k} {v}" for k, v in made.items()), flush=True)
        results = asyncio.run(measure(Path(tmp), args.classes, args.repeat, now))
    print(f"\n| query | median | max (of {args.repeat}) |\n| --- | --- | --- |")
    for name, figures in results.items():
        print(f"| {name} | {figures['median_ms']} ms | {figures['max_ms']} ms |")
    return 0
