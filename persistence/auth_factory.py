"""Pick the `AuthStore` adapter from the store URL (`LIAISON_STORE_URL`).

The URLs are those of persistence/factory.py: the sign-in records live beside the messages,
in the same SQLite file (tables `auth_*`, written through connections of their own) or the
same MongoDB database (collections `auth_*`). `:memory:` is refused for the same reason.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from persistence.auth_mongo import MongoAuthStore
from persistence.auth_sqlite import SQLiteAuthStore
from persistence.auth_store import AuthStore

ACCEPTED = "sqlite:///<relative path>, sqlite:////<absolute path>, mongodb://..., mongodb+srv://..."


def open_auth_store(url: str, *, op_timeout: float | None = 3.0) -> AuthStore:
    """The `AuthStore` for a store URL (`LIAISON_STORE_URL`), unopened: `await store.open()`.
    `op_timeout` is each operation's deadline in seconds."""
    scheme, sep, rest = url.partition("://")
    match scheme.lower() if sep else "":
        case "sqlite":
            return SQLiteAuthStore(_sqlite_path(url, rest), op_timeout=op_timeout)
        case "mongodb" | "mongodb+srv":
            database = urlsplit(url).path.lstrip("/")
            return MongoAuthStore(url, database or "liaison", op_timeout=op_timeout)
    raise ValueError(f"unsupported store URL {_redacted(url)!r}; accepted: {ACCEPTED}")


def _sqlite_path(url: str, rest: str) -> str:
    if not rest.startswith("/") or "?" in rest or "#" in rest:
        raise ValueError(
            f"a SQLite store URL is sqlite:///<relative path> or sqlite:////<absolute path>, not {url!r}"
        )
    path = unquote(rest[1:])
    if not path or path == ":memory:":
        raise ValueError(f"a SQLite store needs a file path, not {url!r}")
    return path


def _redacted(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
