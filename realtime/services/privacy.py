"""Children's data (issue 15): the sections of personal data a person can export and erase.

Every feature that stores personal data gives one `PersonalData` section and registers it in
`Runtime.__init__` with `self.personal_data.append(section)`; the export includes every
registered section and the erasure runs each one's `erase`. A section may also give files
(`PersonalFiles`: the archive holds their bytes) and purge per channel (`ChannelData`: the
school year's purge calls it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
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


class PersonalFiles(Protocol):
    """A section that also has files to put in the export archive (uploads)."""

    def files(self, person_id: str) -> AsyncIterator[tuple[str, AsyncIterator[bytes]]]:
        """Each file as `(path in the archive, its bytes in chunks)`."""
        ...


class ChannelData(Protocol):
    """A section that keeps data per channel too (uploads attached to messages...): the school
    year's purge asks it to remove what belongs to these channels and is older than `before`
    (seconds since the epoch)."""

    async def purge_channels(self, channels: list[str], before: float, *, dry_run: bool) -> int: ...
