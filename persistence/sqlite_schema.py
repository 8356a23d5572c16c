"""The SQL of `persistence.sqlite`: the schema, the row mapping and the operations.

Everything here is synchronous and runs on one of the store's worker threads, with
the connection that thread owns (autocommit mode: transactions are explicit).

Tables:
- `messages`: one row per message, `PRIMARY KEY (channel, seq)`; a partial unique
  index on `(channel, author_id, key)` records idempotency keys. The `seq` counter of
  a channel is derived: `max(seq)`, one lookup at the end of the primary key, read
  inside the appending `BEGIN IMMEDIATE` transaction, so there is no counter table to
  keep in step with the messages.
- `write_probe`: always empty; `probe_write` fills and empties it in one transaction to
  learn whether the store can write (readiness after a full disk).
- `read_marks`: a user's read mark in a channel, `PRIMARY KEY (user_id, channel)`.
- `schools`, `people`, `classes`, `students`, `chats`: the directory; the tuples of
  teachers and guardians are JSON arrays (the directory is always loaded whole).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

from persistence.store import Appended, DirectoryItem, Recovery, envelope_bytes, newest_within_budget
from school.directory import Chat, Directory, Person, Role, School, SchoolClass, Student
from school.messages import Author, Draft, JSONDict, Message, published

SCHEMA_VERSION = 2  # 2: chats.guardian_id and chats.closed (households, closed chats)
# The write-ahead log file is cut back to this size after each checkpoint that empties it.
JOURNAL_SIZE_LIMIT = 1 << 20
# What the readiness probe writes: about one message with its data, in fresh pages.
PROBE_BYTES = 16 << 10

_DDL = """
CREATE TABLE IF NOT EXISTS messages (
    channel     TEXT    NOT NULL,
    seq         INTEGER NOT NULL CHECK (seq > 0),
    id          TEXT    NOT NULL,
    ts          INTEGER NOT NULL,
    author_id   TEXT    NOT NULL,
    author_name TEXT    NOT NULL,
    author_role TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    data        TEXT    NOT NULL,
    edited      INTEGER,
    deleted     INTEGER NOT NULL DEFAULT 0,
    key         TEXT,
    PRIMARY KEY (channel, seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_idempotency
    ON messages (channel, author_id, key) WHERE key IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_edited
    ON messages (channel, edited) WHERE edited IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_author
    ON messages (author_id);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS write_probe (
    id  INTEGER PRIMARY KEY,
    pad BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS read_marks (
    user_id TEXT    NOT NULL,
    channel TEXT    NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (user_id, channel)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS schools (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, year TEXT NOT NULL,
    guardians_start_chats INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS people (
    id TEXT PRIMARY KEY, school_id TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL,
    email TEXT, phone TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS classes (
    id TEXT PRIMARY KEY, school_id TEXT NOT NULL, name TEXT NOT NULL, teachers TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS students (
    id TEXT PRIMARY KEY, school_id TEXT NOT NULL, class_id TEXT NOT NULL, name TEXT NOT NULL,
    guardians TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chats (
    id TEXT PRIMARY KEY, school_id TEXT NOT NULL, student_id TEXT NOT NULL,
    staff_id TEXT NOT NULL, guardian_id TEXT, closed INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
"""

# The columns of each directory table, in the order of the entity's fields.
# The deletion keys of `save_directory` are these table names.
DIRECTORY_COLUMNS = {
    "schools": "id, name, year, guardians_start_chats",
    "people": "id, school_id, name, role, email, phone",
    "classes": "id, school_id, name, teachers",
    "students": "id, school_id, class_id, name, guardians",
    "chats": "id, school_id, student_id, staff_id, guardian_id, closed",
}

_SELECT = (
    "SELECT channel, seq, id, ts, author_id, author_name, author_role, kind, data, edited,"
    " deleted FROM messages"
)
_INSERT = (
    "INSERT INTO messages (channel, seq, id, ts, author_id, author_name, author_role, kind,"
    " data, edited, deleted, key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_IN_CHUNK = 500  # bound on the `?` placeholders of one `IN (...)`
T = TypeVar("T")
TIME_ORDER_SLACK_MS = 60_000  # how far out of time order appends may be (gateways' clocks)


@contextmanager
def transaction(conn: sqlite3.Connection, mode: str = "IMMEDIATE") -> Iterator[None]:
    """One explicit transaction: IMMEDIATE takes the write lock first, DEFERRED reads
    one consistent snapshot. Inside a transaction already open (a group commit), it is a
    savepoint: the operation is still all or nothing, and the batch commits once."""
    if conn.in_transaction:
        conn.execute("SAVEPOINT op")
        try:
            yield
            conn.execute("RELEASE op")
        except BaseException:
            # A full disk or an I/O error can make SQLite roll the whole transaction back
            # by itself: then there is no savepoint left to roll back to.
            if conn.in_transaction:
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
            raise
        return
    conn.execute(f"BEGIN {mode}")
    try:
        yield
        if conn.in_transaction:  # else SQLite rolled it back already; the caller knows why
            conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the tables in one transaction; refuse a file written by a newer version."""
    with transaction(conn):
        version = int(_one(conn, "PRAGMA user_version", ())[0])
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"the database has schema version {version}; this server knows {SCHEMA_VERSION}"
            )
        for statement in _DDL.split(";"):
            if statement.strip():
                conn.execute(statement)
        if version == 1:  # a file of the first version: its chats gain the household columns
            for column in ("guardian_id TEXT", "closed INTEGER NOT NULL DEFAULT 0"):
                conn.execute(f"ALTER TABLE chats ADD COLUMN {column}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _one(conn: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> Any:
    """The first row or None. `fetchall` runs the statement to its end, which resets it:
    a statement left half-read would keep its read snapshot (and block checkpoints)."""
    rows = conn.execute(sql, params).fetchall()
    return rows[0] if rows else None


def ping(conn: sqlite3.Connection) -> None:
    _one(conn, "SELECT count(*) FROM sqlite_master", ())


def set_busy_timeout(conn: sqlite3.Connection, ms: int) -> None:
    """How long the next statements wait for another process's lock (the deadline's rest)."""
    conn.execute(f"PRAGMA busy_timeout = {int(ms)}").fetchall()


def truncate_wal(conn: sqlite3.Connection) -> None:
    """Copy the write-ahead log into the database file and cut the log to zero bytes. Best
    effort (after a refused write the disk may still be full): errors are ignored, and a
    reader still in a snapshot makes it stop short without error."""
    with suppress(sqlite3.Error):
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def probe_write(conn: sqlite3.Connection) -> None:
    """Commit a transaction that needs `PROBE_BYTES` of fresh pages (and leaves no row):
    it fails, as an append would, when the disk (or `max_page_count`) has no room."""
    with transaction(conn):
        conn.execute("INSERT INTO write_probe (pad) VALUES (zeroblob(?))", (PROBE_BYTES,))
        conn.execute("DELETE FROM write_probe")


# -- messages -------------------------------------------------------------------


def _encode(data: JSONDict) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _message(row: Sequence[Any]) -> Message:
    channel, seq, ident, ts, author_id, author_name, author_role, kind, data, edited, deleted = row
    author = Author(author_id, author_name, author_role)
    return Message(channel, seq, ident, ts, author, kind, json.loads(data), edited, bool(deleted))


def _messages(conn: sqlite3.Connection, where: str, params: tuple[object, ...]) -> list[Message]:
    return [_message(row) for row in conn.execute(f"{_SELECT} WHERE {where}", params).fetchall()]


def latest(conn: sqlite3.Connection, channel: str) -> int:
    row = _one(conn, "SELECT max(seq) FROM messages WHERE channel = ?", (channel,))
    return int(row[0] or 0)


def latest_seqs(conn: sqlite3.Connection, channels: list[str]) -> dict[str, int]:
    with transaction(conn, "DEFERRED"):
        return {channel: latest(conn, channel) for channel in channels}


def get(conn: sqlite3.Connection, channel: str, seq: int) -> Message | None:
    found = _messages(conn, "channel = ? AND seq = ?", (channel, seq))
    return found[0] if found else None


def run_batch(conn: sqlite3.Connection, ops: list[Callable[[sqlite3.Connection], Any]],
              mode: str | None) -> list[tuple[bool, Any]]:
    """Run operations one after the other on this thread: `(True, result)` or `(False, error)`
    for each. With a `mode`, inside ONE transaction — a group commit: one fsync for the
    batch, each operation still all or nothing (a savepoint). An error of the commit
    itself fails them all."""
    results: list[tuple[bool, Any]] = []
    for_all: Exception | None = None  # what failed the whole transaction, if anything

    def run_each() -> None:
        nonlocal for_all
        for op in ops:
            if for_all is not None:
                results.append((False, for_all))
                continue
            try:
                results.append((True, op(conn)))
            except Exception as exc:
                results.append((False, exc))
                if mode is not None and not conn.in_transaction:
                    for_all = exc

    if mode is None:
        run_each()
        return results
    with transaction(conn, mode):
        run_each()
        if for_all is not None:
            # SQLite rolled the batch's transaction back by itself (SQLITE_FULL, an I/O
            # error): what ran before the failure is gone too, so it fails as well.
            return [(False, for_all)] * len(ops)
    return results


def append(conn: sqlite3.Connection, draft: Draft) -> Appended:
    with transaction(conn):
        return _append(conn, draft)


def _append(conn: sqlite3.Connection, draft: Draft) -> Appended:
    if draft.key is not None:
        where = "channel = ? AND author_id = ? AND key = ?"
        found = _messages(conn, where, (draft.channel, draft.author.id, draft.key))
        if found:
            return Appended(found[0], created=False)
    seq = latest(conn, draft.channel) + 1
    author = draft.author
    row = (draft.channel, seq, draft.id, draft.ts, author.id, author.name, author.role,
           draft.kind, _encode(draft.data), None, 0, draft.key)  # fmt: skip
    conn.execute(_INSERT, row)
    return Appended(published(draft, seq), created=True)


def recover(
    conn: sqlite3.Connection, channel: str, since: int, cap: int, max_bytes: int | None = None
) -> Recovery:
    return recover_many(conn, {channel: since}, cap, max_bytes)[channel]


def recover_many(
    conn: sqlite3.Connection, since: Mapping[str, int], cap: int, max_bytes: int | None = None
) -> dict[str, Recovery]:
    """Each channel's recovery, all read from one snapshot; `max_bytes` is shared by the
    channels in order (persistence/store.py)."""
    out: dict[str, Recovery] = {}
    budget = max_bytes
    with transaction(conn, "DEFERRED"):
        for channel, after in since.items():
            last = latest(conn, channel)
            newest, more, used = _newest(conn, channel, after, last + 1, cap, budget)
            out[channel] = Recovery(newest[::-1], last, complete=not more)
            if budget is not None:
                budget = max(0, budget - used)
    return out


def history(
    conn: sqlite3.Connection, channel: str, before: int | None, limit: int, max_bytes: int | None = None
) -> tuple[list[Message], bool]:
    with transaction(conn, "DEFERRED"):
        newest, more, _ = _newest(conn, channel, 0, _NO_SEQ if before is None else before, limit, max_bytes)
    return newest[::-1], more


_NO_SEQ = (1 << 63) - 1  # above every seq
# The newest rows' seq and data size in UTF-8 bytes (a TEXT's length() counts characters).
_SIZES = ("SELECT seq, length(CAST(data AS BLOB)) FROM messages"
          " WHERE channel = ? AND seq > ? AND seq < ? ORDER BY seq DESC LIMIT ?")


def _newest(
    conn: sqlite3.Connection, channel: str, low: int, high: int, count: int, max_bytes: int | None
) -> tuple[list[Message], bool, int]:
    """The newest messages with `low < seq < high`, newest first: at most `count`, and with
    `max_bytes` only those the byte budget keeps (`newest_within_budget`: the first always).
    Also whether any message of that range was left out, and the budget's bytes used.

    With a budget, only the sizes of the `count + 1` newest rows are read first (integers:
    SQLite reads the data in its page cache, Python never holds it); then the rows kept,
    whole. Call inside a transaction, so that both reads see one snapshot."""
    if max_bytes is None:
        where = "channel = ? AND seq > ? AND seq < ? ORDER BY seq DESC LIMIT ?"
        rows = _messages(conn, where, (channel, low, high, count + 1))
        return rows[:count], len(rows) > count, 0
    sizes = conn.execute(_SIZES, (channel, low, high, count + 1)).fetchall()
    envelope = envelope_bytes(channel)
    kept, used = newest_within_budget((int(size) + envelope for _, size in sizes[:count]), max_bytes)
    if not kept:
        return [], bool(sizes), 0
    where = "channel = ? AND seq >= ? AND seq < ? ORDER BY seq DESC LIMIT ?"
    rows = _messages(conn, where, (channel, int(sizes[kept - 1][0]), high, kept))
    return rows, len(sizes) > kept, used


def updates(conn: sqlite3.Connection, upto: Mapping[str, int], after_ts: int) -> dict[str, list[Message]]:
    where = "channel = ? AND edited IS NOT NULL AND edited >= ? AND seq <= ? ORDER BY seq"
    with transaction(conn, "DEFERRED"):
        return {channel: _messages(conn, where, (channel, after_ts, last)) for channel, last in upto.items()}


def seq_range(conn: sqlite3.Connection, channel: str, after: int, upto: int) -> list[Message]:
    return _messages(conn, "channel = ? AND seq > ? AND seq <= ? ORDER BY seq", (channel, after, upto))


def edit(conn: sqlite3.Connection, channel: str, seq: int, data: JSONDict, ts: int) -> Message | None:
    with transaction(conn):
        conn.execute(
            "UPDATE messages SET data = ?, edited = ? WHERE channel = ? AND seq = ? AND deleted = 0",
            (_encode(data), ts, channel, seq),
        )
        message = get(conn, channel, seq)
    return None if message is None or message.deleted else message


def delete(conn: sqlite3.Connection, channel: str, seq: int, ts: int) -> Message | None:
    """Erase the content: `secure_delete` (set on the connection) zeroes the freed bytes,
    and the checkpoint copies the erased page into the database file and empties the
    write-ahead log, which held the original page."""
    with transaction(conn):
        conn.execute(
            "UPDATE messages SET deleted = 1, data = '{}', edited = ?"
            " WHERE channel = ? AND seq = ? AND deleted = 0",
            (ts, channel, seq),
        )
        message = get(conn, channel, seq)
    if message is not None:
        # Best effort: a read still running after busy_timeout makes it give up (without
        # error); the checkpoint of a later delete, or the close, then completes it.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    return message


def messages_by(conn: sqlite3.Connection, author_id: str) -> list[Message]:
    return _messages(conn, "author_id = ? ORDER BY channel, seq", (author_id,))


def redact(conn: sqlite3.Connection, channel: str, seq: int, ts: int) -> Message | None:
    """`delete` that also drops the author's id and name and the key (an erasure, issue 15);
    `secure_delete` and the checkpoint leave none of it in the files."""
    with transaction(conn):
        cursor = conn.execute(
            "UPDATE messages SET deleted = 1, data = '{}', edited = ?, author_id = '', author_name = '',"
            " key = NULL WHERE channel = ? AND seq = ? AND (author_id != '' OR author_name != '' OR deleted = 0)",
            (ts, channel, seq),
        )
        message = get(conn, channel, seq)
    if cursor.rowcount:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    return message


def forget_read_marks(conn: sqlite3.Connection, user_id: str) -> int:
    with transaction(conn):
        return conn.execute("DELETE FROM read_marks WHERE user_id = ?", (user_id,)).rowcount


def purge_channels(conn: sqlite3.Connection, channels: list[str], before_ts: int) -> int:
    removed = 0
    with transaction(conn):
        for channel in channels:
            last = _one(conn, "SELECT max(seq) FROM messages WHERE channel = ? AND ts < ?", (channel, before_ts))
            if last is None or last[0] is None:
                continue
            removed += conn.execute("DELETE FROM messages WHERE channel = ? AND ts < ? AND seq < ?",
                                    (channel, before_ts, int(last[0]))).rowcount + 1
            conn.execute("UPDATE messages SET deleted = 1, data = '{}', author_id = '', author_name = '',"
                         " key = NULL WHERE channel = ? AND seq = ?", (channel, int(last[0])))
            conn.execute("DELETE FROM read_marks WHERE channel = ? AND seq <= ?", (channel, int(last[0])))
    if removed:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    return removed


# -- read marks -------------------------------------------------------------------


def mark_read(conn: sqlite3.Connection, user_id: str, channel: str, seq: int) -> int:
    with transaction(conn):
        where = "user_id = ? AND channel = ?"
        row = _one(conn, f"SELECT seq FROM read_marks WHERE {where}", (user_id, channel))
        previous = int(row[0]) if row is not None else 0
        if seq > previous:
            conn.execute(
                "INSERT OR REPLACE INTO read_marks (user_id, channel, seq) VALUES (?, ?, ?)",
                (user_id, channel, seq),
            )
    return previous


def read_marks(conn: sqlite3.Connection, channel: str, users: list[str]) -> dict[str, int]:
    marks = dict.fromkeys(users, 0)
    for start in range(0, len(users), _IN_CHUNK):
        chunk = users[start : start + _IN_CHUNK]
        rows = conn.execute(
            "SELECT user_id, seq FROM read_marks"
            f" WHERE channel = ? AND user_id IN ({', '.join('?' * len(chunk))})",
            (channel, *chunk),
        )
        marks.update(rows.fetchall())
    return marks


def user_read_marks(conn: sqlite3.Connection, user_id: str) -> dict[str, int]:
    rows = conn.execute("SELECT channel, seq FROM read_marks WHERE user_id = ?", (user_id,))
    return dict(rows.fetchall())


def read_marks_many(conn: sqlite3.Connection, channels: list[str], users: list[str]) -> dict[str, dict[str, int]]:
    """Per channel, the users' marks there: one read of each user's rows (the primary key's
    prefix), channels filtered here (a user has a mark in a few channels)."""
    out: dict[str, dict[str, int]] = {channel: {} for channel in channels}
    with transaction(conn, "DEFERRED"):
        for start in range(0, len(users), _IN_CHUNK):
            chunk = users[start : start + _IN_CHUNK]
            rows = conn.execute(
                f"SELECT user_id, channel, seq FROM read_marks WHERE user_id IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            for user_id, channel, seq in rows:
                marks = out.get(channel)
                if marks is not None:
                    marks[user_id] = int(seq)
    return out


def recent_messages(conn: sqlite3.Connection, channels: list[str], limit: int, since_ts: int
                    ) -> dict[str, list[Message]]:
    return _recent(conn, _SELECT, channels, limit, since_ts, _message)


def recent_times(conn: sqlite3.Connection, channels: list[str], limit: int, since_ts: int
                 ) -> dict[str, list[tuple[int, int]]]:
    return _recent(conn, "SELECT channel, seq, id, ts FROM messages", channels, limit, since_ts,
                   lambda row: (int(row[1]), int(row[3])))


def _recent(conn: sqlite3.Connection, select: str, channels: list[str], limit: int, since_ts: int,
            convert: Callable[[Sequence[Any]], T]) -> dict[str, list[T]]:
    """Per channel, its newest `limit` messages not deleted with `ts >= since_ts`, ascending:
    read newest first along the primary key, in one snapshot, and with a `since_ts`, stopped at
    the first row older than `since_ts - TIME_ORDER_SLACK_MS` (rows are appended in time order:
    without it, a week's read would go through the channel's whole history)."""
    out: dict[str, list[T]] = {}
    floor = since_ts - TIME_ORDER_SLACK_MS
    with transaction(conn, "DEFERRED"):
        for channel in channels:
            found: list[T] = []
            if limit > 0:
                rows = conn.execute(f"{select} WHERE channel = ? AND deleted = 0 ORDER BY seq DESC", (channel,))
                for row in rows:
                    if row[3] < floor:
                        break
                    if row[3] >= since_ts:
                        found.append(convert(row))
                        if len(found) == limit:
                            break
            out[channel] = found[::-1]
    return out


# -- directory ----------------------------------------------------------------------


def directory_row(item: DirectoryItem) -> tuple[str, tuple[object, ...]]:
    """The table and the row of one directory entity."""
    match item:
        case School():
            return "schools", (item.id, item.name, item.year, int(item.guardians_start_chats))
        case Person():
            person = (item.id, item.school_id, item.name, item.role.value, item.email, item.phone)
            return "people", person
        case SchoolClass():
            return "classes", (item.id, item.school_id, item.name, json.dumps(item.teachers))
        case Student():
            guardians = json.dumps(item.guardians)
            return "students", (item.id, item.school_id, item.class_id, item.name, guardians)
        case Chat():
            return "chats", (item.id, item.school_id, item.student_id, item.staff_id, item.guardian_id,
                             int(item.closed))
    raise TypeError(f"not a directory entity: {item!r}")


def checked_deletions(deletions: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """`{table: [ids]}`, or ValueError/TypeError before anything is written."""
    doomed: dict[str, list[str]] = {}
    for table, ids in (deletions or {}).items():
        if table not in DIRECTORY_COLUMNS:
            accepted = ", ".join(DIRECTORY_COLUMNS)
            raise ValueError(f"unknown directory deletion key {table!r}; accepted: {accepted}")
        if isinstance(ids, str):
            raise TypeError(f"directory deletions[{table!r}] must be a collection of ids, not a str")
        doomed[table] = list(ids)
    return doomed


def save_directory(
    conn: sqlite3.Connection,
    rows: list[tuple[str, tuple[object, ...]]],
    deletions: dict[str, list[str]],
) -> None:
    """Upserts first, then deletions (an id in both ends up deleted), in one transaction."""
    with transaction(conn):
        for table, row in rows:
            placeholders = ", ".join("?" * len(row))
            columns = DIRECTORY_COLUMNS[table]
            conn.execute(f"INSERT OR REPLACE INTO {table} ({columns}) VALUES ({placeholders})", row)
        for table, ids in deletions.items():
            conn.executemany(f"DELETE FROM {table} WHERE id = ?", [(i,) for i in ids])


def directory_version(conn: sqlite3.Connection) -> int:
    return int(_one(conn, "SELECT coalesce(max(value), 0) FROM meta WHERE key = 'directory_version'", ())[0])


def touch_directory(conn: sqlite3.Connection) -> int:
    with transaction(conn):
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('directory_version', 1) "
            "ON CONFLICT (key) DO UPDATE SET value = value + 1"
        )
        return directory_version(conn)


def load_directory(conn: sqlite3.Connection) -> Directory:
    with transaction(conn, "DEFERRED"):
        rows = {
            table: conn.execute(f"SELECT {columns} FROM {table} ORDER BY id").fetchall()
            for table, columns in DIRECTORY_COLUMNS.items()
        }
    schools = [School(i, n, y, bool(g)) for i, n, y, g in rows["schools"]]
    people = [Person(i, s, n, Role(r), e, p) for i, s, n, r, e, p in rows["people"]]
    classes = [SchoolClass(i, s, n, tuple(json.loads(t))) for i, s, n, t in rows["classes"]]
    students = [Student(i, s, c, n, tuple(json.loads(g))) for i, s, c, n, g in rows["students"]]
    return Directory(
        schools={x.id: x for x in schools},
        people={x.id: x for x in people},
        classes={x.id: x for x in classes},
        students={x.id: x for x in students},
        chats={i: Chat(i, s, st, sf, g, bool(c)) for i, s, st, sf, g, c in rows["chats"]},
    )
