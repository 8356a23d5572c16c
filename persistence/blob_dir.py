"""`DirectoryBlobStore`: blobs as files in one directory (the embedded default, beside the
SQLite file: `<db>.files/`).

A blob `k` is `<root>/<k[:2]>/<k>`: 256 subdirectories keep directories small. Writes are
atomic: the bytes go to a temporary file in the same subdirectory, are fsynced, renamed over
the final name and the subdirectory fsynced, so a crash leaves the blob whole or absent (a
stray `.tmp-*` file at worst, removed at `open`). All file I/O runs in worker threads, never
on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from persistence.blob_store import CHUNK, check_key


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DirectoryBlobStore:
    def __init__(self, root: str) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        key = check_key(key)
        return self.root / key[:2] / key

    async def open(self) -> None:
        await asyncio.to_thread(self._open)

    def _open(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for stray in self.root.glob("*/.tmp-*"):
            with contextlib.suppress(OSError):
                stray.unlink()

    async def close(self) -> None:
        return None

    async def put(self, key: str, source: str) -> int:
        return await asyncio.to_thread(self._put, self._path(key), source)

    def _put(self, target: Path, source: str) -> int:
        target.parent.mkdir(mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                shutil.copyfileobj(src, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
                size = out.tell()
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(target.parent)
        return size

    async def size(self, key: str) -> int | None:
        path = self._path(key)
        try:
            return (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            return None

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise KeyError(key) from None
        try:
            await asyncio.to_thread(handle.seek, start)
            left = None if end is None else max(end - start, 0)
            while left is None or left > 0:
                chunk = await asyncio.to_thread(handle.read, CHUNK if left is None else min(CHUNK, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    async def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            await asyncio.to_thread(path.unlink)
        except FileNotFoundError:
            return False
        return True
