"""`SQLiteNotificationStore`: the embedded `NotificationStore`, tables `notify_*` in the
message store's SQLite file (stdlib `sqlite3`).

As persistence/auth_sqlite.py: one connection owned by one worker thread (no sqlite3 call on
the event loop), WAL, each write one `BEGIN IMMEDIATE` transaction, so the compare-and-set
steps (`claim_digest`, `claim_due`, `cancel_scheduled`) read and write under the file's write
lock and two processes on one file cannot both win. Every operation has a deadline
(`op_timeout`): one still queued at its deadline is refused with `StoreUnavailable`.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from datetime import time as clock_time
from typing import Any, cast

from persistence.notification_store import DigestEntry, ScheduledPost, ScheduledState
from persistence.sqlite_worker import DEFAULT_OP_TIMEOUT, SQLiteWorker
from school.preferences import Preference, Preferences
from school.quiet_hours import QuietHours

SCHEMA = """
CREATE TABLE IF NOT EXISTS notify_quiet_hours (
    school_id TEXT PRIMARY KEY,
    rules TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notify_preferences (
    user_id TEXT PRIMARY KEY,
    prefs TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notify_digest_entries (
    user_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    added_at REAL NOT NULL,
    PRIMARY KEY (user_id, channel, seq)
);
CREATE TABLE IF NOT EXISTS notify_digest_state (
    user_id TEXT PRIMARY KEY,
    next_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS notify_scheduled (
    id TEXT PRIMARY KEY,
    author_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    at REAL NOT NULL,
    created_at REAL NOT NULL,
    state TEXT NOT NULL,
    claimed_until REAL NOT NULL,
    attempts INTEGER NOT NULL,
    seq INTEGER
);
CREATE INDEX IF NOT EXISTS notify_scheduled_due ON notify_scheduled (state, at);
CREATE INDEX IF NOT EXISTS notify_scheduled_author ON notify_scheduled (author_id, state, at)
"""

_SCHEDULED_COLUMNS = "id, author_id, channel, kind, data, at, created_at, state, claimed_until, attempts, seq"


def rules_to_json(rules: QuietHours) -> str:
    return json.dumps(rules.to_wire())


def rules_from_json(raw: str | dict[str, Any]) -> QuietHours:
    wire = json.loads(raw) if isinstance(raw, str) else raw
    return QuietHours(clock_time.fromisoformat(wire["start"]), clock_time.fromisoformat(wire["end"]),
                      bool(wire["weekends"]), str(wire["timezone"]),
                      tuple(date.fromisoformat(d) for d in wire.get("holidays", ())))


def prefs_to_json(prefs: Preferences) -> str:
    return json.dumps({"kinds": dict(prefs.kinds), "show_content": prefs.show_content,
                       "digest_email": prefs.digest_email})


def prefs_from_json(raw: str | dict[str, Any]) -> Preferences:
    wire = json.loads(raw) if isinstance(raw, str) else raw
    kinds = {str(k): cast(Preference, v) for k, v in wire.get("kinds", {}).items()}
    return Preferences(kinds, bool(wire.get("show_content", False)), bool(wire.get("digest_email", True)))


def _scheduled(row: tuple[Any, ...]) -> ScheduledPost:
    return ScheduledPost(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], row[6],
                         cast(ScheduledState, row[7]), row[8], row[9], row[10])


class SQLiteNotificationStore:
    def __init__(self, path: str, *, busy_timeout_ms: int = 5000,
                 op_timeout: float | None = DEFAULT_OP_TIMEOUT) -> None:
        self.path = path
        self._db = SQLiteWorker(path, "notify-sqlite", SCHEMA, busy_timeout_ms=busy_timeout_ms,
                                op_timeout=op_timeout, secure_delete=True)  # an erased person leaves no bytes

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    # -- quiet hours and preferences -----------------------------------------------------------

    async def get_quiet_hours(self, school_id: str) -> QuietHours | None:
        def read(conn: sqlite3.Connection) -> QuietHours | None:
            row = conn.execute("SELECT rules FROM notify_quiet_hours WHERE school_id = ?", (school_id,)).fetchone()
            return None if row is None else rules_from_json(row[0])

        return await self._db.call(read, write=False)

    async def set_quiet_hours(self, school_id: str, rules: QuietHours) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO notify_quiet_hours (school_id, rules) VALUES (?, ?)",
                         (school_id, rules_to_json(rules)))

        await self._db.call(write, write=True)

    async def get_preferences(self, user_id: str) -> Preferences | None:
        def read(conn: sqlite3.Connection) -> Preferences | None:
            row = conn.execute("SELECT prefs FROM notify_preferences WHERE user_id = ?", (user_id,)).fetchone()
            return None if row is None else prefs_from_json(row[0])

        return await self._db.call(read, write=False)

    async def set_preferences(self, user_id: str, prefs: Preferences) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO notify_preferences (user_id, prefs) VALUES (?, ?)",
                         (user_id, prefs_to_json(prefs)))

        await self._db.call(write, write=True)

    # -- the e-mail digest ------------------------------------------------------------------------

    async def add_digest(self, entry: DigestEntry) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR IGNORE INTO notify_digest_entries (user_id, channel, seq, kind, added_at)"
                         " VALUES (?, ?, ?, ?, ?)",
                         (entry.user_id, entry.channel, entry.seq, entry.kind, entry.added_at))

        await self._db.call(write, write=True)

    async def add_digests(self, entries: list[DigestEntry]) -> None:
        if not entries:
            return

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT OR IGNORE INTO notify_digest_entries (user_id, channel, seq, kind, added_at)"
                             " VALUES (?, ?, ?, ?, ?)",
                             [(e.user_id, e.channel, e.seq, e.kind, e.added_at) for e in entries])

        await self._db.call(write, write=True)

    async def digest_entries(self, user_id: str) -> list[DigestEntry]:
        def read(conn: sqlite3.Connection) -> list[DigestEntry]:
            rows = conn.execute("SELECT user_id, channel, seq, kind, added_at FROM notify_digest_entries"
                                " WHERE user_id = ? ORDER BY added_at, channel, seq", (user_id,)).fetchall()
            return [DigestEntry(*row) for row in rows]

        return await self._db.call(read, write=False)

    async def digest_users(self, now: float, limit: int, after: str = "") -> list[str]:
        def read(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT DISTINCT e.user_id FROM notify_digest_entries e"
                " LEFT JOIN notify_digest_state s ON s.user_id = e.user_id"
                " WHERE e.user_id > ? AND (s.next_at IS NULL OR s.next_at <= ?) ORDER BY e.user_id LIMIT ?",
                (after, now, limit),
            ).fetchall()
            return [row[0] for row in rows]

        return await self._db.call(read, write=False)

    async def claim_digest(self, user_id: str, now: float, lease: float) -> bool:
        def claim(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT next_at FROM notify_digest_state WHERE user_id = ?", (user_id,)).fetchone()
            if row is not None and row[0] > now:
                return False
            conn.execute("INSERT OR REPLACE INTO notify_digest_state (user_id, next_at) VALUES (?, ?)",
                         (user_id, now + lease))
            return True

        return await self._db.call(claim, write=True)

    async def finish_digest(self, user_id: str, done: list[tuple[str, int]], next_at: float) -> None:
        def finish(conn: sqlite3.Connection) -> None:
            conn.executemany("DELETE FROM notify_digest_entries WHERE user_id = ? AND channel = ? AND seq = ?",
                             [(user_id, channel, seq) for channel, seq in done])
            conn.execute("INSERT OR REPLACE INTO notify_digest_state (user_id, next_at) VALUES (?, ?)",
                         (user_id, next_at))

        await self._db.call(finish, write=True)

    # -- scheduled posts ----------------------------------------------------------------------------

    async def add_scheduled(self, post: ScheduledPost) -> ScheduledPost:
        def write(conn: sqlite3.Connection) -> ScheduledPost:
            row = conn.execute(f"SELECT {_SCHEDULED_COLUMNS} FROM notify_scheduled WHERE id = ?",
                               (post.id,)).fetchone()
            if row is not None:
                return _scheduled(row)
            conn.execute(
                f"INSERT INTO notify_scheduled ({_SCHEDULED_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (post.id, post.author_id, post.channel, post.kind, json.dumps(post.data), post.at, post.created_at,
                 post.state, post.claimed_until, post.attempts, post.seq),
            )
            return post

        return await self._db.call(write, write=True)

    async def get_scheduled(self, post_id: str) -> ScheduledPost | None:
        def read(conn: sqlite3.Connection) -> ScheduledPost | None:
            row = conn.execute(f"SELECT {_SCHEDULED_COLUMNS} FROM notify_scheduled WHERE id = ?",
                               (post_id,)).fetchone()
            return None if row is None else _scheduled(row)

        return await self._db.call(read, write=False)

    async def scheduled_of(self, author_id: str) -> list[ScheduledPost]:
        def read(conn: sqlite3.Connection) -> list[ScheduledPost]:
            rows = conn.execute(f"SELECT {_SCHEDULED_COLUMNS} FROM notify_scheduled WHERE author_id = ?"
                                " AND state = 'pending' ORDER BY at, id", (author_id,)).fetchall()
            return [_scheduled(row) for row in rows]

        return await self._db.call(read, write=False)

    async def cancel_scheduled(self, post_id: str, author_id: str, now: float) -> bool:
        def cancel(conn: sqlite3.Connection) -> bool:
            return conn.execute(
                "UPDATE notify_scheduled SET state = 'cancelled' WHERE id = ? AND author_id = ?"
                " AND state = 'pending' AND claimed_until <= ?", (post_id, author_id, now),
            ).rowcount == 1

        return await self._db.call(cancel, write=True)

    async def claim_due(self, now: float, lease: float, limit: int) -> list[ScheduledPost]:
        def any_due(conn: sqlite3.Connection) -> bool:
            return conn.execute("SELECT 1 FROM notify_scheduled WHERE state = 'pending' AND at <= ?"
                                " AND claimed_until <= ? LIMIT 1", (now, now)).fetchone() is not None

        def claim(conn: sqlite3.Connection) -> list[ScheduledPost]:
            rows = conn.execute(
                f"SELECT {_SCHEDULED_COLUMNS} FROM notify_scheduled WHERE state = 'pending' AND at <= ?"
                " AND claimed_until <= ? ORDER BY at, id LIMIT ?", (now, now, limit),
            ).fetchall()
            claimed = []
            for row in rows:
                post = _scheduled(row)
                conn.execute("UPDATE notify_scheduled SET claimed_until = ?, attempts = attempts + 1 WHERE id = ?",
                             (now + lease, post.id))
                claimed.append(ScheduledPost(post.id, post.author_id, post.channel, post.kind, post.data, post.at,
                                             post.created_at, post.state, now + lease, post.attempts + 1))
            return claimed

        if not await self._db.call(any_due, write=False):  # most rounds: no write lock taken
            return []
        return await self._db.call(claim, write=True)

    async def mark_published(self, post_id: str, seq: int | None) -> None:
        def mark(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE notify_scheduled SET state = ?, seq = ? WHERE id = ? AND state = 'pending'",
                         ("published" if seq is not None else "dropped", seq, post_id))

        await self._db.call(mark, write=True)

    # -- privacy ------------------------------------------------------------------------------------

    async def erase_person(self, user_id: str, *, dry_run: bool) -> int:
        statements = [
            ("notify_preferences", "user_id = ?"),
            ("notify_digest_entries", "user_id = ?"),
            ("notify_digest_state", "user_id = ?"),
            ("notify_scheduled", "author_id = ? AND state = 'pending'"),
        ]

        def erase(conn: sqlite3.Connection) -> int:
            total = 0
            for table, where in statements:
                if dry_run:
                    total += conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}", (user_id,)).fetchone()[0]
                else:
                    total += conn.execute(f"DELETE FROM {table} WHERE {where}", (user_id,)).rowcount
            return total

        return await self._db.call(erase, write=not dry_run)
