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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

from persistence.mongo import MongoStore
from persistence.sqlite import DEFAULT_OP_TIMEOUT, SQLiteStore
from persistence.store import Store

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


def open_store(url: str, *, op_timeout: float | None = DEFAULT_OP_TIMEOUT) -> Store:
    where = locate(url)
    if where.kind == "sqlite":
        return SQLiteStore(where.path, op_timeout=op_timeout)
    return MongoStore(url, where.database, op_timeout=op_timeout)


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
