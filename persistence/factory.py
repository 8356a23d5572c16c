"""Pick the `Store` adapter from a URL (`LIAISON_STORE_URL`).

Accepted URLs:
- `sqlite:///liaison.db` — a SQLite file; the path after the third slash is relative
  to the working directory (`sqlite:///data/liaison.db`).
- `sqlite:////var/lib/liaison/liaison.db` — four slashes: an absolute path.
  The path may be percent-encoded (`%20` for a space). `:memory:` is refused: the store
  uses two connections, which would each see a different empty database.
- `mongodb://...` and `mongodb+srv://...` — a MongoDB deployment, passed to PyMongo as
  is; the database is `liaison` unless the URL names one (`mongodb://host/school_db`).

The store is returned unopened: `await store.open()` connects and creates the schema.
`op_timeout` is each operation's deadline in seconds (for MongoDB, the client's
`timeoutMS` unless the URL sets one).

Every other store lives beside the messages, through connections of its own: tables
`auth_*`, `audit_log`, `privacy_*`, `board_*`, `notify_*`, `push_*`, `upload_*` in the same
SQLite file, or collections of those names in the same MongoDB database; files in a directory
`<sqlite file>.files/` or in GridFS. The job queue is on Redis when `LIAISON_REDIS_URL` is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

from persistence.audit_mongo import MongoAuditStore
from persistence.audit_sqlite import SQLiteAuditStore
from persistence.audit_store import AuditStore
from persistence.auth_mongo import MongoAuthStore
from persistence.auth_sqlite import SQLiteAuthStore
from persistence.auth_store import AuthStore
from persistence.blob_dir import DirectoryBlobStore
from persistence.blob_gridfs import GridFSBlobStore
from persistence.blob_store import BlobStore
from persistence.board_mongo import MongoBoardStore
from persistence.board_sqlite import SQLiteBoardStore
from persistence.board_store import BoardStore
from persistence.jobs import JobQueue
from persistence.jobs_mongo import MongoJobQueue
from persistence.jobs_redis import RedisJobQueue
from persistence.jobs_sqlite import SQLiteJobQueue
from persistence.mongo import MongoStore
from persistence.notification_mongo import MongoNotificationStore
from persistence.notification_sqlite import SQLiteNotificationStore
from persistence.notification_store import NotificationStore
from persistence.privacy_mongo import MongoPrivacyStore
from persistence.privacy_sqlite import SQLitePrivacyStore
from persistence.privacy_store import PrivacyStore
from persistence.push_mongo import MongoPushStore
from persistence.push_sqlite import SQLitePushStore
from persistence.push_store import PushStore
from persistence.sqlite import DEFAULT_OP_TIMEOUT, SQLiteStore
from persistence.store import Store
from persistence.upload_store import UploadStore
from persistence.uploads_mongo import MongoUploadStore
from persistence.uploads_sqlite import SQLiteUploadStore

ACCEPTED = "sqlite:///<relative path>, sqlite:////<absolute path>, mongodb://..., mongodb+srv://..."


@dataclass(frozen=True, slots=True)
class Location:
    """Where a store URL points: a SQLite file (`path`), or a MongoDB deployment (`url`,
    `database`)."""

    kind: Literal["sqlite", "mongodb"]
    url: str
    path: str = ""
    database: str = "liaison"


def locate(url: str) -> Location:
    """Parse a store URL (`LIAISON_STORE_URL`); ValueError, with the accepted forms, otherwise."""
    scheme, sep, rest = url.partition("://")
    match scheme.lower() if sep else "":
        case "sqlite":
            return Location("sqlite", url, path=_sqlite_path(url, rest))
        case "mongodb" | "mongodb+srv":
            return Location("mongodb", url, database=urlsplit(url).path.lstrip("/") or "liaison")
    raise ValueError(f"unsupported store URL {_redacted(url)!r}; accepted: {ACCEPTED}")


# Each `open_*` returns its store unopened: `await store.open()`.

def open_store(url: str, *, op_timeout: float | None = DEFAULT_OP_TIMEOUT) -> Store:
    where = locate(url)
    return (SQLiteStore(where.path, op_timeout=op_timeout) if where.kind == "sqlite"
            else MongoStore(url, where.database, op_timeout=op_timeout))


def open_auth_store(url: str, *, op_timeout: float | None = DEFAULT_OP_TIMEOUT) -> AuthStore:
    where = locate(url)
    return (SQLiteAuthStore(where.path, op_timeout=op_timeout) if where.kind == "sqlite"
            else MongoAuthStore(url, where.database, op_timeout=op_timeout))


def open_audit_store(url: str, *, retention_days: float = 365,
                     op_timeout: float | None = DEFAULT_OP_TIMEOUT) -> AuditStore:
    where = locate(url)
    return (SQLiteAuditStore(where.path, retention_days=retention_days, op_timeout=op_timeout)
            if where.kind == "sqlite" else MongoAuditStore(url, where.database, op_timeout=op_timeout))


def open_privacy_store(url: str, *, op_timeout: float | None = DEFAULT_OP_TIMEOUT) -> PrivacyStore:
    where = locate(url)
    return (SQLitePrivacyStore(where.path, op_timeout=op_timeout) if where.kind == "sqlite"
            else MongoPrivacyStore(url, where.database, op_timeout=op_timeout))


def open_board_store(url: str, *, op_timeout: float | None = DEFAULT_OP_TIMEOUT) -> BoardStore:
    where = locate(url)
    return (SQLiteBoardStore(where.path, op_timeout=op_timeout) if where.kind == "sqlite"
            else MongoBoardStore(url, where.database, op_timeout=op_timeout))


def open_notification_store(url: str, *, op_timeout: float | None = DEFAULT_OP_TIMEOUT) -> NotificationStore:
    where = locate(url)
    return (SQLiteNotificationStore(where.path, op_timeout=op_timeout) if where.kind == "sqlite"
            else MongoNotificationStore(url, where.database, op_timeout=op_timeout))


def open_push_store(url: str) -> PushStore:
    where = locate(url)
    return SQLitePushStore(where.path) if where.kind == "sqlite" else MongoPushStore(url, where.database)


def open_upload_store(url: str) -> UploadStore:
    where = locate(url)
    return SQLiteUploadStore(where.path) if where.kind == "sqlite" else MongoUploadStore(url, where.database)


def open_blob_store(url: str) -> BlobStore:
    where = locate(url)
    return (DirectoryBlobStore(where.path + ".files") if where.kind == "sqlite"
            else GridFSBlobStore(url, where.database))


def open_job_queue(store_url: str, redis_url: str | None, redis_prefix: str = "liaison:") -> JobQueue:
    if redis_url:
        return RedisJobQueue.from_url(redis_url, redis_prefix)
    where = locate(store_url)
    return SQLiteJobQueue(where.path) if where.kind == "sqlite" else MongoJobQueue(store_url, where.database)


def _sqlite_path(url: str, rest: str) -> str:
    if not rest.startswith("/") or "?" in rest or "#" in rest:
        raise ValueError(
            f"a SQLite store URL is sqlite:///<relative path> or sqlite:////<absolute path>,"
            f" not {url!r}"
        )
    path = unquote(rest[1:])
    if not path or path == ":memory:":
        raise ValueError(f"a SQLite store needs a file path, not {url!r}")
    return path


def _redacted(url: str) -> str:
    """The URL without the credentials it may carry (`scheme://user:password@host`)."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
