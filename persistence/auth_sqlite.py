"""`SQLiteAuthStore`: the embedded `AuthStore`, tables `auth_*` in a SQLite file (stdlib `sqlite3`).

The file may be the message store's own (persistence/sqlite.py): the tables do not meet, and
SQLite serialises the writers of one file (WAL mode; `busy_timeout` waits for the other's lock).

Threads: one connection, owned by one worker thread (persistence/sqlite_worker.py), so no
sqlite3 call runs on the event loop.
Each write is one `BEGIN IMMEDIATE` transaction: the compare-and-set steps (`swap_code`,
`rotate_refresh`) read and write under the file's write lock, so two processes on one file
cannot both succeed. Sign-in traffic is light (a few requests per person per day): one
thread is plenty, and it keeps this adapter small.

Deadlines: every operation has one (`op_timeout`, from the call). One still queued at its
deadline is refused with `StoreUnavailable` and never touches the file; the wait for another
process's lock is bounded by the same deadline.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from persistence.auth_store import REMEMBERED_HASHES, CodeState, DeviceSession, RefreshMatch
from persistence.sqlite_worker import DEFAULT_OP_TIMEOUT, SQLiteWorker, id_chunks

SCHEMA = """
CREATE TABLE IF NOT EXISTS auth_codes (
    email TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    user_id TEXT,
    code_hash BLOB,
    expires_at REAL NOT NULL,
    attempts INTEGER NOT NULL,
    locked_until REAL NOT NULL,
    requested TEXT NOT NULL,
    horizon REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS auth_codes_horizon ON auth_codes (horizon);
CREATE INDEX IF NOT EXISTS auth_codes_user ON auth_codes (user_id);
CREATE TABLE IF NOT EXISTS auth_sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    device TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_seen REAL NOT NULL,
    ended_at REAL,
    end_reason TEXT,
    refresh_hash BLOB NOT NULL UNIQUE,
    previous_hash BLOB,
    rotated_at REAL
);
CREATE INDEX IF NOT EXISTS auth_sessions_user ON auth_sessions (user_id, created_at);
CREATE INDEX IF NOT EXISTS auth_sessions_ended ON auth_sessions (ended_at) WHERE ended_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS auth_old_hashes (
    hash BLOB PRIMARY KEY,
    session_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS auth_old_hashes_session ON auth_old_hashes (session_id);
CREATE TABLE IF NOT EXISTS auth_sign_ins (
    user_id TEXT PRIMARY KEY,
    first_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS auth_invitations (
    user_id TEXT NOT NULL,
    sent_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS auth_invitations_user ON auth_invitations (user_id, sent_at);
"""

_SESSION_COLUMNS = "id, user_id, device, created_at, last_seen, ended_at, end_reason"
_CODE_COLUMNS = "email, version, user_id, code_hash, expires_at, attempts, locked_until, requested"


def _session(row: tuple[Any, ...]) -> DeviceSession:
    return DeviceSession(row[0], row[1], row[2], row[3], row[4], row[5], row[6])


def _code(row: tuple[Any, ...]) -> CodeState:
    return CodeState(row[0], row[1], row[2], row[3], row[4], row[5], row[6], tuple(json.loads(row[7])))


class SQLiteAuthStore:
    def __init__(self, path: str, *, busy_timeout_ms: int = 5000,
                 op_timeout: float | None = DEFAULT_OP_TIMEOUT) -> None:
        self.path = path
        self._db = SQLiteWorker(path, "auth-sqlite", SCHEMA, busy_timeout_ms=busy_timeout_ms,
                                op_timeout=op_timeout, secure_delete=True)  # forget_user leaves no bytes

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    # -- one-time codes ---------------------------------------------------------------------

    async def get_code(self, email: str) -> CodeState | None:
        def read(conn: sqlite3.Connection) -> CodeState | None:
            row = conn.execute(f"SELECT {_CODE_COLUMNS} FROM auth_codes WHERE email = ?", (email,)).fetchone()
            return None if row is None else _code(row)

        return await self._db.call(read, write=False)

    async def swap_code(self, state: CodeState) -> bool:
        def swap(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT version FROM auth_codes WHERE email = ?", (state.email,)).fetchone()
            if (0 if row is None else row[0]) != state.version - 1:
                return False
            conn.execute(
                f"INSERT OR REPLACE INTO auth_codes ({_CODE_COLUMNS}, horizon) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (state.email, state.version, state.user_id, state.code_hash, state.expires_at, state.attempts,
                 state.locked_until, json.dumps(list(state.requested)), state.horizon),
            )
            return True

        return await self._db.call(swap, write=True)

    async def purge_codes(self, before: float) -> int:
        def purge(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM auth_codes WHERE horizon < ?", (before,)).rowcount

        return await self._db.call(purge, write=True)

    # -- device sessions ----------------------------------------------------------------------

    async def create_session(self, session: DeviceSession, refresh_hash: bytes) -> None:
        def create(conn: sqlite3.Connection) -> None:
            taken = conn.execute(
                "SELECT 1 FROM auth_sessions WHERE id = ? OR refresh_hash = ?"
                " UNION ALL SELECT 1 FROM auth_old_hashes WHERE hash = ?",
                (session.id, refresh_hash, refresh_hash),
            ).fetchone()
            if taken is not None:
                raise ValueError("session id or refresh hash already stored")
            conn.execute(
                f"INSERT INTO auth_sessions ({_SESSION_COLUMNS}, refresh_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (session.id, session.user_id, session.device, session.created_at, session.last_seen,
                 session.ended_at, session.end_reason, refresh_hash),
            )
            conn.execute("INSERT OR IGNORE INTO auth_sign_ins (user_id, first_at) VALUES (?, ?)",
                         (session.user_id, session.created_at))

        await self._db.call(create, write=True)

    async def get_session(self, session_id: str) -> DeviceSession | None:
        def read(conn: sqlite3.Connection) -> DeviceSession | None:
            row = conn.execute(f"SELECT {_SESSION_COLUMNS} FROM auth_sessions WHERE id = ?",
                               (session_id,)).fetchone()
            return None if row is None else _session(row)

        return await self._db.call(read, write=False)

    async def find_refresh(self, refresh_hash: bytes) -> RefreshMatch | None:
        def find(conn: sqlite3.Connection) -> RefreshMatch | None:
            columns = f"{_SESSION_COLUMNS}, refresh_hash, previous_hash, rotated_at"
            row = conn.execute(f"SELECT {columns} FROM auth_sessions WHERE refresh_hash = ?",
                               (refresh_hash,)).fetchone()
            if row is None:
                row = conn.execute(
                    f"SELECT {columns} FROM auth_sessions WHERE id ="
                    " (SELECT session_id FROM auth_old_hashes WHERE hash = ?)", (refresh_hash,)).fetchone()
            if row is None:
                return None
            return RefreshMatch(_session(row), row[7] == refresh_hash, row[8] == refresh_hash, row[9])

        return await self._db.call(find, write=False)

    async def rotate_refresh(self, session_id: str, expected: bytes, new: bytes, at: float) -> bool:
        def rotate(conn: sqlite3.Connection) -> bool:
            changed = conn.execute(
                "UPDATE auth_sessions SET refresh_hash = ?, previous_hash = refresh_hash, rotated_at = ?,"
                " last_seen = MAX(last_seen, ?) WHERE id = ? AND refresh_hash = ? AND ended_at IS NULL",
                (new, at, at, session_id, expected),
            ).rowcount
            if changed != 1:
                return False
            conn.execute("INSERT INTO auth_old_hashes (hash, session_id) VALUES (?, ?)", (expected, session_id))
            conn.execute(
                "DELETE FROM auth_old_hashes WHERE session_id = ? AND rowid NOT IN"
                " (SELECT rowid FROM auth_old_hashes WHERE session_id = ? ORDER BY rowid DESC LIMIT ?)",
                (session_id, session_id, REMEMBERED_HASHES),
            )
            return True

        return await self._db.call(rotate, write=True)

    async def touch_session(self, session_id: str, at: float) -> bool:
        def touch(conn: sqlite3.Connection) -> bool:
            return conn.execute(
                "UPDATE auth_sessions SET last_seen = MAX(last_seen, ?) WHERE id = ? AND ended_at IS NULL",
                (at, session_id),
            ).rowcount == 1

        return await self._db.call(touch, write=True)

    async def touch_sessions(self, session_ids: Iterable[str], at: float) -> set[str]:
        chunks = id_chunks(session_ids)
        if not chunks:
            return set()

        def touch(conn: sqlite3.Connection) -> set[str]:
            live: set[str] = set()
            for chunk in chunks:
                marks = ",".join("?" * len(chunk))
                live.update(row[0] for row in conn.execute(
                    f"UPDATE auth_sessions SET last_seen = MAX(last_seen, ?) WHERE id IN ({marks})"
                    " AND ended_at IS NULL RETURNING id", (at, *chunk)))
            return live

        return await self._db.call(touch, write=True)

    async def end_session(self, session_id: str, at: float, reason: str) -> bool:
        def end(conn: sqlite3.Connection) -> bool:
            return conn.execute(
                "UPDATE auth_sessions SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL",
                (at, reason, session_id),
            ).rowcount == 1

        return await self._db.call(end, write=True)

    async def end_user_sessions(self, user_id: str, at: float, reason: str) -> list[str]:
        def end(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "UPDATE auth_sessions SET ended_at = ?, end_reason = ? WHERE user_id = ? AND ended_at IS NULL"
                " RETURNING id", (at, reason, user_id),
            ).fetchall()
            return sorted(row[0] for row in rows)

        return await self._db.call(end, write=True)

    async def list_sessions(self, user_id: str, *, include_ended: bool = False) -> list[DeviceSession]:
        def read(conn: sqlite3.Connection) -> list[DeviceSession]:
            live = "" if include_ended else " AND ended_at IS NULL"
            rows = conn.execute(
                f"SELECT {_SESSION_COLUMNS} FROM auth_sessions WHERE user_id = ?{live}"
                " ORDER BY created_at DESC, id", (user_id,),
            ).fetchall()
            return [_session(row) for row in rows]

        return await self._db.call(read, write=False)

    async def purge_sessions(self, ended_before: float) -> int:
        def purge(conn: sqlite3.Connection) -> int:
            conn.execute(
                "DELETE FROM auth_old_hashes WHERE session_id IN"
                " (SELECT id FROM auth_sessions WHERE ended_at < ?)", (ended_before,))
            return conn.execute("DELETE FROM auth_sessions WHERE ended_at < ?", (ended_before,)).rowcount

        return await self._db.call(purge, write=True)

    # -- sign-ins and invitations -----------------------------------------------------------

    async def first_sign_ins(self, user_ids: Iterable[str]) -> dict[str, float]:
        chunks = id_chunks(user_ids)

        def read(conn: sqlite3.Connection) -> dict[str, float]:
            found: dict[str, float] = {}
            for chunk in chunks:
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(f"SELECT user_id, first_at FROM auth_sign_ins WHERE user_id IN ({marks})",
                                    chunk).fetchall()
                found.update((row[0], row[1]) for row in rows)
            return found

        return await self._db.call(read, write=False)

    async def with_live_sessions(self, user_ids: Iterable[str]) -> set[str]:
        chunks = id_chunks(user_ids)

        def read(conn: sqlite3.Connection) -> set[str]:
            found: set[str] = set()
            for chunk in chunks:
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(f"SELECT DISTINCT user_id FROM auth_sessions WHERE ended_at IS NULL"
                                    f" AND user_id IN ({marks})", chunk).fetchall()
                found.update(row[0] for row in rows)
            return found

        return await self._db.call(read, write=False)

    async def record_invitation(self, user_id: str, sent_at: float) -> None:
        def record(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO auth_invitations (user_id, sent_at) VALUES (?, ?)", (user_id, sent_at))

        await self._db.call(record, write=True)

    async def invitations(self, user_ids: Iterable[str]) -> dict[str, list[float]]:
        chunks = id_chunks(user_ids)

        def read(conn: sqlite3.Connection) -> dict[str, list[float]]:
            found: dict[str, list[float]] = {}
            for chunk in chunks:
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT user_id, sent_at FROM auth_invitations WHERE user_id IN ({marks})"
                    " ORDER BY sent_at, rowid", chunk).fetchall()
                for user_id, sent_at in rows:
                    found.setdefault(user_id, []).append(sent_at)
            return found

        return await self._db.call(read, write=False)

    # -- erasure ----------------------------------------------------------------------------

    async def forget_user(self, user_id: str) -> None:
        def forget(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM auth_old_hashes WHERE session_id IN"
                         " (SELECT id FROM auth_sessions WHERE user_id = ?)", (user_id,))
            for table in ("auth_sessions", "auth_sign_ins", "auth_invitations", "auth_codes"):
                conn.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))

        def checkpoint(conn: sqlite3.Connection) -> None:
            # `secure_delete` zeroed the freed pages; the log may still hold the old ones
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

        await self._db.call(forget, write=True)
        await self._db.call(checkpoint, write=False)
