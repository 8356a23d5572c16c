"""`UploadStore`: the records of uploaded files, where messages reference them, and the image
consents of students' guardians (issue 13). The bytes themselves are in a `BlobStore`.

- An `Upload` is one file someone sent (`POST /api/v1/uploads`): its owner, its media type, a
  safe file name, and its stored `variants` (`original`, and for images `screen` and `thumb`),
  each a blob key with its type, size and dimensions. `attached` once a message references it;
  uploads never attached are removed after a day.
- A `Reference` says that the message `(channel, seq)` carries the upload, with the students
  the attachment lists (a photo's children): downloads are allowed to the readers of those
  channels, and a guardian's withdrawn consent finds the photos of their child through them.
- A `Consent` is one guardian's answer for one student.

Adapters: `persistence.uploads_sqlite.SQLiteUploadStore` (tables `upload_*` and
`image_consents` in the message store's SQLite file), `persistence.uploads_mongo.MongoUploadStore`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from school.consent import ConsentState


@dataclass(frozen=True, slots=True)
class Variant:
    key: str  # the blob key
    type: str  # its media type
    size: int
    width: int | None = None
    height: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "type": self.type, "size": self.size, "width": self.width, "height": self.height}

    @staticmethod
    def from_dict(raw: dict[str, Any]) -> Variant:
        return Variant(str(raw["key"]), str(raw["type"]), int(raw["size"]), raw.get("width"), raw.get("height"))


@dataclass(frozen=True, slots=True)
class Upload:
    id: str
    owner: str
    type: str  # the original's media type
    name: str  # a safe file name, for Content-Disposition
    created: float
    variants: dict[str, Variant] = field(default_factory=dict)
    attached: bool = False

    @property
    def size(self) -> int:
        return self.variants["original"].size

    @property
    def is_image(self) -> bool:
        return self.type.startswith("image/")


@dataclass(frozen=True, slots=True)
class Reference:
    upload_id: str
    channel: str
    seq: int
    students: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Consent:
    student_id: str
    guardian_id: str
    state: ConsentState
    updated: float


class UploadStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    # -- uploads --------------------------------------------------------------------------
    async def add_upload(self, upload: Upload) -> None: ...

    async def get_upload(self, upload_id: str) -> Upload | None: ...

    async def uploads_of(self, owner: str) -> list[Upload]:
        """The person's uploads, oldest first."""
        ...

    async def unattached_before(self, created: float, limit: int = 500) -> list[Upload]:
        """Uploads never attached and created before `created`."""
        ...

    async def delete_upload(self, upload_id: str, *, only_unattached: bool = False) -> bool:
        """Remove the record and its references; False when there was none (or, with
        `only_unattached`, when a message has attached it meanwhile: it is then kept)."""
        ...

    # -- references ----------------------------------------------------------------------
    async def add_references(self, references: Iterable[Reference]) -> None:
        """Record them (a known `(upload, channel, seq)` is replaced) and mark their uploads attached."""
        ...

    async def references(self, upload_id: str) -> list[Reference]: ...

    async def delete_references(self, references: Iterable[Reference]) -> None:
        """Forget these references (their messages were purged)."""
        ...

    async def references_in(self, channels: Iterable[str]) -> list[Reference]:
        """Every reference from a message of these channels (the school year's purge)."""
        ...

    async def references_of_student(self, student_id: str) -> list[Reference]:
        """Every reference whose attachment lists the student."""
        ...

    # -- image consents ------------------------------------------------------------------
    async def set_consent(self, consent: Consent) -> ConsentState:
        """Record the answer; return the state it replaces (`not_asked` when none)."""
        ...

    async def consents(self, student_ids: Iterable[str]) -> dict[str, dict[str, ConsentState]]:
        """student id -> guardian id -> state, for the answers recorded (others: not asked)."""
        ...

    async def consents_by(self, guardian_id: str) -> list[Consent]:
        """The answers this guardian gave, for the privacy export."""
        ...

    async def erase_consents_by(self, guardian_id: str, *, dry_run: bool = False) -> int: ...
