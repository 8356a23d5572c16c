"""`SQLiteStore`: the embedded `Store`, one SQLite file (stdlib `sqlite3`, WAL mode).

Threads: sqlite3 calls block, so none runs on the event loop. One writer thread
(a single-worker `ThreadPoolExecutor`) owns the only writing connection: writes are
serialised in the order they were submitted, and each one is a `BEGIN IMMEDIATE`
transaction (which also waits, up to `busy_timeout`, for another process writing the
same file, such as an import run from the CLI). A second thread owns a read-only
connection; in WAL mode its reads never wait for the writer and see every committed
transaction.

`append` allocates `seq` as `max(seq) + 1` of the channel, checks the idempotency key
and inserts, in one transaction: no hole, no duplicate, even across processes.
Appends are group-committed: those waiting share one transaction (one fsync), each in
its own savepoint; under steady load an append waits up to `commit_delay` (5 ms) for
others to join its commit.

Deadlines: every operation has one deadline (`op_timeout`, counted from the call).
An operation still queued when it passes is refused with `StoreUnavailable` and never
touches the database; the wait for another process's write lock (`busy_timeout`) is
bounded by the latest deadline of the batch that waits, so one publish waits at most
about `op_timeout`, however many batches queued before it.

Readiness (`ping`): a write refused for lack of space or by an I/O error marks the
store not ready, and checkpoints the write-ahead log into the database file and
truncates it (so a disk that filled up gets the log's space back). While marked,
`ping` tries a probe write that needs fresh pages and raises until one succeeds (or
an append does); unmarked, `ping` is a read. The connection also keeps the log file
at most `journal_size_limit` bytes after each checkpoint, so that a burst of writes
does not leave a big log behind.

Erasure (GDPR): `delete` replaces the data with `{}` while `secure_delete` zeroes the
freed bytes, then checkpoints the write-ahead log and truncates it, so the original
content stays neither in the database file nor in the log.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from persistence import sqlite_schema as sql
from persistence.batching import Batcher
from persistence.store import Appended, DirectoryItem, Recovery, StoreUnavailable
from school.directory import Directory
from school.messages import Draft, JSONDict, Message

T = TypeVar("T")

# Error codes that mean "the database cannot be used right now", not "this is a bug".
_UNAVAILABLE_CODES = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_PERM,
        sqlite3.SQLITE_PROTOCOL,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
    }
)


# Of those, the ones that say the store cannot write (a full disk, a failing device, a
# file made read-only), as opposed to another process holding the lock for a while.
_CANNOT_WRITE_CODES = _UNAVAILABLE_CODES - {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}

DEFAULT_OP_TIMEOUT = 3.0  # seconds: one deadline per operation, queueing included
# Seconds an append waits for company under steady load: each commit is an fsync (and two
# thread hand-offs); at 600 appends/s, 5 ms gathers ~3 appends a commit instead of ~1.7 and
# cut the gateway's CPU by 5-10 % (docs/design-notes.md). An idle store waits for nothing.
COMMIT_DELAY = 0.005


def _code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def _unavailable(exc: sqlite3.Error) -> bool:
    return _code(exc) in _UNAVAILABLE_CODES


def _cannot_write(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.Error) and _code(exc) in _CANNOT_WRITE_CODES


def _connect(path: str, busy_timeout_ms: int, *, writer: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), used by one thread only."""
    conn = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        # FULL: a commit is on disk (the WAL is fsynced) before `append` returns, so an
        # acknowledged message survives a power cut, not only a process crash. NORMAL
        # would save one fsync per commit at the price of the last messages.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA secure_delete = ON")
        if writer:
            conn.execute("PRAGMA journal_mode = WAL").fetchall()
            conn.execute(f"PRAGMA journal_size_limit = {sql.JOURNAL_SIZE_LIMIT}").fetchall()
            sql.create_schema(conn)
        else:
            conn.execute("PRAGMA query_only = ON")
    except BaseException:
        conn.close()
        raise
    return conn


