"""`SQLiteBoardStore`: the embedded `BoardStore`, tables `board_*` in the message store's SQLite
file (the model is persistence/auth_sqlite.py: one connection owned by one worker thread, WAL,
each write one `BEGIN IMMEDIATE` transaction, a deadline on every operation).

- `board_reads`: one row per logged move of a read mark, indexed by `(channel, upto)` for
  `first_reads` and by `(user_id, at)` for `last_reads` and erasure;
- `board_reminders`: the last reminder claimed per message, `PRIMARY KEY (channel, seq)`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from persistence.board_store import ReadMove, first_times
from persistence.store import StoreUnavailable

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS board_reads (
    user_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    after_seq INTEGER NOT NULL,
    upto_seq INTEGER NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS board_reads_channel ON board_reads (channel, upto_seq);
CREATE INDEX IF NOT EXISTS board_reads_user ON board_reads (user_id, at);
CREATE INDEX IF NOT EXISTS board_reads_at ON board_reads (at);
CREATE TABLE IF NOT EXISTS board_reminders (
    channel TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (channel, seq)
) WITHOUT ROWID;
"""
_UNAVAILABLE_CODES = frozenset({
    sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_PROTOCOL,
})
DEFAULT_OP_TIMEOUT = 3.0
_CHUNK = 500  # ids per `IN (...)`, under SQLite's variable limit


def _chunks(ids: Iterable[str]) -> list[list[str]]:
    unique = list(dict.fromkeys(ids))
    return [unique[i:i + _CHUNK] for i in range(0, len(unique), _CHUNK)]


class SQLiteBoardStore:
    def __init__(self, path: str, *, busy_timeout_ms: int = 5000,
                 op_timeout: float | None = DEFAULT_OP_TIMEOUT) -> None:
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._op_timeout = op_timeout
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="board-sqlite")
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._connect)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"board store: {exc}") from exc

    def _connect(self) -> None:
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_ms / 1000, isolation_level=None,
                               check_same_thread=True)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode = WAL").fetchall()
            conn.execute("PRAGMA secure_delete = ON")  # forget_user leaves no bytes behind
            conn.execute("BEGIN IMMEDIATE")
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
        finally:
            executor.shutdown(wait=False)

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def _call(self, fn: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        """Run `fn(connection)` on the thread, in a write transaction when `write`."""
        if self._executor is None:
            raise StoreUnavailable("the board store is not open")
        deadline = None if self._op_timeout is None else time.monotonic() + self._op_timeout

        def run() -> T:
            if deadline is not None and time.monotonic() > deadline:
                raise StoreUnavailable("board store operation not started before its deadline")
            conn = self._conn
            if conn is None:
                raise StoreUnavailable("the board store is closed")
            if deadline is not None:
                left_ms = max(1, int((deadline - time.monotonic()) * 1000))
                conn.execute(f"PRAGMA busy_timeout = {min(left_ms, self._busy_timeout_ms)}")
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, run)
        except sqlite3.Error as exc:
            code = getattr(exc, "sqlite_errorcode", None)
            if code is not None and int(code) & 0xFF in _UNAVAILABLE_CODES:
                raise StoreUnavailable(f"board store: {exc}") from exc
            raise

    async def record_reads(self, moves: Sequence[ReadMove]) -> None:
        rows = [(m.user_id, m.channel, m.after, m.upto, m.at) for m in moves]
        if not rows:
            return

        def insert(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT INTO board_reads (user_id, channel, after_seq, upto_seq, at)"
                             " VALUES (?, ?, ?, ?, ?)", rows)

        await self._call(insert, write=True)

    async def last_reads(self, user_ids: Iterable[str]) -> dict[str, float]:
        chunks = _chunks(user_ids)

        def read(conn: sqlite3.Connection) -> dict[str, float]:
            out: dict[str, float] = {}
            for chunk in chunks:
                rows = conn.execute(f"SELECT user_id, max(at) FROM board_reads WHERE user_id IN "
                                    f"({', '.join('?' * len(chunk))}) GROUP BY user_id", chunk)
                out.update((user, float(at)) for user, at in rows)
            return out

        return await self._call(read, write=False)

    async def first_reads(self, wanted: Mapping[str, Iterable[int]], user_ids: Iterable[str]
                          ) -> dict[str, dict[int, float]]:
        asked = {channel: sorted(set(seqs)) for channel, seqs in wanted.items()}
        users = set(user_ids)

        def read(conn: sqlite3.Connection) -> dict[str, dict[int, float]]:
            out: dict[str, dict[int, float]] = {}
            for channel, seqs in asked.items():
                if not seqs:
                    out[channel] = {}
                    continue
                rows = conn.execute("SELECT user_id, after_seq, upto_seq, at FROM board_reads"
                                    " WHERE channel = ? AND upto_seq >= ? AND after_seq < ?",
                                    (channel, seqs[0], seqs[-1]))
                out[channel] = first_times(((a, u, t) for user, a, u, t in rows if user in users), seqs)
            return out

        return await self._call(read, write=False)

    async def claim_reminder(self, channel: str, seq: int, at: float, every: float) -> float | None:
        def claim(conn: sqlite3.Connection) -> float | None:
            row = conn.execute("SELECT at FROM board_reminders WHERE channel = ? AND seq = ?",
                               (channel, seq)).fetchone()
            if row is not None and float(row[0]) > at - every:
                return float(row[0])
            conn.execute("INSERT OR REPLACE INTO board_reminders (channel, seq, at) VALUES (?, ?, ?)",
                         (channel, seq, at))
            return None

        return await self._call(claim, write=True)

    async def release_reminder(self, channel: str, seq: int, at: float) -> None:
        def release(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM board_reminders WHERE channel = ? AND seq = ? AND at = ?",
                         (channel, seq, at))

        await self._call(release, write=True)

    async def reads_of(self, user_id: str) -> list[ReadMove]:
        def read(conn: sqlite3.Connection) -> list[ReadMove]:
            rows = conn.execute("SELECT user_id, channel, after_seq, upto_seq, at FROM board_reads"
                                " WHERE user_id = ? ORDER BY at, rowid", (user_id,))
            return [ReadMove(u, c, int(a), int(t), float(at)) for u, c, a, t, at in rows]

        return await self._call(read, write=False)

    async def forget_user(self, user_id: str) -> int:
        def forget(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM board_reads WHERE user_id = ?", (user_id,)).rowcount

        return await self._call(forget, write=True)

    async def purge(self, before: float) -> int:
        def purge(conn: sqlite3.Connection) -> int:
            conn.execute("DELETE FROM board_reminders WHERE at < ?", (before,))
            return conn.execute("DELETE FROM board_reads WHERE at < ?", (before,)).rowcount

        return await self._call(purge, write=True)
