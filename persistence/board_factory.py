"""Pick the `BoardStore` adapter from the store URL (`LIAISON_STORE_URL`): tables `board_*` in
the message store's SQLite file, or collections `board_*` in its MongoDB database."""

from __future__ import annotations

from persistence.board_mongo import MongoBoardStore
from persistence.board_sqlite import SQLiteBoardStore
from persistence.board_store import BoardStore
from persistence.factory import locate


def open_board_store(url: str, *, op_timeout: float | None = 3.0) -> BoardStore:
    """The `BoardStore` for a store URL, unopened: `await store.open()`."""
    where = locate(url)
    if where.kind == "sqlite":
        return SQLiteBoardStore(where.path, op_timeout=op_timeout)
    return MongoBoardStore(url, where.database, op_timeout=op_timeout)
