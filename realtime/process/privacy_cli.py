"""`liaison privacy export|erase|run` (issue 15): children's data from the command line.

Each command builds the gateway's runtime on the store of `LIAISON_STORE_URL` (so that every
feature's privacy section is there), without its daily job, does its work and closes.
Directory changes are announced on the broker (`LIAISON_REDIS_URL`: every gateway learns them
live) and by moving the store's directory version (gateways reload within
`LIAISON_DIRECTORY_POLL` seconds, closing the connections of the people removed).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, BinaryIO

from channels.factory import make_broker
from persistence.audit_store import AuditEntry
from persistence.factory import open_audit_store, open_auth_store, open_privacy_store, open_store
from persistence.privacy_store import Leaver
from realtime.config import Settings
from realtime.process.app import Runtime


@asynccontextmanager
async def runtime_of(settings: Settings) -> AsyncIterator[Runtime]:
    store = open_store(settings.store_url)
    auth = open_auth_store(settings.store_url)
    await store.open()
    try:
        await auth.open()
        try:
            runtime = Runtime(settings, store, make_broker(settings.redis_url, settings.redis_prefix),
                              await store.load_directory(), auth)
            runtime.run_daily = False
            await runtime.start()
            try:
                yield runtime
            finally:
                await runtime.close()
        finally:
            await auth.close()
    finally:
        await store.close()


async def export(settings: Settings, person_id: str, out: str | None) -> int:
    async with runtime_of(settings) as runtime:
        chunks = await runtime.privacy.export(person_id, "cli")
        if out is None:
            await _write(chunks, sys.stdout.buffer)
        else:
            f = await asyncio.to_thread(Path(out).open, "wb")  # a command: writing the file may block
            try:
                await _write(chunks, f)
            finally:
                f.close()
            print(f"liaison privacy: the data of {person_id} is in {out}", file=sys.stderr)
    return 0


async def _write(chunks: AsyncIterator[bytes], f: BinaryIO) -> None:
    async for chunk in chunks:
        f.write(chunk)
    f.flush()


async def erase(settings: Settings, person_id: str, dry_run: bool) -> int:
    async with runtime_of(settings) as runtime:
        counts = await runtime.privacy.erase(person_id, "cli", dry_run=dry_run)
        if not dry_run:
            await runtime.store.touch_directory()
    print(json.dumps({"person": person_id, "dry_run": dry_run, "counts": counts, "total": sum(counts.values())}))
    return 0


async def run(settings: Settings, dry_run: bool) -> int:
    async with runtime_of(settings) as runtime:
        actions = await runtime.retention.run(dry_run=dry_run)
        if not dry_run and actions:
            await runtime.store.touch_directory()
    for action in actions:
        print(json.dumps(action, ensure_ascii=False))
    if not actions:
        print("liaison privacy run: nothing to do" + (" (dry run)" if dry_run else ""), file=sys.stderr)
    return 0


def command(args: Any, settings: Settings) -> Coroutine[Any, Any, int]:
    actions: dict[str, Callable[[], Coroutine[Any, Any, int]]] = {
        "export": lambda: export(settings, args.person, args.out),
        "erase": lambda: erase(settings, args.person, args.dry_run),
        "run": lambda: run(settings, args.dry_run),
    }
    return actions[args.privacy_command]()


async def after_import(store_url: str, school_id: str, removed: list[str], summary: dict[str, int]) -> None:
    """What `liaison import` tells the privacy records (it runs without a gateway): the people
    it took out of the directory left now (erased three months later), and the audit log's
    `imported` entry."""
    now = time.time()
    privacy = open_privacy_store(store_url)
    audit_store = open_audit_store(store_url)
    await privacy.open()
    try:
        for person_id in removed:
            await privacy.record_leaver(Leaver(person_id, school_id, now))
        await audit_store.open()
        try:
            await audit_store.append(AuditEntry(now, "cli", "imported", school_id, school_id, dict(summary)))
        finally:
            await audit_store.close()
    finally:
        await privacy.close()
