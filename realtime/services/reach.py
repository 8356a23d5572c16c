"""The school's reach for its director (issue 17): per class, the families never signed in
and those who cannot be notified, from the directory and one read of the auth store."""

from __future__ import annotations

from typing import Any

from persistence.auth_store import AuthStore
from school.directory import Directory
from school.errors import NotFound
from school.reach import class_reach


class Reach:
    def __init__(self, directory: Directory, auth_store: AuthStore) -> None:
        self.directory = directory
        self.auth_store = auth_store

    async def of_school(self, school_id: str) -> dict[str, Any]:
        d = self.directory
        if school_id not in d.schools:
            raise NotFound(f"there is no school {school_id!r}")
        guardians = sorted(d.guardians_of_school(school_id))
        signed_in = set(await self.auth_store.first_sign_ins(guardians))
        return {"school": school_id, "classes": class_reach(d, school_id, signed_in)}
