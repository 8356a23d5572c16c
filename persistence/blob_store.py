"""`BlobStore`: the bytes of uploaded files (photos, their variants, PDFs), by opaque key.

Keys are chosen by the caller and must be unguessable (`new_key`: 128 random bits); nothing
about a file (its name, its owner, its type) is in its key. A blob is written once from a local
file (`put`) and then only read (`read`, a byte range streamed in chunks) or deleted.

Adapters: `persistence.blob_dir.DirectoryBlobStore` (a directory beside the SQLite file,
atomic writes) and `persistence.blob_gridfs.GridFSBlobStore` (MongoDB GridFS, PyMongo's async
API); `persistence.factory.open_blob_store` picks one from the store URL.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from typing import Protocol

CHUNK = 256 * 1024
_KEY = re.compile(r"[0-9a-f]{32}")


def new_key() -> str:
    """A fresh blob key: 32 hex characters of `secrets` randomness."""
    return secrets.token_hex(16)


def check_key(key: str) -> str:
    """`key` when it is a key `new_key` could have made (never a path), else ValueError."""
    if not _KEY.fullmatch(key):
        raise ValueError("a blob key is 32 lowercase hex characters")
    return key


class BlobStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def put(self, key: str, source: str) -> int:
        """Store the local file `source` under `key` (replacing nothing: a key is new) and return
        its size; the blob is complete and durable when this returns, or absent."""
        ...

    async def size(self, key: str) -> int | None:
        """The blob's size in bytes, None when there is none."""
        ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes `start` to `end` (exclusive; None: to the end), in chunks of at most `CHUNK`.
        KeyError (raised by the iterator) when there is no such blob."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove the blob; False when there was none."""
        ...

