"""One SQLite connection on one worker thread, for the stores that keep their own tables in the
message store's file (sign-in, push, jobs, notifications, board, audit, privacy).

No sqlite3 call runs on the event loop. Each write is one `BEGIN IMMEDIATE` transaction, so two
processes on one file serialise their compare-and-set steps. Every operation has a deadline
(`op_timeout`): one still queued at its deadline is refused with `StoreUnavailable` and never
touches the file; the wait for another process's lock is bounded by the same deadline.

Options: `secure_delete` (what is deleted is zeroed in the file: the stores holding personal
data), `synchronous` ("NORMAL" for the job and push tables: a commit survives a killed process,
not a power cut), `read_transaction` (reads in one `BEGIN DEFERRED` snapshot).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from persistence.store import StoreUnavailable

T = TypeVar("T")
DEFAULT_OP_TIMEOUT = 3.0
UNAVAILABLE_CODES = frozenset({
    sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_PROTOCOL,
})
IN_CHUNK = 500  # ids per `IN (...)`, under SQLite's variable limit


def id_chunks(ids: Iterable[str]) -> list[list[str]]:
    """The ids, each once and in order, in lists of at most `IN_CHUNK` (one `IN (...)` each)."""
    unique = list(dict.fromkeys(ids))
    return [unique[i:i + IN_CHUNK] for i in range(0, len(unique), IN_CHUNK)]


class SQLiteWorker:
    def __init__(self, path: str, name: str, schema: str | Sequence[str], *, busy_timeout_ms: int = 5000,
                 op_timeout: float | None = DEFAULT_OP_TIMEOUT,
                 setup: Callable[[sqlite3.Connection], None] | None = None,
                 secure_delete: bool = False, synchronous: str = "FULL",
                 read_transaction: bool = False) -> None:
        """`schema`: statements (or one `;`-separated script) run in one transaction at open;
        then `setup(conn)`, in it too."""
        self.path = path
        self.name = name
        statements = schema.split(";") if isinstance(schema, str) else schema
        self._schema = tuple(s for s in statements if s.strip())
        self._setup = setup
        self._busy_timeout_ms = busy_timeout_ms
        self._op_timeout = op_timeout
        self._secure_delete = secure_delete
        self._synchronous = synchronous if synchronous in ("FULL", "NORMAL") else "FULL"
        self._read_transaction = read_transaction
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._connect)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.name}: {exc}") from exc

    def _connect(self) -> None:
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_ms / 1000, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode = WAL").fetchall()
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            if self._secure_delete:
                conn.execute("PRAGMA secure_delete = ON")
            conn.execute("BEGIN IMMEDIATE")
            for statement in self._schema:
                conn.execute(statement)
            if self._setup is not None:
                self._setup(conn)
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

    async def call(self, fn: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        """Run `fn(connection)` on the thread, in a write transaction when `write`."""
        if self._executor is None:
            raise StoreUnavailable(f"the {self.name} store is not open")
        deadline = None if self._op_timeout is None else time.monotonic() + self._op_timeout

        def run() -> T:
            if deadline is not None and time.monotonic() > deadline:
                raise StoreUnavailable(f"{self.name} operation not started before its deadline")
            conn = self._conn
            if conn is None:
                raise StoreUnavailable(f"the {self.name} store is closed")
            if deadline is not None:
                left_ms = max(1, int((deadline - time.monotonic()) * 1000))
                conn.execute(f"PRAGMA busy_timeout = {min(left_ms, self._busy_timeout_ms)}")
            if not write and not self._read_transaction:
                return fn(conn)
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
            if code is not None and int(code) & 0xFF in UNAVAILABLE_CODES:
                raise StoreUnavailable(f"{self.name}: {exc}") from exc
            raise
