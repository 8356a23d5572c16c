"""`SQLitePushStore`: the embedded `PushStore`, tables `push_*` in the message store's file.

Every step is one statement or one `BEGIN IMMEDIATE` transaction on the worker thread of
persistence/sqlite_worker.py; the insert-if-absent steps (`vapid_key`, `mark_sent`, `count`)
rely on primary keys, so two processes on one file agree. `synchronous = NORMAL`, as for the
job table (persistence/jobs_sqlite.py): commits survive a killed process, not a power cut.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from persistence.push_store import OUTCOMES, Outcome, PushSubscription
from persistence.sqlite_worker import SQLiteWorker, id_chunks

SCHEMA = """
CREATE TABLE IF NOT EXISTS push_keys (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS push_subscriptions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    session_id TEXT,
    endpoint TEXT NOT NULL UNIQUE,
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS push_subscriptions_user ON push_subscriptions (user_id);
CREATE TABLE IF NOT EXISTS push_sent (
    channel TEXT NOT NULL,
    seq INTEGER NOT NULL,
    subscription_id TEXT NOT NULL,
    PRIMARY KEY (channel, seq, subscription_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notify_outcomes (
    channel TEXT NOT NULL,
    seq INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    PRIMARY KEY (channel, seq, outcome, user_id)
) WITHOUT ROWID
"""
_COLUMNS = "id, user_id, session_id, endpoint, p256dh, auth, created_at"


def _sub(row: tuple[Any, ...]) -> PushSubscription:
    return PushSubscription(row[0], row[1], row[2], row[3], row[4], row[5], row[6])


class SQLitePushStore:
    def __init__(self, path: str, *, op_timeout: float | None = 3.0) -> None:
        self._db = SQLiteWorker(path, "push-sqlite", SCHEMA, op_timeout=op_timeout, synchronous="NORMAL")

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    async def vapid_key(self, candidate: str) -> str:
        def keep(conn: sqlite3.Connection) -> str:
            conn.execute("INSERT OR IGNORE INTO push_keys (name, value) VALUES ('vapid', ?)", (candidate,))
            return str(conn.execute("SELECT value FROM push_keys WHERE name = 'vapid'").fetchone()[0])

        return await self._db.call(keep, write=True)

    async def add_subscription(self, sub: PushSubscription) -> str:
        def add(conn: sqlite3.Connection) -> str:
            row = conn.execute("SELECT id FROM push_subscriptions WHERE endpoint = ?", (sub.endpoint,)).fetchone()
            if row is not None:
                conn.execute("UPDATE push_subscriptions SET user_id = ?, session_id = ?, p256dh = ?, auth = ? "
                             "WHERE id = ?", (sub.user_id, sub.session_id, sub.p256dh, sub.auth, row[0]))
                return str(row[0])
            conn.execute(f"INSERT INTO push_subscriptions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (sub.id, sub.user_id, sub.session_id, sub.endpoint, sub.p256dh, sub.auth, sub.created_at))
            return sub.id

        return await self._db.call(add, write=True)

    async def subscription(self, subscription_id: str) -> PushSubscription | None:
        def read(conn: sqlite3.Connection) -> PushSubscription | None:
            row = conn.execute(f"SELECT {_COLUMNS} FROM push_subscriptions WHERE id = ?",
                               (subscription_id,)).fetchone()
            return None if row is None else _sub(row)

        return await self._db.call(read, write=False)

    async def subscriptions_of(self, user_ids: list[str]) -> dict[str, list[PushSubscription]]:
        chunks = id_chunks(user_ids)

        def read(conn: sqlite3.Connection) -> dict[str, list[PushSubscription]]:
            found: dict[str, list[PushSubscription]] = {}
            for chunk in chunks:
                marks = ",".join("?" * len(chunk))
                for row in conn.execute(f"SELECT {_COLUMNS} FROM push_subscriptions WHERE user_id IN ({marks}) "
                                        "ORDER BY created_at, id", chunk):
                    found.setdefault(row[1], []).append(_sub(row))
            return found

        return await self._db.call(read, write=False)

    async def remove_subscription(self, subscription_id: str, user_id: str | None = None) -> bool:
        def remove(conn: sqlite3.Connection) -> bool:
            if user_id is None:
                return conn.execute("DELETE FROM push_subscriptions WHERE id = ?",
                                    (subscription_id,)).rowcount == 1
            return conn.execute("DELETE FROM push_subscriptions WHERE id = ? AND user_id = ?",
                                (subscription_id, user_id)).rowcount == 1

        return await self._db.call(remove, write=True)

    async def remove_subscriptions_of(self, user_id: str) -> int:
        def remove(conn: sqlite3.Connection) -> int:
            return int(conn.execute("DELETE FROM push_subscriptions WHERE user_id = ?", (user_id,)).rowcount)

        return await self._db.call(remove, write=True)

    async def mark_sent(self, channel: str, seq: int, subscription_id: str) -> bool:
        def mark(conn: sqlite3.Connection) -> bool:
            return conn.execute("INSERT OR IGNORE INTO push_sent (channel, seq, subscription_id) VALUES (?, ?, ?)",
                                (channel, seq, subscription_id)).rowcount == 1

        return await self._db.call(mark, write=True)

    async def was_sent(self, channel: str, seq: int, subscription_id: str) -> bool:
        def read(conn: sqlite3.Connection) -> bool:
            return conn.execute("SELECT 1 FROM push_sent WHERE channel = ? AND seq = ? AND subscription_id = ?",
                                (channel, seq, subscription_id)).fetchone() is not None

        return await self._db.call(read, write=False)

    async def count(self, channel: str, seq: int, user_id: str, outcome: Outcome) -> bool:
        def add(conn: sqlite3.Connection) -> bool:
            return conn.execute("INSERT OR IGNORE INTO notify_outcomes (channel, seq, user_id, outcome) "
                                "VALUES (?, ?, ?, ?)", (channel, seq, user_id, outcome)).rowcount == 1

        return await self._db.call(add, write=True)

    async def count_many(self, channel: str, seq: int, user_ids: list[str], outcome: Outcome) -> int:
        if not user_ids:
            return 0

        def add(conn: sqlite3.Connection) -> int:
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO notify_outcomes (channel, seq, user_id, outcome) "
                             "VALUES (?, ?, ?, ?)", [(channel, seq, u, outcome) for u in user_ids])
            return conn.total_changes - before

        return await self._db.call(add, write=True)

    async def report(self, channel: str, seq: int) -> dict[str, int]:
        def read(conn: sqlite3.Connection) -> dict[str, int]:
            counts: dict[str, int] = {outcome: 0 for outcome in OUTCOMES}
            for outcome, n in conn.execute("SELECT outcome, COUNT(*) FROM notify_outcomes WHERE channel = ? AND "
                                           "seq = ? GROUP BY outcome", (channel, seq)):
                counts[outcome] = int(n)
            return counts

        return await self._db.call(read, write=False)
