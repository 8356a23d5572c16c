"""The `AuditStore` protocol: the append-only audit log (issue 15).

Who did what, in the store, kept for a configured period (`LIAISON_AUDIT_RETENTION_DAYS`):
published, edited, deleted, exported, erased, imported, consent and quiet-hours changes,
sessions ended, year purges. An entry names ids only (actor, target, channel, seq): never a
message text, a name, an e-mail address or a phone number.

Contract (checked by tests/contract/test_audit_store.py against every adapter):

- `append` adds one entry and returns its id; ids grow with every append (a later entry
  has a greater id), so `entries(before=id)` pages backwards without gaps or repeats.
- Nothing changes an entry: there is no update method, and the SQLite table refuses UPDATE
  and DELETE with triggers, except the deletion of entries older than the retention period.
  On MongoDB the adapter offers no way to change an entry; refusing changes made with other
  tools is the database's access control (a role without `update`/`remove` on `audit_log`).
- `purge(before)` removes the entries whose time is older than `before` and says how many.
- Times are seconds since the epoch (floats), given by the caller: the store has no clock.
- Every method raises `StoreUnavailable` (persistence/store.py) when the backend cannot be
  reached or does not answer in time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit record. `id` is 0 until stored. `details` holds ids and counts only."""

    at: float
    actor: str
    action: str
    target: str
    school: str | None = None
    details: dict[str, object] = field(default_factory=dict)
    id: int = 0

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "at": self.at, "actor": self.actor, "action": self.action,
                "target": self.target, "school": self.school, "details": dict(self.details)}


class AuditStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def append(self, entry: AuditEntry) -> int:
        """Store the entry; its id (greater than every id before it)."""
        ...

    async def append_many(self, entries: list[AuditEntry]) -> None:
        """Store the entries in one write, in their order (ids growing)."""
        ...

    async def entries(self, *, school: str | None = None, target: str | None = None,
                      before: int | None = None, limit: int = 100) -> list[AuditEntry]:
        """Newest first: the entries of `school` (all schools when None) and/or about `target`,
        with an id below `before` when given, at most `limit`."""
        ...

    async def purge(self, before: float) -> int:
        """Remove the entries older than `before` (seconds since the epoch); how many."""
        ...
