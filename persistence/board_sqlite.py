"""`SQLiteBoardStore`: the embedded `BoardStore`, tables `board_*` in the message store's SQLite
file (the model is persistence/auth_sqlite.py: one connection owned by one worker thread, WAL,
each write one `BEGIN IMMEDIATE` transaction, a deadline on every operation).

- `board_reads`: one row per logged move of a read mark, indexed by `(channel, upto)` for
  `first_reads` and by `(user_id, at)` for `last_reads` and erasure;
- `board_reminders`: the last reminder claimed per message, `PRIMARY KEY (channel, seq)`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence

from persistence.board_store import ReadMove, first_times
from persistence.sqlite_worker import DEFAULT_OP_TIMEOUT, SQLiteWorker, id_chunks

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


class SQLiteBoardStore:
    def __init__(self, path: str, *, busy_timeout_ms: int = 5000,
                 op_timeout: float | None = DEFAULT_OP_TIMEOUT) -> None:
        self.path = path
        self._db = SQLiteWorker(path, "board-sqlite", SCHEMA, busy_timeout_ms=busy_timeout_ms,
                                # secure_delete: forget_user leaves no bytes behind; reads see one snapshot
                                op_timeout=op_timeout, secure_delete=True, read_transaction=True)

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    async def record_reads(self, moves: Sequence[ReadMove]) -> None:
        rows = [(m.user_id, m.channel, m.after, m.upto, m.at) for m in moves]
        if not rows:
            return

        def insert(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT INTO board_reads (user_id, channel, after_seq, upto_seq, at)"
                             " VALUES (?, ?, ?, ?, ?)", rows)

        await self._db.call(insert, write=True)

    async def last_reads(self, user_ids: Iterable[str]) -> dict[str, float]:
        chunks = id_chunks(user_ids)

        def read(conn: sqlite3.Connection) -> dict[str, float]:
            out: dict[str, float] = {}
            for chunk in chunks:
                rows = conn.execute(f"SELECT user_id, max(at) FROM board_reads WHERE user_id IN "
                                    f"({', '.join('?' * len(chunk))}) GROUP BY user_id", chunk)
                out.update((user, float(at)) for user, at in rows)
            return out

        return await self._db.call(read, write=False)

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

        return await self._db.call(read, write=False)

    async def claim_reminder(self, channel: str, seq: int, at: float, every: float) -> float | None:
        def claim(conn: sqlite3.Connection) -> float | None:
            row = conn.execute("SELECT at FROM board_reminders WHERE channel = ? AND seq = ?",
                               (channel, seq)).fetchone()
            if row is not None and float(row[0]) > at - every:
                return float(row[0])
            conn.execute("INSERT OR REPLACE INTO board_reminders (channel, seq, at) VALUES (?, ?, ?)",
                         (channel, seq, at))
            return None

        return await self._db.call(claim, write=True)

    async def release_reminder(self, channel: str, seq: int, at: float) -> None:
        def release(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM board_reminders WHERE channel = ? AND seq = ? AND at = ?",
                         (channel, seq, at))

        await self._db.call(release, write=True)

    async def reads_of(self, user_id: str) -> list[ReadMove]:
        def read(conn: sqlite3.Connection) -> list[ReadMove]:
            rows = conn.execute("SELECT user_id, channel, after_seq, upto_seq, at FROM board_reads"
                                " WHERE user_id = ? ORDER BY at, rowid", (user_id,))
            return [ReadMove(u, c, int(a), int(t), float(at)) for u, c, a, t, at in rows]

        return await self._db.call(read, write=False)

    async def forget_user(self, user_id: str) -> int:
        def forget(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM board_reads WHERE user_id = ?", (user_id,)).rowcount

        return await self._db.call(forget, write=True)

    async def purge(self, before: float) -> int:
        def purge(conn: sqlite3.Connection) -> int:
            conn.execute("DELETE FROM board_reminders WHERE at < ?", (before,))
            return conn.execute("DELETE FROM board_reads WHERE at < ?", (before,)).rowcount

        return await self._db.call(purge, write=True)
