"""The audit log service (issue 15): who did what, by ids only, in an append-only store.

`Audit.record` is called by the actions it follows (publish, edit, delete, export, erase,
import, consent and quiet-hours changes, sessions ended, year purges) after they happen. It
never raises and never waits for the store: entries are queued and written in batches by a
background writer (`flush` waits for it; `Runtime.close` flushes). While the store cannot be
reached the writer retries, logging `audit_unavailable`; the action stands. `details`
carries ids and counts only, never a text.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import structlog

from persistence.audit_store import AuditEntry, AuditStore
from persistence.store import StoreUnavailable
from school.channels import ChannelType, parse_channel
from school.directory import Directory
from school.messages import Message

log = structlog.get_logger("liaison.audit")
DAY = 86400.0
MAX_PAGE = 500
BATCH = 500  # entries per write
MAX_PENDING = 100_000  # entries queued while the store is down, at most (then the oldest are dropped, logged)
RETRY_DELAY = 1.0
GATHER = 0.2  # seconds of entries written together
FLUSH_WAIT = 2.0  # seconds a read of the log waits for this process's pending entries


class Audit:
    def __init__(self, store: AuditStore, *, retention_days: float = 365,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.retention_days = retention_days
        self.clock = clock
        self._pending: list[AuditEntry] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, actor: str, action: str, target: str, school: str | None = None,
                     details: dict[str, object] | None = None) -> None:
        """Queue one entry: the writer stores what is queued in one write, in the background,
        so a burst of publishes costs one transaction, not one each (and what comes within
        `GATHER` seconds goes with it). `flush` waits for it."""
        self._pending.append(AuditEntry(self.clock(), actor, action, target, school, dict(details or {})))
        if len(self._pending) > MAX_PENDING:
            dropped, self._pending = self._pending[:-MAX_PENDING], self._pending[-MAX_PENDING:]
            log.warning("audit_dropped", entries=len(dropped), hint="the audit store is not keeping up")
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        # what the next GATHER seconds record goes in the same write: one transaction (and
        # fsync) for a busy gateway's many publishes, not one per turn of the event loop
        await asyncio.sleep(GATHER)
        while self._pending:
            batch, self._pending = self._pending[:BATCH], self._pending[BATCH:]
            try:
                await self.store.append_many(batch)
            except StoreUnavailable as exc:
                log.warning("audit_unavailable", entries=len(batch), actions=sorted({e.action for e in batch}),
                            error=type(exc).__name__)
                self._pending[:0] = batch
                await asyncio.sleep(RETRY_DELAY)
            except Exception as exc:  # never lose the writer: the entries are logged by id
                log.error("audit_write_failed", entries=len(batch), error=type(exc).__name__)

    async def flush(self) -> None:
        """Wait until every entry recorded so far is stored (or the store refused them)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def entries(self, school: str | None = None, *, target: str | None = None,
                      before: int | None = None, limit: int = 100) -> list[AuditEntry]:
        """Newest first, at most `limit` (capped at 500); what this process recorded before
        the call included (its pending entries are written first, waited for at most
        `FLUSH_WAIT` seconds: while the store is away the writer retries for as long)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FLUSH_WAIT):
                await self.flush()
        return await self.store.entries(school=school, target=target, before=before,
                                        limit=max(1, min(limit, MAX_PAGE)))

    async def purge(self) -> int:
        """Drop the entries older than the retention period; how many."""
        removed = await self.store.purge(self.clock() - self.retention_days * DAY)
        if removed:
            log.info("audit_purged", entries=removed)
        return removed


def school_of_channel(d: Directory, channel: str) -> str | None:
    parsed = parse_channel(channel)
    if parsed is None:
        return None
    match parsed.type:
        case ChannelType.SCHOOL | ChannelType.STAFF:
            return parsed.id
        case ChannelType.CLASS:
            return d.classes[parsed.id].school_id if parsed.id in d.classes else None
        case ChannelType.CHAT:
            return d.chats[parsed.id].school_id if parsed.id in d.chats else None
        case _:
            person = d.person(parsed.id)
            return None if person is None else person.school_id


class AuditTrail:
    """The hooks that feed the audit log from the actions of other parts (wired in Runtime):
    messages published, edited and deleted, sessions ended. Ids only."""

    def __init__(self, audit: Audit, directory: Directory,
                 school_of: Callable[[str], str | None] | None = None) -> None:
        self.audit = audit
        self.directory = directory
        self.school_of = school_of  # a person's school, even just removed from the directory

    async def published(self, message: Message) -> None:
        await self.message_changed("published", message.author.id, message)

    async def message_changed(self, action: str, actor: str, message: Message) -> None:
        await self.audit.record(actor, action, message.channel, school_of_channel(self.directory, message.channel),
                                {"channel": message.channel, "seq": message.seq, "kind": message.kind})

    async def sessions_ended(self, user_id: str, sessions: list[str], reason: str) -> None:
        if not sessions:
            return
        person = self.directory.person(user_id)
        school = person.school_id if person is not None else self.school_of(user_id) if self.school_of else None
        await self.audit.record(user_id if reason == "ended_by_user" else reason, "sessions_ended", user_id,
                                school, {"sessions": len(sessions), "reason": reason})
