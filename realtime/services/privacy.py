"""Children's data (issue 15): the sections of personal data a person can export and erase.

Every feature that stores personal data gives one `PersonalData` section and registers it in
`Runtime.__init__` with `self.personal_data.append(section)`; the export includes every
registered section and the erasure runs each one's `erase`.
"""

from __future__ import annotations

from typing import Protocol


class PersonalData(Protocol):
    """One section of a person's data: `name` is its key in the export (e.g. "push_subscriptions")."""

    name: str

    async def export(self, person_id: str) -> object:
        """JSON-ready data of that person (nothing of anyone else's family)."""
        ...

    async def erase(self, person_id: str, *, dry_run: bool) -> int:
        """Remove that person's records (idempotent); how many were removed, or would be."""
        ...
