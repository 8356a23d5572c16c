"""The audit log service (issue 15): who did what, by ids only, in an append-only store.

`Audit.record` is called by the actions it follows (publish, edit, delete, export, erase,
import, consent and quiet-hours changes, sessions ended, year purges) after they happen. It
never raises: an audit store that cannot be reached is logged (`audit_unavailable`, with the
action and ids) and the action stands. `details` carries ids and counts only, never a text.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from persistence.audit_store import AuditEntry, AuditStore
from persistence.store import StoreUnavailable

log = structlog.get_logger("liaison.audit")
DAY = 86400.0
MAX_PAGE = 500


class Audit:
    def __init__(self, store: AuditStore, *, retention_days: float = 365,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.retention_days = retention_days
        self.clock = clock

    async def record(self, actor: str, action: str, target: str, school: str | None = None,
                     details: dict[str, object] | None = None) -> None:
        entry = AuditEntry(self.clock(), actor, action, target, school, dict(details or {}))
        try:
            await self.store.append(entry)
        except StoreUnavailable as exc:
            log.warning("audit_unavailable", action=action, actor=actor, target=target, school=school,
                        error=type(exc).__name__)

    async def entries(self, school: str | None = None, *, target: str | None = None,
                      before: int | None = None, limit: int = 100) -> list[AuditEntry]:
        """Newest first, at most `limit` (capped at 500)."""
        return await self.store.entries(school=school, target=target, before=before,
                                        limit=max(1, min(limit, MAX_PAGE)))

    async def purge(self) -> int:
        """Drop the entries older than the retention period; how many."""
        removed = await self.store.purge(self.clock() - self.retention_days * DAY)
        if removed:
            log.info("audit_purged", entries=removed)
        return removed