class _Worker:
    """One thread and the one connection that only this thread uses."""

    def __init__(self, name: str) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self.conn: sqlite3.Connection | None = None

    def _close_conn(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    async def close(self) -> None:
        """Close the connection after the work already queued, then end the thread."""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self.executor, self._close_conn)
        finally:
            self.executor.shutdown(wait=False)


class SQLiteStore:
    def __init__(
        self, path: str, *, busy_timeout_ms: int = 5000, op_timeout: float | None = DEFAULT_OP_TIMEOUT,
        commit_delay: float = COMMIT_DELAY,
    ) -> None:
        """`busy_timeout_ms`: the longest wait for another process's write lock;
        `op_timeout`: each operation's deadline in seconds (None: none, only the busy wait);
        `commit_delay`: how long an append waits for others to share its commit when appends
        are coming steadily (`Batcher`'s linger; 0: never)."""
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._writer: _Worker | None = None
        self._reader: _Worker | None = None
        self._closed = False
        # Why the last write was refused (a full disk...), until a write succeeds again.
        self._cannot_write: str | None = None
        self._writes = Batcher(
            lambda ops, deadline: self._run_batch(self._writer, "IMMEDIATE", ops, deadline),
            timeout=op_timeout,
            linger=commit_delay,
        )
        # Writes with their own transaction (directory, edits, deletes): one at a time.
        self._solo_writes = Batcher(
            lambda ops, deadline: self._run_batch(self._writer, None, ops, deadline),
            max_batch=1,
            timeout=op_timeout,
        )
        self._reads = Batcher(
            lambda ops, deadline: self._run_batch(self._reader, None, ops, deadline),
            timeout=op_timeout,
        )

    # -- lifecycle ------------------------------------------------------------

    async def open(self) -> None:
        if self._writer is not None:
            return
        self._closed = False
        self._writer, self._reader = _Worker("sqlite-writer"), _Worker("sqlite-reader")
        try:
            # The writer first: it creates the schema that the read-only reader expects.
            await self._connect(self._writer, writer=True)
            await self._connect(self._reader, writer=False)
        except BaseException:
            await self.close()
            raise

    async def _connect(self, worker: _Worker, *, writer: bool) -> None:
        path, timeout = self.path, self._busy_timeout_ms
        worker.conn = await self._submit(worker, lambda: _connect(path, timeout, writer=writer))

    async def close(self) -> None:
        self._closed = True
        await self._writes.drain()  # what is queued fails as unavailable, cleanly
        await self._solo_writes.drain()
        await self._reads.drain()
        workers = [w for w in (self._writer, self._reader) if w is not None]
        self._writer = self._reader = None
        for worker in workers:
            await worker.close()

    async def ping(self) -> None:
        """Raise `StoreUnavailable` unless the store can read and write. After a write was
        refused (a full disk, an I/O error), a probe write that needs fresh pages must
        succeed first; until then the store is not ready."""
        await self._read(sql.ping)
        if self._cannot_write is not None:
            await self._solo_writes.run(self._guarded(sql.probe_write))
            self._cannot_write = None

    # -- running on the worker threads ------------------------------------------

    async def _submit(self, worker: _Worker, call: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(worker.executor, call)
        except RuntimeError as exc:  # the executor was shut down by close()
            raise StoreUnavailable("the SQLite store is closed") from exc
        try:
            return await future
        except sqlite3.ProgrammingError as exc:
            if self._closed:  # a call that raced with close()
                raise StoreUnavailable("the SQLite store is closed") from exc
            raise
        except sqlite3.Error as exc:
            if _unavailable(exc):
                raise StoreUnavailable(f"SQLite database {self.path!r}: {exc}") from exc
            raise

    async def _on(self, worker: _Worker | None, op: Callable[[sqlite3.Connection], T]) -> T:
        conn = worker.conn if worker is not None else None
        if worker is None or conn is None or self._closed:
            raise StoreUnavailable("the SQLite store is closed (or was never opened)")
        return await self._submit(worker, lambda: op(conn))

    async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """A write in its own transaction (directory changes, edits, deletes)."""
        return await self._solo_writes.run(self._guarded(op))

    async def _grouped_write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """A small write (append, read mark) committed together with the others waiting."""
        return await self._writes.run(self._guarded(op))

    async def _read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        return await self._reads.run(op)

    def _guarded(self, op: Callable[[sqlite3.Connection], T]) -> Callable[[sqlite3.Connection], T]:
        """On the writer thread: a write refused for lack of space (or an I/O error) gets the
        write-ahead log checkpointed and truncated at once, so that its space comes back."""

        def guarded(conn: sqlite3.Connection) -> T:
            try:
                return op(conn)
            except sqlite3.Error as exc:
                if _cannot_write(exc) and not conn.in_transaction:
                    sql.truncate_wal(conn)
                raise

        return guarded

    async def _run_batch(self, worker: _Worker | None, mode: str | None,
                         ops: list[Callable[[sqlite3.Connection], Any]],
                         deadline: float | None) -> list[tuple[bool, Any]]:
        busy_ms, writer = self._busy_timeout_ms, worker is self._writer

        def run(conn: sqlite3.Connection) -> list[tuple[bool, Any]]:
            wait = busy_ms if deadline is None else (deadline - time.monotonic()) * 1000
            sql.set_busy_timeout(conn, max(0, min(busy_ms, int(wait))))
            try:
                results = sql.run_batch(conn, ops, mode)
            except sqlite3.Error as exc:
                if writer and _cannot_write(exc):
                    sql.truncate_wal(conn)
                raise
            if writer and any(not ok and _cannot_write(value) for ok, value in results):
                sql.truncate_wal(conn)  # after the batch's commit: outside any transaction
            return results

        try:
            results = await self._on(worker, run)
        except StoreUnavailable as exc:
            if writer and _cannot_write(exc.__cause__ or exc):
                self._cannot_write = exc.detail
            raise
        if writer:
            self._note_writes(results)
        return [(ok, value if ok else self._mapped(value)) for ok, value in results]

    def _note_writes(self, results: list[tuple[bool, Any]]) -> None:
        """Mark the store unable to write when one of these writes was refused for lack of
        space; a successful append (the probe of `ping` is another) clears the mark."""
        for ok, value in results:
            if not ok and _cannot_write(value):
                self._cannot_write = str(value)
            elif ok and isinstance(value, Appended) and value.created:
                self._cannot_write = None

    def _mapped(self, exc: BaseException) -> BaseException:
        if isinstance(exc, sqlite3.Error) and (_unavailable(exc) or self._closed):
            return StoreUnavailable(f"SQLite database {self.path!r}: {exc}")
        return exc

    # -- messages -------------------------------------------------------------

    async def append(self, draft: Draft) -> Appended:
        return await self._grouped_write(lambda c: sql.append(c, draft))

    async def latest_seqs(self, channels: Iterable[str]) -> dict[str, int]:
        names = list(dict.fromkeys(channels))
        return await self._read(lambda c: sql.latest_seqs(c, names))

    async def recover(
        self, channel: str, since: int, cap: int, *, max_bytes: int | None = None
    ) -> Recovery:
        cap = max(cap, 0)
        return await self._read(lambda c: sql.recover(c, channel, since, cap, max_bytes))

    async def recover_many(
        self, since: Mapping[str, int], cap: int, *, max_bytes: int | None = None
    ) -> dict[str, Recovery]:
        wanted, cap = dict(since), max(cap, 0)
        return await self._read(lambda c: sql.recover_many(c, wanted, cap, max_bytes))

    async def updates(self, upto: Mapping[str, int], after_ts: int) -> dict[str, list[Message]]:
        wanted = dict(upto)
        return await self._read(lambda c: sql.updates(c, wanted, after_ts))

    async def history(
        self, channel: str, before: int | None, limit: int, *, max_bytes: int | None = None
    ) -> tuple[list[Message], bool]:
        limit = max(limit, 0)
        return await self._read(lambda c: sql.history(c, channel, before, limit, max_bytes))

    async def get(self, channel: str, seq: int) -> Message | None:
        return await self._read(lambda c: sql.get(c, channel, seq))

    async def range(self, channel: str, after: int, upto: int) -> list[Message]:
        return await self._read(lambda c: sql.seq_range(c, channel, after, upto))

    async def edit(self, channel: str, seq: int, data: JSONDict, ts: int) -> Message | None:
        return await self._write(lambda c: sql.edit(c, channel, seq, data, ts))

    async def delete(self, channel: str, seq: int, ts: int) -> Message | None:
        return await self._write(lambda c: sql.delete(c, channel, seq, ts))

    # -- read marks -----------------------------------------------------------

    async def mark_read(self, user_id: str, channel: str, seq: int) -> int:
        return await self._grouped_write(lambda c: sql.mark_read(c, user_id, channel, seq))

    async def read_marks(self, channel: str, user_ids: Iterable[str]) -> dict[str, int]:
        users = list(dict.fromkeys(user_ids))
        return await self._read(lambda c: sql.read_marks(c, channel, users))

    async def user_read_marks(self, user_id: str) -> dict[str, int]:
        return await self._read(lambda c: sql.user_read_marks(c, user_id))

    async def read_marks_many(self, channels: Iterable[str], user_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        names, users = list(dict.fromkeys(channels)), list(dict.fromkeys(user_ids))
        return await self._read(lambda c: sql.read_marks_many(c, names, users))

    async def recent_messages(self, channels: Iterable[str], limit: int, *, since_ts: int = 0
                              ) -> dict[str, list[Message]]:
        names, limit = list(dict.fromkeys(channels)), max(limit, 0)
        return await self._read(lambda c: sql.recent_messages(c, names, limit, since_ts))

    async def recent_times(self, channels: Iterable[str], limit: int, *, since_ts: int = 0
                           ) -> dict[str, list[tuple[int, int]]]:
        names, limit = list(dict.fromkeys(channels)), max(limit, 0)
        return await self._read(lambda c: sql.recent_times(c, names, limit, since_ts))

    # -- children's data (issue 15) -------------------------------------------

    async def messages_by(self, author_id: str) -> list[Message]:
        return await self._read(lambda c: sql.messages_by(c, author_id))

    async def redact(self, channel: str, seq: int, ts: int) -> Message | None:
        return await self._write(lambda c: sql.redact(c, channel, seq, ts))

    async def forget_read_marks(self, user_id: str) -> int:
        return await self._write(lambda c: sql.forget_read_marks(c, user_id))

    async def purge_channels(self, channels: Iterable[str], before_ts: int) -> int:
        names = list(dict.fromkeys(channels))
        return await self._write(lambda c: sql.purge_channels(c, names, before_ts))

    # -- directory ------------------------------------------------------------

    async def directory_version(self) -> int:
        return await self._read(sql.directory_version)

    async def touch_directory(self) -> int:
        return await self._write(sql.touch_directory)

    async def load_directory(self) -> Directory:
        return await self._read(sql.load_directory)

    async def save_directory(
        self, upserts: Iterable[DirectoryItem], deletions: Mapping[str, Iterable[str]] | None = None
    ) -> None:
        """Upserts first, then deletions (an id in both ends up deleted), in one transaction."""
        rows = [sql.directory_row(item) for item in upserts]
        doomed = sql.checked_deletions(deletions)
        await self._write(lambda c: sql.save_directory(c, rows, doomed))
